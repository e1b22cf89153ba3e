/* cudrv.h: the CUDA driver calls the GPU test and benchmark use, resolved with dlopen (header only). */
#ifndef GS_CUDRV_H
#define GS_CUDRV_H

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;

typedef struct gs_cudrv {
  CUresult (*Init)(unsigned);
  CUresult (*DeviceGetCount)(int *);
  CUresult (*DeviceGet)(int *, int);
  CUresult (*DeviceGetName)(char *, int, int);
  CUresult (*PrimaryCtxRetain)(CUcontext *, int);
  CUresult (*CtxSetCurrent)(CUcontext);
  CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*MemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*MemsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*StreamCreate)(CUstream *, unsigned);
  CUresult (*StreamSynchronize)(CUstream);
  CUresult (*EventCreate)(CUevent *, unsigned);
  CUresult (*EventRecord)(CUevent, CUstream);
  CUresult (*EventSynchronize)(CUevent);
  CUresult (*EventElapsedTime)(float *, CUevent, CUevent);
  CUresult (*GetErrorString)(CUresult, const char **);
  char name[256];
} gs_cudrv;

/* Loads the driver, creates (retains) the primary context of device 0 and makes it current.
 * Returns 0, or -1 with a reason in why (no driver, no device). */
static inline int gs_cudrv_open(gs_cudrv *d, char *why, size_t whylen) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW);
  if (!h) {
    snprintf(why, whylen, "libcuda.so.1 not loadable: %s", dlerror());
    return -1;
  }
#define GS_SYM(field, a, b)                                                  \
  do {                                                                       \
    *(void **)&d->field = dlsym(h, a);                                       \
    if (!d->field && (b)[0]) *(void **)&d->field = dlsym(h, b);                  \
    if (!d->field) {                                                         \
      snprintf(why, whylen, "driver lacks %s", a);                           \
      return -1;                                                             \
    }                                                                        \
  } while (0)
  GS_SYM(Init, "cuInit", "");
  GS_SYM(DeviceGetCount, "cuDeviceGetCount", "");
  GS_SYM(DeviceGet, "cuDeviceGet", "");
  GS_SYM(DeviceGetName, "cuDeviceGetName", "");
  GS_SYM(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain", "");
  GS_SYM(CtxSetCurrent, "cuCtxSetCurrent", "");
  GS_SYM(MemAlloc, "cuMemAlloc_v2", "");
  GS_SYM(MemFree, "cuMemFree_v2", "");
  GS_SYM(MemcpyHtoD, "cuMemcpyHtoD_v2", "");
  GS_SYM(MemcpyDtoH, "cuMemcpyDtoH_v2", "");
  GS_SYM(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", "");
  GS_SYM(MemsetD8, "cuMemsetD8_v2", "");
  GS_SYM(StreamCreate, "cuStreamCreate", "");
  GS_SYM(StreamSynchronize, "cuStreamSynchronize", "");
  GS_SYM(EventCreate, "cuEventCreate", "");
  GS_SYM(EventRecord, "cuEventRecord", "");
  GS_SYM(EventSynchronize, "cuEventSynchronize", "");
  GS_SYM(EventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime");
  GS_SYM(GetErrorString, "cuGetErrorString", "");
#undef GS_SYM
  int count = 0, dev = 0;
  CUresult rc = d->Init(0);
  if (rc != 0 || d->DeviceGetCount(&count) != 0 || count == 0) {
    snprintf(why, whylen, "cuInit=%d, %d devices", rc, count);
    return -1;
  }
  CUcontext ctx;
  if (d->DeviceGet(&dev, 0) != 0 || d->PrimaryCtxRetain(&ctx, dev) != 0 || d->CtxSetCurrent(ctx) != 0) {
    snprintf(why, whylen, "cannot make a context on device 0");
    return -1;
  }
  if (d->DeviceGetName(d->name, sizeof d->name, dev) != 0) strcpy(d->name, "?");
  return 0;
}

#endif
