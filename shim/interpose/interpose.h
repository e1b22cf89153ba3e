/* interpose.h: the dlsym / cuGetProcAddress hooks and the wrapped driver and runtime memory calls. */
#ifndef GS_INTERPOSE_H
#define GS_INTERPOSE_H

/* The interpose room depends on base and registry: every allocation it sees is recorded in the
 * registry, which tells its observers (the timeline). */

#include "base.h"
#include "registry.h"

/* ---- the slice of the CUDA driver and runtime ABI the shim touches ------------------------
 * Declared here so that the library builds without the toolkit (values and signatures as in
 * CUDA 12/13 cuda.h). */

typedef int gs_CUresult;                    /* CUresult */
typedef int gs_cudaError_t;                 /* cudaError_t */
typedef int gs_CUdevice;                    /* CUdevice (CUdevice_v1) */
typedef unsigned long long gs_CUdeviceptr;  /* CUdeviceptr (CUdeviceptr_v2) */
typedef unsigned long long gs_CUmemHandle;  /* CUmemGenericAllocationHandle */
typedef uint64_t gs_cuuint64_t;
typedef void *gs_CUcontext;
typedef void *gs_CUstream;                  /* CUstream == cudaStream_t */
typedef void *gs_CUmemoryPool;

#define GS_CUDA_SUCCESS 0
#define GS_CUDA_ERROR_INVALID_VALUE 1
#define GS_CUDA_ERROR_OUT_OF_MEMORY 2
#define GS_CUDA_ERROR_NOT_INITIALIZED 3
#define GS_CUDA_ERROR_NOT_FOUND 500
#define GS_cudaErrorInitializationError 3

/* CUdriverProcAddressQueryResult and the cuGetProcAddress flags. */
#define GS_CU_GET_PROC_ADDRESS_SUCCESS 0
#define GS_CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND 1
#define GS_CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT 2
#define GS_CU_GET_PROC_ADDRESS_LEGACY_STREAM 1
#define GS_CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM 2

/* CUmemAllocationProp (CUmemAllocationProp_v1); only location is read. */
#define GS_CU_MEM_LOCATION_TYPE_DEVICE 1
typedef struct gs_CUmemAllocationProp {
  int type;
  int requestedHandleTypes;
  struct {
    int type;
    int id;
  } location;
  void *win32HandleMetaData;
  struct {
    unsigned char compressionType;
    unsigned char gpuDirectRDMACapable;
    unsigned short usage;
    unsigned char reserved[4];
  } allocFlags;
} gs_CUmemAllocationProp;

/* cuGetProcAddress (CUDA 11.3-12.x, 4 arguments) and cuGetProcAddress_v2 (12.0+, 5 arguments;
 * CUDA 13's cuda.h maps the plain name onto it and the v1 entry point may be gone). */
typedef gs_CUresult (*gs_cuGetProcAddress_fn)(const char *symbol, void **pfn, int cudaVersion,
                                              gs_cuuint64_t flags);
typedef gs_CUresult (*gs_cuGetProcAddress_v2_fn)(const char *symbol, void **pfn, int cudaVersion,
                                                 gs_cuuint64_t flags, int *symbolStatus);
typedef gs_CUresult (*gs_cuCtxGetCurrent_fn)(gs_CUcontext *pctx);
typedef gs_CUresult (*gs_cuCtxGetDevice_fn)(gs_CUdevice *dev);


/* ---- the hooks (dlsym.c, interpose.c) ------------------------------------------------------ */

/* Code that can run inside a sanitizer runtime's own start-up (it resolves its interceptors with
 * dlsym(RTLD_NEXT) before its shadow memory exists, and our dlsym is the one it reaches) must not
 * be instrumented. Only the dlsym path carries this. */
#define GS_NO_SANITIZE __attribute__((no_sanitize("address", "undefined", "thread")))

/* glibc's dlsym, once resolved. Global so that dlsym.c's entry stub can jump to it directly. */
extern void *(*gs__dlsym_real)(void *, const char *);

/* Resolves the real dlsym (dlvsym on RTLD_NEXT); no CUDA call. Called by the constructor even when
 * the shim is disabled, since our exported dlsym must always reach the real one. */
void gs__interpose_init(void);

/* In the fork child: resets the interposer's locks and once-flags. */
void gs__interpose_atfork_child(void);

/* The real dlsym, never our hook (resolves it first if the constructor has not run yet). */
void *gs__real_dlsym(void *handle, const char *name);

/* RTLD_NEXT relative to the object that contains address `caller`: the first definition of name in
 * an object loaded after that one. NULL (with dlerror set) when there is none. */
void *gs__dlsym_next(const void *caller, const char *name);

/* What our exported dlsym does (dlsym.c): the real lookup (RTLD_NEXT relative to caller, the
 * return address of the application's call), then gs__route. */
void *gs__dlsym_hook(void *handle, const char *name, const void *caller);

/* Returns the shim's wrapper when p is one of the driver's watched entry points (compared by
 * address with the driver's exact-named exports), else p. name only decides whether it is worth
 * building the table now (a "cu" prefix); it never selects a wrapper. */
void *gs__route(const char *name, void *p);

/* Per-thread recursion guard: while it is held, every wrapper passes straight through, so work the
 * shim does itself (bookkeeping, the engine's own buffers) is never recorded twice or re-entered.
 * Thread-local because re-entrancy is a property of one call stack. */
extern __thread int gs__tl_guard __attribute__((tls_model("initial-exec")));
static inline void gs__guard_enter(void) { gs__tl_guard++; }
static inline void gs__guard_leave(void) { gs__tl_guard--; }


/* ---- the table of watched driver entry points (driver.c) ----------------------------------- */

/* Every exact driver export the shim substitutes. Suffixes matter: cuMemAlloc (v1, 32-bit sizes)
 * is not cuMemAlloc_v2 and is deliberately absent, as are cudnn* and everything else. */
#define GS__DRIVER_ENTRIES(X) \
  X(cuMemAlloc_v2)                \
  X(cuMemAllocPitch_v2)           \
  X(cuMemAllocManaged)            \
  X(cuMemFree_v2)                 \
  X(cuMemAllocAsync)              \
  X(cuMemAllocAsync_ptsz)         \
  X(cuMemAllocFromPoolAsync)      \
  X(cuMemAllocFromPoolAsync_ptsz) \
  X(cuMemFreeAsync)               \
  X(cuMemFreeAsync_ptsz)          \
  X(cuMemCreate)                  \
  X(cuMemRelease)                 \
  X(cuMemMap)                     \
  X(cuMemUnmap)                   \
  X(cuMemAddressReserve)          \
  X(cuMemAddressFree)             \
  X(cuMemHostAlloc)               \
  X(cuMemAllocHost_v2)            \
  X(cuMemFreeHost)                \
  X(cuGetProcAddress)             \
  X(cuGetProcAddress_v2)

typedef enum gs__drv_index {
#define GS__X(n) GS__DRV_##n,
  GS__DRIVER_ENTRIES(GS__X)
#undef GS__X
  GS__DRV__COUNT
} gs__drv_index;

typedef struct gs__drv_entry {
  const char *name;
  void *wrapper;
  void *real; /* the driver's function; written once under the build lock, read with acquire */
} gs__drv_entry;

/* One row per watched name. Global because the dlsym hook, cuGetProcAddress and every wrapper
 * consult it; rows are written only while the table is built. */
extern gs__drv_entry gs__drv_table[GS__DRV__COUNT];

static inline void *gs__drv_real(gs__drv_index i) {
  return __atomic_load_n(&gs__drv_table[i].real, __ATOMIC_ACQUIRE);
}

/* Fills the real pointers (and cuCtxGetCurrent/cuCtxGetDevice) from the driver handle h. */
void gs__driver_bind(void *h);

/* The device of the calling thread's current context (0 when there is none). */
int gs__current_device(void);

/* Set by a driver wrapper when it recorded (or forgot) an allocation, so the runtime wrapper above
 * it on the same thread knows the call was already counted. */
extern __thread bool gs__tl_driver_seen __attribute__((tls_model("initial-exec")));

/* The key a runtime free wrapper on this thread already took out of the registry (0 if none): the
 * runtime forgets before calling down, since after the real free another thread may be handed
 * the same address; the driver wrapper below then leaves that key alone. */
extern __thread uint64_t gs__tl_pending_free __attribute__((tls_model("initial-exec")));

/* The cuGetProcAddress wrappers live in interpose.c beside the routing they perform. */
gs_CUresult gs__w_cuGetProcAddress(const char *symbol, void **pfn, int ver, gs_cuuint64_t flags);
gs_CUresult gs__w_cuGetProcAddress_v2(const char *symbol, void **pfn, int ver, gs_cuuint64_t flags,
                                      int *status);

#endif
