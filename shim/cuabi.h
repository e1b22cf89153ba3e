/* cuabi.h: the slice of the CUDA driver and runtime ABI the shim touches, declared here so that the
 * library builds without the toolkit (values and signatures as in CUDA 12/13 cuda.h). */
#ifndef GS_CUABI_H
#define GS_CUABI_H

#include <stddef.h>
#include <stdint.h>

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

#endif
