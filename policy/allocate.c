/* allocate.c: greedy bit allocation under an average-bits or a peak-memory budget. */
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

typedef unsigned __int128 gs__u128;

#define GS__NO_LEVEL 0xFFu

/* ---- levels of one item ---- */

/* Levels are GS_ALLOC_KEEP or a width 1..8; keep ranks above 8. */
static bool gs__width_ok(const gs_alloc_item *it, uint32_t widths, unsigned b) {
  return b >= it->min_bits && b <= it->max_bits && (widths & (1u << b)) != 0;
}

static bool gs__keep_ok(const gs_alloc_item *it) { return it->max_bits > 8; }

/* The highest level allowed, or GS__NO_LEVEL. */
static unsigned gs__top_level(const gs_alloc_item *it, uint32_t widths) {
  if (gs__keep_ok(it)) return GS_ALLOC_KEEP;
  for (unsigned b = 8; b >= 1; b--)
    if (gs__width_ok(it, widths, b)) return b;
  return GS__NO_LEVEL;
}

/* The next allowed level below `cur`, or GS__NO_LEVEL. */
static unsigned gs__lower_level(const gs_alloc_item *it, uint32_t widths, unsigned cur) {
  for (unsigned b = cur == GS_ALLOC_KEEP ? 8 : cur - 1; b >= 1; b--)
    if (gs__width_ok(it, widths, b)) return b;
  return GS__NO_LEVEL;
}

static unsigned gs__width_of(const gs_alloc_item *it, unsigned level) {
  return level == GS_ALLOC_KEEP ? it->keep_bits : level;
}

static int gs__check_items(const gs_alloc_item *items, size_t n, uint32_t widths) {
  if (widths & ~GS_ALLOC_WIDTHS_ALL) return -EINVAL;
  for (size_t k = 0; k < n; k++) {
    const gs_alloc_item *it = &items[k];
    if (!isfinite(it->sens) || it->sens < 0 || it->group == 0) return -EINVAL;
    if (it->keep_bits != 16 && it->keep_bits != 32) return -EINVAL;
    if (it->min_bits == 0 || it->max_bits == 0 || it->min_bits > it->max_bits) return -EINVAL;
    if (gs__top_level(it, widths) == GS__NO_LEVEL) return -EINVAL;
  }
  return 0;
}

/* ---- a binary min-heap of (key, item index); ties go to the lower index ---- */

typedef struct gs__entry {
  double key;
  size_t idx;
} gs__entry;

typedef struct gs__heap {
  gs__entry *e;
  size_t len;
} gs__heap;

static bool gs__before(const gs__entry *a, const gs__entry *b) {
  return a->key < b->key || (a->key == b->key && a->idx < b->idx);
}

static void gs__sift_down(gs__heap *h, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->len && gs__before(&h->e[l], &h->e[m])) m = l;
    if (r < h->len && gs__before(&h->e[r], &h->e[m])) m = r;
    if (m == i) return;
    gs__entry t = h->e[i];
    h->e[i] = h->e[m];
    h->e[m] = t;
    i = m;
  }
}

/* Replaces the minimum with `e` (the item just lowered has its next step), or removes it. */
static void gs__replace_top(gs__heap *h, const gs__entry *e) {
  if (e != NULL)
    h->e[0] = *e;
  else
    h->e[0] = h->e[--h->len];
  gs__sift_down(h, 0);
}

static void gs__heapify(gs__heap *h) {
  for (size_t i = h->len / 2; i-- > 0;) gs__sift_down(h, i);
}

/* One entry per item at most is ever in the heap, so n entries suffice. */
static int gs__heap_init(gs__heap *h, size_t n) {
  h->len = 0;
  h->e = NULL;
  if (n == 0) return 0;
  if (n > SIZE_MAX / sizeof(gs__entry)) return -ENOMEM;
  h->e = malloc(n * sizeof(gs__entry));
  return h->e == NULL ? -ENOMEM : 0;
}

/* ---- average bits ---- */

/* Added variance per bit saved when item k steps from `cur` to `next`. */
static double gs__avg_key(const gs_alloc_item *it, unsigned cur, unsigned next) {
  double dv = gs__sens_variance(it->sens, next) - gs__sens_variance(it->sens, cur);
  double dbits = (double)it->numel * (gs__width_of(it, cur) - gs__width_of(it, next));
  return dv / dbits;
}

static bool gs__avg_step(const gs_alloc_item *it, uint32_t widths, unsigned cur, size_t k,
                         gs__entry *out) {
  unsigned next = gs__lower_level(it, widths, cur);
  if (it->numel == 0 || next == GS__NO_LEVEL) return false;
  out->key = gs__avg_key(it, cur, next);
  out->idx = k;
  return true;
}

int gs__alloc_average_bits(const gs_alloc_item *items, size_t n, double avg_bits,
                           uint32_t widths, uint8_t *bits_out) {
  if ((n > 0 && (items == NULL || bits_out == NULL)) || !isfinite(avg_bits) || avg_bits <= 0)
    return -EINVAL;
  int rc = gs__check_items(items, n, widths);
  if (rc != 0) return rc;

  gs__heap h;
  if ((rc = gs__heap_init(&h, n)) != 0) return rc;
  gs__u128 total = 0, numel = 0;
  for (size_t k = 0; k < n; k++) {
    unsigned top = gs__top_level(&items[k], widths);
    bits_out[k] = (uint8_t)top;
    total += (gs__u128)items[k].numel * gs__width_of(&items[k], top);
    numel += items[k].numel;
    if (gs__avg_step(&items[k], widths, top, k, &h.e[h.len])) h.len++;
  }
  /* long double holds 64 mantissa bits: an integral average over < 2^64 elements is exact. */
  long double t = floorl((long double)avg_bits * (long double)numel);
  gs__u128 target = t >= 0x1p127L ? ~(gs__u128)0 : (gs__u128)t;

  gs__heapify(&h);
  while (total > target && h.len > 0) {
    const gs_alloc_item *it = &items[h.e[0].idx];
    size_t k = h.e[0].idx;
    unsigned cur = bits_out[k], next = gs__lower_level(it, widths, cur);
    total -= (gs__u128)it->numel * (gs__width_of(it, cur) - gs__width_of(it, next));
    bits_out[k] = (uint8_t)next;
    gs__entry e;
    gs__replace_top(&h, gs__avg_step(it, widths, next, k, &e) ? &e : NULL);
  }
  free(h.e);
  return total > target ? -ENOSPC : 0;
}

/* ---- peak-memory budget ---- */

static uint64_t gs__bytes_at(const gs_alloc_item *it, unsigned level) {
  return gs__alloc_bytes(it->numel, gs__group_at_bits(it->group, level), it->keep_bits, level);
}

/* The next level below `cur` that saves bytes. From keep that is the highest width that is
 * smaller than the raw tensor; below that, every width saves a bit-plane. */
static unsigned gs__budget_next(const gs_alloc_item *it, uint32_t widths, unsigned cur) {
  uint64_t now = gs__bytes_at(it, cur);
  for (unsigned b = gs__lower_level(it, widths, cur); b != GS__NO_LEVEL;
       b = gs__lower_level(it, widths, b))
    if (gs__bytes_at(it, b) < now) return b;
  return GS__NO_LEVEL;
}

/* Added variance per byte saved by the step from `cur` to the next level that saves bytes. */
static bool gs__budget_step(const gs_alloc_item *it, uint32_t widths, unsigned cur, size_t k,
                            gs__entry *out) {
  if (!it->alive_at_peak || it->numel == 0) return false;
  unsigned next = gs__budget_next(it, widths, cur);
  if (next == GS__NO_LEVEL) return false;
  double dv = gs__sens_variance(it->sens, next) - gs__sens_variance(it->sens, cur);
  out->key = dv / (double)(gs__bytes_at(it, cur) - gs__bytes_at(it, next));
  out->idx = k;
  return true;
}

int gs__alloc_budget(const gs_alloc_item *items, size_t n, uint32_t widths,
                     uint64_t other_bytes_at_peak, uint64_t budget, uint8_t *bits_out,
                     uint64_t *est_peak_out) {
  if (n > 0 && (items == NULL || bits_out == NULL)) return -EINVAL;
  int rc = gs__check_items(items, n, widths);
  if (rc != 0) return rc;

  gs__heap h;
  if ((rc = gs__heap_init(&h, n)) != 0) return rc;
  gs__u128 peak = other_bytes_at_peak;
  for (size_t k = 0; k < n; k++) {
    unsigned top = gs__top_level(&items[k], widths);
    bits_out[k] = (uint8_t)top;
    if (items[k].alive_at_peak) peak += gs__bytes_at(&items[k], top);
    if (gs__budget_step(&items[k], widths, top, k, &h.e[h.len])) h.len++;
  }

  gs__heapify(&h);
  while (peak > budget && h.len > 0) {
    size_t k = h.e[0].idx;
    const gs_alloc_item *it = &items[k];
    unsigned cur = bits_out[k], next = gs__budget_next(it, widths, cur);
    peak -= gs__bytes_at(it, cur) - gs__bytes_at(it, next);
    bits_out[k] = (uint8_t)next;
    gs__entry e;
    gs__replace_top(&h, gs__budget_step(it, widths, next, k, &e) ? &e : NULL);
  }
  free(h.e);
  if (est_peak_out != NULL) *est_peak_out = peak > UINT64_MAX ? UINT64_MAX : (uint64_t)peak;
  return peak > budget ? -ENOSPC : 0;
}
