/* report_whatif.c: predicted peaks of the last complete iteration at other widths and selections. */
#include "report.h"
#include "policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RP_GROUP 256 /* GACTSHIM_GROUP's default: the trace does not record the setting */

const char rp_whatif_method[] =
    "Replays the last complete iteration's saved tensors on the peak device in their recorded "
    "order (each from its pack to its release), with each tensor's size at the width asked for "
    "(the codec's size model, groups of 256 or of 32 at 8 bits, a ReLU output's 1-bit sign mask, "
    "softmax-like outputs kept at 8 bits or more), plus the memory that was not saved tensors at that "
    "iteration's measured peak (constant). \"all\" compresses every tensor a policy could compress "
    "(floating point, at least GACTSHIM_MIN_BYTES), \"lifetime\" only those alive at the peak "
    "the iteration would have without compression. The smallest budget is the peak of the budget "
    "policy's smallest plan: every tensor alive at that peak at its lowest width.";

typedef struct rp_wt {
  uint64_t full, held, numel;
  uint16_t flags;
  bool alive_at_peak;
} rp_wt;

typedef struct rp_wev {
  uint32_t k;
  bool pack;
} rp_wev;

typedef struct rp_wi {
  rp_wt *ts;
  size_t n;
  rp_wev *ev;
  size_t nev;
} rp_wi;

/* The band [t0, t1) of iteration i: every saved tensor packed in it on the peak device, with its
 * release. -EAGAIN when one was never released (the run ended inside it). */
static int rp_wi_collect(const rp_trace *t, size_t i, rp_wi *w) {
  uint64_t t0 = t->iters[i].t0, t1 = i + 1 < t->niters ? t->iters[i + 1].t0 : UINT64_MAX;
  size_t packs = 0;
  for (size_t e = 0; e < t->nevents; e++)
    packs += t->events[e].type == GS_REC_SAVED && t->events[e].kind <= GS_SAVED_COMPRESS;
  w->ts = calloc(packs + 1, sizeof(rp_wt));
  w->ev = calloc(2 * packs + 1, sizeof(rp_wev));
  uint64_t *serial = calloc(packs + 1, sizeof(uint64_t));
  if (!w->ts || !w->ev || !serial) return free(serial), -ENOMEM;
  for (size_t e = 0; e < t->nevents; e++) {
    const gs_trace_event *ev = &t->events[e];
    if (ev->type != GS_REC_SAVED || ev->device != t->peak_dev || !ev->d) continue;
    if (ev->kind <= GS_SAVED_COMPRESS && ev->t >= t0 && ev->t < t1) {
      uint16_t elem = (ev->flags >> GS_SAVED_F_ELEM_SHIFT) & 0xf;
      serial[w->n] = ev->d;
      w->ts[w->n] = (rp_wt){ev->a, ev->b, elem ? ev->a / elem : 0, ev->flags, false};
      w->ev[w->nev++] = (rp_wev){(uint32_t)w->n++, true};
    } else if (ev->kind == GS_SAVED_RELEASE) {
      for (size_t k = w->n; k-- > 0;) /* recent packs first: releases come soon after */
        if (serial[k] == ev->d) {
          w->ev[w->nev++] = (rp_wev){(uint32_t)k, false};
          serial[k] = 0;
          break;
        }
    }
  }
  int rc = w->n ? 0 : -ENOENT;
  for (size_t k = 0; k < w->n; k++) rc = serial[k] ? -EAGAIN : rc;
  free(serial);
  return rc;
}

/* Size of tensor k at `bits` (0: full precision), as the codec would store it. */
static uint64_t rp_wt_bytes(const rp_wt *x, unsigned bits) {
  if (!bits || !x->numel) return x->full;
  unsigned elem = (x->flags >> GS_SAVED_F_ELEM_SHIFT) & 0xf;
  if ((x->flags & GS_SAVED_F_SENSITIVE) && bits < GS_POLICY_SENSITIVE_BITS) bits = GS_POLICY_SENSITIVE_BITS;
  uint64_t b = gs__alloc_bytes(x->numel, gs__group_at_bits(RP_GROUP, bits), 8 * elem, bits);
  if (x->flags & GS_SAVED_F_RELU) b += gs__alloc_bytes(x->numel, RP_GROUP, 8, 1);
  return b < x->full ? b : x->full;
}

/* The replayed curve's maximum with size[k] per tensor; marks the tensors alive at it if asked. */
static uint64_t rp_wi_peak(rp_wi *w, const uint64_t *size, uint64_t base, bool mark) {
  uint64_t live = base, peak = base;
  size_t at = 0;
  for (size_t e = 0; e < w->nev; e++) {
    const rp_wev *v = &w->ev[e];
    live = v->pack ? live + size[v->k] : live - (size[v->k] < live - base ? size[v->k] : live - base);
    if (live > peak) peak = live, at = e;
  }
  if (!mark) return peak;
  bool *alive = calloc(w->n + 1, sizeof(bool));
  if (!alive) return peak;
  for (size_t e = 0; e <= at && e < w->nev; e++) alive[w->ev[e].k] = w->ev[e].pack;
  for (size_t k = 0; k < w->n; k++) w->ts[k].alive_at_peak = alive[k];
  free(alive);
  return peak;
}

/* A row: candidates (those alive at the uncompressed peak if lifetime) at bits, the rest full. */
static void rp_wi_row(rp_whatif *out, rp_wi *w, uint64_t *size, const char *what, unsigned bits,
                      bool lifetime, bool lowest) {
  rp_whatif_row *r = &out->rows[out->nrows++];
  r->what = what;
  r->bits = bits;
  r->compressed = 0;
  for (size_t k = 0; k < w->n; k++) {
    const rp_wt *x = &w->ts[k];
    bool on = (x->flags & GS_SAVED_F_CANDIDATE) && (!lifetime || x->alive_at_peak);
    unsigned b = lowest ? ((x->flags & GS_SAVED_F_SENSITIVE) ? GS_POLICY_SENSITIVE_BITS : 1) : bits;
    size[k] = on ? rp_wt_bytes(x, b) : x->full;
    r->compressed += on;
  }
  r->peak = rp_wi_peak(w, size, out->base, false);
}

static void rp_wi_table(rp_trace *t, size_t i, rp_wi *w, uint64_t *size) {
  rp_whatif *o = &t->whatif;
  o->iteration = t->iters[i].n;
  o->measured = t->iters[i].peak;
  o->tensors = w->n;
  for (size_t k = 0; k < w->n; k++) o->candidates += (w->ts[k].flags & GS_SAVED_F_CANDIDATE) != 0;
  /* Memory that is not saved tensors, at the iteration's measured peak. */
  for (size_t s = 0; s < t->nsamples; s++) {
    const gs_rec_sample *x = &t->samples[s];
    if (x->device == t->peak_dev && x->total == o->measured && x->t >= t->iters[i].t0)
      o->base = x->by_cat[GS_CAT_OTHER];
  }
  for (size_t k = 0; k < w->n; k++) size[k] = w->ts[k].held;
  uint64_t recorded = 0;
  for (size_t k = 0; k < w->n; k++) recorded += w->ts[k].held < w->ts[k].full;
  o->rows[o->nrows++] = (rp_whatif_row){"as recorded (replay check)", rp_wi_peak(w, size, o->base, false), recorded, 0};
  for (size_t k = 0; k < w->n; k++) size[k] = w->ts[k].full;
  o->rows[o->nrows++] = (rp_whatif_row){"nothing compressed (GACTSHIM_POLICY=off)", rp_wi_peak(w, size, o->base, true), 0, 0};
  static const unsigned widths[3] = {8, 4, 2};
  static const char *const names[3][2] = {{"8 bits, all", "8 bits, lifetime"},
                                          {"4 bits, all", "4 bits, lifetime"},
                                          {"2 bits, all", "2 bits, lifetime"}};
  for (int b = 0; b < 3; b++)
    for (int l = 0; l < 2; l++) rp_wi_row(o, w, size, names[b][l], widths[b], l, false);
  rp_wi_row(o, w, size, "budget's smallest plan", 1, true, true);
  o->min_budget = o->rows[--o->nrows].peak;
  o->ok = true;
}

int rp_whatif_run(rp_trace *t) {
  rp_whatif *o = &t->whatif;
  memset(o, 0, sizeof(*o));
  snprintf(o->why, sizeof(o->why), "no complete iteration whose saved tensors were all released "
           "(or a trace of format 2.0, which does not pair packs with releases)");
  if (t->peak_dev < 0 || !t->niters) return 0;
  int rc = -ENOENT;
  /* The last iteration whose every saved tensor was released; a few back at most. */
  for (size_t i = t->niters; i-- > 0 && i + 4 > t->niters && rc != 0;) {
    rp_wi w = {0};
    rc = rp_wi_collect(t, i, &w);
    uint64_t *size = rc == 0 ? calloc(w.n + 1, sizeof(uint64_t)) : NULL;
    if (rc == 0 && !size) rc = -ENOMEM;
    if (rc == 0) rp_wi_table(t, i, &w, size);
    free(size), free(w.ts), free(w.ev);
    if (rc == -ENOMEM) return rc;
  }
  return 0;
}
