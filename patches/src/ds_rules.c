/* The dual-stack rules: parsed once from the environment, then a pure decision per address. */
#include "dualstack.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DS_MAX_CIDRS 64
#define DS_DEFAULT_KERNEL_PORTS "53" /* DNS: the cluster resolver is reached via the kernel */

struct ds_cidr {
  int family;
  unsigned char addr[16];
  int prefix;
};

static struct ds_config cfg;
static struct ds_cidr cidrs[DS_MAX_CIDRS];
static int ncidrs;
static unsigned char kernel_ports[65536 / 8];

static int ds_parse_cidr(const char *tok, struct ds_cidr *c) {
  char buf[80];
  if (strlen(tok) >= sizeof buf) return -1;
  strcpy(buf, tok);
  char *slash = strchr(buf, '/');
  if (slash) *slash = 0;
  if (inet_pton(AF_INET, buf, c->addr) == 1) {
    c->family = AF_INET;
  } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
    c->family = AF_INET6;
  } else {
    return -1;
  }
  int max = c->family == AF_INET ? 32 : 128;
  c->prefix = max;
  if (slash) {
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (slash[1] == 0 || *end || p < 0 || p > max) return -1;
    c->prefix = (int)p;
  }
  return 0;
}

static int ds_parse_port(const char *tok, long *lo, long *hi) {
  char *end;
  if (!isdigit((unsigned char)tok[0])) return -1;
  *lo = strtol(tok, &end, 10);
  *hi = *lo;
  if (*end == '-') {
    if (!isdigit((unsigned char)end[1])) return -1;
    *hi = strtol(end + 1, &end, 10);
  }
  if (*end || *lo < 1 || *hi > 65535 || *lo > *hi) return -1;
  return 0;
}

/* Splits on commas and blanks; returns the first bad token's text in bad, or 0 if all parse. */
static int ds_parse_list(const char *var, const char *value, char *bad, size_t badlen) {
  char buf[4096];
  if (strlen(value) >= sizeof buf) {
    snprintf(bad, badlen, "(value longer than %zu bytes)", sizeof buf - 1);
    return -1;
  }
  snprintf(buf, sizeof buf, "%s", value);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
    int ok;
    if (strcmp(var, "VCL_KERNEL_CIDRS") == 0) {
      ok = ncidrs < DS_MAX_CIDRS && ds_parse_cidr(tok, &cidrs[ncidrs]) == 0;
      if (ok) ncidrs++;
    } else {
      long lo, hi;
      ok = ds_parse_port(tok, &lo, &hi) == 0;
      for (long p = lo; ok && p <= hi; p++) kernel_ports[p / 8] |= (unsigned char)(1u << (p % 8));
    }
    if (!ok) {
      snprintf(bad, badlen, "%s", tok);
      return -1;
    }
  }
  return 0;
}

static void ds_disable(const char *var, const char *value, const char *what) {
  cfg.vcl_enabled = 0;
  ds_log("%s=%.80s%s: %s; VCL path disabled, every socket stays on the kernel", var, value,
         strlen(value) > 80 ? "..." : "", what);
}

/* The agent's per-pod env file (VCL_ENV_FILE): VCL_APP_NAMESPACE_ID and _SECRET, which VCL
 * reads from the environment (it cuts a namespace-id read from vcl.conf to 3 characters)
 * and which must not be in the pod spec, and in mode `local` VCL_ENDPOINTS (the endpoint
 * table's file name, beside the env file). Only those keys are taken, an explicit
 * environment value wins, and this runs in our constructor, before the app has threads
 * (setenv is not thread-safe) and before a lazily loaded LDP reads them. */
static void ds_load_env_file(void) {
  const char *path = getenv("VCL_ENV_FILE");
  if (!path || !*path) return;
  FILE *f = fopen(path, "re");
  if (!f) {
    /* Not DS_DEBUG: that calls ds_config(), and we run inside its pthread_once. */
    if (cfg.debug) ds_log("VCL_ENV_FILE %s: %s", path, strerror(errno));
    return;
  }
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = 0;
    char *value = eq + 1;
    value[strcspn(value, "\r\n")] = 0;
    if (strcmp(line, "VCL_APP_NAMESPACE_ID") != 0 && strcmp(line, "VCL_APP_NAMESPACE_SECRET") != 0 &&
        strcmp(line, "VCL_ENDPOINTS") != 0)
      continue;
    int ok = *value != 0;
    for (const char *c = value; *c; c++)
      if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.') ok = 0;
    if (ok) setenv(line, value, 0);
  }
  fclose(f);
}

static void ds_config_init(void) {
  const char *v;
  char bad[128], what[192];
  cfg.vcl_enabled = 1;
  cfg.debug = (v = getenv("VCL_DUALSTACK_DEBUG")) && strcmp(v, "1") == 0;
  ds_load_env_file();
  cfg.test_mode = (v = getenv("VCL_DUALSTACK_TEST")) && strcmp(v, "1") == 0;
  cfg.ldp_path = (v = getenv("VCL_DUALSTACK_LDP")) && *v ? v : NULL;
  v = getenv("VCL_KERNEL_LISTEN");
  if (v && *v && strcmp(v, "both") != 0 && strcmp(v, "vcl") != 0) {
    ds_disable("VCL_KERNEL_LISTEN", v, "expected \"vcl\" or \"both\"");
    return;
  }
  cfg.listen_both = v && strcmp(v, "both") == 0;
  v = getenv("VCL_ENDPOINTS");
  if (v && *v) { /* a bare name is beside the env file (the pod's VCL directory) */
    static char path[512];
    const char *env = getenv("VCL_ENV_FILE");
    const char *slash = env ? strrchr(env, '/') : NULL;
    if (strchr(v, '/') || !slash)
      snprintf(path, sizeof path, "%s", v);
    else
      snprintf(path, sizeof path, "%.*s/%s", (int)(slash - env), env, v);
    cfg.endpoints = path;
  }
  cfg.mt_workers = ds_vcl_conf_has("multi-thread-workers");
  v = getenv("VCL_KERNEL_CIDRS");
  if (v && ds_parse_list("VCL_KERNEL_CIDRS", v, bad, sizeof bad) != 0) {
    snprintf(what, sizeof what, "\"%s\" is not a CIDR (or more than %d given)", bad,
             DS_MAX_CIDRS);
    ds_disable("VCL_KERNEL_CIDRS", v, what);
    return;
  }
  v = getenv("VCL_KERNEL_PORTS");
  if (!v) v = DS_DEFAULT_KERNEL_PORTS;
  if (ds_parse_list("VCL_KERNEL_PORTS", v, bad, sizeof bad) != 0) {
    snprintf(what, sizeof what, "\"%s\" is not a port or port range (1-65535)", bad);
    ds_disable("VCL_KERNEL_PORTS", v, what);
    return;
  }
  if (cfg.test_mode && cfg.debug) ds_log("VCL_DUALSTACK_TEST=1: test-only rules in force");
}

static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

const struct ds_config *ds_config(void) {
  pthread_once(&cfg_once, ds_config_init);
  return &cfg;
}

__attribute__((constructor)) static void ds_constructor(void) {
  const struct ds_config *c = ds_config();
  if (c->vcl_enabled)
    ds_report("started", NULL);
  else
    ds_report("disabled", "a dual-stack rule is malformed (see the container's log)");
}

/* Unwraps a v4-mapped IPv6 address so IPv4 rules apply to it. */
int ds_addr_bytes(const struct sockaddr *sa, unsigned char out[16]) {
  if (sa->sa_family == AF_INET) {
    memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return AF_INET;
  }
  const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(a6)) {
    memcpy(out, a6->s6_addr + 12, 4);
    return AF_INET;
  }
  memcpy(out, a6->s6_addr, 16);
  return AF_INET6;
}

int ds_is_loopback(int family, const unsigned char a[16]) {
  return (family == AF_INET && a[0] == 127) ||
         (family == AF_INET6 && memcmp(a, &in6addr_loopback, 16) == 0);
}

static int ds_in_cidr(int family, const unsigned char *a, const struct ds_cidr *c) {
  if (family != c->family) return 0;
  int full = c->prefix / 8, rest = c->prefix % 8;
  if (memcmp(a, c->addr, (size_t)full) != 0) return 0;
  if (!rest) return 1;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (a[full] & mask) == (c->addr[full] & mask);
}

uint16_t ds_port(const struct sockaddr *sa) {
  return ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
                                        : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

int ds_is_wildcard(const struct sockaddr *sa) {
  unsigned char a[16] = {0}, zero[16] = {0};
  int fam = ds_addr_bytes(sa, a);
  return memcmp(a, zero, fam == AF_INET ? 4 : 16) == 0;
}

void ds_format_addr(const struct sockaddr *sa, char *buf, size_t len) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
  snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, ds_port(sa));
}

enum ds_path ds_decide(const struct sockaddr *sa, socklen_t len, int type, int is_bind,
                       char *why, size_t whylen) {
  const struct ds_config *c = ds_config();
  unsigned char a[16];
  if (!c->vcl_enabled) {
    snprintf(why, whylen, "VCL path disabled");
    return DS_KERNEL;
  }
  if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
      len < (sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                      : sizeof(struct sockaddr_in6))) {
    snprintf(why, whylen, "not an IP address");
    return DS_KERNEL;
  }
  int fam = ds_addr_bytes(sa, a);
  if (!c->test_mode && ds_is_loopback(fam, a)) {
    snprintf(why, whylen, "loopback");
    return DS_KERNEL;
  }
  uint16_t port = ds_port(sa);
  if (port && (kernel_ports[port / 8] & (1u << (port % 8)))) {
    snprintf(why, whylen, "port %u in VCL_KERNEL_PORTS", port);
    return DS_KERNEL;
  }
  for (int i = 0; i < ncidrs; i++) {
    if (ds_in_cidr(fam, a, &cidrs[i])) {
      snprintf(why, whylen, "in VCL_KERNEL_CIDRS");
      return DS_KERNEL;
    }
  }
  if (c->endpoints && is_bind) { /* VPP serves a listener only where the table says so */
    if (type != SOCK_STREAM) {
      snprintf(why, whylen, "not TCP, endpoint table in use");
      return DS_KERNEL;
    }
    snprintf(why, whylen, c->listen_both ? "listener, VCL_KERNEL_LISTEN=both" : "listener");
    return c->listen_both ? DS_BOTH : DS_VCL;
  }
  if (c->endpoints) {
    uint64_t gen = 0;
    int hit = ds_endpoint_lookup(sa, type, &gen);
    if (hit < 0) snprintf(why, whylen, "no endpoint table");
    else snprintf(why, whylen, "%s the endpoint table (generation %llu)", hit ? "in" : "not in",
                  (unsigned long long)gen);
    return hit > 0 ? DS_VCL : DS_KERNEL;
  }
  if (is_bind && ds_is_wildcard(sa)) {
    snprintf(why, whylen, c->listen_both ? "wildcard, VCL_KERNEL_LISTEN=both" : "wildcard");
    return c->listen_both ? DS_BOTH : DS_VCL;
  }
  snprintf(why, whylen, "no kernel rule");
  return DS_VCL;
}
