/* Loopback TCP ping-pong for the benchmark: pingpong HOST ITERATIONS [calls]
 * A server thread echoes 1 byte; the client sends 1 byte and waits for it, ITERATIONS times.
 * With "calls", the client instead makes ITERATIONS non-blocking recv() calls on its idle
 * connection (each returns EAGAIN): the cost of one intercepted call, without wake-ups.
 * Prints the elapsed nanoseconds of the loop (connection setup excluded). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listener;

static void *echo(void *arg) {
  (void)arg;
  int c = accept(listener, NULL, NULL), one = 1;
  char b;
  if (c < 0) exit(3);
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  while (recv(c, &b, 1, 0) == 1)
    if (send(c, &b, 1, 0) != 1) exit(4);
  close(c);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3 && !(argc == 4 && strcmp(argv[3], "calls") == 0)) {
    fprintf(stderr, "usage: %s HOST ITERATIONS [calls]\n", argv[0]);
    return 2;
  }
  long n = atol(argv[2]);
  struct sockaddr_in a = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) return 2;
  socklen_t l = sizeof a;
  listener = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(listener, (struct sockaddr *)&a, l) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr *)&a, &l))
    return 3;
  pthread_t t;
  pthread_create(&t, NULL, echo, NULL);
  int c = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (connect(c, (struct sockaddr *)&a, l)) return 3;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timespec t0, t1;
  char b = 'x';
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (argc == 4) {
    for (long i = 0; i < n; i++)
      if (recv(c, &b, 1, MSG_DONTWAIT) != -1) return 4;
  } else {
    for (long i = 0; i < n; i++)
      if (send(c, &b, 1, 0) != 1 || recv(c, &b, 1, 0) != 1) return 4;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  close(c);
  pthread_join(t, NULL);
  printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
  return 0;
}
