/* driver.h: the table of watched driver entry points (exact names) shared by interpose.c and driver.c. */
#ifndef GS_DRIVER_H
#define GS_DRIVER_H

#include "common.h"
#include "cuabi.h"

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

/* The cuGetProcAddress wrappers live in interpose.c beside the routing they perform. */
gs_CUresult gs__w_cuGetProcAddress(const char *symbol, void **pfn, int ver, gs_cuuint64_t flags);
gs_CUresult gs__w_cuGetProcAddress_v2(const char *symbol, void **pfn, int ver, gs_cuuint64_t flags,
                                      int *status);

#endif
