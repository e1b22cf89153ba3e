/* check-allocate.c: the average-bits and budget allocators on hand-checked and random cases. */
#include "policy.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* Step costs used below, f(b) = 1/(4·(2^b−1)²) so that V(b) = sens·f(b):
 *   f1 = 0.25, f2 = 1/36 = 0.02778, f3 = 1/196 = 0.00510, f4 = 1/900 = 0.00111,
 *   f8 = 1/260100 = 3.845e-6.  Lowering b→b−1 costs sens·d(b), d(b) = f(b−1) − f(b):
 *   d2 = 0.2222, d3 = 0.02268, d4 = 0.00399, d5 = 8.5e-4, ..., d8 = 1.17e-5. */

static gs_alloc_item item(uint64_t numel, double sens, uint8_t min_bits, uint8_t max_bits,
                          bool alive) {
  return (gs_alloc_item){.numel = numel, .sens = sens, .group = 256, .keep_bits = 32,
                         .min_bits = min_bits, .max_bits = max_bits, .alive_at_peak = alive};
}

static uint64_t total_bits(const gs_alloc_item *it, const uint8_t *b, size_t n) {
  uint64_t t = 0;
  for (size_t k = 0; k < n; k++) t += it[k].numel * (b[k] == GS_ALLOC_KEEP ? it[k].keep_bits : b[k]);
  return t;
}

/* Rank of a level, with keep above 8. */
static unsigned rank(uint8_t b) { return b == GS_ALLOC_KEEP ? 99 : b; }

/* Three equal tensors, sens 1, 4, 16, at most 8 bits, average 2: the greedy lowers 24 → 6 bits,
 * i.e. takes the 18 cheapest of the 21 steps (per item the steps get dearer as b falls, so the
 * cheapest steps are prefixes). The three dearest are 16·d2 = 3.56, 4·d2 = 0.89, 16·d3 = 0.36
 * (next: 1·d2 = 0.22), so the sens-16 tensor stops at 3, sens-4 at 2, sens-1 at 1. */
START_TEST(avg_hand_three) {
  gs_alloc_item it[3] = {item(1000, 1, 1, 8, true), item(1000, 4, 1, 8, true),
                         item(1000, 16, 1, 8, true)};
  uint8_t b[3];
  ck_assert_int_eq(gs__alloc_average_bits(it, 3, 2.0, GS_ALLOC_WIDTHS_ALL, b), 0);
  ck_assert_uint_eq(b[0], 1);
  ck_assert_uint_eq(b[1], 2);
  ck_assert_uint_eq(b[2], 3);
}
END_TEST

/* §8's case: a small, very sensitive tensor (log-probabilities) next to two ordinary ones, keep
 * allowed everywhere, average 4 → 4·2100 = 8400 bits. Keys (ΔV per element-bit): ordinary
 * tensors at most 1·d2/1000 = 2.2e-4; leaving keep for the sensitive one costs
 * 1e6·f8/(100·24) = 1.6e-3, so it keeps (3200 bits) while the others descend in lockstep to
 * (3,3): 6000 + 3200 = 9200 > 8400; the tie goes to the lower index: (2,3) = 8200 <= 8400 (a
 * step of 1000 bits cannot land exactly on the budget). */
START_TEST(avg_hand_keep_sensitive) {
  gs_alloc_item it[3] = {item(1000, 1, 1, 32, true), item(1000, 1, 1, 32, true),
                         item(100, 1e6, 1, 32, true)};
  uint8_t b[3];
  ck_assert_int_eq(gs__alloc_average_bits(it, 3, 4.0, GS_ALLOC_WIDTHS_ALL, b), 0);
  ck_assert_uint_eq(b[0], 2);
  ck_assert_uint_eq(b[1], 3);
  ck_assert_uint_eq(b[2], GS_ALLOC_KEEP);
  ck_assert_uint_eq(total_bits(it, b, 3), 8200);
}
END_TEST

/* A loose average lets everything stay uncompressed. */
START_TEST(avg_loose_keeps) {
  gs_alloc_item it[2] = {item(1000, 1, 1, 32, true), item(50, 3, 1, 32, true)};
  uint8_t b[2];
  ck_assert_int_eq(gs__alloc_average_bits(it, 2, 32.0, GS_ALLOC_WIDTHS_ALL, b), 0);
  ck_assert_uint_eq(b[0], GS_ALLOC_KEEP);
  ck_assert_uint_eq(b[1], GS_ALLOC_KEEP);
}
END_TEST

START_TEST(avg_equal_sens_uniform) {
  gs_alloc_item it[10];
  uint8_t b[10];
  for (int k = 0; k < 10; k++) it[k] = item(4096, 5, 1, 32, true);
  ck_assert_int_eq(gs__alloc_average_bits(it, 10, 3.0, GS_ALLOC_WIDTHS_ALL, b), 0);
  for (int k = 0; k < 10; k++) ck_assert_uint_eq(b[k], 3);
  ck_assert_int_eq(gs__alloc_average_bits(it, 10, 4.0, GS_ALLOC_WIDTHS_POW2, b), 0);
  for (int k = 0; k < 10; k++) ck_assert_uint_eq(b[k], 4);
}
END_TEST

/* Weighted by numel: 1000 and 3000 elements with the same per-element sensitivity (sens ∝ numel)
 * have equal keys, descend in lockstep and meet 2 bits exactly: Σ n·b = 8000 = 2·4000. */
START_TEST(avg_weighted_exact) {
  gs_alloc_item it[2] = {item(1000, 1000, 1, 8, true), item(3000, 3000, 1, 8, true)};
  uint8_t b[2];
  ck_assert_int_eq(gs__alloc_average_bits(it, 2, 2.0, GS_ALLOC_WIDTHS_ALL, b), 0);
  ck_assert_uint_eq(b[0], 2);
  ck_assert_uint_eq(b[1], 2);
  ck_assert_uint_eq(total_bits(it, b, 2), 8000);
}
END_TEST

/* Random equal-size tensors: a more sensitive one never gets fewer bits, every width is in the
 * mask, and the average holds. */
START_TEST(avg_monotone_random) {
  enum { N = 300 };
  gs_alloc_item it[N];
  uint8_t b[N];
  srand(1234 + (unsigned)_i);
  uint32_t masks[2] = {GS_ALLOC_WIDTHS_ALL, GS_ALLOC_WIDTHS_POW2};
  for (int k = 0; k < N; k++) it[k] = item(2048, exp((rand() % 2000) / 100.0), 1, 32, true);
  double avg = 1.5 + (rand() % 50) / 10.0;
  ck_assert_int_eq(gs__alloc_average_bits(it, N, avg, masks[_i % 2], b), 0);
  ck_assert_uint_le(total_bits(it, b, N), (uint64_t)(avg * 2048 * N));
  for (int i = 0; i < N; i++) {
    ck_assert(b[i] == GS_ALLOC_KEEP || (masks[_i % 2] & (1u << b[i])));
    for (int j = 0; j < N; j++)
      if (it[i].sens < it[j].sens) ck_assert_uint_le(rank(b[i]), rank(b[j]));
  }
}
END_TEST

START_TEST(avg_bounds) {
  /* sens 0 would fall to 1 bit, but its floor is 4; the huge one may not exceed 2. */
  gs_alloc_item it[2] = {item(1000, 0, 4, 8, true), item(1000, 1e12, 1, 2, true)};
  uint8_t b[2];
  ck_assert_int_eq(gs__alloc_average_bits(it, 2, 3.0, GS_ALLOC_WIDTHS_ALL, b), 0);
  ck_assert_uint_eq(b[0], 4);
  ck_assert_uint_eq(b[1], 2);
  /* Floors of 4 cannot average 2: -ENOSPC with the minimum plan. */
  gs_alloc_item f[2] = {item(1000, 1, 4, 8, true), item(1000, 1, 4, 32, true)};
  ck_assert_int_eq(gs__alloc_average_bits(f, 2, 2.0, GS_ALLOC_WIDTHS_ALL, b), -ENOSPC);
  ck_assert_uint_eq(b[0], 4);
  ck_assert_uint_eq(b[1], 4);
  /* min_bits above 8 forces keep. */
  gs_alloc_item k[1] = {item(1000, 0, 9, 32, true)};
  ck_assert_int_eq(gs__alloc_average_bits(k, 1, 40.0, GS_ALLOC_WIDTHS_ALL, b), 0);
  ck_assert_uint_eq(b[0], GS_ALLOC_KEEP);
}
END_TEST

START_TEST(avg_invalid) {
  uint8_t b[1];
  gs_alloc_item it = item(10, 1, 1, 8, true);
  ck_assert_int_eq(gs__alloc_average_bits(NULL, 0, 2.0, GS_ALLOC_WIDTHS_ALL, NULL), 0);
  ck_assert_int_eq(gs__alloc_average_bits(&it, 1, 0.0, GS_ALLOC_WIDTHS_ALL, b), -EINVAL);
  ck_assert_int_eq(gs__alloc_average_bits(&it, 1, NAN, GS_ALLOC_WIDTHS_ALL, b), -EINVAL);
  ck_assert_int_eq(gs__alloc_average_bits(&it, 1, 2.0, 1u << 9, b), -EINVAL);
  gs_alloc_item bad[5] = {item(10, NAN, 1, 8, true), item(10, -1, 1, 8, true),
                          item(10, 1, 5, 4, true), item(10, 1, 3, 3, true), item(10, 1, 1, 8, true)};
  bad[4].keep_bits = 8;
  for (int k = 0; k < 5; k++)
    ck_assert_int_eq(gs__alloc_average_bits(&bad[k], 1, 2.0, GS_ALLOC_WIDTHS_POW2, b), -EINVAL);
}
END_TEST

/* Budget fixture: four fp32 tensors of 1e6 elements (4e6 bytes kept, 1125040 at 8 bits in groups
 * of 32, 890664 at 7 bits in groups of 256, then 125000 less per bit), sens 1, 2, 0.5, 4; the
 * third is not alive at the peak; 1e6 other bytes. All kept: peak = 1e6 + 3·4e6 = 13e6. Keys
 * ΔV/Δbytes: keep→8 = sens·f8/2874960 (1.34e-12 per unit sens), 8→7 = sens·d8/234376 (5.0e-11
 * per unit sens). */
static void budget_fixture(gs_alloc_item it[4]) {
  it[0] = item(1000000, 1, 1, 32, true);
  it[1] = item(1000000, 2, 1, 32, true);
  it[2] = item(1000000, 0.5, 1, 32, false);
  it[3] = item(1000000, 4, 1, 32, true);
}

START_TEST(budget_loose) {
  gs_alloc_item it[4];
  uint8_t b[4];
  uint64_t peak = 0;
  budget_fixture(it);
  ck_assert_int_eq(gs__alloc_budget(it, 4, GS_ALLOC_WIDTHS_ALL, 1000000, 13000000, b, &peak), 0);
  for (int k = 0; k < 4; k++) ck_assert_uint_eq(b[k], GS_ALLOC_KEEP);
  ck_assert_uint_eq(peak, 13000000);
}
END_TEST

/* 11e6: one keep→8 step suffices; the least sensitive alive tensor (sens 1) takes it, the
 * not-alive sens-0.5 one is untouched. 8e6: the sens-2 tensor goes to 8 bits next (2.7e-12 beats
 * 8→7 of the first at 5.0e-11 and keep→8 of sens 4 at 5.4e-12). 4e6: after all three alive are at
 * 8 bits (4375120), 8→7 of the sens-1 tensor (→ 4140744), then 8→7 of the sens-2 one (9.9e-11,
 * before 7→6 of the first at 3.8e-10 and 8→7 of sens 4 at 2.0e-10) → 3906368. */
START_TEST(budget_tight) {
  gs_alloc_item it[4];
  uint8_t b[4];
  uint64_t peak = 0;
  budget_fixture(it);
  ck_assert_int_eq(gs__alloc_budget(it, 4, GS_ALLOC_WIDTHS_ALL, 1000000, 11000000, b, &peak), 0);
  ck_assert_uint_eq(b[0], 8);
  ck_assert_uint_eq(b[1], GS_ALLOC_KEEP);
  ck_assert_uint_eq(b[2], GS_ALLOC_KEEP);
  ck_assert_uint_eq(b[3], GS_ALLOC_KEEP);
  ck_assert_uint_eq(peak, 13000000 - (4000000 - 1125040));

  ck_assert_int_eq(gs__alloc_budget(it, 4, GS_ALLOC_WIDTHS_ALL, 1000000, 8000000, b, &peak), 0);
  ck_assert_uint_eq(b[0], 8);
  ck_assert_uint_eq(b[1], 8);
  ck_assert_uint_eq(b[2], GS_ALLOC_KEEP);
  ck_assert_uint_eq(b[3], GS_ALLOC_KEEP);
  ck_assert_uint_eq(peak, 1000000 + 2 * 1125040 + 4000000);

  ck_assert_int_eq(gs__alloc_budget(it, 4, GS_ALLOC_WIDTHS_ALL, 1000000, 4000000, b, &peak), 0);
  ck_assert_uint_eq(b[0], 7);
  ck_assert_uint_eq(b[1], 7);
  ck_assert_uint_eq(b[2], GS_ALLOC_KEEP);
  ck_assert_uint_eq(b[3], 8);
  ck_assert_uint_eq(peak, 1000000 + 2 * 890664 + 1125040);
}
END_TEST

/* A budget no plan meets: -ENOSPC, alive tensors at their floor (1 bit: 15664 + 125000 bytes),
 * the rest kept, and the estimated peak of that plan reported. */
START_TEST(budget_impossible) {
  gs_alloc_item it[4];
  uint8_t b[4];
  uint64_t peak = 0;
  budget_fixture(it);
  it[3].min_bits = 2;
  ck_assert_int_eq(gs__alloc_budget(it, 4, GS_ALLOC_WIDTHS_ALL, 1000000, 1000000, b, &peak),
                   -ENOSPC);
  ck_assert_uint_eq(b[0], 1);
  ck_assert_uint_eq(b[1], 1);
  ck_assert_uint_eq(b[2], GS_ALLOC_KEEP);
  ck_assert_uint_eq(b[3], 2);
  ck_assert_uint_eq(peak, 1000000 + 2 * 140664 + 265664);
}
END_TEST

/* 8 fp32 elements are 32 bytes raw but at least 49 compressed: compressing them would grow the
 * peak, so the allocator keeps them and reports that the budget is out of reach. */
START_TEST(budget_tiny_never_grows) {
  gs_alloc_item it[1] = {item(8, 1, 1, 32, true)};
  uint8_t b[1];
  uint64_t peak = 0;
  ck_assert_int_eq(gs__alloc_budget(it, 1, GS_ALLOC_WIDTHS_ALL, 0, 16, b, &peak), -ENOSPC);
  ck_assert_uint_eq(b[0], GS_ALLOC_KEEP);
  ck_assert_uint_eq(peak, 32);
}
END_TEST

/* 100k random items through both allocators: completes, meets its constraint, stays in bounds. */
START_TEST(large_n) {
  enum { N = 100000 };
  gs_alloc_item *it = malloc(N * sizeof *it);
  uint8_t *b = malloc(N);
  ck_assert_ptr_nonnull(it);
  ck_assert_ptr_nonnull(b);
  srand(42);
  uint64_t alive_raw = 0;
  for (int k = 0; k < N; k++) {
    it[k] = item(1 + (uint64_t)(rand() % 100000), (rand() % 1000) * 1e3, 1 + rand() % 2,
                 rand() % 4 ? 32 : 8, rand() % 3 != 0);
    if (it[k].alive_at_peak && it[k].max_bits > 8) alive_raw += it[k].numel * 4;
  }
  ck_assert_int_eq(gs__alloc_average_bits(it, N, 2.5, GS_ALLOC_WIDTHS_ALL, b), 0);
  uint64_t numel = 0;
  for (int k = 0; k < N; k++) {
    numel += it[k].numel;
    ck_assert(b[k] == GS_ALLOC_KEEP || (b[k] >= it[k].min_bits && b[k] <= it[k].max_bits));
  }
  ck_assert_uint_le(total_bits(it, b, N), (uint64_t)(2.5 * (double)numel));
  uint64_t peak = 0;
  ck_assert_int_eq(gs__alloc_budget(it, N, GS_ALLOC_WIDTHS_ALL, 1 << 20, alive_raw / 3, b, &peak),
                   0);
  ck_assert_uint_le(peak, alive_raw / 3);
  free(it);
  free(b);
}
END_TEST

static Suite *alloc_suite(void) {
  Suite *s = suite_create("policy-allocate");
  TCase *avg = tcase_create("average");
  tcase_add_test(avg, avg_hand_three);
  tcase_add_test(avg, avg_hand_keep_sensitive);
  tcase_add_test(avg, avg_loose_keeps);
  tcase_add_test(avg, avg_equal_sens_uniform);
  tcase_add_test(avg, avg_weighted_exact);
  tcase_add_loop_test(avg, avg_monotone_random, 0, 6);
  tcase_add_test(avg, avg_bounds);
  tcase_add_test(avg, avg_invalid);
  suite_add_tcase(s, avg);
  TCase *bud = tcase_create("budget");
  tcase_add_test(bud, budget_loose);
  tcase_add_test(bud, budget_tight);
  tcase_add_test(bud, budget_impossible);
  tcase_add_test(bud, budget_tiny_never_grows);
  suite_add_tcase(s, bud);
  TCase *big = tcase_create("large");
  tcase_set_timeout(big, 60);
  tcase_add_test(big, large_n);
  suite_add_tcase(s, big);
  return s;
}

int main(void) {
  return gs_check_run(alloc_suite());
}
