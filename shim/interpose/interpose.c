/* interpose.c: the exported dlsym, RTLD_NEXT emulation and cuGetProcAddress routing by pointer. */
#include "interpose.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

typedef void *(*gs__dlsym_fn)(void *, const char *);

/* glibc's dlsym. Global because every dlsym in the process now passes through ours and must reach
 * it; resolved once (a benign race: every thread stores the same value). */
gs__dlsym_fn gs__dlsym_real;

/* The routing table is built once the driver is loaded (we never load it). The lock serializes
 * builders; the flag lets lookups skip it afterwards. Both are reset in the fork child. */
static pthread_mutex_t gs__build_lock = PTHREAD_MUTEX_INITIALIZER;
static int gs__built;

GS_NO_SANITIZE void gs__interpose_init(void) {
  if (__atomic_load_n(&gs__dlsym_real, __ATOMIC_ACQUIRE)) return;
  /* The versioned lookup names glibc's own dlsym; a plain dlsym here would find ours. */
  void *p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
  if (p == NULL) p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  __atomic_store_n(&gs__dlsym_real, (gs__dlsym_fn)p, __ATOMIC_RELEASE);
}

void gs__interpose_atfork_child(void) {
  pthread_mutex_init(&gs__build_lock, NULL);
  __atomic_store_n(&gs__built, 0, __ATOMIC_RELAXED);
}

GS_NO_SANITIZE void *gs__real_dlsym(void *handle, const char *name) {
  gs__dlsym_fn real = __atomic_load_n(&gs__dlsym_real, __ATOMIC_ACQUIRE);
  if (gs__unlikely(real == NULL)) {
    gs__interpose_init(); /* a library constructor that ran before ours */
    real = __atomic_load_n(&gs__dlsym_real, __ATOMIC_ACQUIRE);
    if (real == NULL) return NULL;
  }
  return real(handle, name);
}

GS_NO_SANITIZE static struct link_map *gs__object_of(const void *addr) {
  Dl_info info;
  struct link_map *lm = NULL;
  if (addr == NULL || dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0) return NULL;
  return lm;
}

/* Looks name up in object o alone: a handle from dlopen(RTLD_NOLOAD) searches o and its
 * dependencies, so a hit counts only if it is defined in o itself. (A link map is not a usable
 * handle for an object loaded at startup: its search list is set up only by dlopen.) */
GS_NO_SANITIZE static void *gs__lookup_in(struct link_map *o, const char *name) {
  void *h = dlopen(o->l_name[0] ? o->l_name : NULL, RTLD_LAZY | RTLD_NOLOAD);
  if (h == NULL) return NULL; /* the vDSO, or an object being unloaded */
  void *p = gs__real_dlsym(h, name);
  dlclose(h); /* drops only the reference RTLD_NOLOAD took */
  return (p != NULL && gs__object_of(p) == o) ? p : NULL;
}

/* glibc searches, for RTLD_NEXT, the objects after the caller's; glibc's own RTLD_NEXT called from
 * here would search after libgactshim instead, so a second interposer asking for its "next" would
 * find itself. We walk the load-order list after the caller's link map. The list is read without
 * the loader lock: it is only appended to, except by dlclose. */
GS_NO_SANITIZE void *gs__dlsym_next(const void *caller, const char *name) {
  struct link_map *lm = gs__object_of(caller);
  if (lm == NULL) return gs__real_dlsym(RTLD_NEXT, name); /* JIT code: relative to us, at best */
  for (struct link_map *o = lm->l_next; o != NULL; o = o->l_next) {
    void *p = gs__lookup_in(o, name);
    if (p != NULL) return p;
  }
  /* Nothing: leave a dlerror message naming the symbol, as glibc's RTLD_NEXT would. */
  (void)dlvsym(RTLD_DEFAULT, name, "GACTSHIM_NO_SUCH_VERSION");
  return NULL;
}

/* Builds the routing table from the driver's handle: dlopen with RTLD_NOLOAD finds libcuda.so.1
 * only if someone already loaded it; hint is the link map of a known driver function, for a
 * driver loaded under another name. Returns whether the table is built. */
static bool gs__build_table(void *hint) {
  if (__atomic_load_n(&gs__built, __ATOMIC_ACQUIRE)) return true;
  pthread_mutex_lock(&gs__build_lock);
  if (!__atomic_load_n(&gs__built, __ATOMIC_RELAXED)) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    void *use = h ? h : hint;
    if (use != NULL) {
      gs__driver_bind(use);
      __atomic_store_n(&gs__built, 1, __ATOMIC_RELEASE);
    }
    if (h) dlclose(h); /* drops only the reference NOLOAD took */
  }
  pthread_mutex_unlock(&gs__build_lock);
  return __atomic_load_n(&gs__built, __ATOMIC_ACQUIRE);
}

static bool gs__is_gpa_name(const char *name) {
  return strcmp(name, "cuGetProcAddress") == 0 || strcmp(name, "cuGetProcAddress_v2") == 0;
}

void *gs__route(const char *name, void *p) {
  if (p == NULL) return p;
  if (!__atomic_load_n(&gs__built, __ATOMIC_ACQUIRE)) {
    if (name == NULL || name[0] != 'c' || name[1] != 'u') return p;
    if (!gs__build_table(NULL) && !(gs__is_gpa_name(name) && gs__build_table(gs__object_of(p))))
      return p;
  }
  for (int i = 0; i < GS__DRV__COUNT; i++)
    if (gs__drv_real((gs__drv_index)i) == p) return gs__drv_table[i].wrapper;
  return p;
}

gs_CUresult gs__w_cuGetProcAddress(const char *symbol, void **pfn, int ver, gs_cuuint64_t flags) {
  gs_cuGetProcAddress_fn real = (gs_cuGetProcAddress_fn)gs__drv_real(GS__DRV_cuGetProcAddress);
  if (real == NULL) return GS_CUDA_ERROR_NOT_INITIALIZED;
  gs_CUresult r = real(symbol, pfn, ver, flags);
  if (r == GS_CUDA_SUCCESS && pfn != NULL && gs__active()) *pfn = gs__route(symbol, *pfn);
  return r;
}

/* symbolStatus is passed on as given, NULL included; the shim never writes through it. */
gs_CUresult gs__w_cuGetProcAddress_v2(const char *symbol, void **pfn, int ver, gs_cuuint64_t flags,
                                      int *status) {
  gs_cuGetProcAddress_v2_fn real = (gs_cuGetProcAddress_v2_fn)gs__drv_real(GS__DRV_cuGetProcAddress_v2);
  if (real == NULL) return GS_CUDA_ERROR_NOT_INITIALIZED;
  gs_CUresult r = real(symbol, pfn, ver, flags, status);
  if (r == GS_CUDA_SUCCESS && pfn != NULL && gs__active()) *pfn = gs__route(symbol, *pfn);
  return r;
}

GS_NO_SANITIZE static bool gs__cu_prefix(const char *name) { return name[0] == 'c' && name[1] == 'u'; }

/* The hook proper. No CUDA call here: only the loader's own functions. Until the routing table
 * exists only "cu" names can need a wrapper, so other lookups return before any instrumented
 * code (gs__active lives in base) can run. */
GS_NO_SANITIZE void *gs__dlsym_hook(void *handle, const char *name, const void *caller) {
  void *p = handle == RTLD_NEXT ? gs__dlsym_next(caller, name) : gs__real_dlsym(handle, name);
  if (p == NULL || name == NULL) return p;
  if (!__atomic_load_n(&gs__built, __ATOMIC_ACQUIRE) && !gs__cu_prefix(name)) return p;
  if (!gs__active()) return p;
  return gs__route(name, p);
}
