/* bench_interpose.c: nanoseconds the shim adds per cuMemAlloc_v2 + cuMemFree_v2 pair (stand-in
 * driver), 1 and 4 threads. Runs itself twice, without and with LD_PRELOAD, and prints both. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*alloc_fn)(unsigned long long *, size_t);
typedef int (*free_fn)(unsigned long long);

enum { BATCH = 256, ROUNDS = 400, RUNS = 9 };

static alloc_fn drv_alloc;
static free_fn drv_free;

static uint64_t thread_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* BATCH live allocations at a time, so the registry holds entries as it would in a real job.
 * Returns the thread's CPU nanoseconds per alloc+free pair. */
static void *worker(void *out) {
  unsigned long long d[BATCH];
  uint64_t t0 = thread_ns();
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < BATCH; i++)
      if (drv_alloc(&d[i], 64 + (size_t)i * 16) != 0) abort();
    for (int i = 0; i < BATCH; i++)
      if (drv_free(d[i]) != 0) abort();
  }
  *(double *)out = (double)(thread_ns() - t0) / (ROUNDS * BATCH);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median over RUNS of the mean over threads. */
static double measure(int threads) {
  double runs[RUNS];
  for (int r = 0; r < RUNS; r++) {
    pthread_t t[8];
    double per[8], sum = 0;
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, &per[i]);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL), sum += per[i];
    runs[r] = sum / threads;
  }
  qsort(runs, RUNS, sizeof(runs[0]), cmp_double);
  return runs[RUNS / 2];
}

static int child(void) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW);
  if (h == NULL) return fprintf(stderr, "bench: %s\n", dlerror()), 1;
  drv_alloc = (alloc_fn)dlsym(h, "cuMemAlloc_v2");
  drv_free = (free_fn)dlsym(h, "cuMemFree_v2");
  if (!drv_alloc || !drv_free) return 1;
  measure(1); /* warm-up: page faults, the registry's first tables */
  printf("%.2f %.2f\n", measure(1), measure(4));
  return 0;
}

/* Runs this program as a child with the given LD_PRELOAD and reads its two figures. */
static int run_child(const char *self, const char *preload, const char *standin, double out[2]) {
  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "GS_BENCH_CHILD=1 GACTSHIM_QUIET=1 LD_LIBRARY_PATH='%s' LD_PRELOAD='%s' '%s'",
           standin, preload, self);
  FILE *f = popen(cmd, "r");
  if (f == NULL) return -1;
  int n = fscanf(f, "%lf %lf", &out[0], &out[1]);
  return (pclose(f) == 0 && n == 2) ? 0 : -1;
}

int main(int argc, char **argv) {
  if (getenv("GS_BENCH_CHILD")) return child();
  const char *shim = argc > 1 ? argv[1] : GS_BENCH_SHIM;
  const char *standin = argc > 2 ? argv[2] : GS_BENCH_STANDIN;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;
  self[n] = '\0';
  double base[2], with[2];
  if (run_child(self, "", standin, base) != 0 || run_child(self, shim, standin, with) != 0) {
    fprintf(stderr, "bench: a child run failed\n");
    return 1;
  }
  printf("stand-in cuMemAlloc_v2+cuMemFree_v2, %d live, median of %d runs (thread CPU ns per pair)\n",
         BATCH, RUNS);
  const int threads[2] = {1, 4};
  for (int i = 0; i < 2; i++)
    printf("threads=%d direct=%.1f ns shim=%.1f ns added=%.1f ns\n", threads[i], base[i], with[i],
           with[i] - base[i]);
  return 0;
}
