/* check-pool.c: the CPU codec's worker pool — sizing, reuse, signal masks, concurrency, fork. */
#include "gactshim.h"
#include "kernels.h"
#include "testdata.h"

#include <check.h>
#include "../check_run.h"
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The fork test forks while pool workers exist, and its child starts its own: TSan would end such
 * a child by default ("starting new threads after multi-threaded fork is not supported"). */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "die_after_fork=0"; }

enum { N = 300000 + 77 }; /* 1172 groups of 256: every thread count below splits it */

static gs_codec_params params(gs_dtype dtype) {
  gs_codec_params p = {.n = N, .dtype = dtype, .bits = 3, .group = 256, .seed = 99, .tensor_id = 5};
  return p;
}

/* An input and its single-threaded compressed form: the bytes every other run must reproduce. */
typedef struct ref {
  gs_codec_params p;
  size_t size;
  void *src;
  uint8_t *buf;
} ref;

static ref ref_make(gs_dtype dtype) {
  ref r = {.p = params(dtype)};
  r.size = gs_codec_size(&r.p);
  r.src = malloc(N * 4);
  r.buf = malloc(r.size);
  gs_td_fill(r.src, NULL, N, dtype, GS_TD_NORMAL, 7 + dtype);
  ck_assert_int_eq(gs_compress_cpu(&r.p, r.src, r.buf, 1), 0);
  return r;
}

static void ref_free(ref *r) { free(r->src), free(r->buf); }

/* Compresses and decompresses with nthreads; 0 if the bytes match the reference's and the decoded
 * values the single-threaded decode's. */
static int ref_matches(const ref *r, int nthreads) {
  uint8_t *buf = malloc(r->size);
  void *a = malloc(N * 4), *b = malloc(N * 4);
  int bad = gs_compress_cpu(&r->p, r->src, buf, nthreads) != 0 || memcmp(buf, r->buf, r->size) != 0;
  bad |= gs_decompress_cpu(r->buf, r->size, a, &r->p, 1) != 0;
  bad |= gs_decompress_cpu(buf, r->size, b, &r->p, nthreads) != 0;
  bad |= memcmp(a, b, N * gs_td_elem_size(r->p.dtype)) != 0;
  free(buf), free(a), free(b);
  return bad;
}

/* Threads of this process, from /proc/self/task. */
static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  ck_assert_ptr_nonnull(d);
  for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static int cpus_allowed(void) {
  cpu_set_t set;
  ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
  return CPU_COUNT(&set);
}

START_TEST(test_sized_by_affinity) {
  int cpus = cpus_allowed();
  const char *fork_mode = getenv("CK_FORK");
  if (fork_mode == NULL || strcmp(fork_mode, "no") != 0) /* this test's own process */
    ck_assert_int_eq(gs__pool_workers(), 0); /* nothing before the first parallel use */
  ck_assert_int_eq(gs__pool_lanes(), cpus < GS__MAX_THREADS ? cpus : GS__MAX_THREADS);
  ck_assert_int_eq(gs__pool_workers(), gs__pool_lanes() - 1);
  /* A child restricted to one CPU makes a pool of one lane: no workers, everything inline. */
  ref r = ref_make(GS_DTYPE_F32);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    int bad = sched_setaffinity(0, sizeof one, &one) != 0 || gs__pool_workers() != 0;
    bad |= gs__pool_lanes() != 1 || ref_matches(&r, 4) != 0 || ref_matches(&r, 0) != 0;
    _exit(bad | (gs__pool_workers() != 0) << 1);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  ref_free(&r);
}
END_TEST

START_TEST(test_no_new_threads) {
  ref r = ref_make(GS_DTYPE_BF16);
  ck_assert_int_eq(ref_matches(&r, 4), 0); /* starts the pool */
  int before = count_threads();
  gs_codec_params small = r.p; /* 128 groups: parallel still, and quick under TSan */
  small.n = 32768;
  uint8_t *buf = malloc(gs_codec_size(&small));
  for (int i = 0; i < 100; i++) {
    ck_assert_int_eq(gs_compress_cpu(&small, r.src, buf, i % 2 ? 4 : 3), 0);
    ck_assert_int_eq(gs_decompress_cpu(buf, gs_codec_size(&small), r.src, &small, 4), 0);
  }
  free(buf);
  ck_assert_int_eq(count_threads(), before);
  ck_assert_int_eq(gs__pool_workers(), gs__pool_lanes() - 1);
  ref_free(&r);
}
END_TEST

/* What each index of a job saw: its thread and whether that thread blocks every signal. */
typedef struct seen {
  pthread_t caller;
  atomic_int others; /* indices run by threads other than the caller */
  struct {
    pthread_t thread;
    int all_blocked;
  } at[64]; /* one per index of the job */
} seen;

static int all_signals_blocked(void) {
  sigset_t cur, all;
  sigfillset(&all); /* all but the two glibc keeps for itself */
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  for (int s = 1; s < NSIG; s++) /* SIGKILL and SIGSTOP cannot be blocked */
    if (s != SIGKILL && s != SIGSTOP && sigismember(&all, s) && !sigismember(&cur, s)) return 0;
  return 1;
}

/* Index 0 (the caller's: it claims first) waits for a worker to run another, so that one does. */
static void record(void *arg, int i) {
  seen *s = (seen *)arg;
  s->at[i].thread = pthread_self();
  s->at[i].all_blocked = all_signals_blocked();
  if (!pthread_equal(s->at[i].thread, s->caller)) atomic_fetch_add(&s->others, 1);
  for (int ms = 0; i == 0 && atomic_load(&s->others) == 0 && ms < 20000; ms++)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
}

START_TEST(test_workers_block_signals) {
  if (gs__pool_lanes() < 2) return; /* one CPU: no workers to check */
  seen s = {.caller = pthread_self()};
  ck_assert_int_eq(gs__pool_run(record, &s, 64), 0);
  ck_assert_int_gt(atomic_load(&s.others), 0);
  ck_assert(!all_signals_blocked()); /* the caller's own mask is restored */
  for (int i = 0; i < 64; i++)
    if (!pthread_equal(s.at[i].thread, s.caller))
      ck_assert_msg(s.at[i].all_blocked, "index %d ran on a worker with signals unblocked", i);
}
END_TEST

static ref g_ref; /* the concurrent callers' input, shared read-only */
static void *caller(void *arg) {
  intptr_t bad = 0;
  for (int rep = 0; rep < 3; rep++) bad |= ref_matches(&g_ref, (int)(intptr_t)arg + rep);
  return (void *)bad;
}

START_TEST(test_concurrent_callers) {
  g_ref = ref_make(GS_DTYPE_F16);
  pthread_t t[4];
  for (intptr_t i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, caller, (void *)(i + 2)), 0);
  for (int i = 0; i < 4; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    ck_assert_msg(bad == NULL, "caller %d got other bytes", i);
  }
  ref_free(&g_ref);
}
END_TEST

static atomic_int g_stop; /* ends the hammering thread */
static void *hammer(void *arg) {
  intptr_t bad = 0;
  while (!atomic_load(&g_stop)) bad |= ref_matches((const ref *)arg, 4);
  return (void *)bad;
}

/* fork() while another thread keeps the pool busy: the child, with none of its threads and maybe
 * its lock held, makes its own pool and gets the same bytes. */
START_TEST(test_fork_child) {
  ref r = ref_make(GS_DTYPE_F32);
  ck_assert_int_eq(ref_matches(&r, 4), 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, hammer, &r), 0);
  for (int k = 0; k < 5; k++) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      alarm(60); /* a deadlock ends as SIGALRM, not as a hung test */
      int bad = gs__pool_workers() != 0;
      bad |= ref_matches(&r, 4) << 1;
      bad |= (gs__pool_workers() != gs__pool_lanes() - 1) << 2;
      _exit(bad);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %#x", k, status);
  }
  atomic_store(&g_stop, 1);
  void *bad;
  pthread_join(t, &bad);
  ck_assert(bad == NULL);
  ref_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_sized_by_affinity);
  tcase_add_test(tc, test_no_new_threads);
  tcase_add_test(tc, test_workers_block_signals);
  tcase_add_test(tc, test_concurrent_callers);
  tcase_add_test(tc, test_fork_child);
  suite_add_tcase(s, tc);
  return gs_check_run(s);
}
