/* stats.h: process-wide counters, the summary line and the GACTSHIM_STATS JSON written at exit. */
#ifndef GS_STATS_H
#define GS_STATS_H

#include "common.h"

/* Why a saved tensor was not compressed. The names (gs__skip_name) are the keys of the JSON's
 * "skipped" object. */
typedef enum gs_skip_reason {
  GS_SKIP_PARAM = 0,  /* a leaf that requires grad (parameters) */
  GS_SKIP_SMALL,      /* under GACTSHIM_MIN_BYTES */
  GS_SKIP_DTYPE,      /* not a floating type the codec takes */
  GS_SKIP_DUPLICATE,  /* the same tensor already packed: shares that handle */
  GS_SKIP_POLICY,     /* the policy chose to keep it */
  GS_SKIP_LAYOUT,     /* sparse, quantized, meta or other unsupported layout */
  GS_SKIP_NONFINITE,  /* a group held Inf or NaN (CPU path: kept exact) */
  GS_SKIP_ERROR,      /* something failed inside the shim: kept exact (fail-open) */
  GS_SKIP_CAPTURE,    /* its stream was capturing a CUDA graph: kept rather than launch into it */
  GS_SKIP__COUNT
} gs_skip_reason;

const char *gs__skip_name(gs_skip_reason r);

/* What failed inside the shim (fail-open: the job goes on). Keys of the JSON's "failed" object.
 * A saved tensor that fails is also counted as skipped "error". */
typedef enum gs_fail_reason {
  GS_FAIL_ALLOC = 0,  /* the compressed buffer could not be allocated */
  GS_FAIL_CODEC,      /* the CPU codec failed */
  GS_FAIL_LAUNCH,     /* a GPU kernel could not be launched */
  GS_FAIL_TRACE,      /* the trace file could not be created or written (disk full, no access) */
  GS_FAIL__COUNT
} gs_fail_reason;

/* Counters, updated with relaxed atomics from any thread. */
typedef struct gs_stats {
  uint64_t allocs, frees, alloc_bytes;
  uint64_t packed, compressed, unpacked;
  uint64_t bytes_original, bytes_compressed;
  uint64_t codec_ns; /* wall time in compress and decompress calls (host side) */
  uint64_t skipped[GS_SKIP__COUNT];
  uint64_t failed[GS_FAIL__COUNT];
} gs_stats;

/* The process's counters. Global because every hook in every thread adds to them; atomics only. */
extern gs_stats gs__stats;

#define gs__stat_add(field, v) __atomic_fetch_add(&gs__stats.field, (uint64_t)(v), __ATOMIC_RELAXED)
#define gs__stat_skip(reason) gs__stat_add(skipped[(reason)], 1)
#define gs__stat_fail(reason) gs__stat_add(failed[(reason)], 1)

/* Appends printf output to buf at *off, never past len; false once the buffer is full (then
 * *off == len). For the JSON writers (stats.c, policy/plan.c). */
bool gs__json_append(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the stats JSON to path atomically (temp file + rename). 0 or -errno. */
int gs__stats_write_json(const char *path);

/* The one summary line printed on stderr at exit (unless GACTSHIM_QUIET=1), into buf. */
int gs__stats_summary(char *buf, size_t len);

#endif
