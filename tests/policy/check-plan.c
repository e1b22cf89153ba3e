/* check-plan.c: the plans and the three policies on hand-made iterations, checked by hand. */
#include "policy.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The iteration every case below starts from. Three fp32 saved tensors, events in order:
 *   0 pack A (1000 elems, 4000 B)   curve 4000
 *   1 pack B (1000 elems, 4000 B)   curve 8000   <- the peak: A and B alive
 *   2 death A                       curve 4000
 *   3 death B                       curve 0
 *   4 pack D (100 elems, 400 B)     curve 400
 *   5 death D                       curve 0
 * At 4 bits in groups of 256 (docs/codec-format.md): A and B take 32 + 4·4 = 48 bytes of header
 * and metadata, then 4 planes of 125 bytes: 548 bytes, saving 3452; D takes 32 + 4 → 48, then
 * 4 planes of 13 bytes: 100 bytes, saving 300. */
enum { A = 0, B = 1, D = 2 };

static const gs_policy_config fixed4 = {.kind = GS_POLICY_FIXED, .select = GS_SELECT_LIFETIME,
                                        .bits = 4, .min_bytes = 64, .group = 256, .adapt_every = 50};

static gs_plan_slot slots[3];
static gs_plan_event events[6];
static gs_plan_iter it;

static void slot(int k, uint64_t numel, uint32_t pack_ev, uint32_t death_ev) {
  gs_plan_slot *s = &slots[k];
  memset(s, 0, sizeof(*s));
  s->numel = numel;
  s->bytes = numel * 4;
  s->held = s->bytes;
  s->ndim = 1;
  s->shape[0] = (int64_t)numel;
  s->dtype = GS_DTYPE_F32;
  s->candidate = true;
  s->dead = true;
  s->pack_ev = pack_ev;
  s->death_ev = death_ev;
}

static void make_iteration(void) {
  slot(A, 1000, 0, 2);
  slot(B, 1000, 1, 3);
  slot(D, 100, 4, 5);
  static const gs_plan_event ev[6] = {{A, true, 4000}, {B, true, 8000}, {A, false, 4000},
                                      {B, false, 0},   {D, true, 400},  {D, false, 0}};
  memcpy(events, ev, sizeof(ev));
  memset(&it, 0, sizeof(it));
  it.n = 3;
  it.slots = slots;
  it.nev = 6;
  it.ev = events;
}

START_TEST(slot_bytes_by_hand) {
  make_iteration();
  ck_assert_uint_eq(gs__plan_slot_bytes(&fixed4, &slots[A], 4), 548);
  ck_assert_uint_eq(gs__plan_slot_bytes(&fixed4, &slots[D], 4), 100);
  ck_assert_uint_eq(gs__plan_slot_bytes(&fixed4, &slots[D], GS_ALLOC_KEEP), 400);
  /* A ReLU output keeps its sign too: a plane of ceil(1000/8) = 125 bytes more for A. */
  slots[A].relu = true;
  ck_assert_uint_eq(gs__plan_slot_bytes(&fixed4, &slots[A], 4), 548 + 125);
}
END_TEST

START_TEST(lifetime_finds_the_peak) {
  make_iteration();
  gs__lifetime_analyze(&it);
  ck_assert_uint_eq(it.peak_equiv, 8000);
  ck_assert_uint_eq(it.peak_ev, 1);
  ck_assert(slots[A].alive_at_peak);
  ck_assert(slots[B].alive_at_peak);
  ck_assert(!slots[D].alive_at_peak);
}
END_TEST

/* Compressing everything gives the curve 548, 1096, 548, 0, 100, 0: T = 1096. Shortest-lived
 * first: D (1 event) fits (1096 - 100 = 996 >= its 300) and stays exact; A and B have no room at
 * event 1 and are compressed. */
START_TEST(lifetime_keeps_what_fits_under_the_peak) {
  make_iteration();
  gs__lifetime_analyze(&it);
  ck_assert_int_eq(gs__lifetime_select(&fixed4, &it), 0);
  ck_assert_uint_eq(slots[A].next_bits, 4);
  ck_assert_uint_eq(slots[A].next_reason, GS_REASON_AT_PEAK);
  ck_assert_uint_eq(slots[B].next_bits, 4);
  ck_assert_uint_eq(slots[D].next_bits, 0);
  ck_assert_uint_eq(slots[D].next_reason, GS_REASON_NOT_AT_PEAK);
  uint64_t saving[3] = {3452, 3452, 0};
  ck_assert_uint_eq(gs__plan_curve(&it, saving, NULL), 1096);
}
END_TEST

/* Budget 5000 B. Nothing probed: every candidate weighs numel (sens 1000 for A and B). Start:
 * all kept, peak 8000. A (the lower index of a tie) goes keep -> 8 bits: 160 + 8·125 = 1160 B
 * (32 groups of 32 at 8 bits), peak 5160, still over. Next step with the least variance per byte
 * saved: B keep -> 8 (adds V(8) = 1000/(4·255²) for 2840 bytes) rather than A 8 -> 7 (adds
 * V(7) - V(8) for 237 bytes: 7 bits go back to groups of 256). Peak 2320 <= 5000. D is not alive
 * at the peak: kept. */
START_TEST(budget_compresses_only_what_the_peak_needs) {
  make_iteration();
  gs__lifetime_analyze(&it);
  gs_policy_config c = fixed4;
  c.kind = GS_POLICY_BUDGET;
  c.budget = 5000;
  uint64_t est = 0;
  ck_assert_int_eq(gs__budget_plan(&c, &it, &est), 0);
  ck_assert_uint_eq(slots[A].next_bits, 8);
  ck_assert_uint_eq(slots[B].next_bits, 8);
  ck_assert_uint_eq(slots[A].next_reason, GS_REASON_BUDGET);
  ck_assert_uint_eq(slots[D].next_bits, 0);
  ck_assert_uint_eq(slots[D].next_reason, GS_REASON_NOT_AT_PEAK);
  ck_assert_uint_eq(est, 2320);
}
END_TEST

START_TEST(budget_loose_keeps_everything) {
  make_iteration();
  gs__lifetime_analyze(&it);
  gs_policy_config c = fixed4;
  c.kind = GS_POLICY_BUDGET;
  c.budget = 8000;
  uint64_t est = 0;
  ck_assert_int_eq(gs__budget_plan(&c, &it, &est), 0);
  for (int k = 0; k < 3; k++) ck_assert_uint_eq(slots[k].next_bits, 0);
  ck_assert_uint_eq(slots[A].next_reason, GS_REASON_BUDGET_FITS);
  ck_assert_uint_eq(est, 8000);
}
END_TEST

/* A budget under what 1-bit everything gives cannot be met: -ENOSPC, smallest plan set. */
START_TEST(budget_impossible) {
  make_iteration();
  gs__lifetime_analyze(&it);
  gs_policy_config c = fixed4;
  c.kind = GS_POLICY_BUDGET;
  c.budget = 100;
  uint64_t est = 0;
  ck_assert_int_eq(gs__budget_plan(&c, &it, &est), -ENOSPC);
  ck_assert_uint_eq(slots[A].next_bits, 1);
  ck_assert_uint_eq(slots[B].next_bits, 1);
  ck_assert_uint_gt(est, 100);
}
END_TEST

/* Average 2 bits over A and B (equal sizes): their widths must sum to 4. Probed C: 1 for A, 16
 * for B, so sens 1000 and 16000. V(1,3) = 1000/4 + 16000/(4·49) = 331.6 beats
 * V(2,2) = 1000/36 + 16000/36 = 472.2 and V(3,1): A gets 1 bit, B 3. D is not at the peak
 * (lifetime selection ran first) and is left out of the average. */
START_TEST(adaptive_moves_bits_to_the_sensitive) {
  make_iteration();
  gs_policy_config c = fixed4;
  c.kind = GS_POLICY_ADAPTIVE;
  c.bits = 2;
  slots[A].c = (gs_sens_ema){.c = 1, .n = 1};
  slots[B].c = (gs_sens_ema){.c = 16, .n = 1};
  slots[A].range_term = slots[B].range_term = 1000;
  gs__lifetime_analyze(&it);
  ck_assert_int_eq(gs__lifetime_select(&c, &it), 0);
  ck_assert_int_eq(gs__adaptive_plan(&c, &it), 0);
  ck_assert_uint_eq(slots[A].next_bits, 1);
  ck_assert_uint_eq(slots[B].next_bits, 3);
  ck_assert_uint_eq(slots[A].next_reason, GS_REASON_ADAPTIVE);
  ck_assert_uint_eq(slots[D].next_reason, GS_REASON_NOT_AT_PEAK);
}
END_TEST

/* Softmax outputs never go under 8 bits, in the adaptive policy too. */
START_TEST(adaptive_keeps_the_sensitive_floor) {
  make_iteration();
  gs_policy_config c = fixed4;
  c.kind = GS_POLICY_ADAPTIVE;
  c.select = GS_SELECT_ALL;
  c.bits = 2;
  slots[B].sensitive = true;
  ck_assert_uint_eq(gs__plan_fixed_bits(&c, &slots[B]), 8);
  ck_assert_int_eq(gs__adaptive_plan(&c, &it), 0);
  ck_assert_uint_eq(slots[B].next_bits, 8);
}
END_TEST

/* --- one tensor's decision ----------------------------------------------------------------- */

static gs_policy_desc desc(int dtype, uint64_t bytes, bool sensitive) {
  static int64_t shape[1] = {1000};
  gs_policy_desc d = {.ndim = 1, .shape = shape, .dtype = dtype, .bytes = bytes, .device = -1,
                      .sensitive = sensitive};
  return d;
}

START_TEST(decide_rules) {
  gs_policy_desc d = desc(GS_DTYPE_F32, 4000, false);
  ck_assert_uint_eq(gs_policy_decide(&fixed4, &d).bits, 4);
  gs_policy_config off = fixed4;
  off.kind = GS_POLICY_OFF;
  gs_policy_decision r = gs_policy_decide(&off, &d);
  ck_assert_uint_eq(r.bits, 0);
  ck_assert_int_eq(r.keep, GS_KEEP_POLICY);
  d = desc(GS_POLICY_DTYPE_OTHER, 4000, false);
  ck_assert_int_eq(gs_policy_decide(&fixed4, &d).keep, GS_KEEP_DTYPE);
  d = desc(GS_DTYPE_F32, 63, false);
  r = gs_policy_decide(&fixed4, &d);
  ck_assert_uint_eq(r.bits, 0);
  ck_assert_int_eq(r.keep, GS_KEEP_SMALL);
  d = desc(GS_DTYPE_BOOL, 4000, false);
  ck_assert_uint_eq(gs_policy_decide(&fixed4, &d).bits, 1);
  gs_policy_config two = fixed4;
  two.bits = 2;
  d = desc(GS_DTYPE_BF16, 2000, true);
  ck_assert_uint_eq(gs_policy_decide(&two, &d).bits, 8);
  gs_policy_config keep16 = fixed4;
  keep16.bits = 16;
  d = desc(GS_DTYPE_F32, 4000, false);
  ck_assert_uint_eq(gs_policy_decide(&keep16, &d).bits, 0);
}
END_TEST

/* --- the plans across iterations: identity by position and shapes ------------------------ */

static void pack(uint32_t k, int64_t n, uint64_t equiv, uint64_t now) {
  int64_t shape[1] = {n};
  gs_policy_desc d = {.iteration = 0, .index = k, .ndim = 1, .shape = shape,
                      .dtype = GS_DTYPE_F32, .bytes = (uint64_t)n * 4, .device = -1};
  gs_plan_pack p = {.d = &d, .bits = 4, .reason = GS_REASON_WARMUP, .candidate = true,
                    .held = (uint64_t)n * 4, .now_ns = now, .equiv = equiv};
  gs__plan_note_pack(&p);
}

/* Iteration 0 records the hand-made iteration through the engine-facing calls; iteration 1 then
 * follows its plan for the same identities, and a tensor of another shape falls back to warm-up. */
START_TEST(plan_follows_identities) {
  gs__plan_configure(&fixed4);
  gs__plan_begin(0, 1000);
  pack(A, 1000, 4000, 1001);
  pack(B, 1000, 8000, 1002);
  gs__plan_note_death(0, A, 4000);
  gs__plan_note_death(0, B, 0);
  pack(D, 100, 400, 1003);
  gs__plan_note_death(0, D, 0);
  gs__plan_begin(1, 2000);
  const gs_plan_iter *last = gs__plan_last();
  ck_assert_ptr_nonnull(last);
  ck_assert_uint_eq(last->peak_equiv, 8000);
  int64_t big[1] = {1000}, small[1] = {100}, other[1] = {999};
  gs_plan_reason why;
  gs_policy_desc d = {.iteration = 1, .index = 0, .ndim = 1, .shape = big,
                      .dtype = GS_DTYPE_F32, .bytes = 4000, .device = -1};
  ck_assert_uint_eq(gs__plan_decide(&d, &why).bits, 4);
  ck_assert_int_eq(why, GS_REASON_AT_PEAK);
  pack(A, 1000, 4000, 2001);
  d.index = 1;
  ck_assert_uint_eq(gs__plan_decide(&d, &why).bits, 4);
  pack(B, 1000, 8000, 2002);
  d.index = 2;
  d.shape = small;
  d.bytes = 400;
  gs_policy_decision r = gs__plan_decide(&d, &why);
  ck_assert_uint_eq(r.bits, 0);
  ck_assert_int_eq(why, GS_REASON_NOT_AT_PEAK);
  ck_assert_int_eq(r.keep, GS_KEEP_POLICY);
  d.shape = other; /* another shape at the same position: no identity, warm-up */
  d.bytes = 3996;
  ck_assert_uint_eq(gs__plan_decide(&d, &why).bits, 4);
  ck_assert_int_eq(why, GS_REASON_WARMUP);
}
END_TEST

START_TEST(probing_schedule) {
  gs__plan_configure(&fixed4);
  ck_assert(!gs__plan_probing(0));
  gs_policy_config c = fixed4;
  c.kind = GS_POLICY_ADAPTIVE;
  c.adapt_every = 10;
  gs__plan_configure(&c);
  ck_assert(gs__plan_probing(0) && gs__plan_probing(2) && !gs__plan_probing(3));
  ck_assert(gs__plan_probing(20) && !gs__plan_probing(21));
}
END_TEST

static Suite *plan_suite(void) {
  Suite *s = suite_create("policy-plan");
  TCase *t = tcase_create("plan");
  tcase_add_test(t, slot_bytes_by_hand);
  tcase_add_test(t, lifetime_finds_the_peak);
  tcase_add_test(t, lifetime_keeps_what_fits_under_the_peak);
  tcase_add_test(t, budget_compresses_only_what_the_peak_needs);
  tcase_add_test(t, budget_loose_keeps_everything);
  tcase_add_test(t, budget_impossible);
  tcase_add_test(t, adaptive_moves_bits_to_the_sensitive);
  tcase_add_test(t, adaptive_keeps_the_sensitive_floor);
  tcase_add_test(t, decide_rules);
  tcase_add_test(t, plan_follows_identities);
  tcase_add_test(t, probing_schedule);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return gs_check_run(plan_suite());
}
