/* policy.c: the `fixed` and `off` compression policies. */
#include "policy.h"

/* Sensitive producers: outputs of softmax and log-softmax (attention probabilities; the
 * log-probabilities cross-entropy saves). Measured here on the 2-block char transformer of
 * tests/engine/test_convergence.py (200 steps, stdlib text, final loss; exact 2.3058):
 *   4 bits everywhere 2.3120 (+0.27 %)   4 bits, these at 8: 2.3085 (+0.12 %)  <- default
 *   2 bits everywhere 2.7117 (+17.6 %)   2 bits, these at 8: 2.3186 (+0.56 %)
 * So the fixed policy never gives them
 * fewer than GS_POLICY_SENSITIVE_BITS: still 4x smaller than fp32, and training stays on track. */
static unsigned gs__sensitive_bits(unsigned bits) {
  return bits < GS_POLICY_SENSITIVE_BITS ? GS_POLICY_SENSITIVE_BITS : bits;
}

static gs_policy_decision gs__keep(gs_policy_keep why) {
  gs_policy_decision d = {0, why};
  return d;
}

gs_policy_decision gs_policy_decide(const gs_policy_config *c, const gs_policy_desc *d) {
  if (c->kind == GS_POLICY_OFF) return gs__keep(GS_KEEP_POLICY);
  if (d->dtype == GS_POLICY_DTYPE_OTHER) return gs__keep(GS_KEEP_DTYPE);
  if (d->bytes < c->min_bytes) return gs__keep(GS_KEEP_SMALL);
  gs_policy_decision out = {1, GS_KEEP_POLICY};
  /* Booleans take the codec's lossless 1-bit path whatever the bit width. */
  if (d->dtype == GS_DTYPE_BOOL) return out;
  unsigned bits = c->bits;
  if (bits > 8) return gs__keep(GS_KEEP_POLICY);
  out.bits = d->sensitive ? gs__sensitive_bits(bits) : bits;
  return out;
}
