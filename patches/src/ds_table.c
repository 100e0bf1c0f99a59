/* The fd table: app fd -> socket or epoll object, one lock for writers, lock-free readers. */
#include "dualstack.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DS_CHUNK 4096 /* entries per lazily allocated chunk (64 KiB) */

static _Atomic(struct ds_entry *) ds_chunks[DS_MAX_FD / DS_CHUNK];
/* Recursive: while we hold it, LDP/VCL may call back into us (epoll_create, close...). */
static pthread_mutex_t ds_mutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static struct ds_sock *ds_sock_free;
static struct ds_epoll *ds_epoll_free;
static uint64_t ds_epoll_next_id;

void ds_lock(void) { pthread_mutex_lock(&ds_mutex); }
void ds_unlock(void) { pthread_mutex_unlock(&ds_mutex); }

/* fork() while another thread holds the lock must not leave the child deadlocked. */
static void ds_atfork_prepare(void) { ds_lock(); }
static void ds_atfork_parent(void) { ds_unlock(); }
static void ds_atfork_child(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&ds_mutex, &a);
  pthread_mutexattr_destroy(&a);
  ds_threads_atfork_child();
  ds_conns_atfork_child();
}
__attribute__((constructor)) static void ds_table_init(void) {
  pthread_atfork(ds_atfork_prepare, ds_atfork_parent, ds_atfork_child);
}

struct ds_entry *ds_entry_get(int fd) {
  if (DS_UNLIKELY((unsigned)fd >= DS_MAX_FD)) return NULL;
  struct ds_entry *chunk =
      atomic_load_explicit(&ds_chunks[fd / DS_CHUNK], memory_order_acquire);
  return chunk ? &chunk[fd % DS_CHUNK] : NULL;
}

struct ds_entry *ds_entry_make(int fd) {
  if ((unsigned)fd >= DS_MAX_FD) return NULL;
  struct ds_entry *chunk = atomic_load(&ds_chunks[fd / DS_CHUNK]);
  if (!chunk) {
    chunk = calloc(DS_CHUNK, sizeof *chunk);
    if (!chunk) return NULL;
    atomic_store_explicit(&ds_chunks[fd / DS_CHUNK], chunk, memory_order_release);
  }
  return &chunk[fd % DS_CHUNK];
}

struct ds_sock *ds_sock_new(int domain, int type, int protocol) {
  struct ds_sock *s = ds_sock_free;
  if (s)
    ds_sock_free = s->next_free;
  else if (!(s = calloc(1, sizeof *s)))
    return NULL;
  atomic_store(&s->path, DS_PENDING);
  atomic_store(&s->vfd, -1);
  atomic_store(&s->vfd4, -1);
  s->wild6 = s->dual = s->accepted = s->peer_eof = 0;
  s->refs = 1;
  s->domain = domain;
  s->type = type;
  s->protocol = protocol;
  s->app_nonblock = 0;
  s->opts = NULL;
  s->regs = NULL;
  s->nregs = s->capregs = 0;
  s->bound_len = 0;
  s->vlisten = s->backlog = 0;
  s->vaddr_len = 0;
  s->tls = NULL;
  s->ntls = s->captls = 0;
  s->owner_tid = s->owner_pid = s->handoff_seen = s->listen_tid = s->listen_used = 0;
  s->listen_pid = 0;
  s->counted = s->counted_pid = 0;
  s->next_free = NULL;
  return s;
}

/* Drops what only matters before the decision (recorded options, epoll registrations). */
void ds_sock_forget_pending(struct ds_sock *s) {
  while (s->opts) {
    struct ds_opt *o = s->opts;
    s->opts = o->next;
    free(o);
  }
  free(s->regs);
  s->regs = NULL;
  s->nregs = s->capregs = 0;
}

void ds_sock_release(struct ds_sock *s) {
  if (--s->refs > 0) return;
  if (s->counted) ds_conn_closed(s);
  int vfd = atomic_exchange(&s->vfd, -1), vfd4 = atomic_exchange(&s->vfd4, -1);
  int saved = errno;
  if (vfd >= 0) VCL(close)(vfd);
  if (vfd4 >= 0) VCL(close)(vfd4);
  errno = saved;
  ds_sock_forget_pending(s);
  if (s->vlisten) ds_listeners_release(s);
  s->next_free = ds_sock_free;
  ds_sock_free = s;
}

struct ds_epoll *ds_epoll_new(void) {
  struct ds_epoll *ep = ds_epoll_free;
  if (ep)
    ds_epoll_free = ep->next_free;
  else if (!(ep = calloc(1, sizeof *ep)))
    return NULL;
  ep->refs = 1;
  ep->id = ++ds_epoll_next_id;
  atomic_store(&ep->shadow, -1);
  atomic_store(&ep->kernel_waiters, 0);
  ep->kick = -1;
  ep->next_free = NULL;
  return ep;
}

void ds_epoll_release(struct ds_epoll *ep) {
  if (--ep->refs > 0) return;
  int shadow = atomic_exchange(&ep->shadow, -1);
  if (shadow >= 0) {
    int saved = errno;
    VCL(close)(shadow);
    errno = saved;
  }
  if (ep->kick >= 0) LIBC(close)(ep->kick);
  ep->kick = -1;
  ep->id = 0;
  ep->next_free = ds_epoll_free;
  ds_epoll_free = ep;
}

/* Points app fd entry e at s or ep (under ds_lock). Whatever it named before is stale: the
 * fd was closed behind our back (close_range, a raw syscall) and its number reused. */
void ds_entry_install(struct ds_entry *e, struct ds_sock *s, struct ds_epoll *ep) {
  struct ds_sock *old_s = atomic_exchange(&e->sock, s);
  struct ds_epoll *old_ep = atomic_exchange(&e->ep, ep);
  if (old_s) ds_sock_release(old_s);
  if (old_ep) ds_epoll_release(old_ep);
}

/* Test and debug introspection: the path of an app fd (-1 if not a socket of ours). */
DS_EXPORT int vcl_dualstack_path(int fd) {
  struct ds_sock *s = ds_sock_of(fd);
  return s ? ds_path_of(s) : -1;
}
