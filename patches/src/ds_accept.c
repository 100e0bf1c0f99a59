/* accept() on moved and both-stacks listeners: the app always gets a kernel fd. */
#include "dualstack.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* A connection accepted on the VCL side gets a placeholder: a fresh kernel socket that holds
 * the fd number (and answers fstat as a socket) while every call goes to the VCL fd. */
static int ds_adopt(int listen_fd, struct ds_sock *ls, int vfd, int flags) {
  int ph = LIBC(socket)(ls->domain, SOCK_STREAM | (flags & SOCK_CLOEXEC), 0);
  if (ph < 0) {
    int saved = errno;
    VCL(close)(vfd);
    errno = saved;
    return -1;
  }
  ds_lock();
  struct ds_entry *e = ds_entry_make(ph);
  struct ds_sock *s = e ? ds_sock_new(ls->domain, SOCK_STREAM, ls->protocol) : NULL;
  if (s) {
    s->app_nonblock = (flags & SOCK_NONBLOCK) != 0;
    if (ds_config()->mt_workers) {
      s->owner_tid = ds_self_tid();
      s->owner_pid = getpid();
    }
    s->accepted = 1;
    atomic_store(&s->vfd, vfd);
    atomic_store(&s->path, DS_VCL);
    ds_entry_install(e, s, NULL);
    if (ds_conns_counting()) ds_conn_opened(s, DS_CONN_VPP);
  }
  ds_unlock();
  if (!s) {
    VCL(close)(vfd);
    LIBC(close)(ph);
    errno = ENOMEM;
    return -1;
  }
  DS_DEBUG("fd %d accepted on fd %d from vcl", ph, listen_fd);
  return ph;
}

/* A connection accepted on the kernel side, tracked only to be counted (ds_conns.c) until
 * its last fd closes; on the kernel in every other respect. Returns c. */
static int ds_kernel_accepted(int c, struct ds_sock *ls) {
  if (!ds_conns_counting()) return c;
  int saved = errno;
  /* Our own copy of the peer: the app's buffer may be absent or too small for it. */
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  const struct sockaddr *from =
      LIBC(getpeername)(c, (struct sockaddr *)&peer, &plen) == 0 ? (struct sockaddr *)&peer
                                                                 : NULL;
  ds_lock();
  struct ds_entry *e = ds_entry_make(c);
  struct ds_sock *s = e ? ds_sock_new(ls->domain, SOCK_STREAM, ls->protocol) : NULL;
  if (s) {
    atomic_store(&s->path, DS_KERNEL);
    ds_entry_install(e, s, NULL);
    ds_conn_opened(s, ds_conn_class_of(from));
  }
  ds_unlock();
  errno = saved;
  return c;
}

/* A listener with more than one side (both stacks, a dual [::] listener's two VCL
 * listeners, per-thread VCL listeners): take whichever has a connection; block (if the
 * app's listener is blocking) by polling them all, since a blocking accept on one would
 * starve the others. */
static int ds_accept_both(int fd, struct ds_sock *s, struct sockaddr *sa, socklen_t *len,
                          int flags) {
  int vfd = ds_thread_vfd(fd, s);
  if (vfd < 0) return -1;
  int vfd4 = ds_thread_vfd4(s);
  int both = ds_path_of(s) == DS_BOTH;
  for (;;) {
    socklen_t keep = len ? *len : 0;
    int c = both ? LIBC(accept4)(fd, sa, len, flags) : -1;
    if (c >= 0) {
      DS_DEBUG("fd %d accepted on fd %d from kernel", c, fd);
      return ds_kernel_accepted(c, s);
    }
    if (both && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    int vfds[2] = {vfd, vfd4};
    for (int i = 0; i < 2 && vfds[i] >= 0; i++) {
      if (len) *len = keep;
      int v = VCL(accept4)(vfds[i], sa, len, flags);
      if (v >= 0) { /* an IPv4 client of a [::] listener: as ::ffff:a.b.c.d */
        ds_as_family(s, 0, sa, len, keep);
        return ds_adopt(fd, s, v, flags);
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    }
    if (s->app_nonblock) return -1;
    struct pollfd p[3] = {{.fd = vfd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    nfds_t n = 1;
    if (both) n++;
    if (vfd4 >= 0) p[n++] = (struct pollfd){.fd = vfd4, .events = POLLIN};
    if (VCL(poll)(p, n, -1) < 0 && errno != EINTR) return -1;
  }
}

DS_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags) {
  struct ds_sock *s = ds_sock_of(fd);
  int path = s ? ds_path_of(s) : DS_KERNEL;
  if (DS_LIKELY(path != DS_VCL && path != DS_BOTH)) {
    int c = LIBC(accept4)(fd, sa, len, flags);
    return c >= 0 && s ? ds_kernel_accepted(c, s) : c;
  }
  int vfd = ds_thread_vfd(fd, s); /* makes the per-thread listeners when it is time */
  if (ds_split_listener(s)) return ds_accept_both(fd, s, sa, len, flags);
  if (vfd < 0) return -1;
  socklen_t room = len ? *len : 0;
  int v = VCL(accept4)(vfd, sa, len, flags);
  if (v < 0) return -1;
  ds_as_family(s, 0, sa, len, room);
  return ds_adopt(fd, s, v, flags);
}

DS_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len) {
  return accept4(fd, sa, len, 0);
}
