/* The node's VCL endpoint table (network mode `local`): the (address, port, protocol)
 * triples that VPP can serve on this node, written by the node agent. With a table, a
 * connect()/sendto() goes to VCL only when its destination is in it; everything else stays
 * on the kernel, as if the pod were not injected. Without VCL_ENDPOINTS (mode
 * `calico-vpp`, where VPP owns the pod network) the table is not used at all.
 *
 * The agent replaces the file atomically (a new file renamed over the old, hard-linked
 * into every injected pod's directory), so a new table is a new inode: each lookup stats
 * the path (one system call) and reads the file again when it changed, into memory of
 * this process (a file truncated under a mapping would SIGBUS the app); nothing is locked
 * across calls. A missing, unreadable or malformed table means "kernel for everything",
 * said once per change.
 *
 * Format (version 1), little-endian header, then entries sorted by their 20 bytes:
 *   0  char[8]  magic "VCLEPT1\0"
 *   8  u32      version (1)
 *   12 u32      count
 *   16 u64      generation (the agent's counter; shown in logs and vcl-status)
 *   24 u32      entry size (20)
 *   28 u32      FNV-1a 32 of the entries
 *   32 entries: u8 family (4 or 6), u8 protocol (6 TCP, 17 UDP), u16 port (network
 *      order), u8 address[16] (IPv4: 4 bytes, then zeros)
 * injector/agent/endpoints.py writes it; its tests and ours share this description. */
#include "dualstack.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define DS_EP_HEADER 32
#define DS_EP_ENTRY 20
#define DS_EP_MAX (16 << 20)

static const unsigned char *ep_map; /* the valid table, or NULL */
static uint32_t ep_count;
static uint64_t ep_generation;
static struct stat ep_seen;  /* the file last looked at, valid or not */
static int ep_looked;        /* ep_seen holds something */
static char ep_said[160];    /* the last problem logged, so each is said once */

static uint32_t ds_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void ds_ep_problem(const char *path, const char *what) {
  char line[sizeof ep_said];
  snprintf(line, sizeof line, "%s", what);
  if (strcmp(line, ep_said) == 0) return;
  snprintf(ep_said, sizeof ep_said, "%s", line);
  ds_log("endpoint table %s: %s; every connection stays on the kernel until it is fixed", path,
         what);
}

static void ds_ep_drop(void) {
  free((void *)ep_map);
  ep_map = NULL;
  ep_count = 0;
}

/* Validates a table read into memory; NULL if good, else what is wrong. */
static const char *ds_ep_check(const unsigned char *m, size_t len) {
  if (len < DS_EP_HEADER || memcmp(m, "VCLEPT1\0", 8) != 0) return "not an endpoint table";
  if (ds_le32(m + 8) != 1) return "unknown version";
  uint32_t count = ds_le32(m + 12);
  if (ds_le32(m + 24) != DS_EP_ENTRY) return "unknown entry size";
  if ((len - DS_EP_HEADER) / DS_EP_ENTRY != count || (len - DS_EP_HEADER) % DS_EP_ENTRY)
    return "size does not match its count";
  uint32_t h = 2166136261u;
  for (size_t i = DS_EP_HEADER; i < len; i++) h = (h ^ m[i]) * 16777619u;
  if (h != ds_le32(m + 28)) return "checksum mismatch";
  for (uint32_t i = 1; i < count; i++)
    if (memcmp(m + DS_EP_HEADER + (size_t)(i - 1) * DS_EP_ENTRY,
               m + DS_EP_HEADER + (size_t)i * DS_EP_ENTRY, DS_EP_ENTRY) >= 0)
      return "entries not sorted";
  return NULL;
}

static void ds_ep_load(const char *path, const struct stat *st) {
  ds_ep_drop();
  ep_seen = *st;
  ep_looked = 1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ds_ep_problem(path, strerror(errno));
    return;
  }
  struct stat fst;
  unsigned char *m = NULL;
  size_t got = 0;
  if (fstat(fd, &fst) == 0 && fst.st_size > 0 && fst.st_size <= DS_EP_MAX &&
      (m = malloc((size_t)fst.st_size)) != NULL) {
    while (got < (size_t)fst.st_size) {
      ssize_t r = pread(fd, m + got, (size_t)fst.st_size - got, (off_t)got);
      if (r <= 0) break;
      got += (size_t)r;
    }
  }
  LIBC(close)(fd);
  if (!m || got != (size_t)fst.st_size) {
    free(m);
    ds_ep_problem(path, fst.st_size == 0 ? "empty file"
                        : fst.st_size > DS_EP_MAX ? "larger than 16 MiB"
                                                  : "cannot be read");
    return;
  }
  const char *bad = ds_ep_check(m, (size_t)fst.st_size);
  if (bad) {
    free(m);
    ds_ep_problem(path, bad);
    return;
  }
  ep_map = m;
  ep_count = ds_le32(ep_map + 12);
  memcpy(&ep_generation, ep_map + 16, 8); /* little-endian hosts only (x86_64, arm64) */
  if (ep_said[0]) ds_log("endpoint table %s: readable again", path);
  ep_said[0] = 0;
  DS_DEBUG("endpoint table %s: generation %llu, %u endpoints", path,
           (unsigned long long)ep_generation, ep_count);
}

int ds_endpoint_lookup(const struct sockaddr *sa, int type, uint64_t *generation) {
  const char *path = ds_config()->endpoints;
  int saved = errno;
  unsigned char key[DS_EP_ENTRY] = {0};
  int fam = ds_addr_bytes(sa, key + 4);
  key[0] = fam == AF_INET ? 4 : 6;
  key[1] = type == SOCK_DGRAM ? 17 : 6;
  uint16_t port = htons(ds_port(sa));
  memcpy(key + 2, &port, 2);
  struct stat st;
  int have = stat(path, &st) == 0, why = errno;
  ds_lock();
  if (!have) {
    ds_ep_drop();
    ep_looked = 0;
    ds_ep_problem(path, strerror(why));
    ds_unlock();
    return -1;
  }
  if (!ep_looked || st.st_ino != ep_seen.st_ino || st.st_dev != ep_seen.st_dev ||
      st.st_size != ep_seen.st_size || st.st_mtim.tv_sec != ep_seen.st_mtim.tv_sec ||
      st.st_mtim.tv_nsec != ep_seen.st_mtim.tv_nsec)
    ds_ep_load(path, &st);
  int hit = -1;
  if (ep_map) {
    *generation = ep_generation;
    size_t lo = 0, hi = ep_count;
    hit = 0;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = memcmp(key, ep_map + DS_EP_HEADER + mid * DS_EP_ENTRY, DS_EP_ENTRY);
      if (c == 0) {
        hit = 1;
        break;
      }
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  }
  ds_unlock();
  errno = saved;
  return hit;
}
