/* group.c: each tensor's codec group size, aligned to the rows its backward normalises. */
#include "engine.h"

/* Why: a group's one (min, step) pair sets the rounding error of all its elements, and a group
 * that straddles two rows (LayerNorm's tokens, BatchNorm's channel planes) of different scale
 * gives the small row the large row's step. LayerNorm's backward then multiplies that error by
 * the small row's 1/std: timm's ViT-tiny (width 192, groups of 256) had its norm2 weight gradient
 * 15 % from exact at 8 bits, and 1.2 % with groups of 192 (bench/cpu/group_align.py). The
 * caller passes the largest group for the tensor's width (gs__group_at_bits: 32 at 8 bits). */

/* The largest multiple of 32 not above max that divides extent, or 0. */
static uint32_t gs__aligned_divisor(uint64_t extent, uint32_t max) {
  for (uint32_t g = max - max % 32u; g >= 32u; g -= 32u)
    if (extent % g == 0) return g;
  return 0;
}

/* The dims in the order the codec reads them: by stride, innermost first (a dense tensor is
 * encoded as it lies in memory, anything else through a row-major copy). Size-1 dims left out. */
static int gs__memory_order(const gs_tensor_facts *f, uint32_t max, int order[GS_FACTS_MAX_DIMS]) {
  bool as_is = !gs__facts_copied(f, max);
  int n = 0;
  for (int d = f->ndim - 1; d >= 0; d--) {
    if (f->shape[d] <= 1) continue;
    int at = n++;
    /* insertion by stride, stable: a non-dense tensor's row-major copy keeps the logical order */
    while (as_is && at > 0 && f->stride[order[at - 1]] > f->stride[d]) {
      order[at] = order[at - 1];
      at--;
    }
    order[at] = d;
  }
  return n;
}

uint32_t gs__facts_group(const gs_tensor_facts *f, uint32_t max) {
  int order[GS_FACTS_MAX_DIMS];
  int n = gs__memory_order(f, max, order);
  uint64_t extent = 1;
  /* The innermost run of dims whose extent a group can divide: a row (LayerNorm's last dim), else
   * a plane (BatchNorm's H×W in NCHW), else the default. Never larger than max. */
  for (int k = 0; k < n; k++) {
    extent *= (uint64_t)f->shape[order[k]];
    uint32_t g = extent >= 32u ? gs__aligned_divisor(extent, max) : 0u;
    if (g) return g;
  }
  return max;
}

/* Why copy a convolution's channels_last output: it is BatchNorm's input, and BatchNorm
 * normalises per channel, but in NHWC memory a group holds all channels of one position, of
 * different scales. Read from an NCHW copy, groups follow the channel planes: the zoo's ResNet-18
 * (fp32, 64x64 images, 8 bits) had layer1.0.bn1.weight's gradient 1.51 % from exact as it lay and
 * 0.90 % so, both measured while 8 bits rounded to nearest (since reverted); with stochastic
 * rounding its worst is 1.07 % so, and 0.96 % with 8 bits' groups of 32. The price is a copy at
 * pack and one at unpack, for these tensors only (not the ReLU outputs the convolutions save). */
bool gs__facts_copied(const gs_tensor_facts *f, uint32_t max) {
  if (!f->dense) return true;
  if (!(f->producer_flags & GS_PRODUCER_CONV) || f->ndim != 4 || f->contiguous) return false;
  bool channels_last = f->stride[1] == 1 && f->shape[1] > 1;
  uint64_t plane = (uint64_t)f->shape[2] * (uint64_t)f->shape[3];
  return channels_last && plane >= 32u && gs__aligned_divisor(plane, max) != 0;
}
