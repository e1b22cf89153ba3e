/* policy.h: decides, per saved tensor, how many bits it is compressed to (0 = keep it exact). */
#ifndef GS_POLICY_H
#define GS_POLICY_H

#include "common.h"
#include "gactshim.h"
#include "stats.h"

/* Dtype codes of the descriptor: the codec's gs_dtype values, or GS_POLICY_DTYPE_OTHER. */
#define GS_POLICY_DTYPE_OTHER (-1)

/* Bits given to tensors from sensitive producers (softmax / log-softmax outputs) by the fixed
 * policy when GACTSHIM_BITS asks for fewer: see policy.c for the measurements behind it. */
#define GS_POLICY_SENSITIVE_BITS 8u

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

/* The decision: bits in 1..8 to compress, or bits == 0 with the reason it is kept. */
typedef struct gs_policy_decision {
  unsigned bits;
  gs_skip_reason reason; /* meaningful only when bits == 0 */
} gs_policy_decision;

/* Decides for d under the process configuration (GACTSHIM_POLICY, _BITS, _MIN_BYTES).
 * Pure and thread-safe: reads gs__cfg only. */
gs_policy_decision gs_policy_decide(const gs_policy_desc *d);

#endif
