/* A stand-in for stock LDP in CI: exports the socket API like libvcl_ldpreload.so, backed by
 * libc, but hands out fds offset by FAKE_LDP_BASE, as LDP hands out 2^LDP_SID_BIT + handle.
 * Any fd of ours that reached libc instead of "LDP" (or the reverse) then fails with EBADF
 * instead of silently working. Its constructor calls socket/connect/fcntl/close through the
 * PLT, as VCL's attach does, before the interposer's own constructor may have run. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FAKE_LDP_BASE (1 << 18)
#define EXPORT __attribute__((visibility("default")))

static void *libc;
static void *sym(const char *name) {
  if (!libc) libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *p = dlsym(libc, name);
  if (!p) abort();
  return p;
}
#define REAL(ret, name, ...) ((ret(*)(__VA_ARGS__))sym(#name))
static int k(int fd) { return fd >= FAKE_LDP_BASE ? fd - FAKE_LDP_BASE : fd; }
static int v(int fd) { return fd < 0 ? fd : fd + FAKE_LDP_BASE; }

/* FAKE_LDP_MT=1: as VCL 26.06 with multi-thread-workers, a session belongs to the thread
 * that made it, and another thread may use it only while it neither listens nor is
 * connected (vls_mt_session_migrate: "migrate NOT supported" -> EBADFD). */
#define FAKE_FDS 65536
static int owner[FAKE_FDS];
static unsigned char active[FAKE_FDS];
static int mt_mode(void) {
  static int m = -1;
  if (m < 0) m = getenv("FAKE_LDP_MT") && strcmp(getenv("FAKE_LDP_MT"), "1") == 0;
  return m;
}
static int tid(void) { return (int)syscall(SYS_gettid); }
static int made(int fd, int is_active) { /* fd: the kernel fd behind a fake LDP fd */
  if (fd >= 0 && fd < FAKE_FDS) {
    owner[fd] = tid();
    active[fd] = (unsigned char)is_active;
  }
  return fd;
}
static void activate(int fd) {
  if (fd >= 0 && fd < FAKE_FDS) active[fd] = 1;
}
/* 0 if this thread may use fd (a fake LDP fd), else -1 with EBADFD. */
static int foreign(int fd) {
  if (fd < FAKE_LDP_BASE || !mt_mode()) return 0;
  int kf = k(fd);
  if (kf >= FAKE_FDS || !active[kf] || owner[kf] == tid()) {
    if (kf < FAKE_FDS && !active[kf]) owner[kf] = tid(); /* a closed session migrates */
    return 0;
  }
  errno = EBADFD;
  return -1;
}
#define GUARD(fd) \
  if (foreign(fd)) return -1

__attribute__((constructor)) static void fake_attach(void) {
  /* What VCL does while LDP's constructor attaches to VPP: calls through the global scope. */
  struct sockaddr_un su = {.sun_family = AF_UNIX, .sun_path = "/nonexistent/fake-vpp-sock"};
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) abort();
  if (connect(fd, (struct sockaddr *)&su, sizeof su) == 0 || errno != ENOENT) abort();
  if (close(fd) != 0) abort();
  /* A VCL with a TCP API socket makes an AF_INET socket here: when we are being dlopen'ed
   * lazily, the interposer must keep it on the kernel rather than re-enter its LDP loading. */
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
  to.sin_addr.s_addr = htonl(0x7f000002);
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  if (u < 0 || sendto(u, "x", 1, 0, (struct sockaddr *)&to, sizeof to) != 1) abort();
  int (*path_of)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "vcl_dualstack_path");
  Dl_info self;
  const char *lazy = getenv("VCL_DUALSTACK_LDP");
  int dlopened = lazy && dladdr((void *)fake_attach, &self) && strcmp(self.dli_fname, lazy) == 0;
  if (path_of && dlopened && path_of(u) != 1) abort();
  close(u);
}

EXPORT int socket(int d, int t, int p) { return v(made(REAL(int, socket, int, int, int)(d, t, p), 0)); }
/* FAKE_LDP_TAKEN_PORT=N: VPP's session table already has a listener on port N (another
 * pod's, in a shared table): a bind there fails as VCL's does. */
static int taken(const struct sockaddr *a) {
  const char *v = getenv("FAKE_LDP_TAKEN_PORT");
  if (!v || !a || (a->sa_family != AF_INET && a->sa_family != AF_INET6)) return 0;
  int port = ntohs(a->sa_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                           : ((const struct sockaddr_in6 *)a)->sin6_port);
  return port == atoi(v);
}
EXPORT int bind(int fd, const struct sockaddr *a, socklen_t l) {
  if (fd >= FAKE_LDP_BASE && taken(a)) {
    errno = EADDRINUSE;
    return -1;
  }
  return REAL(int, bind, int, const struct sockaddr *, socklen_t)(k(fd), a, l);
}
EXPORT int connect(int fd, const struct sockaddr *a, socklen_t l) {
  GUARD(fd);
  /* VCL 26.06 takes ::ffff:a.b.c.d for an IPv6 address and fails at once (ENOTCONN). */
  if (fd >= FAKE_LDP_BASE && a && a->sa_family == AF_INET6 &&
      IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr)) {
    errno = ENOTCONN;
    return -1;
  }
  /* ... and takes an IPv4 address on any session: the kernel's IPv6 socket wants it mapped. */
  struct sockaddr_in6 mapped;
  struct sockaddr_storage own;
  socklen_t ol = sizeof own;
  if (fd >= FAKE_LDP_BASE && a && a->sa_family == AF_INET &&
      REAL(int, getsockname, int, struct sockaddr *, socklen_t *)(k(fd), (struct sockaddr *)&own,
                                                                  &ol) == 0 &&
      own.ss_family == AF_INET6) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
    memset(&mapped, 0, sizeof mapped);
    mapped.sin6_family = AF_INET6;
    mapped.sin6_port = v4->sin_port;
    mapped.sin6_addr.s6_addr[10] = mapped.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&mapped.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
    a = (const struct sockaddr *)&mapped;
    l = sizeof mapped;
  }
  int rc = REAL(int, connect, int, const struct sockaddr *, socklen_t)(k(fd), a, l);
  if (fd >= FAKE_LDP_BASE && (rc == 0 || errno == EINPROGRESS)) activate(k(fd));
  return rc;
}
EXPORT int listen(int fd, int b) {
  GUARD(fd);
  int rc = REAL(int, listen, int, int)(k(fd), b);
  if (fd >= FAKE_LDP_BASE && rc == 0) activate(k(fd));
  return rc;
}
EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *l, int f) {
  GUARD(fd);
  return v(made(REAL(int, accept4, int, struct sockaddr *, socklen_t *, int)(k(fd), a, l, f), 1));
}
/* FAKE_LDP_CLOSE_SIGNALS=1: as VCL 26.06 does, closing a listener signals VPP by
 * write()-ing its message queue's eventfd, a call that goes through the interposer; and
 * closing the same session again from inside that close deadlocks VCL for good on the
 * session's spinlock (seen: a server spinning at 100% CPU). The fake aborts instead. */
static __thread int closing = -1;
EXPORT int close(int fd) {
  static int signals = -1, efd = -1;
  if (signals < 0) signals = getenv("FAKE_LDP_CLOSE_SIGNALS") != NULL;
  if (!signals || fd < FAKE_LDP_BASE) return REAL(int, close, int)(k(fd));
  if (closing == fd) {
    static const char msg[] = "fake ldp: session closed again inside its own close\n";
    REAL(ssize_t, write, int, const void *, size_t)(2, msg, sizeof msg - 1);
    abort();
  }
  if (efd < 0) efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int outer = closing;
  closing = fd;
  uint64_t one = 1;
  if (efd >= 0 && write(efd, &one, sizeof one) < 0) { /* through the interposer */
  }
  closing = outer;
  return REAL(int, close, int)(k(fd));
}
EXPORT int shutdown(int fd, int h) { return REAL(int, shutdown, int, int)(k(fd), h); }
EXPORT ssize_t read(int fd, void *b, size_t n) {
  GUARD(fd);
  return REAL(ssize_t, read, int, void *, size_t)(k(fd), b, n);
}
EXPORT ssize_t write(int fd, const void *b, size_t n) {
  GUARD(fd);
  return REAL(ssize_t, write, int, const void *, size_t)(k(fd), b, n);
}
EXPORT ssize_t readv(int fd, const struct iovec *i, int n) {
  GUARD(fd);
  return REAL(ssize_t, readv, int, const struct iovec *, int)(k(fd), i, n);
}
EXPORT ssize_t writev(int fd, const struct iovec *i, int n) {
  GUARD(fd);
  return REAL(ssize_t, writev, int, const struct iovec *, int)(k(fd), i, n);
}
EXPORT ssize_t recv(int fd, void *b, size_t n, int f) {
  GUARD(fd);
  return REAL(ssize_t, recv, int, void *, size_t, int)(k(fd), b, n, f);
}
EXPORT ssize_t send(int fd, const void *b, size_t n, int f) {
  GUARD(fd);
  return REAL(ssize_t, send, int, const void *, size_t, int)(k(fd), b, n, f);
}
EXPORT ssize_t recvfrom(int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l) {
  return REAL(ssize_t, recvfrom, int, void *, size_t, int, struct sockaddr *, socklen_t *)(
      k(fd), b, n, f, a, l);
}
EXPORT ssize_t sendto(int fd, const void *b, size_t n, int f, const struct sockaddr *a,
                      socklen_t l) {
  return REAL(ssize_t, sendto, int, const void *, size_t, int, const struct sockaddr *,
              socklen_t)(k(fd), b, n, f, a, l);
}
EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int f) {
  return REAL(ssize_t, recvmsg, int, struct msghdr *, int)(k(fd), m, f);
}
EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int f) {
  return REAL(ssize_t, sendmsg, int, const struct msghdr *, int)(k(fd), m, f);
}
EXPORT int recvmmsg(int fd, struct mmsghdr *m, unsigned int n, int f, struct timespec *t) {
  return REAL(int, recvmmsg, int, struct mmsghdr *, unsigned int, int, struct timespec *)(
      k(fd), m, n, f, t);
}
EXPORT int sendmmsg(int fd, struct mmsghdr *m, unsigned int n, int f) {
  return REAL(int, sendmmsg, int, struct mmsghdr *, unsigned int, int)(k(fd), m, n, f);
}
EXPORT ssize_t sendfile(int o, int i, off_t *off, size_t n) {
  return REAL(ssize_t, sendfile, int, int, off_t *, size_t)(k(o), k(i), off, n);
}
/* Options VCL 26.06 does not know answer EOPNOTSUPP (seen with grpcio on a real VPP). */
static int vcl_unknown(int l, int o) {
  if ((l == SOL_SOCKET && o == SO_RCVLOWAT) || (l == IPPROTO_TCP && o == 18 /* TCP_USER_TIMEOUT */)) {
    errno = EOPNOTSUPP;
    return 1;
  }
  return 0;
}
EXPORT int getsockopt(int fd, int l, int o, void *val, socklen_t *len) {
  if (vcl_unknown(l, o)) return -1;
  return REAL(int, getsockopt, int, int, int, void *, socklen_t *)(k(fd), l, o, val, len);
}
EXPORT int setsockopt(int fd, int l, int o, const void *val, socklen_t len) {
  if (vcl_unknown(l, o)) return -1;
  return REAL(int, setsockopt, int, int, int, const void *, socklen_t)(k(fd), l, o, val, len);
}
EXPORT int getsockname(int fd, struct sockaddr *a, socklen_t *l) {
  return REAL(int, getsockname, int, struct sockaddr *, socklen_t *)(k(fd), a, l);
}
EXPORT int getpeername(int fd, struct sockaddr *a, socklen_t *l) {
  return REAL(int, getpeername, int, struct sockaddr *, socklen_t *)(k(fd), a, l);
}
EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  return REAL(int, fcntl, int, int, unsigned long)(k(fd), cmd, arg);
}
EXPORT int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  return REAL(int, ioctl, int, unsigned long, void *)(k(fd), req, arg);
}
EXPORT int poll(struct pollfd *p, nfds_t n, int t) {
  for (nfds_t i = 0; i < n; i++) p[i].fd = k(p[i].fd);
  int rc = REAL(int, poll, struct pollfd *, nfds_t, int)(p, n, t);
  return rc; /* the caller's array is its own copy */
}
/* LDP 26.06 has no ppoll (ENOSYS); neither do we. */
EXPORT int ppoll(struct pollfd *p, nfds_t n, const struct timespec *t, const sigset_t *m) {
  errno = ENOSYS;
  return -1;
}
/* With FAKE_LDP_MT=1 an epoll set belongs to its thread's worker too: another thread of
 * the same process waiting on it gets EBADFD, as from VCL 26.06 (grpc's shared pollers). */
static int ep_pid[FAKE_FDS];
EXPORT int epoll_create1(int f) {
  int fd = REAL(int, epoll_create1, int)(f);
  if (fd >= 0 && fd < FAKE_FDS && mt_mode()) {
    made(fd, 1);
    ep_pid[fd] = getpid();
  }
  return v(fd);
}
static int foreign_epoll(int ep) {
  int kf = k(ep);
  if (!mt_mode() || ep < FAKE_LDP_BASE || kf >= FAKE_FDS || ep_pid[kf] != getpid()) return 0;
  return foreign(ep);
}
EXPORT int epoll_ctl(int ep, int op, int fd, struct epoll_event *e) {
  GUARD(fd);
  return REAL(int, epoll_ctl, int, int, int, struct epoll_event *)(k(ep), op, k(fd), e);
}
/* As VCL 26.06 does (vcl_epoll_wait_handle_mq_event, seen with nginx on a real VPP): the
 * peer's close is reported as EPOLLRDHUP alone, without the EPOLLIN the kernel adds. */
static int vcl_like(struct epoll_event *e, int n) {
  for (int i = 0; i < n; i++)
    if (e[i].events & EPOLLRDHUP) e[i].events &= ~(uint32_t)EPOLLIN;
  return n;
}
/* And as VCL 26.06 may: an infinite wait that returns 0 once, woken with nothing to say. */
static int spurious_zero(int t) {
  static int done;
  if (t >= 0 || done || !getenv("FAKE_LDP_SPURIOUS_WAKEUP")) return 0;
  done = 1;
  return 1;
}
EXPORT int epoll_wait(int ep, struct epoll_event *e, int n, int t) {
  if (foreign_epoll(ep)) return -1;
  if (spurious_zero(t)) return 0;
  return vcl_like(e, REAL(int, epoll_wait, int, struct epoll_event *, int, int)(k(ep), e, n, t));
}
EXPORT int epoll_pwait(int ep, struct epoll_event *e, int n, int t, const sigset_t *m) {
  if (foreign_epoll(ep)) return -1;
  if (spurious_zero(t)) return 0;
  return vcl_like(e, REAL(int, epoll_pwait, int, struct epoll_event *, int, int,
                          const sigset_t *)(k(ep), e, n, t, m));
}
