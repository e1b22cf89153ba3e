/* check-codec-isa.c: each SIMD path of the CPU twin makes the same bytes as the portable path. */
#include "kernels.h"
#include "testdata.h"

#include <check.h>
#include "../check_run.h"
#include <float.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The portable path is the reference: its bytes are pinned by check-codec (known answers) and the
 * GPU emulator test. Sizes cover tails of every length mod 8 and mod 64, groups smaller and
 * larger than a 64-element run and than a 256-element block. */
#define GS__N(a) (sizeof(a) / sizeof((a)[0]))

static const uint64_t sizes[] = {1, 7, 8, 9, 63, 64, 65, 127, 255, 256, 257, 1000, 4099, 70001};
static const uint32_t groups[] = {32, 64, 96, 256, 1024};
static const int isas[] = {GS__ISA_AVX2};

/* Inputs: one of the test distributions, with a non-finite value, a range too wide for any meta
 * format and a constant run planted so flagged and zero-step groups are on the path too. */
static void fill(void *src, uint64_t n, unsigned dtype, unsigned variant) {
  gs_td_fill(src, NULL, n, dtype, (gs_td_kind)(variant % 5), 1000 + variant);
  if (variant % 3 == 1 && n > 40) {
    float inf = gs__u2f(0x7f800000u);
    if (dtype == GS_DTYPE_F32) ((float *)src)[n / 2] = inf;
    else ((uint16_t *)src)[n / 2] = dtype == GS_DTYPE_F16 ? 0x7c00u : 0x7f80u;
  }
  if (variant % 4 == 3 && n > 300 && dtype != GS_DTYPE_F16) { /* a range no format holds */
    float big[2] = {-3.0e38f, 3.0e38f};
    for (int k = 0; k < 2; k++) {
      if (dtype == GS_DTYPE_F32) ((float *)src)[260 + k] = big[k];
      else ((uint16_t *)src)[260 + k] = (uint16_t)(gs__f2u(big[k]) >> 16);
    }
  }
  if (variant % 3 == 2 && n > 200)
    for (uint64_t i = 100; i < 200; i++) memcpy((uint8_t *)src + i * gs_dtype_bytes(dtype), src, gs_dtype_bytes(dtype));
}

/* Compresses src with the given path, then decompresses the portable bytes with it. */
static void run_path(int isa, const gs_codec_params *p, const void *src, uint8_t *buf,
                     const uint8_t *ref_buf, size_t size, void *out, int threads) {
  ck_assert_int_eq(gs__codec_isa_set(isa), 0);
  int rc = gs_compress_cpu(p, src, buf, threads);
  ck_assert(rc == 0 || rc == -ERANGE);
  ck_assert_int_eq(gs_decompress_cpu(ref_buf ? ref_buf : buf, size, out, p, threads), 0);
}

static void compare(int isa, uint64_t n, unsigned dtype, unsigned bits, uint32_t group,
                    unsigned misalign, int threads, uint32_t flags) {
  gs_codec_params p = {.n = n, .dtype = (gs_dtype)dtype, .bits = bits, .group = group,
                       .seed = 0x0123456789abcdefull ^ n, .tensor_id = 7 + bits, .flags = flags};
  size_t size = gs_codec_size(&p), esz = gs_dtype_bytes((gs_dtype)dtype);
  uint8_t *raw = malloc((n + misalign) * esz), *a = malloc(size), *b = malloc(size);
  uint8_t *oa = malloc(n * esz), *ob = malloc(n * esz);
  ck_assert(raw && a && b && oa && ob);
  void *src = raw + misalign * esz; /* element-aligned, not vector-aligned */
  fill(src, n, dtype, (unsigned)(n + bits + group));
  run_path(GS__ISA_PORTABLE, &p, src, a, NULL, size, oa, threads);
  run_path(isa, &p, src, b, a, size, ob, threads);
  for (size_t i = 0; i < size; i++)
    ck_assert_msg(a[i] == b[i], "isa %d dtype %u bits %u group %u n %llu: compressed byte %zu "
                  "differs (%u vs %u)", isa, dtype, bits, group, (unsigned long long)n, i, a[i], b[i]);
  ck_assert_msg(memcmp(oa, ob, n * esz) == 0, "isa %d dtype %u bits %u group %u n %llu: "
                "decompressed bytes differ", isa, dtype, bits, group, (unsigned long long)n);
  free(raw), free(a), free(b), free(oa), free(ob);
}

/* Loop index: the path. Every dtype x width x group x size, src misaligned by 0..1 elements. */
START_TEST(test_same_bytes_as_portable) {
  int isa = isas[_i];
  if (gs__codec_isa_set(isa) != 0) {
    printf("SKIP: this CPU or build lacks path %d\n", isa);
    return;
  }
  for (unsigned dtype = 0; dtype < 3; dtype++)
    for (unsigned bits = 1; bits <= 8; bits++)
      for (size_t g = 0; g < GS__N(groups); g++)
        for (size_t k = 0; k < GS__N(sizes); k++)
          compare(isa, sizes[k], dtype, bits, groups[g], (unsigned)(k & 1), 1, 0);
  /* With the ReLU sign plane (GS_CODEC_RELU_MASK): written by compress, applied by decompress. */
  for (unsigned dtype = 0; dtype < 3; dtype++)
    for (unsigned bits = 1; bits <= 8; bits += 3)
      for (size_t k = 0; k < GS__N(sizes); k++) {
        compare(isa, sizes[k], dtype, bits, 256, (unsigned)(k & 1), 1, GS_CODEC_RELU_MASK);
        compare(isa, sizes[k], dtype, bits, 32, (unsigned)(k & 1), 1, GS_CODEC_RELU_MASK);
      }
  /* Split over threads: ranges start at group boundaries inside 64-element runs of the buffer. */
  compare(isa, 3u << 20, GS_DTYPE_F32, 3, 96, 1, 3, 0);
  compare(isa, 3u << 20, GS_DTYPE_BF16, 4, 32, 0, 4, GS_CODEC_RELU_MASK);
  gs__codec_isa_set(GS__ISA_AUTO);
}
END_TEST

/* Forcing a path the CPU lacks is refused, and AUTO picks a path the CPU has. */
START_TEST(test_forcing) {
  ck_assert_int_eq(gs__codec_isa_set(GS__ISA_PORTABLE), 0);
  ck_assert_int_eq(gs__codec_isa(), GS__ISA_PORTABLE);
  ck_assert_int_eq(gs__codec_isa_set(GS__ISA_AVX2), gs__avx2_supported() ? 0 : -ENOTSUP);
  ck_assert_int_eq(gs__codec_isa_set(42), -ENOTSUP);
  ck_assert_int_eq(gs__codec_isa_set(GS__ISA_AUTO), 0);
  ck_assert_int_eq(gs__codec_isa(), gs__avx2_supported() ? GS__ISA_AVX2 : GS__ISA_PORTABLE);
}
END_TEST

/* Converts the values at y[0..n) with the AVX2 lanes, 8 at a time, and checks each against
 * gs__out_finite (the portable path's and the GPU's conversion). */
static void check_out16(unsigned dtype, const float *y, size_t n) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint16_t got[8];
    gs__avx2_out16(y + i, dtype, got);
    for (unsigned e = 0; e < 8; e++)
      ck_assert_msg(got[e] == (uint16_t)gs__out_finite(y[i + e], dtype),
                    "dtype %u: %a (0x%08x) converts to 0x%04x, gs__out_finite gives 0x%04x", dtype,
                    (double)y[i + e], gs__f2u(y[i + e]), got[e], gs__out_finite(y[i + e], dtype));
  }
}

static float as_f32(unsigned dtype, uint32_t h) {
  return dtype == GS_DTYPE_F16 ? gs__f16_to_f32((uint16_t)h) : gs__bf16_to_f32((uint16_t)h);
}

/* The decode's lane conversion to fp16/bf16 (nearest-even, saturating) at every rounding boundary:
 * each finite 16-bit value, the midpoint to the next one (exact in fp32) and the fp32 values on
 * either side of it, for both signs; then overflow, inf, fp32 subnormals and random patterns. */
START_TEST(test_out16_boundaries) {
  if (!gs__avx2_supported()) {
    printf("SKIP: this CPU lacks AVX2/F16C\n");
    return;
  }
  static float y[8 * 65536];
  for (unsigned dtype = GS_DTYPE_F16; dtype <= GS_DTYPE_BF16; dtype++) {
    size_t n = 0;
    uint16_t inf = dtype == GS_DTYPE_F16 ? 0x7c00u : 0x7f80u;
    for (uint32_t h = 0; h < inf; h++) {
      float v = as_f32(dtype, h), next = as_f32(dtype, h + 1);
      float mid = v + (next - v) / 2; /* exact: one more significand bit than the 16-bit format */
      if (h + 1 == inf) mid = v + (v - as_f32(dtype, h - 1)) / 2; /* where rounding overflows */
      const float pts[4] = {v, mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY)};
      for (unsigned k = 0; k < 4; k++) y[n++] = pts[k], y[n++] = -pts[k];
    }
    check_out16(dtype, y, n);
    const float edge[16] = {INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 65504.0f, 65519.99f, 65520.0f,
                            1e6f, 1e-45f, -1e-45f, 1.1754942e-38f, 5.96e-8f, 2.98e-8f, 2.9802326e-8f,
                            0.0f, -0.0f};
    check_out16(dtype, edge, 16);
    uint64_t s = 12345 + dtype;
    for (size_t i = 0; i < GS__N(y); i++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      uint32_t u = (uint32_t)(s >> 32);
      y[i] = gs__u2f((u & 0x7f800000u) == 0x7f800000u ? u & 0xff7fffffu : u); /* finite */
    }
    check_out16(dtype, y, GS__N(y));
  }
}
END_TEST

#if defined(__x86_64__)
/* fp16 with subnormals gives the portable path's bytes with flush-to-zero and denormals-are-zero
 * set in MXCSR too (as torch.set_flush_denormal(True) does): the AVX2 path then converts fp16 in
 * software instead of with F16C, both ways. */
START_TEST(test_f16_under_ftz_daz) {
  if (!gs__avx2_supported()) {
    printf("SKIP: this CPU lacks AVX2/F16C\n");
    return;
  }
  enum { N = 4096 };
  static uint16_t src[N], out[2][N];
  for (unsigned i = 0; i < N; i++) src[i] = (uint16_t)((i * 7u) & 0x83ffu); /* subnormals, both signs */
  gs_codec_params p = {.n = N, .dtype = GS_DTYPE_F16, .bits = 8, .group = 32, .seed = 3};
  size_t size = gs_codec_size(&p);
  uint8_t *buf[2] = {malloc(size), malloc(size)};
  ck_assert(buf[0] && buf[1]);
  unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);
  for (int k = 0; k < 2; k++) {
    ck_assert_int_eq(gs__codec_isa_set(k ? GS__ISA_AVX2 : GS__ISA_PORTABLE), 0);
    ck_assert_int_eq(gs_compress_cpu(&p, src, buf[k], 1), 0);
    ck_assert_int_eq(gs_decompress_cpu(buf[k], size, out[k], &p, 1), 0);
  }
  _mm_setcsr(csr);
  gs__codec_isa_set(GS__ISA_AUTO);
  ck_assert_msg(memcmp(buf[0], buf[1], size) == 0, "fp16 under FTZ/DAZ: compressed bytes differ");
  ck_assert_msg(memcmp(out[0], out[1], sizeof(out[0])) == 0,
                "fp16 under FTZ/DAZ: decoded values differ");
  free(buf[0]), free(buf[1]);
}
END_TEST
#endif

/* One value of a set that reaches every branch of the metadata: both signs, zero, fp32 and fp16
 * subnormals, fp16/bf16 rounding boundaries, the fp16 and fp32 limits, and random magnitudes. */
static float meta_value(uint64_t *s) {
  static const float edge[] = {0.0f, -0.0f, 1e-45f, 1.1754942e-38f, 5.9604645e-8f, 2.9802322e-8f,
                               6.1035156e-5f, 1.0f, 1.0009766f, 1.0039062f, 65504.0f, 65519.996f,
                               65520.0f, 1e6f, 3.3895314e38f, 3.4028235e38f, 1.7014118e38f};
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  uint32_t r = (uint32_t)(*s >> 32);
  float v;
  if (r % 3 == 0) v = edge[(r >> 8) % GS__N(edge)];
  else if (r % 3 == 1) v = gs__u2f((r & 0x7fffffffu) % 0x7f800000u); /* any finite magnitude */
  else v = ldexpf(1.0f + (float)(r >> 12 & 0xff) / 256.0f, (int)((r >> 20) % 60) - 30);
  return (r & 0x10u) ? -v : v;
}

/* gs__meta_compute out of line: inlined into the test's assertion, gcc 12 warns (wrongly) that a
 * candidate it never reads may be uninitialized. */
static __attribute__((noinline)) void scalar_meta(float mn, float mx, int bad, unsigned bits,
                                                  gs__meta *m) {
  gs__meta_compute(mn, mx, bad, bits, m);
}

/* The four-group SIMD metadata equals gs__meta_compute field for field (values bit for bit), for
 * every width, on random pairs of those values and on min == max. */
START_TEST(test_meta4_matches_scalar) {
  if (!gs__avx2_supported()) {
    printf("SKIP: this CPU lacks AVX2/F16C\n");
    return;
  }
  uint64_t s = 99;
  for (int it = 0; it < 200000; it++) {
    float mn[4], mx[4];
    int bad[4];
    unsigned bits = 1 + (unsigned)it % 8;
    for (int g = 0; g < 4; g++) {
      float a = meta_value(&s), b = (it + g) % 5 == 0 ? a : meta_value(&s);
      mn[g] = a < b ? a : b, mx[g] = a < b ? b : a;
      bad[g] = (it + g) % 97 == 0;
    }
    gs__meta got[4];
    ck_assert_int_eq(gs__avx2_meta4(mn, mx, bad, bits, got), 0);
    for (int g = 0; g < 4; g++) {
      gs__meta want;
      scalar_meta(mn[g], mx[g], bad[g], bits, &want);
      int same = gs__f2u(got[g].minf) == gs__f2u(want.minf) &&
                 gs__f2u(got[g].stepf) == gs__f2u(want.stepf) &&
                 gs__f2u(got[g].inv) == gs__f2u(want.inv) && got[g].min_field == want.min_field &&
                 got[g].step_field == want.step_field && got[g].nonfinite == want.nonfinite;
      ck_assert_msg(same,
                    "bits %u min %a max %a bad %d: SIMD meta %04x/%04x (%a, %a, %a, %d), scalar %04x/%04x "
                    "(%a, %a, %a, %d)", bits, (double)mn[g], (double)mx[g], bad[g], got[g].min_field,
                    got[g].step_field, (double)got[g].minf, (double)got[g].stepf, (double)got[g].inv,
                    got[g].nonfinite, want.min_field, want.step_field, (double)want.minf,
                    (double)want.stepf, (double)want.inv, want.nonfinite);
    }
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("codec-isa");
  TCase *tc = tcase_create("paths");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_forcing);
  tcase_add_test(tc, test_out16_boundaries);
  tcase_add_test(tc, test_meta4_matches_scalar);
#if defined(__x86_64__)
  tcase_add_test(tc, test_f16_under_ftz_daz);
#endif
  tcase_add_loop_test(tc, test_same_bytes_as_portable, 0, (int)GS__N(isas));
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
