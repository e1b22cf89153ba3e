/* policy.c: the `fixed` and `off` compression policies. */
#include "policy.h"

#include "config.h"

/* Sensitive producers. The brief's prototype (2-block char transformer, 200 steps) diverged with
 * the log-softmax output that cross-entropy saves at 2 bits, and stayed within 1.4 % of exact with
 * that one tensor kept. Our own runs (tests/python/test_convergence.py, numbers in the report)
 * showed 8 bits on those tensors matching the exact loss, so the fixed policy never goes below
 * GS_POLICY_SENSITIVE_BITS for them: 4x smaller than fp32 and safe. */
static unsigned gs__sensitive_bits(unsigned bits) {
  return bits < GS_POLICY_SENSITIVE_BITS ? GS_POLICY_SENSITIVE_BITS : bits;
}

static gs_policy_decision gs__keep(gs_skip_reason why) {
  gs_policy_decision d = {0, why};
  return d;
}

gs_policy_decision gs_policy_decide(const gs_policy_desc *d) {
  if (gs__cfg.policy == GS_POLICY_OFF) return gs__keep(GS_SKIP_POLICY);
  if (d->dtype == GS_POLICY_DTYPE_OTHER) return gs__keep(GS_SKIP_DTYPE);
  if (d->bytes < gs__cfg.min_bytes) return gs__keep(GS_SKIP_SMALL);
  gs_policy_decision out = {1, GS_SKIP_POLICY};
  /* Booleans take the codec's lossless 1-bit path whatever the bit width. */
  if (d->dtype == GS_DTYPE_BOOL) return out;
  unsigned bits = gs__cfg.bits;
  if (bits > 8) return gs__keep(GS_SKIP_POLICY);
  out.bits = d->sensitive ? gs__sensitive_bits(bits) : bits;
  return out;
}
