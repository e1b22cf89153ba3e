/* testdata.h: deterministic test inputs for the codec tests and benchmarks (header only). */
#ifndef GS_TESTDATA_H
#define GS_TESTDATA_H

#include "codec_core.h"

#include <math.h>
#include <stdint.h>

typedef enum { GS_TD_NORMAL, GS_TD_LAYERNORM, GS_TD_RELU, GS_TD_UNIFORM, GS_TD_WIDE } gs_td_kind;

static inline uint64_t gs_td_next(uint64_t *s) {
  uint64_t x = *s += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
static inline double gs_td_unit(uint64_t *s) { return (double)(gs_td_next(s) >> 11) * 0x1p-53; }
static inline double gs_td_normal(uint64_t *s) {
  double u = gs_td_unit(s) + 0x1p-54, v = gs_td_unit(s);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
static inline float gs_td_value(gs_td_kind k, uint64_t *s) {
  double z = gs_td_normal(s);
  switch (k) {
  case GS_TD_LAYERNORM: return (float)(100.0 + z);
  case GS_TD_RELU: return z > 0 ? (float)z : 0.0f;
  case GS_TD_UNIFORM: return (float)(gs_td_unit(s) * 2.0 - 1.0);
  case GS_TD_WIDE: return (float)(z * exp(8.0 * gs_td_unit(s) - 4.0) * 1000.0);
  default: return (float)z;
  }
}

/* Fills n elements of dtype (0 f32, 1 f16, 2 bf16, 3 bool) into dst and, if ref is not NULL, the
 * exact fp32 values that dst holds. */
static inline void gs_td_fill(void *dst, float *ref, uint64_t n, unsigned dtype, gs_td_kind k,
                              uint64_t seed) {
  uint64_t s = seed;
  for (uint64_t i = 0; i < n; i++) {
    float x = gs_td_value(k, &s);
    if (dtype == 0) {
      ((float *)dst)[i] = x;
    } else if (dtype == 1) {
      uint16_t h = gs__out_f16(x);
      ((uint16_t *)dst)[i] = h;
      x = gs__f16_to_f32(h);
    } else if (dtype == 2) {
      uint16_t h = gs__out_bf16(x);
      ((uint16_t *)dst)[i] = h;
      x = gs__bf16_to_f32(h);
    } else {
      ((uint8_t *)dst)[i] = x > 0.3f ? (uint8_t)(1 + (gs_td_next(&s) & 0x7f)) : 0;
    }
    if (ref) ref[i] = x;
  }
}

static inline unsigned gs_td_elem_size(unsigned dtype) { return dtype == 0 ? 4 : dtype == 3 ? 1 : 2; }

#endif
