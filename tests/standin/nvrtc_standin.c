/* nvrtc_standin.c: a test-only stand-in for NVRTC (libnvrtc.so.13). It checks what the shim asks it
 * to compile (the kernels' source and header, the bit-exact flags, an architecture) and hands back
 * an image that only the stand-in driver accepts. GS_STANDIN_NVRTC=fail makes compiles fail
 * (NVRTC_ERROR_COMPILATION), =broken makes nvrtcVersion fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

typedef struct prog {
  int ok; /* the source and header are the kernels' */
  char image[64];
} prog;

static int g_compiles;
API int gs_standin_nvrtc_compiles(void) { return __atomic_load_n(&g_compiles, __ATOMIC_RELAXED); }

static int mode(const char *m) {
  const char *e = getenv("GS_STANDIN_NVRTC");
  return e && strcmp(e, m) == 0;
}

API int nvrtcVersion(int *major, int *minor) {
  *major = 13;
  *minor = 0;
  return mode("broken") ? 1 : 0;
}

API int nvrtcCreateProgram(void **out, const char *src, const char *name, int nh, const char *const *hdrs,
                           const char *const *names) {
  prog *p = calloc(1, sizeof *p);
  if (p == NULL) return 1;
  p->ok = src && strstr(src, "gs_k_decompress") && strstr(src, "#include \"codec_core.h\"") && name;
  int core = 0;
  for (int i = 0; i < nh; i++)
    if (strcmp(names[i], "codec_core.h") == 0 && strstr(hdrs[i], "GS_FMT_MAGIC")) core = 1;
  p->ok = p->ok && core;
  *out = p;
  return 0;
}

API int nvrtcCompileProgram(void *h, int n, const char *const *opts) {
  prog *p = h;
  __atomic_add_fetch(&g_compiles, 1, __ATOMIC_RELAXED);
  int arch = 0, fmad = 0;
  for (int i = 0; i < n; i++) {
    if (sscanf(opts[i], "--gpu-architecture=sm_%d", &arch) == 1) continue;
    if (strcmp(opts[i], "-fmad=false") == 0) fmad = 1;
  }
  if (mode("fail") || !p->ok || !arch || !fmad) return 6; /* NVRTC_ERROR_COMPILATION */
  snprintf(p->image, sizeof p->image, "GSSTANDIN-CUBIN sm_%d", arch);
  return 0;
}

API int nvrtcGetCUBINSize(void *h, size_t *size) {
  prog *p = h;
  *size = strlen(p->image) + 1;
  return p->image[0] ? 0 : 3;
}

API int nvrtcGetCUBIN(void *h, char *out) {
  prog *p = h;
  memcpy(out, p->image, strlen(p->image) + 1);
  return 0;
}

API int nvrtcDestroyProgram(void **h) {
  free(*h);
  *h = NULL;
  return 0;
}
