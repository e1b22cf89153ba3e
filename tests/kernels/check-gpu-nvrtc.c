/* check-gpu-nvrtc.c: the run-time compile fallback. The stand-in driver plays a GPU the fatbin has
 * no code for (GS_STANDIN_MODULE_LOAD=nobinary, CUDA_ERROR_NO_BINARY_FOR_GPU), the stand-in NVRTC
 * (libnvrtc.so.13 on LD_LIBRARY_PATH) compiles. */
#include "gactshim.h"
#include "kernels.h"
#include "standin.h"
#include "standin_calls.h"

#include <check.h>
#include "../check_run.h"
#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKIP 77


static int compiles(void) {
  void *h = dlopen("libnvrtc.so.13", RTLD_NOW | RTLD_NOLOAD);
  int (*f)(void) = h ? (int (*)(void))dlsym(h, "gs_standin_nvrtc_compiles") : NULL;
  return f ? f() : 0; /* not loaded yet: nothing compiled */
}

/* A fresh cache folder for each test (each runs in a process of its own). */
static char g_cache[64];
static void fresh_cache(void) {
  strcpy(g_cache, "/tmp/gs-nvrtc-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_cache));
  setenv("XDG_CACHE_HOME", g_cache, 1);
  setenv("GS_STANDIN_MODULE_LOAD", "nobinary", 1);
  unsetenv("GS_STANDIN_NVRTC");
}

static int cached_files(char *first, size_t len) {
  char pat[128];
  glob_t g;
  snprintf(pat, sizeof pat, "%s/gactshim/codec-*-sm_90-nvrtc13.0.cubin", g_cache);
  int n = glob(pat, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  if (n > 0 && first) snprintf(first, len, "%s", g.gl_pathv[0]);
  if (n > 0) globfree(&g);
  return n;
}

START_TEST(test_fatbin_when_it_loads) {
  fresh_cache();
  unsetenv("GS_STANDIN_MODULE_LOAD");
  ck_assert_int_eq(compress(), 0);
  ck_assert_str_eq(gs_gpu_load_source(NULL, NULL), "fatbin");
  ck_assert_int_eq(compiles(), 0);
}
END_TEST

/* No code for this GPU in the fatbin: compiled once for sm_90, cached, used by every tensor. */
START_TEST(test_no_binary_compiles_once) {
  fresh_cache();
  int64_t loads = gs_standin_module_loads();
  for (int i = 0; i < 50; i++) ck_assert_int_eq(compress(), 0);
  ck_assert_str_eq(gs_gpu_load_source(NULL, NULL), "nvrtc");
  ck_assert_int_eq(compiles(), 1);
  ck_assert_int_eq(gs_standin_module_loads() - loads, 2); /* the fatbin, then the compiled image */
  ck_assert_int_eq(gs_gpu_load_status(NULL, NULL), 0);
  ck_assert_int_eq(cached_files(NULL, 0), 1);
}
END_TEST

/* Another context of the same architecture (or another process) reads the disk cache. */
START_TEST(test_cache_reused) {
  fresh_cache();
  void *ctx1 = NULL;
  ck_assert_int_eq(compress(), 0);
  ck_assert_int_eq(cuDevicePrimaryCtxRetain(&ctx1, 1), 0);
  ck_assert_int_eq(cuCtxSetCurrent(ctx1), 0);
  ck_assert_int_eq(compress(), 0);
  ck_assert_str_eq(gs_gpu_load_source(NULL, NULL), "nvrtc");
  ck_assert_int_eq(compiles(), 1);
}
END_TEST

/* A damaged cache file does not load: compiled again, and the file replaced. */
START_TEST(test_damaged_cache_recompiled) {
  fresh_cache();
  ck_assert_int_eq(compress(), 0); /* writes the cache file, in this process's own context 0 */
  char path[256];
  ck_assert_int_eq(cached_files(path, sizeof path), 1);
  FILE *f = fopen(path, "w");
  fputs("garbage", f);
  fclose(f);
  void *ctx1 = NULL;
  ck_assert_int_eq(cuDevicePrimaryCtxRetain(&ctx1, 1), 0);
  ck_assert_int_eq(cuCtxSetCurrent(ctx1), 0);
  ck_assert_int_eq(compress(), 0);
  ck_assert_int_eq(compiles(), 2);
  f = fopen(path, "r");
  char head[16] = {0};
  ck_assert_int_eq(fread(head, 1, 15, f), 15);
  fclose(f);
  ck_assert_str_eq(head, "GSSTANDIN-CUBIN");
}
END_TEST

/* The compile fails: every tensor stays exact, the compile was tried once, and the CUresult of
 * the fatbin (the one that says why) and NVRTC's reason are there for the one warning. */
START_TEST(test_compile_failure_tried_once) {
  fresh_cache();
  setenv("GS_STANDIN_NVRTC", "fail", 1);
  for (int i = 0; i < 100; i++) ck_assert_int_eq(compress(), -ENOEXEC);
  ck_assert_int_eq(compiles(), 1);
  int cu = 0;
  const char *why = NULL;
  ck_assert_int_eq(gs_gpu_load_status(NULL, &cu), -ENOEXEC);
  ck_assert_int_eq(cu, 209);
  ck_assert_ptr_null(gs_gpu_load_source(NULL, &why));
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strstr(why, "compiling codec.cu failed") && strstr(why, "sm_90"), "%s", why);
  ck_assert_int_eq(cached_files(NULL, 0), 0);
}
END_TEST

START_TEST(test_unusable_nvrtc) {
  fresh_cache();
  setenv("GS_STANDIN_NVRTC", "broken", 1);
  for (int i = 0; i < 10; i++) ck_assert_int_eq(compress(), -ENOEXEC);
  const char *why = NULL;
  gs_gpu_load_source(NULL, &why);
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strstr(why, "NVRTC does not work") != NULL, "%s", why);
}
END_TEST

int main(void) {
  if (gs_gpu_load_status(NULL, NULL) == -ENOSYS) {
    printf("SKIP: library built without CUDA kernels (-Dcuda=disabled or no nvcc)\n");
    return SKIP;
  }
  Suite *s = suite_create("gpu-nvrtc");
  TCase *tc = tcase_create("stand-in driver and NVRTC");
  tcase_add_test(tc, test_fatbin_when_it_loads);
  tcase_add_test(tc, test_no_binary_compiles_once);
  tcase_add_test(tc, test_cache_reused);
  tcase_add_test(tc, test_damaged_cache_recompiled);
  tcase_add_test(tc, test_compile_failure_tried_once);
  tcase_add_test(tc, test_unusable_nvrtc);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
