/* bench_interpose.c: nanoseconds the shim adds per cuMemAlloc_v2 + cuMemFree_v2 pair (stand-in
 * driver), 1 and 4 threads. One child process runs with the shim preloaded and calls both the
 * driver's own functions (linked directly: the shim exports no cu* symbol, so these calls pass it
 * by) and the shim's wrappers (from dlsym, which the shim answers), alternating run by run, so
 * each figure is paired with its baseline in the same process, threads and moment. */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The stand-in driver's own entry points (link-time; its header is the real driver's ABI). */
int cuMemAlloc_v2(unsigned long long *dptr, size_t bytes);
int cuMemFree_v2(unsigned long long dptr);

typedef int (*alloc_fn)(unsigned long long *, size_t);
typedef int (*free_fn)(unsigned long long);

enum { BATCH = 256, ROUNDS = 100, RUNS = 41 };

typedef struct path {
  alloc_fn alloc;
  free_fn free;
  double ns; /* out: thread CPU ns per pair */
} path;

static uint64_t thread_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* BATCH live allocations at a time, so the registry holds entries as it would in a real job.
 * Returns the thread's CPU nanoseconds per alloc+free pair. */
static void *worker(void *arg) {
  path *p = arg;
  unsigned long long d[BATCH];
  uint64_t t0 = thread_ns();
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < BATCH; i++)
      if (p->alloc(&d[i], 64 + (size_t)i * 16) != 0) abort();
    for (int i = 0; i < BATCH; i++)
      if (p->free(d[i]) != 0) abort();
  }
  p->ns = (double)(thread_ns() - t0) / (ROUNDS * BATCH);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
  return v[n / 2];
}

/* One run: the mean over threads of ns per pair on path p. */
static double run_once(const path *p, int threads) {
  pthread_t t[8];
  path per[8];
  double sum = 0;
  for (int i = 0; i < threads; i++) per[i] = *p, pthread_create(&t[i], NULL, worker, &per[i]);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL), sum += per[i].ns;
  return sum / threads;
}

/* RUNS runs of each path, alternating (which goes first swaps every run, so a drift in the
 * machine's speed weighs on both alike). out: median direct, median shim, median of the
 * per-run differences. */
static void measure(const path *direct, const path *shim, int threads, double out[3]) {
  double d[RUNS], s[RUNS], diff[RUNS];
  for (int r = 0; r < RUNS; r++) {
    const path *first = (r & 1) ? shim : direct, *second = (r & 1) ? direct : shim;
    double a = run_once(first, threads), b = run_once(second, threads);
    d[r] = (r & 1) ? b : a;
    s[r] = (r & 1) ? a : b;
    diff[r] = s[r] - d[r];
  }
  out[0] = median(d, RUNS), out[1] = median(s, RUNS), out[2] = median(diff, RUNS);
}

static int child(void) {
  /* The stand-in serves memory with malloc: keep glibc from trimming and re-faulting the heap
   * between batches, which would add page-fault noise larger than what is measured. */
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  void *h = dlopen("libcuda.so.1", RTLD_NOW);
  if (h == NULL) return fprintf(stderr, "bench: %s\n", dlerror()), 1;
  path direct = {.alloc = cuMemAlloc_v2, .free = cuMemFree_v2};
  path shim = {.alloc = (alloc_fn)dlsym(h, "cuMemAlloc_v2"), .free = (free_fn)dlsym(h, "cuMemFree_v2")};
  if (!shim.alloc || !shim.free) return 1;
  if (shim.alloc == direct.alloc || shim.free == direct.free) {
    fprintf(stderr, "bench: dlsym gave the driver's own functions: the shim is not loaded or not on\n");
    return 1;
  }
  double warm[3], one[3], four[3];
  measure(&direct, &shim, 1, warm); /* page faults, the registry's first tables, calibration */
  measure(&direct, &shim, 1, one);
  measure(&direct, &shim, 4, four);
  printf("%.2f %.2f %.2f %.2f %.2f %.2f\n", one[0], one[1], one[2], four[0], four[1], four[2]);
  return 0;
}

/* Runs this program as a child with the shim preloaded and reads its six figures. */
static int run_child(const char *self, const char *preload, const char *standin, double out[6]) {
  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "GS_BENCH_CHILD=1 GACTSHIM_QUIET=1 LD_LIBRARY_PATH='%s' LD_PRELOAD='%s' '%s'",
           standin, preload, self);
  FILE *f = popen(cmd, "r");
  if (f == NULL) return -1;
  int n = 0;
  for (int i = 0; i < 6; i++) n += fscanf(f, "%lf", &out[i]);
  return (pclose(f) == 0 && n == 6) ? 0 : -1;
}

int main(int argc, char **argv) {
  if (getenv("GS_BENCH_CHILD")) return child();
  const char *shim = argc > 1 ? argv[1] : GS_BENCH_SHIM;
  const char *standin = argc > 2 ? argv[2] : GS_BENCH_STANDIN;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;
  self[n] = '\0';
  double f[6];
  if (run_child(self, shim, standin, f) != 0) {
    fprintf(stderr, "bench: the child run failed\n");
    return 1;
  }
  printf("stand-in cuMemAlloc_v2+cuMemFree_v2, %d live, %d alternated runs of %d pairs per thread "
         "(thread CPU ns per pair; added = median of the per-run differences)\n",
         BATCH, RUNS, ROUNDS * BATCH);
  const int threads[2] = {1, 4};
  for (int i = 0; i < 2; i++)
    printf("threads=%d direct=%.1f ns shim=%.1f ns added=%.1f ns\n", threads[i], f[3 * i],
           f[3 * i + 1], f[3 * i + 2]);
  return 0;
}
