/* One datagram per event to the node agent, so that it can tell, per container, whether
 * the preload took and whether LDP loaded: a process that never reports (a static binary,
 * a non-glibc runtime) or reports "ldp-failed" (a library missing in the app's image) is
 * shown unhealthy by vcl-status instead of silently running on the kernel.
 *
 * VCL_REPORT_SOCKET names the agent's SOCK_DGRAM socket in the pod's directory (read-only
 * mounted: sending to a socket needs no write access to the mount). A datagram is sent
 * with MSG_DONTWAIT and never retried: reporting must not slow or block the app, and a
 * missing agent costs one failed sendto. Format (one line, tab-separated, <= 512 bytes):
 *   vcl-report/1 <container> <pid> <comm> <state> <detail>
 * state: started (the constructor ran), ldp-loaded, ldp-failed, vpp-unreachable,
 * disabled (a malformed rule), and what a running app did that VPP cannot serve:
 * thread-handoff (ds_threads.c), half-close (ds_socket.c); and once per process that
 * connects, "conns" with its live connection counts page and a pidfd (ds_conns.c). */
#include "dualstack.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

extern char *program_invocation_short_name;

/* Tabs and newlines would break the line format; anything else is the agent's to escape. */
static void ds_clean(char *s) {
  for (; *s; s++)
    if (*s == '\t' || *s == '\n' || *s == '\r') *s = ' ';
}

/* One datagram, with fds passed along (SCM_RIGHTS) when nfds > 0; 0 if it was sent. */
static int ds_report_v(const int *fds, int nfds, const char *state, const char *fmt,
                       va_list ap) {
  const char *path = getenv("VCL_REPORT_SOCKET");
  if (!path || !*path) return -1;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path) return -1;
  strcpy(sun.sun_path, path);
  int saved = errno;
  char detail[320] = "", container[64], comm[32];
  if (fmt) vsnprintf(detail, sizeof detail, fmt, ap);
  /* The container's name, as the injector sets it (older injections: LDP_APP_NAME). */
  const char *name = getenv("VCL_CONTAINER");
  if (!name || !*name) name = getenv("LDP_APP_NAME");
  snprintf(container, sizeof container, "%s", name && *name ? name : "-");
  snprintf(comm, sizeof comm, "%s", program_invocation_short_name);
  ds_clean(detail);
  ds_clean(container);
  ds_clean(comm);
  char line[512];
  int n = snprintf(line, sizeof line, "vcl-report/1\t%s\t%d\t%s\t%s\t%s", container,
                   (int)getpid(), comm, state, detail);
  if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
  struct iovec iov = {.iov_base = line, .iov_len = (size_t)n};
  union {
    char buf[CMSG_SPACE(sizeof(int) * 2)];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg = {.msg_name = &sun, .msg_namelen = sizeof sun, .msg_iov = &iov,
                       .msg_iovlen = 1};
  if (nfds > 0 && nfds <= 2) {
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
  }
  /* The kernel's socket calls: ours would treat this socket as the app's. */
  int rc = -1, fd = LIBC(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0) {
    rc = LIBC(sendmsg)(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -1 : 0;
    LIBC(close)(fd);
  }
  errno = saved;
  return rc;
}

void ds_report(const char *state, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ds_report_v(NULL, 0, state, fmt, ap);
  va_end(ap);
}

int ds_report_fds(const int *fds, int nfds, const char *state, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = ds_report_v(fds, nfds, state, fmt, ap);
  va_end(ap);
  return rc;
}
