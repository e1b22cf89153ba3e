/* codec_avx2.c: the CPU twin's inner loops with AVX2 intrinsics, chosen at run time (codec_cpu.c).
 *
 * Same operations in the same order as the portable loops (codec_core.h): IEEE +, -, *, / on fp32
 * lanes, truncating conversions of in-range values, integer Philox; so the bytes are the same,
 * which tests/kernels checks path against path. Built for any x86_64 with a target attribute per
 * function; called only when the CPU says it has AVX2. */
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define GS__AVX2 __attribute__((target("avx2,f16c")))

/* Whether this thread's MXCSR flushes subnormals (FTZ, bit 15, or DAZ, bit 6), as
 * torch.set_flush_denormal(True) sets it. F16C's conversions and the SIMD metas are then left to
 * the software code, whose results under those modes are the reference. */
static inline int gs__flushes_subnormals(void) { return (_mm_getcsr() & 0x8040u) != 0; }

/* ---- compress ---- */

/* High and low 32 bits of the 8 lane products a * m (32 x 32 -> 64 bits). */
GS__AVX2 static inline void gs__mul_hilo(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
  __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* gs__chunk_random for the 16 chunks chunk0 .. chunk0+15 at once: lane c of r[h][w] is word w of
 * chunk chunk0+8h+c (gs__philox, a round at a time on all lanes). Two independent sets of 8 lanes
 * so that one's multiply latency hides behind the other's; sets = 1 computes only r[0]. */
GS__AVX2 static void gs__philox16(uint64_t seed, uint64_t tensor_id, uint64_t chunk0, __m256i r[2][4],
                                  int sets) {
  uint32_t lo[16], hi[16];
  for (unsigned c = 0; c < 16; c++) lo[c] = (uint32_t)(chunk0 + c), hi[c] = (uint32_t)((chunk0 + c) >> 32);
  __m256i c0[2], c1[2], c2[2], c3[2];
  _Pragma("GCC unroll 16")
  for (int h = 0; h < 2; h++) {
    if (h >= sets) break;
    c0[h] = _mm256_loadu_si256((const __m256i *)(lo + 8 * h));
    c1[h] = _mm256_loadu_si256((const __m256i *)(hi + 8 * h));
    c2[h] = _mm256_set1_epi32((int)(uint32_t)tensor_id);
    c3[h] = _mm256_set1_epi32((int)(uint32_t)(tensor_id >> 32));
  }
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  _Pragma("GCC unroll 16")
  for (int round = 0; round < 10; round++) {
    __m256i key0 = _mm256_set1_epi32((int)k0), key1 = _mm256_set1_epi32((int)k1);
    _Pragma("GCC unroll 16")
    for (int h = 0; h < sets; h++) {
      __m256i hi0, lo0, hi1, lo1;
      gs__mul_hilo(c0[h], m0, &hi0, &lo0);
      gs__mul_hilo(c2[h], m1, &hi1, &lo1);
      c0[h] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[h]), key0);
      c2[h] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[h]), key1);
      c1[h] = lo1;
      c3[h] = lo0;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  _Pragma("GCC unroll 16")
  for (int h = 0; h < sets; h++) r[h][0] = c0[h], r[h][1] = c1[h], r[h][2] = c2[h], r[h][3] = c3[h];
}

/* Transposes 8 rows of 8 floats in place: v[j] lane c becomes the old v[c] lane j. */
GS__AVX2 static inline void gs__transpose8(__m256 v[8]) {
  __m256 t[8], s[8];
  _Pragma("GCC unroll 16")
  for (int k = 0; k < 4; k++) {
    t[2 * k] = _mm256_unpacklo_ps(v[2 * k], v[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(v[2 * k], v[2 * k + 1]);
  }
  _Pragma("GCC unroll 16")
  for (int k = 0; k < 2; k++) {
    s[4 * k + 0] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    s[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    s[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    s[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  _Pragma("GCC unroll 16")
  for (int k = 0; k < 4; k++) {
    v[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
    v[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
  }
}

/* Writes the 8 packed chunks (lane c: bits 0-31 in lo, 32-63 in hi) as 8 * bits bytes. */
GS__AVX2 static inline void gs__store_chunks(uint8_t *out, __m256i lo, __m256i hi, unsigned bits) {
  if (bits == 4) {
    _mm256_storeu_si256((__m256i *)out, lo);
    return;
  }
  __m256i a = _mm256_unpacklo_epi32(lo, hi), b = _mm256_unpackhi_epi32(lo, hi); /* c0 c1 c4 c5 | c2 c3 c6 c7 */
  uint64_t v[8];
  _mm256_storeu_si256((__m256i *)v, _mm256_permute2x128_si256(a, b, 0x20));
  _mm256_storeu_si256((__m256i *)(v + 4), _mm256_permute2x128_si256(a, b, 0x31));
  /* 8-byte stores overlap the next chunks, which are written after; the last ones are stored
   * exactly so nothing beyond these 8 * bits bytes is touched (another thread may own them). */
  unsigned c = 0;
  for (; c * bits + 8 <= 8 * bits; c++) memcpy(out + c * bits, &v[c], 8);
  for (; c < 8; c++)
    for (unsigned k = 0; k < bits; k++) out[c * bits + k] = (uint8_t)(v[c] >> (8 * k));
}

/* Quantizes and packs 64 elements x[0..64) (8 chunks, random words r) of finite groups: lane c
 * (chunk c) with the meta in lane c of minf and inv (one group's, or two groups' of 32). Inlined:
 * called out of line with its two vector arguments, fp32 compress at 4 bits ran 1.5x slower. */
#define GS__INLINE inline __attribute__((always_inline))
GS__AVX2 static GS__INLINE void gs__emit64(const float *x, __m256 minf, __m256 inv,
                                           const __m256i r[4], unsigned bits, uint8_t *out) {
  __m256 v[8];
  _Pragma("GCC unroll 16")
  for (int c = 0; c < 8; c++) v[c] = _mm256_loadu_ps(x + 8 * c);
  gs__transpose8(v); /* v[j]: element j of each chunk */
  const __m256 kf = _mm256_set1_ps((float)((1u << bits) - 1u)), scale = _mm256_set1_ps(7.62939453125e-06f);
  const __m256i mask16 = _mm256_set1_epi32(0xffff), one = _mm256_set1_epi32(1);
  __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
  _Pragma("GCC unroll 16")
  for (unsigned j = 0; j < 8; j++) {
    __m256i h = _mm256_and_si256(_mm256_srli_epi32(r[j >> 1], (int)((j & 1u) * 16u)), mask16);
    __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_or_si256(_mm256_slli_epi32(h, 1), one)), scale);
    __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v[j], minf), inv), u);
    __m256i q = _mm256_cvttps_epi32(_mm256_min_ps(t, kf)); /* t < kf ? t : kf, as the twin */
    unsigned s = j * bits;
    if (s < 32) lo = _mm256_or_si256(lo, _mm256_sll_epi32(q, _mm_cvtsi32_si128((int)s)));
    if (s + bits > 32)
      hi = _mm256_or_si256(hi, s >= 32 ? _mm256_sll_epi32(q, _mm_cvtsi32_si128((int)(s - 32)))
                                       : _mm256_srl_epi32(q, _mm_cvtsi32_si128((int)(32 - s))));
  }
  gs__store_chunks(out, lo, hi, bits);
}

/* The same for the 32 elements x[0..32) (4 chunks: a group of 32, or a run's tail), through a
 * zero-padded copy so that nothing past them is read, and only their 4 chunks are written. The
 * groups of 32 that 8 bits uses (gs__group_at_bits) took the scalar path before, 2x the step
 * time of a zoo model at 8 bits. */
GS__AVX2 static void gs__emit32(const float *x, const gs__meta *m, uint64_t seed, uint64_t tid,
                                uint64_t chunk0, unsigned bits, uint8_t *out) {
  float buf[64] = {0};
  uint8_t packed[64];
  __m256i r[2][4];
  memcpy(buf, x, 32 * sizeof(float));
  gs__philox16(seed, tid, chunk0, r, 1);
  gs__emit64(buf, _mm256_set1_ps(m->minf), _mm256_set1_ps(m->inv), r[0], bits, packed);
  memcpy(out, packed, 4 * bits);
}

/* Four finite groups of 32 at x[0..128) (chunks chunk0 .. chunk0+15, metas m[0..4)): one Philox
 * call for the 16 chunks and two passes of 8 lanes, each lane with its own group's meta. */
GS__AVX2 void gs__avx2_emit_g32x4(const float *x, const gs__meta m[4], uint64_t seed, uint64_t tid,
                                  uint64_t chunk0, unsigned bits, uint8_t *out) {
  __m256i r[2][4];
  gs__philox16(seed, tid, chunk0, r, 2);
  for (int h = 0; h < 2; h++) {
    const gs__meta *a = &m[2 * h], *b = &m[2 * h + 1];
    __m256 minf = _mm256_set_m128(_mm_set1_ps(b->minf), _mm_set1_ps(a->minf)); /* lanes 0-3: a */
    __m256 inv = _mm256_set_m128(_mm_set1_ps(b->inv), _mm_set1_ps(a->inv));
    gs__emit64(x + 64 * h, minf, inv, r[h], bits, out + 8 * bits * h);
  }
}

GS__AVX2 unsigned gs__avx2_emit(const float *x, unsigned cnt, const gs__meta *m, uint64_t seed, uint64_t tid,
                       uint64_t chunk0, unsigned bits, uint8_t *out) {
  unsigned done = 0;
  if (m->nonfinite) { /* every level is 0, as in gs__quant */
    done = cnt / 64 * 64;
    memset(out, 0, done / 8 * bits);
    return done;
  }
  __m256i r[2][4];
  const __m256 minf = _mm256_set1_ps(m->minf), inv = _mm256_set1_ps(m->inv);
  while (done + 64 <= cnt) {
    gs__philox16(seed, tid, chunk0, r, done + 128 <= cnt ? 2 : 1);
    gs__emit64(x + done, minf, inv, r[0], bits, out);
    done += 64, chunk0 += 8, out += 8 * bits;
    if (done + 64 > cnt) break;
    gs__emit64(x + done, minf, inv, r[1], bits, out);
    done += 64, chunk0 += 8, out += 8 * bits;
  }
  if (done + 32 <= cnt) {
    gs__emit32(x + done, m, seed, tid, chunk0, bits, out);
    done += 32;
  }
  return done;
}

GS__AVX2 unsigned gs__avx2_signs(const float *x, unsigned nch, uint8_t *out) {
  for (unsigned c = 0; c < nch; c++) /* bit j: x[j] > 0, false for NaN, as gs__sign8 */
    out[c] = (uint8_t)_mm256_movemask_ps(
        _mm256_cmp_ps(_mm256_loadu_ps(x + 8 * c), _mm256_setzero_ps(), _CMP_GT_OQ));
  return nch;
}

GS__AVX2 int gs__avx2_f16_to_f32(const uint16_t *s, unsigned n, float *out) {
  if (gs__flushes_subnormals()) return -ENOTSUP;
  unsigned e = 0;
  for (; e + 8 <= n; e += 8)
    _mm256_storeu_ps(out + e, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + e))));
  for (; e < n; e++) out[e] = gs__f16_to_f32(s[e]);
  return 0;
}

/* Min and max over 8 lanes into lane 0 of each. */
GS__AVX2 static GS__INLINE void gs__reduce8(__m256 *lo, __m256 *hi) {
  __m256 l = _mm256_min_ps(*lo, _mm256_permute2f128_ps(*lo, *lo, 1));
  __m256 h = _mm256_max_ps(*hi, _mm256_permute2f128_ps(*hi, *hi, 1));
  l = _mm256_min_ps(l, _mm256_shuffle_ps(l, l, 0x4e));
  h = _mm256_max_ps(h, _mm256_shuffle_ps(h, h, 0x4e));
  *lo = _mm256_min_ps(l, _mm256_shuffle_ps(l, l, 0xb1));
  *hi = _mm256_max_ps(h, _mm256_shuffle_ps(h, h, 0xb1));
}

/* Min, max and "holds Inf/NaN" of the four groups of 32 at x[0..128). Only the metas read them:
 * min and max are exact, so the order they are taken in changes nothing but the sign of a zero,
 * which gs__meta_compute folds; a group with Inf/NaN is flagged whatever its min and max. */
GS__AVX2 void gs__avx2_minmax_g32x4(const float *x, float mn[4], float mx[4], int bad[4]) {
  const __m256i expo = _mm256_set1_epi32(0x7f800000);
  for (int g = 0; g < 4; g++) {
    __m256 lo = _mm256_loadu_ps(x + 32 * g), hi = lo;
    __m256i b = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(lo), expo), expo);
    for (int c = 1; c < 4; c++) {
      __m256 v = _mm256_loadu_ps(x + 32 * g + 8 * c);
      lo = _mm256_min_ps(v, lo);
      hi = _mm256_max_ps(v, hi);
      __m256i e = _mm256_and_si256(_mm256_castps_si256(v), expo);
      b = _mm256_or_si256(b, _mm256_cmpeq_epi32(e, expo));
    }
    gs__reduce8(&lo, &hi);
    mn[g] = _mm256_cvtss_f32(lo);
    mx[g] = _mm256_cvtss_f32(hi);
    bad[g] = !_mm256_testz_si256(b, b);
  }
}

/* ---- group metadata, four groups at a time ---- */

/* fp16/bf16 patterns (in 32-bit lanes) of finite x rounded down (down) or up, and their values:
 * fp16 with F16C, bf16 on the bits (gs__f32_to_bf16: away from zero when bits are dropped and the
 * sign is the direction's). */
GS__AVX2 static GS__INLINE __m128i gs__round16x4(__m128 x, int is_bf16, int down, __m128 *value) {
  if (!is_bf16) {
    __m128i h = down ? _mm_cvtps_ph(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
                     : _mm_cvtps_ph(x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    *value = _mm_cvtph_ps(h);
    return _mm_cvtepu16_epi32(h);
  }
  __m128i u = _mm_castps_si128(x), zero = _mm_setzero_si128();
  __m128i neg = _mm_cmplt_epi32(u, zero);
  __m128i dropped = _mm_xor_si128(_mm_cmpeq_epi32(_mm_and_si128(u, _mm_set1_epi32(0xffff)), zero),
                                  _mm_set1_epi32(-1));
  __m128i away = _mm_and_si128(dropped, down ? neg : _mm_xor_si128(neg, _mm_set1_epi32(-1)));
  __m128i h = _mm_sub_epi32(_mm_srli_epi32(u, 16), away); /* away is -1 where it rounds away */
  *value = _mm_castsi128_ps(_mm_slli_epi32(h, 16));
  return h;
}

/* gs__meta_try in 4 lanes: the lanes where the candidate format represents the group (all ones),
 * with its min and step as values (mf, sf) and fields (mb, sb). */
GS__AVX2 static GS__INLINE __m128i gs__meta_try4(__m128 mn, __m128 mx, __m128 k, int is_bf16,
                                                 __m128 *mf, __m128 *sf, __m128i *mb, __m128i *sb) {
  const __m128i expo = _mm_set1_epi32(0x7f800000);
  *mb = gs__round16x4(mn, is_bf16, 1, mf);
  __m128i ok = _mm_cmplt_epi32(_mm_and_si128(_mm_castps_si128(*mf), expo), expo); /* finite */
  __m128 d = _mm_sub_ps(mx, *mf);
  ok = _mm_and_si128(ok, _mm_castps_si128(_mm_cmp_ps(d, _mm_set1_ps(GS_FMT_RANGE_LIMIT), _CMP_LE_OQ)));
  __m128 pos = _mm_cmp_ps(d, _mm_setzero_ps(), _CMP_GT_OQ);
  __m128 st = _mm_div_ps(d, k), floor = _mm_set1_ps(GS_FMT_STEP_FLOOR);
  st = _mm_blendv_ps(st, floor, _mm_cmp_ps(st, floor, _CMP_LT_OQ));
  __m128 sv;
  __m128i sbits = gs__round16x4(st, is_bf16, 0, &sv);
  __m128i sfinite = _mm_cmplt_epi32(_mm_and_si128(_mm_castps_si128(sv), expo), expo);
  __m128i flat = _mm_castps_si128(_mm_cmp_ps(d, _mm_setzero_ps(), _CMP_NGT_UQ)); /* no step */
  ok = _mm_and_si128(ok, _mm_or_si128(sfinite, flat));
  *sf = _mm_and_ps(sv, pos);
  *sb = _mm_and_si128(sbits, _mm_castps_si128(pos));
  return ok;
}

GS__AVX2 int gs__avx2_meta4(const float mn[4], const float mx[4], const int bad[4], unsigned bits,
                            gs__meta m[4]) {
  if (gs__flushes_subnormals()) return -ENOTSUP;
  const __m128 zero = _mm_setzero_ps(), k = _mm_set1_ps((float)((1u << bits) - 1u));
  /* -0 -> +0, as gs__meta_compute */
  __m128 lo = _mm_add_ps(_mm_loadu_ps(mn), zero), hi = _mm_add_ps(_mm_loadu_ps(mx), zero);
  __m128i good = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)bad), _mm_setzero_si128());
  __m128 mfa, sfa, mfb, sfb;
  __m128i mba, sba, mbb, sbb;
  __m128i ok_a = _mm_and_si128(good, gs__meta_try4(lo, hi, k, 0, &mfa, &sfa, &mba, &sba));
  __m128i ok_b = _mm_and_si128(good, gs__meta_try4(lo, hi, k, 1, &mfb, &sfb, &mbb, &sbb));
  /* The smaller step wins; ties: the larger min, then fp16 (gs__meta_compute). */
  __m128 tie = _mm_and_ps(_mm_cmp_ps(sfb, sfa, _CMP_EQ_OQ), _mm_cmp_ps(mfb, mfa, _CMP_GT_OQ));
  __m128 better = _mm_or_ps(_mm_cmp_ps(sfb, sfa, _CMP_LT_OQ), tie);
  __m128i pick_b = _mm_and_si128(ok_b, _mm_or_si128(_mm_xor_si128(ok_a, _mm_set1_epi32(-1)),
                                                     _mm_castps_si128(better)));
  float minf[4], stepf[4], inv[4];
  uint32_t mfield[4], sfield[4], okv[4];
  __m128 sf = _mm_blendv_ps(sfa, sfb, _mm_castsi128_ps(pick_b));
  _mm_storeu_ps(minf, _mm_blendv_ps(mfa, mfb, _mm_castsi128_ps(pick_b)));
  _mm_storeu_ps(stepf, sf);
  _mm_storeu_ps(inv, _mm_and_ps(_mm_div_ps(_mm_set1_ps(1.0f), sf), _mm_cmp_ps(sf, zero, _CMP_GT_OQ)));
  _mm_storeu_si128((__m128i *)mfield, _mm_blendv_epi8(mba, mbb, pick_b));
  __m128i bf16_flag = _mm_and_si128(pick_b, _mm_set1_epi32(GS_FMT_STEP_BF16));
  _mm_storeu_si128((__m128i *)sfield, _mm_or_si128(_mm_blendv_epi8(sba, sbb, pick_b), bf16_flag));
  _mm_storeu_si128((__m128i *)okv, _mm_or_si128(ok_a, ok_b));
  for (int g = 0; g < 4; g++) {
    if (!okv[g]) {
      gs__meta_flagged(&m[g]);
      continue;
    }
    m[g].minf = minf[g], m[g].stepf = stepf[g], m[g].inv = inv[g];
    m[g].min_field = (uint16_t)mfield[g], m[g].step_field = (uint16_t)sfield[g];
    m[g].nonfinite = 0;
  }
  return 0;
}

/* gs__minmax of codec_cpu.c: the same 8 lanes (element e in lane e % 8), the same compare-select
 * (min_ps(v, lo) is v < lo ? v : lo), the same reduction order, so the same min and max. */
GS__AVX2 int gs__avx2_minmax(const float *x, unsigned cnt, float *mn, float *mx) {
  __m256 lo = _mm256_set1_ps(*mn), hi = _mm256_set1_ps(*mx);
  const __m256i expo = _mm256_set1_epi32(0x7f800000);
  __m256i bad = _mm256_setzero_si256();
  unsigned e = 0;
  for (; e + 8 <= cnt; e += 8) {
    __m256 v = _mm256_loadu_ps(x + e);
    lo = _mm256_min_ps(v, lo);
    hi = _mm256_max_ps(v, hi);
    __m256i ex = _mm256_and_si256(_mm256_castps_si256(v), expo);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(ex, expo));
  }
  float l[8], h[8];
  _mm256_storeu_ps(l, lo);
  _mm256_storeu_ps(h, hi);
  int anybad = !_mm256_testz_si256(bad, bad);
  for (unsigned k = 0; e + k < cnt; k++) {
    float v = x[e + k];
    l[k] = v < l[k] ? v : l[k];
    h[k] = v > h[k] ? v : h[k];
    anybad |= (gs__f2u(v) & 0x7f800000u) == 0x7f800000u;
  }
  for (unsigned k = 1; k < 8; k++) {
    l[0] = l[k] < l[0] ? l[k] : l[0];
    h[0] = h[k] > h[0] ? h[k] : h[0];
  }
  *mn = l[0];
  *mx = h[0];
  return anybad;
}

/* ---- decompress ---- */

/* The levels of one chunk (8 bytes read at in; bits of them are its own) in 8 lanes. */
GS__AVX2 static inline __m256i gs__levels(const uint8_t *in, unsigned bits, __m256i shifts_lo,
                                          __m256i shifts_hi, __m256i mask) {
  uint64_t v;
  memcpy(&v, in, 8);
  __m256i w = _mm256_set1_epi64x((long long)v);
  __m256i a = _mm256_srlv_epi64(w, shifts_lo), b = _mm256_srlv_epi64(w, shifts_hi);
  /* Low dwords of a (elements 0-3) and b (4-7), in order. */
  __m256i ab = _mm256_blend_epi32(a, _mm256_slli_epi64(b, 32), 0xAA); /* 0 4 1 5 | 2 6 3 7 */
  ab = _mm256_permutevar8x32_epi32(ab, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  (void)bits;
  return _mm256_and_si256(ab, mask);
}

/* gs__out_finite(y, dtype) for fp16/bf16 in 8 lanes, y finite or an overflow's inf (never NaN):
 * nearest-even, a finite y that rounds to inf saturated to the largest finite value. bf16 rounds
 * on the bits; fp16 takes F16C's conversion with nearest-even in the instruction (MXCSR's rounding
 * field unused; never called while the thread flushes subnormals, see gs__avx2_decode).
 * tests/kernels check-codec-isa proves both equal to gs__out_finite at every rounding boundary. */
GS__AVX2 static GS__INLINE __m128i gs__out16x8(__m256 y, unsigned dtype) {
  __m256i u = _mm256_castps_si256(y), a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  __m256i finite32 = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7f800000), a);
  __m128i finite =
      _mm_packs_epi32(_mm256_castsi256_si128(finite32), _mm256_extracti128_si256(finite32, 1));
  __m128i h;
  if (dtype == GS_DTYPE_BF16) {
    /* Adding under 2^16 to a value at most inf's pattern never carries into the sign. */
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd);
    __m256i hs = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
    h = _mm_packus_epi32(_mm256_castsi256_si128(hs), _mm256_extracti128_si256(hs, 1));
  } else {
    h = _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  uint16_t top = dtype == GS_DTYPE_BF16 ? 0x7f7fu : 0x7bffu;
  __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  __m128i sat = _mm_min_epu16(mag, _mm_set1_epi16((short)top));
  return _mm_or_si128(_mm_andnot_si128(_mm_set1_epi16(0x7fff), h), _mm_blendv_epi8(mag, sat, finite));
}

GS__AVX2 void gs__avx2_out16(const float y[8], unsigned dtype, uint16_t out[8]) {
  _mm_storeu_si128((__m128i *)out, gs__out16x8(_mm256_loadu_ps(y), dtype));
}

/* Lane e all ones where bit e of the sign byte is set (the element was > 0), 32- or 16-bit lanes. */
GS__AVX2 static GS__INLINE __m256i gs__sign_lanes32(unsigned byte) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)byte), bit), bit);
}
GS__AVX2 static GS__INLINE __m128i gs__sign_lanes16(unsigned byte) {
  const __m128i bit = _mm_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm_cmpeq_epi16(_mm_and_si128(_mm_set1_epi16((short)byte), bit), bit);
}

/* Chunks [0, nch) of a finite group's data at in, 8 readable bytes at each chunk's start. Every
 * lane is min + (float)q * step, as gs__dequant, then fp32 as is or fp16/bf16 rounded in the lanes
 * (faster than a gather from a table of the group's levels). With a sign plane (signs: one byte
 * per chunk), gs__sign_apply in the lanes: an element that was > 0 keeps a value > 0 (else the
 * tiny one), any other is +0. Inlined once per dtype. */
GS__AVX2 static GS__INLINE void gs__decode_as(const uint8_t *in, const uint8_t *signs, uint64_t nch,
                                              unsigned bits, const gs__meta *m, unsigned dtype,
                                              void *out) {
  __m256i shifts_lo = _mm256_setr_epi64x(0, bits, 2 * bits, 3 * bits);
  __m256i shifts_hi = _mm256_setr_epi64x(4 * bits, 5 * bits, 6 * bits, 7 * bits);
  __m256i mask = _mm256_set1_epi32((int)((1u << bits) - 1u));
  const __m256 minf = _mm256_set1_ps(m->minf), stepf = _mm256_set1_ps(m->stepf);
  for (uint64_t c = 0; c < nch; c++) {
    __m256i q = gs__levels(in + c * bits, bits, shifts_lo, shifts_hi, mask);
    __m256 x = _mm256_add_ps(minf, _mm256_mul_ps(_mm256_cvtepi32_ps(q), stepf));
    if (dtype == GS_DTYPE_F32) {
      __m256i y = _mm256_castps_si256(x);
      if (signs) {
        __m256i on = _mm256_blendv_epi8(_mm256_set1_epi32((int)gs__sign_tiny(dtype)), y,
                                        _mm256_cmpgt_epi32(y, _mm256_setzero_si256()));
        y = _mm256_and_si256(on, gs__sign_lanes32(signs[c]));
      }
      _mm256_storeu_si256((__m256i *)((float *)out + c * 8), y);
      continue;
    }
    __m128i y = gs__out16x8(x, dtype);
    if (signs) {
      __m128i on = _mm_blendv_epi8(_mm_set1_epi16((short)gs__sign_tiny(dtype)), y,
                                   _mm_cmpgt_epi16(y, _mm_setzero_si128()));
      y = _mm_and_si128(on, gs__sign_lanes16(signs[c]));
    }
    _mm_storeu_si128((__m128i *)((uint16_t *)out + c * 8), y);
  }
}

GS__AVX2 uint64_t gs__avx2_decode(const uint8_t *in, const uint8_t *signs, uint64_t nch,
                                  unsigned bits, const gs__meta *m, unsigned dtype, void *out) {
  if (dtype == GS_DTYPE_F32) gs__decode_as(in, signs, nch, bits, m, GS_DTYPE_F32, out);
  else if (dtype == GS_DTYPE_BF16) gs__decode_as(in, signs, nch, bits, m, GS_DTYPE_BF16, out);
  else if (gs__flushes_subnormals()) return 0;
  else gs__decode_as(in, signs, nch, bits, m, GS_DTYPE_F16, out);
  return nch;
}

int gs__avx2_supported(void) {
  __builtin_cpu_init(); /* needed if the first codec call runs in some library's constructor */
  /* CPU and OS (YMM state enabled); F16C came with or before AVX2 on every x86 that has both. */
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
}

#else

int gs__avx2_supported(void) { return 0; }
unsigned gs__avx2_emit(const float *x, unsigned cnt, const gs__meta *m, uint64_t seed, uint64_t tid,
                       uint64_t chunk0, unsigned bits, uint8_t *out) {
  (void)x, (void)cnt, (void)m, (void)seed, (void)tid, (void)chunk0, (void)bits, (void)out;
  return 0;
}
int gs__avx2_minmax(const float *x, unsigned cnt, float *mn, float *mx) {
  (void)x, (void)cnt, (void)mn, (void)mx;
  return -1;
}
int gs__avx2_meta4(const float mn[4], const float mx[4], const int bad[4], unsigned bits,
                   gs__meta m[4]) {
  (void)mn, (void)mx, (void)bad, (void)bits, (void)m;
  return -ENOTSUP;
}
void gs__avx2_minmax_g32x4(const float *x, float mn[4], float mx[4], int bad[4]) {
  (void)x, (void)mn, (void)mx, (void)bad;
}
void gs__avx2_out16(const float y[8], unsigned dtype, uint16_t out[8]) {
  (void)y, (void)dtype, (void)out;
}
int gs__avx2_f16_to_f32(const uint16_t *s, unsigned n, float *out) {
  (void)s, (void)n, (void)out;
  return -ENOTSUP;
}
unsigned gs__avx2_signs(const float *x, unsigned nch, uint8_t *out) {
  (void)x, (void)nch, (void)out;
  return 0;
}
void gs__avx2_emit_g32x4(const float *x, const gs__meta m[4], uint64_t seed, uint64_t tid,
                         uint64_t chunk0, unsigned bits, uint8_t *out) {
  (void)x, (void)m, (void)seed, (void)tid, (void)chunk0, (void)bits, (void)out;
}
uint64_t gs__avx2_decode(const uint8_t *in, const uint8_t *signs, uint64_t nch, unsigned bits,
                         const gs__meta *m, unsigned dtype, void *out) {
  (void)in, (void)signs, (void)nch, (void)bits, (void)m, (void)dtype, (void)out;
  return 0;
}

#endif
