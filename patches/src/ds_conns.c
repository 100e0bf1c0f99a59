/* Live connection counts, per process and per stack, for vcl-status ("connections on VPP
 * vs kernel"). VPP's sessions tell the VPP side; only the process knows what it opened on
 * the kernel. Counting a connection must cost a few atomic adds, and the agent must see
 * current figures without the app doing anything on a timer, so the counts live in a page
 * the agent can read at any time:
 *
 * - at its first TCP connection (connect or accept, either stack), a process makes a
 *   4 KiB memfd, sealed against shrinking and growing (the agent's reads can never
 *   fault), maps it, and sends it to the agent over the report socket (SCM_RIGHTS)
 *   together with a pidfd of itself, so that the agent can tell when the process is gone
 *   (its sockets then closed without close() calls);
 * - the page holds "VCLCONN1", then open[3] and total[3] as native 64-bit integers, in the
 *   order vpp, kernel, loopback (kernel connections whose peer is a loopback address: the
 *   dual-stack design keeps them there, they are not a missed chance);
 * - a socket is counted once, when its connection starts (connect returned 0 or
 *   EINPROGRESS, or accept returned it), and uncounted when its last fd closes;
 * - after fork() the child has a page of its own: sockets it inherited are the parent's
 *   count (the connection is still open there until the parent closes it).
 *
 * Without VCL_REPORT_SOCKET nothing is counted and no page is made. The agent reads the
 * page with pread() and closes both fds when the pidfd says the process ended. */
#include "dualstack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define DS_PAGE_SIZE 4096

struct ds_conn_page {
  char magic[8];
  _Atomic uint64_t open[DS_CONN_CLASSES];
  _Atomic uint64_t total[DS_CONN_CLASSES];
};

enum { DS_PAGE_NONE, DS_PAGE_MAKING, DS_PAGE_READY, DS_PAGE_FAILED };
static atomic_int ds_page_state;
static struct ds_conn_page *ds_page_ptr;
static pid_t ds_page_pid;

/* The page of this process, made (and sent) on first use; NULL when not counting. */
static struct ds_conn_page *ds_page(void) {
  int state = atomic_load_explicit(&ds_page_state, memory_order_acquire);
  if (DS_LIKELY(state == DS_PAGE_READY)) return ds_page_ptr;
  if (state != DS_PAGE_NONE) return NULL;
  if (!atomic_compare_exchange_strong(&ds_page_state, &state, DS_PAGE_MAKING)) return NULL;
  const char *report = getenv("VCL_REPORT_SOCKET");
  struct ds_conn_page *page = NULL;
  int saved = errno, memfd = -1, pidfd = -1;
  if (report && *report)
    memfd = (int)memfd_create("vcl-conns", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd >= 0 && ftruncate(memfd, DS_PAGE_SIZE) == 0 &&
      LIBC(fcntl)(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0) {
    void *m = mmap(NULL, DS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (m != MAP_FAILED) {
      page = m;
      memcpy(page->magic, "VCLCONN1", 8);
    }
  }
  if (page) {
    pidfd = (int)syscall(SYS_pidfd_open, (long)getpid(), 0L);
    int fds[2] = {memfd, pidfd};
    if (pidfd < 0 || ds_report_fds(fds, 2, "conns", "page") != 0) {
      munmap(page, DS_PAGE_SIZE); /* the agent cannot read it: not worth counting */
      page = NULL;
    }
  }
  if (memfd >= 0) LIBC(close)(memfd);
  if (pidfd >= 0) LIBC(close)(pidfd);
  errno = saved;
  ds_page_ptr = page;
  ds_page_pid = getpid();
  atomic_store_explicit(&ds_page_state, page ? DS_PAGE_READY : DS_PAGE_FAILED,
                        memory_order_release);
  return page;
}

void ds_conns_atfork_child(void) {
  if (ds_page_ptr && ds_page_pid != getpid()) munmap(ds_page_ptr, DS_PAGE_SIZE);
  ds_page_ptr = NULL;
  atomic_store(&ds_page_state, DS_PAGE_NONE);
}

int ds_conn_class_of(const struct sockaddr *kernel_peer) {
  unsigned char a[16];
  if (!kernel_peer || (kernel_peer->sa_family != AF_INET && kernel_peer->sa_family != AF_INET6))
    return DS_CONN_KERNEL;
  return ds_is_loopback(ds_addr_bytes(kernel_peer, a), a) ? DS_CONN_LOOPBACK : DS_CONN_KERNEL;
}

void ds_conn_opened(struct ds_sock *s, int class) {
  if (s->counted || s->type != SOCK_STREAM) return;
  struct ds_conn_page *page = ds_page();
  if (!page) return;
  atomic_fetch_add_explicit(&page->open[class], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&page->total[class], 1, memory_order_relaxed);
  s->counted = class + 1;
  s->counted_pid = getpid();
}

void ds_conn_connected(struct ds_sock *s, int rc, const struct sockaddr *peer, int vpp) {
  if ((rc == 0 || errno == EINPROGRESS) && ds_conns_counting())
    ds_conn_opened(s, vpp ? DS_CONN_VPP : ds_conn_class_of(peer)); /* ds_page keeps errno */
}

void ds_conn_closed(struct ds_sock *s) {
  int class = s->counted - 1;
  s->counted = 0;
  if (class < 0 || s->counted_pid != getpid()) return;
  struct ds_conn_page *page = ds_page_ptr;
  if (page && atomic_load_explicit(&ds_page_state, memory_order_acquire) == DS_PAGE_READY)
    atomic_fetch_sub_explicit(&page->open[class], 1, memory_order_relaxed);
}

int ds_conns_counting(void) {
  int state = atomic_load_explicit(&ds_page_state, memory_order_acquire);
  if (DS_LIKELY(state != DS_PAGE_NONE)) return state == DS_PAGE_READY;
  const char *report = getenv("VCL_REPORT_SOCKET");
  if (report && *report) return 1; /* the page is made at the first count */
  /* nothing to report to: not asked again at every connect and accept (until a fork) */
  int none = DS_PAGE_NONE;
  atomic_compare_exchange_strong(&ds_page_state, &none, DS_PAGE_FAILED);
  return 0;
}
