/* timeline.h: the memory timeline recorder — hot-path events, the writer thread, attach. */
#ifndef GS_TIMELINE_H
#define GS_TIMELINE_H

/* The timeline room depends on base and format, and on registry for the records it observes
 * (gs__trace_observer is registered by shim/init.c). Nothing below it knows it exists. */

#include "base.h"
#include "format.h"
#include "registry.h"

/* ---- the recorder (recorder.c) -------------------------------------------------------------- */

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
/* Which saved tensor an operation is about (NULL: unknown): its attribution (gs__trace_attr), its
 * pack's serial number (pairs a pack with its unpack and release) and GS_SAVED_F_* flags. */
typedef struct gs_trace_saved_id {
  uint32_t attr;
  uint16_t flags;
  uint64_t serial;
} gs_trace_saved_id;
void gs__trace_saved(gs_saved_op op, uint64_t bytes_before, uint64_t bytes_after, unsigned bits,
                     uint64_t dur_ns, int device, const gs_trace_saved_id *id);
void gs__trace_iteration(uint64_t n);
/* One saved tensor's decision in a completed iteration (policy/policy.h), and what the next
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

/* Interned strings and attributions (intern.c): the id of a string (cut at 512 bytes) or of an
 * attribution (key's id and t are ignored), each written once as a STRING / ATTR record before
 * the events that name it. 0 when the tables are full or memory ran out (then: unattributed).
 * Any thread; they take a short lock. */
uint32_t gs__trace_intern(const char *s, size_t n);
uint32_t gs__trace_attr(const gs_rec_attr *key);
/* Writer thread: hands each entry not yet written, encoded (n bytes), to cb. */
typedef void (*gs_intern_cb)(const uint8_t *rec, size_t n, void *arg);
void gs__intern_emit(gs_intern_cb cb, void *arg);
/* In the fork child: a fresh lock, and every entry is written again into the child's file. */
void gs__intern_atfork_child(void);

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
/* Events queued that the writer has not taken yet; any thread, any time. */
uint64_t gs__trace_queued(void);

/* The registry observer that puts allocations, frees, category changes and OOMs on the timeline. */
extern const gs_registry_observer gs__trace_observer;

/* ---- the hot path's queue (ring.c): bounded, lock-free, many producers, one consumer -------- */

/* One event as a hook hands it to the writer thread: the format's decoded event. Its bytes on
 * disk are the format's explicit layout (written by the writer thread's encoder), so the struct
 * may change without changing the file. 56 bytes, so a slot with its sequence number is one
 * 64-byte cache line. */
typedef gs_trace_event gs_event;
_Static_assert(sizeof(gs_event) == 56, "a ring slot is one cache line");

typedef struct gs_ring_slot {
  uint64_t seq;      /* the position this slot is ready for, minus its index (see ring.c) */
  gs_event ev;
} gs_ring_slot;

typedef struct gs_ring {
  gs_ring_slot *slots;
  uint64_t mask;
  uint64_t head __attribute__((aligned(64)));  /* consumer position */
  uint64_t tail __attribute__((aligned(64)));  /* next producer position */
  uint64_t dropped __attribute__((aligned(64)));  /* pushes refused because the ring was full */
} gs_ring;

/* capacity is rounded up to a power of two (at least 64). 0 or -ENOMEM. */
int gs__ring_init(gs_ring *r, size_t capacity);
void gs__ring_free(gs_ring *r);

/* Any thread, never blocks: 0, or -ENOBUFS when full (the event is dropped and counted). */
int gs__ring_push(gs_ring *r, const gs_event *ev);

/* The consumer only: copies up to max events into out, returns how many. */
size_t gs__ring_pop(gs_ring *r, gs_event *out, size_t max);

/* Empties the ring with no consumer running: the fork child, and tests. */
void gs__ring_reset(gs_ring *r);

/* ---- where the writer puts records (sink.c): the bounded file and the in-memory window ------ */

/* A growable byte buffer. */
typedef struct gs_buf {
  uint8_t *p;
  size_t n, cap;
} gs_buf;

int gs__buf_put(gs_buf *b, const void *p, size_t n);
void gs__buf_free(gs_buf *b);

/* Owned by the writer thread alone, so it needs no lock. */
typedef struct gs_sink {
  gs_trace_header hdr;
  char path[4096];
  int fd;                 /* -1: memory only */
  uint64_t max_bytes;
  uint64_t file_bytes;    /* bytes in the file now */
  gs_buf pending;         /* encoded, not yet written */
  size_t mem_bytes;
  gs_buf summary;         /* every summary record (samples merged when over mem_bytes / 2) */
  gs_buf recent[2];       /* detail: the older and the current half of the recent window */
  uint64_t detail_dropped, samples_merged, compactions, detail_from;
  int error;              /* first write error (negative errno); the file is then closed */
} gs_sink;

/* path may be empty (memory only). 0 or negative errno. */
int gs__sink_open(gs_sink *s, const char *path, uint64_t max_bytes, size_t mem_bytes);

/* Adds one encoded record. */
void gs__sink_put(gs_sink *s, const uint8_t *rec, size_t n, bool detail, uint64_t t);

/* Writes what is pending to the file, compacting it first when it would exceed the bound. */
int gs__sink_flush(gs_sink *s);

/* Closes the file (after a final flush) and frees the memory. */
void gs__sink_close(gs_sink *s);

/* Header (snapshot flag) + summary + recent detail + tail (the caller's DROP and END records). */
int gs__sink_snapshot(const gs_sink *s, const uint8_t *tail, size_t tail_n, uint8_t **out,
                      size_t *len);

/* Rewrites the records in[0..len) into out keeping every summary record, merging samples in
 * groups of 2^shift per device (the largest total of a group survives), and detail records only
 * at offsets >= cut. Counts what it removed. Used by the file bound and the memory bound. */
int gs__sink_compact(const uint8_t *in, size_t len, unsigned shift, size_t cut, gs_buf *out,
                     uint64_t *detail_dropped, uint64_t *samples_merged, uint64_t *first_t);


/* ---- call stacks as a prefix tree of instruction pointers (callsite.c) ---------------------- */

#define GS_SITES_MAX_DEPTH 64

/* Allocates the tree for up to max_nodes nodes (ids 1..max_nodes-1; 0 means "no site") and
 * resolves the unwinder: libunwind's unw_backtrace via dlopen("libunwind.so.8"), else glibc's
 * backtrace(). skip_own drops the frames of the object holding this code (the shim). depth limits the frames kept (the innermost ones). 0 or -ENOMEM. Not thread-safe:
 * call before any capture. */
int gs__sites_init(uint32_t max_nodes, unsigned depth, bool skip_own);
void gs__sites_fini(void);

/* Unwinds the calling thread, drops the shim's own frames, and returns the id of the path's leaf
 * (0 when unwinding failed). Lock-free; never allocates. */
uint32_t gs__sites_capture(void);

/* Inserts a path given innermost frame first (as unwinders return it); returns the leaf id.
 * Paths that do not fit in a full tree end at the deepest node already present. */
uint32_t gs__sites_insert(const uint64_t *ips, unsigned n);

/* Node id's parent and ip once it is ready to be written: 1, else 0 (not yet, or no such id). */
int gs__sites_get(uint32_t id, uint32_t *parent, uint64_t *ip);

/* Next id to be handed out (ids below it are ready or about to be). */
uint32_t gs__sites_next_id(void);

/* Paths cut short because the tree was full. */
uint64_t gs__sites_dropped(void);

/* Which unwinder is in use: "libunwind", "glibc" or "none". */
const char *gs__sites_unwinder(void);


/* ---- the loaded objects, so the report can symbolize ips (modmap.c) ------------------------- */

#define GS_MODMAP_MAX 2048

typedef struct gs_module {
  gs_rec_module r;
  char path[1024];
} gs_module;

typedef void (*gs_module_cb)(const gs_module *m, void *arg);

/* Used by the writer thread only, so it needs no lock. */
typedef struct gs_modmap {
  gs_module *mods;
  size_t n;
  uint64_t rescans;
} gs_modmap;

/* Scans the loaded objects with dl_iterate_phdr and calls cb for each one not seen before.
 * Returns how many were new, or -ENOMEM. */
int gs__modmap_scan(gs_modmap *m, gs_module_cb cb, void *arg);

/* Whether ip lies in a known object. */
bool gs__modmap_contains(const gs_modmap *m, uint64_t ip);

void gs__modmap_free(gs_modmap *m);


/* ---- GPU durations of our kernels from CUPTI activity records (cupti.c) --------------------- */

/* Loads libcupti with dlopen and enables kernel activity records; each record of one of our
 * kernels (named gs_k_*) becomes a KERNEL trace event. Fail-open: returns
 * -ENOTSUP when CUPTI is absent, was not compiled in, or refuses (another subscriber); the job
 * runs on untouched. Called on the writer thread once CUDA is in use, never from a constructor. */
int gs__cupti_start(void);

/* Flushes pending records and disables collection. */
void gs__cupti_stop(void);

/* The kernel name for an id handed to gs__trace_kernel ("?" if unknown). */
const char *gs__cupti_name(uint32_t id);

/* Whether a kernel name is one of ours. */
bool gs__cupti_is_ours(const char *name);

void gs__cupti_atfork_child(void);

/* PyTorch's profiler (kineto) is on (true) or off: while it is, our CUPTI collection stops
 * (records flushed, callbacks left to kineto), and it starts again once the profiler is off.
 * Called by the engine at each iteration when GACTSHIM_CUPTI=1; read by the writer thread. */
void gs__cupti_note_profiler(bool on);
bool gs__cupti_profiler_on(void);


/* ---- the control socket's server side (control_server.c); the protocol is in format.h ------- */

/* Creates <dir>/<pid>.sock (0600) and listens. Returns the listening fd or negative errno. */
int gs__control_listen(void);

/* Accepts and serves at most one pending client on listen_fd without blocking the caller for
 * long: the request is read with a short timeout, the peer's uid is checked with SO_PEERCRED,
 * the reply is built (snapshot) and sent from a detached thread with a send timeout.
 * Returns 1 if a client was handled, 0 if none was waiting, negative errno on error. */
int gs__control_serve(int listen_fd);

/* Closes the socket and removes its file (only in the process that created it). */
void gs__control_close(int listen_fd);

#endif
