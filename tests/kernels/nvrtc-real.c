/* nvrtc-real.c: a real NVRTC (PyTorch's CUDA wheel's, or a toolkit's) compiles the embedded codec.cu
 * for several architectures, and the disk cache gives it back (no GPU needed). Not linked with the
 * stand-ins, so that their libnvrtc cannot be found instead. */
#include "gactshim.h"
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKIP 77

int main(void) {
  /* sm_75 (T4: the fallback's most common user) and sm_100 (Blackwell); each compile of the
   * specialised kernels takes minutes on a loaded 2-core machine. */
  static const int archs[] = {75, 100};
  char dir[] = "/tmp/gs-nvrtc-real-XXXXXX";
  if (gs_gpu_load_status(NULL, NULL) == -ENOSYS) {
    printf("SKIP: library built without CUDA kernels\n");
    return SKIP;
  }
  if (mkdtemp(dir) == NULL) return 1;
  setenv("XDG_CACHE_HOME", dir, 1);
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
    void *image = NULL;
    size_t size = 0;
    int rc = gs__nvrtc_image(archs[i], false, &image, &size);
    if (rc == -ENOENT) {
      printf("SKIP: no NVRTC found (%s)\n", gs__nvrtc_error());
      return SKIP;
    }
    if (rc != 0 || size < 1000 || memcmp(image, "\177ELF", 4) != 0) {
      printf("FAIL: sm_%d: rc %d, %zu bytes: %s\n", archs[i], rc, size,
             gs__nvrtc_error() ? gs__nvrtc_error() : "");
      return 1;
    }
    printf("ok: sm_%d: %zu-byte cubin\n", archs[i], size);
    free(image);
    if (gs__nvrtc_image(archs[i], false, &image, &size) != 1) { /* now from the cache */
      printf("FAIL: sm_%d: not read back from the cache\n", archs[i]);
      return 1;
    }
    free(image);
  }
  return 0;
}
