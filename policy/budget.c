/* budget.c: the budget policy — compress only as much as keeps tracked live memory under a cap. */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>

/* The highest point of the curve the plan would give, at every event (the allocator models a
 * single peak; this checks every other moment too). */
static uint64_t gs__plan_peak(const gs_policy_config *c, const gs_plan_iter *it, const uint32_t *idx, const uint8_t *bits,
                              size_t n, uint64_t *saving) {
  for (uint32_t k = 0; k < it->n; k++) saving[k] = 0;
  for (size_t i = 0; i < n; i++) {
    const gs_plan_slot *s = &it->slots[idx[i]];
    uint64_t b = gs__plan_slot_bytes(c, s, bits[i]);
    saving[idx[i]] = s->bytes > b ? s->bytes - b : 0;
  }
  return gs__plan_curve(it, saving, NULL);
}

/* Runs the allocator against a target lowered by what the whole-curve check found in excess. */
static int gs__budget_fit(const gs_policy_config *c, const gs_plan_iter *it,
                          const gs_alloc_item *items, const uint32_t *idx, size_t n,
                          uint64_t budget, uint8_t *bits, uint64_t *saving, uint64_t *est) {
  uint64_t other = it->peak_equiv;
  for (size_t i = 0; i < n; i++)
    if (items[i].alive_at_peak) other -= it->slots[idx[i]].bytes < other ? it->slots[idx[i]].bytes : other;
  uint64_t target = budget;
  int rc = 0;
  for (int round = 0; round < 4; round++) {
    uint64_t model_peak;
    rc = gs__alloc_budget(items, n, GS_ALLOC_WIDTHS_ALL, other, target, bits, &model_peak);
    if (rc != 0 && rc != -ENOSPC) return rc;
    *est = gs__plan_peak(c, it, idx, bits, n, saving);
    if (rc == -ENOSPC || *est <= budget) break;
    uint64_t excess = *est - budget;
    target = target > excess ? target - excess : 0;
  }
  return *est <= budget ? 0 : -ENOSPC;
}

int gs__budget_plan(const gs_policy_config *c, gs_plan_iter *it, uint64_t *est) {
  uint32_t *idx = malloc((size_t)it->n * sizeof(*idx) + 1);
  gs_alloc_item *items = malloc((size_t)it->n * sizeof(*items) + 1);
  uint8_t *bits = malloc((size_t)it->n + 1);
  uint64_t *saving = malloc((size_t)it->n * sizeof(*saving) + 1);
  int rc = idx && items && bits && saving ? 0 : -ENOMEM;
  size_t n = 0;
  double c_default = gs__plan_mean_c(it);
  for (uint32_t k = 0; rc == 0 && k < it->n; k++) {
    const gs_plan_slot *s = &it->slots[k];
    if (!s->candidate) continue;
    gs__plan_item(c, s, c_default, &items[n]);
    items[n].max_bits = 9; /* keep allowed: compress only what the budget needs */
    idx[n++] = k;
  }
  *est = it->peak_equiv;
  if (rc == 0) rc = gs__budget_fit(c, it, items, idx, n, c->budget, bits, saving, est);
  for (size_t i = 0; (rc == 0 || rc == -ENOSPC) && i < n; i++) {
    gs_plan_slot *s = &it->slots[idx[i]];
    s->next_bits = bits[i];
    s->next_reason = bits[i] ? GS_REASON_BUDGET
                             : s->alive_at_peak ? GS_REASON_BUDGET_FITS : GS_REASON_NOT_AT_PEAK;
  }
  free(idx);
  free(items);
  free(bits);
  free(saving);
  return rc;
}
