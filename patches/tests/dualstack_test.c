/* Exercises every call libvcl_dualstack.so intercepts, one scenario per run:
 *   dualstack_test <scenario>
 * Run under LD_PRELOAD with VCL_DUALSTACK_TEST=1 VCL_KERNEL_CIDRS=127.0.0.1/32, so that
 * 127.0.0.1 (and ::ffff:127.0.0.1) stays on the kernel while 127.0.0.2 and ::1 move; each
 * socket's path is checked through vcl_dualstack_path(). Prints "ok <scenario>" on success.
 * Against a real VPP (e2e/interposer) the moved addresses are VPP's own, named by
 * DUALSTACK_TEST_MOVED / DUALSTACK_TEST_MOVED6, and the production rules apply. VPP 26.06
 * never connects a VCL app to its own listener, so there the moved servers are another
 * process's: with DUALSTACK_TEST_PEER_PORT set, a moved server is the echo peer on that
 * port (e2e/interposer/peer.py), and listen_both's moved client is a child program. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <unistd.h>

extern char **environ;

enum { P_NONE = -1, P_PENDING, P_KERNEL, P_VCL, P_BOTH };
#define KERNEL_ADDR "127.0.0.1"
#define MOVED_ADDR moved_addr(0)
#define MOVED6_ADDR moved_addr(1)

static const char *moved_addr(int v6) {
  const char *v = getenv(v6 ? "DUALSTACK_TEST_MOVED6" : "DUALSTACK_TEST_MOVED");
  return v && *v ? v : v6 ? "::1" : "127.0.0.2";
}

#define CHECK(c)                                                                  \
  do {                                                                            \
    if (!(c)) {                                                                   \
      fprintf(stderr, "FAIL %s:%d: %s (errno %d: %s)\n", __FILE__, __LINE__, #c, \
              errno, strerror(errno));                                            \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

static int (*path_of)(int);

static void expect_path(int fd, int want) {
  int got = path_of(fd);
  if (got != want) {
    fprintf(stderr, "FAIL: fd %d path %d, expected %d\n", fd, got, want);
    exit(1);
  }
}

static socklen_t make_addr(struct sockaddr_storage *ss, const char *host, int port) {
  memset(ss, 0, sizeof *ss);
  if (strchr(host, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET6, host, &a->sin6_addr) == 1);
    return sizeof *a;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  CHECK(inet_pton(AF_INET, host, &a->sin_addr) == 1);
  return sizeof *a;
}

static int port_of(int fd) {
  struct sockaddr_storage ss;
  socklen_t l = sizeof ss;
  CHECK(getsockname(fd, (struct sockaddr *)&ss, &l) == 0);
  return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* ---- an echo server in a thread: accepts n connections, echoes each until EOF ---- */
struct server {
  int fd, n;
  pthread_t t;
};

static void *serve(void *arg) {
  struct server *s = arg;
  for (int i = 0; i < s->n; i++) {
    int c = accept(s->fd, NULL, NULL);
    CHECK(c >= 0);
    CHECK(c < (1 << 20)); /* the app only ever sees kernel-range fds */
    char buf[4096];
    ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0) CHECK(write(c, buf, (size_t)r) == r);
    CHECK(close(c) == 0);
  }
  return NULL;
}

/* The echo peer's port (another VCL app on the same VPP), or 0: servers are in-process. */
static int peer_port(void) {
  const char *v = getenv("DUALSTACK_TEST_PEER_PORT");
  return v && *v ? atoi(v) : 0;
}

static int start_server(struct server *s, const char *host, int n, int want_path) {
  if (want_path == P_VCL && peer_port()) {
    s->fd = -1;
    return peer_port();
  }
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, host, 0);
  s->fd = socket(ss.ss_family, SOCK_STREAM, 0);
  CHECK(s->fd >= 0);
  int one = 1;
  CHECK(setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
  CHECK(bind(s->fd, (struct sockaddr *)&ss, l) == 0);
  CHECK(listen(s->fd, 16) == 0);
  expect_path(s->fd, want_path);
  s->n = n;
  CHECK(pthread_create(&s->t, NULL, serve, s) == 0);
  return port_of(s->fd);
}

static void stop_server(struct server *s) {
  if (s->fd < 0) return;
  CHECK(pthread_join(s->t, NULL) == 0);
  CHECK(close(s->fd) == 0);
}

static void echo_check(int fd, const char *msg) {
  size_t n = strlen(msg);
  char buf[256] = {0};
  CHECK(send(fd, msg, n, 0) == (ssize_t)n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, n - got, 0);
    CHECK(r > 0);
    got += (size_t)r;
  }
  CHECK(memcmp(buf, msg, n) == 0);
}

/* Retries a refused connect for a while: with multi-thread-workers a listener is served
 * through VPP once its thread accepts or waits on it (patches/README.md), and the server
 * threads here may not have got there yet. */
static int connect_to(const char *host, int port, int want_path) {
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, host, port);
  for (int tries = 0;; tries++) {
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    expect_path(fd, P_PENDING);
    if (connect(fd, (struct sockaddr *)&ss, l) != 0) {
      CHECK(errno == ECONNREFUSED && tries < 300);
      close(fd);
      usleep(10000);
      continue;
    }
    expect_path(fd, want_path);
    return fd;
  }
}

/* Blocking connect to a kernel and a moved destination, with a both-sides echo. */
static void t_tcp_blocking(void) {
  const char *hosts[] = {KERNEL_ADDR, MOVED_ADDR};
  int paths[] = {P_KERNEL, P_VCL};
  for (int i = 0; i < 2; i++) {
    struct server s;
    int port = start_server(&s, hosts[i], 1, paths[i]);
    int fd = connect_to(hosts[i], port, paths[i]);
    echo_check(fd, "hello over tcp");
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    CHECK(getpeername(fd, (struct sockaddr *)&peer, &pl) == 0);
    CHECK(ntohs(((struct sockaddr_in *)&peer)->sin_port) == port);
    /* VPP 26.06's cut-through has no half-close: the peer app would never see EOF
     * (e2e/interposer/test_with_real_ldp.py::test_half_close_between_apps). */
    if (!(paths[i] == P_VCL && peer_port())) {
      CHECK(shutdown(fd, SHUT_WR) == 0);
      char c;
      CHECK(read(fd, &c, 1) == 0); /* the server saw EOF and closed */
    }
    CHECK(close(fd) == 0);
    stop_server(&s);
  }
}

/* Options set before connect are replayed on the moved socket. */
static void t_sockopt(void) {
  struct server s;
  int port = start_server(&s, MOVED_ADDR, 1, P_VCL);
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, MOVED_ADDR, port);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, v = 0;
  socklen_t vl = sizeof v;
  CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
  CHECK(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0);
  CHECK(connect(fd, (struct sockaddr *)&ss, l) == 0);
  expect_path(fd, P_VCL);
  CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1);
  vl = sizeof v;
  CHECK(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &vl) == 0 && v == 1);
  echo_check(fd, "options");
  close(fd);
  stop_server(&s);
}

/* Non-blocking connect (fcntl and ioctl FIONBIO), completion seen through poll. */
static void t_tcp_nonblocking(void) {
  const char *hosts[] = {KERNEL_ADDR, MOVED_ADDR};
  int paths[] = {P_KERNEL, P_VCL};
  for (int i = 0; i < 2; i++) {
    struct server s;
    int port = start_server(&s, hosts[i], 1, paths[i]);
    struct sockaddr_storage ss;
    socklen_t l = make_addr(&ss, hosts[i], port);
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    if (i == 0)
      CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
    else
      CHECK(ioctl(fd, FIONBIO, &on) == 0);
    int rc = connect(fd, (struct sockaddr *)&ss, l);
    CHECK(rc == 0 || errno == EINPROGRESS);
    expect_path(fd, paths[i]);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    CHECK(poll(&p, 1, -1) == 1 && (p.revents & POLLOUT));
    int err = -1;
    socklen_t el = sizeof err;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0);
    char buf[8];
    CHECK(recv(fd, buf, sizeof buf, 0) == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
    CHECK(send(fd, "nb", 2, 0) == 2);
    p.events = POLLIN;
    CHECK(poll(&p, 1, -1) == 1 && (p.revents & POLLIN));
    CHECK(recv(fd, buf, sizeof buf, 0) == 2 && memcmp(buf, "nb", 2) == 0);
    close(fd);
    stop_server(&s);
  }
}

/* A socket registered in epoll before connect keeps its registration (events and data)
 * after it moved; a kernel socket in the same epoll keeps working beside it. */
static void t_epoll(void) {
  struct server sk, sv;
  int pk = start_server(&sk, KERNEL_ADDR, 1, P_KERNEL);
  int pv = start_server(&sv, MOVED_ADDR, 1, P_VCL);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  CHECK(ep >= 0);
  int fds[2];
  const char *hosts[] = {KERNEL_ADDR, MOVED_ADDR};
  int ports[] = {pk, pv};
  for (int i = 0; i < 2; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.u64 = 1000 + (uint64_t)i};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) == 0);
    struct sockaddr_storage ss;
    socklen_t l = make_addr(&ss, hosts[i], ports[i]);
    int rc = connect(fds[i], (struct sockaddr *)&ss, l);
    CHECK(rc == 0 || errno == EINPROGRESS);
  }
  expect_path(fds[0], P_KERNEL);
  expect_path(fds[1], P_VCL);
  int seen = 0;
  struct epoll_event evs[4];
  while (seen != 3) {
    int n = epoll_wait(ep, evs, 4, -1);
    CHECK(n > 0);
    for (int j = 0; j < n; j++) {
      CHECK(evs[j].data.u64 == 1000 || evs[j].data.u64 == 1001);
      CHECK(evs[j].events & EPOLLOUT);
      CHECK(!(evs[j].events & (EPOLLHUP | EPOLLERR))); /* a fresh connection, not a failed one */
      seen |= 1 << (evs[j].data.u64 - 1000);
    }
  }
  for (int i = 0; i < 2; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 2000 + (uint64_t)i};
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev) == 0);
    CHECK(send(fds[i], "ep", 2, 0) == 2);
  }
  seen = 0;
  while (seen != 3) {
    int n = epoll_pwait(ep, evs, 1, -1, NULL); /* one at a time: both sides must surface */
    CHECK(n == 1 && (evs[0].events & EPOLLIN));
    int i = (int)(evs[0].data.u64 - 2000);
    CHECK(i == 0 || i == 1);
    char buf[4];
    CHECK(recv(fds[i], buf, sizeof buf, 0) == 2);
    seen |= 1 << i;
  }
  CHECK(send(fds[1], "p2", 2, 0) == 2); /* epoll_pwait2 (timespec timeout) sees it too */
  CHECK(epoll_pwait2(ep, evs, 4, NULL, NULL) == 1 && evs[0].data.u64 == 2001);
  char p2[4];
  CHECK(recv(fds[1], p2, sizeof p2, 0) == 2);
  for (int i = 0; i < 2; i++) {
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL) == 0);
    close(fds[i]);
  }
  struct timespec zero = {0, 0};
  CHECK(epoll_wait(ep, evs, 4, 0) == 0 && epoll_pwait2(ep, evs, 4, &zero, NULL) == 0);
  close(ep);
  stop_server(&sk);
  stop_server(&sv);
}

/* select() and pselect() over one kernel and one moved socket. */
static void t_select(void) {
  struct server sk, sv;
  int fk = connect_to(KERNEL_ADDR, start_server(&sk, KERNEL_ADDR, 1, P_KERNEL), P_KERNEL);
  int fv = connect_to(MOVED_ADDR, start_server(&sv, MOVED_ADDR, 1, P_VCL), P_VCL);
  fd_set r;
  struct timeval tv = {0, 0};
  FD_ZERO(&r);
  FD_SET(fk, &r);
  FD_SET(fv, &r);
  int max = (fk > fv ? fk : fv) + 1;
  CHECK(select(max, &r, NULL, NULL, &tv) == 0); /* nothing to read yet */
  CHECK(send(fv, "s", 1, 0) == 1);
  FD_ZERO(&r);
  FD_SET(fk, &r);
  FD_SET(fv, &r);
  CHECK(select(max, &r, NULL, NULL, NULL) == 1 && FD_ISSET(fv, &r) && !FD_ISSET(fk, &r));
  char c;
  CHECK(recv(fv, &c, 1, 0) == 1);
  CHECK(send(fk, "k", 1, 0) == 1);
  sigset_t none;
  sigemptyset(&none);
  FD_ZERO(&r);
  FD_SET(fk, &r);
  FD_SET(fv, &r);
  CHECK(pselect(max, &r, NULL, NULL, NULL, &none) == 1 && FD_ISSET(fk, &r) && !FD_ISSET(fv, &r));
  fd_set w;
  FD_ZERO(&w);
  FD_SET(fv, &w);
  CHECK(select(max, NULL, &w, NULL, &tv) == 1 && FD_ISSET(fv, &w));
  CHECK(recv(fk, &c, 1, 0) == 1);
  struct pollfd p[2] = {{.fd = fk, .events = POLLIN}, {.fd = fv, .events = POLLIN}};
  struct timespec zero = {0, 0};
  CHECK(ppoll(p, 2, &zero, &none) == 0);
  close(fk);
  close(fv);
  stop_server(&sk);
  stop_server(&sv);
}

/* dup, dup2, dup3 and F_DUPFD of a moved socket: every copy reaches the VCL side; the
 * connection ends only when the last copy closes. dup2 over a moved fd releases it. */
static void t_dup(void) {
  struct server s;
  int fd = connect_to(MOVED_ADDR, start_server(&s, MOVED_ADDR, 1, P_VCL), P_VCL);
  int d1 = dup(fd), d2 = fcntl(fd, F_DUPFD_CLOEXEC, 100), d3 = dup3(fd, 200, O_CLOEXEC);
  CHECK(d1 >= 0 && d2 >= 100 && d3 == 200);
  CHECK(dup2(fd, 150) == 150);
  expect_path(150, P_VCL);
  expect_path(d2, P_VCL);
  CHECK(fcntl(d2, F_GETFD) & FD_CLOEXEC);
  CHECK(close(fd) == 0);
  echo_check(d1, "via dup");
  echo_check(150, "via dup2");
  int other = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(dup2(other, d2) == d2); /* d2 now names a fresh pending socket */
  expect_path(d2, P_PENDING);
  echo_check(d3, "via dup3");
  CHECK(dup2(-1, d3) == -1 && errno == EBADF);
  expect_path(d3, P_VCL); /* a failed dup2 leaves the target alone */
  close(d1);
  close(d3);
  close(150);
  close(d2);
  close(other);
  stop_server(&s);
}

/* close_range() forgets moved sockets; a reused fd number starts fresh. */
static void t_close_range(void) {
  struct server s;
  int fd = connect_to(MOVED_ADDR, start_server(&s, MOVED_ADDR, 1, P_VCL), P_VCL);
  echo_check(fd, "before close_range");
  CHECK(close_range((unsigned)fd, (unsigned)fd, 0) == 0);
  expect_path(fd, P_NONE);
  int extra[64], n = 0, again;
  while ((again = socket(AF_INET, SOCK_STREAM, 0)) != fd) { /* until the number comes back */
    CHECK(again >= 0 && n < 64);
    extra[n++] = again;
  }
  expect_path(again, P_PENDING);
  close(again);
  while (n > 0) close(extra[--n]);
  stop_server(&s);
}

/* A moved socket keeps working in a forked child, and in the parent after the child exits. */
static void t_fork(void) {
  struct server s;
  int fd = connect_to(MOVED_ADDR, start_server(&s, MOVED_ADDR, 1, P_VCL), P_VCL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    expect_path(fd, P_VCL);
    echo_check(fd, "from the child");
    int k = socket(AF_INET, SOCK_STREAM, 0); /* the table works after fork */
    CHECK(k >= 0);
    expect_path(k, P_PENDING);
    _exit(0);
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  echo_check(fd, "from the parent");
  close(fd);
  stop_server(&s);
}

/* Eight threads, each opening, moving or not, and closing sockets concurrently. */
#define THREADS 8
#define ROUNDS 40
static int thread_ports[2];
static void *worker(void *arg) {
  long id = (long)arg;
  for (int r = 0; r < ROUNDS; r++) {
    int moved = (int)((id + r) % 2);
    int fd = connect_to(moved ? MOVED_ADDR : KERNEL_ADDR, thread_ports[moved],
                        moved ? P_VCL : P_KERNEL);
    char msg[32];
    snprintf(msg, sizeof msg, "t%ld r%d", id, r);
    echo_check(fd, msg);
    close(fd);
  }
  return NULL;
}
static void t_threads(void) {
  struct server sk, sv;
  thread_ports[0] = start_server(&sk, KERNEL_ADDR, THREADS * ROUNDS / 2, P_KERNEL);
  thread_ports[1] = start_server(&sv, MOVED_ADDR, THREADS * ROUNDS / 2, P_VCL);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
  for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
  stop_server(&sk);
  stop_server(&sv);
}

/* multi-thread-workers: a listener made on the main thread, accepted by two worker threads
 * from epolls of their own (Envoy's shape). With VCL's per-thread workers only the thread
 * that made a listening session may use it; the interposer gives each thread its own. */
#define MT_CONNS 24
static int mt_listener_fd;
static atomic_int mt_served, mt_stop;
static int mt_by_thread[2];
static void *mt_worker(void *arg) {
  long id = (long)arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  CHECK(ep >= 0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = mt_listener_fd};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, mt_listener_fd, &ev) == 0);
  while (!atomic_load(&mt_stop)) {
    struct epoll_event got[4];
    int n = epoll_wait(ep, got, 4, 50);
    CHECK(n >= 0);
    for (;;) {
      int c = accept4(mt_listener_fd, NULL, NULL, 0);
      if (c < 0) {
        CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
        break;
      }
      char buf[64];
      ssize_t r = read(c, buf, sizeof buf);
      CHECK(r > 0);
      CHECK(write(c, buf, (size_t)r) == r);
      CHECK(close(c) == 0);
      mt_by_thread[id]++;
      atomic_fetch_add(&mt_served, 1);
    }
  }
  close(ep);
  return NULL;
}
static void mt_listener_on(const char *host, int dual) {
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, host, 0);
  int one = 1;
  mt_listener_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  CHECK(mt_listener_fd >= 0);
  CHECK(setsockopt(mt_listener_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
  CHECK(bind(mt_listener_fd, (struct sockaddr *)&ss, l) == 0);
  CHECK(listen(mt_listener_fd, 64) == 0);
  expect_path(mt_listener_fd, P_VCL);
  int port = port_of(mt_listener_fd);
  CHECK(port > 0);
  pthread_t t[2];
  for (long i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, mt_worker, (void *)i) == 0);
  usleep(100000); /* both workers wait on the listener */
  for (int i = 0; i < MT_CONNS; i++) {
    int fd = connect_to(dual && i % 2 ? MOVED6_ADDR : MOVED_ADDR, port, P_VCL);
    echo_check(fd, "mt");
    close(fd);
  }
  for (int i = 0; i < 200 && atomic_load(&mt_served) < MT_CONNS; i++) usleep(10000);
  atomic_store(&mt_stop, 1);
  for (int i = 0; i < 2; i++) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(atomic_load(&mt_served) == MT_CONNS);
  /* each thread accepted through a listener of its own */
  CHECK(mt_by_thread[0] > 0 && mt_by_thread[1] > 0);
  close(mt_listener_fd);
}
static void t_mt_listener(void) { mt_listener_on(MOVED_ADDR, 0); }
/* The same on [::], with IPv4 and IPv6 clients: each thread's listeners are one per family. */
static void t_mt_listener_dual(void) { mt_listener_on("::", 1); }

/* multi-thread-workers: a listener made by the main thread and accepted by another (a
 * thread pool's shape): the main thread's own VCL listener must go, since VPP would feed
 * it connections nobody accepts, and only the main thread may close it, at its next call
 * through the interposer. VCL's close signals VPP with a write() through the interposer
 * again: that inner call must not close the same listener a second time (VCL 26.06 spun
 * for good on the session's lock). */
static int mt_orphan_fd;
static void *mt_orphan_acceptor(void *arg) {
  CHECK(accept(mt_orphan_fd, NULL, NULL) < 0 && errno == EAGAIN);
  return NULL;
}
static void t_mt_orphan(void) {
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, MOVED_ADDR, 0);
  mt_orphan_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  CHECK(mt_orphan_fd >= 0 && bind(mt_orphan_fd, (struct sockaddr *)&ss, l) == 0);
  CHECK(listen(mt_orphan_fd, 4) == 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, mt_orphan_acceptor, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(write(1, "", 0) == 0); /* the first call through here closes the main's listener */
  CHECK(write(1, "", 0) == 0);
  CHECK(close(mt_orphan_fd) == 0);
}

/* multi-thread-workers: a connected session handed to another thread cannot work; the
 * interposer says so (stderr, and a "thread-handoff" report to the agent). */
static int mt_handoff_fd;
static void *mt_other(void *arg) {
  errno = 0;
  ssize_t r = send(mt_handoff_fd, "x", 1, 0);
  printf("handoff send %zd errno %d\n", r, r < 0 ? errno : 0);
  return NULL;
}
static void t_mt_handoff(void) {
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, MOVED_ADDR, 0);
  int ls = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&ss, l) == 0 && listen(ls, 4) == 0);
  CHECK(accept(ls, NULL, NULL) < 0 && errno == EAGAIN); /* this thread accepts: served */
  mt_handoff_fd = connect_to(MOVED_ADDR, port_of(ls), P_VCL);
  int c = -1;
  for (int i = 0; i < 500 && c < 0; i++, usleep(10000)) c = accept(ls, NULL, NULL);
  CHECK(c >= 0);
  CHECK(send(mt_handoff_fd, "own", 3, 0) == 3); /* its own thread: fine */
  pthread_t t;
  CHECK(pthread_create(&t, NULL, mt_other, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  close(c);
  close(mt_handoff_fd);
  close(ls);
}

/* UDP: the first sendto decides; recvfrom, sendmsg/recvmsg and sendmmsg/recvmmsg follow. */
static void t_udp(void) {
  const char *hosts[] = {KERNEL_ADDR, MOVED_ADDR};
  int paths[] = {P_KERNEL, P_VCL};
  for (int i = 0; i < 2; i++) {
    struct sockaddr_storage ss, from;
    socklen_t l = make_addr(&ss, hosts[i], 0), fl = sizeof from;
    int srv = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(bind(srv, (struct sockaddr *)&ss, l) == 0);
    expect_path(srv, paths[i]);
    l = make_addr(&ss, hosts[i], port_of(srv));
    int cli = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(sendto(cli, "d1", 2, 0, (struct sockaddr *)&ss, l) == 2);
    expect_path(cli, paths[i]);
    char buf[16];
    CHECK(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == 2);
    CHECK(sendto(srv, "r1", 2, 0, (struct sockaddr *)&from, fl) == 2);
    CHECK(recv(cli, buf, sizeof buf, 0) == 2 && memcmp(buf, "r1", 2) == 0);
    struct iovec iov = {.iov_base = "d2", .iov_len = 2};
    struct msghdr m = {.msg_name = &ss, .msg_namelen = l, .msg_iov = &iov, .msg_iovlen = 1};
    CHECK(sendmsg(cli, &m, 0) == 2);
    char rb[16];
    struct iovec riov = {.iov_base = rb, .iov_len = sizeof rb};
    struct msghdr rm = {.msg_iov = &riov, .msg_iovlen = 1};
    CHECK(recvmsg(srv, &rm, 0) == 2 && memcmp(rb, "d2", 2) == 0);
    struct mmsghdr mm[2] = {{.msg_hdr = m}, {.msg_hdr = m}};
    CHECK(sendmmsg(cli, mm, 2, 0) == 2);
    struct mmsghdr rmm[2] = {{.msg_hdr = rm}, {.msg_hdr = rm}};
    int got = 0;
    while (got < 2) {
      int n = recvmmsg(srv, rmm + got, (unsigned)(2 - got), 0, NULL);
      CHECK(n > 0);
      got += n;
    }
    close(cli);
    close(srv);
  }
}

/* IPv6: ::1 moves (test rules), a v4-mapped kernel address stays on the kernel. */
static void t_ipv6(void) {
  struct server s;
  int port = start_server(&s, MOVED6_ADDR, 1, P_VCL);
  int fd = connect_to(MOVED6_ADDR, port, P_VCL);
  echo_check(fd, "over ipv6");
  close(fd);
  stop_server(&s);
  port = start_server(&s, KERNEL_ADDR, 1, P_KERNEL);
  fd = connect_to("::ffff:127.0.0.1", port, P_KERNEL);
  echo_check(fd, "v4-mapped");
  close(fd);
  stop_server(&s);
}

/* readv/writev and sendfile on a moved socket. */
static void t_vectors(void) {
  struct server s;
  int fd = connect_to(MOVED_ADDR, start_server(&s, MOVED_ADDR, 1, P_VCL), P_VCL);
  struct iovec w[2] = {{.iov_base = "ab", .iov_len = 2}, {.iov_base = "cd", .iov_len = 2}};
  CHECK(writev(fd, w, 2) == 4);
  char got4[4];
  size_t got = 0;
  while (got < 4) {
    struct iovec r = {.iov_base = got4 + got, .iov_len = 4 - got};
    ssize_t n = readv(fd, &r, 1);
    CHECK(n > 0);
    got += (size_t)n;
  }
  CHECK(memcmp(got4, "abcd", 4) == 0);
  char tmpl[] = "/tmp/dualstack-XXXXXX";
  int file = mkstemp(tmpl);
  CHECK(file >= 0 && write(file, "filedata", 8) == 8);
  unlink(tmpl);
  off_t off = 0;
  CHECK(sendfile(fd, file, &off, 8) == 8);
  char buf[8];
  got = 0;
  while (got < 8) {
    ssize_t n = read(fd, buf + got, 8 - got);
    CHECK(n > 0);
    got += (size_t)n;
  }
  CHECK(memcmp(buf, "filedata", 8) == 0);
  close(file);
  close(fd);
  stop_server(&s);
}

/* VCL_KERNEL_LISTEN=both: a wildcard listener accepts from both stacks, through blocking
 * accept and through epoll. In test mode the VCL side listens on 127.0.0.2. */
static void t_listen_both(void) {
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, "0.0.0.0", 0);
  int srv = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(bind(srv, (struct sockaddr *)&ss, l) == 0);
  CHECK(listen(srv, 8) == 0);
  expect_path(srv, P_BOTH);
  CHECK(!(fcntl(srv, F_GETFL) & O_NONBLOCK)); /* the app still sees a blocking listener */
  int port = port_of(srv);
  int ck = connect_to(KERNEL_ADDR, port, P_KERNEL);
  int a1 = accept(srv, NULL, NULL);
  CHECK(a1 >= 0);
  expect_path(a1, P_NONE); /* accepted on the kernel: a plain kernel fd */
  int cv = -1;
  pid_t child = -1;
  if (peer_port()) { /* VPP will not connect an app to its own listener: another app does */
    char arg[16];
    snprintf(arg, sizeof arg, "%d", port);
    /* posix_spawn, not fork: VCL's fork handler would make the child, until its exec,
     * one more worker of this app sharing the listener. */
    char *child_argv[] = {"dualstack_test", "send_v", arg, NULL};
    CHECK(posix_spawn(&child, "/proc/self/exe", NULL, NULL, child_argv, environ) == 0);
  } else {
    cv = connect_to(MOVED_ADDR, port, P_VCL);
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = srv};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev) == 0);
  CHECK(epoll_wait(ep, &ev, 1, -1) == 1 && ev.data.fd == srv);
  int a2 = accept4(srv, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  CHECK(a2 >= 0);
  expect_path(a2, P_VCL);
  CHECK(fcntl(a2, F_GETFL) & O_NONBLOCK);
  CHECK(fcntl(a2, F_GETFD) & FD_CLOEXEC); /* the placeholder carries the fd flag */
  int on = 1;
  CHECK(ioctl(srv, FIONBIO, &on) == 0);
  CHECK(accept(srv, NULL, NULL) == -1 && errno == EAGAIN);
  CHECK(send(ck, "K", 1, 0) == 1 && (cv < 0 || send(cv, "V", 1, 0) == 1));
  char c;
  CHECK(read(a1, &c, 1) == 1 && c == 'K');
  struct pollfd p = {.fd = a2, .events = POLLIN};
  CHECK(poll(&p, 1, -1) == 1);
  CHECK(read(a2, &c, 1) == 1 && c == 'V');
  if (child > 0) {
    int st;
    CHECK(write(a2, "A", 1) == 1); /* the child waits for this before it exits */
    CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  close(ep);
  close(a1);
  close(a2);
  close(ck);
  if (cv >= 0) close(cv);
  close(srv);
}

/* A [::] listener with IPV6_V6ONLY off takes IPv4 clients as well as IPv6 ones, through a
 * blocking accept and through epoll; an IPv4 client is seen as ::ffff:a.b.c.d, also by
 * getpeername. VCL listens per family, so behind the fd are two VCL listeners. Runs with
 * VCL_KERNEL_LISTEN=both too (the kernel side then listens as well). */
static void t_listen_dual(void) {
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, "::", 0);
  int srv = socket(AF_INET6, SOCK_STREAM, 0), off = 0, one = 1;
  CHECK(srv >= 0);
  CHECK(setsockopt(srv, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0);
  CHECK(setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
  CHECK(bind(srv, (struct sockaddr *)&ss, l) == 0);
  CHECK(listen(srv, 8) == 0);
  const char *mode = getenv("VCL_KERNEL_LISTEN");
  expect_path(srv, mode && strcmp(mode, "both") == 0 ? P_BOTH : P_VCL);
  int port = port_of(srv);
  const char *hosts[2] = {MOVED_ADDR, MOVED6_ADDR};
  int cl[2] = {-1, -1};
  pid_t kids[2] = {-1, -1};
  for (int i = 0; i < 2; i++) {
    if (peer_port()) { /* another app: VPP will not connect an app to its own listener */
      char arg[16];
      snprintf(arg, sizeof arg, "%d", port);
      char *child_argv[] = {"dualstack_test", "send_v", arg, (char *)hosts[i], NULL};
      CHECK(posix_spawn(&kids[i], "/proc/self/exe", NULL, NULL, child_argv, environ) == 0);
    } else {
      cl[i] = connect_to(hosts[i], port, P_VCL);
      CHECK(send(cl[i], "V", 1, 0) == 1);
    }
  }
  int a[2], mapped = 0;
  for (int i = 0; i < 2; i++) {
    struct sockaddr_in6 peer;
    socklen_t pl = sizeof peer;
    if (i == 0) {
      a[i] = accept(srv, (struct sockaddr *)&peer, &pl);
    } else {
      int ep = epoll_create1(0);
      struct epoll_event ev = {.events = EPOLLIN, .data.fd = srv};
      CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev) == 0);
      CHECK(epoll_wait(ep, &ev, 1, 10000) == 1 && ev.data.fd == srv);
      a[i] = accept4(srv, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK);
      close(ep);
    }
    CHECK(a[i] >= 0);
    expect_path(a[i], P_VCL);
    CHECK(pl == sizeof peer && peer.sin6_family == AF_INET6);
    int is_mapped = IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr);
    pl = sizeof peer;
    CHECK(getpeername(a[i], (struct sockaddr *)&peer, &pl) == 0);
    CHECK(peer.sin6_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr) == is_mapped);
    mapped += is_mapped;
  }
  CHECK(mapped == 1); /* one client came over IPv4, the other over IPv6 */
  for (int i = 0; i < 2; i++) {
    struct pollfd p = {.fd = a[i], .events = POLLIN};
    char c;
    CHECK(poll(&p, 1, 10000) == 1 && read(a[i], &c, 1) == 1 && c == 'V');
    CHECK(write(a[i], "A", 1) == 1);
  }
  for (int i = 0; i < 2; i++) {
    char c;
    if (cl[i] >= 0) CHECK(read(cl[i], &c, 1) == 1 && c == 'A' && close(cl[i]) == 0);
    int st;
    if (kids[i] > 0)
      CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(a[i]);
  }
  close(srv);
}

/* A thread already blocked in epoll_wait when the epoll's first moved socket joins it
 * (grpc's pollers wait before the listener is added): it must see that socket's events. */
static int late_ep;
static atomic_int late_tid;
static void *late_waiter(void *arg) {
  struct epoll_event ev;
  atomic_store(&late_tid, (int)syscall(SYS_gettid));
  int n = epoll_wait(late_ep, &ev, 1, 20000);
  *(uint64_t *)arg = n == 1 ? ev.data.u64 : 0;
  return NULL;
}
static void t_epoll_late_shadow(void) {
  struct server s;
  int port = start_server(&s, MOVED_ADDR, 1, P_VCL);
  late_ep = epoll_create1(EPOLL_CLOEXEC);
  int pipefd[2]; /* the epoll has a kernel fd only, as a poller's wakeup fd */
  CHECK(late_ep >= 0 && pipe(pipefd) == 0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
  CHECK(epoll_ctl(late_ep, EPOLL_CTL_ADD, pipefd[0], &ev) == 0);
  uint64_t got = 0;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, late_waiter, &got) == 0);
  /* Wait until the waiter is blocked in the kernel's epoll_wait/epoll_pwait. */
  int blocked = 0;
  for (int i = 0; i < 1000 && !blocked; i++, usleep(10000)) {
    char path[64], line[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", atomic_load(&late_tid));
    FILE *f = atomic_load(&late_tid) ? fopen(path, "re") : NULL;
    if (f && fgets(line, sizeof line, f)) {
      long nr = atol(line);
      blocked = nr == SYS_epoll_wait || nr == SYS_epoll_pwait;
    }
    if (f) fclose(f);
  }
  CHECK(blocked);
  int fd = connect_to(MOVED_ADDR, port, P_VCL);
  ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = 2};
  CHECK(epoll_ctl(late_ep, EPOLL_CTL_ADD, fd, &ev) == 0);
  CHECK(write(fd, "x", 1) == 1); /* the echo server answers: fd becomes readable */
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(got == 2);
  char c;
  CHECK(read(fd, &c, 1) == 1 && c == 'x');
  ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = 1};
  CHECK(write(pipefd[1], "k", 1) == 1); /* kernel fds still report, the kick never does */
  CHECK(epoll_wait(late_ep, &ev, 1, 5000) == 1 && ev.data.u64 == 1);
  close(fd);
  stop_server(&s);
  close(late_ep);
  close(pipefd[0]);
  close(pipefd[1]);
}

/* multi-thread-workers: an epoll set made by one thread, waited on by another (grpc's
 * shared pollers) cannot work; the interposer says so. */
static void *shared_poller(void *arg) {
  struct epoll_event ev;
  errno = 0;
  int n = epoll_wait(late_ep, &ev, 1, 100);
  printf("shared poller %d errno %d\n", n, n < 0 ? errno : 0);
  return arg;
}
static void t_mt_shared_epoll(void) {
  late_ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_storage ss;
  socklen_t l = make_addr(&ss, MOVED_ADDR, 9);
  int fd = socket(ss.ss_family, SOCK_DGRAM, 0); /* a moved socket, no peer needed */
  CHECK(fd >= 0 && sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, l) == 1);
  expect_path(fd, P_VCL);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 2};
  CHECK(epoll_ctl(late_ep, EPOLL_CTL_ADD, fd, &ev) == 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, shared_poller, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  close(fd);
  close(late_ep);
}

/* A moved client in peer mode (listen_both, listen_dual): a program of its own, so a VCL
 * app of its own; to MOVED_ADDR unless a host is given. */
static int send_v(const char *port, const char *host) {
  int fd = connect_to(host ? host : MOVED_ADDR, atoi(port), P_VCL);
  char c;
  CHECK(send(fd, "V", 1, 0) == 1);
  CHECK(read(fd, &c, 1) == 1 && c == 'A');
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  path_of = (int (*)(int))dlsym(RTLD_DEFAULT, "vcl_dualstack_path");
  if (!path_of) {
    fprintf(stderr, "libvcl_dualstack.so is not preloaded\n");
    return 2;
  }
  static const struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {
      {"tcp_blocking", t_tcp_blocking}, {"sockopt", t_sockopt}, {"tcp_nonblocking", t_tcp_nonblocking},
      {"epoll", t_epoll},               {"select", t_select},   {"dup", t_dup},
      {"fork", t_fork},                 {"threads", t_threads}, {"udp", t_udp},
      {"ipv6", t_ipv6},                 {"vectors", t_vectors}, {"listen_both", t_listen_both},
      {"close_range", t_close_range},   {"mt_listener", t_mt_listener},
      {"mt_orphan", t_mt_orphan},
      {"mt_handoff", t_mt_handoff},     {"listen_dual", t_listen_dual},
      {"mt_listener_dual", t_mt_listener_dual}, {"epoll_late_shadow", t_epoll_late_shadow},
      {"mt_shared_epoll", t_mt_shared_epoll},
  };
  if ((argc == 3 || argc == 4) && strcmp(argv[1], "send_v") == 0)
    return send_v(argv[2], argc == 4 ? argv[3] : NULL);
  for (size_t i = 0; argc == 2 && i < sizeof tests / sizeof tests[0]; i++) {
    if (strcmp(argv[1], tests[i].name) == 0) {
      tests[i].fn();
      printf("ok %s\n", argv[1]);
      return 0;
    }
  }
  fprintf(stderr, "usage: %s <scenario>\n", argv[0]);
  return 2;
}
