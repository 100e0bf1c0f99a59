/* Symbol resolution for both sides, the lazy loading of LDP, and the log line writer. */
#include "dualstack.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct ds_fns ds_libc_fns, ds_vcl_fns;
atomic_int ds_libc_ready, ds_vcl_ready;

static const char *const ds_names[] = {
    "socket",   "bind",       "connect",     "listen",      "accept4",      "close",
    "shutdown", "read",       "write",       "readv",       "writev",       "recv",
    "send",     "recvfrom",   "sendto",      "recvmsg",     "sendmsg",      "recvmmsg",
    "sendmmsg", "sendfile",   "getsockopt",  "setsockopt",  "getsockname",  "getpeername",
    "fcntl",    "ioctl",      "poll",        "ppoll",       "select",       "pselect",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "dup",
    "dup2",     "dup3",       "close_range",
};
_Static_assert(sizeof(ds_names) / sizeof(ds_names[0]) == sizeof(struct ds_fns) / sizeof(void *),
               "ds_names must list every member of struct ds_fns, in order");

/* Fills fns from handle; racing threads write the same values, so no lock is needed. */
static void ds_fill(struct ds_fns *fns, void *handle, void *fallback) {
  void **slots = (void **)fns;
  for (size_t i = 0; i < sizeof(ds_names) / sizeof(ds_names[0]); i++) {
    void *p = dlsym(handle, ds_names[i]);
    if (!p && fallback) p = dlsym(fallback, ds_names[i]);
    slots[i] = p;
  }
}

/* Whether the next object after us is libc (lazy wiring, no LDP preloaded behind us): then
 * RTLD_NEXT is libc, found without dlopen, which mallocs. We are first called from
 * anywhere, also from inside an allocator's initialisation: jemalloc closes a /proc file
 * with syscall(SYS_close) while holding its init lock, and redis-server hung for good when
 * a dlopen here called malloc. */
static int ds_next_is_libc(void) {
  Dl_info info;
  void *probe = dlsym(RTLD_NEXT, "socket");
  if (!probe || !dladdr(probe, &info) || !info.dli_fname) return 0;
  const char *base = strrchr(info.dli_fname, '/');
  return strcmp(base ? base + 1 : info.dli_fname, "libc.so.6") == 0;
}

const struct ds_fns *ds_libc_load(void) {
  /* The kernel side must be libc itself even when LDP is preloaded behind us: RTLD_NEXT
   * would be LDP, whose socket() makes a VCL session. */
  void *libc = ds_next_is_libc() ? RTLD_NEXT : dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  ds_fill(&ds_libc_fns, libc ? libc : RTLD_NEXT, RTLD_NEXT);
  atomic_store_explicit(&ds_libc_ready, 1, memory_order_release);
  return &ds_libc_fns;
}

static void *ds_ldp_handle;

const struct ds_fns *ds_vcl_load(void) {
  /* Stacked: the next library (stock LDP in production, libc in CI). Lazy: the dlopen'ed
   * LDP; symbols it lacks (dup, ppoll's real version) come from libc. */
  if (ds_ldp_handle)
    ds_fill(&ds_vcl_fns, ds_ldp_handle, RTLD_NEXT);
  else
    ds_fill(&ds_vcl_fns, RTLD_NEXT, NULL);
  atomic_store_explicit(&ds_vcl_ready, 1, memory_order_release);
  return &ds_vcl_fns;
}

void ds_log(const char *fmt, ...) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "vcl-dualstack[%d]: ", (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  va_end(ap);
  n += m < 0 ? 0 : (m > (int)(sizeof buf) - n - 2 ? (int)(sizeof buf) - n - 2 : m);
  buf[n++] = '\n';
  int saved = errno;
  (void)!LIBC(write)(2, buf, (size_t)n);
  errno = saved;
}

/* The app socket VCL will attach through: VCL_VPP_SAPI_SOCKET, else vcl.conf's
 * app-socket-api (VPP 26.06 reads them in that precedence). */
static int ds_app_socket_path(char *out, size_t len) {
  const char *env = getenv("VCL_VPP_SAPI_SOCKET");
  if (env && *env) {
    snprintf(out, len, "%s", env);
    return 1;
  }
  return ds_vcl_conf_value("app-socket-api", out, len);
}

/* LDP _exit(1)s in its constructor when VPP is unreachable, so before dlopen we look for
 * the app socket, without ever connecting to it: VPP 26.06 keeps a connection that closes
 * before attaching (session_api.c: sapi_socket_detach does nothing without an app worker),
 * and after a score of those its main thread blocks in recvmsg() for good, taking every
 * pod of the node down with it (e2e/interposer/test_with_real_ldp.py shows it). So:
 * an abstract socket (calico-vpp: VPP makes it in the pod's netns) must be listed as
 * listening in /proc/net/unix; a file socket (made in VPP's netns, not listed in ours)
 * must exist and be a socket. A file left by a VPP that died is the one case this misses. */
#define DS_SO_ACCEPTCON 0x10000 /* /proc/net/unix Flags of a listening socket */

static int ds_abstract_listening(const char *name, size_t n) {
  FILE *f = fopen("/proc/net/unix", "re");
  if (!f) return 1; /* no procfs: do not refuse what we cannot see */
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long flags = 0, type = 0;
    int path_at = 0;
    /* Num RefCount Protocol Flags Type St Inode Path */
    if (sscanf(line, "%*s %*s %*s %lx %lx %*s %*s %n", &flags, &type, &path_at) < 2) continue;
    if (path_at <= 0 || line[path_at] != '@') continue;
    const char *p = line + path_at + 1;
    size_t len = strcspn(p, "\n");
    found = (flags & DS_SO_ACCEPTCON) && type == SOCK_SEQPACKET && len == n && memcmp(p, name, n) == 0;
  }
  fclose(f);
  return found;
}

static int ds_probe_app_socket(const char *path, char *err, size_t errlen) {
  const char *name = path;
  if (strncmp(name, "abstract:", 9) == 0) {
    name += 9;
    size_t n = strcspn(name, ","); /* ",netns_name=..." is VPP's */
    /* VPP 26.06 sizes an abstract address as sun_family + strlen(name), so its last
     * character is not part of the address, as VCL also does. */
    if (n < 2 || n + 2 > sizeof((struct sockaddr_un *)0)->sun_path) {
      snprintf(err, errlen, "app socket name %s is not usable", path);
      return 0;
    }
    if (!ds_abstract_listening(name, n - 1)) {
      snprintf(err, errlen, "VPP app socket %s: nothing listens on it", path);
      return 0;
    }
    return 1;
  }
  if (strncmp(name, "unix:", 5) == 0) name += 5;
  else if (name[0] != '/') return 1; /* a TCP app socket: nothing cheap to check */
  struct stat st;
  if (stat(name, &st) != 0) {
    snprintf(err, errlen, "VPP app socket %s: %s", path, strerror(errno));
    return 0;
  }
  if (!S_ISSOCK(st.st_mode)) {
    snprintf(err, errlen, "VPP app socket %s: not a socket", path);
    return 0;
  }
  return 1;
}

static pthread_once_t ds_vcl_once = PTHREAD_ONCE_INIT;
static int ds_vcl_ok;
/* Set while LDP's constructor runs inside our dlopen: a socket VCL itself makes then (a TCP
 * binary-API socket) must stay on the kernel, and must not re-enter pthread_once. */
static __thread int ds_loading_ldp;

static void ds_vcl_init(void) {
  const struct ds_config *cfg = ds_config();
  if (!cfg->vcl_enabled) return;
  if (!cfg->ldp_path) {
    ds_vcl_ok = 1;
    return;
  }
  char path[256], err[384];
  if (ds_app_socket_path(path, sizeof path) && !ds_probe_app_socket(path, err, sizeof err)) {
    ds_log("VPP unreachable (%s); VCL path disabled, every socket stays on the kernel", err);
    ds_report("vpp-unreachable", "%s", err);
    return;
  }
  ds_loading_ldp = 1;
  void *h = dlopen(cfg->ldp_path, RTLD_NOW | RTLD_LOCAL);
  ds_loading_ldp = 0;
  if (!h) {
    const char *why = dlerror();
    ds_log("cannot load LDP (%s); VCL path disabled, every socket stays on the kernel", why);
    ds_report("ldp-failed", "%s", why ? why : "dlopen failed");
    return;
  }
  ds_ldp_handle = h;
  ds_vcl_load();
  DS_DEBUG("loaded LDP from %s", cfg->ldp_path);
  ds_report("ldp-loaded", "%s", cfg->ldp_path);
  ds_vcl_ok = 1;
}

int ds_vcl_available(void) {
  if (ds_loading_ldp) return 0;
  pthread_once(&ds_vcl_once, ds_vcl_init);
  return ds_vcl_ok;
}

/* Reads VCL_CONFIG for `word`, whole and outside a comment; with out, the value that
 * follows it (up to a blank or a brace) goes there, and a word without one is not found. */
int ds_vcl_conf_value(const char *word, char *out, size_t len) {
  const char *conf = getenv("VCL_CONFIG");
  FILE *f = conf ? fopen(conf, "re") : NULL;
  if (!f) return 0;
  char line[512];
  size_t n = strlen(word);
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *p = line + strspn(line, " \t");
    if (*p == '#') continue;
    char *hit = strstr(p, word);
    if (!hit || (hit != p && !strchr(" \t{", hit[-1])) || !strchr(" \t\r\n}", hit[n])) continue;
    if (!out) {
      found = 1;
      continue;
    }
    char *v = hit + n + strspn(hit + n, " \t");
    size_t vn = strcspn(v, " \t\r\n}#");
    if (vn == 0 || vn >= len) continue;
    memcpy(out, v, vn);
    out[vn] = 0;
    found = 1;
  }
  fclose(f);
  return found;
}

int ds_vcl_conf_has(const char *word) { return ds_vcl_conf_value(word, NULL, 0); }

/* A symbol of stock LDP or the VCL library under it (libvppcom), wherever LDP was loaded
 * from (dlopen'ed locally by us, or preloaded); NULL if absent. */
void *ds_vcl_sym(const char *name) {
  return dlsym(ds_ldp_handle ? ds_ldp_handle : RTLD_DEFAULT, name);
}
