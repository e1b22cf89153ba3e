/* model.c: the cost models the allocators weigh: compressed bytes and added gradient variance. */
#include "policy.h"

#include <errno.h>
#include <math.h>

typedef unsigned __int128 gs__u128;

static uint64_t gs__sat64(gs__u128 v) { return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v; }

#define GS__GROUP_AT_8_BITS 32u

uint32_t gs__group_at_bits(uint32_t max, unsigned bits) {
  return bits >= 8 && max > GS__GROUP_AT_8_BITS ? GS__GROUP_AT_8_BITS : max;
}

uint64_t gs__alloc_bytes(uint64_t numel, uint32_t group, unsigned keep_bits, unsigned bits) {
  if (group == 0 || bits > 8) return 0;
  if (bits == GS_ALLOC_KEEP) return gs__sat64((gs__u128)numel * keep_bits / 8);
  /* 128-bit arithmetic: group 1 on a huge tensor must saturate, not wrap to a small size. */
  gs__u128 ngroups = ((gs__u128)numel + group - 1) / group;
  gs__u128 meta_end = GS_ALLOC_HEADER_BYTES + ngroups * GS_ALLOC_META_BYTES;
  gs__u128 data_off = (meta_end + GS_ALLOC_DATA_ALIGN - 1) / GS_ALLOC_DATA_ALIGN * GS_ALLOC_DATA_ALIGN;
  /* One bit-plane of ceil(n/8) bytes per bit, as the kernels pack them. */
  gs__u128 data = ((gs__u128)numel + 7) / 8 * bits;
  return gs__sat64(data_off + data);
}

int gs__sens_ema_update(gs_sens_ema *e, double obs, double alpha) {
  if (e == NULL || !isfinite(obs) || obs < 0 || !(alpha > 0 && alpha <= 1)) return -EINVAL;
  /* The first observation seeds the average: an EMA started at 0 would under-rate every tensor
   * for its first ~1/alpha iterations and make the first allocations arbitrary. */
  if (e->n == 0)
    e->c = obs;
  else
    e->c += alpha * (obs - e->c);
  e->n++;
  return 0;
}

int gs__sens_range_term(const float *ranges, uint64_t numel, uint32_t group, double *out) {
  if (out == NULL || group == 0 || (ranges == NULL && numel > 0)) return -EINVAL;
  uint64_t ngroups = numel / group + (numel % group != 0);
  double sum = 0;
  for (uint64_t g = 0; g < ngroups; g++) {
    double r = ranges[g];
    if (!isfinite(r)) return -EINVAL;
    /* Each element of the group carries its group's step, so a short last group weighs less. */
    uint64_t ng = (g + 1 < ngroups || numel % group == 0) ? group : numel % group;
    sum += (double)ng * r * r;
  }
  *out = sum;
  return 0;
}

double gs__sens_range_term_mean(uint64_t numel, double mean_range_sq) {
  return (double)numel * mean_range_sq;
}

double gs__sens_of(double c, double range_term) { return c * range_term; }

double gs__sens_variance(double sens, unsigned bits) {
  if (bits == GS_ALLOC_KEEP) return 0;
  if (bits > 8) return NAN;
  /* Stochastic rounding to a grid of step s has variance p(1−p)s² <= s²/4 per element. */
  double levels = (double)((1u << bits) - 1);
  return sens / (4.0 * levels * levels);
}
