/* alloc_storm.c: random alloc/free traffic through the stand-in runtime and driver, printing what it
 * did so the test script can compare it with the shim's GACTSHIM_STATS counts. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int cudaError_t;
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocAsync(void **p, size_t n, void *stream);
cudaError_t cudaFreeAsync(void *p, void *stream);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaSetDevice(int dev);

typedef int (*mem_alloc_fn)(unsigned long long *, size_t);
typedef int (*mem_free_fn)(unsigned long long);
typedef int (*mem_create_fn)(unsigned long long *, size_t, const void *, unsigned long long);
typedef int (*mem_release_fn)(unsigned long long);

/* The driver's functions, as a program calling the driver directly would get them. */
static mem_alloc_fn drv_alloc;
static mem_free_fn drv_free;
static mem_create_fn drv_create;
static mem_release_fn drv_release;

static long iters = 50000;
static uint64_t total_allocs, total_frees, total_bytes;

#define SLOTS 64
enum { VIA_CUDA_MALLOC, VIA_CUDA_MALLOC_ASYNC, VIA_CU_MEM_ALLOC, VIA__COUNT };

typedef struct slot {
  void *p;
  int via;
} slot;

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int do_alloc(slot *sl, int via, size_t n) {
  unsigned long long d = 0;
  int r;
  switch (via) {
    case VIA_CUDA_MALLOC: r = cudaMalloc(&sl->p, n); break;
    case VIA_CUDA_MALLOC_ASYNC: r = cudaMallocAsync(&sl->p, n, (void *)0x5); break;
    default: r = drv_alloc(&d, n); sl->p = (void *)(uintptr_t)d; break;
  }
  sl->via = via;
  return r;
}

static int do_free(slot *sl) {
  int r;
  switch (sl->via) {
    case VIA_CUDA_MALLOC: r = cudaFree(sl->p); break;
    case VIA_CUDA_MALLOC_ASYNC: r = cudaFreeAsync(sl->p, (void *)0x5); break;
    default: r = drv_free((uintptr_t)sl->p); break;
  }
  sl->p = NULL;
  return r;
}

static void *worker(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uint64_t seed = 0x9e3779b97f4a7c15ull * (id + 1), allocs = 0, frees = 0, bytes = 0;
  slot slots[SLOTS];
  memset(slots, 0, sizeof(slots));
  if (cudaSetDevice((int)(id % 2)) != 0) abort();
  for (long i = 0; i < iters; i++) {
    slot *sl = &slots[next_rand(&seed) % SLOTS];
    if (sl->p == NULL) {
      size_t n = 1 + next_rand(&seed) % 65536;
      if (do_alloc(sl, (int)(next_rand(&seed) % VIA__COUNT), n) != 0) abort();
      allocs++;
      bytes += n;
    } else {
      if (do_free(sl) != 0) abort();
      frees++;
    }
  }
  for (int k = 0; k < SLOTS; k++) {
    if (slots[k].p == NULL) continue;
    if (do_free(&slots[k]) != 0) abort();
    frees++;
  }
  __atomic_add_fetch(&total_allocs, allocs, __ATOMIC_RELAXED);
  __atomic_add_fetch(&total_frees, frees, __ATOMIC_RELAXED);
  __atomic_add_fetch(&total_bytes, bytes, __ATOMIC_RELAXED);
  return NULL;
}

/* One pinned host buffer and one VMM handle: the other kinds, counted like the rest. */
static void other_kinds(void) {
  void *h = NULL;
  unsigned long long vmm = 0;
  if (cudaMallocHost(&h, 4096) != 0 || cudaFreeHost(h) != 0) abort();
  if (drv_create(&vmm, 1 << 21, NULL, 0) != 0 || drv_release(vmm) != 0) abort();
  total_allocs += 2;
  total_frees += 2;
  total_bytes += 4096 + (1 << 21);
}

static int fork_child(void) {
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    for (int i = 0; i < 100; i++) {
      void *p = NULL;
      if (cudaMalloc(&p, 1000) != 0 || cudaFree(p) != 0) _exit(3);
      unsigned long long d = 0;
      if (drv_alloc(&d, 1000) != 0 || drv_free(d) != 0) _exit(4);
    }
    exit(0); /* exit, not _exit: the shim's exit-time code must run cleanly in the child */
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  printf("fork child ok\n");
  return 0;
}

int main(int argc, char **argv) {
  int threads = 4, do_fork = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--fork") == 0) do_fork = 1;
    else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) iters = atol(argv[++i]);
  }
  if (cudaFree(NULL) != 0) return 1; /* initializes the runtime, which loads the driver */
  void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (drv == NULL) return 1;
  drv_alloc = (mem_alloc_fn)dlsym(drv, "cuMemAlloc_v2");
  drv_free = (mem_free_fn)dlsym(drv, "cuMemFree_v2");
  drv_create = (mem_create_fn)dlsym(drv, "cuMemCreate");
  drv_release = (mem_release_fn)dlsym(drv, "cuMemRelease");
  if (!drv_alloc || !drv_free || !drv_create || !drv_release) return 1;
  other_kinds();
  pthread_t t[64];
  if (threads < 1 || threads > 64) return 1;
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  int64_t (*outstanding)(void) = (int64_t(*)(void))dlsym(drv, "gs_standin_outstanding");
  printf("allocs=%llu frees=%llu alloc_bytes=%llu outstanding=%lld\n", (unsigned long long)total_allocs,
         (unsigned long long)total_frees, (unsigned long long)total_bytes,
         outstanding ? (long long)outstanding() : -1LL);
  fflush(stdout);
  if (do_fork && fork_child() != 0) return 1;
  return 0;
}
