/* An allocator that, like jemalloc, makes a system call through syscall() while holding
 * its (non-recursive) initialisation lock on its first malloc: jemalloc closes a /proc file
 * with syscall(SYS_close) there. The interposer must serve that close without allocating,
 * or the process deadlocks on this lock (redis-server did). CI only; never shipped. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;

__attribute__((visibility("default"))) void *malloc(size_t n) {
  if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&init_lock);
    if (!ready) {
      syscall(SYS_close, -1); /* EBADF; what matters is the path it takes */
      __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_lock);
  }
  return __libc_malloc(n);
}
