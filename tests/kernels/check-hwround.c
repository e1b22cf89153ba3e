/* check-hwround.c: the twin's integer float conversions equal a model of the GPU's cvt instructions.
 *
 * What this proves, without a GPU: for every binary16 and bfloat16 pattern, and for fp32 inputs at
 * and around every rounding boundary between consecutive patterns (the values themselves, their
 * fp32 neighbours, the midpoints and the midpoints' neighbours), overflow, underflow, subnormals,
 * signed zeros and a sweep of random fp32 patterns, the twin's software conversions in
 * kernels/codec_core.h give the same bits as hwmodel.h: IEEE 754 rounding (nearest-even, toward
 * -Inf, toward +Inf) as the PTX ISA documents cvt.rn/.rm/.rp.f16.f32, cvt.rn.bf16.f32 and the
 * exact cvt.f32.f16, without .ftz, plus the saturation the kernels add (after the conversion, or as
 * a clamp before it). What it cannot prove: that
 * the silicon does what the PTX ISA says. That is the GPU test's job (tests/kernels/gpu-codec.c,
 * byte equality of both twins' buffers and outputs), which no GPU has run yet. */
#include "codec_core.h"
#include "hwmodel.h"

#include <check.h>
#include "../check_run.h"
#include <float.h>
#include <math.h>

static float f_of(uint32_t u) { return gs__u2f(u); }

/* The kernels' output conversion: cvt.rn then a saturating min on the magnitude. */
static uint16_t model_out(int fmt, float x) {
  uint16_t h = hm_round(fmt, x, 0);
  if ((h & 0x7fffu) == hm_inf(fmt)) h = (uint16_t)((h & 0x8000u) | hm_max(fmt));
  return h;
}

static unsigned checked;

/* Every conversion the kernels may do by instruction, on one finite fp32 input. */
static void check_one(float x) {
  if (!isfinite(x)) return;
  for (int mode = 0; mode < 3; mode++) {
    uint16_t twin = gs__f32_to_f16(x, mode), hw = hm_round(0, x, mode);
    if (twin != hw) ck_abort_msg("f16 mode %d x=%a (%08x): twin %04x model %04x", mode, (double)x, gs__f2u(x), twin, hw);
    twin = gs__f32_to_bf16(x, mode), hw = hm_round(1, x, mode);
    if (twin != hw) ck_abort_msg("bf16 mode %d x=%a: twin %04x model %04x", mode, (double)x, twin, hw);
  }
  if (gs__out_f16(x) != model_out(0, x)) ck_abort_msg("out f16 x=%a", (double)x);
  if (gs__out_bf16(x) != model_out(1, x)) ck_abort_msg("out bf16 x=%a", (double)x);
  /* The decompress kernel's common path clamps, then converts (gs__out_sat): the same patterns. */
  for (int fmt = 0; fmt < 2; fmt++) {
    float top = (float)hm_value(fmt, hm_max(fmt)), c = x < -top ? -top : x > top ? top : x;
    if (hm_round(fmt, c, 0) != model_out(fmt, x)) ck_abort_msg("clamped fmt %d x=%a", fmt, (double)x);
    if (gs__out_sat(x, 1u + fmt) != gs__out_finite(x, 1u + fmt))
      ck_abort_msg("gs__out_sat fmt %d x=%a: %04x vs %04x", fmt, (double)x, gs__out_sat(x, 1u + fmt),
                   gs__out_finite(x, 1u + fmt));
  }
  checked++;
}

static void check_around(float x) {
  check_one(x);
  check_one(nextafterf(x, INFINITY));
  check_one(nextafterf(x, -INFINITY));
}

/* All patterns of fmt, each with the boundary to the next one. */
static void sweep_format(int fmt) {
  for (uint32_t p = 0; p < 0x8000u; p++) {
    if ((p & 0x7fffu) >= hm_inf(fmt)) continue;
    for (uint32_t s = 0; s < 2; s++) {
      uint16_t h = (uint16_t)(p | s << 15);
      double v = hm_value(fmt, h);
      check_around((float)v); /* exact: both formats are subsets of fp32 */
      if (p < hm_max(fmt)) {
        double mid = (v + hm_value(fmt, (uint16_t)(h + 1))) / 2; /* one more bit: still exact */
        ck_assert((double)(float)mid == mid);
        check_around((float)mid);
      }
    }
  }
}

START_TEST(test_f16_patterns_and_boundaries) { sweep_format(0); }
END_TEST

START_TEST(test_bf16_patterns_and_boundaries) { sweep_format(1); }
END_TEST

START_TEST(test_f16_to_f32_exact) {
  for (uint32_t p = 0; p < 0x10000u; p++) {
    uint16_t h = (uint16_t)p;
    float twin = gs__f16_to_f32(h), hw = hm_f16_to_f32(h);
    if ((h & 0x7fffu) > 0x7c00u) { /* NaN: any NaN (the kernels only test the exponent) */
      ck_assert(isnan(twin) && isnan(hw));
      continue;
    }
    ck_assert_msg(gs__f2u(twin) == gs__f2u(hw), "pattern %04x", h);
  }
}
END_TEST

START_TEST(test_edges_and_random) {
  static const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00800000u,
                                   0x7f7fffffu, 0xff7fffffu, 0x33000000u, 0x33000001u, 0xb3000000u,
                                   0x32ffffffu, 0x477fe000u, 0x477fefffu, 0x477ff000u, 0x477ff001u,
                                   0x47800000u, 0xc77ff000u, 0x7f7f8000u, 0x7f7f7fffu, 0x38800000u,
                                   0x387fc000u, 0x0d800000u};
  for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) check_around(f_of(edges[i]));
  check_one(FLT_MAX), check_one(-FLT_MAX), check_one(FLT_MIN), check_one(-FLT_TRUE_MIN);
  uint64_t s = 12345;
  for (int i = 0; i < 1 << 20; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    check_one(f_of((uint32_t)(s >> 32)));
  }
  /* The hooks the kernels use: without __CUDA_ARCH__ they are the twin's code. */
  for (int i = 0; i < 1000; i++) {
    float x = (float)i * 0.37f - 100.0f;
    ck_assert_uint_eq(gs__cvt_f16(x, GS_RD), gs__f32_to_f16(x, GS_RD));
    ck_assert_uint_eq(gs__cvt_bf16_rn(x), gs__f32_to_bf16(x, GS_RN));
  }
  ck_assert_uint_gt(checked, 1000000u); /* the random sweep skips Inf/NaN patterns */
}
END_TEST

/* The kernels' conversion-free forms of (float)(2h+1)*2^-17 and (float)q are the same values. */
START_TEST(test_integer_to_float_identities) {
  for (uint32_t h = 0; h < 0x10000u; h++) {
    uint32_t r[4] = {h << 16 | h, 0, 0, 0}; /* element 0: low half, element 1: high half */
    ck_assert(gs__uniform(r, 0) == (float)(2u * h + 1u) * 7.62939453125e-06f);
    ck_assert(gs__uniform(r, 1) == (float)(2u * h + 1u) * 7.62939453125e-06f);
  }
  for (uint32_t q = 0; q < (1u << 23); q += q < 4096 ? 1 : 4093) ck_assert(gs__level_f32(q) == (float)q);
  ck_assert(gs__mulhi(0xffffffffu, 0xffffffffu) == 0xfffffffeu);
}
END_TEST

int main(void) {
  Suite *s = suite_create("hwround");
  TCase *tc = tcase_create("model");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_f16_patterns_and_boundaries);
  tcase_add_test(tc, test_bf16_patterns_and_boundaries);
  tcase_add_test(tc, test_f16_to_f32_exact);
  tcase_add_test(tc, test_edges_and_random);
  tcase_add_test(tc, test_integer_to_float_identities);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
