/* plan.c: per-iteration records of saved tensors, identity matching, and the plan dispatch. */
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Process state: the iteration being recorded and the plans learned from completed ones. Global
 * because an iteration is a process-wide notion (see shim/engine.c) and the hooks are plain
 * functions; touched only under the GIL, so no lock. */
static gs_plan_iter gs__cur;
static gs_plan_iter gs__cache[GS_PLAN_CACHE];
static int gs__last = -1;  /* cache index of the last completed iteration */
static int gs__match = -1; /* cache index of the plan the current iteration follows */
static uint64_t gs__stamp;
/* The configuration the plans follow (gs__plan_configure), under the same rules. */
static gs_policy_config gs__pc = {.kind = GS_POLICY_FIXED, .bits = 4, .group = 256, .adapt_every = 50};

/* How fast probed sensitivities move: a probe every GACTSHIM_ADAPT_EVERY iterations weighs 30 %. */
#define GS__SENS_ALPHA 0.3

static uint64_t gs__mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

/* The identity of tensor k: the previous identity folded with k's dtype and shape. */
static uint64_t gs__prefix(const gs_plan_iter *it, uint32_t k, const gs_policy_desc *d) {
  uint64_t h = k && k <= it->n ? it->slots[k - 1].prefix : 0x6a09e667f3bcc908ull;
  h = gs__mix(h, (uint64_t)(int64_t)d->dtype);
  h = gs__mix(h, (uint64_t)d->ndim);
  for (int i = 0; i < d->ndim; i++) h = gs__mix(h, (uint64_t)d->shape[i]);
  return h;
}

static int gs__grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap) return 0;
  if (need > GS_PLAN_MAX_TENSORS * 2u) return -ENOSPC;
  uint32_t c = *cap ? *cap * 2 : 256;
  while (c < need) c *= 2;
  void *q = realloc(*p, (size_t)c * elem);
  if (q == NULL) return -ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

bool gs__plan_probing(uint64_t it) {
  if (gs__pc.kind != GS_POLICY_ADAPTIVE && gs__pc.kind != GS_POLICY_BUDGET) return false;
  /* The first iterations (random weights move fast), then on the schedule. */
  return it < 3 || it % (gs__pc.adapt_every ? gs__pc.adapt_every : 1) == 0;
}

const gs_plan_iter *gs__plan_last(void) { return gs__last >= 0 ? &gs__cache[gs__last] : NULL; }

/* --- learning from a completed iteration ------------------------------------------------- */

static const gs_plan_iter *gs__find(uint32_t k, uint64_t prefix) {
  if (gs__match >= 0 && gs__cache[gs__match].n > k && gs__cache[gs__match].slots[k].prefix == prefix)
    return &gs__cache[gs__match];
  for (int i = 0; i < GS_PLAN_CACHE; i++) {
    const gs_plan_iter *p = &gs__cache[i];
    if (p->valid && p->n > k && p->slots[k].prefix == prefix) {
      gs__match = i;
      return p;
    }
  }
  return NULL;
}

/* Probes are occasional: a slot not probed this iteration inherits its identity's estimate, and
 * a fresh probe is folded into it. */
static void gs__carry_sensitivity(gs_plan_iter *it) {
  gs__match = -1;
  for (uint32_t k = 0; k < it->n; k++) {
    gs_plan_slot *s = &it->slots[k];
    const gs_plan_iter *old = gs__find(k, s->prefix);
    if (old == NULL) continue;
    const gs_plan_slot *o = &old->slots[k];
    if (s->c.n == 0) s->c = o->c;
    else if (o->c.n > 0) {
      gs_sens_ema e = o->c;
      if (gs__sens_ema_update(&e, s->c.c, GS__SENS_ALPHA) == 0) s->c = e;
    }
    if (s->range_term == 0) s->range_term = o->range_term;
  }
}

/* The policy's plan for the next iteration of the same shape, from this one. */
static void gs__make_plan(gs_plan_iter *it) {
  for (uint32_t k = 0; k < it->n; k++) {
    it->slots[k].next_bits = it->slots[k].bits;
    it->slots[k].next_reason = it->slots[k].reason;
  }
  gs__lifetime_analyze(it);
  /* The budget policy weighs lifetimes itself (only what is alive at its peaks can help). */
  if (gs__pc.select == GS_SELECT_LIFETIME && gs__pc.kind != GS_POLICY_BUDGET)
    gs__lifetime_select(&gs__pc, it);
  uint64_t est;
  if (gs__pc.kind == GS_POLICY_ADAPTIVE) gs__adaptive_plan(&gs__pc, it);
  else if (gs__pc.kind == GS_POLICY_BUDGET) gs__budget_plan(&gs__pc, it, &est);
}

/* Puts the completed iteration into the cache (replacing the plan of the same shape, else the
 * least recently used one) and hands its old buffers to the next recording. */
static void gs__store(void) {
  int slot = -1;
  for (int i = 0; i < GS_PLAN_CACHE && slot < 0; i++) {
    const gs_plan_iter *p = &gs__cache[i];
    if (p->valid && p->n == gs__cur.n && gs__cur.n && p->slots[p->n - 1].prefix == gs__cur.slots[gs__cur.n - 1].prefix)
      slot = i;
  }
  for (int i = 0; i < GS_PLAN_CACHE && slot < 0; i++)
    if (!gs__cache[i].valid) slot = i;
  if (slot < 0) {
    slot = 0;
    for (int i = 1; i < GS_PLAN_CACHE; i++)
      if (gs__cache[i].used < gs__cache[slot].used) slot = i;
  }
  gs_plan_iter spare = gs__cache[slot];
  gs__cache[slot] = gs__cur;
  gs__cache[slot].valid = true;
  gs__cache[slot].used = ++gs__stamp;
  gs__last = slot;
  gs__cur = spare;
}

void gs__plan_configure(const gs_policy_config *c) {
  gs__pc = *c;
  for (int i = 0; i < GS_PLAN_CACHE; i++) gs__cache[i].valid = false;
  gs__cur.n = gs__cur.nev = 0;
  gs__last = gs__match = -1;
}

void gs__plan_begin(uint64_t it, uint64_t now_ns) {
  if (gs__cur.n > 0) {
    gs__carry_sensitivity(&gs__cur);
    gs__make_plan(&gs__cur);
    gs__store();
  }
  gs__cur.iteration = it;
  gs__cur.t0_ns = now_ns;
  gs__cur.n = 0;
  gs__cur.nev = 0;
  gs__cur.peak_equiv = 0;
  gs__cur.peak_ev = 0;
  gs__cur.valid = false;
  gs__match = -1;
}

/* --- the current iteration ----------------------------------------------------------------- */

gs_policy_decision gs__plan_decide(const gs_policy_desc *d, gs_plan_reason *reason) {
  gs_policy_decision base = gs_policy_decide(&gs__pc, d);
  *reason = base.bits ? GS_REASON_FIXED : GS_REASON_SKIPPED;
  bool planned = gs__pc.kind != GS_POLICY_FIXED || gs__pc.select == GS_SELECT_LIFETIME;
  if (base.bits == 0 || d->dtype == GS_DTYPE_BOOL || !planned) return base;
  const gs_plan_iter *p = d->index == gs__cur.n ? gs__find(d->index, gs__prefix(&gs__cur, d->index, d)) : NULL;
  if (p == NULL) {
    *reason = GS_REASON_WARMUP; /* docs/policies.md: the first iteration of a shape compresses everything */
    return base;
  }
  const gs_plan_slot *s = &p->slots[d->index];
  *reason = (gs_plan_reason)s->next_reason;
  gs_policy_decision out = {s->next_bits, GS_KEEP_POLICY};
  return out;
}

void gs__plan_note_pack(const gs_plan_pack *p) {
  const gs_policy_desc *d = p->d;
  uint32_t k = d->index;
  if (k != gs__cur.n || k >= GS_PLAN_MAX_TENSORS) return; /* no identity: warm-up rule */
  if (gs__grow((void **)&gs__cur.slots, &gs__cur.cap, k + 1, sizeof(gs_plan_slot)) != 0 ||
      gs__grow((void **)&gs__cur.ev, &gs__cur.evcap, gs__cur.nev + 1, sizeof(gs_plan_event)) != 0)
    return;
  gs_plan_slot *s = &gs__cur.slots[k];
  memset(s, 0, sizeof(*s));
  s->prefix = gs__prefix(&gs__cur, k, d);
  s->numel = 1;
  s->ndim = (int8_t)(d->ndim < GS_PLAN_DIMS ? d->ndim : GS_PLAN_DIMS);
  for (int i = 0; i < d->ndim; i++) {
    if (i < GS_PLAN_DIMS) s->shape[i] = d->shape[i];
    s->numel *= (uint64_t)d->shape[i];
  }
  s->bytes = d->bytes;
  s->dtype = (int8_t)d->dtype;
  s->device = (int16_t)d->device;
  s->bits = p->bits;
  s->reason = p->reason;
  s->skip = p->skip;
  s->candidate = p->candidate && d->dtype != GS_DTYPE_BOOL;
  s->sensitive = d->sensitive;
  s->relu = p->relu;
  s->held = p->held;
  s->pack_ns = p->now_ns > gs__cur.t0_ns ? p->now_ns - gs__cur.t0_ns : 0;
  s->pack_ev = gs__cur.nev;
  s->death_ev = UINT32_MAX;
  gs__cur.ev[gs__cur.nev++] = (gs_plan_event){k, true, p->equiv};
  gs__cur.n = k + 1;
}

void gs__plan_note_unpack(uint64_t it, uint32_t k, uint64_t now_ns) {
  if (it != gs__cur.iteration || k >= gs__cur.n || gs__cur.slots[k].unpack_ns) return;
  gs__cur.slots[k].unpack_ns = now_ns > gs__cur.t0_ns ? now_ns - gs__cur.t0_ns : 1;
}

bool gs__plan_first_unpacked(void) { return gs__cur.n > 0 && gs__cur.slots[0].unpack_ns != 0; }

void gs__plan_note_death(uint64_t it, uint32_t k, uint64_t equiv) {
  if (it != gs__cur.iteration || k >= gs__cur.n || gs__cur.slots[k].dead) return;
  if (gs__grow((void **)&gs__cur.ev, &gs__cur.evcap, gs__cur.nev + 1, sizeof(gs_plan_event)) != 0)
    return;
  gs__cur.slots[k].dead = true;
  gs__cur.slots[k].death_ev = gs__cur.nev;
  gs__cur.ev[gs__cur.nev++] = (gs_plan_event){k, false, equiv};
}

void gs__plan_note_probe(uint32_t k, double c, double range_term) {
  if (k >= gs__cur.n) return;
  gs_plan_slot *s = &gs__cur.slots[k];
  if (isfinite(c) && c >= 0) {
    s->c.n = 0;
    gs__sens_ema_update(&s->c, c, 1.0);
  }
  if (isfinite(range_term) && range_term > 0) s->range_term = range_term;
}

/* --- helpers shared by the policies -------------------------------------------------------- */

double gs__plan_mean_c(const gs_plan_iter *it) {
  double sum = 0;
  uint32_t n = 0;
  for (uint32_t k = 0; k < it->n; k++)
    if (it->slots[k].candidate && it->slots[k].c.n > 0) sum += it->slots[k].c.c, n++;
  return n && sum > 0 ? sum / n : 1.0;
}

/* A ReLU output compressed keeps its sign besides its data: the codec's sign plane, ceil(n/8)
 * bytes in the same buffer (GS_CODEC_RELU_MASK, docs/codec-format.md). */
uint64_t gs__plan_slot_bytes(const gs_policy_config *c, const gs_plan_slot *s, unsigned bits) {
  if (bits == GS_ALLOC_KEEP) return s->bytes;
  uint64_t b = gs__alloc_bytes(s->numel, gs__group_at_bits(c->group, bits),
                               8 * gs_dtype_bytes((gs_dtype)s->dtype), bits);
  return b + (s->relu ? (s->numel + 7) / 8 : 0);
}

uint64_t gs__plan_curve(const gs_plan_iter *it, const uint64_t *saving, uint64_t *curve) {
  uint64_t saved = 0, peak = 0;
  for (uint32_t e = 0; e < it->nev; e++) {
    const gs_plan_event *ev = &it->ev[e];
    if (ev->pack) saved += saving[ev->k];
    else saved -= saving[ev->k] < saved ? saving[ev->k] : saved;
    uint64_t v = ev->equiv > saved ? ev->equiv - saved : 0;
    if (curve) curve[e] = v;
    if (v > peak) peak = v;
  }
  return peak;
}

unsigned gs__plan_fixed_bits(const gs_policy_config *c, const gs_plan_slot *s) {
  unsigned b = c->bits;
  return s->sensitive && b < GS_POLICY_SENSITIVE_BITS ? GS_POLICY_SENSITIVE_BITS : b;
}

void gs__plan_item(const gs_policy_config *c, const gs_plan_slot *s, double c_default,
                   gs_alloc_item *out) {
  memset(out, 0, sizeof(*out));
  out->numel = s->numel;
  out->group = c->group;
  out->keep_bits = (uint8_t)(8 * gs_dtype_bytes((gs_dtype)s->dtype));
  /* Unprobed ranges: the whole tensor's scale is unknown, so every element weighs alike. */
  double range = s->range_term > 0 ? s->range_term : (double)s->numel;
  out->sens = gs__sens_of(s->c.n > 0 ? s->c.c : c_default, range);
  if (!isfinite(out->sens) || out->sens < 0) out->sens = 0;
  /* Softmax/log-softmax outputs keep their floor in every policy (policy.c). */
  out->min_bits = s->sensitive && GS_POLICY_SENSITIVE_BITS ? GS_POLICY_SENSITIVE_BITS : 1;
  out->max_bits = 8;
  out->alive_at_peak = s->alive_at_peak;
}
