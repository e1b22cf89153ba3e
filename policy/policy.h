/* policy.h: how many bits each saved tensor gets — pure decisions from a config and facts. */
#ifndef GS_POLICY_H
#define GS_POLICY_H

/* The policy room includes nothing of shim/: the engine hands it a gs_policy_config (built from
 * GACTSHIM_*) and per-tensor facts, and it returns decisions and plain structs. Every function
 * returns 0 or a negative errno (libuv convention) where it can fail. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gactshim.h" /* gs_dtype */

/* ---- the configuration -------------------------------------------------------------------- */

typedef enum gs_policy_kind {
  GS_POLICY_FIXED = 0,     /* every candidate at `bits` */
  GS_POLICY_OFF,           /* keep everything */
  GS_POLICY_ADAPTIVE,      /* `bits` on average, redistributed by measured sensitivity */
  GS_POLICY_BUDGET,        /* compress only what keeps the peak under `budget` */
} gs_policy_kind;

/* Which saved tensors the policy may compress. */
typedef enum gs_policy_select {
  GS_SELECT_ALL = 0,       /* every eligible saved tensor */
  GS_SELECT_LIFETIME,      /* only those alive at the iteration's memory peak (lifetime.c) */
} gs_policy_select;

typedef struct gs_policy_config {
  gs_policy_kind kind;
  gs_policy_select select;
  unsigned bits;           /* 1..8 compress; 16 or 32 keep */
  uint64_t budget;         /* bytes (budget policy) */
  uint64_t min_bytes;      /* smaller saved tensors are kept */
  uint32_t group;          /* elements per quantization group */
  uint32_t adapt_every;    /* iterations between sensitivity probes (>= 1) */
} gs_policy_config;

/* ---- one tensor's decision (policy.c) ------------------------------------------------------ */

/* Dtype codes of the descriptor: the codec's gs_dtype values, or GS_POLICY_DTYPE_OTHER. */
#define GS_POLICY_DTYPE_OTHER (-1)

/* Bits given to tensors from sensitive producers (softmax / log-softmax outputs) by the fixed
 * policy when GACTSHIM_BITS asks for fewer: see policy.c for the measurements behind it. */
#ifndef GS_POLICY_SENSITIVE_BITS /* overridable at build time for experiments (0 = no special case) */
#define GS_POLICY_SENSITIVE_BITS 8u
#endif

/* What the engine knows about a saved tensor when it asks the policy. */
typedef struct gs_policy_desc {
  uint64_t iteration;    /* training iteration, counted by the engine from pack/unpack activity */
  uint32_t index;        /* k: this is the k-th tensor saved in the iteration */
  int ndim;
  const int64_t *shape;  /* ndim entries */
  int dtype;             /* gs_dtype, or GS_POLICY_DTYPE_OTHER */
  uint64_t bytes;        /* size at full precision */
  int device;            /* CUDA device index, or -1 for the CPU */
  bool sensitive;        /* produced by an op whose saved output is known to be sensitive */
} gs_policy_desc;

/* Why the policy keeps a tensor exact (the engine counts these as its own skip reasons). */
typedef enum gs_policy_keep {
  GS_KEEP_POLICY = 0,    /* the policy chose to keep it (off, 16/32 bits, a plan's decision) */
  GS_KEEP_DTYPE,         /* not a floating type the codec takes */
  GS_KEEP_SMALL,         /* under the configured minimum size */
} gs_policy_keep;

/* The decision: bits in 1..8 to compress, or bits == 0 with the reason it is kept. */
typedef struct gs_policy_decision {
  unsigned bits;
  gs_policy_keep keep; /* meaningful only when bits == 0 */
} gs_policy_decision;

/* Decides for d under c alone (no plan). Pure and thread-safe. */
gs_policy_decision gs_policy_decide(const gs_policy_config *c, const gs_policy_desc *d);


/* ---- the allocators and their cost models (allocate.c, model.c) -------------------------- */

/* Every function returns 0 or a negative errno (libuv convention). Nothing here
 * touches global state, Python or CUDA, so that the policies can be unit-tested on paper cases.
 *
 * Model. A saved tensor k of numel n_k, quantized at b bits in groups with stochastic rounding,
 * adds at most step²/4 variance per element, step = range_g/(2^b−1). Weighted by C_k, the mean
 * squared gradient flowing through the tensor (ActNN), the added gradient variance is
 *     V_k(b) = sens_k / (4·(2^b−1)²),   sens_k = C_k · Σ_g n_g·range_g²,
 * and V_k(keep) = 0. The allocators minimise Σ V_k(b_k) under a memory constraint. */

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

/* The largest codec group for a tensor encoded at `bits`: max below 8 bits, at most 32 at 8.
 * 8 bits is the width chosen for accuracy (GACTSHIM_BITS=8, and the rules' floor for sensitive
 * tensors), and there stochastic rounding's noise, set by each group's range, was the largest
 * error left: smaller groups have smaller ranges (docs/policies.md). Metadata is 4 bytes per
 * group, 1/8 of a byte per element at 32: small beside 8 bits of data, not beside 2 or 4. */
uint32_t gs__group_at_bits(uint32_t max, unsigned bits);

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


/* ---- plans: saved tensors by identity across iterations (plan.c, lifetime.c, adaptive.c,
 *      budget.c) ----------------------------------------------------------------------------- */

/* A saved tensor's identity is its position k in the iteration's sequence of packs together with
 * the shapes and dtypes of packs 0..k (a running hash, `prefix`): the same model step gives the
 * same identities every iteration, and a different sequence length, batch or model path gives
 * different ones from the first tensor that differs. The plan for an iteration is derived from a
 * completed earlier iteration with the same identities (policy/adaptive.c, budget.c, lifetime.c).
 *
 * Everything here runs under the GIL (pack, unpack, handle destructors) and takes no lock. */

/* Why a tensor got the bits it got (the stats' and the trace's "reason"). Values are part of the
 * trace format: append, never renumber. */
typedef enum gs_plan_reason {
  GS_REASON_SKIPPED = 0,  /* kept before the policy was asked (param, small, dtype, ...) */
  GS_REASON_FIXED,        /* the policy's width (GACTSHIM_BITS; 8 for sensitive producers) */
  GS_REASON_WARMUP,       /* no plan for this identity yet: compressed at GACTSHIM_BITS */
  GS_REASON_ADAPTIVE,     /* width chosen by sensitivity under the average (policy/adaptive.c) */
  GS_REASON_BUDGET,       /* compressed because the budget needed it (policy/budget.c) */
  GS_REASON_BUDGET_FITS,  /* kept: the budget holds without compressing it */
  GS_REASON_NOT_AT_PEAK,  /* kept: not alive at the iteration's memory peak (lifetime.c) */
  GS_REASON_AT_PEAK,      /* alive at the peak, compressed at the policy's width (lifetime.c) */
  GS_REASON__COUNT
} gs_plan_reason;

#define GS_PLAN_DIMS 8            /* shape dims kept per tensor for the stats */
#define GS_PLAN_MAX_TENSORS 65536 /* per iteration; later packs get no identity (warm-up rule) */
#define GS_PLAN_CACHE 4           /* plans kept for different iteration shapes (variable lengths) */

/* One saved tensor of one iteration. */
typedef struct gs_plan_slot {
  uint64_t prefix;       /* identity: hash of the shapes/dtypes of packs 0..k */
  uint64_t numel, bytes; /* full-precision size */
  uint64_t held;         /* bytes its handle held (compressed size, or bytes when kept) */
  uint64_t pack_ns, unpack_ns; /* pack and first unpack, ns since the iteration began; 0 = none */
  int64_t shape[GS_PLAN_DIMS];
  int8_t ndim, dtype;    /* dtype: gs_dtype or GS_POLICY_DTYPE_OTHER */
  int16_t device;        /* -1: CPU */
  uint8_t bits;          /* bits used this iteration (0: kept) */
  uint8_t reason;        /* gs_plan_reason of this iteration's decision */
  uint8_t skip;          /* the engine's code for why it was kept (opaque here) */
  bool candidate;        /* eligible for compression (the policies choose among these) */
  bool sensitive, relu;  /* producer flags (softmax/log-softmax; ReLU keeps a 1-bit sign mask) */
  bool dead;             /* its handle died this iteration */
  bool alive_at_peak;    /* set by gs__lifetime_analyze */
  uint32_t pack_ev, death_ev; /* positions in the iteration's event list */
  gs_sens_ema c;         /* mean squared gradient per element (probed; carried across plans) */
  double range_term;     /* Σ_g n_g·range_g² (probed), 0 = unknown */
  uint8_t next_bits;     /* the plan for the next iteration with this identity (0: keep) */
  uint8_t next_reason;
} gs_plan_slot;

/* One point of the iteration's memory curve: after a pack or a handle death, the tracked live
 * bytes as if no saved tensor were compressed (live + Σ(full − held) over compressed ones). */
typedef struct gs_plan_event {
  uint32_t k;
  bool pack;             /* pack (true) or death */
  uint64_t equiv;
} gs_plan_event;

/* One iteration: its slots in pack order, its events, and what was learned from it. */
typedef struct gs_plan_iter {
  uint64_t iteration;
  uint64_t t0_ns;
  uint32_t n, cap;
  gs_plan_slot *slots;
  uint32_t nev, evcap;
  gs_plan_event *ev;
  uint64_t peak_equiv;   /* the curve's maximum (gs__lifetime_analyze) */
  uint32_t peak_ev;
  uint64_t used;         /* LRU stamp in the cache */
  bool valid;
} gs_plan_iter;

/* --- engine-facing (called by the engine's plans.c under the GIL) --- */

/* The configuration the plans follow; a copy is kept. Called before the first pack (and by tests
 * between cases: it also forgets every recorded iteration and plan). */
void gs__plan_configure(const gs_policy_config *c);

/* Starts iteration `it` at time now: the previous one is analysed and becomes a plan. */
void gs__plan_begin(uint64_t it, uint64_t now_ns);

/* The decision for the tensor d describes (its index d->index in the current iteration). */
gs_policy_decision gs__plan_decide(const gs_policy_desc *d, gs_plan_reason *reason);

/* What the pack of tensor k did. equiv: the curve value after it. */
typedef struct gs_plan_pack {
  const gs_policy_desc *d; /* shape etc.; d->index is k */
  uint8_t bits, reason, skip;
  bool candidate, relu;
  uint64_t held;
  uint64_t now_ns, equiv;
} gs_plan_pack;
void gs__plan_note_pack(const gs_plan_pack *p);
void gs__plan_note_unpack(uint64_t it, uint32_t k, uint64_t now_ns);
void gs__plan_note_death(uint64_t it, uint32_t k, uint64_t equiv);

/* Whether tensor 0 of the current iteration has been unpacked. */
bool gs__plan_first_unpacked(void);

/* A probe's result for tensor k of the current iteration (NaN: not measured). */
void gs__plan_note_probe(uint32_t k, double c, double range_term);

/* Whether tensors of iteration `it` should be probed for sensitivity (adaptive, budget). */
bool gs__plan_probing(uint64_t it);

/* The last completed iteration, or NULL. */
const gs_plan_iter *gs__plan_last(void);

/* --- the policies (pure functions of one completed iteration) --- */

/* lifetime.c: finds the peak of it's curve and marks the slots alive at it. */
void gs__lifetime_analyze(gs_plan_iter *it);
/* lifetime.c: select=lifetime: next_bits 0 (not-at-peak) for every candidate the peak
 * does not need compressed, the fixed width (at-peak) for the others. 0 or -ENOMEM. */
int gs__lifetime_select(const gs_policy_config *c, gs_plan_iter *it);
/* adaptive.c: next_bits under the average width, among the candidates not already marked
 * not-at-peak by gs__lifetime_select. 0 or negative errno. */
int gs__adaptive_plan(const gs_policy_config *c, gs_plan_iter *it);
/* budget.c: next_bits so that the estimated peak stays under c->budget. 0, -ENOSPC (the smallest
 * plan is set), or negative errno. *est receives the estimated peak. */
int gs__budget_plan(const gs_policy_config *c, gs_plan_iter *it, uint64_t *est);

/* The allocator item of a candidate slot (sens from the probes; c_default when unprobed). */
void gs__plan_item(const gs_policy_config *c, const gs_plan_slot *s, double c_default, gs_alloc_item *out);
/* The fixed policy's width for a slot (c->bits; the floor for sensitive producers). */
unsigned gs__plan_fixed_bits(const gs_policy_config *c, const gs_plan_slot *s);
/* Bytes slot s holds at `bits` (GS_ALLOC_KEEP: its full size), with a ReLU output's sign mask. */
uint64_t gs__plan_slot_bytes(const gs_policy_config *c, const gs_plan_slot *s, unsigned bits);
/* The memory curve if each slot k held saving[k] bytes less than at full precision while alive:
 * its value after every event into curve (may be NULL); returns its maximum. */
uint64_t gs__plan_curve(const gs_plan_iter *it, const uint64_t *saving, uint64_t *curve);
/* Mean probed C over the candidates (1 when none was probed). */
double gs__plan_mean_c(const gs_plan_iter *it);

#endif
