/* recorder.c: the recorder — hot-path events into the ring, and the writer thread that drains it. */
#include "timeline.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GS_BATCH 1024

enum { GS_ST_OFF = 0, GS_ST_CONFIGURED, GS_ST_STARTING, GS_ST_RUNNING, GS_ST_STOPPED };

typedef struct gs__dev {
  gs_rec_sample live;   /* running totals */
  gs_rec_sample best;   /* the window's maximum (`without`: the window's maximum of its own) */
  uint64_t expand;      /* Σ (full − held) over live compressed saved tensors */
  bool active, in_window;
} gs__dev;

/* The process's one recorder. Global because every hook, in every thread, appends to the same
 * queue, and the constructor, the destructor and the fork handler must reach it. The writer
 * fields below `ring` are touched by the writer thread only (and by snapshot, which runs on it). */
static struct {
  int state;                  /* GS_ST_*, atomic */
  gs_trace_options opt;
  gs_ring ring;
  pthread_t thread;
  int stop;                   /* atomic: the writer should drain and exit */
  int result;
  gs_sink sink;
  gs_modmap mods;
  gs__dev dev[GS_DEVICE_SLOTS];
  uint32_t sites_emitted;     /* SITE records written for ids below this */
  uint64_t ring_dropped_seen, win_start, last_flush, last_rescan;
  int listen_fd;
  bool unknown_ip;
  gs_event *batch;            /* the writer's scratch; here, not on its stack, for the fork child */
} gs__r = {.listen_fd = -1};

/* What a forked child inherits from its parent's writer and must not free (the writer may have
 * been inside these buffers at the fork). Kept here so the memory stays referenced, not lost;
 * external linkage so the compiler cannot drop the stores as never read. */
struct gs__trace_orphans {
  gs_sink sink;
  gs_modmap mods;
  void *batch;
};
struct gs__trace_orphans gs__trace_orphaned;

static int gs__state(void) { return __atomic_load_n(&gs__r.state, __ATOMIC_ACQUIRE); }

void gs__trace_defaults(gs_trace_options *o) {
  memset(o, 0, sizeof(*o));
  o->max_bytes = GS_TRACE_MAX_DEFAULT;
  o->memory_bytes = 8u << 20;
  o->ring_events = 1u << 16;
  o->window_ns = 10u * 1000 * 1000;
  o->flush_ms = 100;
  o->site_depth = 24;
  o->site_min_bytes = 4096;
  o->site_max_nodes = 1u << 16;
  o->callsites = true;
  o->control = true;
}

int gs__trace_configure(const gs_trace_options *o) {
  if (gs__state() != GS_ST_OFF && gs__state() != GS_ST_STOPPED) return -EBUSY;
  gs__r.opt = *o;
  gs__r.result = 0;
  if (!gs__r.ring.slots) {
    int rc = gs__ring_init(&gs__r.ring, o->ring_events);
    if (rc != 0) return rc;
  }
  if (o->callsites) gs__sites_init(o->site_max_nodes, o->site_depth, !o->keep_own_frames);
  __atomic_store_n(&gs__r.state, GS_ST_CONFIGURED, __ATOMIC_RELEASE);
  return 0;
}

/* ---- hot path ---- */

/* Events offered to the ring: queued (its tail) plus refused. No counter of its own, so a hook
 * touches one shared cache line, not two. */
static uint64_t gs__events(void) {
  return __atomic_load_n(&gs__r.ring.tail, __ATOMIC_RELAXED) + __atomic_load_n(&gs__r.ring.dropped, __ATOMIC_RELAXED);
}

static uint32_t gs__tid(void) {
  /* Per thread: gettid is a system call. Initial-exec: the shim is preloaded, never dlopen'ed. */
  static __thread uint32_t tid __attribute__((tls_model("initial-exec")));
  if (!tid) tid = (uint32_t)syscall(SYS_gettid);
  return tid;
}

static void gs__push(gs_event *ev) {
  int st = gs__state();
  /* The ring exists from configure on, so events queue while another thread starts the writer. */
  if (gs__likely(st == GS_ST_RUNNING || st == GS_ST_STARTING)) {
    ev->t = ev->t ? ev->t : gs__now_ns();
    ev->tid = gs__tid();
    gs__ring_push(&gs__r.ring, ev);
    return;
  }
  if (st == GS_ST_CONFIGURED && gs__trace_start() == 0) gs__push(ev);
}

uint32_t gs__trace_site(uint64_t size) {
  if (gs__state() < GS_ST_CONFIGURED || !gs__r.opt.callsites || size < gs__r.opt.site_min_bytes)
    return 0;
  return gs__sites_capture();
}

static void gs__push_alloc(unsigned type, uint64_t key, const gs_alloc_record *rec, unsigned to) {
  if (gs__state() == GS_ST_OFF) return;
  gs_event ev = {.type = (uint8_t)type, .kind = rec->kind, .cat = rec->category,
                 .cat2 = (uint8_t)to, .device = rec->device, .site = rec->site,
                 .a = key, .b = rec->size, .c = rec->stream, .d = rec->time_ns};
  if (type == GS_REC_ALLOC) ev.t = rec->time_ns; /* saves a clock read when the caller made one */
  /* A free is never stamped before its allocation (another thread's clock may be ~1 µs ahead). */
  if (type == GS_REC_FREE && (ev.t = gs__now_ns()) < rec->time_ns) ev.t = rec->time_ns;
  if (type == GS_REC_ALLOC && !ev.site) ev.site = gs__trace_site(rec->size);
  gs__push(&ev);
}

void gs__trace_alloc(uint64_t key, const gs_alloc_record *rec) {
  gs__push_alloc(GS_REC_ALLOC, key, rec, rec->category);
}
void gs__trace_free(uint64_t key, const gs_alloc_record *rec) {
  gs__push_alloc(GS_REC_FREE, key, rec, rec->category);
}
void gs__trace_recat(uint64_t key, const gs_alloc_record *rec, gs_category to) {
  gs__push_alloc(GS_REC_RECAT, key, rec, to);
}

const gs_registry_observer gs__trace_observer = {
  .on_alloc = gs__trace_alloc,
  .on_free = gs__trace_free,
  .on_recat = gs__trace_recat,
  .on_oom = gs__trace_oom,
};

void gs__trace_saved(gs_saved_op op, uint64_t before, uint64_t after, unsigned bits,
                     uint64_t dur_ns, int device, const gs_trace_saved_id *id) {
  if (gs__state() == GS_ST_OFF) return;
  device = gs__device_slot(device); /* the engine's CPU is -1 */
  gs_event ev = {.type = GS_REC_SAVED, .kind = (uint8_t)op, .cat2 = (uint8_t)bits,
                 .device = (int16_t)device, .a = before, .b = after, .c = dur_ns};
  if (id) ev.site = id->attr, ev.flags = id->flags, ev.d = id->serial;
  uint64_t now = gs__now_ns();
  ev.t = now > dur_ns ? now - dur_ns : now; /* slices start when the operation started */
  gs__push(&ev);
}

void gs__trace_carve(int device, gs_category cat, uint64_t bytes, bool add) {
  if (gs__state() == GS_ST_OFF || device < 0 || device >= GS_MAX_DEVICES || cat == GS_CAT_OTHER) return;
  gs_event ev = {.type = GS_REC_RECAT, .kind = GS_KIND_DEVICE, .cat = add ? GS_CAT_OTHER : (uint8_t)cat,
                 .cat2 = add ? (uint8_t)cat : GS_CAT_OTHER, .device = (int16_t)device, .b = bytes};
  gs__push(&ev);
}

void gs__trace_iteration(uint64_t n) {
  if (gs__state() == GS_ST_OFF) return;
  gs_event ev = {.type = GS_REC_ITER, .a = n};
  gs__push(&ev);
}

/* Field use (docs/trace-format.md): a iteration, b index, c full bytes, d held bytes, cat2 bits,
 * kind reason, cat next reason, flags next bits | alive-at-peak << 8, site pack µs, tid first
 * unpack µs (both since the iteration began). */
void gs__trace_decision(const gs_trace_decision *d) {
  if (gs__state() == GS_ST_OFF) return;
  int device = gs__device_slot(d->device);
  gs_event ev = {.type = GS_REC_PLAN, .kind = d->reason, .cat = d->next_reason, .cat2 = d->bits,
                 .device = (int16_t)device, .flags = (uint16_t)(d->next_bits | (d->alive_at_peak ? 0x100 : 0)),
                 .site = (uint32_t)(d->pack_ns / 1000), .tid = (uint32_t)(d->unpack_ns / 1000),
                 .a = d->iteration, .b = d->index, .c = d->full_bytes, .d = d->held_bytes};
  gs__push(&ev);
}

void gs__trace_oom(uint64_t size, int device, int result) {
  if (gs__state() == GS_ST_OFF) return;
  gs_event ev = {.type = GS_REC_OOM, .device = (int16_t)device, .a = size, .b = (uint64_t)result};
  gs__push(&ev);
}

void gs__trace_kernel(uint32_t name_id, uint64_t start_ns, uint64_t end_ns, int device) {
  if (gs__state() == GS_ST_OFF) return;
  gs_event ev = {.type = GS_REC_KERNEL, .t = start_ns, .device = (int16_t)device, .a = start_ns,
                 .b = end_ns, .c = name_id};
  gs__push(&ev);
}

/* ---- writer thread ---- */

/* Hands one encoded record (n bytes; 0: it did not fit and is skipped) to the sink. */
static void gs__put(const uint8_t *rec, size_t n, unsigned type, uint64_t t) {
  if (n) gs__sink_put(&gs__r.sink, rec, n, gs__tracefmt_is_detail(type), t);
}

static void gs__emit_module(const gs_module *m, void *arg) {
  uint8_t rec[GS_REC_MAX];
  gs__put(rec, gs__tracefmt_put_module(rec, sizeof(rec), &m->r, m->path, strlen(m->path)),
          GS_REC_MODULE, 0);
}

static void gs__emit_event(const gs_event *ev, const char *name) {
  uint8_t rec[GS_REC_MAX];
  size_t n = gs__tracefmt_put_event(rec, sizeof(rec), ev, name, name ? strlen(name) : 0);
  gs__put(rec, n, ev->type, ev->t);
}

static void gs__emit_sample(const gs_rec_sample *s) {
  uint8_t rec[GS_REC_HDR_BYTES + GS_FMT_SAMPLE_BYTES_2_1];
  gs__put(rec, gs__tracefmt_put_sample(rec, sizeof(rec), s), GS_REC_SAMPLE, s->t);
}

static void gs__emit_interned(const uint8_t *rec, size_t n, void *arg) {
  gs__put(rec, n, GS_REC_STRING, 0);
}

/* SITE records for every node that became ready, in id order, each once. */
static void gs__emit_sites(void) {
  uint32_t parent;
  uint64_t ip;
  /* Id 0 is "no site". Skipped before the loop: skipping it after made the first round emit
   * nothing, so a run that stopped before the writer's second round lost every SITE record. */
  if (gs__r.sites_emitted == 0) gs__r.sites_emitted = 1;
  while (gs__r.sites_emitted < gs__sites_next_id() &&
         gs__sites_get(gs__r.sites_emitted, &parent, &ip)) {
    gs_rec_site s = {gs__r.sites_emitted, parent, ip};
    uint8_t rec[GS_REC_HDR_BYTES + GS_FMT_SITE_BYTES];
    gs__put(rec, gs__tracefmt_put_site(rec, sizeof(rec), &s), GS_REC_SITE, 0);
    if (!gs__modmap_contains(&gs__r.mods, ip)) gs__r.unknown_ip = true;
    gs__r.sites_emitted++;
  }
  /* A library loaded since the last scan: rescan, at most once a second (JIT code has no module
   * and would otherwise rescan forever). */
  uint64_t now = gs__now_ns();
  if (gs__r.unknown_ip && now - gs__r.last_rescan > 1000000000ull) {
    gs__modmap_scan(&gs__r.mods, gs__emit_module, NULL);
    gs__r.last_rescan = now;
    gs__r.unknown_ip = false;
  }
}

static gs__dev *gs__dev_of(int device) {
  unsigned d = (unsigned)gs__device_slot(device);
  gs__r.dev[d].live.device = (int16_t)d;
  gs__r.dev[d].active = true;
  return &gs__r.dev[d];
}

static void gs__add(gs_rec_sample *s, unsigned cat, unsigned kind, uint64_t n, bool add) {
  cat = cat < GS_CAT__COUNT ? cat : GS_CAT_OTHER;
  kind = kind < GS_KIND__COUNT ? kind : GS_KIND_DEVICE;
  /* Saturate rather than wrap: a free whose alloc was dropped must not make totals huge. */
  uint64_t *fields[3] = {&s->total, &s->by_cat[cat], &s->by_kind[kind]};
  for (int i = 0; i < 3; i++) *fields[i] = add ? *fields[i] + n : (*fields[i] > n ? *fields[i] - n : 0);
}

static void gs__window_note(gs__dev *d, uint64_t t) {
  d->live.t = t;
  d->live.without = d->live.total + d->expand;
  uint64_t w = d->in_window && d->best.without > d->live.without ? d->best.without : d->live.without;
  /* Ties go to the later state: a recategorization at the same total is news to keep. */
  if (!d->in_window || d->live.total >= d->best.total) d->best = d->live;
  d->best.without = w;
  d->in_window = true;
}

/* The curve without gactshim: a compressed tensor would have held its full size (COMPRESS adds
 * full − held until its RELEASE takes it back). */
static void gs__apply_saved(const gs_event *ev) {
  gs__dev *d = gs__dev_of(ev->device);
  if (ev->kind == GS_SAVED_COMPRESS && ev->a > ev->b) d->expand += ev->a - ev->b;
  else if (ev->kind == GS_SAVED_RELEASE && ev->cat2 && ev->b > ev->a)
    d->expand = d->expand > ev->b - ev->a ? d->expand - (ev->b - ev->a) : 0;
  else return;
  /* A SAVED record's time is when the operation began, before the allocation it made: never move
   * the device's clock back (the peak's time decides what the report replays up to it). */
  gs__window_note(d, ev->t > d->live.t ? ev->t : d->live.t);
}

static void gs__apply(const gs_event *ev) {
  gs__dev *d = gs__dev_of(ev->device);
  if (ev->type == GS_REC_ALLOC) gs__add(&d->live, ev->cat, ev->kind, ev->b, true);
  else if (ev->type == GS_REC_FREE) gs__add(&d->live, ev->cat, ev->kind, ev->b, false);
  else {
    gs__add(&d->live, ev->cat, ev->kind, ev->b, false);
    gs__add(&d->live, ev->cat2, ev->kind, ev->b, true);
  }
  gs__window_note(d, ev->t);
}

/* Ends the sample window: per device, its maximum and, if memory fell since, its last value. */
static void gs__close_window(uint64_t now) {
  for (unsigned i = 0; i < GS_DEVICE_SLOTS; i++) {
    gs__dev *d = &gs__r.dev[i];
    if (!d->in_window) continue;
    gs__emit_sample(&d->best);
    if (d->live.t > d->best.t && memcmp(d->live.by_cat, d->best.by_cat, sizeof(d->live.by_cat)) != 0)
      gs__emit_sample(&d->live);
    d->in_window = false;
  }
  gs__r.win_start = now;
}

/* The DROP record of time t into dst: its length, or 0 if it does not fit. */
static size_t gs__drop_record(uint8_t *dst, size_t cap, uint64_t t) {
  gs_rec_drop dr = {t, __atomic_load_n(&gs__r.ring.dropped, __ATOMIC_RELAXED),
                    gs__r.sink.detail_dropped, gs__r.sink.detail_from, gs__sites_dropped(),
                    gs__r.sink.samples_merged};
  return gs__tracefmt_put_drop(dst, cap, &dr);
}

/* The END record of time t with these flags into dst: its length, or 0. */
static size_t gs__end_record(uint8_t *dst, size_t cap, uint64_t t, uint64_t flags) {
  gs_rec_end end = {t, gs__r.opt.registry_peak ? gs__r.opt.registry_peak() : 0, gs__events(),
                    flags};
  return gs__tracefmt_put_end(dst, cap, &end);
}

static void gs__emit_drop(uint64_t t) {
  uint8_t rec[GS_REC_HDR_BYTES + GS_FMT_DROP_BYTES];
  gs__put(rec, gs__drop_record(rec, sizeof(rec), t), GS_REC_DROP, t);
}

/* After the ring refused events the running totals are wrong: take the registry's. */
static void gs__resync(uint64_t now) {
  uint64_t dropped = __atomic_load_n(&gs__r.ring.dropped, __ATOMIC_RELAXED);
  if (dropped == gs__r.ring_dropped_seen) return;
  gs__r.ring_dropped_seen = dropped;
  gs__emit_drop(now);
  if (!gs__r.opt.totals) return;
  for (unsigned i = 0; i < GS_DEVICE_SLOTS; i++) {
    gs__dev *d = &gs__r.dev[i];
    if (!d->active || gs__r.opt.totals((int)i, d->live.by_cat, d->live.by_kind) != 0) continue;
    d->live.total = 0;
    for (unsigned c = 0; c < GS_CAT__COUNT; c++) d->live.total += d->live.by_cat[c];
    gs__window_note(d, now);
  }
}

static void gs__process(const gs_event *ev) {
  switch (ev->type) {
    case GS_REC_ALLOC: case GS_REC_FREE: case GS_REC_RECAT:
      gs__apply(ev);
      break;
    case GS_REC_ITER:
      gs__close_window(ev->t);
      break;
    case GS_REC_SAVED:
      gs__apply_saved(ev);
      break;
    case GS_REC_KERNEL:
      gs__emit_event(ev, gs__cupti_name((uint32_t)ev->c));
      return;
    default:
      break;
  }
  gs__emit_event(ev, NULL);
}

/* One round: drain the ring, write new sites, close the window and flush when due. Returns the
 * number of events handled. */
static size_t gs__round(gs_event *batch) {
  size_t total = 0, n;
  do {
    n = gs__ring_pop(&gs__r.ring, batch, GS_BATCH);
    gs__emit_sites(); /* before the events that name them */
    gs__intern_emit(gs__emit_interned, NULL);
    for (size_t i = 0; i < n; i++) gs__process(&batch[i]);
    total += n;
  } while (n == GS_BATCH);
  uint64_t now = gs__now_ns();
  gs__resync(now);
  if (now - gs__r.win_start >= gs__r.opt.window_ns) gs__close_window(now);
  if (now - gs__r.last_flush >= gs__r.opt.flush_ms * 1000000ull) {
    gs__sink_flush(&gs__r.sink);
    gs__r.last_flush = now;
  }
  return total;
}

static void *gs__writer(void *arg) {
  gs_event *batch = gs__r.batch = malloc(GS_BATCH * sizeof(gs_event));
  if (!batch) return NULL;
  bool cupti_tried = false, cupti_on = false, control_tried = false;
  while (!__atomic_load_n(&gs__r.stop, __ATOMIC_ACQUIRE)) {
    size_t n = gs__round(batch);
    /* The first event means the job uses CUDA or torch: only now serve attach and load CUPTI. */
    if (gs__r.opt.control && !control_tried && gs__events()) {
      control_tried = true; /* once: a directory that is not ours stays refused */
      gs__r.listen_fd = gs__control_listen();
    }
    if (gs__r.opt.cupti && !cupti_tried && gs__events() && !gs__cupti_profiler_on()) {
      cupti_tried = true;
      cupti_on = gs__cupti_start() == 0;
    }
    /* PyTorch's profiler owns CUPTI while it runs: step aside, and come back after it. */
    if (cupti_on && gs__cupti_profiler_on()) {
      gs__cupti_stop();
      cupti_on = false;
      cupti_tried = false;
    }
    /* Under a steady stream of events, still look at the socket (attach must not starve) and
     * rest a little unless the ring was full; idle, wait 5 ms. */
    int wait_ms = n >= GS_BATCH ? 0 : n ? 1 : 5;
    if (gs__r.listen_fd >= 0) {
      struct pollfd p = {.fd = gs__r.listen_fd, .events = POLLIN};
      if (poll(&p, 1, wait_ms) > 0) gs__control_serve(gs__r.listen_fd);
    } else if (wait_ms) {
      usleep((useconds_t)wait_ms * 1000);
    }
  }
  if (cupti_on) gs__cupti_stop();
  gs__round(batch);
  free(batch);
  gs__r.batch = NULL;
  return NULL;
}

int gs__trace_start(void) {
  int expect = GS_ST_CONFIGURED;
  if (!__atomic_compare_exchange_n(&gs__r.state, &expect, GS_ST_STARTING, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return expect == GS_ST_RUNNING || expect == GS_ST_STARTING ? 0 : -EINVAL;
  int rc = gs__sink_open(&gs__r.sink, gs__r.opt.path, gs__r.opt.max_bytes, gs__r.opt.memory_bytes);
  if (rc != 0 && gs__r.opt.path[0]) {
    /* No file (another process holds it, or it cannot be created): keep the in-memory window
     * for attach, and report the error at stop. */
    gs__r.result = rc;
    rc = gs__sink_open(&gs__r.sink, "", gs__r.opt.max_bytes, gs__r.opt.memory_bytes);
  }
  if (rc == 0) {
    gs__modmap_scan(&gs__r.mods, gs__emit_module, NULL);
    gs__r.win_start = gs__r.last_flush = gs__r.last_rescan = gs__now_ns();
    __atomic_store_n(&gs__r.stop, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&gs__r.state, GS_ST_RUNNING, __ATOMIC_RELEASE);
    rc = -gs__thread_create(&gs__r.thread, NULL, gs__writer, NULL);
  }
  if (rc == 0 && gs__r.opt.on_start) gs__r.opt.on_start();
  if (rc != 0) {
    gs__sink_close(&gs__r.sink);
    __atomic_store_n(&gs__r.state, GS_ST_STOPPED, __ATOMIC_RELEASE);
  }
  return rc;
}

static void gs__emit_end(gs_sink *sink, uint64_t flags) {
  uint64_t now = gs__now_ns();
  uint8_t rec[GS_REC_HDR_BYTES + GS_FMT_END_BYTES];
  gs__emit_drop(now);
  gs__put(rec, gs__end_record(rec, sizeof(rec), now, flags), GS_REC_END, now);
}

int gs__trace_stop(void) {
  int expect = GS_ST_RUNNING;
  if (!__atomic_compare_exchange_n(&gs__r.state, &expect, GS_ST_STOPPED, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    if (expect == GS_ST_CONFIGURED) __atomic_store_n(&gs__r.state, GS_ST_STOPPED, __ATOMIC_RELEASE);
    return 0;
  }
  __atomic_store_n(&gs__r.stop, 1, __ATOMIC_RELEASE);
  pthread_join(gs__r.thread, NULL);
  gs__close_window(gs__now_ns());
  gs__sink_flush(&gs__r.sink); /* first, so that the DROP record counts what this flush drops */
  gs__emit_end(&gs__r.sink, 0);
  gs__sink_flush(&gs__r.sink);
  int rc = gs__r.result ? gs__r.result : gs__r.sink.error;
  if (gs__r.listen_fd >= 0) gs__control_close(gs__r.listen_fd);
  gs__r.listen_fd = -1;
  gs__sink_close(&gs__r.sink);
  return rc;
}

/* Runs on the writer thread (the control socket is served there), so the sink is consistent. */
int gs__trace_snapshot(uint8_t **out, size_t *len) {
  if (gs__state() != GS_ST_RUNNING) return -ENOTCONN;
  /* Two samples per device slot, then DROP and END: every active device fits. */
  uint8_t tail[GS_DEVICE_SLOTS * 2 * (GS_REC_HDR_BYTES + GS_FMT_SAMPLE_BYTES_2_1) +
               2 * GS_REC_HDR_BYTES + GS_FMT_DROP_BYTES + GS_FMT_END_BYTES];
  size_t n = 0;
  uint64_t now = gs__now_ns();
  for (unsigned i = 0; i < GS_DEVICE_SLOTS; i++) {
    gs__dev *d = &gs__r.dev[i];
    if (!d->active) continue;
    gs_rec_sample s = d->in_window ? d->best : d->live;
    n += gs__tracefmt_put_sample(tail + n, sizeof(tail) - n, &s);
    s = d->live;
    s.t = now;
    n += gs__tracefmt_put_sample(tail + n, sizeof(tail) - n, &s);
  }
  n += gs__drop_record(tail + n, sizeof(tail) - n, now);
  n += gs__end_record(tail + n, sizeof(tail) - n, now, GS_TRACE_F_SNAPSHOT);
  return gs__sink_snapshot(&gs__r.sink, tail, n, out, len);
}

void gs__trace_counters(gs_trace_counters *c) {
  c->events = gs__events();
  c->ring_dropped = __atomic_load_n(&gs__r.ring.dropped, __ATOMIC_RELAXED);
  c->detail_dropped = gs__r.sink.detail_dropped;
  c->samples_merged = gs__r.sink.samples_merged;
  c->file_bytes = gs__r.sink.file_bytes;
  c->compactions = gs__r.sink.compactions;
}

uint64_t gs__trace_queued(void) {
  uint64_t head = __atomic_load_n(&gs__r.ring.head, __ATOMIC_ACQUIRE);
  return __atomic_load_n(&gs__r.ring.tail, __ATOMIC_ACQUIRE) - head;
}

void gs__trace_atfork_child(void) {
  int st = gs__state();
  if (st == GS_ST_OFF) return;
  /* The writer thread and the socket belong to the parent. Forget them without touching the
   * parent's file: only our copy of the descriptors is closed. */
  if (st == GS_ST_RUNNING || st == GS_ST_STARTING) {
    if (gs__r.sink.fd >= 0) close(gs__r.sink.fd);
    if (gs__r.listen_fd >= 0) close(gs__r.listen_fd);
    gs__r.listen_fd = -1;
    /* The parent's writer may have been inside these buffers at the fork: keep, do not free. */
    gs__trace_orphaned.sink = gs__r.sink;
    gs__trace_orphaned.batch = gs__r.batch;
    gs__r.batch = NULL;
    memset(&gs__r.sink, 0, sizeof(gs__r.sink));
    gs__r.sink.fd = -1;
  }
  gs__ring_reset(&gs__r.ring);
  gs__r.result = 0;
  memset(gs__r.dev, 0, sizeof(gs__r.dev));
  gs__trace_orphaned.mods = gs__r.mods; /* kept for the same reason */
  memset(&gs__r.mods, 0, sizeof(gs__r.mods));
  gs__r.sites_emitted = 0;
  gs__intern_atfork_child();
  gs__cupti_atfork_child();
  /* Record again only if the template names the process (expanded again for the child's pid).
   * Otherwise the child stays unrecorded and starts no writer thread: a thread started after
   * fork in a multi-threaded parent is the kind of work a fork child should not do uninvited. */
  gs__r.opt.path[0] = '\0';
  if (!strstr(gs__r.opt.path_template, "%p") || !gs__r.opt.expand) {
    __atomic_store_n(&gs__r.state, GS_ST_STOPPED, __ATOMIC_RELEASE);
    return;
  }
  gs__r.opt.expand(gs__r.opt.path_template, gs__r.opt.path, sizeof(gs__r.opt.path));
  __atomic_store_n(&gs__r.state, GS_ST_CONFIGURED, __ATOMIC_RELEASE);
}
