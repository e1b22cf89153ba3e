/* hwmodel.h: a model of the GPU's float conversion instructions (cvt.rn/.rm/.rp.f16.f32,
 * cvt.rn.bf16.f32, cvt.f32.f16) as the PTX ISA documents them: IEEE 754 rounding of the exact
 * value, subnormals kept (no .ftz), NaN to the canonical NaN. Written from the formats' definition
 * (value tables and a search, in double precision, which holds every value involved exactly), not
 * from the twin's integer code, so that comparing the two proves something. */
#ifndef GS_HWMODEL_H
#define GS_HWMODEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* fmt 0: binary16 (5-bit exponent, 10-bit fraction), 1: bfloat16 (8, 7). */
static inline double hm_value(int fmt, uint16_t h) {
  int fb = fmt ? 7 : 10, eb = fmt ? 8 : 5, bias = fmt ? 127 : 15;
  int e = (h >> fb) & ((1 << eb) - 1), m = h & ((1 << fb) - 1);
  double v = e ? ldexp((double)((1 << fb) + m), e - bias - fb) : ldexp((double)m, 1 - bias - fb);
  return (h & 0x8000u) ? -v : v;
}
static inline uint16_t hm_inf(int fmt) { return fmt ? 0x7f80u : 0x7c00u; }
static inline uint16_t hm_max(int fmt) { return (uint16_t)(hm_inf(fmt) - 1u); }

/* Rounds x (finite or not) to fmt; mode 0 nearest-even, 1 toward -Inf, 2 toward +Inf. */
static inline uint16_t hm_round(int fmt, float x, int mode) {
  uint32_t u;
  memcpy(&u, &x, 4);
  uint16_t sign = (uint16_t)(u >> 31 << 15);
  if (isnan(x)) return fmt ? 0x7fffu : 0x7fffu; /* canonical NaN */
  if (isinf(x)) return (uint16_t)(sign | hm_inf(fmt));
  double a = fabs((double)x);
  /* lo: the largest non-negative finite pattern with value <= a (patterns are ordered by value) */
  uint16_t lo = 0, top = hm_max(fmt);
  if (a >= hm_value(fmt, top)) {
    lo = top;
  } else {
    uint16_t l = 0, r = top; /* value(l) <= a < value(r) */
    while (r - l > 1) {
      uint16_t mid = (uint16_t)((l + r) / 2);
      if (hm_value(fmt, mid) <= a) l = mid;
      else r = mid;
    }
    lo = l;
  }
  double vlo = hm_value(fmt, lo);
  if (vlo == a) return (uint16_t)(sign | lo);
  uint16_t hi = (uint16_t)(lo + 1); /* the infinity pattern after the largest finite */
  /* For nearest: the value one ulp past the largest finite stands in for infinity (IEEE 754). */
  double vhi = lo == top ? 2 * hm_value(fmt, top) - hm_value(fmt, (uint16_t)(top - 1)) : hm_value(fmt, hi);
  uint16_t mag;
  if (mode == 0) {
    double dl = a - vlo, dh = vhi - a;
    mag = dl < dh ? lo : dh < dl ? hi : ((lo & 1u) ? hi : lo);
  } else {
    int toward_larger_magnitude = (mode == 2) != (sign != 0);
    mag = toward_larger_magnitude ? hi : lo;
  }
  return (uint16_t)(sign | mag);
}

/* cvt.f32.f16: exact; NaN to the canonical fp32 NaN. */
static inline float hm_f16_to_f32(uint16_t h) {
  if ((h & 0x7fffu) > 0x7c00u) {
    uint32_t nan = 0x7fffffffu;
    float f;
    memcpy(&f, &nan, 4);
    return f;
  }
  if ((h & 0x7fffu) == 0x7c00u) return (h & 0x8000u) ? -INFINITY : INFINITY;
  return (float)hm_value(0, h);
}

#endif
