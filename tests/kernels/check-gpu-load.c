/* check-gpu-load.c: the GPU kernels' module is loaded once per context, failures included (on the
 * stand-in driver, which the program links: gpu.c only uses a libcuda.so.1 already loaded). */
#include "gactshim.h"
#include "standin.h"
#include "standin_calls.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define SKIP 77


static void *device_ctx(int dev) {
  void *ctx = NULL;
  ck_assert_int_eq(cuDevicePrimaryCtxRetain(&ctx, dev), 0);
  return ctx;
}

/* Status of ctx (NULL: current) and its CUresult, asserted. */
static void assert_status(void *ctx, int rc, int curesult) {
  int cu = -1;
  ck_assert_int_eq(gs_gpu_load_status(ctx, &cu), rc);
  ck_assert_int_eq(cu, curesult);
}

START_TEST(test_failure_tried_once_per_context) {
  setenv("GS_STANDIN_MODULE_LOAD", "fail", 1);
  void *ctx0 = device_ctx(0), *ctx1 = device_ctx(1);
  int64_t loads = gs_standin_module_loads(), launches = gs_standin_launches();
  ck_assert_int_eq(cuCtxSetCurrent(ctx0), 0);
  assert_status(NULL, -ENOENT, 0);
  for (int i = 0; i < 100; i++) {
    ck_assert_int_eq(compress(), -ENOEXEC);
    ck_assert_int_eq(decompress(), -ENOEXEC);
  }
  ck_assert_int_eq(gs_standin_module_loads() - loads, 1);
  assert_status(NULL, -ENOEXEC, 209); /* CUDA_ERROR_NO_BINARY_FOR_GPU */
  assert_status(ctx0, -ENOEXEC, 209);
  assert_status(ctx1, -ENOENT, 0);
  /* Another context tries once for itself. */
  ck_assert_int_eq(cuCtxSetCurrent(ctx1), 0);
  for (int i = 0; i < 100; i++) ck_assert_int_eq(compress(), -ENOEXEC);
  ck_assert_int_eq(gs_standin_module_loads() - loads, 2);
  assert_status(NULL, -ENOEXEC, 209);
  assert_status(ctx0, -ENOEXEC, 209);
  ck_assert_int_eq(gs_standin_launches(), launches);
  ck_assert_int_eq(gs_gpu_load_status(ctx1, NULL), -ENOEXEC); /* curesult is optional */
}
END_TEST

START_TEST(test_failure_names_its_curesult) {
  setenv("GS_STANDIN_MODULE_LOAD", "218", 1); /* CUDA_ERROR_INVALID_PTX */
  ck_assert_int_eq(compress(), -ENOEXEC);
  assert_status(NULL, -ENOEXEC, 218);
}
END_TEST

START_TEST(test_success_loaded_once) {
  unsetenv("GS_STANDIN_MODULE_LOAD");
  int64_t loads = gs_standin_module_loads(), launches = gs_standin_launches();
  assert_status(NULL, -ENOENT, 0);
  for (int i = 0; i < 50; i++) ck_assert_int_eq(compress(), 0);
  ck_assert_int_eq(gs_standin_module_loads() - loads, 1);
  ck_assert_int_eq(gs_standin_launches() - launches, 100); /* header and compress kernels */
  assert_status(NULL, 0, 0);
}
END_TEST

static void *failing_caller(void *arg) {
  intptr_t bad = gs_gpu_use_device(0) != 0; /* a new thread has no context: the engine's call */
  for (int i = 0; i < 200; i++) bad |= compress() != -ENOEXEC;
  return (void *)(bad | (intptr_t)arg);
}

/* Threads meeting the failure at once still make one attempt (the stand-in's current context is
 * per thread, none in a new thread). */
START_TEST(test_concurrent_failures_once) {
  setenv("GS_STANDIN_MODULE_LOAD", "fail", 1);
  int64_t loads = gs_standin_module_loads();
  pthread_t t[4];
  for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, failing_caller, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    ck_assert(bad == NULL);
  }
  ck_assert_int_eq(gs_standin_module_loads() - loads, 1);
  assert_status(device_ctx(0), -ENOEXEC, 209);
}
END_TEST

START_TEST(test_no_current_context) {
  ck_assert_int_eq(cuCtxSetCurrent(NULL), 0);
  assert_status(NULL, -ENODEV, 0);
  ck_assert_int_eq(compress(), -ENODEV);
  assert_status(device_ctx(0), -ENOENT, 0);
}
END_TEST

/* PyTorch's autograd thread on device 0 may have no current context (pytorch#124565): the
 * decompress of its first backward node failed with -ENODEV. gs_gpu_use_device, which the engine
 * calls before each launch, makes the device's primary context current. */
static void *cold_thread(void *arg) {
  (void)arg;
  void *ctx = (void *)1;
  intptr_t bad = cuCtxGetCurrent(&ctx) != 0 || ctx != NULL; /* the stand-in plays it cold */
  bad |= (decompress() != -ENODEV) << 1;                     /* the defect, as it was met */
  bad |= (gs_gpu_use_device(0) != 0) << 2;
  bad |= (decompress() != 0) << 3;
  bad |= (compress() != 0) << 4;
  bad |= (cuCtxGetCurrent(&ctx) != 0 || ctx != device_ctx(0)) << 5;
  return (void *)bad;
}

START_TEST(test_cold_thread_decompresses) {
  unsetenv("GS_STANDIN_MODULE_LOAD");
  pthread_t t;
  void *bad = NULL;
  ck_assert_int_eq(pthread_create(&t, NULL, cold_thread, NULL), 0);
  pthread_join(t, &bad);
  ck_assert_msg(bad == NULL, "cold thread: failed checks mask %#lx", (unsigned long)(intptr_t)bad);
}
END_TEST

/* Another device's context current: the tensor's device's primary context is made current. */
START_TEST(test_use_device_switches_context) {
  void *ctx = NULL;
  ck_assert_int_eq(cuCtxSetCurrent(device_ctx(0)), 0);
  ck_assert_int_eq(gs_gpu_use_device(1), 0);
  ck_assert_int_eq(cuCtxGetCurrent(&ctx), 0);
  ck_assert_ptr_eq(ctx, device_ctx(1));
  ck_assert_int_eq(gs_gpu_use_device(1), 0); /* already current: nothing changes */
  ck_assert_int_eq(gs_gpu_use_device(7), -ENODEV); /* the stand-in has two devices */
  ck_assert_int_eq(gs_gpu_use_device(-1), -EINVAL);
}
END_TEST

/* Decompress on a capturing stream launches nothing (it used to be recorded into the graph). */
START_TEST(test_decompress_refuses_capture) {
  unsetenv("GS_STANDIN_MODULE_LOAD");
  int64_t launches = gs_standin_launches(), loads = gs_standin_module_loads();
  ck_assert_int_eq(gs_gpu_decompress(&P, (uint64_t)(uintptr_t)g_dst, (uint64_t)(uintptr_t)g_src,
                                     GS_STANDIN_CAPTURING_STREAM), -EBUSY);
  ck_assert_int_eq(gs_standin_launches(), launches);
  ck_assert_int_eq(gs_standin_module_loads(), loads);
}
END_TEST

/* The legacy stream queried while another stream captures (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT):
 * capturing, -EBUSY (counted as a capture), not -EIO (counted as a launch failure). */
START_TEST(test_legacy_stream_capture_elsewhere) {
  unsetenv("GS_STANDIN_MODULE_LOAD");
  setenv("GS_STANDIN_CAPTURE_ELSEWHERE", "1", 1);
  int64_t launches = gs_standin_launches();
  ck_assert_int_eq(gs_gpu_stream_capturing(NULL), 1);
  ck_assert_int_eq(compress(), -EBUSY);
  ck_assert_int_eq(decompress(), -EBUSY);
  ck_assert_int_eq(gs_standin_launches(), launches);
  unsetenv("GS_STANDIN_CAPTURE_ELSEWHERE");
  ck_assert_int_eq(gs_gpu_stream_capturing(NULL), 0);
}
END_TEST

/* The codec's own GPU time, from events around its launches: the stand-in's GPU clock gives each
 * launch 10 us (compress: header + compress kernels; decompress: one kernel). Nothing waits:
 * a pending end event is counted once it has completed. */
START_TEST(test_launches_timed_with_events) {
  unsetenv("GS_STANDIN_MODULE_LOAD");
  uint64_t ns, timed, untimed;
  ck_assert_int_eq(gs_gpu_kernel_time(&ns, &timed, &untimed), 0);
  ck_assert(ns == 0 && timed == 0 && untimed == 0);
  for (int i = 0; i < 10; i++) ck_assert_int_eq(compress(), 0);
  for (int i = 0; i < 5; i++) ck_assert_int_eq(decompress(), 0);
  ck_assert_int_eq(gs_gpu_kernel_time(&ns, &timed, &untimed), 0);
  ck_assert_uint_eq(timed, 15);
  ck_assert_uint_eq(untimed, 0);
  ck_assert_uint_eq(ns, 10 * 20000 + 5 * 10000);
  setenv("GS_STANDIN_EVENTS_PENDING", "1", 1);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(decompress(), 0);
  ck_assert_int_eq(gs_gpu_kernel_time(&ns, &timed, &untimed), 0);
  ck_assert_uint_eq(timed, 15); /* not complete yet: not counted, not waited for */
  unsetenv("GS_STANDIN_EVENTS_PENDING");
  ck_assert_int_eq(gs_gpu_kernel_time(&ns, &timed, &untimed), 0);
  ck_assert_uint_eq(timed, 18);
  ck_assert_uint_eq(ns, 10 * 20000 + 8 * 10000);
  /* More calls in flight than event pairs: the extra ones go untimed, nothing blocks. */
  setenv("GS_STANDIN_EVENTS_PENDING", "1", 1);
  for (int i = 0; i < 200; i++) ck_assert_int_eq(decompress(), 0);
  ck_assert_int_eq(gs_gpu_kernel_time(&ns, &timed, &untimed), 0);
  ck_assert_uint_eq(untimed, 200 - 128);
}
END_TEST

int main(void) {
  /* Resolves the driver and reads the table, loads nothing. Each test runs in a process of its
   * own (Check's default, CK_FORK unset), so each starts with no module loaded. */
  if (gs_gpu_load_status(NULL, NULL) == -ENOSYS) {
    printf("SKIP: library built without CUDA kernels (-Dcuda=disabled or no nvcc)\n");
    return SKIP;
  }
  Suite *s = suite_create("gpu-load");
  TCase *tc = tcase_create("stand-in driver");
  tcase_add_test(tc, test_failure_tried_once_per_context);
  tcase_add_test(tc, test_failure_names_its_curesult);
  tcase_add_test(tc, test_success_loaded_once);
  tcase_add_test(tc, test_concurrent_failures_once);
  tcase_add_test(tc, test_no_current_context);
  tcase_add_test(tc, test_cold_thread_decompresses);
  tcase_add_test(tc, test_use_device_switches_context);
  tcase_add_test(tc, test_decompress_refuses_capture);
  tcase_add_test(tc, test_legacy_stream_capture_elsewhere);
  tcase_add_test(tc, test_launches_timed_with_events);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
