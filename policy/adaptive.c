/* adaptive.c: the adaptive policy — GACTSHIM_BITS on average, redistributed by sensitivity. */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>

/* The average is the one the fixed policy would store for the same tensors (c->bits, with
 * softmax/log-softmax outputs at their floor): adaptive spends exactly the bits fixed spends and
 * only moves them to where the measured gradient variance is largest. */
static double gs__fixed_average(const gs_policy_config *c, const gs_plan_iter *it, const uint32_t *idx, size_t n) {
  double bits = 0, elems = 0;
  for (size_t i = 0; i < n; i++) {
    const gs_plan_slot *s = &it->slots[idx[i]];
    bits += (double)s->numel * gs__plan_fixed_bits(c, s);
    elems += (double)s->numel;
  }
  return elems > 0 ? bits / elems : 0;
}

int gs__adaptive_plan(const gs_policy_config *c, gs_plan_iter *it) {
  uint32_t *idx = malloc((size_t)it->n * sizeof(*idx) + 1);
  gs_alloc_item *items = malloc((size_t)it->n * sizeof(*items) + 1);
  uint8_t *bits = malloc((size_t)it->n + 1);
  int rc = idx && items && bits ? 0 : -ENOMEM;
  size_t n = 0;
  double c_default = gs__plan_mean_c(it);
  for (uint32_t k = 0; rc == 0 && k < it->n; k++) {
    gs_plan_slot *s = &it->slots[k];
    if (!s->candidate) continue;
    if (s->next_reason == GS_REASON_NOT_AT_PEAK) continue; /* lifetime: the peak needs it not */
    gs__plan_item(c, s, c_default, &items[n]);
    idx[n++] = k;
  }
  if (rc == 0 && n > 0) {
    rc = gs__alloc_average_bits(items, n, gs__fixed_average(c, it, idx, n), GS_ALLOC_WIDTHS_ALL, bits);
    if (rc == 0 || rc == -ENOSPC) {
      for (size_t i = 0; i < n; i++) {
        it->slots[idx[i]].next_bits = bits[i];
        it->slots[idx[i]].next_reason = GS_REASON_ADAPTIVE;
      }
    }
  }
  free(idx);
  free(items);
  free(bits);
  return rc;
}
