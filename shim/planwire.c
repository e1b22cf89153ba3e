/* planwire.c: feeds the plans (policy/plan.c) from pack, unpack and handle deaths; traces them. */
#include "planwire.h"

#include "config.h"
#include "engine.h"
#include "registry.h"
#include "trace.h"

/* Bytes the live compressed handles would add at full precision, so that the plans see the
 * uncompressed-equivalent memory curve (policy/lifetime.c). Global for the same reason as the
 * plans; changed under the GIL only (pack, handle destructors). */
static uint64_t gs__deficit;
/* Handles made in the current iteration and still alive (same reasons, same lock: the GIL). */
static uint64_t gs__live_iter, gs__live_iter_n;
/* Hash of the last decisions put on the timeline: a plan is traced when it changes. */
static uint64_t gs__traced_hash;

static uint64_t gs__equiv(int device) {
  int dev = device < 0 || device >= GS_MAX_DEVICES ? GS_DEVICE_HOST : device;
  return gs__registry_live_bytes(dev) + gs__deficit;
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

void gs__planwire_iteration(uint64_t it) {
  gs__probe_collect();
  gs__plan_begin(it, gs__now_ns());
  const gs_plan_iter *last = gs__plan_last();
  if (last) gs__trace_plan(last);
}

gs_policy_decision gs__planwire_decide(PyObject *t, const gs_policy_desc *d, gs_plan_reason *reason) {
  gs_policy_decision dec = gs__plan_decide(d, reason);
  if (dec.bits && d->dtype != GS_DTYPE_BOOL && gs__plan_probing(d->iteration))
    gs__probe_tensor(t, d->index);
  return dec;
}

void gs__planwire_pack(PyObject *cap, uint64_t it, const gs_policy_desc *d, gs_plan_reason reason,
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

void gs__planwire_unpack(const gs_handle *h) {
  if (h->planned) gs__plan_note_unpack(h->plan_iter, h->plan_index, gs__now_ns());
}

bool gs__planwire_iteration_done(void) {
  return gs__live_iter_n == 0 || gs__plan_first_unpacked();
}

void gs__planwire_death(const gs_handle *h) {
  if (!h->planned) return;
  if (h->plan_iter == gs__live_iter && gs__live_iter_n) gs__live_iter_n--;
  if (h->compressed && h->full_bytes > h->held_bytes) {
    uint64_t d = h->full_bytes - h->held_bytes;
    gs__deficit -= d < gs__deficit ? d : gs__deficit;
  }
  /* The registry has already forgotten the handle's bytes (handle.c accounts first). */
  gs__plan_note_death(h->plan_iter, h->plan_index, gs__equiv(h->device));
}
