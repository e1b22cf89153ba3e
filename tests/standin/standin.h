/* standin.h: test-only helpers exported by the stand-in CUDA driver (libcuda.so.1). */
#ifndef GS_STANDIN_H
#define GS_STANDIN_H

#include <stdint.h>

/* The stand-in's own address for an exported driver name, from its internal table (never through
 * dlsym, which the shim hooks), or NULL. */
void *gs_standin_address(const char *name);

/* The one stream that cuStreamIsCapturing reports as capturing a CUDA graph. */
#define GS_STANDIN_CAPTURING_STREAM ((void *)(uintptr_t)0xca97)

/* Allocations the stand-in driver currently holds (device, managed, pinned, VMM handles). */
int64_t gs_standin_outstanding(void);

/* Kernels launched so far (cuLaunchKernel is counted, nothing runs). */
int64_t gs_standin_launches(void);

/* cuModuleLoadData calls so far, failed ones included. GS_STANDIN_MODULE_LOAD=fail (or =<CUresult>)
 * in the environment makes loads fail with 209, CUDA_ERROR_NO_BINARY_FOR_GPU (or that CUresult). */
int64_t gs_standin_module_loads(void);

#endif
