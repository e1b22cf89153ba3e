/* trace.h: the memory timeline recorder — hot-path event calls, the writer thread, snapshots. */
#ifndef GS_TRACE_H
#define GS_TRACE_H

#include "common.h"
#include "config.h"
#include "registry.h"
#include "tracefmt.h"

/* Current live bytes of a device by category and kind (the registry's totals): used to resync
 * the writer's running totals after the ring dropped events. 0 or negative errno. */
typedef int (*gs_trace_totals_fn)(int device, uint64_t by_cat[GS_CAT__COUNT],
                                  uint64_t by_kind[GS_KIND__COUNT]);

typedef struct gs_trace_options {
  char path[GS_PATH_MAX];   /* expanded trace file path; empty: memory only (for attach) */
  char path_template[GS_PATH_MAX]; /* GACTSHIM_TRACE as given: a forked child checks it for %p */
  uint64_t max_bytes;       /* file bound (GACTSHIM_TRACE_MAX) */
  size_t memory_bytes;      /* in-memory summary + recent detail kept for attach */
  uint32_t ring_events;     /* hot-path queue capacity */
  uint64_t window_ns;       /* summary sample window */
  uint32_t flush_ms;        /* file flush period: what a crash can lose */
  unsigned site_depth;      /* frames kept per call site */
  uint64_t site_min_bytes;  /* smaller allocations get no call site */
  uint32_t site_max_nodes;  /* prefix-tree capacity */
  bool callsites;
  bool keep_own_frames;     /* tests that link the recorder statically keep their frames */
  bool control;             /* serve the control socket (gactshim-report attach) */
  bool cupti;               /* time our kernels with CUPTI if it loads */
  gs_trace_totals_fn totals;          /* may be NULL */
  uint64_t (*registry_peak)(void);    /* may be NULL: written in the END record */
  int (*expand)(const char *tmpl, char *out, size_t len); /* %p/%r expansion for a fork child */
  void (*on_start)(void);             /* may be NULL: called when the writer starts (first use) */
} gs_trace_options;

void gs__trace_defaults(gs_trace_options *o);

/* Stores the options (called by the constructor; no CUDA call, no thread). The writer starts at
 * the first event, file or not: processes that never allocate through CUDA nor pack a tensor
 * (/bin/true, a launcher, helpers a job execs with the same environment) get no thread, no socket,
 * and do not create or truncate the trace file. 0 or negative errno. */
int gs__trace_configure(const gs_trace_options *o);

/* Starts the writer thread now (idempotent). 0 or negative errno. */
int gs__trace_start(void);

/* Drains the queue, writes the END record, flushes and closes the file, stops the threads.
 * 0, or the first error the writer met (negative errno; -EBUSY: another live process was writing
 * the same path, so this one recorded in memory only). */
int gs__trace_stop(void);

/* In the fork child: the parent's writer thread does not exist here. Recording restarts lazily
 * into a new file only if the path template has %p; otherwise the child records in memory only
 * and never writes its parent's file. */
void gs__trace_atfork_child(void);

/* Hot path: each call appends one event to a lock-free queue and returns; never blocks, no I/O.
 * Before gs__trace_configure (or when the shim is disabled) they do nothing. */
void gs__trace_alloc(uint64_t key, const gs_alloc_record *rec);
void gs__trace_free(uint64_t key, const gs_alloc_record *rec);
void gs__trace_recat(uint64_t key, const gs_alloc_record *rec, gs_category to);
void gs__trace_saved(gs_saved_op op, uint64_t bytes_before, uint64_t bytes_after, unsigned bits,
                     uint64_t dur_ns, int device);
void gs__trace_iteration(uint64_t n);
/* One saved tensor's decision in a completed iteration (policy/plan.h), and what the next
 * iteration of its shape gives it. Emitted only when an iteration's plan changed. */
typedef struct gs_trace_decision {
  uint64_t iteration, full_bytes, held_bytes, pack_ns, unpack_ns;
  uint32_t index;
  uint8_t bits, reason, next_bits, next_reason;
  bool alive_at_peak;
  int device;
} gs_trace_decision;
void gs__trace_decision(const gs_trace_decision *d);
/* A saved tensor of cat held inside device memory the driver already counts (a caching-allocator
 * segment, or a stream-ordered allocation): its bytes move from "other" to cat on the timeline
 * (add) or back, leaving the device's total alone. */
void gs__trace_carve(int device, gs_category cat, uint64_t bytes, bool add);
void gs__trace_oom(uint64_t size, int device, int result);
void gs__trace_kernel(uint32_t name_id, uint64_t start_ns, uint64_t end_ns, int device);

/* A call-site id for an allocation of size bytes (0 below the size threshold or when off). */
uint32_t gs__trace_site(uint64_t size);

/* A self-contained trace of the recent past (header, summary, recent detail, END), built on the
 * writer thread (control socket) — the caller frees *out. 0 or negative errno. */
int gs__trace_snapshot(uint8_t **out, size_t *len);

/* Counters for tests and the exit line. */
typedef struct gs_trace_counters {
  uint64_t events, ring_dropped, detail_dropped, samples_merged, file_bytes, compactions;
} gs_trace_counters;
void gs__trace_counters(gs_trace_counters *c);

#endif
