/* The data path: read/write and send/recv families, forwarded for moved sockets. A pending
 * socket naming a destination (sendto, sendmsg, sendmmsg) is settled first. */
#include "dualstack.h"

#include <stdio.h>

#define DS_FORWARD(name, fd, ...)                         \
  do {                                                    \
    int vfd_ = ds_moved_fd(fd);                           \
    if (DS_LIKELY(vfd_ < 0)) return LIBC(name)(fd, __VA_ARGS__); \
    return VCL(name)(vfd_, __VA_ARGS__);                  \
  } while (0)

/* Reads also note the peer's EOF (0 from a read that asked for something): a shutdown
 * after it is no half-close anyone waits on (ds_socket.c). */
#define DS_FORWARD_READ(name, asked, fd, ...)             \
  do {                                                    \
    int vfd_ = ds_moved_fd(fd);                           \
    if (DS_LIKELY(vfd_ < 0)) return LIBC(name)(fd, __VA_ARGS__); \
    ssize_t r_ = VCL(name)(vfd_, __VA_ARGS__);            \
    if (DS_UNLIKELY(r_ == 0) && (asked)) ds_peer_eof(fd); \
    return r_;                                            \
  } while (0)

static void ds_peer_eof(int fd) {
  struct ds_sock *s = ds_sock_of(fd);
  if (s) s->peer_eof = 1;
}

DS_EXPORT ssize_t read(int fd, void *buf, size_t n) { DS_FORWARD_READ(read, n > 0, fd, buf, n); }
DS_EXPORT ssize_t write(int fd, const void *buf, size_t n) { DS_FORWARD(write, fd, buf, n); }
DS_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n) {
  DS_FORWARD_READ(readv, n > 0, fd, iov, n);
}
DS_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n) {
  DS_FORWARD(writev, fd, iov, n);
}
DS_EXPORT ssize_t recv(int fd, void *buf, size_t n, int fl) {
  DS_FORWARD_READ(recv, n > 0, fd, buf, n, fl);
}
DS_EXPORT ssize_t send(int fd, const void *buf, size_t n, int fl) {
  DS_FORWARD(send, fd, buf, n, fl);
}
DS_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int fl, struct sockaddr *sa,
                           socklen_t *len) {
  DS_FORWARD_READ(recvfrom, n > 0, fd, buf, n, fl, sa, len);
}
DS_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int fl) {
  DS_FORWARD_READ(recvmsg, m && m->msg_iovlen > 0, fd, m, fl);
}
DS_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int fl, struct timespec *t) {
  DS_FORWARD(recvmmsg, fd, v, n, fl, t);
}

/* Fortified callers (-D_FORTIFY_SOURCE, e.g. curl) reach these instead of read/recv. */
static void ds_chk_fail(size_t n, size_t buflen) {
  if (n > buflen) {
    fprintf(stderr, "*** buffer overflow detected ***: terminated\n");
    __builtin_trap();
  }
}
DS_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
  ds_chk_fail(n, buflen);
  return read(fd, buf, n);
}
DS_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int fl) {
  ds_chk_fail(n, buflen);
  return recv(fd, buf, n, fl);
}
DS_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int fl,
                                 struct sockaddr *sa, socklen_t *len) {
  ds_chk_fail(n, buflen);
  return recvfrom(fd, buf, n, fl, sa, len);
}

/* The moved fd for a send naming sa, settling a pending socket first; -1 for the kernel. */
static int ds_send_target(int fd, const struct sockaddr *sa, socklen_t len) {
  struct ds_sock *s = ds_sock_of(fd);
  if (DS_LIKELY(!s)) return -1;
  int path = ds_path_of(s);
  if (path == DS_PENDING && sa) path = ds_settle(fd, s, sa, len, 0, "sendto");
  return path == DS_VCL ? atomic_load(&s->vfd) : -1;
}

DS_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int fl, const struct sockaddr *sa,
                         socklen_t len) {
  int vfd = ds_send_target(fd, sa, len);
  if (vfd < 0) return LIBC(sendto)(fd, buf, n, fl, sa, len);
  return VCL(sendto)(vfd, buf, n, fl, sa, len);
}

DS_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int fl) {
  int vfd = ds_send_target(fd, m ? m->msg_name : NULL, m ? m->msg_namelen : 0);
  return vfd < 0 ? LIBC(sendmsg)(fd, m, fl) : VCL(sendmsg)(vfd, m, fl);
}

DS_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int fl) {
  const struct msghdr *m = v && n ? &v[0].msg_hdr : NULL;
  int vfd = ds_send_target(fd, m ? m->msg_name : NULL, m ? m->msg_namelen : 0);
  return vfd < 0 ? LIBC(sendmmsg)(fd, v, n, fl) : VCL(sendmmsg)(vfd, v, n, fl);
}

DS_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n) {
  int vout = ds_moved_fd(out), vin = ds_moved_fd(in);
  if (DS_LIKELY(vout < 0 && vin < 0)) return LIBC(sendfile)(out, in, off, n);
  return VCL(sendfile)(vout < 0 ? out : vout, vin < 0 ? in : vin, off, n);
}
DS_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n) {
  return sendfile(out, in, off, n);
}
