/* gpu.c: launches the embedded codec kernels through the CUDA Driver API, resolved at run time. */
#include "gactshim.h"
#include "kernels.h"

#include <errno.h>

#if !defined(GS_HAVE_CUDA_KERNELS)

int gs_gpu_compress(const gs_codec_params *p, uint64_t src_dptr, uint64_t dst_dptr, void *stream) {
  (void)p, (void)src_dptr, (void)dst_dptr, (void)stream;
  return -ENOSYS;
}
int gs_gpu_decompress(const gs_codec_params *p, uint64_t src_dptr, uint64_t dst_dptr,
                      void *stream) {
  (void)p, (void)src_dptr, (void)dst_dptr, (void)stream;
  return -ENOSYS;
}
int gs_gpu_stream_capturing(void *stream) {
  (void)stream;
  return -ENOSYS;
}
int gs_gpu_use_device(int device) {
  (void)device;
  return -ENOSYS;
}
const char *gs_gpu_load_source(void *ctx, const char **why) {
  (void)ctx;
  if (why != NULL) *why = "built without CUDA kernels";
  return NULL;
}
int gs_gpu_load_status(void *ctx, int *curesult) {
  (void)ctx;
  if (curesult != NULL) *curesult = 0;
  return -ENOSYS;
}

#else

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

/* The few driver types used, declared here so that the library builds without cuda.h. */
typedef int CUresult;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef int CUdevice;
#define GS__CU_STREAM_CAPTURE_STATUS_NONE 0 /* CUstreamCaptureStatus: 1 active, 2 invalidated */
/* cuStreamIsCapturing on the legacy stream while another stream captures in global mode: using
 * the legacy stream now would invalidate that capture, so it is as good as capturing. */
#define GS__CUDA_ERROR_STREAM_CAPTURE_IMPLICIT 906

extern const unsigned char gs__codec_fatbin[];

typedef struct gs__driver {
  CUresult (*ctx_get_current)(CUcontext *);
  CUresult (*ctx_set_current)(CUcontext);
  CUresult (*primary_ctx_retain)(CUcontext *, CUdevice);
  CUresult (*ctx_get_device)(CUdevice *);
  CUresult (*ctx_get_id)(CUcontext, unsigned long long *); /* optional (CUDA >= 12) */
  CUresult (*device_get_attribute)(int *, int, CUdevice);
  CUresult (*module_load_data)(CUmodule *, const void *);
  CUresult (*module_get_function)(CUfunction *, CUmodule, const char *);
  CUresult (*launch_kernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                            unsigned, void *, void **, void **);
  CUresult (*stream_is_capturing)(void *, int *); /* optional: absent before CUDA 10 */
} gs__driver;

/* One loaded module per context: a module belongs to the context it was loaded in. A failed load
 * is remembered too (load_rc != 0), so that it is tried once per context, not once per tensor:
 * the image will not load any better the next time (no code for this GPU, a driver too old). */
typedef struct gs__module {
  CUcontext ctx;
  unsigned long long ctx_id;
  CUresult load_rc; /* 0, or the driver's error from loading the module in ctx */
  const char *source; /* "fatbin" or "nvrtc" once loaded */
  CUfunction header, compress, decompress;
  int sms;
} gs__module;

#define GS__MAX_CONTEXTS 16
#define GS__CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define GS__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define GS__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
/* The fatbin's failures that a run-time compile for the device's own architecture can cure: no
 * cubin for this GPU and PTX it cannot take (newer ISA than the driver: a CUDA 12 driver). */
#define GS__CUDA_ERROR_INVALID_PTX 218
#define GS__CUDA_ERROR_UNSUPPORTED_PTX_VERSION 222
#define GS__CUDA_ERROR_NO_BINARY_FOR_GPU 209
#define GS__CUDA_ERROR_INVALID_IMAGE 200 /* a cubin of a newer toolkit than the driver's */

/* Process-wide because the driver and its contexts are: the resolved entry points (filled once,
 * under the lock) and the module cache, bounded by GS__MAX_CONTEXTS. */
static pthread_mutex_t gs__gpu_lock = PTHREAD_MUTEX_INITIALIZER;
static gs__driver gs__drv;
static int gs__drv_ready; /* failures are not cached: the driver may be loaded later */
static gs__module gs__modules[GS__MAX_CONTEXTS];
static int gs__nmodules;

static int gs__driver_resolve(void) {
  /* RTLD_NOLOAD: use the driver only if the process has loaded it; never load it ourselves. */
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL) return -ENODEV;
  gs__driver d;
  *(void **)&d.ctx_get_current = dlsym(h, "cuCtxGetCurrent");
  *(void **)&d.ctx_get_device = dlsym(h, "cuCtxGetDevice");
  *(void **)&d.ctx_set_current = dlsym(h, "cuCtxSetCurrent");
  *(void **)&d.primary_ctx_retain = dlsym(h, "cuDevicePrimaryCtxRetain");
  *(void **)&d.ctx_get_id = dlsym(h, "cuCtxGetId");
  *(void **)&d.device_get_attribute = dlsym(h, "cuDeviceGetAttribute");
  *(void **)&d.module_load_data = dlsym(h, "cuModuleLoadData");
  *(void **)&d.module_get_function = dlsym(h, "cuModuleGetFunction");
  *(void **)&d.launch_kernel = dlsym(h, "cuLaunchKernel");
  *(void **)&d.stream_is_capturing = dlsym(h, "cuStreamIsCapturing");
  dlclose(h); /* the process keeps its own reference; the symbols stay valid */
  if (!d.ctx_get_current || !d.ctx_get_device || !d.ctx_set_current || !d.primary_ctx_retain ||
      !d.device_get_attribute ||
      !d.module_load_data || !d.module_get_function || !d.launch_kernel)
    return -ENODEV;
  gs__drv = d;
  return 1;
}

/* The kernels compiled by NVRTC for the current device (cached on disk), loaded into *mod; 0 or
 * the CUresult (or -1 when there is no image: gs__nvrtc_error says why). */
static CUresult gs__module_load_nvrtc(CUmodule *mod) {
  CUdevice dev;
  int major = 0, minor = 0;
  if (gs__drv.ctx_get_device(&dev) != 0 ||
      gs__drv.device_get_attribute(&major, GS__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev) != 0 ||
      gs__drv.device_get_attribute(&minor, GS__CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev) != 0)
    return -1;
  CUresult r = -1;
  for (int attempt = 0; attempt < 2 && r != 0; attempt++) {
    void *image = NULL;
    size_t size = 0;
    int from = gs__nvrtc_image(major * 10 + minor, attempt > 0, &image, &size);
    if (from < 0) break;
    r = gs__drv.module_load_data(mod, image);
    free(image);
    if (from == 0) break; /* freshly compiled and still refused: compiling again will not help */
  }
  return r;
}

/* Loads the kernels in ctx (current); m->load_rc says how it went: 0 or the failing CUresult. */
static void gs__module_load(CUcontext ctx, unsigned long long id, gs__module *m) {
  CUmodule mod;
  CUdevice dev;
  *m = (gs__module){.ctx = ctx, .ctx_id = id, .source = "fatbin"};
  m->load_rc = gs__drv.module_load_data(&mod, gs__codec_fatbin);
  if (m->load_rc == GS__CUDA_ERROR_NO_BINARY_FOR_GPU || m->load_rc == GS__CUDA_ERROR_INVALID_PTX ||
      m->load_rc == GS__CUDA_ERROR_UNSUPPORTED_PTX_VERSION || m->load_rc == GS__CUDA_ERROR_INVALID_IMAGE) {
    /* The fatbin's error is kept when the fallback fails too: it is the one that says why. */
    if (gs__module_load_nvrtc(&mod) == 0) m->load_rc = 0, m->source = "nvrtc";
  }
  if (m->load_rc != 0 ||
      (m->load_rc = gs__drv.module_get_function(&m->header, mod, "gs_k_header")) != 0 ||
      (m->load_rc = gs__drv.module_get_function(&m->compress, mod, "gs_k_compress")) != 0 ||
      (m->load_rc = gs__drv.module_get_function(&m->decompress, mod, "gs_k_decompress")) != 0)
    return;
  if (gs__drv.ctx_get_device(&dev) != 0 ||
      gs__drv.device_get_attribute(&m->sms, GS__CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev) != 0 ||
      m->sms < 1)
    m->sms = 1;
}

/* Resolves the driver once it is loaded; called with gs__gpu_lock held. 0 or -ENODEV. */
static int gs__driver_ready_locked(void) {
  if (gs__drv_ready) return 0;
  int rc = gs__driver_resolve();
  if (rc < 0) return rc;
  __atomic_store_n(&gs__drv_ready, 1, __ATOMIC_RELEASE); /* gs__drv is complete before */
  return 0;
}

static int gs__likely_ready(void) {
  return __builtin_expect(__atomic_load_n(&gs__drv_ready, __ATOMIC_ACQUIRE), 1);
}

/* The driver's entry points, resolved once: after that a plain acquire load, no lock. */
static int gs__driver_ready(void) {
  if (gs__likely_ready()) return 0;
  pthread_mutex_lock(&gs__gpu_lock);
  int rc = gs__driver_ready_locked();
  pthread_mutex_unlock(&gs__gpu_lock);
  return rc;
}

int gs_gpu_stream_capturing(void *stream) {
  int rc = gs__driver_ready();
  if (rc != 0) return rc;
  int status = GS__CU_STREAM_CAPTURE_STATUS_NONE;
  if (gs__drv.stream_is_capturing == NULL) return 0; /* a driver without graphs captures nothing */
  CUresult r = gs__drv.stream_is_capturing(stream, &status);
  if (r == GS__CUDA_ERROR_STREAM_CAPTURE_IMPLICIT) return 1;
  if (r != 0) return -EIO;
  return status != GS__CU_STREAM_CAPTURE_STATUS_NONE; /* active, or invalidated by an error */
}

/* ctx, or the calling thread's current context when ctx is NULL, and its id; 0 or -ENODEV.
 * Called with gs__gpu_lock held and the driver resolved. */
static int gs__context_locked(void *ctx_or_null, CUcontext *ctx, unsigned long long *id) {
  *ctx = (CUcontext)ctx_or_null;
  *id = 0;
  if (*ctx == NULL && (gs__drv.ctx_get_current(ctx) != 0 || *ctx == NULL)) return -ENODEV;
  /* A context id tells a new context apart from a destroyed one at the same address. */
  if (gs__drv.ctx_get_id != NULL && gs__drv.ctx_get_id(*ctx, id) != 0) *id = 0;
  return 0;
}

/* The table's entry for a context, or NULL; called with gs__gpu_lock held. */
static const gs__module *gs__module_find_locked(CUcontext ctx, unsigned long long id) {
  for (int i = 0; i < gs__nmodules; i++)
    if (gs__modules[i].ctx == ctx && gs__modules[i].ctx_id == id) return &gs__modules[i];
  return NULL;
}

/* Primary contexts this library retained, by device: retained once each (a retain per call would
 * grow the driver's reference count without bound). Guarded by gs__gpu_lock. */
#define GS__MAX_DEVICES 64
static CUcontext gs__primary[GS__MAX_DEVICES];

int gs_gpu_use_device(int device) {
  if (device < 0 || device >= GS__MAX_DEVICES) return -EINVAL;
  int rc = gs__driver_ready();
  if (rc != 0) return rc;
  CUcontext cur = NULL, primary;
  CUdevice now = -1;
  if (gs__drv.ctx_get_current(&cur) == 0 && cur != NULL && gs__drv.ctx_get_device(&now) == 0 &&
      now == device)
    return 0; /* the usual case, no lock: autograd's device guard made it current */
  /* A cold thread (PyTorch's autograd thread on device 0: pytorch#124565) or another device's
   * context: make this device's primary context current, the one PyTorch's runtime uses. */
  pthread_mutex_lock(&gs__gpu_lock);
  if (gs__primary[device] == NULL && gs__drv.primary_ctx_retain(&gs__primary[device], device) != 0)
    gs__primary[device] = NULL;
  primary = gs__primary[device];
  pthread_mutex_unlock(&gs__gpu_lock);
  return primary != NULL && gs__drv.ctx_set_current(primary) == 0 ? 0 : -ENODEV;
}

const char *gs_gpu_load_source(void *ctx_or_null, const char **why) {
  CUcontext ctx;
  unsigned long long id;
  const char *src = NULL;
  pthread_mutex_lock(&gs__gpu_lock);
  if (gs__driver_ready_locked() == 0 && gs__context_locked(ctx_or_null, &ctx, &id) == 0) {
    const gs__module *m = gs__module_find_locked(ctx, id);
    if (m != NULL && m->load_rc == 0) src = m->source;
  }
  if (why != NULL) *why = gs__nvrtc_error();
  pthread_mutex_unlock(&gs__gpu_lock);
  return src;
}

int gs_gpu_load_status(void *ctx_or_null, int *curesult) {
  CUcontext ctx;
  unsigned long long id;
  if (curesult != NULL) *curesult = 0;
  pthread_mutex_lock(&gs__gpu_lock);
  int rc = gs__driver_ready_locked();
  if (rc == 0) rc = gs__context_locked(ctx_or_null, &ctx, &id);
  const gs__module *m = rc == 0 ? gs__module_find_locked(ctx, id) : NULL;
  if (rc == 0) rc = m == NULL ? -ENOENT : m->load_rc != 0 ? -ENOEXEC : 0;
  if (rc == -ENOEXEC && curesult != NULL) *curesult = m->load_rc;
  pthread_mutex_unlock(&gs__gpu_lock);
  return rc;
}

/* The module of the calling thread's current context, loading it on first use: 0, -ENODEV, or
 * -ENOEXEC when it could not be loaded in that context (now or before: it is not retried). */
static int gs__module_lookup(gs__module *out);

/* The last module this thread used, by context address and id: the hot path asks the driver for
 * the current context (and its id) and takes no lock unless the context changed. Thread-local
 * because the current context is. */
static __thread gs__module gs__tl_module;

static int gs__module_get(gs__module *out) {
  CUcontext ctx;
  unsigned long long id = 0;
  if (gs__likely_ready() && gs__tl_module.ctx != NULL && gs__drv.ctx_get_current(&ctx) == 0 &&
      ctx == gs__tl_module.ctx &&
      (gs__drv.ctx_get_id == NULL || gs__drv.ctx_get_id(ctx, &id) != 0 || id == gs__tl_module.ctx_id)) {
    *out = gs__tl_module;
    return gs__tl_module.load_rc != 0 ? -ENOEXEC : 0;
  }
  int rc = gs__module_lookup(out);
  if (rc == 0 || rc == -ENOEXEC) gs__tl_module = *out;
  return rc;
}

/* The slow path: the shared table, under the lock; loads the module on first use in a context. */
static int gs__module_lookup(gs__module *out) {
  CUcontext ctx;
  unsigned long long id;
  pthread_mutex_lock(&gs__gpu_lock);
  int rc = gs__driver_ready_locked();
  if (rc == 0) rc = gs__context_locked(NULL, &ctx, &id);
  if (rc < 0) goto done;
  const gs__module *found = gs__module_find_locked(ctx, id);
  if (found != NULL) {
    *out = *found;
    rc = found->load_rc != 0 ? -ENOEXEC : 0;
    goto done;
  }
  gs__module m;
  gs__module_load(ctx, id, &m);
  rc = m.load_rc != 0 ? -ENOEXEC : 0;
  /* Full table: replace the oldest entry (its module stays loaded in its context). */
  if (gs__nmodules == GS__MAX_CONTEXTS) {
    for (int i = 1; i < GS__MAX_CONTEXTS; i++) gs__modules[i - 1] = gs__modules[i];
    gs__nmodules--;
  }
  gs__modules[gs__nmodules++] = m; /* a failure too: the next call does not try again */
  *out = m;
done:
  pthread_mutex_unlock(&gs__gpu_lock);
  return rc;
}

static void gs__kparams_of(const gs__layout *l, uint64_t src, uint64_t dst, gs__kparams *k) {
  k->src = src;
  k->dst = dst;
  k->n = l->p.n;
  k->seed = l->p.seed;
  k->tensor_id = l->p.tensor_id;
  k->meta_off = l->meta_off;
  k->data_off = l->data_off;
  k->mask_off = l->mask_off;
  k->ngroups = l->ngroups;
  k->report = l->p.report;
  k->flags = l->p.flags;
  k->pad = 0;
  k->group = l->p.group;
  k->bits = l->p.bits;
  k->dtype = (uint32_t)l->p.dtype;
  k->check = gs__header_check((uint8_t)l->p.dtype, (uint8_t)l->p.bits, (uint8_t)l->p.flags,
                              l->p.group, l->p.n);
}

/* Enough blocks to fill the GPU several times over; the kernels loop (grid-stride) over the rest. */
static unsigned gs__grid(uint64_t work_items, unsigned per_block, int sms) {
  uint64_t want = (work_items + per_block - 1) / per_block, cap = (uint64_t)sms * 32u;
  if (want > cap) want = cap;
  return want ? (unsigned)want : 1u;
}

#define GS__BLOCK 256u

/* The compressed buffer must be 16-byte aligned (metas and packed data are stored with wide
 * accesses at aligned offsets); the tensor, aligned to its element size. */
static int gs__aligned(uint64_t buf, uint64_t tensor, const gs__layout *l) {
  unsigned esz = gs_dtype_bytes(l->p.dtype);
  return buf != 0 && buf % 16u == 0 && (l->p.n == 0 || (tensor != 0 && tensor % esz == 0));
}

int gs_gpu_compress(const gs_codec_params *p, uint64_t src_dptr, uint64_t dst_dptr, void *stream) {
  gs__layout l;
  gs__module m;
  gs__kparams k;
  if (gs__layout_of(p, &l) != 0 || !gs__aligned(dst_dptr, src_dptr, &l)) return -EINVAL;
  /* Under capture a launch would only be recorded, and loading the module on first use is not
   * capture-safe: the caller keeps the tensor instead (nvshare#28: never disturb a capture). */
  int rc = gs_gpu_stream_capturing(stream);
  if (rc != 0) return rc > 0 ? -EBUSY : rc;
  rc = gs__module_get(&m);
  if (rc != 0) return rc;
  gs__kparams_of(&l, src_dptr, dst_dptr, &k);
  void *args[] = {&k};
  int slot = gs__gpu_time_begin(m.ctx, stream);
  rc = gs__drv.launch_kernel(m.header, 1, 1, 1, 32, 1, 1, 0, stream, args, NULL) != 0 ? -EIO : 0;
  /* Compress: one warp per group (or per few small groups); bool: one thread per byte. */
  uint64_t items = l.p.dtype == GS_DTYPE_BOOL ? (l.p.n + 7) / 8 : l.ngroups * 32u;
  unsigned grid = gs__grid(items, GS__BLOCK, m.sms);
  if (rc == 0 && l.p.n != 0 &&
      gs__drv.launch_kernel(m.compress, grid, 1, 1, GS__BLOCK, 1, 1, 0, stream, args, NULL) != 0)
    rc = -EIO;
  gs__gpu_time_end(slot, stream);
  return rc;
}

int gs_gpu_decompress(const gs_codec_params *p, uint64_t src_dptr, uint64_t dst_dptr,
                      void *stream) {
  gs__layout l;
  gs__module m;
  gs__kparams k;
  if (gs__layout_of(p, &l) != 0 || !gs__aligned(src_dptr, dst_dptr, &l)) return -EINVAL;
  if (l.p.n == 0) return 0;
  /* A launch under capture would be recorded in the graph and replayed after the compressed
   * buffer is gone, and a first module load there is not capture-safe: refuse, as compress does. */
  int rc = gs_gpu_stream_capturing(stream);
  if (rc != 0) return rc > 0 ? -EBUSY : rc;
  rc = gs__module_get(&m);
  if (rc != 0) return rc;
  gs__kparams_of(&l, src_dptr, dst_dptr, &k);
  void *args[] = {&k};
  unsigned grid = gs__grid((l.p.n + 7) / 8, GS__BLOCK, m.sms);
  int slot = gs__gpu_time_begin(m.ctx, stream);
  rc = gs__drv.launch_kernel(m.decompress, grid, 1, 1, GS__BLOCK, 1, 1, 0, stream, args, NULL) != 0 ? -EIO : 0;
  gs__gpu_time_end(slot, stream);
  return rc;
}

#endif
