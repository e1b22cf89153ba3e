/* check-registry.c: unit tests of the allocation registry and what it tells its observers. */
#include "registry.h"

#include <check.h>
#include "../check_run.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

static gs_alloc_record rec_of(uint64_t size, int dev, gs_alloc_kind kind) {
  gs_alloc_record r = {.size = size, .device = (int16_t)dev, .kind = (uint8_t)kind};
  return r;
}

/* The test's observer: keys the registry reported live (allocations minus frees), and the last
 * category change and out-of-memory answer it was told of. */
static int64_t seen_live;
static uint64_t seen_recat_key, seen_oom_size;
static int seen_recat_to = -1, seen_oom_device = -1, seen_oom_result;

static void count_alloc(uint64_t key, const gs_alloc_record *rec) {
  (void)key, (void)rec;
  __atomic_add_fetch(&seen_live, 1, __ATOMIC_RELAXED);
}
static void count_free(uint64_t key, const gs_alloc_record *rec) {
  (void)key, (void)rec;
  __atomic_sub_fetch(&seen_live, 1, __ATOMIC_RELAXED);
}
static void note_recat(uint64_t key, const gs_alloc_record *rec, gs_category to) {
  (void)rec;
  seen_recat_key = key;
  seen_recat_to = (int)to;
}
static void note_oom(uint64_t size, int device, int result) {
  seen_oom_size = size;
  seen_oom_device = device;
  seen_oom_result = result;
}
static const gs_registry_observer counter = {count_alloc, count_free, note_recat, note_oom};

static uint64_t live_keys(void) { return (uint64_t)__atomic_load_n(&seen_live, __ATOMIC_RELAXED); }

/* Whether key is live (and its record): taken out and put back, as a failed free does. */
static int peek(uint64_t key, gs_alloc_record *out) {
  gs_alloc_record r;
  int rc = gs__registry_remove(key, &r);
  if (rc == 0) {
    gs__registry_undo_remove(key, &r);
    if (out) *out = r;
  }
  return rc;
}

static void setup(void) {
  gs__registry_observe_none();
  ck_assert_int_eq(gs__registry_observe(&counter), 0);
  seen_live = 0;
  gs__registry_reset();
}

START_TEST(insert_remove_peak) {
  gs_alloc_record a = rec_of(100, 0, GS_KIND_DEVICE), b = rec_of(50, 0, GS_KIND_ASYNC_POOL), out;
  ck_assert_int_eq(gs__registry_insert(0x1000, &a), 0);
  ck_assert_int_eq(gs__registry_insert(0x2000, &b), 0);
  ck_assert_uint_eq(gs__registry_live_bytes(0), 150);
  ck_assert_uint_eq(gs__registry_peak_bytes(0), 150);
  ck_assert_int_eq(gs__registry_remove(0x1000, &out), 0);
  ck_assert_uint_eq(out.size, 100);
  ck_assert_uint_eq(out.kind, GS_KIND_DEVICE);
  ck_assert_uint_eq(gs__registry_live_bytes(0), 50);
  ck_assert_uint_eq(gs__registry_peak_bytes(0), 150);
  ck_assert_int_eq(peek(0x2000, &out), 0);
  ck_assert_uint_eq(out.size, 50);
  ck_assert_int_eq(gs__registry_remove(0x1000, NULL), -ENOENT);
  ck_assert_uint_eq(gs__registry_untracked_frees(), 1);
  ck_assert_uint_eq(gs__registry_counts().allocs, 2);
  ck_assert_uint_eq(gs__registry_counts().alloc_bytes, 150);
  ck_assert_uint_eq(gs__registry_counts().frees, 1);
  ck_assert_uint_eq(live_keys(), 1);
}
END_TEST

START_TEST(duplicate_key_keeps_first) {
  gs_alloc_record a = rec_of(100, 0, GS_KIND_DEVICE), b = rec_of(7, 0, GS_KIND_DEVICE), out;
  ck_assert_int_eq(gs__registry_insert(0x1000, &a), 0);
  ck_assert_int_eq(gs__registry_insert(0x1000, &b), -EEXIST);
  ck_assert_int_eq(peek(0x1000, &out), 0);
  ck_assert_uint_eq(out.size, 100);
  ck_assert_uint_eq(gs__registry_live_bytes(0), 100);
  ck_assert_uint_eq(gs__registry_failures(), 1);
  ck_assert_uint_eq(gs__registry_counts().allocs, 1);
}
END_TEST

START_TEST(bad_arguments) {
  gs_alloc_record a = rec_of(1, 0, GS_KIND_DEVICE);
  ck_assert_int_eq(gs__registry_insert(0, &a), -EINVAL);
  a.device = GS_DEVICE_HOST + 1;
  ck_assert_int_eq(gs__registry_insert(0x10, &a), -EINVAL);
  a.device = -1;
  ck_assert_int_eq(gs__registry_insert(0x10, &a), -EINVAL);
  a = rec_of(1, 0, GS_KIND__COUNT);
  ck_assert_int_eq(gs__registry_insert(0x10, &a), -EINVAL);
  ck_assert_int_eq(gs__registry_set_category(0x10, GS_CAT__COUNT), -EINVAL);
  ck_assert_int_eq(gs__registry_set_category(0x10, GS_CAT_ACTIVATION), -ENOENT);
  ck_assert_uint_eq(gs__registry_live_bytes(-1), 0);
  ck_assert_uint_eq(live_keys(), 0);
}
END_TEST

START_TEST(growth_keeps_every_key) {
  enum { N = 200000 };
  for (uint64_t i = 1; i <= N; i++) {
    gs_alloc_record r = rec_of(i, (int)(i % 3), GS_KIND_DEVICE);
    ck_assert_int_eq(gs__registry_insert(i * 512, &r), 0);
  }
  ck_assert_uint_eq(live_keys(), N);
  uint64_t total = (uint64_t)N * (N + 1) / 2;
  ck_assert_uint_eq(gs__registry_live_bytes(0) + gs__registry_live_bytes(1) + gs__registry_live_bytes(2), total);
  ck_assert_uint_eq(gs__registry_live_total(), total);
  /* Remove every other key, then check the rest are still found (backward-shift deletion). */
  for (uint64_t i = 1; i <= N; i += 2) ck_assert_int_eq(gs__registry_remove(i * 512, NULL), 0);
  for (uint64_t i = 2; i <= N; i += 2) {
    gs_alloc_record out;
    ck_assert_int_eq(peek(i * 512, &out), 0);
    ck_assert_uint_eq(out.size, i);
  }
  for (uint64_t i = 2; i <= N; i += 2) ck_assert_int_eq(gs__registry_remove(i * 512, NULL), 0);
  ck_assert_uint_eq(live_keys(), 0);
  ck_assert_uint_eq(gs__registry_live_total(), 0);
}
END_TEST

START_TEST(per_category_and_device) {
  gs_alloc_record a = rec_of(1000, 1, GS_KIND_DEVICE), h = rec_of(64, GS_DEVICE_HOST, GS_KIND_HOST_PINNED);
  ck_assert_int_eq(gs__registry_insert(0xa000, &a), 0);
  ck_assert_int_eq(gs__registry_insert(0xb000, &h), 0);
  ck_assert_uint_eq(gs__registry_live_bytes_cat(1, GS_CAT_OTHER), 1000);
  ck_assert_int_eq(gs__registry_set_category(0xa000, GS_CAT_ACTIVATION), 0);
  ck_assert_uint_eq(gs__registry_live_bytes_cat(1, GS_CAT_OTHER), 0);
  ck_assert_uint_eq(gs__registry_live_bytes_cat(1, GS_CAT_ACTIVATION), 1000);
  ck_assert_uint_eq(gs__registry_peak_bytes_cat(1, GS_CAT_ACTIVATION), 1000);
  ck_assert_uint_eq(gs__registry_live_bytes(1), 1000);
  ck_assert_uint_eq(gs__registry_live_bytes(0), 0);
  ck_assert_uint_eq(gs__registry_live_bytes(GS_DEVICE_HOST), 64);
  ck_assert_uint_eq(gs__registry_peak_any(), 1000);
  gs_alloc_record out;
  ck_assert_int_eq(gs__registry_remove(0xa000, &out), 0);
  ck_assert_uint_eq(out.category, GS_CAT_ACTIVATION);
  ck_assert_uint_eq(gs__registry_live_bytes_cat(1, GS_CAT_ACTIVATION), 0);
  ck_assert_uint_eq(gs__registry_peak_bytes_cat(1, GS_CAT_ACTIVATION), 1000);
  ck_assert_uint_eq(gs__registry_peak_bytes(1), 1000);
}
END_TEST

START_TEST(undo_remove_restores_counts) {
  gs_alloc_record a = rec_of(10, 0, GS_KIND_DEVICE), out;
  ck_assert_int_eq(gs__registry_insert(0x40, &a), 0);
  ck_assert_int_eq(gs__registry_remove(0x40, &out), 0);
  gs__registry_undo_remove(0x40, &out);
  ck_assert_int_eq(peek(0x40, NULL), 0);
  ck_assert_uint_eq(gs__registry_counts().allocs, 1);
  ck_assert_uint_eq(gs__registry_counts().frees, 0);
  ck_assert_uint_eq(gs__registry_live_bytes(0), 10);
}
END_TEST

START_TEST(reset_drops_everything) {
  gs_alloc_record a = rec_of(10, 0, GS_KIND_DEVICE);
  ck_assert_int_eq(gs__registry_insert(0x40, &a), 0);
  gs__registry_reset();
  ck_assert_uint_eq(gs__registry_live_total(), 0);
  ck_assert_uint_eq(gs__registry_peak_any(), 0);
  ck_assert_int_eq(gs__registry_remove(0x40, NULL), -ENOENT);
  ck_assert_int_eq(gs__registry_insert(0x40, &a), 0);
}
END_TEST

START_TEST(observers_are_told) {
  gs_alloc_record a = rec_of(4096, 2, GS_KIND_DEVICE);
  ck_assert_int_eq(gs__registry_insert(0x5000, &a), 0);
  ck_assert_uint_eq(live_keys(), 1);
  ck_assert_int_eq(gs__registry_set_category(0x5000, GS_CAT_COMPRESSED), 0);
  ck_assert_uint_eq(seen_recat_key, 0x5000);
  ck_assert_int_eq(seen_recat_to, GS_CAT_COMPRESSED);
  gs__registry_note_oom(1ull << 40, 2, 2);
  ck_assert_uint_eq(seen_oom_size, 1ull << 40);
  ck_assert_int_eq(seen_oom_device, 2);
  ck_assert_int_eq(seen_oom_result, 2);
  ck_assert_uint_eq(gs__registry_live_bytes(2), 4096); /* an OOM records nothing */
  ck_assert_int_eq(gs__registry_remove(0x5000, NULL), 0);
  ck_assert_uint_eq(live_keys(), 0);
  /* Refused: a duplicate, and a free of an unknown key, are not told. */
  ck_assert_int_eq(gs__registry_insert(0x6000, &a), 0);
  ck_assert_int_eq(gs__registry_insert(0x6000, &a), -EEXIST);
  ck_assert_int_eq(gs__registry_remove(0x7000, NULL), -ENOENT);
  ck_assert_uint_eq(live_keys(), 1);
  /* Room for GS_REGISTRY_OBSERVERS_MAX, the test's own included. */
  static const gs_registry_observer none = {0};
  for (int i = 1; i < GS_REGISTRY_OBSERVERS_MAX; i++) ck_assert_int_eq(gs__registry_observe(&none), 0);
  ck_assert_int_eq(gs__registry_observe(&none), -ENOSPC);
  ck_assert_int_eq(gs__registry_remove(0x6000, NULL), 0); /* NULL members are skipped */
  ck_assert_uint_eq(live_keys(), 0);
}
END_TEST

/* Four threads insert and remove their own keys at random; shards are shared between them. */
enum { THREADS = 4, OPS = 200000, LIVE_SLOTS = 256 };

static void *churn(void *arg) {
  uint64_t id = (uintptr_t)arg, seed = 88172645463325252ull ^ (id * 0x9e3779b97f4a7c15ull);
  uint64_t keys[LIVE_SLOTS] = {0};
  for (int i = 0; i < OPS; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    unsigned k = (unsigned)(seed % LIVE_SLOTS);
    if (keys[k]) {
      if (gs__registry_remove(keys[k], NULL) != 0) return (void *)1;
      keys[k] = 0;
    } else {
      keys[k] = ((uint64_t)i << 12) | (id << 8) | k | 0x10000000000ull;
      gs_alloc_record r = rec_of(1 + seed % 4096, (int)id, GS_KIND_DEVICE);
      if (gs__registry_insert(keys[k], &r) != 0) return (void *)2;
    }
  }
  for (unsigned k = 0; k < LIVE_SLOTS; k++)
    if (keys[k] && gs__registry_remove(keys[k], NULL) != 0) return (void *)3;
  return NULL;
}

START_TEST(concurrent_insert_remove) {
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)i), 0);
  for (int i = 0; i < THREADS; i++) {
    void *rc;
    pthread_join(t[i], &rc);
    ck_assert_ptr_null(rc);
  }
  ck_assert_uint_eq(live_keys(), 0);
  ck_assert_uint_eq(gs__registry_live_total(), 0);
  ck_assert_uint_eq(gs__registry_counts().allocs, gs__registry_counts().frees);
  ck_assert_uint_eq(gs__registry_failures(), 0);
  for (int d = 0; d < THREADS; d++) {
    ck_assert_uint_gt(gs__registry_peak_bytes(d), 0);
    ck_assert_uint_le(gs__registry_peak_bytes(d), (uint64_t)LIVE_SLOTS * 4096);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("registry");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, insert_remove_peak);
  tcase_add_test(tc, duplicate_key_keeps_first);
  tcase_add_test(tc, bad_arguments);
  tcase_add_test(tc, growth_keeps_every_key);
  tcase_add_test(tc, per_category_and_device);
  tcase_add_test(tc, undo_remove_restores_counts);
  tcase_add_test(tc, reset_drops_everything);
  tcase_add_test(tc, observers_are_told);
  tcase_add_test(tc, concurrent_insert_remove);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
