/*
 * reuseport_sock: a listening TCP socket or a bound UDP socket with SO_REUSEADDR and
 * SO_REUSEPORT, which Node 20's net and dgram cannot ask for (net got `reusePort` in 22.12). Two
 * slb-agent processes can then serve the same VIP at once, which is how a restart hands the
 * proxy's listeners over without refusing a connection.
 *
 *   open("tcp" | "udp", host, port, backlog) -> fd   (non-blocking, close-on-exec; listening for tcp)
 *
 * The caller gives the fd to net.Server.listen({ fd }) or dgram's bind({ fd }), which own it from
 * then on. Errors throw with the errno's name as `code` (EADDRINUSE, EADDRNOTAVAIL, EACCES...).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

static napi_value fail(napi_env env, int err, const char* what) {
  char msg[160];
  const char* name = uv_err_name(uv_translate_sys_error(err));
  /* worded like Node's own: "bind EADDRINUSE: Address already in use" */
  snprintf(msg, sizeof msg, "%s %s: %s", what, name, strerror(err));
  napi_throw_error(env, name, msg);
  return NULL;
}

static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "open(kind: 'tcp' | 'udp', host, port, backlog)");
    return NULL;
  }
  char kind[8] = {0}, host[64] = {0};
  size_t len = 0;
  int32_t port = 0, backlog = 0;
  if (napi_get_value_string_utf8(env, argv[0], kind, sizeof kind, &len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], host, sizeof host, &len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || napi_get_value_int32(env, argv[3], &backlog) != napi_ok) {
    napi_throw_type_error(env, NULL, "open(kind: 'tcp' | 'udp', host, port, backlog)");
    return NULL;
  }
  int tcp = strcmp(kind, "tcp") == 0;
  if (!tcp && strcmp(kind, "udp") != 0) {
    napi_throw_type_error(env, NULL, "reuseport_sock: kind must be 'tcp' or 'udp'");
    return NULL;
  }
  if (port < 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "reuseport_sock: port must be 0-65535");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in* a4 = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* a6 = (struct sockaddr_in6*)&ss;
  int family;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    family = AF_INET; a4->sin_family = AF_INET; a4->sin_port = htons((uint16_t)port); sl = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    family = AF_INET6; a6->sin6_family = AF_INET6; a6->sin6_port = htons((uint16_t)port); sl = sizeof *a6;
  } else {
    napi_throw_error(env, "EINVAL", "reuseport_sock: host must be an IPv4 or IPv6 address");
    return NULL;
  }
  int fd = socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, errno, "socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int e = errno; close(fd); return fail(env, e, "setsockopt");
  }
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr*)&ss, sl) < 0) { int e = errno; close(fd); return fail(env, e, "bind"); }
  if (tcp && listen(fd, backlog > 0 ? backlog : 511) < 0) { int e = errno; close(fd); return fail(env, e, "listen"); }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, Open, NULL, &fn);
  napi_set_named_property(env, exports, "open", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
