/* plans.c: feeds the plans (policy/plan.c) from pack, unpack and handle deaths; reports them. */
#include "engine.h"

#include <stdio.h>

/* Bytes the live compressed handles would add at full precision, so that the plans see the
 * uncompressed-equivalent memory curve (policy/lifetime.c). Global for the same reason as the
 * plans; changed under the GIL only (pack, handle destructors). */
static uint64_t gs__deficit;
/* Handles made in the current iteration and still alive (same reasons, same lock: the GIL). */
static uint64_t gs__live_iter, gs__live_iter_n;
/* Hash of the last decisions put on the timeline: a plan is traced when it changes. */
static uint64_t gs__traced_hash;

static uint64_t gs__equiv(int device) {
  return gs__registry_live_bytes(gs__device_slot(device)) + gs__deficit;
}

/* GACTSHIM_* as the policy room takes it. */
static gs_policy_config gs__policy_config(const gs_config *c) {
  static const gs_policy_kind kinds[] = {
    [GS_CFG_POLICY_FIXED] = GS_POLICY_FIXED, [GS_CFG_POLICY_OFF] = GS_POLICY_OFF,
    [GS_CFG_POLICY_ADAPTIVE] = GS_POLICY_ADAPTIVE, [GS_CFG_POLICY_BUDGET] = GS_POLICY_BUDGET,
  };
  gs_policy_config p = {.kind = kinds[c->policy], .bits = c->bits, .budget = c->budget,
                        .min_bytes = c->min_bytes, .group = c->group, .adapt_every = c->adapt_every,
                        .select = c->select == GS_CFG_SELECT_LIFETIME ? GS_SELECT_LIFETIME : GS_SELECT_ALL};
  return p;
}

void gs__plans_configure(void) {
  gs_policy_config p = gs__policy_config(&gs__cfg);
  gs__plan_configure(&p);
}

gs_skip_reason gs__plans_skip(gs_policy_keep keep) {
  switch (keep) {
    case GS_KEEP_DTYPE: return GS_SKIP_DTYPE;
    case GS_KEEP_SMALL: return GS_SKIP_SMALL;
    default: return GS_SKIP_POLICY;
  }
}

static uint64_t gs__decisions_hash(const gs_plan_iter *it) {
  uint64_t h = it->n;
  for (uint32_t k = 0; k < it->n; k++)
    h = (h ^ (it->slots[k].prefix + it->slots[k].next_bits * 131u + it->slots[k].next_reason)) *
        0x100000001b3ull;
  return h;
}

/* One timeline record per tensor of the iteration a new plan was learned from: what it got,
 * why, whether it was alive at the peak, and what the next iteration of its shape will give it. */
static void gs__trace_plan(const gs_plan_iter *it) {
  uint64_t h = gs__decisions_hash(it);
  if (h == gs__traced_hash) return;
  gs__traced_hash = h;
  for (uint32_t k = 0; k < it->n; k++) {
    const gs_plan_slot *s = &it->slots[k];
    gs_trace_decision d = {.iteration = it->iteration, .index = k, .bits = s->bits,
                           .reason = s->reason, .next_bits = s->next_bits,
                           .next_reason = s->next_reason, .alive_at_peak = s->alive_at_peak,
                           .full_bytes = s->bytes, .held_bytes = s->held,
                           .pack_ns = s->pack_ns, .unpack_ns = s->unpack_ns, .device = s->device};
    gs__trace_decision(&d);
  }
}

void gs__plans_iteration(uint64_t it) {
  gs__probe_collect();
  gs__plan_begin(it, gs__now_ns());
  const gs_plan_iter *last = gs__plan_last();
  if (last) gs__trace_plan(last);
}

void gs__plans_pack(PyObject *cap, uint64_t it, const gs_policy_desc *d, gs_plan_reason reason,
                       gs_skip_reason skip, bool candidate, bool relu) {
  gs_handle *h = cap ? gs__handle_of(cap) : NULL;
  bool fresh = h && !h->planned && skip != GS_SKIP_DUPLICATE;
  if (fresh) {
    if (gs__live_iter != it) gs__live_iter = it, gs__live_iter_n = 0;
    gs__live_iter_n++;
    h->planned = true;
    h->plan_iter = it;
    h->plan_index = d->index;
    h->full_bytes = d->bytes;
    if (h->compressed && d->bytes > h->held_bytes) gs__deficit += d->bytes - h->held_bytes;
  }
  gs_plan_pack p = {.d = d, .bits = h && h->compressed ? (uint8_t)h->params.bits : 0,
                    .reason = (uint8_t)(h && !h->compressed && reason != GS_REASON_SKIPPED &&
                                        skip != GS_SKIP_POLICY ? GS_REASON_SKIPPED : reason),
                    .skip = (uint8_t)skip, .candidate = candidate, .relu = relu,
                    .held = fresh ? h->held_bytes : 0, .now_ns = gs__now_ns(),
                    .equiv = gs__equiv(d->device)};
  gs__plan_note_pack(&p);
}

void gs__plans_unpack(const gs_handle *h) {
  if (h->planned) gs__plan_note_unpack(h->plan_iter, h->plan_index, gs__now_ns());
}

bool gs__plans_iteration_done(void) {
  return gs__live_iter_n == 0 || gs__plan_first_unpacked();
}

void gs__plans_death(const gs_handle *h) {
  if (!h->planned) return;
  if (h->plan_iter == gs__live_iter && gs__live_iter_n) gs__live_iter_n--;
  if (h->compressed && h->full_bytes > h->held_bytes) {
    uint64_t d = h->full_bytes - h->held_bytes;
    gs__deficit -= d < gs__deficit ? d : gs__deficit;
  }
  /* The registry has already forgotten the handle's bytes (handle.c accounts first). */
  gs__plan_note_death(h->plan_iter, h->plan_index, gs__equiv(h->device));
}

/* --- the last completed iteration as JSON (stats file, plan_json()) -------------------------- */

static const char *const gs__reason_names[] = GS_PLAN_REASON_NAMES;
_Static_assert(GS_ARRAY_LEN(gs__reason_names) == GS_REASON__COUNT, "one trace name per plan reason");

static const char *gs__reason_name(unsigned r) {
  return r < GS_REASON__COUNT ? gs__reason_names[r] : "unknown";
}

static const char *gs__dtype_name(int dt) {
  static const char *const names[] = {"float32", "float16", "bfloat16", "bool"};
  return dt >= 0 && dt < 4 ? names[dt] : "other";
}

static void gs__slot_json(const gs_plan_slot *s, uint32_t k, char *buf, size_t len, size_t *off) {
  gs__json_append(buf, len, off, "%s{\"index\":%u,\"shape\":[", k ? "," : "", k);
  for (int i = 0; i < s->ndim; i++) gs__json_append(buf, len, off, "%s%lld", i ? "," : "", (long long)s->shape[i]);
  gs__json_append(buf, len, off,
          "],\"dtype\":\"%s\",\"bits\":%u,\"bytes\":%llu,\"full_bytes\":%llu,\"reason\":\"%s\","
          "\"skip\":\"%s\",\"alive_at_peak\":%s,\"pack_us\":%llu,\"unpack_us\":%llu,"
          "\"next_bits\":%u,\"next_reason\":\"%s\"}",
          gs__dtype_name(s->dtype), s->bits, (unsigned long long)s->held,
          (unsigned long long)s->bytes, gs__reason_name(s->reason),
          s->reason == GS_REASON_SKIPPED ? gs__skip_name((gs_skip_reason)s->skip) : "",
          s->alive_at_peak ? "true" : "false", (unsigned long long)(s->pack_ns / 1000),
          (unsigned long long)(s->unpack_ns / 1000), s->next_bits,
          gs__reason_name(s->next_reason));
}

bool gs__engine_plan_json(char *buf, size_t len, size_t *off, size_t max) {
  const gs_plan_iter *it = gs__plan_last();
  gs__json_append(buf, len, off, "\"per_tensor\":[");
  uint32_t n = it ? it->n : 0;
  for (uint32_t k = 0; k < n && k < max; k++) gs__slot_json(&it->slots[k], k, buf, len, off);
  return gs__json_append(buf, len, off, "],\"per_tensor_count\":%u,\"plan\":{\"iteration\":%lld,"
                 "\"peak_equiv_bytes\":%llu,\"events\":%u}", n, it ? (long long)it->iteration : -1LL,
                 it ? (unsigned long long)it->peak_equiv : 0ULL, it ? it->nev : 0);
}
