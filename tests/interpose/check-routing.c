/* check-routing.c: the dlsym and cuGetProcAddress hooks, black-box: this program links
 * libgactshim.so ahead of libc (so its dlsym is ours) and loads the stand-in driver. */
#include "standin.h"

#include <check.h>
#include "../check_run.h"
#include <stdbool.h>
#include <dlfcn.h>
#include <string.h>

typedef int (*gpa_v2_fn)(const char *, void **, int, unsigned long long, int *);
typedef int (*gpa_v1_fn)(const char *, void **, int, unsigned long long);
typedef int (*alloc_fn)(unsigned long long *, size_t, void *);
typedef int (*free_fn)(unsigned long long, void *);

int gs_next_probe(void);
void *gs_next_from_a(const char *name);
void *gs_next_from_b(const char *name);

/* dlsym as a binary linked against glibc < 2.34 (libdl) binds it: the shim exports that version too. */
void *gs_old_dlsym(void *handle, const char *name);
__asm__(".symver gs_old_dlsym, dlsym@GLIBC_2.2.5");

static void *drv;

static void setup(void) {
  drv = dlopen("libcuda.so.1", RTLD_NOW);
  ck_assert_ptr_nonnull(drv);
}

static void teardown(void) { dlclose(drv); }

static bool in_shim(void *p) {
  Dl_info info;
  return p && dladdr(p, &info) && strstr(info.dli_fname, "libgactshim") != NULL;
}

static const char *const watched[] = {
  "cuMemAlloc_v2", "cuMemAllocPitch_v2", "cuMemAllocManaged", "cuMemFree_v2", "cuMemAllocAsync",
  "cuMemAllocAsync_ptsz", "cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync_ptsz", "cuMemFreeAsync",
  "cuMemFreeAsync_ptsz", "cuMemCreate", "cuMemRelease", "cuMemMap", "cuMemUnmap", "cuMemAddressReserve",
  "cuMemAddressFree", "cuMemHostAlloc", "cuMemAllocHost_v2", "cuMemFreeHost", "cuGetProcAddress",
  "cuGetProcAddress_v2",
};

START_TEST(dlsym_substitutes_exact_names) {
  for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++) {
    void *p = dlsym(drv, watched[i]);
    ck_assert_msg(in_shim(p), "%s not substituted", watched[i]);
    ck_assert_ptr_ne(p, gs_standin_address(watched[i]));
  }
  /* Distinct wrappers per exact name: _ptsz is not folded into the plain one. */
  ck_assert_ptr_ne(dlsym(drv, "cuMemAllocAsync"), dlsym(drv, "cuMemAllocAsync_ptsz"));
}
END_TEST

START_TEST(old_dlsym_version_is_hooked) {
  void *p = gs_old_dlsym(drv, "cuMemAlloc_v2");
  ck_assert(in_shim(p));
  ck_assert_ptr_eq(p, dlsym(drv, "cuMemAlloc_v2"));
  ck_assert_ptr_eq(gs_old_dlsym(drv, "cudnnGetVersion"), gs_standin_address("cudnnGetVersion"));
}
END_TEST

START_TEST(dlsym_leaves_other_names) {
  const char *const others[] = {"cuMemAlloc", "cuInit", "cuCtxGetCurrent", "cuCtxGetDevice", "cudnnGetVersion"};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    ck_assert_msg(dlsym(drv, others[i]) == gs_standin_address(others[i]), "%s was touched", others[i]);
  ck_assert_ptr_null(dlsym(drv, "cuNoSuchFunction"));
  ck_assert_ptr_nonnull(dlerror());
}
END_TEST

START_TEST(get_proc_address_routes_by_pointer) {
  gpa_v2_fn gpa = (gpa_v2_fn)dlsym(drv, "cuGetProcAddress_v2");
  void *fn = NULL;
  int st = -1;
  ck_assert_int_eq(gpa("cuMemAlloc", &fn, 12000, 0, &st), 0);
  ck_assert_int_eq(st, 0);
  ck_assert(in_shim(fn));
  ck_assert_ptr_eq(fn, dlsym(drv, "cuMemAlloc_v2"));
  /* Below CUDA 3.2 the driver hands out the v1 ABI, which is not ours to wrap. */
  ck_assert_int_eq(gpa("cuMemAlloc", &fn, 3000, 0, &st), 0);
  ck_assert_ptr_eq(fn, gs_standin_address("cuMemAlloc"));
  /* Per-thread default stream: the _ptsz function, and its own wrapper. */
  ck_assert_int_eq(gpa("cuMemAllocAsync", &fn, 12000, 2, &st), 0);
  ck_assert_ptr_eq(fn, dlsym(drv, "cuMemAllocAsync_ptsz"));
  ck_assert_int_eq(gpa("cuMemAllocAsync", &fn, 12000, 1, &st), 0);
  ck_assert_ptr_eq(fn, dlsym(drv, "cuMemAllocAsync"));
  /* Untouched: a version too old, an unknown name, a name outside the allow-list. */
  ck_assert_int_ne(gpa("cuMemAllocAsync", &fn, 11000, 0, &st), 0);
  ck_assert_int_eq(st, 2);
  ck_assert_int_ne(gpa("cudnnGetVersion", &fn, 12000, 0, &st), 0);
  ck_assert_int_eq(st, 1);
  ck_assert_int_eq(gpa("cuInit", &fn, 12000, 0, &st), 0);
  ck_assert_ptr_eq(fn, gs_standin_address("cuInit"));
}
END_TEST

START_TEST(null_symbol_status) {
  gpa_v2_fn gpa = (gpa_v2_fn)dlsym(drv, "cuGetProcAddress_v2");
  void *fn = NULL;
  ck_assert_int_eq(gpa("cuMemFree", &fn, 12000, 0, NULL), 0);
  ck_assert_ptr_eq(fn, dlsym(drv, "cuMemFree_v2"));
  ck_assert_int_ne(gpa("cudnnGetVersion", &fn, 12000, 0, NULL), 0);
}
END_TEST

START_TEST(self_lookup_returns_wrapper) {
  gpa_v2_fn gpa = (gpa_v2_fn)dlsym(drv, "cuGetProcAddress_v2");
  void *fn = NULL;
  int st;
  ck_assert_int_eq(gpa("cuGetProcAddress", &fn, 12000, 0, &st), 0);
  ck_assert_ptr_eq(fn, (void *)gpa);
  ck_assert_int_eq(gpa("cuGetProcAddress", &fn, 11030, 0, &st), 0); /* the 4-argument v1 */
  ck_assert_ptr_eq(fn, dlsym(drv, "cuGetProcAddress"));
  ck_assert(in_shim(fn));
  gpa_v1_fn v1 = (gpa_v1_fn)fn;
  ck_assert_int_eq(v1("cuMemAlloc", &fn, 11030, 0), 0);
  ck_assert_ptr_eq(fn, dlsym(drv, "cuMemAlloc_v2"));
}
END_TEST

START_TEST(wrappers_call_the_driver) {
  gpa_v2_fn gpa = (gpa_v2_fn)dlsym(drv, "cuGetProcAddress_v2");
  alloc_fn alloc;
  free_fn release;
  ck_assert_int_eq(gpa("cuMemAllocAsync", (void **)&alloc, 12000, 2, NULL), 0);
  ck_assert_int_eq(gpa("cuMemFreeAsync", (void **)&release, 12000, 2, NULL), 0);
  int64_t before = gs_standin_outstanding();
  unsigned long long d = 0;
  ck_assert_int_eq(alloc(&d, 4096, NULL), 0);
  ck_assert_int_eq(gs_standin_outstanding(), before + 1);
  ck_assert_int_eq(release(d, NULL), 0);
  ck_assert_int_eq(gs_standin_outstanding(), before);
}
END_TEST

static void check_next(const char *name) {
  void *from_main = dlsym(RTLD_NEXT, name);
  ck_assert_ptr_nonnull(from_main);
  ck_assert_int_eq(((int (*)(void))from_main)(), 'a');
  void *from_a = gs_next_from_a(name);
  ck_assert_ptr_nonnull(from_a);
  ck_assert_int_eq(((int (*)(void))from_a)(), 'b'); /* not 'a': that would recurse */
  ck_assert_ptr_null(gs_next_from_b(name));
  const char *e = dlerror();
  ck_assert_ptr_nonnull(e);
  ck_assert_ptr_nonnull(strstr(e, name));
}

START_TEST(rtld_next_is_relative_to_the_caller) {
  check_next("gs_next_probe"); /* answered by glibc from the caller's return address */
  check_next("cuGsNextProbe"); /* answered by the shim's emulation */
  ck_assert_ptr_nonnull(dlsym(RTLD_NEXT, "malloc"));
  ck_assert_ptr_nonnull(gs_next_from_b("malloc"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("routing");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, dlsym_substitutes_exact_names);
  tcase_add_test(tc, old_dlsym_version_is_hooked);
  tcase_add_test(tc, dlsym_leaves_other_names);
  tcase_add_test(tc, get_proc_address_routes_by_pointer);
  tcase_add_test(tc, null_symbol_status);
  tcase_add_test(tc, self_lookup_returns_wrapper);
  tcase_add_test(tc, wrappers_call_the_driver);
  tcase_add_test(tc, rtld_next_is_relative_to_the_caller);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
