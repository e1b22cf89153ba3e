/* cuda_standin.c: a test-only stand-in for the CUDA driver (libcuda.so.1) serving host memory. */
#include "standin.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))
#define NDEV 2

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef unsigned long long CUmemHandle;
typedef void *CUstream;

/* Two devices, one primary context each; a context is the address of its device number. The
 * main thread starts with device 0's current (as after the runtime's first call); other threads
 * start with none, as a real driver's do (PyTorch's autograd threads: pytorch#124565). */
static int g_ctx[NDEV] = {0, 1};
static __thread int *t_current;
static __thread int t_started;
static int *current(void) {
  if (!t_started) {
    t_started = 1;
    t_current = gettid() == getpid() ? &g_ctx[0] : NULL;
  }
  return t_current;
}
static int64_t g_outstanding;

static void *take(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p) __atomic_add_fetch(&g_outstanding, 1, __ATOMIC_RELAXED);
  return p;
}

static CUresult give(void *p) {
  if (p == NULL) return 1;
  free(p);
  __atomic_sub_fetch(&g_outstanding, 1, __ATOMIC_RELAXED);
  return 0;
}

API int64_t gs_standin_outstanding(void) { return __atomic_load_n(&g_outstanding, __ATOMIC_RELAXED); }

API CUresult cuInit(unsigned flags) { return flags == 0 ? 0 : 1; }
API CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
API CUresult cuDeviceGetCount(int *n) { *n = NDEV; return 0; }
API CUresult cuCtxGetCurrent(void **ctx) { *ctx = current(); return 0; }
API CUresult cuCtxSetCurrent(void *ctx) {
  (void)current();
  t_current = ctx;
  return 0;
}
API CUresult cuCtxGetDevice(int *dev) {
  if (current() == NULL) return 201; /* CUDA_ERROR_INVALID_CONTEXT */
  *dev = *t_current;
  return 0;
}
API CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) {
  if (dev < 0 || dev >= NDEV) return 101;
  *ctx = &g_ctx[dev];
  return 0;
}

API CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
  void *m = take(n);
  *p = (uintptr_t)m;
  return m ? 0 : 2;
}
/* The CUDA 3.1 ABI with 32-bit sizes: must never be mistaken for cuMemAlloc_v2. */
API CUresult cuMemAlloc(unsigned *p, unsigned n) { (void)p; (void)n; return 801; }
API CUresult cuMemFree_v2(CUdeviceptr p) { return give((void *)(uintptr_t)p); }
API CUresult cuMemAllocPitch_v2(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned e) {
  (void)e;
  *pitch = (w + 255) & ~(size_t)255;
  return cuMemAlloc_v2(p, *pitch * h);
}
API CUresult cuMemAllocManaged(CUdeviceptr *p, size_t n, unsigned f) { (void)f; return cuMemAlloc_v2(p, n); }
API CUresult cuMemAllocAsync(CUdeviceptr *p, size_t n, CUstream s) { (void)s; return cuMemAlloc_v2(p, n); }
API CUresult cuMemAllocAsync_ptsz(CUdeviceptr *p, size_t n, CUstream s) { (void)s; return cuMemAlloc_v2(p, n); }
API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *p, size_t n, void *pool, CUstream s) {
  (void)pool; (void)s;
  return cuMemAlloc_v2(p, n);
}
API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *p, size_t n, void *pool, CUstream s) {
  (void)pool; (void)s;
  return cuMemAlloc_v2(p, n);
}
API CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) { (void)s; return cuMemFree_v2(p); }
API CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s) { (void)s; return cuMemFree_v2(p); }
API CUresult cuMemHostAlloc(void **p, size_t n, unsigned f) { (void)f; *p = take(n); return *p ? 0 : 2; }
API CUresult cuMemAllocHost_v2(void **p, size_t n) { *p = take(n); return *p ? 0 : 2; }
API CUresult cuMemFreeHost(void *p) { return give(p); }

/* VMM: a physical handle is a heap block; reservations are heap blocks; mapping checks only. */
API CUresult cuMemCreate(CUmemHandle *h, size_t n, const void *prop, unsigned long long f) {
  (void)prop; (void)f;
  void *m = take(n);
  *h = (uintptr_t)m;
  return m ? 0 : 2;
}
API CUresult cuMemRelease(CUmemHandle h) { return give((void *)(uintptr_t)h); }
API CUresult cuMemAddressReserve(CUdeviceptr *p, size_t n, size_t al, CUdeviceptr a, unsigned long long f) {
  (void)al; (void)a; (void)f;
  return cuMemAlloc_v2(p, n);
}
API CUresult cuMemAddressFree(CUdeviceptr p, size_t n) { (void)n; return cuMemFree_v2(p); }
API CUresult cuMemMap(CUdeviceptr p, size_t n, size_t off, CUmemHandle h, unsigned long long f) {
  return (p && n && h && !off && !f) ? 0 : 1;
}
API CUresult cuMemUnmap(CUdeviceptr p, size_t n) { return (p && n) ? 0 : 1; }

/* Modules and launches: nothing runs, but launches are counted so that tests can tell whether the
 * shim launched anything (it must not on a capturing stream), and module loads so that they can
 * tell how often the kernels tried to load theirs. */
static int g_module, g_function;
static int64_t g_launches, g_module_loads;
API int64_t gs_standin_launches(void) { return __atomic_load_n(&g_launches, __ATOMIC_RELAXED); }
API int64_t gs_standin_module_loads(void) { return __atomic_load_n(&g_module_loads, __ATOMIC_RELAXED); }

/* The CUresult GS_STANDIN_MODULE_LOAD asks module loads to fail with (read at every load, so a
 * test can switch it): "fail" is 209 (CUDA_ERROR_NO_BINARY_FOR_GPU), a number is that error;
 * "nobinary": 209 for every image but the stand-in NVRTC's (a GPU the fatbin has no code for);
 * unset, empty or anything else: 0, they succeed. */
static CUresult module_load_error(const void *image) {
  const char *e = getenv("GS_STANDIN_MODULE_LOAD");
  if (e == NULL || *e == '\0') return 0;
  if (strcmp(e, "fail") == 0) return 209;
  if (strcmp(e, "nobinary") == 0) return memcmp(image, "GSSTANDIN-CUBIN", 15) == 0 ? 0 : 209;
  char *end;
  long v = strtol(e, &end, 10);
  return *end == '\0' && v > 0 && v < 100000 ? (CUresult)v : 0;
}

API CUresult cuModuleLoadData(void **mod, const void *image) {
  __atomic_add_fetch(&g_module_loads, 1, __ATOMIC_RELAXED);
  CUresult r = image ? module_load_error(image) : 1;
  *mod = r == 0 ? &g_module : NULL;
  return r;
}
API CUresult cuModuleGetFunction(void **fn, void *mod, const char *name) {
  *fn = &g_function;
  return mod == &g_module && name ? 0 : 400;
}
/* Compute capability 9.0 (attributes 75 and 76); 4 for any other attribute. */
API CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
  *v = attr == 75 ? 9 : attr == 76 ? 0 : 4;
  return attr >= 0 && dev >= 0 ? 0 : 1;
}
/* A GPU clock: every launch takes 10 us of it, so event timings are exact and testable. */
static int64_t g_gpu_clock_ns;
API CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                            unsigned bz, unsigned shared, CUstream s, void **params, void **extra) {
  (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)shared, (void)s, (void)params, (void)extra;
  __atomic_add_fetch(&g_launches, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&g_gpu_clock_ns, 10000, __ATOMIC_RELAXED);
  return fn == &g_function ? 0 : 400;
}

/* Stream capture: the stream GS_STANDIN_CAPTURING_STREAM is "capturing a graph", others are not.
 * GS_STANDIN_CAPTURE_ELSEWHERE=1 plays another stream capturing in global mode: a query of the
 * legacy stream (0) then fails with CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, as the real driver's. */
API CUresult cuStreamIsCapturing(CUstream s, int *status) {
  const char *e = getenv("GS_STANDIN_CAPTURE_ELSEWHERE");
  if (s == NULL && e && strcmp(e, "1") == 0) return 906;
  *status = s == GS_STANDIN_CAPTURING_STREAM ? 1 : 0; /* CU_STREAM_CAPTURE_STATUS_ACTIVE : NONE */
  return 0;
}

/* Events read the GPU clock when recorded. GS_STANDIN_EVENTS_PENDING=1: none completes yet. */
typedef struct event {
  int64_t at;
} event;
API CUresult cuEventCreate(void **e, unsigned flags) {
  (void)flags;
  *e = calloc(1, sizeof(event));
  return *e ? 0 : 2;
}
API CUresult cuEventDestroy_v2(void *e) {
  free(e);
  return e ? 0 : 400;
}
API CUresult cuEventRecord(void *e, CUstream s) {
  (void)s;
  ((event *)e)->at = __atomic_load_n(&g_gpu_clock_ns, __ATOMIC_RELAXED);
  return 0;
}
API CUresult cuEventQuery(void *e) {
  const char *p = getenv("GS_STANDIN_EVENTS_PENDING");
  return e == NULL ? 400 : (p && strcmp(p, "1") == 0) ? 600 : 0; /* CUDA_ERROR_NOT_READY */
}
API CUresult cuEventElapsedTime_v2(float *ms, void *a, void *b) {
  *ms = (float)(((event *)b)->at - ((event *)a)->at) / 1e6f;
  return 0;
}

/* A cu-prefixed name that is not a driver function (as cudnn's are): must pass untouched. */
API int cudnnGetVersion(void) { return 90000; }

API CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, unsigned long long flags);
API CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, unsigned long long flags, int *status);

/* The driver's lookup table: base name, the CUDA version that introduced the entry, the function,
 * its per-thread-default-stream variant (if any), and the older ABI served below that version. */
typedef struct entry {
  const char *base;
  int since;
  void *fn, *ptsz;
  int old_below;
  void *old;
} entry;

#define E(b, v, f) {b, v, (void *)f, NULL, 0, NULL}
static const entry g_table[] = {
  E("cuInit", 2000, cuInit), E("cuDriverGetVersion", 2020, cuDriverGetVersion),
  E("cuCtxGetCurrent", 4000, cuCtxGetCurrent), E("cuCtxSetCurrent", 4000, cuCtxSetCurrent),
  E("cuCtxGetDevice", 2000, cuCtxGetDevice), E("cuDevicePrimaryCtxRetain", 7000, cuDevicePrimaryCtxRetain),
  E("cuDeviceGetCount", 2000, cuDeviceGetCount),
  {"cuMemAlloc", 2000, (void *)cuMemAlloc_v2, NULL, 3020, (void *)cuMemAlloc},
  E("cuMemFree", 3020, cuMemFree_v2), E("cuMemAllocPitch", 3020, cuMemAllocPitch_v2),
  E("cuMemAllocManaged", 6000, cuMemAllocManaged),
  {"cuMemAllocAsync", 11020, (void *)cuMemAllocAsync, (void *)cuMemAllocAsync_ptsz, 0, NULL},
  {"cuMemAllocFromPoolAsync", 11020, (void *)cuMemAllocFromPoolAsync, (void *)cuMemAllocFromPoolAsync_ptsz, 0, NULL},
  {"cuMemFreeAsync", 11020, (void *)cuMemFreeAsync, (void *)cuMemFreeAsync_ptsz, 0, NULL},
  E("cuMemHostAlloc", 2020, cuMemHostAlloc), E("cuMemAllocHost", 3020, cuMemAllocHost_v2),
  E("cuMemFreeHost", 2000, cuMemFreeHost), E("cuMemCreate", 10020, cuMemCreate),
  E("cuMemRelease", 10020, cuMemRelease), E("cuMemMap", 10020, cuMemMap), E("cuMemUnmap", 10020, cuMemUnmap),
  E("cuMemAddressReserve", 10020, cuMemAddressReserve), E("cuMemAddressFree", 10020, cuMemAddressFree),
  {"cuGetProcAddress", 11030, (void *)cuGetProcAddress_v2, NULL, 12000, (void *)cuGetProcAddress},
};

API CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, unsigned long long flags, int *status) {
  int st = 1;
  CUresult r = 500; /* CUDA_ERROR_NOT_FOUND */
  *pfn = NULL;
  for (size_t i = 0; i < sizeof(g_table) / sizeof(g_table[0]); i++) {
    const entry *e = &g_table[i];
    if (strcmp(e->base, sym) != 0) continue;
    if (ver < e->since) {
      st = 2; /* CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT */
      break;
    }
    *pfn = (e->old && ver < e->old_below) ? e->old : (e->ptsz && (flags & 2)) ? e->ptsz : e->fn;
    st = 0;
    r = 0;
    break;
  }
  if (status) *status = st;
  return r;
}

API CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, unsigned long long flags) {
  return cuGetProcAddress_v2(sym, pfn, ver, flags, NULL);
}

#define A(f) {#f, (void *)f}
static const struct { const char *name; void *fn; } g_exports[] = {
  A(cuInit), A(cuCtxGetCurrent), A(cuCtxGetDevice), A(cuCtxSetCurrent), A(cuDevicePrimaryCtxRetain), A(cuMemAlloc_v2), A(cuMemAlloc), A(cuMemFree_v2),
  A(cuMemAllocPitch_v2), A(cuMemAllocManaged), A(cuMemAllocAsync), A(cuMemAllocAsync_ptsz),
  A(cuMemAllocFromPoolAsync), A(cuMemAllocFromPoolAsync_ptsz), A(cuMemFreeAsync), A(cuMemFreeAsync_ptsz),
  A(cuMemHostAlloc), A(cuMemAllocHost_v2), A(cuMemFreeHost), A(cuMemCreate), A(cuMemRelease),
  A(cuMemAddressReserve), A(cuMemAddressFree), A(cuMemMap), A(cuMemUnmap), A(cudnnGetVersion),
  A(cuGetProcAddress), A(cuGetProcAddress_v2), A(cuStreamIsCapturing), A(cuModuleLoadData),
  A(cuModuleGetFunction), A(cuDeviceGetAttribute), A(cuLaunchKernel),
};

API void *gs_standin_address(const char *name) {
  for (size_t i = 0; i < sizeof(g_exports) / sizeof(g_exports[0]); i++)
    if (strcmp(g_exports[i].name, name) == 0) return g_exports[i].fn;
  return NULL;
}
