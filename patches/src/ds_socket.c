/* socket() and the decision points: bind, connect, listen (sendto in ds_io.c), and the move
 * of a pending socket to the VCL side. */
#include "dualstack.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

DS_EXPORT int socket(int domain, int type, int protocol) {
  int fd = LIBC(socket)(domain, type, protocol);
  int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0 || (domain != AF_INET && domain != AF_INET6) ||
      (base != SOCK_STREAM && base != SOCK_DGRAM) || !ds_config()->vcl_enabled)
    return fd;
  ds_lock();
  struct ds_entry *e = ds_entry_make(fd);
  struct ds_sock *s = e ? ds_sock_new(domain, base, protocol) : NULL;
  if (s) {
    s->app_nonblock = (type & SOCK_NONBLOCK) != 0;
    ds_entry_install(e, s, NULL);
  }
  ds_unlock();
  return fd; /* without room in the table the socket simply stays on the kernel */
}

/* Creates the VCL socket for s and replays what the app did before the decision. */
static int ds_vcl_socket(struct ds_sock *s, int nonblock) {
  int vfd = VCL(socket)(s->domain, s->type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0),
                        s->protocol);
  if (vfd < 0) return -1;
  if (ds_config()->test_mode && ds_config()->mt_workers) { /* CI: per-thread listeners */
    int one = 1;
    VCL(setsockopt)(vfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  for (struct ds_opt *o = s->opts; o; o = o->next) {
    if (VCL(setsockopt)(vfd, o->level, o->name, o->val, o->len) != 0)
      DS_DEBUG("replaying option %d/%d on the VCL socket failed: %s", o->level, o->name,
               strerror(errno));
  }
  return vfd;
}

/* Re-registers the epoll registrations the app made before the decision (under ds_lock). */
static void ds_move_regs(struct ds_sock *s, int vfd, int keep_kernel) {
  for (int i = 0; i < s->nregs; i++) {
    struct ds_reg *r = &s->regs[i];
    struct ds_epoll *ep = ds_epoll_of(r->epfd);
    if (!ep || ep->id != r->epoll_id) continue; /* that epoll was closed since */
    if (!keep_kernel) LIBC(epoll_ctl)(r->epfd, EPOLL_CTL_DEL, r->fd, NULL);
    int shadow = ds_epoll_shadow(r->epfd, ep);
    if (shadow < 0 || VCL(epoll_ctl)(shadow, EPOLL_CTL_ADD, vfd, &r->ev) != 0)
      ds_log("fd %d: cannot move its epoll registration to the VCL side: %s", r->fd,
             strerror(errno));
  }
  s->nregs = 0;
}

/* VCL (VPP 26.06) picks no port for a socket bound to port 0: a listener then reports port
 * 0 from getsockname and nobody can reach it. Take the port from the kernel instead: the
 * app's kernel socket (never used for traffic once moved) is bound to the wildcard, port 0
 * (or already was, by a deferred bind), which reserves a free port, and VCL binds to it. */
static int ds_vcl_bind(int fd, int vfd, const struct sockaddr *sa, socklen_t len) {
  if (ds_config()->test_mode && sa && sa->sa_family == AF_INET6 && ds_is_wildcard(sa)) {
    /* CI's VCL side is a kernel socket: on [::] it serves one family, as VCL's does (VCL
     * stores IPV6_V6ONLY and nothing more: "#VPP-TBD#"); the app's socket keeps its own. */
    int one = 1;
    VCL(setsockopt)(vfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || ds_port(sa) != 0 ||
      len > sizeof(struct sockaddr_storage))
    return VCL(bind)(vfd, sa, len);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int one = 1;
  if (LIBC(getsockname)(fd, (struct sockaddr *)&ss, &sl) != 0 || ds_port((struct sockaddr *)&ss) == 0) {
    struct sockaddr_storage any = {.ss_family = sa->sa_family};
    socklen_t al = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                            : sizeof(struct sockaddr_in6);
    LIBC(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sl = sizeof ss;
    if (LIBC(bind)(fd, (struct sockaddr *)&any, al) != 0 ||
        LIBC(getsockname)(fd, (struct sockaddr *)&ss, &sl) != 0)
      return VCL(bind)(vfd, sa, len); /* no reservation: as asked */
  }
  uint16_t port = ds_port((struct sockaddr *)&ss);
  struct sockaddr_storage want;
  memcpy(&want, sa, len);
  if (want.ss_family == AF_INET)
    ((struct sockaddr_in *)&want)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)&want)->sin6_port = htons(port);
  VCL(setsockopt)(vfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return VCL(bind)(vfd, (struct sockaddr *)&want, len);
}

int ds_settle(int fd, struct ds_sock *s, const struct sockaddr *sa, socklen_t len, int is_bind,
              const char *call) {
  char why[96], addr[64];
  int saved = errno;
  enum ds_path want = ds_decide(sa, len, s->type, is_bind, why, sizeof why);
  if (want != DS_KERNEL && !ds_vcl_available()) {
    want = DS_KERNEL;
    snprintf(why, sizeof why, "VCL unavailable");
  }
  if (want == DS_BOTH && s->type != SOCK_STREAM) want = DS_VCL;
  ds_lock();
  int path = ds_path_of(s);
  if (path != DS_PENDING) { /* another thread (or a dup) settled it first */
    ds_unlock();
    errno = saved;
    return path;
  }
  int vfd = -1;
  if (want != DS_KERNEL) {
    vfd = ds_vcl_socket(s, want == DS_BOTH || s->app_nonblock);
    if (vfd < 0) {
      ds_log("fd %d: VCL socket failed (%s); staying on the kernel", fd, strerror(errno));
      want = DS_KERNEL;
    } else if (want == DS_VCL && s->bound_len &&
               ds_vcl_bind(fd, vfd, (struct sockaddr *)&s->bound, s->bound_len) != 0) {
      ds_log("fd %d: replaying bind on the VCL socket failed: %s", fd, strerror(errno));
    }
  }
  if (want == DS_BOTH) { /* accept() polls both listeners, so neither may block */
    int fl = LIBC(fcntl)(fd, F_GETFL);
    if (fl >= 0) LIBC(fcntl)(fd, F_SETFL, fl | O_NONBLOCK);
  }
  /* A socket moved by connect() joins the epolls only once its connect was issued: a fresh
   * unconnected socket reports EPOLLHUP, which an edge-triggered app would take for a
   * failed connection. connect() moves them (ds_connect_moved). */
  int defer_regs = want == DS_VCL && strcmp(call, "connect") == 0;
  if (vfd >= 0) {
    /* Its VCL worker is this thread's; a listener's are per thread (ds_threads.c). */
    if (ds_config()->mt_workers && !is_bind) {
      s->owner_tid = ds_self_tid();
      s->owner_pid = getpid();
    }
    atomic_store_explicit(&s->vfd, vfd, memory_order_release);
    if (!defer_regs) ds_move_regs(s, vfd, want == DS_BOTH);
  }
  atomic_store_explicit(&s->path, want, memory_order_release);
  if (!defer_regs) ds_sock_forget_pending(s);
  ds_unlock();
  if (ds_config()->debug) {
    ds_format_addr(sa, addr, sizeof addr);
    ds_log("fd %d %s %s -> %s (%s)", fd, call, addr,
           want == DS_KERNEL ? "kernel" : want == DS_VCL ? "vcl" : "both", why);
  }
  errno = saved;
  return want;
}

/* A both-stacks listener whose VCL side VPP refused (its port taken in VPP's session
 * table, VPP out of sessions): the app keeps its kernel listener, as if not injected,
 * rather than failing a bind or listen the kernel accepted. */
static void ds_drop_vcl_side(int fd, struct ds_sock *s, const char *call) {
  int err = errno;
  ds_lock();
  int vfd = atomic_exchange(&s->vfd, -1);
  atomic_store_explicit(&s->path, DS_KERNEL, memory_order_release);
  int fl = LIBC(fcntl)(fd, F_GETFL);
  if (fl >= 0 && !s->app_nonblock) LIBC(fcntl)(fd, F_SETFL, fl & ~O_NONBLOCK);
  if (vfd >= 0) VCL(close)(vfd);
  ds_unlock();
  ds_log("fd %d: VPP refused the listener's VCL side at %s (%s); it listens on the kernel only",
         fd, call, strerror(err));
}

/* Wildcard listener on both stacks: the kernel side binds as asked (its failure is the
 * app's), the VCL side to the same port. Under VCL_DUALSTACK_TEST the VCL side (a second
 * kernel socket in CI) binds 127.0.0.2 (::1) with SO_REUSEPORT so both can exist; see
 * README. */
static int ds_both_bind(int fd, struct ds_sock *s, const struct sockaddr *sa, socklen_t len,
                        int kernel_bound) {
  int vfd = atomic_load(&s->vfd);
  int one = 1;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (ds_config()->test_mode) {
    LIBC(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    VCL(setsockopt)(vfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (!kernel_bound && LIBC(bind)(fd, sa, len) != 0) return -1;
  if (LIBC(getsockname)(fd, (struct sockaddr *)&ss, &sl) != 0) return -1;
  if (ds_config()->test_mode) {
    if (ss.ss_family == AF_INET) {
      ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(0x7f000002);
    } else { /* ::1; a [::] listener's IPv4 VCL listener takes 127.0.0.2 (ds_threads.c) */
      ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    }
  }
  if (VCL(bind)(vfd, (struct sockaddr *)&ss, sl) != 0) ds_drop_vcl_side(fd, s, "bind");
  return 0;
}

DS_EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len) {
  struct ds_sock *s = ds_sock_of(fd);
  if (!s) return LIBC(bind)(fd, sa, len);
  int path = ds_path_of(s);
  s->wild6 = sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6) &&
             IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
  if (path == DS_PENDING && sa && len <= sizeof s->bound &&
      (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && ds_is_wildcard(sa) &&
      ds_port(sa) == 0 && !(ds_config()->test_mode && ds_config()->listen_both)) {
    /* An ephemeral wildcard bind says nothing about where traffic goes (clients do it
     * before connect/sendto): bind the kernel socket, remember it, decide later. */
    int rc = LIBC(bind)(fd, sa, len);
    if (rc == 0) {
      ds_lock();
      memcpy(&s->bound, sa, len);
      s->bound_len = len;
      ds_unlock();
    }
    return rc;
  }
  if (path == DS_PENDING) path = ds_settle(fd, s, sa, len, 1, "bind");
  switch (path) {
    case DS_VCL:
      return ds_vcl_bind(fd, atomic_load(&s->vfd), sa, len);
    case DS_BOTH:
      return ds_both_bind(fd, s, sa, len, 0);
    default:
      return LIBC(bind)(fd, sa, len);
  }
}

DS_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len) {
  ds_reap_listeners();
  struct ds_sock *s = ds_sock_of(fd);
  if (!s) return LIBC(connect)(fd, sa, len);
  int path = ds_path_of(s);
  int settled_here = 0;
  if (path == DS_PENDING && sa && sa->sa_family != AF_UNSPEC) {
    path = ds_settle(fd, s, sa, len, 0, "connect");
    settled_here = path == DS_VCL;
  }
  if (path != DS_VCL) {
    int krc = LIBC(connect)(fd, sa, len);
    ds_conn_connected(s, krc, sa, 0);
    return krc;
  }
  int vfd = atomic_load(&s->vfd);
  /* VCL 26.06 takes ::ffff:a.b.c.d for an IPv6 address and fails (ENOTCONN): an IPv6
   * socket naming an IPv4 peer (grpcio, Java, curl with [::ffff:...]) connects to VPP as
   * IPv4; getpeername/getsockname map the answers back. */
  struct sockaddr_in v4;
  if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6) &&
      IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    v4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = s6->sin6_port};
    memcpy(&v4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
    sa = (const struct sockaddr *)&v4;
    len = sizeof v4;
  }
  int rc = VCL(connect)(vfd, sa, len);
  ds_conn_connected(s, rc, sa, 1);
  if (settled_here) {
    int saved = errno;
    ds_lock();
    ds_move_regs(s, vfd, 0);
    ds_sock_forget_pending(s);
    ds_unlock();
    errno = saved;
  }
  return rc;
}

DS_EXPORT int listen(int fd, int backlog) {
  struct ds_sock *s = ds_sock_of(fd);
  if (!s) return LIBC(listen)(fd, backlog);
  int path = ds_path_of(s);
  if (path == DS_PENDING) {
    /* listen() without a decision: a deferred ephemeral bind, or none (autobind). */
    struct sockaddr_storage ss = {.ss_family = (sa_family_t)s->domain};
    socklen_t sl = s->domain == AF_INET ? sizeof(struct sockaddr_in)
                                        : sizeof(struct sockaddr_in6);
    int had_bind = s->bound_len != 0;
    if (had_bind) memcpy(&ss, &s->bound, s->bound_len);
    s->wild6 = s->domain == AF_INET6 && ss.ss_family == AF_INET6 &&
               IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr);
    path = ds_settle(fd, s, (struct sockaddr *)&ss, sl, 1, "listen");
    if (path == DS_BOTH && ds_both_bind(fd, s, (struct sockaddr *)&ss, sl, had_bind) != 0)
      return -1;
  }
  int vfd = atomic_load(&s->vfd);
  if (s->vlisten) return path == DS_BOTH ? LIBC(listen)(fd, backlog) : 0; /* again */
  if (path == DS_VCL) return ds_vcl_listen(fd, s, vfd, backlog);
  if (path == DS_BOTH && LIBC(listen)(fd, backlog) != 0) return -1;
  if (path == DS_BOTH && ds_vcl_listen(fd, s, vfd, backlog) != 0) ds_drop_vcl_side(fd, s, "listen");
  if (path == DS_BOTH) return 0;
  return LIBC(listen)(fd, backlog);
}

/* VCL 26.06 answers EOPNOTSUPP for options it does not implement (SO_RCVLOWAT,
 * TCP_USER_TIMEOUT, ...; grpcio gave up on such sockets). The kernel would take them, and
 * for a socket that ignores them an app only loses a tuning: answer as the kernel would,
 * with the app's own kernel socket holding the value (getsockopt reads it back). */
static int ds_vcl_lacks(int rc) { return rc < 0 && (errno == EOPNOTSUPP || errno == ENOPROTOOPT); }

DS_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  struct ds_sock *s = ds_sock_of(fd);
  if (!s || s->vlisten) return LIBC(setsockopt)(fd, level, name, val, len);
  int path = ds_path_of(s);
  if (path == DS_VCL) {
    if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY) /* the app's socket keeps it (listen) */
      LIBC(setsockopt)(fd, level, name, val, len);
    int rc = VCL(setsockopt)(atomic_load(&s->vfd), level, name, val, len);
    if (!ds_vcl_lacks(rc)) return rc;
    DS_DEBUG("fd %d: VCL lacks option %d/%d; kept on the kernel socket", fd, level, name);
    return LIBC(setsockopt)(fd, level, name, val, len);
  }
  int rc = LIBC(setsockopt)(fd, level, name, val, len);
  if (path == DS_BOTH) {
    int saved = errno;
    VCL(setsockopt)(atomic_load(&s->vfd), level, name, val, len);
    errno = saved;
  } else if (path == DS_PENDING && rc == 0 && len <= 1024) {
    struct ds_opt *o = malloc(sizeof *o + len);
    if (o) {
      o->level = level;
      o->name = name;
      o->len = len;
      if (len) memcpy(o->val, val, len);
      ds_lock();
      o->next = s->opts; /* an older value of the same option is dropped below */
      struct ds_opt **pp = &o->next;
      while (*pp) { /* drop an older value of the same option */
        if ((*pp)->level == level && (*pp)->name == name) {
          struct ds_opt *old = *pp;
          *pp = old->next;
          free(old);
        } else {
          pp = &(*pp)->next;
        }
      }
      s->opts = o;
      ds_unlock();
    }
  }
  return rc;
}

DS_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  int vfd = ds_moved_fd(fd);
  if (vfd < 0) return LIBC(getsockopt)(fd, level, name, val, len);
  int rc = VCL(getsockopt)(vfd, level, name, val, len);
  return ds_vcl_lacks(rc) ? LIBC(getsockopt)(fd, level, name, val, len) : rc;
}

/* An AF_INET answer for an AF_INET6 socket (a v4-mapped connect, above; an IPv4 client of a
 * [::] listener), as the app's family: ::ffff:a.b.c.d, as the kernel reports it. */
int ds_as_family(struct ds_sock *s, int rc, struct sockaddr *sa, socklen_t *len,
                 socklen_t room) {
  if (rc != 0 || !s || s->domain != AF_INET6 || !sa || !len || sa->sa_family != AF_INET ||
      room < sizeof(struct sockaddr_in6))
    return rc;
  struct sockaddr_in v4;
  memcpy(&v4, sa, sizeof v4);
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = v4.sin_port};
  v6.sin6_addr.s6_addr[10] = v6.sin6_addr.s6_addr[11] = 0xff;
  memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
  memcpy(sa, &v6, sizeof v6);
  *len = sizeof v6;
  return rc;
}

DS_EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len) {
  struct ds_sock *ls = ds_sock_of(fd);
  if (ls && ls->vlisten && ds_path_of(ls) == DS_VCL && sa && len) {
    socklen_t n = *len < ls->vaddr_len ? *len : ls->vaddr_len;
    memcpy(sa, &ls->vaddr, n);
    *len = ls->vaddr_len;
    return 0;
  }
  int vfd = ds_moved_fd(fd);
  if (vfd < 0) return LIBC(getsockname)(fd, sa, len);
  socklen_t room = len ? *len : 0;
  return ds_as_family(ls, VCL(getsockname)(vfd, sa, len), sa, len, room);
}

DS_EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len) {
  int vfd = ds_moved_fd(fd);
  if (vfd < 0) return LIBC(getpeername)(fd, sa, len);
  socklen_t room = len ? *len : 0;
  return ds_as_family(ds_sock_of(fd), VCL(getpeername)(vfd, sa, len), sa, len, room);
}

/* VPP 26.06's app-to-app (cut-through) sessions have no half-close: after shutdown(SHUT_WR)
 * the peer sees no EOF until close() (docs/vpp-issues.md). A protocol that waits for it
 * (nc -N, HTTP/1.0 clients that half-close, haproxy forwarding a client's close) hangs.
 * Said once per port, with the annotation that keeps that port on the kernel. */
static void ds_half_close_seen(int fd, struct ds_sock *s, int vfd) {
  static atomic_int said[8];
  if (s->peer_eof) return; /* the peer closed first (Node's end() after 'end'): no one waits */
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  /* The server's port: its own for an accepted session, the peer's for a client's. */
  int rc = s->accepted ? VCL(getsockname)(vfd, (struct sockaddr *)&ss, &sl)
                       : VCL(getpeername)(vfd, (struct sockaddr *)&ss, &sl);
  int port = rc == 0 ? ds_port((struct sockaddr *)&ss) : 0;
  for (int i = 0; i < 8; i++) {
    int was = 0;
    if (atomic_compare_exchange_strong(&said[i], &was, port + 1)) break; /* a new port */
    if (was == port + 1) return;                                      /* said already */
    if (i == 7) return;                                               /* enough said */
  }
  const char *what = "shutdown(SHUT_WR) on a VPP session: VPP's app-to-app path has no "
                     "half-close, so the peer sees no EOF until close()";
  ds_log("fd %d, port %d: %s; if the protocol waits for it, keep the port on the kernel "
         "(pod annotation vcl.io/kernel-ports: \"%d\")", fd, port, what, port);
  ds_report("half-close", "port %d: %s; if the protocol waits for it, set the pod annotation "
            "vcl.io/kernel-ports: \"%d\"", port, what, port);
}

DS_EXPORT int shutdown(int fd, int how) {
  struct ds_sock *s = ds_sock_of(fd);
  int path = s && !s->vlisten ? ds_path_of(s) : DS_KERNEL;
  if (path == DS_VCL && how == SHUT_WR) {
    int vfd = atomic_load(&s->vfd);
    int rc = VCL(shutdown)(vfd, how);
    int saved = errno;
    if (rc == 0) ds_half_close_seen(fd, s, vfd);
    errno = saved;
    return rc;
  }
  if (path == DS_VCL) return VCL(shutdown)(atomic_load(&s->vfd), how);
  if (path == DS_BOTH) VCL(shutdown)(atomic_load(&s->vfd), how);
  return LIBC(shutdown)(fd, how);
}
