/* Readiness: poll/ppoll, select/pselect (through poll: LDP fds overflow an fd_set) and
 * epoll. An app epoll stays a kernel epoll; once a moved socket joins it, a "shadow" epoll on
 * the VCL side holds the moved sockets plus the app's epoll itself, and waits go there. */
#include "dualstack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

/* epoll data marking the app's own (nested) kernel epoll inside its shadow, and the
 * eventfd that wakes threads blocked on the kernel epoll when its shadow appears. */
#define DS_NESTED_MARK 0xfeedfacecafe0d5dULL
#define DS_KICK_MARK 0xfeedfacecafe0d5eULL

static int ds_ms_from_ts(const struct timespec *t) {
  if (!t) return -1;
  long long ms = (long long)t->tv_sec * 1000 + (t->tv_nsec + 999999) / 1000000;
  return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static long long ds_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Polls through the VCL side if any fd is moved; -2 if none is (the caller uses libc).
 * A both-stacks listener is polled as its kernel fd plus its VCL fd. LDP has no ppoll,
 * so a signal mask is applied around poll (not atomically: see README). */
static int ds_poll_translated(struct pollfd *fds, nfds_t n, int timeout, const sigset_t *mask) {
  nfds_t extra = 0;
  int any = 0;
  for (nfds_t i = 0; i < n; i++) {
    struct ds_sock *s = ds_sock_of(fds[i].fd);
    int path = s ? ds_path_of(s) : DS_KERNEL;
    any |= path == DS_VCL || path == DS_BOTH;
    extra += (path == DS_BOTH) + (s && s->dual);
  }
  if (DS_LIKELY(!any)) return -2;
  struct pollfd local[64];
  nfds_t local_owner[64], *owner = local_owner;
  struct pollfd *t = local;
  if (n + extra > 64) {
    t = malloc((n + extra) * (sizeof *t + sizeof *owner));
    if (!t) {
      errno = ENOMEM;
      return -1;
    }
    owner = (nfds_t *)(t + n + extra);
  }
  nfds_t k = n;
  for (nfds_t i = 0; i < n; i++) {
    t[i] = fds[i];
    struct ds_sock *s = ds_sock_of(fds[i].fd);
    int path = s ? ds_path_of(s) : DS_KERNEL;
    int vfd = s && path != DS_KERNEL && path != DS_PENDING ? ds_thread_vfd(fds[i].fd, s) : -1;
    if (path == DS_VCL) t[i].fd = vfd;
    if (path == DS_BOTH) {
      t[k] = (struct pollfd){.fd = vfd, .events = fds[i].events};
      owner[k++ - n] = i;
    }
    int vfd4 = s && s->dual ? ds_thread_vfd4(s) : -1;
    if (vfd4 >= 0) { /* a dual [::] listener's IPv4 VCL listener */
      t[k] = (struct pollfd){.fd = vfd4, .events = fds[i].events};
      owner[k++ - n] = i;
    }
  }
  sigset_t old;
  if (mask) pthread_sigmask(SIG_SETMASK, mask, &old);
  int rc = VCL(poll)(t, k, timeout);
  int saved = errno;
  if (mask) pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc >= 0) {
    for (nfds_t i = 0; i < n; i++) fds[i].revents = t[i].revents;
    for (nfds_t j = n; j < k; j++) fds[owner[j - n]].revents |= t[j].revents;
    /* The peer's close is readable (read() returns 0), as on the kernel. */
    for (nfds_t i = 0; i < n; i++)
      if ((fds[i].events & POLLIN) && (fds[i].revents & (POLLRDHUP | POLLHUP)))
        fds[i].revents |= POLLIN;
    rc = 0;
    for (nfds_t i = 0; i < n; i++) rc += fds[i].revents != 0;
  }
  if (t != local) free(t);
  errno = saved;
  return rc;
}

DS_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  ds_reap_listeners();
  int rc = ds_poll_translated(fds, n, timeout, NULL);
  return rc == -2 ? LIBC(poll)(fds, n, timeout) : rc;
}

DS_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *m) {
  int rc = ds_poll_translated(fds, n, ds_ms_from_ts(t), m);
  return rc == -2 ? LIBC(ppoll)(fds, n, t, m) : rc;
}

DS_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof *fds < n) __builtin_trap();
  return poll(fds, n, timeout);
}

DS_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t,
                          const sigset_t *m, size_t fdslen) {
  if (fdslen / sizeof *fds < n) __builtin_trap();
  return ppoll(fds, n, t, m);
}

static int ds_select_any_moved(int nfds, fd_set *r, fd_set *w, fd_set *e) {
  for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
    if (!((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))) continue;
    struct ds_sock *s = ds_sock_of(fd);
    int path = s ? ds_path_of(s) : DS_KERNEL;
    if (path == DS_VCL || path == DS_BOTH) return 1;
  }
  return 0;
}

/* select() over poll(); the timeout is not updated with the time left (POSIX allows it). */
static int ds_select_poll(int nfds, fd_set *r, fd_set *w, fd_set *e, int timeout,
                          const sigset_t *mask) {
  struct pollfd *p = calloc((size_t)(nfds > 0 ? nfds : 1), sizeof *p);
  if (!p) {
    errno = ENOMEM;
    return -1;
  }
  nfds_t n = 0;
  for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
    short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) | (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                       (e && FD_ISSET(fd, e) ? POLLPRI : 0));
    if (ev) p[n++] = (struct pollfd){.fd = fd, .events = ev};
  }
  int rc = ds_poll_translated(p, n, timeout, mask);
  if (rc == -2) {
    sigset_t old;
    if (mask) pthread_sigmask(SIG_SETMASK, mask, &old);
    rc = LIBC(poll)(p, n, timeout);
    if (mask) pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (rc >= 0) {
    for (nfds_t i = 0; i < n; i++) {
      if (p[i].revents & POLLNVAL) {
        free(p);
        errno = EBADF;
        return -1;
      }
    }
    if (r) FD_ZERO(r);
    if (w) FD_ZERO(w);
    if (e) FD_ZERO(e);
    rc = 0;
    for (nfds_t i = 0; i < n; i++) {
      short re = p[i].revents, ev = p[i].events;
      if ((ev & POLLIN) && (re & (POLLIN | POLLHUP | POLLRDHUP | POLLERR))) FD_SET(p[i].fd, r), rc++;
      if ((ev & POLLOUT) && (re & (POLLOUT | POLLERR))) FD_SET(p[i].fd, w), rc++;
      if ((ev & POLLPRI) && (re & POLLPRI)) FD_SET(p[i].fd, e), rc++;
    }
  }
  int saved = errno;
  free(p);
  errno = saved;
  return rc;
}

DS_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
  if (DS_LIKELY(!ds_select_any_moved(nfds, r, w, e))) return LIBC(select)(nfds, r, w, e, tv);
  int ms = tv ? (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000) : -1;
  return ds_select_poll(nfds, r, w, e, ms, NULL);
}

DS_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
                      const sigset_t *m) {
  if (DS_LIKELY(!ds_select_any_moved(nfds, r, w, e))) return LIBC(pselect)(nfds, r, w, e, t, m);
  return ds_select_poll(nfds, r, w, e, ds_ms_from_ts(t), m);
}

/* ---- epoll ---- */

static int ds_track_epoll(int epfd) {
  if (epfd < 0 || !ds_config()->vcl_enabled) return epfd;
  ds_lock();
  struct ds_entry *e = ds_entry_make(epfd);
  struct ds_epoll *ep = e ? ds_epoll_new() : NULL;
  if (ep) ds_entry_install(e, NULL, ep);
  ds_unlock();
  return epfd;
}

DS_EXPORT int epoll_create1(int flags) { return ds_track_epoll(LIBC(epoll_create1)(flags)); }

DS_EXPORT int epoll_create(int size) {
  if (size <= 0) {
    errno = EINVAL;
    return -1;
  }
  return epoll_create1(0);
}

/* LDP 26.06 (ldp_epoll_pwait_eventfd) adds its worker's message-queue eventfd to an epoll's
 * libc side once per worker (ldpw->mq_epfd_added), not once per epoll, and clears that flag
 * whenever any VCL epoll is closed. So a second shadow in a worker never wakes for VCL
 * events, and after a close the next wait fails with EEXIST (grpc's pollers: "epoll_wait
 * error: File exists"). We add the eventfd to each new shadow's libc side ourselves
 * (add), and on EEXIST take it out (del) so that LDP's own add succeeds. No-op where the
 * VCL side is not stock LDP (CI). */
static void ds_ldp_mq_fix(int shadow, int add) {
  static int (*libc_epfd_of)(uint32_t);
  static int (*mq_fd)(void);
  static int sid_bit = -1;
  if (sid_bit < 0) {
    const char *v = getenv("LDP_SID_BIT");
    sid_bit = v && *v ? atoi(v) : 5; /* LDP's own default */
    libc_epfd_of = (int (*)(uint32_t))ds_vcl_sym("vls_get_libc_epfd");
    mq_fd = (int (*)(void))ds_vcl_sym("vppcom_mq_epoll_fd");
  }
  if (!libc_epfd_of || !mq_fd || sid_bit <= 0 || sid_bit > 30 || shadow < (1 << sid_bit))
    return;
  int libc_epfd = libc_epfd_of((uint32_t)(shadow - (1 << sid_bit))), mq = mq_fd();
  if (libc_epfd <= 0 || mq < 0) return;
  int saved = errno;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = mq};
  LIBC(epoll_ctl)(libc_epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, mq, add ? &ev : NULL);
  errno = saved;
}

int ds_epoll_shadow(int epfd, struct ds_epoll *ep) {
  int shadow = atomic_load(&ep->shadow);
  if (shadow >= 0) return shadow;
  shadow = VCL(epoll_create1)(EPOLL_CLOEXEC);
  if (shadow < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DS_NESTED_MARK};
  if (VCL(epoll_ctl)(shadow, EPOLL_CTL_ADD, epfd, &ev) != 0) {
    int saved = errno;
    VCL(close)(shadow);
    errno = saved;
    return -1;
  }
  ds_ldp_mq_fix(shadow, 1);
  atomic_store(&ep->shadow, shadow);
  DS_DEBUG("epoll fd %d: VCL-side epoll created for moved sockets", epfd);
  int waiting = atomic_load(&ep->kernel_waiters);
  if (waiting > 0 && ep->kick < 0) {
    /* Threads already blocked in the kernel's epoll_wait on epfd (grpc's pollers wait
     * before the listener joins) would never see the moved socket: a readable eventfd
     * (level-triggered, so every waiter wakes) sends them back through us to the shadow.
     * The last of them takes it out again (ds_drop_kick). */
    int kick = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event kev = {.events = EPOLLIN, .data.u64 = DS_KICK_MARK};
    if (kick >= 0 && LIBC(epoll_ctl)(epfd, EPOLL_CTL_ADD, kick, &kev) == 0) {
      ep->kick = kick;
      DS_DEBUG("epoll fd %d: %d waiting thread(s) sent to the VCL-side epoll", epfd, waiting);
    } else if (kick >= 0) {
      LIBC(close)(kick);
    }
  }
  return shadow;
}

/* Drops the kick's events from a kernel epoll's answer (*n events); 1 if there was one.
 * The last thread it woke takes it out of the epoll again. */
static int ds_drop_kick(int epfd, struct ds_epoll *ep, struct epoll_event *evs, int *n) {
  int m = 0, seen = 0;
  for (int i = 0; i < *n; i++) {
    if (evs[i].data.u64 == DS_KICK_MARK)
      seen = 1;
    else
      evs[m++] = evs[i];
  }
  *n = m;
  if (!seen) return 0;
  ds_lock();
  if (ep->kick >= 0 && atomic_load(&ep->kernel_waiters) == 0) {
    LIBC(epoll_ctl)(epfd, EPOLL_CTL_DEL, ep->kick, NULL);
    LIBC(close)(ep->kick);
    ep->kick = -1;
  }
  ds_unlock();
  return 1;
}

/* Keeps a pending socket's registrations so they can follow it to the VCL side. */
static void ds_track_reg(struct ds_sock *s, int epfd, struct ds_epoll *ep, int fd, int op,
                         const struct epoll_event *ev) {
  int i = 0;
  while (i < s->nregs && !(s->regs[i].epfd == epfd && s->regs[i].fd == fd &&
                           s->regs[i].epoll_id == ep->id))
    i++;
  if (op == EPOLL_CTL_DEL && i < s->nregs) {
    s->regs[i] = s->regs[--s->nregs];
  } else if (op == EPOLL_CTL_MOD && i < s->nregs && ev) {
    s->regs[i].ev = *ev;
  } else if (op == EPOLL_CTL_ADD && ev) {
    if (s->nregs == s->capregs) {
      int cap = s->capregs ? 2 * s->capregs : 2;
      struct ds_reg *r = realloc(s->regs, (size_t)cap * sizeof *r);
      if (!r) return;
      s->regs = r;
      s->capregs = cap;
    }
    s->regs[s->nregs++] = (struct ds_reg){.epfd = epfd, .fd = fd, .epoll_id = ep->id, .ev = *ev};
  }
}

DS_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  struct ds_sock *s = ds_sock_of(fd);
  int path = s ? ds_path_of(s) : DS_KERNEL;
  if (DS_LIKELY(path == DS_KERNEL)) return LIBC(epoll_ctl)(epfd, op, fd, ev);
  struct ds_epoll *ep = ds_epoll_of(epfd);
  if (!ep) { /* an epoll we never saw created (inherited across exec?): cannot shadow it */
    DS_DEBUG("fd %d: epoll fd %d is unknown, the moved socket cannot join it", fd, epfd);
    return LIBC(epoll_ctl)(epfd, op, fd, ev);
  }
  ds_lock();
  path = ds_path_of(s);
  if (path == DS_PENDING) {
    int rc = LIBC(epoll_ctl)(epfd, op, fd, ev);
    if (rc == 0) ds_track_reg(s, epfd, ep, fd, op, ev);
    ds_unlock();
    return rc;
  }
  int shadow = ds_epoll_shadow(epfd, ep);
  ds_unlock();
  if (shadow < 0) return -1;
  if (path == DS_BOTH && LIBC(epoll_ctl)(epfd, op, fd, ev) != 0) return -1;
  int vfd = ds_thread_vfd(fd, s);
  if (vfd < 0 || VCL(epoll_ctl)(shadow, op, vfd, ev) != 0) return -1;
  int vfd4 = ds_thread_vfd4(s);
  if (vfd4 >= 0 && VCL(epoll_ctl)(shadow, op, vfd4, ev) != 0) /* a dual [::] listener */
    ds_log("fd %d: its IPv4 VCL listener cannot join epoll %d: %s", fd, epfd, strerror(errno));
  return 0;
}

/* Waits on the shadow when there is one; -2 when there is none (the caller uses libc). */
static int ds_epoll_wait_shadow(int epfd, struct epoll_event *evs, int max, int timeout,
                                const sigset_t *mask) {
  struct ds_epoll *ep = ds_epoll_of(epfd);
  int shadow = ep ? atomic_load_explicit(&ep->shadow, memory_order_acquire) : -1;
  if (DS_LIKELY(shadow < 0)) return -2;
  long long deadline = timeout > 0 ? ds_now_ms() + timeout : 0;
  int fixed = 0;
  for (;;) {
    int n = VCL(epoll_pwait)(shadow, evs, max, timeout, mask);
    if (n < 0 && errno == EEXIST && !fixed++) { /* LDP's flag, above */
      ds_ldp_mq_fix(shadow, 0);
      continue;
    }
    if (n < 0 && errno == EBADFD && ds_config()->mt_workers) ds_handoff_epoll(epfd);
    if (n < 0) return n;
    /* VCL 26.06 returns 0 from an infinite wait when woken with nothing to report (its
     * message queue's eventfd); nginx logs "epoll_wait() returned no events without
     * timeout" for each: such a return is not the app's, so wait on. */
    int m = 0, nested = 0;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u64 == DS_NESTED_MARK) {
        nested = 1;
        continue;
      }
      /* VCL 26.06 reports the peer's close as EPOLLRDHUP (or EPOLLHUP) without EPOLLIN;
       * the kernel adds EPOLLIN (read() returns 0), and apps such as nginx only read, and
       * so close, on EPOLLIN: without it they keep the dead session forever. */
      if (evs[i].events & (EPOLLRDHUP | EPOLLHUP)) evs[i].events |= EPOLLIN;
      evs[m++] = evs[i];
    }
    if (nested && m < max) {
      int k = LIBC(epoll_wait)(epfd, evs + m, max - m, 0);
      if (k > 0) ds_drop_kick(epfd, ep, evs + m, &k);
      if (k > 0) m += k;
    }
    if (m > 0 || timeout == 0) return m;
    if (timeout > 0 && (timeout = (int)(deadline - ds_now_ms())) <= 0) return 0;
  }
}

/* A wait on an app epoll: on its shadow once it has one, else on the kernel epoll itself,
 * counted so that a shadow made meanwhile wakes this thread (the kick), which then waits
 * on the shadow for the time left. ts: epoll_pwait2's timeout (else timeout in ms). */
static int ds_epoll_wait_any(int epfd, struct epoll_event *evs, int max, int timeout,
                             const struct timespec *ts, const sigset_t *mask) {
  ds_reap_listeners();
  struct ds_epoll *ep = ds_epoll_of(epfd);
  long long deadline = timeout > 0 ? ds_now_ms() + timeout : 0;
  for (;;) {
    int rc = ds_epoll_wait_shadow(epfd, evs, max, timeout, mask);
    if (rc != -2) return rc;
    if (ep) {
      /* Counted, then the shadow checked again; ds_epoll_shadow stores the shadow, then
       * reads the count (both sequentially consistent): one of us sees the other. */
      atomic_fetch_add(&ep->kernel_waiters, 1);
      if (atomic_load(&ep->shadow) >= 0) { /* made just now: wait there */
        atomic_fetch_sub(&ep->kernel_waiters, 1);
        continue;
      }
    }
    int n = ts ? LIBC(epoll_pwait2)(epfd, evs, max, ts, mask)
               : LIBC(epoll_pwait)(epfd, evs, max, timeout, mask);
    int saved = errno;
    int kicked = 0;
    if (ep) {
      atomic_fetch_sub(&ep->kernel_waiters, 1);
      if (n > 0) kicked = ds_drop_kick(epfd, ep, evs, &n);
    }
    errno = saved;
    if (n != 0 || !kicked || timeout == 0) return n;
    if (timeout > 0 && (timeout = (int)(deadline - ds_now_ms())) <= 0) return 0;
    ts = NULL; /* the shadow wait takes milliseconds */
  }
}

DS_EXPORT int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout) {
  return ds_epoll_wait_any(epfd, evs, max, timeout, NULL, NULL);
}

DS_EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
                          const sigset_t *m) {
  return ds_epoll_wait_any(epfd, evs, max, timeout, NULL, m);
}

DS_EXPORT int epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *t,
                           const sigset_t *m) {
  if (!LIBC(epoll_pwait2)) {
    errno = ENOSYS;
    return -1;
  }
  return ds_epoll_wait_any(epfd, evs, max, ds_ms_from_ts(t), t, m);
}
