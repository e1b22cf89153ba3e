/* plan.h: saved tensors by identity across iterations — what each did, and what the next gets. */
#ifndef GS_PLAN_H
#define GS_PLAN_H

/* A saved tensor's identity is its position k in the iteration's sequence of packs together with
 * the shapes and dtypes of packs 0..k (a running hash, `prefix`): the same model step gives the
 * same identities every iteration, and a different sequence length, batch or model path gives
 * different ones from the first tensor that differs. The plan for an iteration is derived from a
 * completed earlier iteration with the same identities (policy/adaptive.c, budget.c, lifetime.c).
 *
 * Everything here runs under the GIL (pack, unpack, handle destructors) and takes no lock. */

#include "allocate.h"
#include "policy.h"

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

const char *gs__plan_reason_name(unsigned r);

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
  uint8_t skip;          /* gs_skip_reason when kept */
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

/* --- engine-facing (called by shim/planwire.c under the GIL) --- */

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

/* The last completed iteration as JSON ("per_tensor": [...], at most max entries, then
 * "per_tensor_count" and "plan"): appends to buf at *off; false once the buffer is full. */
bool gs__plan_json(char *buf, size_t len, size_t *off, size_t max);

/* --- the policies (pure functions of one completed iteration) --- */

/* lifetime.c: finds the peak of it's curve and marks the slots alive at it. */
void gs__lifetime_analyze(gs_plan_iter *it);
/* lifetime.c: GACTSHIM_SELECT=lifetime: next_bits 0 (not-at-peak) for every candidate the peak
 * does not need compressed, the fixed width (at-peak) for the others. 0 or -ENOMEM. */
int gs__lifetime_select(gs_plan_iter *it);
/* adaptive.c: next_bits under the average width, among the candidates not already marked
 * not-at-peak by gs__lifetime_select. 0 or negative errno. */
int gs__adaptive_plan(gs_plan_iter *it);
/* budget.c: next_bits so that the estimated peak stays under `budget`. 0, -ENOSPC (the smallest
 * plan is set), or negative errno. *est receives the estimated peak. */
int gs__budget_plan(gs_plan_iter *it, uint64_t budget, uint64_t *est);

/* The allocator item of a candidate slot (sens from the probes; c_default when unprobed). */
void gs__plan_item(const gs_plan_slot *s, double c_default, gs_alloc_item *out);
/* The fixed policy's width for a slot (GACTSHIM_BITS; the floor for sensitive producers). */
unsigned gs__plan_fixed_bits(const gs_plan_slot *s);
/* Bytes slot s holds at `bits` (GS_ALLOC_KEEP: its full size), with a ReLU output's sign mask. */
uint64_t gs__plan_slot_bytes(const gs_plan_slot *s, unsigned bits);
/* The memory curve if each slot k held saving[k] bytes less than at full precision while alive:
 * its value after every event into curve (may be NULL); returns its maximum. */
uint64_t gs__plan_curve(const gs_plan_iter *it, const uint64_t *saving, uint64_t *curve);
/* Mean probed C over the candidates (1 when none was probed). */
double gs__plan_mean_c(const gs_plan_iter *it);

#endif
