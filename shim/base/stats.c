/* stats.c: process-wide counters, the exit summary line and the GACTSHIM_STATS JSON. */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Room for the counters' part of the JSON. */
#define GS__COUNTERS_JSON_BYTES 4096

static int gs__stats_write_file(const char *path, const char *json, size_t n);

/* Global because every hook in every thread adds to it; relaxed atomics only. */
gs_stats gs__stats;

static const char *const gs__skip_names[GS_SKIP__COUNT] = {
  [GS_SKIP_PARAM] = "param",       [GS_SKIP_SMALL] = "small",   [GS_SKIP_DTYPE] = "dtype",
  [GS_SKIP_DUPLICATE] = "duplicate", [GS_SKIP_POLICY] = "policy", [GS_SKIP_LAYOUT] = "layout",
  [GS_SKIP_NONFINITE] = "nonfinite", [GS_SKIP_ERROR] = "error", [GS_SKIP_CAPTURE] = "capture",
  [GS_SKIP_SUBCLASS] = "subclass", [GS_SKIP_DEVICE] = "device",
};

static const char *const gs__unseen_names[GS_UNSEEN__COUNT] = {
  [GS_UNSEEN_DISABLED] = "disabled", [GS_UNSEEN_CHECKPOINT] = "checkpoint", [GS_UNSEEN_HOOKS] = "hooks",
};

static const char *const gs__fail_names[GS_FAIL__COUNT] = {
  [GS_FAIL_ALLOC] = "alloc", [GS_FAIL_CODEC] = "codec", [GS_FAIL_LAUNCH] = "launch",
  [GS_FAIL_TRACE] = "trace",
};

const char *gs__skip_name(gs_skip_reason r) {
  return (unsigned)r < GS_SKIP__COUNT ? gs__skip_names[r] : "unknown";
}

const char *gs__unseen_name(gs_unseen_reason r) {
  return (unsigned)r < GS_UNSEEN__COUNT ? gs__unseen_names[r] : "unknown";
}

static uint64_t gs__get(const uint64_t *field) { return __atomic_load_n(field, __ATOMIC_RELAXED); }

bool gs__json_append(char *buf, size_t len, size_t *off, const char *fmt, ...) {
  if (*off >= len) return false;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *off, len - *off, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= len - *off) {
    *off = len;
    return false;
  }
  *off += (size_t)n;
  return true;
}

static int gs__stats_format(char *buf, size_t len, gs_stats_extra_fn extra) {
  const gs_stats *s = &gs__stats;
  size_t off = 0;
  gs__json_append(buf, len, &off,
             "{\"version\":1,\"pid\":%ld,"
             "\"packed\":%llu,\"compressed\":%llu,\"unpacked\":%llu,\"bytes_original\":%llu,"
             "\"bytes_compressed\":%llu,\"codec_ns\":%llu,\"gpu_kernel_ns\":%llu,"
             "\"gpu_kernel_timed\":%llu,\"gpu_kernel_untimed\":%llu,\"skipped\":{",
             (long)getpid(), (unsigned long long)gs__get(&s->packed),
             (unsigned long long)gs__get(&s->compressed),
             (unsigned long long)gs__get(&s->unpacked),
             (unsigned long long)gs__get(&s->bytes_original),
             (unsigned long long)gs__get(&s->bytes_compressed),
             (unsigned long long)gs__get(&s->codec_ns),
             (unsigned long long)gs__get(&s->gpu_kernel_ns),
             (unsigned long long)gs__get(&s->gpu_kernel_timed),
             (unsigned long long)gs__get(&s->gpu_kernel_untimed));
  for (int r = 0; r < GS_SKIP__COUNT; r++)
    gs__json_append(buf, len, &off, "%s\"%s\":%llu", r ? "," : "", gs__skip_name((gs_skip_reason)r),
               (unsigned long long)gs__get(&s->skipped[r]));
  gs__json_append(buf, len, &off, "},\"failed\":{");
  for (int r = 0; r < GS_FAIL__COUNT; r++)
    gs__json_append(buf, len, &off, "%s\"%s\":%llu", r ? "," : "", gs__fail_names[r],
                    (unsigned long long)gs__get(&s->failed[r]));
  gs__json_append(buf, len, &off, "},\"unseen\":{");
  for (int r = 0; r < GS_UNSEEN__COUNT; r++)
    gs__json_append(buf, len, &off, "%s\"%s\":%llu", r ? "," : "", gs__unseen_names[r],
                    (unsigned long long)gs__get(&s->unseen[r]));
  gs__json_append(buf, len, &off, "}");
  if (extra) extra(buf, len, &off);
  if (!gs__json_append(buf, len, &off, "}\n")) return -ENOSPC;
  return (int)off;
}

int gs__stats_write_json(const char *path, gs_stats_extra_fn extra, size_t cap) {
  cap += GS__COUNTERS_JSON_BYTES;
  char *json = malloc(cap);
  if (json == NULL) return -ENOMEM;
  int n = gs__stats_format(json, cap, extra);
  int rc = n < 0 ? n : gs__stats_write_file(path, json, (size_t)n);
  free(json);
  return rc;
}

static int gs__stats_write_file(const char *path, const char *json, size_t n) {
  char tmp[GS_PATH_MAX + 32];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  int rc = gs__write_all(fd, json, n);
  if (close(fd) != 0 && rc == 0) rc = -errno;
  if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
  if (rc != 0) unlink(tmp);
  return rc;
}

static void gs__human_bytes(uint64_t b, char *out, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)b;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < GS_ARRAY_LEN(units)) {
    v /= 1024.0;
    u++;
  }
  snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

int gs__stats_summary(char *buf, size_t len, uint64_t peak_bytes) {
  uint64_t orig = gs__get(&gs__stats.bytes_original), comp = gs__get(&gs__stats.bytes_compressed);
  char a[32], b[32], peak[32];
  gs__human_bytes(orig, a, sizeof(a));
  gs__human_bytes(comp, b, sizeof(b));
  gs__human_bytes(peak_bytes, peak, sizeof(peak));
  int n = snprintf(buf, len, "%llu tensors compressed, %s -> %s (%.1fx), peak tracked memory %s",
                   (unsigned long long)gs__get(&gs__stats.compressed), a, b,
                   comp ? (double)orig / (double)comp : 0.0, peak);
  return n < 0 ? -EINVAL : 0;
}
