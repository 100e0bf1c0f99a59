/* Threads and VCL workers, with `multi-thread-workers` (one VCL worker per app thread, the
 * injector's default): a VCL session belongs to the worker of the thread that made it, and
 * VCL 26.06 moves a session to another thread's worker only while it is neither listening
 * nor connected (vls_mt_session_migrate: "migrate NOT supported"). Two patterns follow:
 *
 * - A listener made on one thread and accepted on others (Envoy makes its listeners on the
 *   main thread and accepts on its workers; haproxy's threads share their listeners): the
 *   VCL side becomes one VCL listener per thread that uses the socket, made in that thread
 *   on its first accept, epoll_ctl or poll, on the same address. VPP puts the workers of
 *   one app listening on one endpoint behind one listener and hands its connections to them
 *   in turn. The listening thread keeps the VCL listener listen() made, and per-thread
 *   listeners start when a second thread uses the socket. If by then the listening thread
 *   never accepted or waited on it (Envoy's main thread), its VCL listener is closed,
 *   by that thread (only it may) at its next call through us: until then VPP may hand it
 *   a share of the connections, which wait.
 * - A connected socket used by a thread other than its owner (a thread pool fed by an
 *   accepting thread; haproxy's multi-queue accept) cannot work; it is reported once
 *   (ds_report "thread-handoff", which the agent shows) so that the pod can be set to one
 *   shared VCL worker (vcl.io/workers: "false"). */
#include "dualstack.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread int ds_tid_cache;

int ds_tid_slow(void) {
  ds_tid_cache = (int)syscall(SYS_gettid);
  return ds_tid_cache;
}

/* The forking thread's cached id was copied into the child, which has an id of its own. */
void ds_threads_atfork_child(void) { ds_tid_cache = 0; }

void ds_handoff(int fd, struct ds_sock *s) {
  static atomic_int reported;
  if (s->handoff_seen) return;
  s->handoff_seen = 1;
  if (atomic_exchange(&reported, 1)) return;
  if (s->owner_pid != getpid()) { /* fork per connection: socat fork, inetd-style servers */
    const char *what =
        "a connection made before fork() is used by the child process, which VCL's "
        "multi-thread-workers cannot do (a fork-per-connection server); keep its port on "
        "the kernel with the pod annotation vcl.io/kernel-ports";
    ds_log("fd %d: process %d uses a session of its parent %d: %s", fd, (int)getpid(),
           s->owner_pid, what);
    ds_report("thread-handoff", "%s", what);
    return;
  }
  const char *what =
      "a connected VCL session is used by a thread other than the one that made it, which "
      "VCL's multi-thread-workers cannot do; keep each connection on its thread (haproxy: "
      "tune.listener.multi-queue off, http-reuse never), or for a thread pool with one "
      "epoll thread set the pod annotation vcl.io/workers: \"false\"";
  ds_log("fd %d: thread %d uses the session of thread %d: %s", fd, ds_self_tid(),
         s->owner_tid, what);
  ds_report("thread-handoff", "%s", what);
}

static int ds_make_v4_listener(int fd, struct ds_sock *s);

/* Whether a listener takes IPv4 clients on an IPv6 socket: bound to [::] (or unbound) with
 * IPV6_V6ONLY off, as the kernel tells for the app's own socket (setsockopt keeps the
 * option there, and its default there is the node's net.ipv6.bindv6only). */
static int ds_wants_v4(int fd, struct ds_sock *s) {
  if (s->domain != AF_INET6 || s->type != SOCK_STREAM || !s->wild6) return 0;
  int v6only = 0;
  socklen_t l = sizeof v6only;
  return LIBC(getsockopt)(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l) == 0 && !v6only;
}

void ds_handoff_epoll(int epfd) {
  static atomic_int reported;
  if (atomic_exchange(&reported, 1)) return;
  const char *what =
      "an epoll set made by one thread is waited on by another (a pool of poller threads "
      "sharing one epoll, as grpc's), which VCL's multi-thread-workers cannot do; keep the "
      "program's ports on the kernel with the pod annotation vcl.io/kernel-ports";
  ds_log("epoll fd %d: thread %d: %s", epfd, ds_self_tid(), what);
  ds_report("thread-handoff", "%s", what);
}

int ds_vcl_listen(int fd, struct ds_sock *s, int vfd, int backlog) {
  if (VCL(listen)(vfd, backlog) != 0) return -1;
  int v4 = ds_wants_v4(fd, s);
  if (!ds_config()->mt_workers && !v4) return 0;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (VCL(getsockname)(vfd, (struct sockaddr *)&ss, &sl) != 0) return 0;
  ds_lock();
  s->vaddr = ss;
  s->vaddr_len = sl;
  s->backlog = backlog;
  if (ds_config()->mt_workers) {
    s->listen_tid = ds_self_tid();
    s->listen_pid = getpid();
  }
  if (v4 && atomic_load(&s->vfd4) < 0) {
    /* From now on accept() polls both VCL listeners, so neither may block. */
    if (ds_path_of(s) == DS_VCL) {
      int fl = VCL(fcntl)(vfd, F_GETFL);
      if (fl >= 0) {
        s->app_nonblock = (fl & O_NONBLOCK) != 0;
        VCL(fcntl)(vfd, F_SETFL, fl | O_NONBLOCK);
      }
    }
    int vfd4 = ds_make_v4_listener(fd, s);
    if (vfd4 >= 0) {
      atomic_store(&s->vfd4, vfd4);
      s->dual = 1;
    }
  }
  ds_unlock();
  return 0;
}

static void ds_orphan(struct ds_tl t);

/* A non-blocking VCL listener of s at sa, made in the calling thread. */
static int ds_listener_at(int fd, struct ds_sock *s, const struct sockaddr *sa, socklen_t len) {
  int one = 1;
  int vfd = VCL(socket)(sa->sa_family, s->type | SOCK_NONBLOCK | SOCK_CLOEXEC, s->protocol);
  if (vfd < 0) return -1;
  VCL(setsockopt)(vfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ds_config()->test_mode) { /* CI's VCL side is the kernel: let the listeners share */
    VCL(setsockopt)(vfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (sa->sa_family == AF_INET6) /* and serve one family each, as VCL's do */
      VCL(setsockopt)(vfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (VCL(bind)(vfd, sa, len) != 0 || VCL(listen)(vfd, s->backlog) != 0) {
    int saved = errno;
    VCL(close)(vfd);
    errno = saved;
    return -1;
  }
  return vfd;
}

/* The IPv4 VCL listener of a dual listener: the IPv4 wildcard on the same port (in CI, on
 * the moved address beside a both-stacks listener's kernel side). Under ds_lock. */
static int ds_make_v4_listener(int fd, struct ds_sock *s) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_port = ((struct sockaddr_in6 *)&s->vaddr)->sin6_port;
  if (ds_config()->test_mode && ds_path_of(s) == DS_BOTH) a.sin_addr.s_addr = htonl(0x7f000002);
  int vfd = ds_listener_at(fd, s, (struct sockaddr *)&a, sizeof a);
  if (vfd < 0)
    ds_log("fd %d: IPv4 clients cannot reach this [::] listener through VPP: its IPv4 VCL "
           "listener on port %d failed (%s)", fd, ntohs(a.sin_port), strerror(errno));
  else
    DS_DEBUG("fd %d: [::] listener takes IPv4 on VCL too (thread %d)", fd, ds_self_tid());
  return vfd;
}

/* This thread's VCL listeners of a per-thread listener (under ds_lock). */
static int ds_make_listener(int fd, struct ds_sock *s, int *vfd4) {
  *vfd4 = -1;
  int vfd = ds_listener_at(fd, s, (struct sockaddr *)&s->vaddr, s->vaddr_len);
  if (vfd < 0) {
    ds_log("fd %d: the VCL listener of thread %d failed: %s", fd, ds_self_tid(),
           strerror(errno));
    return -1;
  }
  if (s->dual) *vfd4 = ds_make_v4_listener(fd, s);
  DS_DEBUG("fd %d: VCL listener for thread %d", fd, ds_self_tid());
  return vfd;
}

int ds_thread_vfd(int fd, struct ds_sock *s) {
  if (DS_LIKELY(!s->vlisten)) {
    if (DS_LIKELY(!s->listen_tid)) {
      if (DS_UNLIKELY(s->owner_tid != 0) && s->owner_tid != ds_self_tid()) ds_handoff(fd, s);
      return atomic_load(&s->vfd);
    }
    if (s->listen_tid == ds_self_tid()) {
      s->listen_used = 1;
      return atomic_load(&s->vfd);
    }
    if (s->listen_pid != getpid()) {
      /* A child after fork() (nginx's workers): VCL shares the listener between the
       * processes' workers itself (vls_mp_checks); the child's thread takes it over. */
      ds_lock();
      s->listen_tid = ds_self_tid();
      s->listen_pid = getpid();
      s->listen_used = 1;
      ds_unlock();
      return atomic_load(&s->vfd);
    }
    ds_lock(); /* a second thread uses this listener: one VCL listener per thread from now */
    if (!s->vlisten) {
      struct ds_tl *t = malloc(4 * sizeof *t);
      if (!t) {
        ds_unlock();
        errno = ENOMEM;
        return -1;
      }
      struct ds_tl first = {.tid = s->listen_tid,
                            .vfd = atomic_load(&s->vfd),
                            .vfd4 = atomic_exchange(&s->vfd4, -1)};
      s->tls = t;
      s->captls = 4;
      s->ntls = 0;
      if (s->listen_used) {
        s->tls[s->ntls++] = first;
      } else { /* its thread never accepts (Envoy's main thread): VPP must not feed it */
        ds_orphan(first);
        DS_DEBUG("fd %d: thread %d listened but does not accept; its VCL listener goes", fd,
                 first.tid);
      }
      s->vlisten = 1;
      atomic_store(&s->vfd, -1);
    }
    ds_unlock();
  }
  ds_reap_listeners();
  int tid = ds_self_tid();
  ds_lock();
  for (int i = 0; i < s->ntls; i++) {
    if (s->tls[i].tid == tid) {
      int vfd = s->tls[i].vfd;
      ds_unlock();
      return vfd;
    }
  }
  if (s->ntls == s->captls) {
    int cap = s->captls ? 2 * s->captls : 4;
    struct ds_tl *t = realloc(s->tls, (size_t)cap * sizeof *t);
    if (!t) {
      ds_unlock();
      errno = ENOMEM;
      return -1;
    }
    s->tls = t;
    s->captls = cap;
  }
  int vfd4;
  int vfd = ds_make_listener(fd, s, &vfd4);
  if (vfd >= 0) s->tls[s->ntls++] = (struct ds_tl){.tid = tid, .vfd = vfd, .vfd4 = vfd4};
  ds_unlock();
  return vfd;
}

int ds_thread_vfd4(struct ds_sock *s) {
  if (DS_LIKELY(!s->dual)) return -1;
  if (!s->vlisten) return atomic_load(&s->vfd4);
  int tid = ds_self_tid(), vfd4 = -1;
  ds_lock();
  for (int i = 0; i < s->ntls; i++)
    if (s->tls[i].tid == tid) vfd4 = s->tls[i].vfd4;
  ds_unlock();
  return vfd4;
}

/* VCL listeners that belong to other threads: only their own thread may close them (VCL
 * would try to move them), at its next wait through here. */
static struct ds_tl *ds_orphans;
static int ds_norphans, ds_caporphans;
atomic_int ds_orphans_pending;

static void ds_close_tl(struct ds_tl t) {
  VCL(close)(t.vfd);
  if (t.vfd4 >= 0) VCL(close)(t.vfd4);
}

static void ds_orphan(struct ds_tl t) { /* under ds_lock */
  if (ds_norphans == ds_caporphans) {
    int cap = ds_caporphans ? 2 * ds_caporphans : 8;
    struct ds_tl *n = realloc(ds_orphans, (size_t)cap * sizeof *n);
    if (!n) return; /* left to the process's exit */
    ds_orphans = n;
    ds_caporphans = cap;
  }
  ds_orphans[ds_norphans++] = t;
  atomic_store(&ds_orphans_pending, 1);
}

void ds_listeners_release(struct ds_sock *s) {
  int tid = ds_self_tid();
  for (int i = 0; i < s->ntls; i++) {
    if (s->tls[i].tid == tid)
      ds_close_tl(s->tls[i]);
    else
      ds_orphan(s->tls[i]);
  }
  free(s->tls);
  s->tls = NULL;
  s->ntls = s->captls = 0;
  s->vlisten = 0;
}

/* Takes this thread's orphans off the list first and closes them after: VCL's close
 * signals VPP with a write() on its eventfd, which comes back through our wrappers and
 * here; closing the same listener again from inside its own close spun VCL 26.06 for good
 * on the session's lock (a server at 100% CPU). The inner call finds nothing to do. */
static __thread int ds_reaping;
void ds_reap_listeners(void) {
  if (DS_LIKELY(!atomic_load_explicit(&ds_orphans_pending, memory_order_relaxed))) return;
  if (ds_reaping) return;
  ds_reaping = 1;
  int tid = ds_self_tid(), n;
  do {
    struct ds_tl mine[8];
    n = 0;
    ds_lock();
    int k = 0;
    for (int i = 0; i < ds_norphans; i++) {
      if (ds_orphans[i].tid == tid && n < 8)
        mine[n++] = ds_orphans[i];
      else
        ds_orphans[k++] = ds_orphans[i];
    }
    ds_norphans = k;
    if (!k) atomic_store(&ds_orphans_pending, 0);
    ds_unlock();
    for (int i = 0; i < n; i++) ds_close_tl(mine[i]);
  } while (n == 8);
  ds_reaping = 0;
}
