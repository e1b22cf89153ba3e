/* cudart_standin.c: a test-only stand-in for the CUDA runtime (libcudart.so.12), built like the
 * real one: it dlopen()s libcuda.so.1, takes cuGetProcAddress_v2 with dlsym and resolves every
 * driver entry point through it, so the shim sees exactly the lookups a real cudart makes. */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#define API __attribute__((visibility("default")))

typedef int cudaError_t;
typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef void *cudaStream_t;

typedef CUresult (*gpa_fn)(const char *, void **, int, unsigned long long, int *);

static struct {
  CUresult (*init)(unsigned);
  CUresult (*alloc)(CUdeviceptr *, size_t);
  CUresult (*free)(CUdeviceptr);
  CUresult (*alloc_async)(CUdeviceptr *, size_t, cudaStream_t);
  CUresult (*free_async)(CUdeviceptr, cudaStream_t);
  CUresult (*host_alloc)(void **, size_t);
  CUresult (*free_host)(void *);
  CUresult (*primary_ctx)(void **, int);
  CUresult (*set_ctx)(void *);
} drv;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ready;

static int get(gpa_fn gpa, const char *name, void *slot) {
  int status = -1;
  if (gpa(name, (void **)slot, 12080, 0, &status) != 0 || status != 0) return -1;
  return 0;
}

static void init_once(void) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW);
  if (h == NULL) return;
  gpa_fn gpa = (gpa_fn)dlsym(h, "cuGetProcAddress_v2");
  if (gpa == NULL) return;
  int bad = get(gpa, "cuInit", &drv.init) | get(gpa, "cuMemAlloc", &drv.alloc) |
            get(gpa, "cuMemFree", &drv.free) | get(gpa, "cuMemAllocAsync", &drv.alloc_async) |
            get(gpa, "cuMemFreeAsync", &drv.free_async) | get(gpa, "cuMemAllocHost", &drv.host_alloc) |
            get(gpa, "cuMemFreeHost", &drv.free_host) |
            get(gpa, "cuDevicePrimaryCtxRetain", &drv.primary_ctx) |
            get(gpa, "cuCtxSetCurrent", &drv.set_ctx);
  if (bad == 0 && drv.init(0) == 0) g_ready = 1;
}

static int ready(void) {
  pthread_once(&g_once, init_once);
  return g_ready;
}

static cudaError_t err(CUresult r) { return r == 0 ? 0 : r == 2 ? 2 /* cudaErrorMemoryAllocation */ : 1; }

API cudaError_t cudaSetDevice(int dev) {
  void *ctx;
  if (!ready()) return 3;
  if (drv.primary_ctx(&ctx, dev) != 0) return 101; /* cudaErrorInvalidDevice */
  return err(drv.set_ctx(ctx));
}

API cudaError_t cudaMalloc(void **p, size_t n) {
  if (!ready()) return 3;
  CUdeviceptr d = 0;
  CUresult r = drv.alloc(&d, n);
  *p = (void *)(size_t)d;
  return err(r);
}

API cudaError_t cudaFree(void *p) {
  if (!ready()) return 3;
  return p ? err(drv.free((CUdeviceptr)(size_t)p)) : 0;
}

API cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s) {
  if (!ready()) return 3;
  CUdeviceptr d = 0;
  CUresult r = drv.alloc_async(&d, n, s);
  *p = (void *)(size_t)d;
  return err(r);
}

API cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
  if (!ready()) return 3;
  return p ? err(drv.free_async((CUdeviceptr)(size_t)p, s)) : 0;
}

API cudaError_t cudaMallocHost(void **p, size_t n) { return ready() ? err(drv.host_alloc(p, n)) : 3; }
API cudaError_t cudaFreeHost(void *p) { return ready() ? err(drv.free_host(p)) : 3; }
