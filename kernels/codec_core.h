/* codec_core.h: per-element and per-group codec arithmetic shared by the CPU twin and the CUDA
 * kernels, so that both produce identical bytes by construction (see docs/codec-format.md). */
#ifndef GS_CODEC_CORE_H
#define GS_CODEC_CORE_H

#include <stdint.h>

/* One definition for host and device. Only IEEE correctly rounded +, -, *, / are used and the
 * build forbids contraction (-ffp-contract=off, nvcc -fmad=false), so results match bit for bit.
 * Float conversions are integer bit manipulation: no intrinsic, no library call. */
#if defined(__CUDACC__)
#define GS_HD static __forceinline__ __host__ __device__
#else
#define GS_HD static inline
#endif

#define GS_FMT_MAGIC 0x31515347u /* "GSQ1" little-endian */
#define GS_FMT_VERSION 1u
#define GS_FMT_HEADER_BYTES 32u
#define GS_FMT_META_BYTES 4u
#define GS_FMT_MAX_N (1ull << 48)
#define GS_FMT_STEP_BF16 0x8000u   /* bit 15 of the step field: min and step are bf16 */
#define GS_FMT_NONFINITE 0x7fffu   /* step field of a group holding Inf/NaN (an fp16 NaN) */
#define GS_FMT_RANGE_LIMIT 1.7014118346046923e38f /* 2^127: wider groups are not representable */
#define GS_FMT_STEP_FLOOR 7.52316384526264e-37f   /* 2^-120: keeps 1/step finite */
#define GS_FMT_FLAG_RELU 1u /* header flags: a sign plane follows the packed data */
#define GS_FMT_FLAGS_KNOWN GS_FMT_FLAG_RELU
#define GS_FMT_REPORT_READY 0x80000000u /* = GS_CODEC_REPORT_READY (gactshim.h) */

/* Header, little-endian, at offset 0 of every buffer. `check` covers bytes 0..11 and 16..23;
 * `nonfinite` (how many groups were flagged) is written last, by atomics on the GPU. */
typedef struct gs__header {
  uint32_t magic;
  uint8_t version, dtype, bits, flags;
  uint32_t group;
  uint32_t check;
  uint64_t n;
  uint32_t nonfinite;
  uint32_t reserved1;
} gs__header;

/* Kernel parameters, passed by value through cuLaunchKernel; layout shared with gpu.c. */
typedef struct gs__kparams {
  uint64_t src, dst; /* device pointers */
  uint64_t n, seed, tensor_id;
  uint64_t meta_off, data_off, mask_off; /* byte offsets in the compressed buffer */
  uint64_t ngroups;
  uint64_t report; /* gs_codec_params.report: host-mapped uint32 for the count, or 0 */
  uint32_t group, bits, dtype, check, flags, pad;
} gs__kparams;

/* Group meta decoded to fp32. */
typedef struct gs__meta {
  float minf, stepf, inv;
  uint16_t min_field, step_field;
  int nonfinite;
} gs__meta;

GS_HD uint32_t gs__f2u(float f) {
  union { float f; uint32_t u; } v;
  v.f = f;
  return v.u;
}
GS_HD float gs__u2f(uint32_t u) {
  union { float f; uint32_t u; } v;
  v.u = u;
  return v.f;
}
GS_HD int gs__isfinite_bits(uint32_t u) { return (u & 0x7f800000u) != 0x7f800000u; }

/* ---- Philox4x32-10 (Salmon et al., SC'11): 4x32-bit counter, 2x32-bit key. ---- */
/* High half of a 32x32-bit product: one mul.hi on the device (a 64-bit product costs several). */
GS_HD uint32_t gs__mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return (uint32_t)(((uint64_t)a * b) >> 32);
#endif
}

GS_HD void gs__philox(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++) {
    uint32_t h0 = gs__mulhi(0xD2511F53u, c[0]), l0 = 0xD2511F53u * c[0];
    uint32_t h1 = gs__mulhi(0xCD9E8D57u, c[2]), l1 = 0xCD9E8D57u * c[2];
    uint32_t n0 = h1 ^ c[1] ^ k0;
    uint32_t n2 = h0 ^ c[3] ^ k1;
    c[1] = l1;
    c[3] = l0;
    c[0] = n0;
    c[2] = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

/* The 8 rounding offsets of chunk `chunk` (elements chunk*8 .. chunk*8+7): one Philox call keyed
 * by seed, counter (chunk, tensor_id); element j takes 16 bits, u = (r + 1/2) / 2^16 in (0,1). */
GS_HD void gs__chunk_random(uint64_t seed, uint64_t tensor_id, uint64_t chunk, uint32_t r[4]) {
  r[0] = (uint32_t)chunk;
  r[1] = (uint32_t)(chunk >> 32);
  r[2] = (uint32_t)tensor_id;
  r[3] = (uint32_t)(tensor_id >> 32);
  gs__philox(r, (uint32_t)seed, (uint32_t)(seed >> 32));
}
GS_HD float gs__uniform(const uint32_t r[4], unsigned j) {
  uint32_t h = (r[j >> 1] >> ((j & 1u) * 16u)) & 0xffffu;
  /* (2h+1) * 2^-17 exactly, without an int-to-float conversion (a quarter-rate instruction on a
   * GPU): 1 + (2h+1)*2^-17 has that fraction field, and subtracting 1 is exact. */
  return gs__u2f(0x3f800000u | (h << 7) | 0x40u) - 1.0f;
}

/* ---- 16-bit float conversions. mode: 0 nearest-even, 1 toward -Inf, 2 toward +Inf. ---- */
enum { GS_RN = 0, GS_RD = 1, GS_RU = 2 };

GS_HD int gs__round_away(uint32_t sign, uint32_t rem, uint32_t half, uint32_t lsb, int mode) {
  if (rem == 0) return 0;
  if (mode == GS_RN) return rem > half || (rem == half && lsb);
  return (mode == GS_RU) ? !sign : sign != 0;
}

GS_HD float gs__f16_to_f32(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 31) return gs__u2f(s | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (m == 0) return gs__u2f(s);
    e = 113; /* normalise the subnormal: value = m * 2^-24 */
    while (!(m & 0x400u)) {
      m <<= 1;
      e--;
    }
    return gs__u2f(s | (e << 23) | ((m & 0x3ffu) << 13));
  }
  return gs__u2f(s | ((e + 112) << 23) | (m << 13));
}

GS_HD uint16_t gs__f32_to_f16(float f, int mode) {
  uint32_t u = gs__f2u(f), s = u >> 31, a = u & 0x7fffffffu;
  uint16_t sh = (uint16_t)(s << 15);
  if (a >= 0x7f800000u) return (uint16_t)(sh | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (a == 0) return sh;
  int e = (int)(a >> 23) - 127;
  uint32_t m = (a & 0x7fffffu) | 0x800000u;
  if ((a >> 23) == 0) { /* fp32 subnormal: far below the fp16 range */
    m = a & 0x7fffffu;
    e = -126;
  }
  if (e > 15) /* beyond 65504 + ulp: max finite, then rounded as if a remainder remained */
    return (uint16_t)(sh | (0x7bffu + (uint32_t)gs__round_away(s, 2, 1, 1, mode)));
  uint32_t shift = e >= -14 ? 13u : (uint32_t)(13 - 14 - e);
  uint32_t base = e >= -14 ? (uint32_t)(e + 14) << 10 : 0u;
  uint32_t trunc, rem, half;
  if (shift > 25) {
    trunc = 0;
    rem = 1;
    half = 2;
  } else {
    trunc = m >> shift;
    rem = m & ((1u << shift) - 1u);
    half = 1u << (shift - 1u);
  }
  uint32_t h = base + trunc;
  h += (uint32_t)gs__round_away(s, rem, half, h & 1u, mode);
  return (uint16_t)(sh | h);
}

GS_HD float gs__bf16_to_f32(uint16_t h) { return gs__u2f((uint32_t)h << 16); }

GS_HD uint16_t gs__f32_to_bf16(float f, int mode) {
  uint32_t u = gs__f2u(f), s = u >> 31, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)((s << 15) | 0x7fc0u);
  uint32_t h = a >> 16;
  h += (uint32_t)gs__round_away(s, a & 0xffffu, 0x8000u, h & 1u, mode);
  return (uint16_t)((s << 15) | h);
}

/* ---- The conversions the kernels do with one instruction where it rounds identically. ----
 * On the device: cvt.rm/.rp/.rn.f16.f32 (IEEE 754 directed/nearest-even rounding, subnormals kept:
 * no .ftz), cvt.f32.f16 (exact), cvt.rn.bf16.f32 (sm_80+), saturated by an integer min. Elsewhere:
 * the twin's integer code, or the emulator's model of the instruction (GS_CVT_MODEL_*). They agree
 * on every finite input: tests/kernels/check-hwround.c proves the twin's code equal to a model of
 * the rounding the PTX ISA documents, on all 2^16 patterns and the boundaries between them. NaN
 * never reaches them except in the output conversions, which keep the twin's NaN pattern. */
GS_HD uint16_t gs__cvt_f16(float f, int mode) {
#if defined(__CUDA_ARCH__)
  unsigned short h;
  if (mode == GS_RD) asm("cvt.rm.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  else if (mode == GS_RU) asm("cvt.rp.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  else asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#elif defined(GS_CVT_MODEL_F16)
  return GS_CVT_MODEL_F16(f, mode);
#else
  return gs__f32_to_f16(f, mode);
#endif
}

GS_HD float gs__cvt_f16_to_f32(uint16_t h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#elif defined(GS_CVT_MODEL_F16_TO_F32)
  return GS_CVT_MODEL_F16_TO_F32(h);
#else
  return gs__f16_to_f32(h);
#endif
}

GS_HD uint16_t gs__cvt_bf16_rn(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  unsigned short h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#elif defined(GS_CVT_MODEL_BF16) && !defined(GS_EMU_PRE_SM80) /* older GPUs: the integer code */
  return GS_CVT_MODEL_BF16(f, GS_RN);
#else
  return gs__f32_to_bf16(f, GS_RN);
#endif
}

/* Output conversions of decoded values: nearest-even, saturating, since a decoded value of a
 * finite group must stay finite. NaN (a flagged group) gives the twin's quiet NaN. */
GS_HD uint16_t gs__out_f16(float f) {
  uint32_t u = gs__f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16 & 0x8000u) | 0x7e00u);
  uint16_t h = gs__cvt_f16(f, GS_RN), a = (uint16_t)(h & 0x7fffu);
  if (a == 0x7c00u && gs__isfinite_bits(u)) h = (uint16_t)((h & 0x8000u) | 0x7bffu);
  return h;
}
GS_HD uint16_t gs__out_bf16(float f) {
  uint32_t u = gs__f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16 & 0x8000u) | 0x7fc0u);
  uint16_t h = gs__cvt_bf16_rn(f);
  if ((h & 0x7fffu) == 0x7f80u && gs__isfinite_bits(u)) h = (uint16_t)((h & 0x8000u) | 0x7f7fu);
  return h;
}

/* Output pattern of y (DT 0 f32, 1 f16, 2 bf16) for a group that is not flagged: the same bits
 * as gs__out_f16/gs__out_bf16, without their NaN branch (y is never NaN here: min16, step16 and
 * the level are finite) and with the saturation as a select, so the decode loop has no branch. */
GS_HD uint32_t gs__out_finite(float y, unsigned dt) {
  uint32_t u = gs__f2u(y);
  if (dt == 0) return u;
  uint32_t h = dt == 1 ? gs__cvt_f16(y, GS_RN) : gs__cvt_bf16_rn(y);
  uint32_t top = dt == 1 ? 0x7bffu : 0x7f7fu, mag = h & 0x7fffu;
  uint32_t sat = mag < top ? mag : top; /* inf -> max finite, when y itself is finite */
  return (h & 0x8000u) | (gs__isfinite_bits(u) ? sat : mag);
}

/* gs__out_finite for a y known to be finite, saturated before the conversion instead of after:
 * every finite y beyond the format's largest finite value rounds (nearest-even) to it or to Inf,
 * and gs__out_finite turns that Inf back into it, so clamping first gives the same pattern in two
 * instructions (max, min) instead of five. Not for Inf, which gs__out_finite keeps. check-hwround
 * proves the two equal on every rounding boundary of both formats. */
GS_HD uint32_t gs__out_sat(float y, unsigned dt) {
  if (dt == 0) return gs__f2u(y);
  const float top = dt == 1 ? 65504.0f : 3.3895313892515355e38f; /* 0x7bff, 0x7f7f */
#if defined(__CUDA_ARCH__)
  asm("max.f32 %0, %0, %1;\n\tmin.f32 %0, %0, %2;" : "+f"(y) : "f"(-top), "f"(top));
#else
  y = y < -top ? -top : y > top ? top : y; /* -0 stays -0, as with max.f32/min.f32 */
#endif
  return dt == 1 ? gs__cvt_f16(y, GS_RN) : gs__cvt_bf16_rn(y);
}

/* Input element i of a tensor of dtype 0/1/2 as fp32 (exact). */
GS_HD float gs__load(const void *src, uint64_t i, unsigned dtype) {
  if (dtype == 0) return ((const float *)src)[i];
  uint16_t h = ((const uint16_t *)src)[i];
  return dtype == 1 ? gs__cvt_f16_to_f32(h) : gs__bf16_to_f32(h);
}

/* ---- Per-group meta. ---- */

/* One candidate format (is_bf16): min rounded down, step = (max - min16)/k rounded up. Returns 0
 * if the format cannot represent this group. */
GS_HD int gs__meta_try(float mn, float mx, float k, int is_bf16, gs__meta *m) {
  uint16_t mb = is_bf16 ? gs__f32_to_bf16(mn, GS_RD) : gs__cvt_f16(mn, GS_RD);
  float mf = is_bf16 ? gs__bf16_to_f32(mb) : gs__cvt_f16_to_f32(mb);
  if (!gs__isfinite_bits(gs__f2u(mf))) return 0;
  float d = mx - mf;
  if (!(d <= GS_FMT_RANGE_LIMIT)) return 0;
  uint16_t sb = 0;
  float sf = 0.0f;
  if (d > 0.0f) {
    float s = d / k;
    if (s < GS_FMT_STEP_FLOOR) s = GS_FMT_STEP_FLOOR;
    sb = is_bf16 ? gs__f32_to_bf16(s, GS_RU) : gs__cvt_f16(s, GS_RU);
    sf = is_bf16 ? gs__bf16_to_f32(sb) : gs__cvt_f16_to_f32(sb);
    if (!gs__isfinite_bits(gs__f2u(sf))) return 0;
  }
  m->minf = mf;
  m->stepf = sf;
  m->inv = sf > 0.0f ? 1.0f / sf : 0.0f;
  m->min_field = mb;
  m->step_field = (uint16_t)(sb | (is_bf16 ? GS_FMT_STEP_BF16 : 0u));
  m->nonfinite = 0;
  return 1;
}

GS_HD void gs__meta_flagged(gs__meta *m) {
  m->minf = m->stepf = m->inv = 0.0f;
  m->min_field = 0;
  m->step_field = GS_FMT_NONFINITE;
  m->nonfinite = 1;
}

/* Meta of a group from its min and max (canonical: -0 folded to +0) and whether it held Inf/NaN.
 * Per group the format with the smaller step wins (ties: the larger min, then fp16). */
GS_HD void gs__meta_compute(float mn, float mx, int nonfinite, unsigned bits, gs__meta *m) {
  gs__meta a, b;
  float k = (float)((1u << bits) - 1u);
  mn = mn + 0.0f;
  mx = mx + 0.0f;
  int ok_a = !nonfinite && gs__meta_try(mn, mx, k, 0, &a);
  int ok_b = !nonfinite && gs__meta_try(mn, mx, k, 1, &b);
  if (ok_a && ok_b) {
    int pick_b = b.stepf < a.stepf || (b.stepf == a.stepf && b.minf > a.minf);
    *m = pick_b ? b : a;
  } else if (ok_a) {
    *m = a;
  } else if (ok_b) {
    *m = b;
  } else {
    gs__meta_flagged(m);
  }
}

/* Meta as read back from a buffer; a non-finite min or step (the flag, or corruption) makes the
 * whole group decode to NaN. */
GS_HD void gs__meta_decode(uint16_t min_field, uint16_t step_field, gs__meta *m) {
  int is_bf16 = (step_field & GS_FMT_STEP_BF16) != 0;
  uint16_t sb = (uint16_t)(step_field & 0x7fffu);
  m->minf = is_bf16 ? gs__bf16_to_f32(min_field) : gs__cvt_f16_to_f32(min_field);
  m->stepf = is_bf16 ? gs__bf16_to_f32(sb) : gs__cvt_f16_to_f32(sb);
  m->inv = 0.0f;
  m->min_field = min_field;
  m->step_field = step_field;
  m->nonfinite = !gs__isfinite_bits(gs__f2u(m->minf)) || !gs__isfinite_bits(gs__f2u(m->stepf));
}

/* Quantization level of x: floor((x - min) * (1/step) + u) clamped to [0, kmax]. In a finite
 * group x >= min16, so t > 0 and truncation is floor; branch-free so loops vectorize. */
GS_HD uint32_t gs__quant(float x, const gs__meta *m, float u, uint32_t kmax) {
  float t = (x - m->minf) * m->inv;
  t = t + u;
  float kf = (float)kmax;
  t = t < kf ? t : kf;
  int32_t q = (int32_t)t;
  return m->nonfinite ? 0u : (uint32_t)q;
}

/* (float)q for q < 2^23, exactly, without an int-to-float conversion: 2^23 + q minus 2^23. */
GS_HD float gs__level_f32(uint32_t q) { return gs__u2f(0x4b000000u | q) - 8388608.0f; }

GS_HD float gs__dequant(uint32_t q, const gs__meta *m) {
  if (m->nonfinite) return gs__u2f(0x7fc00000u);
  float v = gs__level_f32(q) * m->stepf;
  return m->minf + v;
}

/* Non-finite test on fp32 bits: exponent all ones. */
GS_HD int gs__nonfinite(float x) { return !gs__isfinite_bits(gs__f2u(x)); }

/* Header check word: FNV-1a over the fields it covers. */
GS_HD uint32_t gs__header_word1(uint32_t dtype, uint32_t bits, uint32_t flags) {
  return GS_FMT_VERSION | (dtype << 8) | (bits << 16) | (flags << 24);
}
GS_HD uint32_t gs__header_check(uint8_t dtype, uint8_t bits, uint8_t flags, uint32_t group,
                                uint64_t n) {
  uint32_t h = 2166136261u;
  uint32_t w[5] = {GS_FMT_MAGIC, gs__header_word1(dtype, bits, flags), group, (uint32_t)n,
                   (uint32_t)(n >> 32)};
  for (int i = 0; i < 5; i++)
    for (int b = 0; b < 4; b++) {
      h ^= (w[i] >> (8 * b)) & 0xffu;
      h *= 16777619u;
    }
  return h;
}

/* ---- ReLU sign plane (GS_FMT_FLAG_RELU): one byte per chunk, bit j = (x_j > 0). ---- */
GS_HD uint32_t gs__sign8(const float x[8], unsigned cnt) {
  uint32_t s = 0;
  for (unsigned j = 0; j < 8; j++) s |= (uint32_t)(j < cnt && x[j] > 0.0f) << j;
  return s;
}

/* The smallest value a positive element decodes to, as an output bit pattern: 2^-100 for fp32
 * and bf16 (normal, so no flush-to-zero can hide it), 2^-24 (fp16's smallest subnormal). */
GS_HD uint32_t gs__sign_tiny(unsigned dtype) {
  return dtype == 0 ? 0x0d800000u : dtype == 1 ? 0x0001u : 0x0d80u;
}

/* Output pattern y (fp32, or fp16/bf16 in the low 16 bits) of an element of a finite group whose
 * sign bit is `positive`: > 0 stays, anything else becomes tiny; an element not > 0 is +0. */
GS_HD uint32_t gs__sign_apply(uint32_t y, uint32_t positive, unsigned dtype) {
  uint32_t sign = dtype == 0 ? 0x80000000u : 0x8000u;
  uint32_t on = (y != 0u && (y & sign) == 0u) ? y : gs__sign_tiny(dtype);
  return positive ? on : 0u;
}

/* Pack 8 levels of `bits` bits LSB-first into `bits` bytes (as a little-endian integer). */
GS_HD uint64_t gs__pack8(const uint32_t q[8], unsigned bits) {
  uint64_t v = 0;
  for (unsigned j = 0; j < 8; j++) v |= (uint64_t)q[j] << (j * bits);
  return v;
}
GS_HD uint32_t gs__unpack1(uint64_t v, unsigned j, unsigned bits) {
  return (uint32_t)(v >> (j * bits)) & ((1u << bits) - 1u);
}

#endif
