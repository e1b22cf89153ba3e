/* lifetime.c: which saved tensors the iteration's memory peak needs compressed, and no others. */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>

/* The peak is taken on the uncompressed-equivalent curve (tracked live bytes plus what every
 * compressed tensor would have held at full precision): compression moves the real peak, but
 * this curve, and so the decision, stays the same from one iteration to the next. The first
 * maximum wins a plateau. */
void gs__lifetime_analyze(gs_plan_iter *it) {
  uint64_t best = 0;
  uint32_t at = 0;
  for (uint32_t e = 0; e < it->nev; e++) {
    if (it->ev[e].equiv > best) {
      best = it->ev[e].equiv;
      at = e;
    }
  }
  it->peak_equiv = best;
  it->peak_ev = at;
  for (uint32_t k = 0; k < it->n; k++) {
    gs_plan_slot *s = &it->slots[k];
    /* Alive at the peak: packed at or before it, and its handle not dead by then. */
    s->alive_at_peak = it->nev > 0 && s->pack_ev <= at && (!s->dead || s->death_ev > at);
  }
}

/* --- headroom over the events: range add, range minimum (a lazy segment tree) --- */

typedef struct gs__seg {
  int64_t *mn, *lz;
  uint32_t n;
} gs__seg;

static void gs__seg_build(gs__seg *t, uint32_t x, uint32_t l, uint32_t r, const int64_t *v) {
  t->lz[x] = 0;
  if (r - l == 1) {
    t->mn[x] = v[l];
    return;
  }
  uint32_t m = l + (r - l) / 2;
  gs__seg_build(t, 2 * x, l, m, v);
  gs__seg_build(t, 2 * x + 1, m, r, v);
  t->mn[x] = t->mn[2 * x] < t->mn[2 * x + 1] ? t->mn[2 * x] : t->mn[2 * x + 1];
}

/* Adds d over [ql, qr) (d = 0: only reads); returns the minimum over [ql, qr) before the add. */
static int64_t gs__seg_apply(gs__seg *t, uint32_t x, uint32_t l, uint32_t r, uint32_t ql,
                             uint32_t qr, int64_t d) {
  if (qr <= l || r <= ql) return INT64_MAX;
  if (ql <= l && r <= qr) {
    int64_t before = t->mn[x];
    t->mn[x] += d;
    t->lz[x] += d;
    return before;
  }
  uint32_t m = l + (r - l) / 2;
  int64_t a = gs__seg_apply(t, 2 * x, l, m, ql, qr, d);
  int64_t b = gs__seg_apply(t, 2 * x + 1, m, r, ql, qr, d);
  int64_t kids = t->mn[2 * x] < t->mn[2 * x + 1] ? t->mn[2 * x] : t->mn[2 * x + 1];
  t->mn[x] = kids + t->lz[x];
  int64_t low = a < b ? a : b;
  return low == INT64_MAX ? low : low + t->lz[x]; /* this node's pending add is not in the kids */
}

/* Events [pack, death) during which slot k holds its bytes. */
static uint32_t gs__end(const gs_plan_iter *it, const gs_plan_slot *s) {
  return s->dead ? s->death_ev : it->nev;
}

static int gs__by_lifetime(const void *a, const void *b, void *ctx) {
  const gs_plan_iter *it = ctx;
  const gs_plan_slot *x = &it->slots[*(const uint32_t *)a], *y = &it->slots[*(const uint32_t *)b];
  uint32_t lx = gs__end(it, x) - x->pack_ev, ly = gs__end(it, y) - y->pack_ev;
  if (lx != ly) return lx < ly ? -1 : 1;
  return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* Keeps exact, shortest-lived first, every candidate whose full size fits under the peak that
 * compressing all of them would give (T) at every moment it is alive; compresses the rest. The
 * modelled peak therefore equals compress-everything's, and the longest-lived tensors — alive
 * across the peak — are the ones compressed. */
static void gs__select(const gs_policy_config *c, gs_plan_iter *it, gs__seg *t, int64_t *head, uint64_t *saving, uint32_t *order) {
  uint64_t peak = gs__plan_curve(it, saving, (uint64_t *)head);
  for (uint32_t e = 0; e < it->nev; e++) head[e] = (int64_t)(peak - (uint64_t)head[e]);
  gs__seg_build(t, 1, 0, it->nev, head);
  uint32_t n = 0;
  for (uint32_t k = 0; k < it->n; k++)
    if (it->slots[k].candidate) order[n++] = k;
  qsort_r(order, n, sizeof(*order), gs__by_lifetime, it);
  for (uint32_t i = 0; i < n; i++) {
    gs_plan_slot *s = &it->slots[order[i]];
    uint32_t end = gs__end(it, s);
    int64_t room = end > s->pack_ev ? gs__seg_apply(t, 1, 0, it->nev, s->pack_ev, end, 0) : INT64_MAX;
    bool keep = room >= (int64_t)saving[order[i]];
    if (keep && end > s->pack_ev) gs__seg_apply(t, 1, 0, it->nev, s->pack_ev, end, -(int64_t)saving[order[i]]);
    s->next_bits = keep ? 0 : (uint8_t)gs__plan_fixed_bits(c, s);
    s->next_reason = keep ? GS_REASON_NOT_AT_PEAK : GS_REASON_AT_PEAK;
  }
}

int gs__lifetime_select(const gs_policy_config *c, gs_plan_iter *it) {
  if (it->nev == 0) return 0;
  gs__seg t = {malloc(4 * (size_t)it->nev * sizeof(int64_t)), malloc(4 * (size_t)it->nev * sizeof(int64_t)), it->nev};
  int64_t *head = malloc((size_t)it->nev * sizeof(*head));
  uint64_t *saving = malloc((size_t)it->n * sizeof(*saving) + 1);
  uint32_t *order = malloc((size_t)it->n * sizeof(*order) + 1);
  int rc = t.mn && t.lz && head && saving && order ? 0 : -ENOMEM;
  if (rc == 0) {
    for (uint32_t k = 0; k < it->n; k++) {
      const gs_plan_slot *s = &it->slots[k];
      uint64_t b = s->candidate ? gs__plan_slot_bytes(c, s, gs__plan_fixed_bits(c, s)) : s->bytes;
      saving[k] = s->bytes > b ? s->bytes - b : 0;
    }
    gs__select(c, it, &t, head, saving, order);
  }
  free(t.mn);
  free(t.lz);
  free(head);
  free(saving);
  free(order);
  return rc;
}
