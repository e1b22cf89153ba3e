/* allocate.h: bit-allocation core of the adaptive and budget policies (pure, no globals). */
#ifndef GS_ALLOCATE_H
#define GS_ALLOCATE_H

/* Every function returns 0 or a negative errno (libuv convention, see common.h). Nothing here
 * touches global state, Python or CUDA, so that the policies can be unit-tested on paper cases.
 *
 * Model. A saved tensor k of numel n_k, quantized at b bits in groups with stochastic rounding,
 * adds at most step²/4 variance per element, step = range_g/(2^b−1). Weighted by C_k, the mean
 * squared gradient flowing through the tensor (ActNN), the added gradient variance is
 *     V_k(b) = sens_k / (4·(2^b−1)²),   sens_k = C_k · Σ_g n_g·range_g²,
 * and V_k(keep) = 0. The allocators minimise Σ V_k(b_k) under a memory constraint. */

#include "common.h"

/* bits_out value meaning "store the tensor uncompressed". */
#define GS_ALLOC_KEEP 0

/* Masks of the widths (bit b set: b bits allowed, 1 <= b <= 8) an allocator may choose. */
#define GS_ALLOC_WIDTHS_ALL 0x1FEu                                   /* 1..8 (ActNN) */
#define GS_ALLOC_WIDTHS_POW2 ((1u << 1) | (1u << 2) | (1u << 4) | (1u << 8)) /* GACT */

/* Size model of a compressed buffer; it mirrors gs__layout_of in kernels/codec_layout.h:
 * a header, GS_ALLOC_META_BYTES (16-bit min and scale) per group, the data aligned to
 * GS_ALLOC_DATA_ALIGN bytes, then b bit-planes of ceil(n/8) bytes each. */
#define GS_ALLOC_HEADER_BYTES 32u
#define GS_ALLOC_META_BYTES 4u
#define GS_ALLOC_DATA_ALIGN 16u

/* One saved tensor as the allocators see it. */
typedef struct gs_alloc_item {
  uint64_t numel;     /* elements; 0 is allowed (the item is then ignored) */
  double sens;        /* C_k · Σ_g n_g·range_g² (gs__sens_of); finite, >= 0 */
  uint32_t group;     /* elements per quantization group (>= 1), for the size model */
  uint8_t keep_bits;  /* width of the uncompressed dtype: 16 or 32 */
  uint8_t min_bits;   /* lowest width allowed, 1..8; > 8 forces keep (needs max_bits > 8) */
  uint8_t max_bits;   /* highest width allowed, 1..8; > 8 also allows keep */
  bool alive_at_peak; /* budget policy: the tensor is live at the iteration's memory peak */
} gs_alloc_item;

/* Bytes the compressed form takes at `bits` (1..8), or the uncompressed bytes for
 * GS_ALLOC_KEEP (numel·keep_bits/8). 0 for group 0 or bits outside {0, 1..8}. */
uint64_t gs__alloc_bytes(uint64_t numel, uint32_t group, unsigned keep_bits, unsigned bits);

/* Average-bits allocation (policy "adaptive"). Chooses bits_out[k] (1..8 in `widths`, or
 * GS_ALLOC_KEEP where the item allows it) so that Σ n_k·w_k <= avg_bits·Σ n_k, where w_k is the
 * width and keep counts as keep_bits. Greedy as GACT: start at every item's top level, then
 * repeatedly lower by one allowed level the item whose step adds the least variance per bit
 * saved (ΔV/(n_k·Δw)); V is convex in b, so this is the exact optimum of the fractional problem.
 * O(n log n) with a heap. Ties go to the lower index, so results are reproducible. The last
 * step may overshoot: the result is the first plan at or under the average.
 * Returns 0; -ENOSPC when even every item at its min_bits exceeds the average (bits_out then holds
 * that minimum plan); -EINVAL for bad arguments or an item with no allowed level; -ENOMEM. */
int gs__alloc_average_bits(const gs_alloc_item *items, size_t n, double avg_bits,
                           uint32_t widths, uint8_t *bits_out);

/* Budget allocation (policy "budget"). The estimated peak is other_bytes_at_peak plus the bytes
 * of every alive_at_peak item at its chosen level. Starts from every item at its top level
 * (keep where allowed) and, while the peak exceeds `budget`, moves the peak-alive item whose step
 * adds the least variance per byte saved to its next level that saves bytes. Items not alive at
 * the peak stay at their top level: compressing them cannot lower the peak. A step that saves
 * no bytes (keep to a width, for tiny tensors whose metadata outweighs the data) is never taken.
 * Writes the estimated peak to *est_peak_out when not NULL (saturates at UINT64_MAX).
 * Returns 0; -ENOSPC when the budget cannot be met (bits_out then holds the minimum-memory plan
 * and *est_peak_out its peak); -EINVAL; -ENOMEM. */
int gs__alloc_budget(const gs_alloc_item *items, size_t n, uint32_t widths,
                     uint64_t other_bytes_at_peak, uint64_t budget, uint8_t *bits_out,
                     uint64_t *est_peak_out);

/* ---- Sensitivity (ActNN-style, from gradients observed in backward) ---- */

/* Exponential moving average of C, the mean squared gradient per element flowing through one
 * saved tensor (e.g. ‖grad_output‖²/numel of the op that saved it). */
typedef struct gs_sens_ema {
  double c;       /* current estimate; meaningless while n == 0 */
  uint64_t n;     /* observations folded in so far */
} gs_sens_ema;

/* Folds one observation in: the first one sets c, later ones c += alpha·(obs − c).
 * alpha in (0, 1]; obs finite and >= 0. Returns 0 or -EINVAL (e left unchanged). */
int gs__sens_ema_update(gs_sens_ema *e, double obs, double alpha);

/* Σ_g n_g·range_g² from per-group ranges (max − min) of a tensor of numel elements in groups of
 * `group` (the last group may be short). Writes *out; 0 or -EINVAL (NaN/Inf range, group 0). */
int gs__sens_range_term(const float *ranges, uint64_t numel, uint32_t group, double *out);

/* The same term from a summary: numel · mean over groups of range². */
double gs__sens_range_term_mean(uint64_t numel, double mean_range_sq);

/* sens = C · range_term, the value gs_alloc_item.sens expects. */
double gs__sens_of(double c, double range_term);

/* Expected added variance V(b) = sens/(4·(2^b−1)²) at bits 1..8; 0 for GS_ALLOC_KEEP;
 * NaN for other widths. */
double gs__sens_variance(double sens, unsigned bits);

#endif
