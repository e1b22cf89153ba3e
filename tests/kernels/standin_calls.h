/* standin_calls.h: the GPU codec calls the stand-in driver tests make (check-gpu-load.c,
 * check-gpu-nvrtc.c): one small tensor, compressed and decompressed on the legacy stream. */
#ifndef GS_STANDIN_CALLS_H
#define GS_STANDIN_CALLS_H

#include "gactshim.h"

#include <stdint.h>

/* Stand-in driver entry points the tests drive directly. */
int cuCtxSetCurrent(void *ctx);
int cuDevicePrimaryCtxRetain(void **ctx, int dev);
int cuCtxGetCurrent(void **ctx);

static const gs_codec_params P = {.n = 1024, .dtype = GS_DTYPE_F32, .bits = 4, .group = 256,
                                  .seed = 1, .tensor_id = 2};
/* The stand-in runs no kernel: any host buffers of the right alignment serve as device memory. */
static float g_src[1024];
static _Alignas(16) unsigned char g_dst[4096];

static inline int compress(void) {
  return gs_gpu_compress(&P, (uint64_t)(uintptr_t)g_src, (uint64_t)(uintptr_t)g_dst, NULL);
}
static inline int decompress(void) {
  return gs_gpu_decompress(&P, (uint64_t)(uintptr_t)g_dst, (uint64_t)(uintptr_t)g_src, NULL);
}

#endif
