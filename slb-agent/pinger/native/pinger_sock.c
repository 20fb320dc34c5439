/*
 * pinger_sock: the sockets the MAC-keepalive pinger needs and Node lacks.
 *
 *   open("arp", ifname)  AF_PACKET SOCK_DGRAM ETH_P_ARP socket bound to the interface
 *   open("icmp", ifname) ICMP datagram socket (SOCK_DGRAM, IPPROTO_ICMP), bound to the interface
 *                        when allowed; it needs net.ipv4.ping_group_range to hold our group, which
 *                        Debian's default "1 0" gives nobody, root included: then a raw ICMP socket
 *                        (CAP_NET_RAW) is used, with our own identifier and checksum
 *   sendArp(h, senderIp, targetIp, destMac|null) -> 0 or errno   (null: broadcast)
 *   sendEcho(h, dstIp, seq) -> 0 or errno
 *   start(h, onBatch(n), out Float64Array)  receive with uv_poll on the Node loop; each answer is
 *                        REC_DOUBLES doubles in `out`: sender IPv4 (host order), MAC high 16 bits,
 *                        MAC low 32 bits, ICMP sequence (-1 for ARP), receive time (uv_hrtime ms)
 *   close(h)
 *
 * One socket per interface and method for the life of the pinger: probing never forks and never
 * opens a socket per probe. Sends return an errno instead of throwing so that a down link costs
 * no exception per probe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define REC_DOUBLES 5
/* answers read per readable event before yielding back to the loop */
#define MAX_READS_PER_EVENT 256

enum kind { K_ARP = 1, K_ICMP = 2 };

typedef struct psock {
  napi_env env;
  int fd;
  int kind;
  int ifindex;
  int raw;          /* icmp over SOCK_RAW: we set the identifier and strip the IP header */
  uint16_t ident;   /* raw icmp: our echo identifier */
  uint8_t mac[6];
  int closed, poll_open, finalized, hook_added, started;
  uv_poll_t poll;
  napi_ref self_ref, cb_ref, out_ref;
  double* out;
  size_t slots;
} psock;

/* ARP packet for Ethernet/IPv4 (RFC 826), without the link header (SOCK_DGRAM adds it) */
#pragma pack(push, 1)
typedef struct arp_pkt {
  uint16_t htype, ptype;
  uint8_t hlen, plen;
  uint16_t op;
  uint8_t sha[6];
  uint8_t spa[4];
  uint8_t tha[6];
  uint8_t tpa[4];
} arp_pkt;
#pragma pack(pop)

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      bool pending_ = false;                                         \
      napi_is_exception_pending(env, &pending_);                     \
      if (!pending_) napi_throw_error(env, NULL, "pinger_sock: " #call); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name(uv_translate_sys_error(err)), msg);
  return NULL;
}

static void maybe_free(psock* s) {
  if (s->finalized && !s->poll_open) free(s);
}

static void on_poll_closed(uv_handle_t* h) {
  psock* s = (psock*)h->data;
  s->poll_open = 0;
  maybe_free(s);
}

static void cleanup_hook(void* arg);

static void do_close(psock* s) {
  if (s->closed) return;
  s->closed = 1;
  if (s->poll_open) {
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t*)&s->poll, on_poll_closed);
  }
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (s->hook_added) napi_remove_env_cleanup_hook(s->env, cleanup_hook, s);
  s->hook_added = 0;
  s->out = NULL;
  if (s->cb_ref) napi_delete_reference(s->env, s->cb_ref);
  if (s->out_ref) napi_delete_reference(s->env, s->out_ref);
  if (s->self_ref) napi_delete_reference(s->env, s->self_ref);
  s->cb_ref = s->out_ref = s->self_ref = NULL;
}

static void cleanup_hook(void* arg) {
  psock* s = (psock*)arg;
  s->hook_added = 0;
  do_close(s);
}

static void finalize(napi_env env, void* data, void* hint) {
  psock* s = (psock*)data;
  (void)env;
  (void)hint;
  do_close(s);
  s->finalized = 1;
  maybe_free(s);
}

static psock* get_sock(napi_env env, napi_value v) {
  void* p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "pinger_sock: expected a socket handle");
    return NULL;
  }
  return (psock*)p;
}

/* open(kind, ifname) -> { handle, ifindex, mac } */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2], result, handle, v;
  char kind[8] = {0}, ifname[IF_NAMESIZE + 1] = {0}, mactext[18];
  struct ifreq ifr;
  int fd, k, ifindex;
  psock* s;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], kind, sizeof kind, &len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], ifname, sizeof ifname, &len) != napi_ok || len == 0 || len >= IF_NAMESIZE) {
    napi_throw_type_error(env, NULL, "open(kind: 'arp' | 'icmp', ifname)");
    return NULL;
  }
  k = strcmp(kind, "arp") == 0 ? K_ARP : strcmp(kind, "icmp") == 0 ? K_ICMP : 0;
  if (!k) {
    napi_throw_type_error(env, NULL, "pinger_sock: kind must be 'arp' or 'icmp'");
    return NULL;
  }
  ifindex = (int)if_nametoindex(ifname);
  if (ifindex == 0) return throw_errno(env, ifname, errno);

  if (k == K_ARP) {
    struct sockaddr_ll sll;
    fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (fd < 0) return throw_errno(env, "socket(AF_PACKET)", errno);
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ARP);
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr*)&sll, sizeof sll) != 0) {
      int err = errno;
      close(fd);
      return throw_errno(env, "bind(AF_PACKET)", err);
    }
  } else {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
      fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
      if (fd < 0) {
        return throw_errno(env, "socket(ICMP): the process's group is not in net.ipv4.ping_group_range and it lacks CAP_NET_RAW for a raw socket", errno);
      }
      k = -K_ICMP; /* marks raw below */
    } else if (fd < 0) {
      return throw_errno(env, "socket(ICMP datagram)", errno);
    }
    /* the echo leaves through the interface it keeps warm; unprivileged kernels may refuse: routing decides then */
    (void)setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname));
  }

  s = (psock*)calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "pinger_sock: out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->raw = k < 0;
  s->kind = k < 0 ? -k : k;
  /* distinct per process and interface, so two pingers' raw sockets tell their replies apart */
  s->ident = (uint16_t)((getpid() * 31 + ifindex) & 0xffff);
  s->ifindex = ifindex;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) memcpy(s->mac, ifr.ifr_hwaddr.sa_data, 6);
  if (napi_create_external(env, s, finalize, NULL, &handle) != napi_ok) {
    close(fd);
    free(s);
    napi_throw_error(env, NULL, "pinger_sock: napi_create_external");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, cleanup_hook, s) == napi_ok) s->hook_added = 1;
  snprintf(mactext, sizeof mactext, "%02x:%02x:%02x:%02x:%02x:%02x", s->mac[0], s->mac[1], s->mac[2], s->mac[3], s->mac[4], s->mac[5]);
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  CHECK(napi_create_int32(env, ifindex, &v));
  CHECK(napi_set_named_property(env, result, "ifindex", v));
  CHECK(napi_create_string_utf8(env, mactext, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, result, "mac", v));
  return result;
}

static int get_u32(napi_env env, napi_value v, uint32_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 4294967295.0) return 0;
  *out = (uint32_t)d;
  return 1;
}

static napi_value ret_int(napi_env env, int x) {
  napi_value v;
  napi_create_int32(env, x, &v);
  return v;
}

/* sendArp(handle, senderIp, targetIp, destMac: Buffer(6) | null) -> 0 | errno */
static napi_value js_send_arp(napi_env env, napi_callback_info info) {
  size_t argc = 4, mlen = 0;
  napi_value argv[4];
  uint32_t spa, tpa;
  void* dmac = NULL;
  bool isbuf = false;
  psock* s;
  arp_pkt p;
  struct sockaddr_ll to;
  static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || !(s = get_sock(env, argv[0])) || !get_u32(env, argv[1], &spa) || !get_u32(env, argv[2], &tpa)) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_type_error(env, NULL, "sendArp(handle, senderIp, targetIp, destMac | null)");
    return NULL;
  }
  if (s->closed || s->kind != K_ARP) return ret_int(env, EBADF);
  if (napi_is_buffer(env, argv[3], &isbuf) == napi_ok && isbuf) {
    CHECK(napi_get_buffer_info(env, argv[3], &dmac, &mlen));
    if (mlen != 6) dmac = NULL;
  }
  memset(&p, 0, sizeof p);
  p.htype = htons(ARPHRD_ETHER);
  p.ptype = htons(ETH_P_IP);
  p.hlen = 6;
  p.plen = 4;
  p.op = htons(ARPOP_REQUEST);
  memcpy(p.sha, s->mac, 6);
  spa = htonl(spa);
  tpa = htonl(tpa);
  memcpy(p.spa, &spa, 4);
  memcpy(p.tpa, &tpa, 4);
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = s->ifindex;
  to.sll_halen = 6;
  memcpy(to.sll_addr, dmac ? dmac : bcast, 6);
  if (sendto(s->fd, &p, sizeof p, MSG_DONTWAIT, (struct sockaddr*)&to, sizeof to) < 0) return ret_int(env, errno);
  return ret_int(env, 0);
}

/* sendEcho(handle, dstIp, seq) -> 0 | errno; the kernel sets the identifier and the checksum */
static napi_value js_send_echo(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t dst, seq;
  psock* s;
  struct icmphdr h;
  struct sockaddr_in to;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !(s = get_sock(env, argv[0])) || !get_u32(env, argv[1], &dst) || !get_u32(env, argv[2], &seq)) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_type_error(env, NULL, "sendEcho(handle, dstIp, seq)");
    return NULL;
  }
  if (s->closed || s->kind != K_ICMP) return ret_int(env, EBADF);
  memset(&h, 0, sizeof h);
  h.type = ICMP_ECHO;
  h.un.echo.sequence = htons((uint16_t)seq);
  if (s->raw) {
    /* the datagram socket's kernel fills these in; a raw socket's sender must */
    const uint16_t* w = (const uint16_t*)&h;
    uint32_t sum = 0;
    size_t i;
    h.un.echo.id = htons(s->ident);
    for (i = 0; i < sizeof h / 2; i++) sum += w[i];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    h.checksum = (uint16_t)~sum;
  }
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(dst);
  if (sendto(s->fd, &h, sizeof h, MSG_DONTWAIT, (struct sockaddr*)&to, sizeof to) < 0) return ret_int(env, errno);
  return ret_int(env, 0);
}

/* Reads one packet; 1 = an answer was written at rec, 0 = not an answer, -1 = nothing left. */
static int read_one(psock* s, double* rec) {
  uint8_t buf[128];
  ssize_t n;
  if (s->kind == K_ARP) {
    struct sockaddr_ll from;
    socklen_t fl = sizeof from;
    const arp_pkt* p = (const arp_pkt*)buf;
    uint32_t spa;
    n = recvfrom(s->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr*)&from, &fl);
    if (n < 0) return errno == EINTR ? 0 : -1;
    /* our own requests come back as PACKET_OUTGOING; only replies count as answers */
    if (from.sll_pkttype == PACKET_OUTGOING || n < (ssize_t)sizeof *p || ntohs(p->op) != ARPOP_REPLY ||
        ntohs(p->ptype) != ETH_P_IP || p->hlen != 6 || p->plen != 4) {
      return 0;
    }
    memcpy(&spa, p->spa, 4);
    rec[0] = (double)ntohl(spa);
    rec[1] = (double)((p->sha[0] << 8) | p->sha[1]);
    rec[2] = (double)(((uint32_t)p->sha[2] << 24) | ((uint32_t)p->sha[3] << 16) | ((uint32_t)p->sha[4] << 8) | p->sha[5]);
    rec[3] = -1;
  } else {
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    const struct icmphdr* h = (const struct icmphdr*)buf;
    n = recvfrom(s->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr*)&from, &fl);
    if (n < 0) return errno == EINTR ? 0 : -1;
    if (s->raw) {
      /* a raw socket sees every ICMP packet with its IP header: skip it, keep our echo replies */
      size_t ihl = n > 0 ? (size_t)(buf[0] & 0x0f) * 4 : 0;
      if (ihl < 20 || (ssize_t)ihl + (ssize_t)sizeof *h > n) return 0;
      h = (const struct icmphdr*)(buf + ihl);
      n -= (ssize_t)ihl;
      if (h->type == ICMP_ECHOREPLY && ntohs(h->un.echo.id) != s->ident) return 0;
    }
    if (n < (ssize_t)sizeof *h || h->type != ICMP_ECHOREPLY) return 0;
    rec[0] = (double)ntohl(from.sin_addr.s_addr);
    rec[1] = 0;
    rec[2] = 0;
    rec[3] = (double)ntohs(h->un.echo.sequence);
  }
  rec[4] = (double)uv_hrtime() / 1e6;
  return 1;
}

static void deliver(psock* s, size_t n) {
  napi_env env = s->env;
  napi_value fn, global, argv[1], ignored;
  if (n == 0 || s->closed || !s->cb_ref) return;
  if (napi_get_reference_value(env, s->cb_ref, &fn) != napi_ok || !fn) return;
  napi_get_global(env, &global);
  napi_create_uint32(env, (uint32_t)n, &argv[0]);
  /* napi_make_callback runs microtasks afterwards, as a Node-native event source must */
  if (napi_make_callback(env, NULL, global, fn, 1, argv, &ignored) != napi_ok) {
    bool pending = false;
    napi_value exc;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
}

static void on_readable(uv_poll_t* h, int status, int events) {
  psock* s = (psock*)h->data;
  napi_handle_scope scope;
  size_t n = 0;
  int i;
  (void)events;
  if (s->closed || status < 0) return;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  for (i = 0; i < MAX_READS_PER_EVENT && !s->closed; i++) {
    int r = read_one(s, s->out + n * REC_DOUBLES);
    if (r < 0) break;
    if (r == 1 && ++n == s->slots) {
      deliver(s, n);
      n = 0;
    }
  }
  if (!s->closed) deliver(s, n);
  napi_close_handle_scope(s->env, scope);
}

/* start(handle, onBatch(n), out: Float64Array) */
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 3, length = 0, offset = 0;
  napi_value argv[3], ab;
  napi_typedarray_type t;
  void* data = NULL;
  bool is = false;
  uv_loop_t* loop;
  psock* s;
  int rc;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !(s = get_sock(env, argv[0]))) return NULL;
  if (s->closed || s->started) {
    napi_throw_error(env, NULL, "pinger_sock: closed or already started");
    return NULL;
  }
  CHECK(napi_is_typedarray(env, argv[2], &is));
  if (is) CHECK(napi_get_typedarray_info(env, argv[2], &t, &length, &data, &ab, &offset));
  if (!is || t != napi_float64_array || length < REC_DOUBLES) {
    napi_throw_type_error(env, NULL, "pinger_sock: out must be a Float64Array of at least 5 elements");
    return NULL;
  }
  s->out = (double*)data;
  s->slots = length / REC_DOUBLES;
  CHECK(napi_create_reference(env, argv[0], 1, &s->self_ref));
  CHECK(napi_create_reference(env, argv[1], 1, &s->cb_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &s->out_ref));
  CHECK(napi_get_uv_event_loop(env, &loop));
  rc = uv_poll_init_socket(loop, &s->poll, s->fd);
  if (rc != 0) {
    do_close(s);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  s->poll.data = s;
  s->poll_open = 1;
  rc = uv_poll_start(&s->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    do_close(s);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  s->started = 1;
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  psock* s;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !(s = get_sock(env, argv[0]))) return NULL;
  do_close(s);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value v;
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendArp", NULL, js_send_arp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendEcho", NULL, js_send_echo, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(napi_create_int32(env, REC_DOUBLES, &v));
  CHECK(napi_set_named_property(env, exports, "REC_DOUBLES", v));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
