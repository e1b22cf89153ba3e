/* alloc_backends.c: plays the driver traffic of PyTorch's three CUDA allocator backends on the
 * stand-in runtime and driver, and prints what it did (allocs, frees, alloc_bytes, peak device 0
 * bytes) so that the test script can check that the shim counted each allocation once:
 *   native      PYTORCH_CUDA_ALLOC_CONF unset: cudaMalloc/cudaFree blocks (runtime -> driver
 *               through cuGetProcAddress)
 *   expandable  expandable_segments:True: one large address reservation, then 2 MiB physical
 *               handles (cuMemCreate) mapped into it and later unmapped and released; the entry
 *               points come from cuGetProcAddress, as cudaGetDriverEntryPoint gives them
 *   async       backend:cudaMallocAsync: cudaMallocAsync/cudaFreeAsync on a stream (stream-ordered
 *               pool allocations) */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int cudaError_t;
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocAsync(void **p, size_t n, void *stream);
cudaError_t cudaFreeAsync(void *p, void *stream);

typedef unsigned long long u64;
typedef int (*gpa_fn)(const char *, void **, int, u64, int *);
typedef int (*reserve_fn)(u64 *, size_t, size_t, u64, u64);
typedef int (*addr_free_fn)(u64, size_t);
typedef int (*create_fn)(u64 *, size_t, const void *, u64);
typedef int (*release_fn)(u64);
typedef int (*map_fn)(u64, size_t, size_t, u64, u64);
typedef int (*unmap_fn)(u64, size_t);

/* CUmemAllocationProp as cuda.h lays it out: pinned memory on device 0. */
typedef struct prop {
  int type, handle_types;
  struct {
    int type, id;
  } location;
  void *win32;
  struct {
    unsigned char compression, gpu_direct_rdma, usage;
    unsigned char reserved[4];
  } flags;
} prop;

static u64 allocs, frees, bytes, live, peak;

static void took(size_t n) {
  allocs++;
  bytes += n;
  live += n;
  if (live > peak) peak = live;
}
static void gave(size_t n) {
  frees++;
  live -= n;
}

#define SIZES 6
static const size_t sizes[SIZES] = {2u << 20, 20u << 20, 512u << 10, 8u << 20, 2u << 20, 64u << 20};

/* Native and async: all blocks at once, then half freed, some allocated again, all freed. */
static int blocks(int async) {
  void *p[SIZES] = {0};
  void *stream = (void *)0x5;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < SIZES; i += 1 + round) { /* all, then the freed even ones again */
      if ((async ? cudaMallocAsync(&p[i], sizes[i], stream) : cudaMalloc(&p[i], sizes[i])) != 0) return 1;
      took(sizes[i]);
    }
    for (int i = 0; i < SIZES; i += 2) {
      if (p[i] == NULL) continue;
      if ((async ? cudaFreeAsync(p[i], stream) : cudaFree(p[i])) != 0) return 1;
      p[i] = NULL;
      gave(sizes[i]);
    }
  }
  for (int i = 0; i < SIZES; i++) {
    if (p[i] == NULL) continue;
    if ((async ? cudaFreeAsync(p[i], stream) : cudaFree(p[i])) != 0) return 1;
    gave(sizes[i]);
  }
  return 0;
}

#define CHUNK (2u << 20)
#define NCHUNK 8

/* Expandable segments: the reservation is address space only; each mapped handle is memory. */
static int expandable(void *drv) {
  gpa_fn gpa = (gpa_fn)dlsym(drv, "cuGetProcAddress_v2");
  reserve_fn reserve;
  addr_free_fn addr_free;
  create_fn create;
  release_fn release;
  map_fn map;
  unmap_fn unmap;
  int st = 0;
  if (gpa == NULL || gpa("cuMemAddressReserve", (void **)&reserve, 12080, 0, &st) || st ||
      gpa("cuMemAddressFree", (void **)&addr_free, 12080, 0, &st) || st ||
      gpa("cuMemCreate", (void **)&create, 12080, 0, &st) || st ||
      gpa("cuMemRelease", (void **)&release, 12080, 0, &st) || st ||
      gpa("cuMemMap", (void **)&map, 12080, 0, &st) || st ||
      gpa("cuMemUnmap", (void **)&unmap, 12080, 0, &st) || st)
    return 1;
  prop pr;
  memset(&pr, 0, sizeof pr);
  pr.type = 1;          /* CU_MEM_ALLOCATION_TYPE_PINNED */
  pr.location.type = 1; /* CU_MEM_LOCATION_TYPE_DEVICE */
  pr.location.id = 0;
  u64 va = 0, h[NCHUNK] = {0};
  size_t span = (size_t)NCHUNK * CHUNK * 4; /* PyTorch reserves far more than it maps */
  if (reserve(&va, span, 0, 0, 0) != 0) return 1;
  for (int i = 0; i < NCHUNK; i++) { /* the segment grows chunk by chunk */
    if (create(&h[i], CHUNK, &pr, 0) != 0 || map(va + (u64)i * CHUNK, CHUNK, 0, h[i], 0) != 0) return 1;
    took(CHUNK);
  }
  for (int i = NCHUNK / 2; i < NCHUNK; i++) { /* empty_cache: the tail is unmapped and released */
    if (unmap(va + (u64)i * CHUNK, CHUNK) != 0 || release(h[i]) != 0) return 1;
    gave(CHUNK);
  }
  for (int i = NCHUNK / 2; i < NCHUNK; i++) { /* and grows again */
    if (create(&h[i], CHUNK, &pr, 0) != 0 || map(va + (u64)i * CHUNK, CHUNK, 0, h[i], 0) != 0) return 1;
    took(CHUNK);
  }
  for (int i = 0; i < NCHUNK; i++) {
    if (unmap(va + (u64)i * CHUNK, CHUNK) != 0 || release(h[i]) != 0) return 1;
    gave(CHUNK);
  }
  return addr_free(va, span) != 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s native|expandable|async\n", argv[0]);
    return 2;
  }
  if (cudaFree(NULL) != 0) return 1; /* initializes the runtime, which loads the driver */
  void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (drv == NULL) return 1;
  int rc = strcmp(argv[1], "native") == 0       ? blocks(0)
           : strcmp(argv[1], "async") == 0      ? blocks(1)
           : strcmp(argv[1], "expandable") == 0 ? expandable(drv)
                                                : 2;
  if (rc != 0) return rc;
  int64_t (*outstanding)(void) = (int64_t(*)(void))dlsym(drv, "gs_standin_outstanding");
  printf("allocs=%llu frees=%llu alloc_bytes=%llu peak=%llu outstanding=%lld\n", allocs, frees, bytes,
         peak, outstanding ? (long long)outstanding() : -1LL);
  return 0;
}
