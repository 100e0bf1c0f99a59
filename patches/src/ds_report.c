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
 * thread-handoff (ds_threads.c), half-close (ds_socket.c). */
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

void ds_report(const char *state, const char *fmt, ...) {
  const char *path = getenv("VCL_REPORT_SOCKET");
  if (!path || !*path) return;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path) return;
  strcpy(sun.sun_path, path);
  int saved = errno;
  char detail[320] = "", container[64], comm[32];
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
  }
  const char *name = getenv("LDP_APP_NAME"); /* the injector sets it to the container's name */
  snprintf(container, sizeof container, "%s", name && *name ? name : "-");
  snprintf(comm, sizeof comm, "%s", program_invocation_short_name);
  ds_clean(detail);
  ds_clean(container);
  ds_clean(comm);
  char line[512];
  int n = snprintf(line, sizeof line, "vcl-report/1\t%s\t%d\t%s\t%s\t%s", container,
                   (int)getpid(), comm, state, detail);
  if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
  /* The kernel's socket calls: ours would treat this socket as the app's. */
  int fd = LIBC(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0) {
    (void)LIBC(sendto)(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (struct sockaddr *)&sun, sizeof sun);
    LIBC(close)(fd);
  }
  errno = saved;
}
