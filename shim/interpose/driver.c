/* driver.c: the wrapped driver memory calls, one per exact name, recording into the registry. */
#include "interpose.h"

/* Per-thread state: see interpose.h. */
__thread bool gs__tl_driver_seen __attribute__((tls_model("initial-exec")));
__thread int gs__tl_guard __attribute__((tls_model("initial-exec")));
__thread uint64_t gs__tl_pending_free __attribute__((tls_model("initial-exec")));

/* The last context this thread saw and its device: cuCtxGetDevice runs once per context change,
 * not once per allocation. Thread-local because the current context is. */
static __thread gs_CUcontext gs__tl_ctx __attribute__((tls_model("initial-exec")));
static __thread int gs__tl_dev __attribute__((tls_model("initial-exec")));

/* Resolved from the driver handle with the table; written once, read with acquire. */
static gs_cuCtxGetCurrent_fn gs__ctx_get_current;
static gs_cuCtxGetDevice_fn gs__ctx_get_device;

/* VMM handles and device addresses share the registry's key space; the top bit keeps them apart
 * (user-space addresses never set it). */
#define GS__VMM_KEY(h) ((uint64_t)(h) | (1ull << 63))

int gs__current_device(void) {
  gs_cuCtxGetCurrent_fn get = __atomic_load_n(&gs__ctx_get_current, __ATOMIC_ACQUIRE);
  gs_CUcontext ctx = NULL;
  if (get == NULL || get(&ctx) != GS_CUDA_SUCCESS || ctx == NULL) return 0;
  if (ctx == gs__tl_ctx) return gs__tl_dev;
  gs_cuCtxGetDevice_fn getdev = __atomic_load_n(&gs__ctx_get_device, __ATOMIC_ACQUIRE);
  gs_CUdevice d = 0;
  if (getdev == NULL || getdev(&d) != GS_CUDA_SUCCESS || d < 0 || d >= GS_MAX_DEVICES) d = 0;
  gs__tl_ctx = ctx;
  gs__tl_dev = d;
  return d;
}

/* Whether this call should be recorded: the shim is on and the shim itself is not the caller. */
static inline bool gs__watching(void) { return gs__likely(gs__active()) && gs__tl_guard == 0; }

static void gs__note_alloc(uint64_t key, uint64_t size, uint64_t stream, int device, gs_alloc_kind kind) {
  gs__guard_enter();
  gs_alloc_record rec = {.size = size, .stream = stream, .time_ns = gs__now_ns(),
                         .device = (int16_t)device, .kind = (uint8_t)kind};
  (void)gs__registry_insert(key, &rec); /* a failure is counted there and never fails the call */
  gs__tl_driver_seen = true;
  gs__guard_leave();
}

static void gs__note_device_alloc(uint64_t key, uint64_t size, uint64_t stream, gs_alloc_kind kind) {
  gs__guard_enter();
  int dev = gs__current_device();
  gs__guard_leave();
  gs__note_alloc(key, size, stream, dev, kind);
}

/* An out-of-memory answer goes on the timeline: it is what the report is read for. */
static void gs__note_oom(uint64_t size, gs_CUresult r) {
  if (gs__likely(r != GS_CUDA_ERROR_OUT_OF_MEMORY) || !gs__watching()) return;
  gs__guard_enter();
  gs__registry_note_oom(size, gs__current_device(), (int)r);
  gs__guard_leave();
}

/* Frees are forgotten before the real call: once the driver has the memory back another thread
 * may get the same address and record it. A failed free puts the record back. */
static bool gs__forget(uint64_t key, gs_alloc_record *rec) {
  gs__tl_driver_seen = true;
  if (key == 0 || key == gs__tl_pending_free) return false; /* NULL, or the runtime above did it */
  return gs__registry_remove(key, rec) == 0;
}

static void gs__unforget(gs_CUresult r, bool had, uint64_t key, const gs_alloc_record *rec) {
  if (r != GS_CUDA_SUCCESS && had) gs__registry_undo_remove(key, rec);
}

#define GS__REAL(n) ((gs__fn_##n)gs__drv_real(GS__DRV_##n))
#define GS__CALL(n, ...)                                      \
  gs__fn_##n real = GS__REAL(n);                              \
  if (gs__unlikely(real == NULL)) return GS_CUDA_ERROR_NOT_INITIALIZED; \
  if (!gs__watching()) return real(__VA_ARGS__)

/* Stream-ordered allocations and frees, for the plain and the per-thread-stream (_ptsz) names. */
#define GS__ASYNC_PAIR(sfx)                                                                        \
  typedef gs_CUresult (*gs__fn_cuMemAllocAsync##sfx)(gs_CUdeviceptr *, size_t, gs_CUstream);       \
  static gs_CUresult gs__w_cuMemAllocAsync##sfx(gs_CUdeviceptr *p, size_t n, gs_CUstream s) {      \
    GS__CALL(cuMemAllocAsync##sfx, p, n, s);                                                       \
    gs_CUresult r = real(p, n, s);                                                                 \
    gs__note_oom(n, r);                                                                            \
    if (r == GS_CUDA_SUCCESS && p && *p) gs__note_device_alloc(*p, n, (uint64_t)(uintptr_t)s, GS_KIND_ASYNC_POOL); \
    return r;                                                                                      \
  }                                                                                                \
  typedef gs_CUresult (*gs__fn_cuMemAllocFromPoolAsync##sfx)(gs_CUdeviceptr *, size_t, gs_CUmemoryPool, gs_CUstream); \
  static gs_CUresult gs__w_cuMemAllocFromPoolAsync##sfx(gs_CUdeviceptr *p, size_t n, gs_CUmemoryPool pool, gs_CUstream s) { \
    GS__CALL(cuMemAllocFromPoolAsync##sfx, p, n, pool, s);                                         \
    gs_CUresult r = real(p, n, pool, s);                                                           \
    gs__note_oom(n, r);                                                                            \
    if (r == GS_CUDA_SUCCESS && p && *p) gs__note_device_alloc(*p, n, (uint64_t)(uintptr_t)s, GS_KIND_ASYNC_POOL); \
    return r;                                                                                      \
  }                                                                                                \
  typedef gs_CUresult (*gs__fn_cuMemFreeAsync##sfx)(gs_CUdeviceptr, gs_CUstream);                  \
  static gs_CUresult gs__w_cuMemFreeAsync##sfx(gs_CUdeviceptr p, gs_CUstream s) {                  \
    GS__CALL(cuMemFreeAsync##sfx, p, s);                                                           \
    gs_alloc_record rec;                                                                           \
    bool had = gs__forget(p, &rec);                                                                \
    gs_CUresult r = real(p, s);                                                                    \
    gs__unforget(r, had, p, &rec);                                                                 \
    return r;                                                                                      \
  }

GS__ASYNC_PAIR()
GS__ASYNC_PAIR(_ptsz)

typedef gs_CUresult (*gs__fn_cuMemAlloc_v2)(gs_CUdeviceptr *, size_t);
static gs_CUresult gs__w_cuMemAlloc_v2(gs_CUdeviceptr *p, size_t n) {
  GS__CALL(cuMemAlloc_v2, p, n);
  gs_CUresult r = real(p, n);
  gs__note_oom(n, r);
  if (r == GS_CUDA_SUCCESS && p && *p) gs__note_device_alloc(*p, n, 0, GS_KIND_DEVICE);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemAllocPitch_v2)(gs_CUdeviceptr *, size_t *, size_t, size_t, unsigned);
static gs_CUresult gs__w_cuMemAllocPitch_v2(gs_CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned e) {
  GS__CALL(cuMemAllocPitch_v2, p, pitch, w, h, e);
  gs_CUresult r = real(p, pitch, w, h, e);
  gs__note_oom((uint64_t)w * h, r);
  if (r == GS_CUDA_SUCCESS && p && *p && pitch) gs__note_device_alloc(*p, (uint64_t)*pitch * h, 0, GS_KIND_DEVICE);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemAllocManaged)(gs_CUdeviceptr *, size_t, unsigned);
static gs_CUresult gs__w_cuMemAllocManaged(gs_CUdeviceptr *p, size_t n, unsigned flags) {
  GS__CALL(cuMemAllocManaged, p, n, flags);
  gs_CUresult r = real(p, n, flags);
  gs__note_oom(n, r);
  if (r == GS_CUDA_SUCCESS && p && *p) gs__note_device_alloc(*p, n, 0, GS_KIND_MANAGED);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemFree_v2)(gs_CUdeviceptr);
static gs_CUresult gs__w_cuMemFree_v2(gs_CUdeviceptr p) {
  GS__CALL(cuMemFree_v2, p);
  gs_alloc_record rec;
  bool had = gs__forget(p, &rec);
  gs_CUresult r = real(p);
  gs__unforget(r, had, p, &rec);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemHostAlloc)(void **, size_t, unsigned);
static gs_CUresult gs__w_cuMemHostAlloc(void **p, size_t n, unsigned flags) {
  GS__CALL(cuMemHostAlloc, p, n, flags);
  gs_CUresult r = real(p, n, flags);
  gs__note_oom(n, r);
  if (r == GS_CUDA_SUCCESS && p && *p) gs__note_alloc((uintptr_t)*p, n, 0, GS_DEVICE_HOST, GS_KIND_HOST_PINNED);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemAllocHost_v2)(void **, size_t);
static gs_CUresult gs__w_cuMemAllocHost_v2(void **p, size_t n) {
  GS__CALL(cuMemAllocHost_v2, p, n);
  gs_CUresult r = real(p, n);
  gs__note_oom(n, r);
  if (r == GS_CUDA_SUCCESS && p && *p) gs__note_alloc((uintptr_t)*p, n, 0, GS_DEVICE_HOST, GS_KIND_HOST_PINNED);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemFreeHost)(void *);
static gs_CUresult gs__w_cuMemFreeHost(void *p) {
  GS__CALL(cuMemFreeHost, p);
  gs_alloc_record rec;
  bool had = gs__forget((uintptr_t)p, &rec);
  gs_CUresult r = real(p);
  gs__unforget(r, had, (uintptr_t)p, &rec);
  return r;
}

/* VMM: physical memory is counted per handle (cuMemCreate .. cuMemRelease), on the device the
 * allocation properties name. Mapping it (possibly several times) adds no memory. */
typedef gs_CUresult (*gs__fn_cuMemCreate)(gs_CUmemHandle *, size_t, const gs_CUmemAllocationProp *, unsigned long long);
static gs_CUresult gs__w_cuMemCreate(gs_CUmemHandle *h, size_t n, const gs_CUmemAllocationProp *prop, unsigned long long f) {
  GS__CALL(cuMemCreate, h, n, prop, f);
  gs_CUresult r = real(h, n, prop, f);
  gs__note_oom(n, r);
  if (r != GS_CUDA_SUCCESS || h == NULL) return r;
  bool on_dev = prop && prop->location.type == GS_CU_MEM_LOCATION_TYPE_DEVICE &&
                prop->location.id >= 0 && prop->location.id < GS_MAX_DEVICES;
  if (on_dev) gs__note_alloc(GS__VMM_KEY(*h), n, 0, prop->location.id, GS_KIND_VMM);
  else gs__note_device_alloc(GS__VMM_KEY(*h), n, 0, GS_KIND_VMM);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemRelease)(gs_CUmemHandle);
static gs_CUresult gs__w_cuMemRelease(gs_CUmemHandle h) {
  GS__CALL(cuMemRelease, h);
  gs_alloc_record rec;
  bool had = gs__forget(GS__VMM_KEY(h), &rec);
  gs_CUresult r = real(h);
  gs__unforget(r, had, GS__VMM_KEY(h), &rec);
  return r;
}

/* Address reservations and mappings are observed only (debug log): they hold no memory. */
typedef gs_CUresult (*gs__fn_cuMemMap)(gs_CUdeviceptr, size_t, size_t, gs_CUmemHandle, unsigned long long);
static gs_CUresult gs__w_cuMemMap(gs_CUdeviceptr p, size_t n, size_t off, gs_CUmemHandle h, unsigned long long f) {
  GS__CALL(cuMemMap, p, n, off, h, f);
  gs_CUresult r = real(p, n, off, h, f);
  gs__log(GS_LOG_DEBUG, "cuMemMap(0x%llx, %zu) = %d", p, n, r);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemUnmap)(gs_CUdeviceptr, size_t);
static gs_CUresult gs__w_cuMemUnmap(gs_CUdeviceptr p, size_t n) {
  GS__CALL(cuMemUnmap, p, n);
  gs_CUresult r = real(p, n);
  gs__log(GS_LOG_DEBUG, "cuMemUnmap(0x%llx, %zu) = %d", p, n, r);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemAddressReserve)(gs_CUdeviceptr *, size_t, size_t, gs_CUdeviceptr, unsigned long long);
static gs_CUresult gs__w_cuMemAddressReserve(gs_CUdeviceptr *p, size_t n, size_t al, gs_CUdeviceptr a, unsigned long long f) {
  GS__CALL(cuMemAddressReserve, p, n, al, a, f);
  gs_CUresult r = real(p, n, al, a, f);
  gs__log(GS_LOG_DEBUG, "cuMemAddressReserve(%zu) = %d", n, r);
  return r;
}

typedef gs_CUresult (*gs__fn_cuMemAddressFree)(gs_CUdeviceptr, size_t);
static gs_CUresult gs__w_cuMemAddressFree(gs_CUdeviceptr p, size_t n) {
  GS__CALL(cuMemAddressFree, p, n);
  gs_CUresult r = real(p, n);
  gs__log(GS_LOG_DEBUG, "cuMemAddressFree(0x%llx, %zu) = %d", p, n, r);
  return r;
}

gs__drv_entry gs__drv_table[GS__DRV__COUNT] = {
#define GS__X(n) [GS__DRV_##n] = {#n, (void *)gs__w_##n, NULL},
  GS__DRIVER_ENTRIES(GS__X)
#undef GS__X
};

void gs__driver_bind(void *h) {
  for (int i = 0; i < GS__DRV__COUNT; i++)
    __atomic_store_n(&gs__drv_table[i].real, gs__real_dlsym(h, gs__drv_table[i].name), __ATOMIC_RELEASE);
  __atomic_store_n(&gs__ctx_get_current, (gs_cuCtxGetCurrent_fn)gs__real_dlsym(h, "cuCtxGetCurrent"),
                   __ATOMIC_RELEASE);
  __atomic_store_n(&gs__ctx_get_device, (gs_cuCtxGetDevice_fn)gs__real_dlsym(h, "cuCtxGetDevice"),
                   __ATOMIC_RELEASE);
}
