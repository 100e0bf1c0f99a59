/* Internal interfaces of libvcl_dualstack.so: the fd table, the rules, and the two
 * symbol sets every wrapper forwards to (the kernel's libc and the "VCL" side, which is
 * stock LDP in production and libc again in CI). */
#ifndef DUALSTACK_H
#define DUALSTACK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#define DS_EXPORT __attribute__((visibility("default")))
#define DS_LIKELY(x) __builtin_expect(!!(x), 1)
#define DS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* App-visible fds are kernel fds below this bound; LDP's own fds start at 2^LDP_SID_BIT
 * (2^20 as the injector configures it), so an fd at or above it is never ours. */
#define DS_MAX_FD (1 << 20)

/* Where a socket's traffic goes. */
enum ds_path {
  DS_PENDING = 0, /* created, no address named yet: lives on the kernel, options recorded */
  DS_KERNEL = 1,  /* decided: the app's fd is the socket */
  DS_VCL = 2,     /* moved: every call is forwarded to vfd on the VCL side */
  DS_BOTH = 3,    /* wildcard listener on both stacks: the app's fd and vfd */
};

/* A setsockopt() made before the decision, replayed on the VCL socket. */
struct ds_opt {
  struct ds_opt *next;
  int level, name;
  socklen_t len;
  unsigned char val[];
};

/* An epoll registration made before the decision, moved with the socket. */
struct ds_reg {
  int epfd;
  int fd;
  uint64_t epoll_id; /* tells a reused epfd number from the one registered with */
  struct epoll_event ev;
};

/* One socket; shared by the app fds that dup() made of it. Never unmapped: readers
 * load path/vfd without the lock, so a racing close cannot make them touch freed memory. */
struct ds_sock {
  _Atomic int path;
  _Atomic int vfd;
  int refs; /* app fds naming it (under ds_lock) */
  int domain, type, protocol;
  int app_nonblock; /* O_NONBLOCK as the app believes it is set */
  struct ds_opt *opts;
  struct ds_reg *regs;
  int nregs, capregs;
  struct sockaddr_storage bound; /* a deferred wildcard port-0 bind */
  socklen_t bound_len;
  /* With multi-thread-workers (ds_threads.c): a listener's VCL side is one VCL listener
   * per thread that uses it (vlisten, vfd -1); a connected socket's owner thread. */
  int vlisten, backlog;
  struct sockaddr_storage vaddr; /* where the per-thread VCL listeners bind */
  socklen_t vaddr_len;
  struct ds_tl *tls; /* per-thread VCL listeners */
  int ntls, captls;
  int owner_tid; /* thread whose VCL worker holds vfd; 0: any thread may use it */
  int owner_pid; /* its process: a child after fork() is another worker too */
  int listen_tid;  /* a VCL listener: the thread that listened (its worker holds vfd) */
  int listen_used; /* that thread accepted or waited on it */
  int listen_pid;  /* its process: in a child after fork() VCL shares the listener itself */
  int handoff_seen;
  int accepted; /* made by accept() on the VCL side */
  int peer_eof; /* a read returned 0: the peer closed its side */
  /* A [::] listener with IPV6_V6ONLY off takes IPv4 clients on the kernel; VPP listens per
   * family, so its VCL side gets a second, IPv4, VCL listener on the same port (vfd4, or
   * each ds_tl's vfd4). wild6: the app bound the IPv6 wildcard (or listened unbound). */
  int wild6, dual;
  _Atomic int vfd4;
  int counted, counted_pid; /* ds_conns.c: 1 + the class it was counted in, and by whom */
  struct ds_sock *next_free;
};

struct ds_tl {
  int tid, vfd, vfd4;
};

/* One epoll instance the app created (always a kernel epoll fd). */
struct ds_epoll {
  int refs;
  uint64_t id;
  _Atomic int shadow; /* VCL-side epoll holding the moved sockets and this epfd; -1 if none */
  atomic_int kernel_waiters; /* threads waiting on the kernel epoll itself */
  int kick; /* eventfd in the kernel epoll waking them when a shadow appears, or -1 */
  struct ds_epoll *next_free;
};

struct ds_entry {
  _Atomic(struct ds_sock *) sock;
  _Atomic(struct ds_epoll *) ep;
};

/* ---- symbols (ds_syms.c) ---- */
struct ds_fns {
  int (*socket)(int, int, int);
  int (*bind)(int, const struct sockaddr *, socklen_t);
  int (*connect)(int, const struct sockaddr *, socklen_t);
  int (*listen)(int, int);
  int (*accept4)(int, struct sockaddr *, socklen_t *, int);
  int (*close)(int);
  int (*shutdown)(int, int);
  ssize_t (*read)(int, void *, size_t);
  ssize_t (*write)(int, const void *, size_t);
  ssize_t (*readv)(int, const struct iovec *, int);
  ssize_t (*writev)(int, const struct iovec *, int);
  ssize_t (*recv)(int, void *, size_t, int);
  ssize_t (*send)(int, const void *, size_t, int);
  ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
  ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
  ssize_t (*recvmsg)(int, struct msghdr *, int);
  ssize_t (*sendmsg)(int, const struct msghdr *, int);
  int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
  int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
  ssize_t (*sendfile)(int, int, off_t *, size_t);
  int (*getsockopt)(int, int, int, void *, socklen_t *);
  int (*setsockopt)(int, int, int, const void *, socklen_t);
  int (*getsockname)(int, struct sockaddr *, socklen_t *);
  int (*getpeername)(int, struct sockaddr *, socklen_t *);
  int (*fcntl)(int, int, ...);
  int (*ioctl)(int, unsigned long, ...);
  int (*poll)(struct pollfd *, nfds_t, int);
  int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
  int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
  int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                 const sigset_t *);
  int (*epoll_create1)(int);
  int (*epoll_ctl)(int, int, int, struct epoll_event *);
  int (*epoll_wait)(int, struct epoll_event *, int, int);
  int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
  int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *,
                      const sigset_t *);
  int (*dup)(int);
  int (*dup2)(int, int);
  int (*dup3)(int, int, int);
  int (*close_range)(unsigned int, unsigned int, int);
};

extern struct ds_fns ds_libc_fns, ds_vcl_fns;
extern atomic_int ds_libc_ready, ds_vcl_ready;
const struct ds_fns *ds_libc_load(void);
const struct ds_fns *ds_vcl_load(void);
/* The kernel (libc) side: resolved on first use, since VCL calls us before our constructor. */
#define LIBC(name)                                                                        \
  (DS_LIKELY(atomic_load_explicit(&ds_libc_ready, memory_order_acquire)) ? ds_libc_fns.name \
                                                                          : ds_libc_load()->name)
/* The VCL side; only called once ds_vcl_available() said yes. */
#define VCL(name)                                                                         \
  (DS_LIKELY(atomic_load_explicit(&ds_vcl_ready, memory_order_acquire)) ? ds_vcl_fns.name \
                                                                         : ds_vcl_load()->name)
/* Loads the VCL side if needed (lazy LDP); 0 if the VCL path cannot be used. */
int ds_vcl_available(void);
void *ds_vcl_sym(const char *name); /* a symbol of LDP or libvppcom, or NULL */

void ds_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A word of VCL_CONFIG outside comments (e.g. "multi-thread-workers"). */
int ds_vcl_conf_has(const char *word);
/* ... and the value after it (app-socket-api PATH); 0 if absent or too long for out. */
int ds_vcl_conf_value(const char *word, char *out, size_t len);
/* Tells the node agent what happened in this process (ds_report.c); never blocks. */
void ds_report(const char *state, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with fds passed along (SCM_RIGHTS, at most 2); 0 if the datagram was sent. */
int ds_report_fds(const int *fds, int nfds, const char *state, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- live connection counts for the agent (ds_conns.c) ---- */
enum { DS_CONN_VPP, DS_CONN_KERNEL, DS_CONN_LOOPBACK, DS_CONN_CLASSES };
int ds_conns_counting(void); /* 0: nothing to count into (no report socket) */
int ds_conn_class_of(const struct sockaddr *kernel_peer); /* kernel or loopback */
void ds_conn_opened(struct ds_sock *s, int conn_class); /* once per socket, TCP only */
/* After connect() returned rc: counts s if its connection started (0 or EINPROGRESS), on
 * VPP or (vpp 0) on the kernel to peer; errno is kept. */
void ds_conn_connected(struct ds_sock *s, int rc, const struct sockaddr *peer, int vpp);
void ds_conn_closed(struct ds_sock *s);                 /* its last fd went */
void ds_conns_atfork_child(void);
#define DS_DEBUG(...)                           \
  do {                                          \
    if (DS_UNLIKELY(ds_config()->debug)) ds_log(__VA_ARGS__); \
  } while (0)

/* ---- rules (ds_rules.c) ---- */
struct ds_config {
  int vcl_enabled;  /* 0 after a malformed rule */
  int debug;        /* VCL_DUALSTACK_DEBUG=1 */
  int listen_both;  /* VCL_KERNEL_LISTEN=both */
  int test_mode;    /* VCL_DUALSTACK_TEST=1: loopback may move, wildcard split (CI only) */
  const char *ldp_path; /* VCL_DUALSTACK_LDP: load LDP lazily from here */
  int mt_workers;   /* VCL_CONFIG has multi-thread-workers: one VCL worker per thread */
  const char *endpoints; /* VCL_ENDPOINTS: the endpoint table's path (mode local), or NULL */
};
const struct ds_config *ds_config(void);
/* Decides the path for a socket naming sa; writes a short reason. */
enum ds_path ds_decide(const struct sockaddr *sa, socklen_t len, int type, int is_bind,
                       char *why, size_t whylen);
/* An address as 16 bytes (IPv4 and v4-mapped: the first 4); returns its family. */
int ds_addr_bytes(const struct sockaddr *sa, unsigned char out[16]);
/* 127.0.0.0/8 or ::1, as ds_addr_bytes gives them. */
int ds_is_loopback(int family, const unsigned char a[16]);

/* ---- the node's endpoint table (ds_endpoints.c) ---- */
/* 1: VPP serves sa (TCP or, for SOCK_DGRAM, UDP) on this node; 0: it does not; -1: no
 * usable table. generation: the table's, when there is one. */
int ds_endpoint_lookup(const struct sockaddr *sa, int type, uint64_t *generation);
int ds_is_wildcard(const struct sockaddr *sa);
uint16_t ds_port(const struct sockaddr *sa);
void ds_format_addr(const struct sockaddr *sa, char *buf, size_t len);

/* ---- fd table (ds_table.c) ---- */
void ds_lock(void);
void ds_unlock(void);
struct ds_entry *ds_entry_get(int fd);   /* NULL if never used; lock-free */
struct ds_entry *ds_entry_make(int fd);  /* under ds_lock; NULL on ENOMEM/out of range */
struct ds_sock *ds_sock_new(int domain, int type, int protocol);
void ds_sock_release(struct ds_sock *s); /* under ds_lock: drops one app fd */
struct ds_epoll *ds_epoll_new(void);
void ds_epoll_release(struct ds_epoll *ep);
void ds_sock_forget_pending(struct ds_sock *s);
void ds_entry_install(struct ds_entry *e, struct ds_sock *s, struct ds_epoll *ep);

static inline struct ds_sock *ds_sock_of(int fd) {
  struct ds_entry *e = ds_entry_get(fd);
  return e ? atomic_load_explicit(&e->sock, memory_order_acquire) : NULL;
}
static inline struct ds_epoll *ds_epoll_of(int fd) {
  struct ds_entry *e = ds_entry_get(fd);
  return e ? atomic_load_explicit(&e->ep, memory_order_acquire) : NULL;
}
static inline int ds_path_of(struct ds_sock *s) {
  return atomic_load_explicit(&s->path, memory_order_acquire);
}
/* ---- threads and VCL workers (ds_threads.c) ---- */
extern __thread int ds_tid_cache;
int ds_tid_slow(void);
static inline int ds_self_tid(void) { return DS_LIKELY(ds_tid_cache) ? ds_tid_cache : ds_tid_slow(); }
void ds_threads_atfork_child(void);
/* A moved socket used by a thread other than the one whose VCL worker holds it. */
void ds_handoff(int fd, struct ds_sock *s);
/* A shadow epoll waited on by a thread whose VCL worker does not hold it (EBADFD). */
void ds_handoff_epoll(int epfd);
/* listen() on the VCL side: per-thread listeners with multi-thread-workers. */
int ds_vcl_listen(int fd, struct ds_sock *s, int vfd, int backlog);
/* The VCL fd of s for the calling thread: its own VCL listener (made on first use) for a
 * per-thread listener, else s->vfd; -1 with errno on failure. */
int ds_thread_vfd(int fd, struct ds_sock *s);
/* A dual listener's IPv4 VCL listener for the calling thread (after ds_thread_vfd), or -1. */
int ds_thread_vfd4(struct ds_sock *s);
void ds_listeners_release(struct ds_sock *s); /* under ds_lock: the socket is gone */
/* Closes this thread's VCL listeners that another thread released (cheap when none). */
void ds_reap_listeners(void);
/* A listener whose VCL side the app's fd stands for (both stacks, or per-thread VCL). */
static inline int ds_split_listener(struct ds_sock *s) {
  return ds_path_of(s) == DS_BOTH || s->vlisten || s->dual;
}

extern atomic_int ds_orphans_pending;

/* The VCL fd behind an app fd if it was moved, else -1: the hot path of every wrapper. */
static inline int ds_moved_fd(int fd) {
  if (DS_UNLIKELY(atomic_load_explicit(&ds_orphans_pending, memory_order_relaxed)))
    ds_reap_listeners();
  struct ds_sock *s = ds_sock_of(fd);
  if (DS_LIKELY(!s) || ds_path_of(s) != DS_VCL) return -1;
  if (DS_UNLIKELY(s->owner_tid != 0) && s->owner_tid != ds_self_tid()) ds_handoff(fd, s);
  return atomic_load_explicit(&s->vfd, memory_order_relaxed);
}

/* ---- decision and move (ds_socket.c) ---- */
/* Settles a pending socket for an address the app names; returns the resulting path. */
int ds_settle(int fd, struct ds_sock *s, const struct sockaddr *sa, socklen_t len, int is_bind,
              const char *call);
/* An AF_INET answer from VCL for an AF_INET6 socket, rewritten as ::ffff:a.b.c.d as the
 * kernel reports it (room: the caller's buffer size); returns rc. */
int ds_as_family(struct ds_sock *s, int rc, struct sockaddr *sa, socklen_t *len, socklen_t room);

/* ---- epoll (ds_wait.c) ---- */
int ds_epoll_shadow(int epfd, struct ds_epoll *ep); /* under ds_lock */

#endif
