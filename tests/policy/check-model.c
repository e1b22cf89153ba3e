/* check-model.c: the size model and the sensitivity estimate against hand-computed values. */
#include "policy.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* The brief's formula is header + ngroups·4 + ceil(n·b/8). The kernels additionally align the
 * data to 16 bytes and round each bit-plane to whole bytes; where neither matters both agree. */
START_TEST(size_hand_computed) {
  /* 1000 elems, group 256: 4 groups → 32+16 = 48 (aligned); 125 bytes/plane · 2 = 250 → 298. */
  ck_assert_uint_eq(gs__alloc_bytes(1000, 256, 32, 2), 298);
  /* group 32: 32 groups → 32+128 = 160; 125·3 = 375 → 535 (brief: 32+128+375 = 535). */
  ck_assert_uint_eq(gs__alloc_bytes(1000, 32, 32, 3), 535);
  /* 100 elems, group 32: 4 groups → 48; ceil(100/8) = 13 → 61 (brief: 32+16+13 = 61). */
  ck_assert_uint_eq(gs__alloc_bytes(100, 32, 32, 1), 61);
  /* 100 elems, group 256: 1 group → 36, aligned to 48; 13·3 = 39 → 87. The brief's formula gives
   * 32+4+ceil(300/8) = 74: 12 bytes of alignment and 1 of plane rounding. */
  ck_assert_uint_eq(gs__alloc_bytes(100, 256, 32, 3), 87);
  /* 1e6 elems, group 256: 3907 groups → 15660 → 15664; 125000·8 → 1015664. */
  ck_assert_uint_eq(gs__alloc_bytes(1000000, 256, 32, 8), 1015664);
}
END_TEST

START_TEST(size_keep_and_invalid) {
  ck_assert_uint_eq(gs__alloc_bytes(1000, 256, 32, GS_ALLOC_KEEP), 4000);
  ck_assert_uint_eq(gs__alloc_bytes(1000, 256, 16, GS_ALLOC_KEEP), 2000);
  ck_assert_uint_eq(gs__alloc_bytes(1000, 0, 32, 2), 0);
  ck_assert_uint_eq(gs__alloc_bytes(1000, 256, 32, 9), 0);
  /* Sizes saturate instead of wrapping to something small. */
  ck_assert_uint_eq(gs__alloc_bytes(UINT64_MAX, 1, 32, 8), UINT64_MAX);
  ck_assert_uint_eq(gs__alloc_bytes(UINT64_MAX, 256, 32, GS_ALLOC_KEEP), UINT64_MAX);
}
END_TEST

START_TEST(size_monotone_in_bits) {
  for (uint64_t n = 1; n < 5000; n += 37)
    for (unsigned b = 2; b <= 8; b++)
      ck_assert_uint_gt(gs__alloc_bytes(n, 64, 32, b), gs__alloc_bytes(n, 64, 32, b - 1));
}
END_TEST

START_TEST(variance_hand_computed) {
  /* V = sens / (4·(2^b−1)²). */
  ck_assert_double_eq_tol(gs__sens_variance(36, 2), 1.0, 1e-12);     /* 36/(4·9) */
  ck_assert_double_eq_tol(gs__sens_variance(4, 1), 1.0, 1e-12);      /* 4/(4·1) */
  ck_assert_double_eq_tol(gs__sens_variance(3600, 4), 4.0, 1e-12);   /* 3600/(4·225) */
  ck_assert_double_eq_tol(gs__sens_variance(260100, 8), 1.0, 1e-12); /* 260100/(4·65025) */
  ck_assert_double_eq(gs__sens_variance(1e9, GS_ALLOC_KEEP), 0.0);
  ck_assert(isnan(gs__sens_variance(1, 9)));
  for (unsigned b = 2; b <= 8; b++) ck_assert(gs__sens_variance(1, b) < gs__sens_variance(1, b - 1));
}
END_TEST

START_TEST(ema_update) {
  gs_sens_ema e = {0};
  /* The first observation seeds; then c += 0.5·(obs − c): 10 → 15 → 7.5. */
  ck_assert_int_eq(gs__sens_ema_update(&e, 10, 0.5), 0);
  ck_assert_double_eq(e.c, 10);
  ck_assert_int_eq(gs__sens_ema_update(&e, 20, 0.5), 0);
  ck_assert_double_eq(e.c, 15);
  ck_assert_int_eq(gs__sens_ema_update(&e, 0, 0.5), 0);
  ck_assert_double_eq(e.c, 7.5);
  ck_assert_uint_eq(e.n, 3);
  /* Bad input leaves the estimate as it was. */
  ck_assert_int_eq(gs__sens_ema_update(&e, NAN, 0.5), -EINVAL);
  ck_assert_int_eq(gs__sens_ema_update(&e, -1, 0.5), -EINVAL);
  ck_assert_int_eq(gs__sens_ema_update(&e, 1, 0), -EINVAL);
  ck_assert_int_eq(gs__sens_ema_update(&e, 1, 1.5), -EINVAL);
  ck_assert_int_eq(gs__sens_ema_update(NULL, 1, 0.5), -EINVAL);
  ck_assert_double_eq(e.c, 7.5);
  ck_assert_uint_eq(e.n, 3);
}
END_TEST

/* 8 bits encodes in groups of at most 32; narrower widths keep the configured group, and so does
 * keep (level 0). The budget allocator prices an 8-bit level with those groups. */
START_TEST(group_at_bits) {
  ck_assert_uint_eq(gs__group_at_bits(256, 8), 32);
  ck_assert_uint_eq(gs__group_at_bits(65536, 8), 32);
  ck_assert_uint_eq(gs__group_at_bits(32, 8), 32);
  for (unsigned b = 1; b < 8; b++) ck_assert_uint_eq(gs__group_at_bits(256, b), 256);
  ck_assert_uint_eq(gs__group_at_bits(256, GS_ALLOC_KEEP), 256);
  /* 1000 elements at 8 bits: 32 groups -> align16(32 + 128) + 1000 */
  ck_assert_uint_eq(gs__alloc_bytes(1000, gs__group_at_bits(256, 8), 32, 8), 160 + 1000);
}
END_TEST

START_TEST(range_term) {
  double t = -1;
  /* 10 elements in groups of 4: 4·1² + 4·2² + 2·3² = 38 (the short last group weighs 2). */
  const float r3[] = {1, 2, 3};
  ck_assert_int_eq(gs__sens_range_term(r3, 10, 4, &t), 0);
  ck_assert_double_eq(t, 38);
  ck_assert_int_eq(gs__sens_range_term(r3, 8, 4, &t), 0);
  ck_assert_double_eq(t, 20);
  ck_assert_int_eq(gs__sens_range_term(NULL, 0, 4, &t), 0);
  ck_assert_double_eq(t, 0);
  const float bad[] = {1, INFINITY};
  ck_assert_int_eq(gs__sens_range_term(bad, 8, 4, &t), -EINVAL);
  ck_assert_int_eq(gs__sens_range_term(r3, 8, 0, &t), -EINVAL);
  ck_assert_double_eq(gs__sens_range_term_mean(10, 3.8), 38);
  ck_assert_double_eq(gs__sens_of(2, 38), 76);
}
END_TEST

static Suite *model_suite(void) {
  Suite *s = suite_create("policy-model");
  TCase *tc = tcase_create("model");
  tcase_add_test(tc, size_hand_computed);
  tcase_add_test(tc, size_keep_and_invalid);
  tcase_add_test(tc, size_monotone_in_bits);
  tcase_add_test(tc, group_at_bits);
  tcase_add_test(tc, variance_hand_computed);
  tcase_add_test(tc, ema_update);
  tcase_add_test(tc, range_term);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return gs_check_run(model_suite());
}
