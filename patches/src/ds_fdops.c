/* fd lifetime and flags: close, dup/dup2/dup3/F_DUPFD, fcntl, ioctl. */
#include "dualstack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/close_range.h>
#include <dlfcn.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

/* Forgets what app fd `fd` named (a socket or an epoll); the caller closes the fd itself. */
static void ds_detach(int fd) {
  struct ds_entry *e = ds_entry_get(fd);
  if (DS_LIKELY(!e)) return;
  if (!atomic_load_explicit(&e->sock, memory_order_relaxed) &&
      !atomic_load_explicit(&e->ep, memory_order_relaxed))
    return;
  ds_lock();
  struct ds_sock *s = atomic_exchange(&e->sock, NULL);
  struct ds_epoll *ep = atomic_exchange(&e->ep, NULL);
  if (s) ds_sock_release(s);
  if (ep) ds_epoll_release(ep);
  ds_unlock();
}

/* Makes app fd `to` name what `from` names (after a successful dup of the kernel fd). */
static void ds_attach_copy(int from, int to) {
  struct ds_entry *src = ds_entry_get(from);
  if (!src || from == to) return;
  ds_lock();
  struct ds_sock *s = atomic_load(&src->sock);
  struct ds_epoll *ep = atomic_load(&src->ep);
  struct ds_entry *dst = (s || ep) ? ds_entry_make(to) : NULL;
  if (dst) {
    if (s) s->refs++;
    if (ep) ep->refs++;
    ds_entry_install(dst, s, ep);
  }
  ds_unlock();
}

DS_EXPORT int close(int fd) {
  ds_detach(fd);
  return LIBC(close)(fd);
}

/* Runtimes that bypass libc's wrappers: libuv (Node.js) closes with syscall(SYS_close,
 * fd), which left the VCL session of a moved socket open for good. The socket calls are
 * sent to our wrappers; everything else goes to libc's syscall() with the six argument
 * registers, as glibc's own syscall() reads them, whatever nr takes: the sixth then comes
 * from the caller's stack, which ASan calls an underflow when the caller passed fewer
 * (syscall(SYS_gettid)); the value is never used then. */
__attribute__((no_sanitize("address")))
DS_EXPORT long syscall(long nr, ...) {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  switch (nr) {
  case SYS_close:
    return close((int)a[0]);
  case SYS_close_range:
    return close_range((unsigned int)a[0], (unsigned int)a[1], (int)a[2]);
  default:
    break;
  }
  static long (*real)(long, ...);
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* close_range(2) (glibc >= 2.34): forget the range first, unless it only sets close-on-exec. */
DS_EXPORT int close_range(unsigned int first, unsigned int last, int flags) {
  if (!LIBC(close_range)) {
    errno = ENOSYS;
    return -1;
  }
  if (!(flags & CLOSE_RANGE_CLOEXEC)) {
    unsigned int end = last < DS_MAX_FD - 1 ? last : DS_MAX_FD - 1;
    for (unsigned int fd = first; fd <= end && fd >= first; fd++) ds_detach((int)fd);
  }
  return LIBC(close_range)(first, last, flags);
}

DS_EXPORT int dup(int fd) {
  int nfd = LIBC(dup)(fd);
  if (nfd >= 0) ds_attach_copy(fd, nfd);
  return nfd;
}

static int ds_dup_to(int old, int new, int flags, int is_dup2) {
  if (old == new) return is_dup2 ? LIBC(dup2)(old, new) : LIBC(dup3)(old, new, flags);
  if (LIBC(fcntl)(old, F_GETFD) < 0) return -1; /* EBADF: `new` must stay untouched */
  ds_detach(new);                                /* dup2 closes `new` first */
  int rc = is_dup2 ? LIBC(dup2)(old, new) : LIBC(dup3)(old, new, flags);
  if (rc >= 0) ds_attach_copy(old, rc);
  return rc;
}

DS_EXPORT int dup2(int old, int new) { return ds_dup_to(old, new, 0, 1); }
DS_EXPORT int dup3(int old, int new, int flags) { return ds_dup_to(old, new, flags, 0); }

static int ds_fcntl(int fd, int cmd, unsigned long arg) {
  struct ds_sock *s = ds_sock_of(fd);
  if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
    int nfd = LIBC(fcntl)(fd, cmd, arg);
    if (nfd >= 0) ds_attach_copy(fd, nfd);
    return nfd;
  }
  int path = s ? ds_path_of(s) : DS_KERNEL;
  if (DS_LIKELY(path == DS_KERNEL) || cmd == F_GETFD || cmd == F_SETFD)
    return LIBC(fcntl)(fd, cmd, arg); /* close-on-exec belongs to the app's fd */
  if (ds_split_listener(s)) path = DS_BOTH; /* its VCL listeners are non-blocking inside */
  if (path == DS_VCL) return VCL(fcntl)(atomic_load(&s->vfd), cmd, arg);
  if (path == DS_BOTH && cmd == F_GETFL) {
    int fl = LIBC(fcntl)(fd, F_GETFL);
    return fl < 0 ? fl : (fl & ~O_NONBLOCK) | (s->app_nonblock ? O_NONBLOCK : 0);
  }
  if (path == DS_BOTH && cmd == F_SETFL) { /* both listeners stay non-blocking inside */
    s->app_nonblock = (arg & O_NONBLOCK) != 0;
    return LIBC(fcntl)(fd, F_SETFL, arg | O_NONBLOCK);
  }
  int rc = LIBC(fcntl)(fd, cmd, arg);
  if (rc == 0 && cmd == F_SETFL && path == DS_PENDING) s->app_nonblock = (arg & O_NONBLOCK) != 0;
  return rc;
}

/* The third argument is read as an unsigned long whatever cmd is, as glibc itself does. */
DS_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  return ds_fcntl(fd, cmd, arg);
}

/* glibc >= 2.28 also exports fcntl64 (what LFS builds call); same thing on 64-bit. */
DS_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

DS_EXPORT int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  struct ds_sock *s = ds_sock_of(fd);
  int path = s ? ds_path_of(s) : DS_KERNEL;
  if (DS_LIKELY(path == DS_KERNEL)) return LIBC(ioctl)(fd, req, arg);
  if (ds_split_listener(s)) path = DS_BOTH;
  if (path == DS_VCL) return VCL(ioctl)(atomic_load(&s->vfd), req, arg);
  if (path == DS_BOTH && req == FIONBIO) {
    s->app_nonblock = arg && *(int *)arg;
    return 0;
  }
  int rc = LIBC(ioctl)(fd, req, arg);
  if (rc == 0 && req == FIONBIO && path == DS_PENDING) s->app_nonblock = arg && *(int *)arg;
  return rc;
}
