/* base.h: what every room of the shim shares — conventions, GACTSHIM_* config, log, counters. */
#ifndef GS_BASE_H
#define GS_BASE_H

/* The base room depends on nothing but libc and include/gactshim.h (for GS_API). Every other room
 * of shim/ may include it; it includes no other room.
 *
 * Error convention (as libuv): a function returns 0 or a negative errno and never aborts or exits
 * the host process. The one exception is a bad GACTSHIM_* variable at load, which exits 2 before
 * the program runs, as the README promises. */

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gactshim.h" /* GS_API: exported symbols */

#define gs__likely(x) __builtin_expect(!!(x), 1)
#define gs__unlikely(x) __builtin_expect(!!(x), 0)
#define GS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in nanoseconds (within ~1 µs; never backwards on a thread), cheap enough for
 * every allocation and free: see clock.c. */
uint64_t gs__now_ns(void);

/* ---- devices, categories and kinds: the vocabulary of tracked memory --------------------- */

/* CUDA devices are 0..GS_MAX_DEVICES-1; GS_DEVICE_HOST counts host-side tracked bytes (pinned
 * memory and saved tensors on the CPU), so CPU training has a tracked-memory figure too. Arrays
 * indexed by device have GS_DEVICE_SLOTS entries. */
#define GS_MAX_DEVICES 32
#define GS_DEVICE_HOST GS_MAX_DEVICES
#define GS_DEVICE_SLOTS (GS_MAX_DEVICES + 1)

/* The device slot of an engine device index (-1 or out of range: the host). */
static inline int gs__device_slot(int device) {
  return device < 0 || device >= GS_MAX_DEVICES ? GS_DEVICE_HOST : device;
}

/* How the memory was obtained. The values are written to traces (docs/trace-format.md): append,
 * never renumber. */
typedef enum gs_alloc_kind {
  GS_KIND_DEVICE = 0,   /* cuMemAlloc, cuMemAllocPitch, cudaMalloc */
  GS_KIND_ASYNC_POOL,   /* cuMemAllocAsync, cuMemAllocFromPoolAsync, cudaMallocAsync */
  GS_KIND_VMM,          /* cuMemCreate physical handles (keyed by handle, not address) */
  GS_KIND_MANAGED,      /* cuMemAllocManaged */
  GS_KIND_HOST_PINNED,  /* cuMemHostAlloc, cuMemAllocHost */
  GS_KIND_SAVED,        /* a saved tensor the engine holds (CPU tensors, or GPU bookkeeping) */
  GS_KIND__COUNT
} gs_alloc_kind;

/* What the bytes are used for, as far as the shim knows. Written to traces as above; a trace's
 * samples have GS_FMT_SAMPLE_CATS slots (shim/format), checked at compile time. Parameters are
 * not told apart from other memory (the allocator's segments hold both): they count as other. */
typedef enum gs_category {
  GS_CAT_OTHER = 0,
  GS_CAT_ACTIVATION,    /* a saved activation kept at full precision */
  GS_CAT_COMPRESSED,    /* a compressed saved activation */
  GS_CAT__COUNT
} gs_category;

/* ---- configuration: the GACTSHIM_* variables (config.c) ---------------------------------- */

/* GACTSHIM_POLICY. The policy room has its own enum (policy/policy.h); the engine maps. */
typedef enum gs_cfg_policy {
  GS_CFG_POLICY_FIXED = 0,
  GS_CFG_POLICY_OFF,
  GS_CFG_POLICY_ADAPTIVE,  /* average GACTSHIM_BITS, redistributed by measured sensitivity */
  GS_CFG_POLICY_BUDGET,    /* keep tracked live memory under GACTSHIM_BUDGET */
} gs_cfg_policy;

/* GACTSHIM_SELECT: which saved tensors the policy may compress. */
typedef enum gs_cfg_select {
  GS_CFG_SELECT_ALL = 0,   /* every eligible saved tensor */
  GS_CFG_SELECT_LIFETIME,  /* only those alive at the iteration's memory peak */
} gs_cfg_select;

/* GACTSHIM_BITS when it is not set: the adaptive policy's average, the others' width. */
#define GS_CONFIG_BITS_DEFAULT 4u
#define GS_CONFIG_ADAPTIVE_BITS_DEFAULT 2u
/* GACTSHIM_TRACE_MAX when it is not set: the bound on a trace file's size. */
#define GS_TRACE_MAX_DEFAULT (256ull << 20)

typedef enum gs_log_level {
  GS_LOG_ERROR = 0,
  GS_LOG_WARN,
  GS_LOG_INFO,
  GS_LOG_DEBUG,
} gs_log_level;

#define GS_PATH_MAX 4096

typedef struct gs_config {
  bool disable;            /* GACTSHIM_DISABLE=1: pure pass-through */
  unsigned bits;           /* GACTSHIM_BITS: 1..8 compress; 16 or 32 keep */
  bool bits_given;         /* GACTSHIM_BITS was set (else bits is the policy's default) */
  gs_cfg_policy policy;    /* GACTSHIM_POLICY */
  uint64_t budget;         /* GACTSHIM_BUDGET: bytes (budget policy; 0 = unset) */
  char budget_text[32];    /* GACTSHIM_BUDGET as given, for messages */
  uint32_t adapt_every;    /* GACTSHIM_ADAPT_EVERY: iterations between sensitivity probes */
  gs_cfg_select select;    /* GACTSHIM_SELECT */
  uint64_t min_bytes;      /* GACTSHIM_MIN_BYTES: smaller saved tensors are kept */
  uint32_t group;          /* GACTSHIM_GROUP: elements per quantization group */
  uint64_t seed;           /* GACTSHIM_SEED: stochastic-rounding seed */
  char stats_path[GS_PATH_MAX]; /* GACTSHIM_STATS: JSON written at exit; empty = none */
  gs_log_level log;        /* GACTSHIM_LOG */
  bool quiet;              /* GACTSHIM_QUIET=1: no summary line at exit */
  char trace_path[GS_PATH_MAX]; /* GACTSHIM_TRACE: event trace file (%p pid, %r rank); empty = none */
  uint64_t trace_max;      /* GACTSHIM_TRACE_MAX: bound on the trace file's size in bytes */
  bool cupti;              /* GACTSHIM_CUPTI=1: time our kernels with CUPTI when it can be loaded */
  bool attribution;        /* GACTSHIM_ATTRIBUTION (default 1): name each saved tensor's module,
                            * node and Python line in the trace (only when GACTSHIM_TRACE is set) */
} gs_config;

/* Fills *out with the defaults. */
void gs__config_defaults(gs_config *out);

/* Parses every GACTSHIM_* entry of envp (a NULL-terminated "NAME=value" array) into *out, which
 * starts from the defaults. Returns 0, or -EINVAL with one line in err naming the variable, the
 * value and what is accepted. Pure: no I/O, no globals. */
int gs__config_parse(char *const *envp, gs_config *out, char *err, size_t errlen);

/* Parses a byte count ("12GiB", "512MB", "64K", "4096"): 0 or -EINVAL. */
int gs__parse_bytes(const char *v, uint64_t *out);

/* The process's configuration. Written once by the constructor before any hook can run, read-only
 * afterwards, so readers need no lock. */
extern gs_config gs__cfg;

/* ---- the process (process.c) -------------------------------------------------------------- */

/* True once the constructor finished and GACTSHIM_DISABLE is not set. Hooks that run before that
 * (or with the shim disabled) pass straight through. */
bool gs__active(void);
void gs__set_active(bool on);

/* The job's rank as the launcher gave it: RANK, else LOCAL_RANK, else NULL. */
const char *gs__rank_env(void);

/* Expands %p (pid) and %r (gs__rank_env, else 0) of a path template into out.
 * 0, or -ENAMETOOLONG when it does not fit. */
int gs__expand_path(const char *tmpl, char *out, size_t len);

/* write(2) until all of buf is written, retrying on EINTR. 0 or -errno. */
int gs__write_all(int fd, const void *buf, size_t len);

/* ---- log.c: messages on stderr, filtered by GACTSHIM_LOG ---------------------------------- */

/* Writes "gactshim: <message>\n" to stderr with one write(2) when level <= GACTSHIM_LOG. */
void gs__log(gs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like gs__log at GS_LOG_WARN, but only the first time for a given reason (a string literal, kept
 * by pointer; compared by content); later calls are silent. Thread-safe, lock-free after the
 * first call per reason. */
void gs__warn_once(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- stats.c: process-wide counters and the GACTSHIM_STATS JSON --------------------------- */

/* Why a saved tensor was not compressed. The names (gs__skip_name) are the keys of the JSON's
 * "skipped" object. */
typedef enum gs_skip_reason {
  GS_SKIP_PARAM = 0,  /* a parameter, or a view of one */
  GS_SKIP_SMALL,      /* under GACTSHIM_MIN_BYTES */
  GS_SKIP_DTYPE,      /* not a floating type the codec takes */
  GS_SKIP_DUPLICATE,  /* the same tensor already packed: shares that handle */
  GS_SKIP_POLICY,     /* the policy chose to keep it */
  GS_SKIP_LAYOUT,     /* sparse, quantized, meta or other unsupported layout */
  GS_SKIP_NONFINITE,  /* a group held Inf or NaN (CPU path: kept exact) */
  GS_SKIP_ERROR,      /* something failed inside the shim: kept exact (fail-open) */
  GS_SKIP_CAPTURE,    /* its stream was capturing a CUDA graph: kept rather than launch into it */
  GS_SKIP_SUBCLASS,   /* a tensor subclass (DTensor, Float8, NF4…): its data is not the outer tensor */
  GS_SKIP_DEVICE,     /* on a device other than the CPU and CUDA (XPU, MPS, HPU…) */
  GS_SKIP__COUNT
} gs_skip_reason;

const char *gs__skip_name(gs_skip_reason r);

/* Regions of a program the hooks did not see, counted as they begin. Keys of the JSON's "unseen". */
typedef enum gs_unseen_reason {
  GS_UNSEEN_DISABLED = 0, /* PyTorch switched saved-tensor hooks off (torch.func): the shim stepped aside */
  GS_UNSEEN_CHECKPOINT,   /* activation checkpointing's own hooks stood above the shim's */
  GS_UNSEEN_HOOKS,        /* another saved_tensors_hooks (save_on_cpu, the user's) stood above */
  GS_UNSEEN__COUNT
} gs_unseen_reason;

const char *gs__unseen_name(gs_unseen_reason r);

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
  uint64_t packed, compressed, unpacked;
  uint64_t bytes_original, bytes_compressed;
  uint64_t codec_ns; /* wall time in compress and decompress calls (host side) */
  /* GPU time of the codec's launches (CUDA events), the calls timed, and those not timed */
  uint64_t gpu_kernel_ns, gpu_kernel_timed, gpu_kernel_untimed;
  uint64_t skipped[GS_SKIP__COUNT];
  uint64_t failed[GS_FAIL__COUNT];
  uint64_t unseen[GS_UNSEEN__COUNT];
} gs_stats;

/* The process's counters. Global because every hook in every thread adds to them; atomics only. */
extern gs_stats gs__stats;

#define gs__stat_add(field, v) __atomic_fetch_add(&gs__stats.field, (uint64_t)(v), __ATOMIC_RELAXED)
#define gs__stat_sub(field, v) __atomic_fetch_sub(&gs__stats.field, (uint64_t)(v), __ATOMIC_RELAXED)
#define gs__stat_get(field) __atomic_load_n(&gs__stats.field, __ATOMIC_RELAXED)
#define gs__stat_skip(reason) gs__stat_add(skipped[(reason)], 1)
#define gs__stat_fail(reason) gs__stat_add(failed[(reason)], 1)

/* Appends printf output to buf at *off, never past len; false once the buffer is full (then
 * *off == len). For every JSON writer of the shim. */
bool gs__json_append(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends the members other rooms add to the stats JSON (each starting with a comma); false once
 * the buffer is full. */
typedef bool (*gs_stats_extra_fn)(char *buf, size_t len, size_t *off);

/* Writes the stats JSON — the counters, then extra's members — to path atomically (temp file +
 * rename). cap: the buffer size extra may need beyond the counters. 0 or -errno. */
int gs__stats_write_json(const char *path, gs_stats_extra_fn extra, size_t cap);

/* The one summary line printed on stderr at exit (unless GACTSHIM_QUIET=1), into buf. */
int gs__stats_summary(char *buf, size_t len, uint64_t peak_bytes);

/* ---- fault.c: test-only fault injection (_GACTSHIM_FAULT) --------------------------------- */

/* Places where a test can make the shim's own work fail. */
typedef enum gs_fault {
  GS_FAULT_ALLOC = 0,   /* "alloc": the compressed buffer cannot be allocated */
  GS_FAULT_CODEC,       /* "codec": the CPU codec fails */
  GS_FAULT_LAUNCH,      /* "launch": the GPU kernel launch fails */
  GS_FAULT_TRACE_NOSPC, /* "trace_nospc": trace file writes fail with ENOSPC (disk full) */
  GS_FAULT_FLUSH_SLOW,  /* "flush_slow": the exit flush takes a second (a signal can land in it) */
  GS_FAULT__COUNT
} gs_fault;

#ifdef GS_FAULT_INJECTION
/* Reads _GACTSHIM_FAULT from envp: a comma-separated list of names, each optionally "@N" to fail
 * from its N-th occurrence on (default 1: always). The leading underscore keeps it out of the
 * GACTSHIM_* namespace, whose unknown names stop the job. 0, or -EINVAL with a line in err. */
int gs__fault_parse(char *const *envp, char *err, size_t errlen);

/* Whether this occurrence of f must fail. Thread-safe. */
bool gs__fault(gs_fault f);
#else
static inline int gs__fault_parse(char *const *envp, char *err, size_t errlen) {
  (void)envp, (void)err, (void)errlen;
  return 0;
}
static inline bool gs__fault(gs_fault f) {
  (void)f;
  return false;
}
#endif

/* ---- threads: the shim's own threads are started with every signal blocked --------------- */

/* pthread_create, but the new thread blocks all signals, so that the program's handlers (Python's
 * SIGINT, the shim's SIGTERM flush) never run on a thread of ours in the middle of its work. */
static inline int gs__thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                                    void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(t, attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* The same, detached: nobody joins it. 0 or an errno value (as pthread_create). */
static inline int gs__thread_create_detached(void *(*fn)(void *), void *arg) {
  pthread_attr_t attr;
  pthread_t t;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = gs__thread_create(&t, &attr, fn, arg);
  pthread_attr_destroy(&attr);
  return rc;
}

#endif
