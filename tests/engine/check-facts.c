/* check-facts.c: pack's decision from hand-made tensor facts — the keep rules, then the policy. */
#include "engine.h"

#include <check.h>
#include "../check_run.h"
#include <string.h>

static const gs_policy_config fixed4_all = {.kind = GS_POLICY_FIXED, .select = GS_SELECT_ALL,
                                            .bits = 4, .min_bytes = 65536, .group = 256,
                                            .adapt_every = 50};

/* A CPU fp32 activation of the given shape, row-major. */
static gs_tensor_facts activation(int ndim, const int64_t *shape) {
  gs_tensor_facts f;
  memset(&f, 0, sizeof(f));
  f.strided = true;
  f.dtype = GS_DTYPE_F32;
  f.device = -1;
  f.ndim = ndim;
  int64_t step = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    f.shape[d] = shape[d];
    f.stride[d] = step;
    step *= shape[d];
  }
  gs__facts_geometry(&f);
  return f;
}

START_TEST(geometry_of_layouts) {
  int64_t nchw[4] = {8, 16, 32, 32};
  gs_tensor_facts f = activation(4, nchw);
  ck_assert_uint_eq(f.numel, 8 * 16 * 32 * 32);
  ck_assert_uint_eq(f.bytes, f.numel * 4);
  ck_assert(f.contiguous && f.dense);
  /* channels_last: strides (C·H·W, 1, W·C, C) — dense, not row-major. */
  int64_t cl[4] = {16 * 32 * 32, 1, 32 * 16, 16};
  memcpy(f.stride, cl, sizeof(cl));
  gs__facts_geometry(&f);
  ck_assert(!f.contiguous && f.dense);
  /* A broadcast (stride 0 over a dim of size 8): neither; a slice with gaps: neither. */
  f.stride[0] = 0;
  gs__facts_geometry(&f);
  ck_assert(!f.contiguous && !f.dense);
  int64_t m[2] = {64, 64};
  f = activation(2, m);
  f.stride[0] = 128;
  gs__facts_geometry(&f);
  ck_assert(!f.contiguous && !f.dense);
  /* bf16 halves the bytes. */
  f = activation(2, m);
  f.dtype = GS_DTYPE_BF16;
  gs__facts_geometry(&f);
  ck_assert_uint_eq(f.bytes, 64 * 64 * 2);
}
END_TEST

START_TEST(kept_before_the_policy) {
  gs__plan_configure(&fixed4_all);
  int64_t big[2] = {512, 512};
  gs_tensor_facts f = activation(2, big);
  f.param = true;
  gs_pack_choice c = gs__facts_decide(&f, 0, 0);
  ck_assert_uint_eq(c.bits, 0);
  ck_assert_int_eq(c.skip, GS_SKIP_PARAM);
  ck_assert(!c.candidate);
  ck_assert_int_eq(c.reason, GS_REASON_SKIPPED);
  f = activation(2, big);
  f.strided = false;
  ck_assert_int_eq(gs__facts_decide(&f, 0, 0).skip, GS_SKIP_LAYOUT);
  f = activation(2, big);
  f.dtype = GS_POLICY_DTYPE_OTHER;
  ck_assert_int_eq(gs__facts_decide(&f, 0, 0).skip, GS_SKIP_DTYPE);
  f = activation(2, big);
  f.too_many_dims = true;
  ck_assert_int_eq(gs__facts_decide(&f, 0, 0).skip, GS_SKIP_LAYOUT);
  /* A subclass wins over everything (nothing else of it is read), then a parameter. */
  f = activation(2, big);
  f.subclass = f.param = true;
  ck_assert_int_eq(gs__facts_decide(&f, 0, 0).skip, GS_SKIP_SUBCLASS);
  f = activation(2, big);
  f.other_device = true;
  ck_assert_int_eq(gs__facts_decide(&f, 0, 0).skip, GS_SKIP_DEVICE);
  ck_assert_uint_eq(gs__facts_decide(&f, 0, 0).bits, 0);
  /* A broadcast (an expanded mask): a stride-0 dim of size > 1 is kept; of size 1 it is not one. */
  int64_t heads[3] = {8, 512, 512};
  f = activation(3, heads);
  f.stride[0] = 0;
  gs__facts_geometry(&f);
  ck_assert(f.broadcast);
  ck_assert_int_eq(gs__facts_decide(&f, 0, 0).skip, GS_SKIP_LAYOUT);
  int64_t one[3] = {1, 512, 512};
  f = activation(3, one);
  f.stride[0] = 0;
  gs__facts_geometry(&f);
  ck_assert(!f.broadcast);
  ck_assert_uint_eq(gs__facts_decide(&f, 0, 0).bits, 4);
}
END_TEST

START_TEST(asked_the_policy) {
  gs__plan_configure(&fixed4_all);
  int64_t big[2] = {512, 512}, small[2] = {64, 64};
  gs_tensor_facts f = activation(2, big);
  gs_pack_choice c = gs__facts_decide(&f, 0, 0);
  ck_assert_uint_eq(c.bits, 4);
  ck_assert(c.candidate);
  ck_assert(!c.probe);
  ck_assert_int_eq(c.reason, GS_REASON_FIXED);
  f.producer_flags = GS_PRODUCER_SENSITIVE; /* a softmax output: 8 bits at least */
  ck_assert_uint_eq(gs__facts_decide(&f, 0, 0).bits, 8);
  f = activation(2, small); /* 16 KiB: under GACTSHIM_MIN_BYTES */
  c = gs__facts_decide(&f, 0, 0);
  ck_assert_uint_eq(c.bits, 0);
  ck_assert_int_eq(c.skip, GS_SKIP_SMALL);
  ck_assert(!c.candidate);
  gs_policy_config adaptive = fixed4_all;
  adaptive.kind = GS_POLICY_ADAPTIVE;
  gs__plan_configure(&adaptive);
  f = activation(2, big);
  c = gs__facts_decide(&f, 0, 0);
  ck_assert(c.probe); /* the first iterations are probed */
  ck_assert_int_eq(c.reason, GS_REASON_WARMUP);
  gs_policy_config off = fixed4_all;
  off.kind = GS_POLICY_OFF;
  gs__plan_configure(&off);
  c = gs__facts_decide(&f, 0, 0);
  ck_assert_uint_eq(c.bits, 0);
  ck_assert_int_eq(c.skip, GS_SKIP_POLICY);
}
END_TEST

START_TEST(groups_follow_rows) {
  /* LayerNorm over a width of 192 (ViT-tiny): one group per token, not 256 across two. */
  int64_t vit[3] = {8, 197, 192}, llama[3] = {4, 64, 768}, odd[2] = {64, 1000};
  gs_tensor_facts f = activation(3, vit);
  ck_assert_uint_eq(gs__facts_group(&f, 256), 192);
  f = activation(3, llama); /* 256 divides 768: the default, aligned already */
  ck_assert_uint_eq(gs__facts_group(&f, 256), 256);
  ck_assert_uint_eq(gs__facts_group(&f, 128), 128);
  /* NCHW with 56x56 planes: no multiple of 32 divides 56; 224 (32x7) divides the plane (3136). */
  int64_t nchw[4] = {8, 64, 56, 56};
  f = activation(4, nchw);
  ck_assert_uint_eq(gs__facts_group(&f, 256), 224);
  /* The same tensor channels_last: memory order C, W, H, N; 64 channels per position. */
  int64_t cl[4] = {64 * 56 * 56, 1, 56 * 64, 64};
  memcpy(f.stride, cl, sizeof(cl));
  gs__facts_geometry(&f);
  ck_assert(f.dense);
  ck_assert_uint_eq(gs__facts_group(&f, 256), 64);
  ck_assert(!gs__facts_copied(&f, 256)); /* a ReLU output, say: encoded as it lies */
  /* A convolution's channels_last output is read from an NCHW copy: groups follow planes. */
  f.producer_flags = GS_PRODUCER_CONV;
  ck_assert(gs__facts_copied(&f, 256));
  ck_assert_uint_eq(gs__facts_group(&f, 256), 224);
  f.producer_flags = 0;
  /* A row-major copy is what a non-dense tensor is encoded from: its logical order counts. */
  f.stride[0] = 2 * 64 * 56 * 56;
  gs__facts_geometry(&f);
  ck_assert(!f.dense);
  ck_assert_uint_eq(gs__facts_group(&f, 256), 224); /* 56 no, 56x56 yes */
  /* 7x7 planes and rows of 1000: nothing aligns (49 and 1000 have no multiple of 32 as a
   * divisor) until an outer dim, which then takes the default. */
  int64_t small[4] = {8, 512, 7, 7};
  f = activation(4, small);
  ck_assert_uint_eq(gs__facts_group(&f, 256), 256);
  int64_t small_cl[4] = {512 * 7 * 7, 1, 7 * 512, 512}; /* its conv output channels_last: no copy */
  memcpy(f.stride, small_cl, sizeof(small_cl));
  gs__facts_geometry(&f);
  f.producer_flags = GS_PRODUCER_CONV;
  ck_assert(!gs__facts_copied(&f, 256));
  ck_assert_uint_eq(gs__facts_group(&f, 256), 256);
  f = activation(2, odd);
  ck_assert_uint_eq(gs__facts_group(&f, 256), 256);
  /* Size-1 dims do not break a row: [N, 1, 192]. */
  int64_t one[3] = {16, 1, 192};
  f = activation(3, one);
  ck_assert_uint_eq(gs__facts_group(&f, 256), 192);
}
END_TEST

static Suite *facts_suite(void) {
  Suite *s = suite_create("engine-facts");
  TCase *t = tcase_create("facts");
  tcase_add_test(t, geometry_of_layouts);
  tcase_add_test(t, kept_before_the_policy);
  tcase_add_test(t, asked_the_policy);
  tcase_add_test(t, groups_follow_rows);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return gs_check_run(facts_suite());
}
