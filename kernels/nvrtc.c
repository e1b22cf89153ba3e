/* nvrtc.c: compiles the embedded codec.cu at run time with NVRTC, for GPUs or drivers the fatbin
 * does not serve, and caches the result on disk. */
#include "gactshim.h"
#include "kernels.h"

#if defined(GS_HAVE_CUDA_KERNELS)

#include <dlfcn.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kernels' source, embedded at build time (kernels/embed.c; each NUL-terminated). */
extern const unsigned char gs__codec_cu[], gs__codec_core_h[];

/* NVRTC has no C library headers: the fixed-width types codec_core.h takes from <stdint.h>. */
static const char gs__stdint_h[] =
  "#pragma once\n"
  "typedef signed char int8_t; typedef unsigned char uint8_t; typedef short int16_t;\n"
  "typedef unsigned short uint16_t; typedef int int32_t; typedef unsigned int uint32_t;\n"
  "typedef long long int64_t; typedef unsigned long long uint64_t;\n"
  "typedef long long intptr_t; typedef unsigned long long uintptr_t;\n";

/* The nvcc flags of kernels/meson.build that keep the kernels bit-exact with the CPU twin. */
static const char *const gs__opts[] = {"-fmad=false", "-prec-div=true", "-ftz=false", "-std=c++17"};
#define GS__NOPTS (sizeof gs__opts / sizeof gs__opts[0])

typedef struct gs__nvrtc {
  int (*version)(int *, int *);
  int (*create)(void **, const char *, const char *, int, const char *const *, const char *const *);
  int (*compile)(void *, int, const char *const *);
  int (*cubin_size)(void *, size_t *);
  int (*cubin)(void *, char *);
  int (*destroy)(void **);
  int major, minor;
} gs__nvrtc;

/* Why the last fallback failed (for the engine's one warning); process-wide like the loader. */
static char gs__why[200];

const char *gs__nvrtc_error(void) { return gs__why[0] ? gs__why : NULL; }

static int gs__fail(int rc, const char *what, const char *detail) {
  snprintf(gs__why, sizeof gs__why, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
  return rc;
}

/* dl_iterate_phdr callback: the folder of the loaded libtorch_cuda.so (or libtorch.so). */
static int gs__torch_dir_cb(struct dl_phdr_info *info, size_t size, void *out) {
  (void)size;
  const char *name = info->dlpi_name, *slash = name ? strrchr(name, '/') : NULL;
  if (slash == NULL || (strncmp(slash, "/libtorch_cuda.so", 17) != 0 && strncmp(slash, "/libtorch.so", 12) != 0))
    return 0;
  snprintf(out, PATH_MAX, "%.*s", (int)(slash - name), name);
  return 1;
}

/* The first library matching pattern that loads; NULL if none does. */
static void *gs__dlopen_glob(const char *pattern) {
  glob_t g;
  void *h = NULL;
  if (glob(pattern, 0, NULL, &g) != 0) return NULL;
  for (size_t i = g.gl_pathc; i-- > 0 && h == NULL;) /* highest version first */
    h = dlopen(g.gl_pathv[i], RTLD_NOW | RTLD_LOCAL);
  globfree(&g);
  return h;
}

/* NVRTC: on the library path (a toolkit in ld.so.conf, LD_LIBRARY_PATH), else the wheel that
 * ships with the process's PyTorch (site-packages/nvidia/cu13/lib for CUDA 13 wheels,
 * nvidia/cuda_nvrtc/lib for CUDA 12 ones, found from libtorch's folder, site-packages/torch/lib),
 * else the toolkit under $CUDA_HOME or /usr/local/cuda. */
static void *gs__nvrtc_open(void) {
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
  void *h = NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && h == NULL; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  char torch[PATH_MAX] = "", pat[PATH_MAX + 64];
  if (h == NULL && dl_iterate_phdr(gs__torch_dir_cb, torch) == 1) {
    static const char *const wheels[] = {"/../../nvidia/cu13/lib/libnvrtc.so.*",
                                         "/../../nvidia/cuda_nvrtc/lib/libnvrtc.so.*"};
    for (size_t i = 0; i < 2 && h == NULL; i++) {
      snprintf(pat, sizeof pat, "%s%s", torch, wheels[i]);
      h = gs__dlopen_glob(pat);
    }
  }
  const char *home = getenv("CUDA_HOME");
  if (h == NULL) {
    snprintf(pat, sizeof pat, "%s/lib64/libnvrtc.so.*", home && *home ? home : "/usr/local/cuda");
    h = gs__dlopen_glob(pat);
  }
  return h;
}

static int gs__nvrtc_resolve(gs__nvrtc *n) {
  void *h = gs__nvrtc_open();
  if (h == NULL) return gs__fail(-ENOENT, "NVRTC not found", "no libnvrtc.so.* on the library path, beside PyTorch or under CUDA_HOME");
  *(void **)&n->version = dlsym(h, "nvrtcVersion");
  *(void **)&n->create = dlsym(h, "nvrtcCreateProgram");
  *(void **)&n->compile = dlsym(h, "nvrtcCompileProgram");
  *(void **)&n->cubin_size = dlsym(h, "nvrtcGetCUBINSize");
  *(void **)&n->cubin = dlsym(h, "nvrtcGetCUBIN");
  *(void **)&n->destroy = dlsym(h, "nvrtcDestroyProgram");
  if (!n->version || !n->create || !n->compile || !n->cubin_size || !n->cubin || !n->destroy)
    return gs__fail(-ENOENT, "NVRTC lacks an entry point", "needs CUDA 11.1 or newer");
  if (n->version(&n->major, &n->minor) != 0) return gs__fail(-ENOENT, "NVRTC does not work", "nvrtcVersion failed");
  return 0; /* the library stays loaded: a later context may compile again */
}

/* FNV-1a over the source, its header and the options: the cache key's source part. */
static uint64_t gs__source_hash(void) {
  uint64_t h = 0xcbf29ce484222325ull;
  const char *parts[3 + GS__NOPTS] = {(const char *)gs__codec_cu, (const char *)gs__codec_core_h, gs__stdint_h};
  for (size_t i = 0; i < GS__NOPTS; i++) parts[3 + i] = gs__opts[i];
  for (size_t i = 0; i < 3 + GS__NOPTS; i++)
    for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
  return h;
}

/* $XDG_CACHE_HOME/gactshim (or ~/.cache/gactshim), created; -ENOENT when neither is set. */
static int gs__cache_dir(char *out, size_t len) {
  const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  int n;
  if (x && *x) n = snprintf(out, len, "%s/gactshim", x);
  else if (home && *home) n = snprintf(out, len, "%s/.cache/gactshim", home);
  else return -ENOENT;
  if (n < 0 || (size_t)n >= len) return -ENAMETOOLONG;
  char *slash = strchr(out + 1, '/');
  for (; slash; slash = strchr(slash + 1, '/')) { /* mkdir -p */
    *slash = '\0';
    mkdir(out, 0755);
    *slash = '/';
  }
  return mkdir(out, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

#define GS__CACHE_MAX (64u << 20)

static void *gs__read_file(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  void *buf = NULL;
  if (fd < 0) return NULL;
  if (fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= GS__CACHE_MAX &&
      (buf = malloc((size_t)st.st_size)) != NULL &&
      read(fd, buf, (size_t)st.st_size) != (ssize_t)st.st_size) {
    free(buf);
    buf = NULL;
  }
  if (buf) *size = (size_t)st.st_size;
  close(fd);
  return buf;
}

/* Written under a temporary name and renamed: a concurrent reader sees the whole file or none. */
static void gs__write_file(const char *path, const void *buf, size_t size) {
  char tmp[PATH_MAX + 160]; /* path (at most PATH_MAX + 96) and a suffix */
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  bool ok = write(fd, buf, size) == (ssize_t)size;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

static int gs__compile(const gs__nvrtc *n, int arch, void **image, size_t *size) {
  char arch_opt[48];
  snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=sm_%d", arch);
  const char *opts[GS__NOPTS + 1] = {arch_opt};
  for (size_t i = 0; i < GS__NOPTS; i++) opts[1 + i] = gs__opts[i];
  const char *const hdrs[] = {(const char *)gs__codec_core_h, gs__stdint_h};
  const char *const names[] = {"codec_core.h", "stdint.h"};
  void *prog = NULL;
  char detail[64];
  int r = n->create(&prog, (const char *)gs__codec_cu, "codec.cu", 2, hdrs, names);
  if (r != 0) return snprintf(detail, sizeof detail, "nvrtcResult %d", r), gs__fail(-ENOEXEC, "nvrtcCreateProgram failed", detail);
  r = n->compile(prog, (int)(GS__NOPTS + 1), opts);
  if (r == 0 && (r = n->cubin_size(prog, size)) == 0 && *size > 0 && (*image = malloc(*size)) != NULL &&
      (r = n->cubin(prog, *image)) != 0) {
    free(*image);
    *image = NULL;
  }
  n->destroy(&prog);
  if (r != 0 || *image == NULL) {
    snprintf(detail, sizeof detail, "nvrtcResult %d for sm_%d, NVRTC %d.%d", r, arch, n->major, n->minor);
    return gs__fail(-ENOEXEC, "compiling codec.cu failed", detail);
  }
  return 0;
}

int gs__nvrtc_image(int arch, bool retry, void **image, size_t *size) {
  /* One NVRTC per process: resolved once, a failure remembered (the library will not appear). */
  static gs__nvrtc n;
  static int resolved; /* 0 not tried, 1 usable, -1 not */
  if (resolved == 0) resolved = gs__nvrtc_resolve(&n) == 0 ? 1 : -1;
  if (resolved < 0) return -ENOENT;
  char dir[PATH_MAX], path[PATH_MAX + 96];
  bool cached = gs__cache_dir(dir, sizeof dir) == 0;
  if (cached) {
    snprintf(path, sizeof path, "%s/codec-%016llx-sm_%d-nvrtc%d.%d.cubin", dir,
             (unsigned long long)gs__source_hash(), arch, n.major, n.minor);
    /* retry: the cached image did not load (a damaged file): compile it again. */
    if (!retry && (*image = gs__read_file(path, size)) != NULL) return 1;
  }
  int rc = gs__compile(&n, arch, image, size);
  if (rc == 0 && cached) gs__write_file(path, *image, *size);
  return rc;
}

#else /* built without nvcc: no codec.cu is embedded, so there is nothing to compile */

#include <errno.h>

int gs__nvrtc_image(int arch, bool retry, void **image, size_t *size) {
  (void)arch, (void)retry, (void)image, (void)size;
  return -ENOSYS;
}

const char *gs__nvrtc_error(void) { return "built without CUDA kernels (no nvcc at build time)"; }

#endif
