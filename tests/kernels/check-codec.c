/* check-codec.c: unit tests of the CPU codec (format, error bounds, unbiasedness, robustness). */
#include "gactshim.h"
#include "codec_core.h"
#include "testdata.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gs_codec_params params(uint64_t n, unsigned dtype, unsigned bits, uint32_t group) {
  gs_codec_params p = {.n = n, .dtype = (gs_dtype)dtype, .bits = bits, .group = group,
                       .seed = 0x1234567890abcdefull, .tensor_id = 42};
  return p;
}

static float out_value(const void *out, uint64_t i, unsigned dtype) { return gs__load(out, i, dtype); }

/* Meta of group g, as decompress reads it. */
static gs__meta group_meta(const uint8_t *buf, uint64_t g) {
  const uint8_t *m = buf + GS_FMT_HEADER_BYTES + g * 4;
  gs__meta meta;
  gs__meta_decode((uint16_t)(m[0] | m[1] << 8), (uint16_t)(m[2] | m[3] << 8), &meta);
  return meta;
}

/* Allowed |x - x'|: one decoded step, a few fp32 roundings, and the output dtype's rounding. */
static double tolerance(const gs__meta *m, float x, float y, unsigned dtype) {
  double ax = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
  double tol = m->stepf * (1.0 + 0x1p-12) + ax * 0x1p-21 + fabs(m->minf) * 0x1p-21;
  if (dtype == 1) tol += fmax(fabs(y) * 0x1p-11, 0x1p-25);
  if (dtype == 2) tol += fabs(y) * 0x1p-8;
  return tol;
}

/* Compresses and decompresses; checks size, guard bytes and the per-element error bound. */
static void roundtrip_check(uint64_t n, unsigned dtype, unsigned bits, uint32_t group,
                            gs_td_kind kind, int nthreads) {
  gs_codec_params p = params(n, dtype, bits, group);
  size_t size = gs_codec_size(&p), esz = gs_td_elem_size(dtype);
  ck_assert_uint_gt(size, 0);
  void *src = malloc(n * esz + 1), *out = malloc(n * esz + 1);
  float *ref = malloc(n * sizeof(float) + 1);
  uint8_t *buf = malloc(size + 64);
  gs_td_fill(src, ref, n, dtype, kind, n * 31 + bits);
  memset(buf + size, 0xA5, 64);
  ck_assert_int_eq(gs_compress_cpu(&p, src, buf, nthreads), 0);
  for (int i = 0; i < 64; i++) ck_assert_uint_eq(buf[size + i], 0xA5);
  ck_assert_int_eq(gs_decompress_cpu(buf, size, out, &p, nthreads), 0);
  for (uint64_t i = 0; i < n; i++) {
    float y = out_value(out, i, dtype);
    gs__meta m = group_meta(buf, i / group);
    double err = fabs((double)y - ref[i]);
    if (!(err <= tolerance(&m, ref[i], y, dtype)))
      ck_abort_msg("n=%llu dtype=%u bits=%u group=%u i=%llu x=%.9g y=%.9g step=%.9g min=%.9g",
                   (unsigned long long)n, dtype, bits, group, (unsigned long long)i, ref[i], y,
                   m.stepf, m.minf);
  }
  free(src), free(out), free(ref), free(buf);
}

START_TEST(test_philox_known_answers) {
  /* Known-answer vectors of Philox4x32-10 from its published reference. */
  uint32_t c[4] = {0, 0, 0, 0};
  gs__philox(c, 0, 0);
  ck_assert_uint_eq(c[0], 0x6627e8d5u);
  ck_assert_uint_eq(c[1], 0xe169c58du);
  ck_assert_uint_eq(c[2], 0xbc57ac4cu);
  ck_assert_uint_eq(c[3], 0x9b00dbd8u);
  uint32_t d[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
  gs__philox(d, 0xffffffffu, 0xffffffffu);
  ck_assert_uint_eq(d[0], 0x408f276du);
  ck_assert_uint_eq(d[1], 0x41c83b0eu);
  ck_assert_uint_eq(d[2], 0xa20bc7c6u);
  ck_assert_uint_eq(d[3], 0x6d5451fdu);
  uint32_t e[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
  gs__philox(e, 0xa4093822u, 0x299f31d0u);
  ck_assert_uint_eq(e[0], 0xd16cfe09u);
  ck_assert_uint_eq(e[1], 0x94fdccebu);
  ck_assert_uint_eq(e[2], 0x5001e420u);
  ck_assert_uint_eq(e[3], 0x24126ea1u);
}
END_TEST

START_TEST(test_half_conversions) {
  for (uint32_t h = 0; h < 0x10000u; h++) {
    float f = gs__f16_to_f32((uint16_t)h);
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) {
      ck_assert(isnan(f));
      continue;
    }
    for (int mode = 0; mode < 3; mode++) ck_assert_uint_eq(gs__f32_to_f16(f, mode), h);
    ck_assert_uint_eq(gs__f32_to_bf16(gs__bf16_to_f32((uint16_t)h), GS_RN), h);
  }
  uint64_t s = 7;
  for (int i = 0; i < 200000; i++) {
    uint32_t u = (uint32_t)gs_td_next(&s);
    float x = gs__u2f(u);
    if (isnan(x)) continue;
    float d = gs__f16_to_f32(gs__f32_to_f16(x, GS_RD)), up = gs__f16_to_f32(gs__f32_to_f16(x, GS_RU));
    float n = gs__f16_to_f32(gs__f32_to_f16(x, GS_RN));
    ck_assert(d <= x && x <= up);
    /* Nearest: the closer of the two directed results, ties to the even encoding. */
    double dd = (double)x - d, du = (double)up - x;
    uint16_t nb = gs__f32_to_f16(x, GS_RN);
    if (d != up && !isinf(d) && !isinf(up)) ck_assert(dd < du ? n == d : du < dd ? n == up : (nb & 1u) == 0);
    float bd = gs__bf16_to_f32(gs__f32_to_bf16(x, GS_RD)), bu = gs__bf16_to_f32(gs__f32_to_bf16(x, GS_RU));
    ck_assert(bd <= x && x <= bu);
  }
  /* Overflow threshold of nearest: half an ulp above 65504. */
  ck_assert_uint_eq(gs__f32_to_f16(65519.996f, GS_RN), 0x7bffu);
  ck_assert_uint_eq(gs__f32_to_f16(65520.0f, GS_RN), 0x7c00u);
  ck_assert_uint_eq(gs__f32_to_f16(-1e6f, GS_RU), 0xfbffu);
  ck_assert_uint_eq(gs__out_f16(1e6f), 0x7bffu);
}
END_TEST

START_TEST(test_invalid_params) {
  gs_codec_params p = params(1000, 0, 4, 256);
  ck_assert_int_eq(gs_codec_validate(&p), 0);
  p.bits = 0;
  ck_assert_int_eq(gs_codec_validate(&p), -EINVAL);
  ck_assert_uint_eq(gs_codec_size(&p), 0);
  p.bits = 9;
  ck_assert_int_eq(gs_codec_validate(&p), -EINVAL);
  p.bits = 4;
  uint32_t bad_groups[] = {0, 16, 33, 100, 65536 + 32, 100000};
  for (size_t i = 0; i < sizeof bad_groups / sizeof *bad_groups; i++) {
    p.group = bad_groups[i];
    ck_assert_int_eq(gs_codec_validate(&p), -EINVAL);
    ck_assert_int_eq(gs_compress_cpu(&p, "", (char[64]){0}, 1), -EINVAL);
  }
  p.group = 32;
  p.dtype = (gs_dtype)4;
  ck_assert_int_eq(gs_codec_validate(&p), -EINVAL);
  ck_assert_int_eq(gs_codec_validate(NULL), -EINVAL);
  /* n = 0 is valid: a header-only buffer. */
  p = params(0, 0, 4, 256);
  ck_assert_int_eq(gs_codec_validate(&p), 0);
  uint8_t buf[64];
  ck_assert_uint_eq(gs_codec_size(&p), 32);
  ck_assert_int_eq(gs_compress_cpu(&p, buf, buf, 1), 0);
  ck_assert_int_eq(gs_decompress_cpu(buf, 32, buf + 40, &p, 1), 0);
}
END_TEST

START_TEST(test_roundtrip_all_dtypes_widths) {
  static const uint64_t sizes[] = {1, 7, 8, 31, 256, 257, 1000, 4099};
  static const uint32_t groups[] = {32, 96, 256, 1024};
  unsigned dtype = (unsigned)_i;
  for (unsigned bits = 1; bits <= 8; bits++)
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
      for (size_t g = 0; g < sizeof groups / sizeof *groups; g++)
        roundtrip_check(sizes[s], dtype, bits, groups[g], (gs_td_kind)((s + g) % 5), 1);
}
END_TEST

START_TEST(test_roundtrip_large) {
  roundtrip_check(10000000, 0, 4, 256, GS_TD_NORMAL, 0);
  roundtrip_check(65536 * 3 + 5, 2, 2, 65536, GS_TD_LAYERNORM, 2);
}
END_TEST

START_TEST(test_unbiased) {
  enum { N = 512, SEEDS = 1000 };
  for (unsigned dtype = 0; dtype < 3; dtype++)
    for (unsigned bits = 1; bits <= 8; bits *= 2) {
      gs_codec_params p = params(N, dtype, bits, 128);
      size_t size = gs_codec_size(&p);
      uint8_t *buf = malloc(size);
      float src[N * 2], ref[N], out[N];
      uint16_t out16[N];
      double sum[N] = {0};
      gs_td_fill(src, ref, N, dtype, (gs_td_kind)bits % 5, 99 + bits);
      for (int s = 0; s < SEEDS; s++) {
        p.seed = (uint64_t)s * 0x100000001ull;
        ck_assert_int_eq(gs_compress_cpu(&p, src, buf, 1), 0);
        ck_assert_int_eq(gs_decompress_cpu(buf, size, dtype ? (void *)out16 : out, NULL, 1), 0);
        for (int i = 0; i < N; i++) sum[i] += dtype ? gs__load(out16, i, dtype) : out[i];
      }
      /* 6144 elements are tested, so a few single 4-sigma excursions are expected by chance
       * (p = 6e-5 each): allow 1 in 1000 beyond 4 sigma, none beyond 6, and the mean of the
       * standardized deviations (which a bias would shift) within 4 of its own sigma. */
      int beyond4 = 0, counted = 0;
      double zsum = 0;
      for (int i = 0; i < N; i++) {
        gs__meta m = group_meta(buf, i / 128);
        double t = m.stepf > 0 ? ((double)ref[i] - m.minf) / m.stepf : 0, fr = t - floor(t);
        double sigma = m.stepf * sqrt(fr * (1 - fr) / SEEDS);
        /* Slack: the 16-bit uniform (bias <= step/2^17) and fp32/output-dtype roundings. */
        double slack = m.stepf * 0x1p-16 + fabs(ref[i]) * (dtype == 2 ? 0x1p-8 : dtype ? 0x1p-11 : 0x1p-20);
        double dev = fabs(sum[i] / SEEDS - ref[i]);
        if (!(dev <= 6 * sigma + slack))
          ck_abort_msg("dtype=%u bits=%u i=%d x=%.9g mean=%.9g sigma=%.3g", dtype, bits, i, ref[i],
                       sum[i] / SEEDS, sigma);
        beyond4 += !(dev <= 4 * sigma + slack);
        if (sigma > 0 && fr > 0.01 && fr < 0.99) {
          zsum += (sum[i] / SEEDS - ref[i]) / sigma;
          counted++;
        }
      }
      ck_assert_int_le(beyond4, N / 1000 + 1);
      /* fp32 output only: rounding a decoded value to fp16/bf16 is a deterministic bias of up to
       * half an output ulp, comparable with an 8-bit step, which the per-element slack covers. */
      if (dtype == 0 && counted && !(fabs(zsum / sqrt(counted)) <= 4.0))
        ck_abort_msg("dtype=%u bits=%u aggregate z %.2f over %d", dtype, bits, zsum / sqrt(counted), counted);
      free(buf);
    }
}
END_TEST

START_TEST(test_constant_groups) {
  /* Representable constants decode exactly; 0.1f (not a 16-bit value) within one step. */
  float vals[] = {0.0f, -0.0f, 1.0f, -3.5f, 100.0f, 65504.0f, 0x1p100f, 0.1f};
  for (size_t v = 0; v < sizeof vals / sizeof *vals; v++)
    for (unsigned bits = 1; bits <= 8; bits++) {
      float src[300], out[300];
      for (int i = 0; i < 300; i++) src[i] = vals[v];
      gs_codec_params p = params(300, 0, bits, 256);
      uint8_t buf[512];
      ck_assert_int_eq(gs_compress_cpu(&p, src, buf, 1), 0);
      ck_assert_int_eq(gs_decompress_cpu(buf, sizeof buf, out, &p, 1), 0);
      gs__meta m = group_meta(buf, 0);
      for (int i = 0; i < 300; i++) {
        if (vals[v] != 0.1f) {
          ck_assert_float_eq(m.stepf, 0.0f);
          ck_assert(out[i] == vals[v]);
        } else {
          ck_assert(fabsf(out[i] - src[i]) <= m.stepf);
        }
      }
    }
}
END_TEST

START_TEST(test_nonfinite) {
  float bad[] = {INFINITY, -INFINITY, NAN};
  for (size_t b = 0; b < 3; b++)
    for (unsigned dtype = 0; dtype < 3; dtype++) {
      enum { N = 1000 };
      uint16_t src[N * 2], out[N * 2];
      float ref[N];
      gs_td_fill(src, ref, N, dtype, GS_TD_NORMAL, 5);
      uint64_t where = 300; /* group 1 of 32-element... of 256-element groups */
      if (dtype == 0) ((float *)src)[where] = bad[b];
      else ((uint16_t *)src)[where] = dtype == 1 ? gs__f32_to_f16(bad[b], 0) : gs__f32_to_bf16(bad[b], 0);
      gs_codec_params p = params(N, dtype, 3, 256);
      size_t size = gs_codec_size(&p);
      uint8_t *buf = malloc(size);
      ck_assert_int_eq(gs_compress_cpu(&p, src, buf, 1), -ERANGE);
      uint32_t flagged;
      memcpy(&flagged, buf + 24, 4);
      ck_assert_uint_eq(flagged, 1);
      ck_assert_int_eq(gs_decompress_cpu(buf, size, out, &p, 1), 0);
      for (int i = 0; i < N; i++) {
        float y = gs__load(out, i, dtype);
        if (i / 256 == 1) ck_assert(isnan(y));
        else ck_assert(fabs(y - ref[i]) <= tolerance(&(gs__meta){.stepf = group_meta(buf, i / 256).stepf}, ref[i], y, dtype));
      }
      free(buf);
    }
  /* A range wider than 2^127 is not representable either. */
  float wide[64] = {-3e38f, 3e38f};
  gs_codec_params p = params(64, 0, 8, 32);
  uint8_t buf[128];
  ck_assert_int_eq(gs_compress_cpu(&p, wide, buf, 1), -ERANGE);
}
END_TEST

START_TEST(test_bool_lossless) {
  uint64_t sizes[] = {1, 7, 8, 9, 1000, 123457};
  for (size_t s = 0; s < 6; s++) {
    uint64_t n = sizes[s];
    gs_codec_params p = params(n, 3, 0, 0);
    ck_assert_int_eq(gs_codec_validate(&p), 0);
    size_t size = gs_codec_size(&p);
    ck_assert_uint_eq(size, 32 + (n + 7) / 8);
    uint8_t *src = malloc(n), *out = malloc(n), *buf = malloc(size + 16);
    gs_td_fill(src, NULL, n, 3, GS_TD_NORMAL, n);
    memset(buf + size, 0x5A, 16);
    ck_assert_int_eq(gs_compress_cpu(&p, src, buf, 0), 0);
    for (int i = 0; i < 16; i++) ck_assert_uint_eq(buf[size + i], 0x5A);
    ck_assert_int_eq(gs_decompress_cpu(buf, size, out, &p, 0), 0);
    for (uint64_t i = 0; i < n; i++) ck_assert_uint_eq(out[i], src[i] != 0);
    free(src), free(out), free(buf);
  }
}
END_TEST

/* GS_CODEC_RELU_MASK: every output is > 0 exactly where the input was, equal to the plain decode
 * where that is already > 0, and +0 elsewhere; the sign plane costs ceil(n/8) bytes. */
START_TEST(test_relu_sign_plane) {
  const uint64_t n = 4099;
  for (unsigned dtype = 0; dtype < 3; dtype++)
    for (unsigned bits = 1; bits <= 8; bits *= 2) {
      gs_codec_params p = params(n, dtype, bits, 256), q = p;
      q.flags = GS_CODEC_RELU_MASK;
      size_t esz = gs_td_elem_size(dtype), sp = gs_codec_size(&p), sq = gs_codec_size(&q);
      ck_assert_uint_eq(sq, sp + (n + 7) / 8);
      uint8_t *src = malloc(n * esz), *bp = malloc(sp), *bq = malloc(sq);
      uint8_t *op = malloc(n * esz), *oq = malloc(n * esz);
      float *ref = malloc(n * sizeof(float));
      gs_td_fill(src, ref, n, dtype, GS_TD_RELU, 77 + bits);
      for (uint64_t i = 5; i < n; i += 97) { /* tiny positives: rounding sends most to 0 */
        if (dtype == 0) ((float *)src)[i] = 1e-20f;
        else ((uint16_t *)src)[i] = 0x0001; /* smallest subnormal of fp16 and bf16 */
        ref[i] = gs__load(src, i, dtype);
      }
      ck_assert_int_eq(gs_compress_cpu(&p, src, bp, 1), 0);
      ck_assert_int_eq(gs_compress_cpu(&q, src, bq, 1), 0);
      ck_assert(memcmp(bp + 32, bq + 32, sp - 32) == 0); /* same metas and levels */
      ck_assert_int_eq(gs_decompress_cpu(bp, sp, op, &p, 1), 0);
      ck_assert_int_eq(gs_decompress_cpu(bq, sq, oq, &p, 1), -EINVAL); /* flags differ */
      ck_assert_int_eq(gs_decompress_cpu(bq, sq, oq, &q, 1), 0);
      for (uint64_t i = 0; i < n; i++) {
        float yp = gs__load(op, i, dtype), yq = gs__load(oq, i, dtype);
        uint32_t tiny = gs__sign_tiny(dtype);
        float ft = dtype == 0 ? gs__u2f(tiny) : gs__load(&(uint16_t){(uint16_t)tiny}, 0, dtype);
        if (ref[i] > 0.0f) ck_assert(yq == (yp > 0.0f ? yp : ft));
        else ck_assert(yq == 0.0f && !signbit(yq));
      }
      free(src), free(bp), free(bq), free(op), free(oq), free(ref);
    }
  gs_codec_params b = params(64, 3, 1, 0);
  b.flags = GS_CODEC_RELU_MASK; /* bool tensors have no sign plane */
  ck_assert_int_eq(gs_codec_validate(&b), -EINVAL);
  b = params(64, 0, 4, 32);
  b.flags = 2; /* unknown flag */
  ck_assert_int_eq(gs_codec_validate(&b), -EINVAL);
}
END_TEST

START_TEST(test_corrupt_buffers) {
  enum { N = 777 };
  float src[N], out[N];
  gs_td_fill(src, NULL, N, 0, GS_TD_NORMAL, 3);
  gs_codec_params p = params(N, 0, 5, 64);
  size_t size = gs_codec_size(&p);
  uint8_t *buf = malloc(size), *copy = malloc(size);
  ck_assert_int_eq(gs_compress_cpu(&p, src, buf, 1), 0);
  for (size_t len = 0; len < size; len++)
    ck_assert_int_eq(gs_decompress_cpu(buf, len, out, NULL, 1), -EINVAL);
  /* Any change in the checked header bytes is caught. */
  for (size_t byte = 0; byte < 24; byte++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(copy, buf, size);
      copy[byte] ^= (uint8_t)(1u << bit);
      ck_assert_int_eq(gs_decompress_cpu(copy, size, out, NULL, 1), -EINVAL);
    }
  /* Garbage metas and data decode to something (NaN or values), never a crash. */
  uint64_t s = 11;
  for (int rep = 0; rep < 50; rep++) {
    memcpy(copy, buf, size);
    for (size_t i = 32; i < size; i++) copy[i] = (uint8_t)gs_td_next(&s);
    ck_assert_int_eq(gs_decompress_cpu(copy, size, out, &p, 1), 0);
  }
  gs_codec_params q = p;
  q.n = N - 1;
  ck_assert_int_eq(gs_decompress_cpu(buf, size, out, &q, 1), -EINVAL);
  q = p;
  q.dtype = GS_DTYPE_F16;
  ck_assert_int_eq(gs_decompress_cpu(buf, size, out, &q, 1), -EINVAL);
  ck_assert_int_eq(gs_decompress_cpu(NULL, size, out, NULL, 1), -EINVAL);
  free(buf), free(copy);
}
END_TEST

START_TEST(test_threads_identical) {
  uint64_t n = 3000000 + 13;
  for (unsigned dtype = 0; dtype < 4; dtype += 2) {
    gs_codec_params p = params(n, dtype, 3, 256);
    size_t size = gs_codec_size(&p);
    void *src = malloc(n * 4);
    uint8_t *a = malloc(size), *b = malloc(size);
    gs_td_fill(src, NULL, n, dtype, GS_TD_RELU, 17);
    ck_assert_int_eq(gs_compress_cpu(&p, src, a, 1), 0);
    int counts[] = {2, 7, 0};
    for (int t = 0; t < 3; t++) {
      memset(b, 0xEE, size);
      ck_assert_int_eq(gs_compress_cpu(&p, src, b, counts[t]), 0);
      ck_assert(memcmp(a, b, size) == 0);
    }
    void *o1 = malloc(n * 4), *o2 = malloc(n * 4);
    ck_assert_int_eq(gs_decompress_cpu(a, size, o1, &p, 1), 0);
    ck_assert_int_eq(gs_decompress_cpu(a, size, o2, &p, 3), 0);
    ck_assert(memcmp(o1, o2, n * gs_td_elem_size(dtype)) == 0);
    free(src), free(a), free(b), free(o1), free(o2);
  }
}
END_TEST

START_TEST(test_key_changes_bytes) {
  /* Same input and key: same bytes; another seed or tensor id: other rounding. */
  enum { N = 4096 };
  float src[N];
  gs_td_fill(src, NULL, N, 0, GS_TD_NORMAL, 1);
  gs_codec_params p = params(N, 0, 2, 256);
  size_t size = gs_codec_size(&p);
  uint8_t *a = malloc(size), *b = malloc(size);
  gs_compress_cpu(&p, src, a, 1);
  gs_compress_cpu(&p, src, b, 1);
  ck_assert(memcmp(a, b, size) == 0);
  p.tensor_id++;
  gs_compress_cpu(&p, src, b, 1);
  ck_assert(memcmp(a, b, size) != 0);
  free(a), free(b);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codec");
  TCase *tc = tcase_create("cpu");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_philox_known_answers);
  tcase_add_test(tc, test_half_conversions);
  tcase_add_test(tc, test_invalid_params);
  tcase_add_loop_test(tc, test_roundtrip_all_dtypes_widths, 0, 3);
  tcase_add_test(tc, test_roundtrip_large);
  tcase_add_test(tc, test_unbiased);
  tcase_add_test(tc, test_constant_groups);
  tcase_add_test(tc, test_nonfinite);
  tcase_add_test(tc, test_bool_lossless);
  tcase_add_test(tc, test_relu_sign_plane);
  tcase_add_test(tc, test_corrupt_buffers);
  tcase_add_test(tc, test_threads_identical);
  tcase_add_test(tc, test_key_changes_bytes);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
