/* runtime.c: exported cudaMalloc* / cudaFree* wrappers that count what the driver layer did not. */
#include "interpose.h"

/* cudart's functions, found after us in load order (also when cudart was loaded RTLD_LOCAL by a
 * dlopen'ed library, which glibc's RTLD_NEXT would miss). Global: one cudart per process; cached
 * once found, looked up again while absent. */
enum { GS__RT_MALLOC, GS__RT_FREE, GS__RT_MALLOC_ASYNC, GS__RT_FREE_ASYNC, GS__RT_MALLOC_HOST,
       GS__RT_FREE_HOST, GS__RT__COUNT };
static const char *const gs__rt_names[GS__RT__COUNT] = {
  "cudaMalloc", "cudaFree", "cudaMallocAsync", "cudaFreeAsync", "cudaMallocHost", "cudaFreeHost"};
static void *gs__rt_real[GS__RT__COUNT];

static void *gs__rt(int i) {
  void *p = __atomic_load_n(&gs__rt_real[i], __ATOMIC_ACQUIRE);
  if (gs__likely(p != NULL)) return p;
  p = gs__dlsym_next((const void *)gs__rt, gs__rt_names[i]);
  if (p) __atomic_store_n(&gs__rt_real[i], p, __ATOMIC_RELEASE);
  return p;
}

typedef gs_cudaError_t (*gs__malloc_fn)(void **, size_t);
typedef gs_cudaError_t (*gs__free_fn)(void *);
typedef gs_cudaError_t (*gs__malloc_async_fn)(void **, size_t, gs_CUstream);
typedef gs_cudaError_t (*gs__free_async_fn)(void *, gs_CUstream);

/* A runtime call is watched when the shim is on and not itself the caller. The driver layer below
 * sets gs__tl_driver_seen when it recorded an allocation; only if it did not (static driver
 * bindings, a runtime that caches) does the runtime layer record it. The flag is saved and
 * restored so nested calls (a runtime calling itself) cannot confuse an outer one. */
typedef struct gs__rt_scope {
  bool watch, saved;
} gs__rt_scope;

static gs__rt_scope gs__rt_begin(void) {
  gs__rt_scope s = {.watch = gs__active() && gs__tl_guard == 0, .saved = gs__tl_driver_seen};
  gs__tl_driver_seen = false;
  return s;
}

static bool gs__rt_end(gs__rt_scope s) {
  bool record = s.watch && !gs__tl_driver_seen;
  gs__tl_driver_seen = s.saved;
  return record;
}

static void gs__rt_record(uint64_t key, uint64_t size, uint64_t stream, bool host, gs_alloc_kind kind) {
  gs__guard_enter();
  gs_alloc_record rec = {.size = size, .stream = stream, .time_ns = gs__now_ns(),
                         .device = (int16_t)(host ? GS_DEVICE_HOST : gs__current_device()),
                         .kind = (uint8_t)kind};
  (void)gs__registry_insert(key, &rec);
  gs__guard_leave();
}

static gs_cudaError_t gs__rt_alloc(int which, void **p, size_t n, bool host, gs_alloc_kind kind) {
  gs__malloc_fn real = (gs__malloc_fn)gs__rt(which);
  if (real == NULL) return GS_cudaErrorInitializationError;
  gs__rt_scope s = gs__rt_begin();
  gs_cudaError_t r = real(p, n);
  if (gs__rt_end(s) && r == 0 && p && *p) gs__rt_record((uintptr_t)*p, n, 0, host, kind);
  return r;
}

/* Frees are forgotten before the real call, as in the driver layer: once the memory is back,
 * another thread may be handed the same address and record it. The driver wrapper below skips
 * the key (gs__tl_pending_free), so the free is counted once whichever layers see it; a failed
 * free puts the record back. cudaFree(NULL), the classic initialization idiom, is not counted. */
static gs_cudaError_t gs__rt_forget_call(void *real, bool async, void *p, gs_CUstream st) {
  bool watch = p != NULL && gs__active() && gs__tl_guard == 0;
  gs_alloc_record rec;
  bool had = false;
  uint64_t saved = gs__tl_pending_free;
  if (watch) {
    gs__guard_enter();
    had = gs__registry_remove((uintptr_t)p, &rec) == 0;
    gs__guard_leave();
    gs__tl_pending_free = (uintptr_t)p;
  }
  gs_cudaError_t r = async ? ((gs__free_async_fn)real)(p, st) : ((gs__free_fn)real)(p);
  if (watch) {
    gs__tl_pending_free = saved;
    if (r != 0 && had) gs__registry_undo_remove((uintptr_t)p, &rec);
  }
  return r;
}

static gs_cudaError_t gs__rt_free(int which, void *p) {
  void *real = gs__rt(which);
  if (real == NULL) return GS_cudaErrorInitializationError;
  return gs__rt_forget_call(real, false, p, NULL);
}

GS_API gs_cudaError_t cudaMalloc(void **p, size_t n) {
  return gs__rt_alloc(GS__RT_MALLOC, p, n, false, GS_KIND_DEVICE);
}

GS_API gs_cudaError_t cudaFree(void *p) { return gs__rt_free(GS__RT_FREE, p); }

GS_API gs_cudaError_t cudaMallocHost(void **p, size_t n) {
  return gs__rt_alloc(GS__RT_MALLOC_HOST, p, n, true, GS_KIND_HOST_PINNED);
}

GS_API gs_cudaError_t cudaFreeHost(void *p) { return gs__rt_free(GS__RT_FREE_HOST, p); }

GS_API gs_cudaError_t cudaMallocAsync(void **p, size_t n, gs_CUstream st) {
  gs__malloc_async_fn real = (gs__malloc_async_fn)gs__rt(GS__RT_MALLOC_ASYNC);
  if (real == NULL) return GS_cudaErrorInitializationError;
  gs__rt_scope s = gs__rt_begin();
  gs_cudaError_t r = real(p, n, st);
  if (gs__rt_end(s) && r == 0 && p && *p)
    gs__rt_record((uintptr_t)*p, n, (uint64_t)(uintptr_t)st, false, GS_KIND_ASYNC_POOL);
  return r;
}

GS_API gs_cudaError_t cudaFreeAsync(void *p, gs_CUstream st) {
  void *real = gs__rt(GS__RT_FREE_ASYNC);
  if (real == NULL) return GS_cudaErrorInitializationError;
  return gs__rt_forget_call(real, true, p, st);
}
