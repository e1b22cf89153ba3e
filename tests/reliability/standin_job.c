/* standin_job.c: a program calling the stand-in CUDA driver under the shim, for the driver-level
 * reliability cases: "oom" (an allocation the driver refuses) and "capture" (a capturing stream).
 * Prints what it saw as key=value words; exits 0 when the shim behaved, 1 otherwise. */
#include "gactshim.h"
#include "standin.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef int (*alloc_fn)(unsigned long long *, size_t);
typedef int (*free_fn)(unsigned long long);
typedef int (*proc_fn)(const char *, void **, int, unsigned long long, int *);

#define CUDA_ERROR_OUT_OF_MEMORY 2

/* One allocation the driver can serve, then one it cannot: the caller must get the driver's own
 * answer back, unchanged, through both doors (dlsym and cuGetProcAddress_v2). */
static int oom(void *drv) {
  alloc_fn by_dlsym = (alloc_fn)dlsym(drv, "cuMemAlloc_v2");
  free_fn release = (free_fn)dlsym(drv, "cuMemFree_v2");
  proc_fn proc = (proc_fn)dlsym(drv, "cuGetProcAddress_v2");
  alloc_fn by_proc = NULL;
  if (!by_dlsym || !release || !proc || proc("cuMemAlloc", (void **)&by_proc, 12000, 0, NULL) != 0)
    return printf("resolve=failed\n"), 1;
  unsigned long long p = 0, q = 0;
  int ok = by_dlsym(&p, 1 << 20);
  int r1 = by_dlsym(&q, SIZE_MAX / 2);
  int r2 = by_proc(&q, SIZE_MAX / 4);
  release(p);
  long long held = (long long)gs_standin_outstanding(); /* also keeps libcuda.so.1 a DT_NEEDED */
  printf("ok=%d oom_dlsym=%d oom_proc=%d outstanding=%lld\n", ok, r1, r2, held);
  return ok == 0 && r1 == CUDA_ERROR_OUT_OF_MEMORY && r2 == CUDA_ERROR_OUT_OF_MEMORY && held == 0 ? 0 : 1;
}

/* The shim's kernels must not launch on a capturing stream: -EBUSY before any module load. */
static int capture(void) {
  /* Looked up in the preloaded shim, as the engine inside it calls them. */
  int (*capturing)(void *) = (int (*)(void *))dlsym(RTLD_DEFAULT, "gs_gpu_stream_capturing");
  int (*compress)(const gs_codec_params *, uint64_t, uint64_t, void *) =
      (int (*)(const gs_codec_params *, uint64_t, uint64_t, void *))dlsym(RTLD_DEFAULT, "gs_gpu_compress");
  if (!capturing || !compress) return printf("resolve=failed\n"), 1;
  gs_codec_params p = {.n = 1024, .dtype = GS_DTYPE_F32, .bits = 4, .group = 256, .seed = 1, .tensor_id = 1};
  static _Alignas(16) unsigned char dst[4096];
  static float src[1024];
  int yes = capturing(GS_STANDIN_CAPTURING_STREAM), no = capturing((void *)0x1);
  int busy = compress(&p, (uint64_t)(uintptr_t)src, (uint64_t)(uintptr_t)dst, GS_STANDIN_CAPTURING_STREAM);
  long long during = (long long)gs_standin_launches();
  int rc = compress(&p, (uint64_t)(uintptr_t)src, (uint64_t)(uintptr_t)dst, (void *)0x1);
  long long after = (long long)gs_standin_launches();
  printf("capturing=%d other=%d compress_capturing=%d launches=%lld compress_other=%d launches=%lld\n",
         yes, no, busy, during, rc, after);
  return yes == 1 && no == 0 && busy == -16 /* -EBUSY */ && during == 0 && rc == 0 && after > 0 ? 0 : 1;
}

/* One allocation (the recorder starts and arms the SIGTERM flush), then a normal exit: the
 * destructor flushes. The test sends SIGTERM while that flush is under way. */
static int exit_normally(void *drv) {
  alloc_fn alloc = (alloc_fn)dlsym(drv, "cuMemAlloc_v2");
  unsigned long long p = 0;
  if (!alloc || alloc(&p, 1 << 20) != 0) return printf("alloc=failed\n"), 1;
  printf("allocated\n");
  return 0;
}

int main(int argc, char **argv) {
  void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (!drv || argc < 2) return printf("usage: standin_job oom|capture|exit (linked with libcuda.so.1)\n"), 2;
  if (strcmp(argv[1], "oom") == 0) return oom(drv);
  if (strcmp(argv[1], "capture") == 0) return capture();
  if (strcmp(argv[1], "exit") == 0) return exit_normally(drv);
  return 2;
}
