/*
 * udp_batch: a UDP socket for Node that receives with recvmmsg(2) and replies with sendmmsg(2).
 *
 * JS owns three preallocated buffers of SLOTS slots each: `in` (queries), `out` (replies) and `meta`
 * (META_INTS int32 per slot, see META_* below). On each readable event the socket is drained in at
 * most MAX_BATCHES_PER_EVENT batches; for each batch JS is called once with the datagram count and
 * fills in the reply lengths, then the replies go out in one sendmmsg. A full socket send buffer
 * drops replies instead of blocking. JS exceptions are caught and reported, never rethrown.
 *
 * Lifetime: open() -> external handle; start() polls the fd on Node's libuv loop and pins the
 * handle, the callbacks and the buffers; close() (idempotent, also allowed from inside the callback)
 * stops the poll and closes the fd at once; the struct is freed when both the libuv handle has
 * closed and the external has been garbage collected.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_SLOTS 1024
#define MAX_BATCHES_PER_EVENT 8
#define DEFAULT_BUF_BYTES (4 * 1024 * 1024)

/* meta layout: int32 fields per slot */
#define META_IN_LEN 0  /* > 0: datagram length; <= 0: slot carries no datagram (dropped) */
#define META_OUT_LEN 1 /* set by JS: reply length, 0 = no reply */
#define META_FAMILY 2  /* 4 or 6 */
#define META_PORT 3    /* source port, host order */
#define META_ADDR 4    /* 16 bytes of source address (network order; IPv4 uses the first 4) */
#define META_INTS 8

/* counters, in the order stats() returns them */
enum {
  C_RECEIVED,     /* datagrams read from the socket */
  C_SENT,         /* replies the kernel accepted */
  C_DROP_TRUNC,   /* datagrams larger than a slot */
  C_DROP_PORT0,   /* datagrams from source port 0 (never answered) */
  C_DROP_FULL,    /* replies dropped because the send buffer was full (EAGAIN/ENOBUFS) */
  C_SEND_ERRORS,  /* replies the kernel refused for another reason */
  C_RECV_ERRORS,  /* recvmmsg failures other than EAGAIN */
  C_CB_ERRORS,    /* JS exceptions thrown by the batch callback */
  C_BAD_REPLY,    /* reply lengths outside [0, out slot size] */
  C_COUNT
};

typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
} ctl_buf;

typedef struct udp_sock {
  napi_env env;
  int fd;
  int family; /* 4 or 6 */
  int started;
  int closed;       /* close() was called: the fd is gone */
  int poll_open;    /* uv handle initialised and not yet closed */
  int finalized;    /* the JS external was collected */
  int hook_added;
  int in_event;     /* inside on_readable: the async context is still in use */
  uv_poll_t poll;

  napi_ref self_ref; /* pins the external while polling */
  napi_ref cb_ref;
  napi_ref err_ref;
  napi_ref in_ref;
  napi_ref out_ref;
  napi_ref meta_ref;
  napi_ref resource_ref;
  napi_async_context async_ctx;

  uint8_t* in_base;
  uint8_t* out_base;
  int32_t* meta;
  size_t slots;
  size_t in_slot;
  size_t out_slot;

  struct mmsghdr* rmsgs;
  struct iovec* riov;
  struct sockaddr_storage* names;
  ctl_buf* rctl;
  struct mmsghdr* smsgs;
  struct iovec* siov;
  ctl_buf* sctl;

  double counters[C_COUNT];
} udp_sock;

static napi_status throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  const char* code = uv_err_name(uv_translate_sys_error(err));
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, code, msg);
  return napi_pending_exception;
}

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      bool pending_ = false;                                             \
      napi_is_exception_pending(env, &pending_);                         \
      if (!pending_) napi_throw_error(env, NULL, "udp_batch: " #call);   \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

static void del_ref(napi_env env, napi_ref* r) {
  if (*r != NULL) {
    napi_delete_reference(env, *r);
    *r = NULL;
  }
}

static void free_arrays(udp_sock* s) {
  free(s->rmsgs);
  free(s->riov);
  free(s->names);
  free(s->rctl);
  free(s->smsgs);
  free(s->siov);
  free(s->sctl);
  s->rmsgs = NULL;
  s->riov = NULL;
  s->names = NULL;
  s->rctl = NULL;
  s->smsgs = NULL;
  s->siov = NULL;
  s->sctl = NULL;
}

static void maybe_free(udp_sock* s) {
  if (s->finalized && !s->poll_open) {
    free_arrays(s);
    free(s);
  }
}

static void on_poll_closed(uv_handle_t* h) {
  udp_sock* s = (udp_sock*)h->data;
  s->poll_open = 0;
  maybe_free(s);
}

static void cleanup_hook(void* arg);

/* Stops polling, closes the fd and unpins everything; safe to call more than once. */
static void do_close(udp_sock* s) {
  if (s->closed) return;
  s->closed = 1;
  if (s->poll_open) {
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t*)&s->poll, on_poll_closed);
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  if (s->hook_added) {
    napi_remove_env_cleanup_hook(s->env, cleanup_hook, s);
    s->hook_added = 0;
  }
  if (s->async_ctx != NULL && !s->in_event) {
    napi_async_destroy(s->env, s->async_ctx);
    s->async_ctx = NULL;
  }
  /* the raw pointers die with the references */
  s->in_base = NULL;
  s->out_base = NULL;
  s->meta = NULL;
  del_ref(s->env, &s->cb_ref);
  del_ref(s->env, &s->err_ref);
  del_ref(s->env, &s->in_ref);
  del_ref(s->env, &s->out_ref);
  del_ref(s->env, &s->meta_ref);
  del_ref(s->env, &s->resource_ref);
  del_ref(s->env, &s->self_ref);
}

static void cleanup_hook(void* arg) {
  udp_sock* s = (udp_sock*)arg;
  s->hook_added = 0; /* being removed by Node itself */
  do_close(s);
}

static void finalize_sock(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  udp_sock* s = (udp_sock*)data;
  do_close(s);
  s->finalized = 1;
  maybe_free(s);
}

static udp_sock* get_sock(napi_env env, napi_value v) {
  void* p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "udp_batch: expected a socket handle");
    return NULL;
  }
  return (udp_sock*)p;
}

/* Reports a pending JS exception to the error callback (if any) and clears it. */
static void report_exception(udp_sock* s) {
  napi_env env = s->env;
  bool pending = false;
  napi_value exc, fn, global, ignored;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  if (napi_get_and_clear_last_exception(env, &exc) != napi_ok) return;
  s->counters[C_CB_ERRORS] += 1;
  if (s->err_ref == NULL) return;
  if (napi_get_reference_value(env, s->err_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &global);
  if (napi_call_function(env, global, fn, 1, &exc, &ignored) != napi_ok) {
    /* the error reporter threw as well: swallow it */
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_get_and_clear_last_exception(env, &exc);
    }
  }
}

/* ---- receive / send ------------------------------------------------------------------------ */

static void fill_meta(udp_sock* s, size_t i, const struct mmsghdr* m) {
  int32_t* mt = s->meta + i * META_INTS;
  const struct sockaddr_storage* ss = &s->names[i];
  int port = 0;
  mt[META_OUT_LEN] = 0;
  memset(&mt[META_ADDR], 0, 16);
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)ss;
    port = ntohs(a->sin_port);
    mt[META_FAMILY] = 4;
    memcpy(&mt[META_ADDR], &a->sin_addr, 4);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)ss;
    port = ntohs(a->sin6_port);
    mt[META_FAMILY] = 6;
    memcpy(&mt[META_ADDR], &a->sin6_addr, 16);
  } else {
    mt[META_FAMILY] = 0;
  }
  mt[META_PORT] = port;
  if (m->msg_hdr.msg_flags & MSG_TRUNC) {
    s->counters[C_DROP_TRUNC] += 1;
    mt[META_IN_LEN] = -1;
  } else if (port == 0 || mt[META_FAMILY] == 0) {
    s->counters[C_DROP_PORT0] += 1;
    mt[META_IN_LEN] = -1;
  } else {
    mt[META_IN_LEN] = (int32_t)m->msg_len;
  }
}

/* Builds the control message that makes the reply leave from the address the query was sent to. */
static size_t build_reply_ctl(udp_sock* s, size_t i, ctl_buf* out) {
  struct msghdr* rh = &s->rmsgs[i].msg_hdr;
  struct cmsghdr* c;
  struct msghdr tmp;
  if (rh->msg_controllen == 0) return 0;
  for (c = CMSG_FIRSTHDR(rh); c != NULL; c = CMSG_NXTHDR(rh, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo in;
      struct in_pktinfo pi;
      memcpy(&in, CMSG_DATA(c), sizeof in);
      memset(&pi, 0, sizeof pi);
      pi.ipi_spec_dst = in.ipi_addr; /* source := the query's destination; let routing pick the if */
      memset(out, 0, sizeof *out);
      tmp.msg_control = out->buf;
      tmp.msg_controllen = CMSG_SPACE(sizeof pi);
      c = CMSG_FIRSTHDR(&tmp);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof pi);
      memcpy(CMSG_DATA(c), &pi, sizeof pi);
      return CMSG_SPACE(sizeof pi);
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      if (!IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr)) pi.ipi6_ifindex = 0;
      memset(out, 0, sizeof *out);
      tmp.msg_control = out->buf;
      tmp.msg_controllen = CMSG_SPACE(sizeof pi);
      c = CMSG_FIRSTHDR(&tmp);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof pi);
      memcpy(CMSG_DATA(c), &pi, sizeof pi);
      return CMSG_SPACE(sizeof pi);
    }
  }
  return 0;
}

static void send_replies(udp_sock* s, size_t n) {
  size_t count = 0, off = 0, i;
  for (i = 0; i < n; i++) {
    int32_t* mt = s->meta + i * META_INTS;
    int32_t len = mt[META_OUT_LEN];
    struct msghdr* h;
    size_t ctl;
    if (mt[META_IN_LEN] <= 0 || len == 0) continue;
    if (len < 0 || (size_t)len > s->out_slot) {
      s->counters[C_BAD_REPLY] += 1;
      continue;
    }
    h = &s->smsgs[count].msg_hdr;
    s->siov[count].iov_base = s->out_base + i * s->out_slot;
    s->siov[count].iov_len = (size_t)len;
    h->msg_name = &s->names[i];
    h->msg_namelen = s->rmsgs[i].msg_hdr.msg_namelen;
    h->msg_iov = &s->siov[count];
    h->msg_iovlen = 1;
    ctl = build_reply_ctl(s, i, &s->sctl[count]);
    h->msg_control = ctl ? s->sctl[count].buf : NULL;
    h->msg_controllen = ctl;
    h->msg_flags = 0;
    count++;
  }
  while (off < count) {
    int r = sendmmsg(s->fd, s->smsgs + off, (unsigned)(count - off), MSG_DONTWAIT);
    if (r > 0) {
      s->counters[C_SENT] += r;
      off += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      s->counters[C_DROP_FULL] += (double)(count - off); /* never block: drop the rest */
      return;
    }
    /* the first remaining message failed on its own (EINVAL, EPERM, ...): skip it */
    s->counters[C_SEND_ERRORS] += 1;
    off++;
  }
}

/* Calls the JS batch callback with n; returns 0 if the socket was closed meanwhile. */
static int call_js(udp_sock* s, size_t n) {
  napi_env env = s->env;
  napi_value fn, argv[1], global, ignored;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  if (napi_get_reference_value(env, s->cb_ref, &fn) == napi_ok && fn != NULL &&
      napi_create_uint32(env, (uint32_t)n, &argv[0]) == napi_ok && napi_get_global(env, &global) == napi_ok) {
    if (napi_call_function(env, global, fn, 1, argv, &ignored) != napi_ok) report_exception(s);
  }
  report_exception(s); /* anything left pending */
  napi_close_handle_scope(env, scope);
  return !s->closed;
}

static void on_readable(uv_poll_t* h, int status, int events) {
  udp_sock* s = (udp_sock*)h->data;
  napi_env env = s->env;
  napi_handle_scope hscope;
  napi_callback_scope cscope = NULL;
  napi_value resource;
  int batch;
  (void)events;
  if (s->closed) return;
  if (status < 0) {
    s->counters[C_RECV_ERRORS] += 1;
    return;
  }
  if (napi_open_handle_scope(env, &hscope) != napi_ok) return;
  s->in_event = 1;
  /* one callback scope per readable event: microtasks and nextTicks run when it closes */
  if (napi_get_reference_value(env, s->resource_ref, &resource) != napi_ok ||
      napi_open_callback_scope(env, resource, s->async_ctx, &cscope) != napi_ok) {
    cscope = NULL;
  }
  for (batch = 0; batch < MAX_BATCHES_PER_EVENT && !s->closed; batch++) {
    size_t i, valid = 0;
    int n;
    for (i = 0; i < s->slots; i++) {
      struct msghdr* m = &s->rmsgs[i].msg_hdr;
      m->msg_namelen = sizeof(struct sockaddr_storage);
      m->msg_controllen = sizeof(ctl_buf);
      m->msg_flags = 0;
    }
    do {
      n = recvmmsg(s->fd, s->rmsgs, (unsigned)s->slots, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) s->counters[C_RECV_ERRORS] += 1;
      break;
    }
    s->counters[C_RECEIVED] += n;
    for (i = 0; i < (size_t)n; i++) {
      fill_meta(s, i, &s->rmsgs[i]);
      if (s->meta[i * META_INTS + META_IN_LEN] > 0) valid++;
    }
    if (valid > 0) {
      if (!call_js(s, (size_t)n)) break;
      send_replies(s, (size_t)n);
    }
    if ((size_t)n < s->slots) break; /* drained */
  }
  if (cscope != NULL) {
    napi_close_callback_scope(env, cscope);
    report_exception(s);
  }
  s->in_event = 0;
  if (s->closed && s->async_ctx != NULL) { /* close() ran inside the callback */
    napi_async_destroy(env, s->async_ctx);
    s->async_ctx = NULL;
  }
  napi_close_handle_scope(env, hscope);
}

/* ---- exported functions -------------------------------------------------------------------- */

static int set_buf(int fd, int force_opt, int opt, int bytes) {
  if (bytes <= 0) return 0;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return 0;
  return setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

static int get_int_prop(napi_env env, napi_value obj, const char* name, int dflt) {
  bool has = false;
  napi_value v;
  int32_t out;
  napi_valuetype t;
  if (obj == NULL) return dflt;
  if (napi_typeof(env, obj, &t) != napi_ok || t != napi_object) return dflt;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return dflt;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return dflt;
  if (napi_get_value_int32(env, v, &out) != napi_ok) return dflt;
  return out;
}

/* open(host: string, port: number, family: 4|6, opts?: {recvBufferSize?, sendBufferSize?})
 *   -> { handle, port } */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result, handle, portv;
  char host[128];
  size_t hostlen = 0;
  int32_t port = 0, family = 0;
  int fd, one = 1, rcv, snd;
  struct sockaddr_storage ss;
  socklen_t sslen;
  udp_sock* s;
  char* pct;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "open(host, port, family, opts?)");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hostlen) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok ||
      napi_get_value_int32(env, argv[2], &family) != napi_ok) {
    napi_throw_type_error(env, NULL, "open(host: string, port: number, family: 4 | 6)");
    return NULL;
  }
  if (port < 0 || port > 65535 || (family != 4 && family != 6)) {
    napi_throw_range_error(env, "ERR_SOCKET_BAD_PORT", "udp_batch: bad port or family");
    return NULL;
  }
  rcv = get_int_prop(env, argc > 3 ? argv[3] : NULL, "recvBufferSize", DEFAULT_BUF_BYTES);
  snd = get_int_prop(env, argc > 3 ? argv[3] : NULL, "sendBufferSize", DEFAULT_BUF_BYTES);

  memset(&ss, 0, sizeof ss);
  if (family == 4) {
    struct sockaddr_in* a = (struct sockaddr_in*)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
      napi_throw_error(env, "EINVAL", "udp_batch: not an IPv4 address");
      return NULL;
    }
    sslen = sizeof *a;
  } else {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    pct = strchr(host, '%');
    if (pct != NULL) {
      *pct = '\0';
      a->sin6_scope_id = if_nametoindex(pct + 1);
      if (a->sin6_scope_id == 0) a->sin6_scope_id = (uint32_t)strtoul(pct + 1, NULL, 10);
    }
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
      napi_throw_error(env, "EINVAL", "udp_batch: not an IPv6 address");
      return NULL;
    }
    sslen = sizeof *a;
  }

  fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv);
  set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd);
  if (family == 6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  } else {
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  }
  if (bind(fd, (struct sockaddr*)&ss, sslen) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, "bind", err);
    return NULL;
  }
  sslen = sizeof ss;
  if (getsockname(fd, (struct sockaddr*)&ss, &sslen) != 0) {
    int err = errno;
    close(fd);
    throw_errno(env, "getsockname", err);
    return NULL;
  }
  port = ntohs(family == 4 ? ((struct sockaddr_in*)&ss)->sin_port : ((struct sockaddr_in6*)&ss)->sin6_port);

  s = (udp_sock*)calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "udp_batch: out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  if (napi_create_external(env, s, finalize_sock, NULL, &handle) != napi_ok) {
    close(fd);
    free(s);
    napi_throw_error(env, NULL, "udp_batch: napi_create_external");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, cleanup_hook, s) == napi_ok) s->hook_added = 1;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, port, &portv));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  CHECK(napi_set_named_property(env, result, "port", portv));
  return result;
}

static int get_bytes(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool is = false;
  void* p = NULL;
  if (napi_is_buffer(env, v, &is) == napi_ok && is) {
    if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return 0;
    *data = (uint8_t*)p;
    return 1;
  }
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t length = 0, offset = 0;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &t, &length, &p, &ab, &offset) != napi_ok) return 0;
    switch (t) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: *len = length; break;
      case napi_int16_array: case napi_uint16_array: *len = length * 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: *len = length * 4; break;
      default: *len = length * 8; break;
    }
    *data = (uint8_t*)p;
    return 1;
  }
  return 0;
}

/* start(handle, onBatch(n), inBuf, outBuf, meta, onError?(err)) */
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 6, in_len = 0, out_len = 0, meta_len = 0, slots, i;
  napi_value argv[6], resource, name;
  napi_valuetype t;
  uint8_t *in_p = NULL, *out_p = NULL, *meta_p = NULL;
  udp_sock* s;
  uv_loop_t* loop = NULL;
  int rc;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "start(handle, onBatch, inBuf, outBuf, meta, onError?)");
    return NULL;
  }
  s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->closed) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "udp_batch: socket is closed");
    return NULL;
  }
  if (s->started) {
    napi_throw_error(env, "ERR_SOCKET_ALREADY_STARTED", "udp_batch: already started");
    return NULL;
  }
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "udp_batch: onBatch must be a function");
    return NULL;
  }
  if (!get_bytes(env, argv[2], &in_p, &in_len) || !get_bytes(env, argv[3], &out_p, &out_len) ||
      !get_bytes(env, argv[4], &meta_p, &meta_len)) {
    napi_throw_type_error(env, NULL, "udp_batch: inBuf, outBuf and meta must be Buffers or typed arrays");
    return NULL;
  }
  slots = meta_len / (META_INTS * 4);
  if (slots == 0 || slots > MAX_SLOTS || meta_len % (META_INTS * 4) != 0 || ((uintptr_t)meta_p & 3) != 0 ||
      in_len % slots != 0 || out_len % slots != 0 || in_len / slots < 512 || out_len / slots < 512) {
    napi_throw_range_error(env, NULL,
                           "udp_batch: meta must hold 1..1024 slots of 32 bytes (4-byte aligned); "
                           "inBuf and outBuf must split into that many slots of >= 512 bytes");
    return NULL;
  }

  s->slots = slots;
  s->in_slot = in_len / slots;
  s->out_slot = out_len / slots;
  s->in_base = in_p;
  s->out_base = out_p;
  s->meta = (int32_t*)meta_p;
  s->rmsgs = calloc(slots, sizeof *s->rmsgs);
  s->riov = calloc(slots, sizeof *s->riov);
  s->names = calloc(slots, sizeof *s->names);
  s->rctl = calloc(slots, sizeof *s->rctl);
  s->smsgs = calloc(slots, sizeof *s->smsgs);
  s->siov = calloc(slots, sizeof *s->siov);
  s->sctl = calloc(slots, sizeof *s->sctl);
  if (!s->rmsgs || !s->riov || !s->names || !s->rctl || !s->smsgs || !s->siov || !s->sctl) {
    free_arrays(s);
    napi_throw_error(env, "ENOMEM", "udp_batch: out of memory");
    return NULL;
  }
  for (i = 0; i < slots; i++) {
    s->riov[i].iov_base = s->in_base + i * s->in_slot;
    s->riov[i].iov_len = s->in_slot;
    s->rmsgs[i].msg_hdr.msg_name = &s->names[i];
    s->rmsgs[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsgs[i].msg_hdr.msg_iovlen = 1;
    s->rmsgs[i].msg_hdr.msg_control = s->rctl[i].buf;
  }

  CHECK(napi_create_reference(env, argv[0], 1, &s->self_ref));
  CHECK(napi_create_reference(env, argv[1], 1, &s->cb_ref));
  if (argc > 5 && napi_typeof(env, argv[5], &t) == napi_ok && t == napi_function) {
    CHECK(napi_create_reference(env, argv[5], 1, &s->err_ref));
  }
  CHECK(napi_create_reference(env, argv[2], 1, &s->in_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &s->out_ref));
  CHECK(napi_create_reference(env, argv[4], 1, &s->meta_ref));
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_reference(env, resource, 1, &s->resource_ref));
  CHECK(napi_create_string_utf8(env, "UDPBATCH", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &s->async_ctx));

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
  udp_sock* s;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return NULL;
  s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  do_close(s);
  return NULL;
}

/* stats(handle) -> Float64Array of the C_* counters */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ab, arr;
  void* data = NULL;
  udp_sock* s;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return NULL;
  s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  CHECK(napi_create_arraybuffer(env, sizeof s->counters, &data, &ab));
  memcpy(data, s->counters, sizeof s->counters);
  CHECK(napi_create_typedarray(env, napi_float64_array, C_COUNT, ab, 0, &arr));
  return arr;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value v;
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(napi_create_int32(env, META_INTS, &v));
  CHECK(napi_set_named_property(env, exports, "META_INTS", v));
  CHECK(napi_create_int32(env, MAX_SLOTS, &v));
  CHECK(napi_set_named_property(env, exports, "MAX_SLOTS", v));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
