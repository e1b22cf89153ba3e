/* cupti.c: CUPTI activity API loaded at run time — kernel timings of our codec kernels (opt-in:
 * GACTSHIM_CUPTI=1; the stats' gpu_kernel_ns comes from CUDA events and needs no CUPTI). */
#include "timeline.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GS_CUPTI_NAMES 64

/* Interned kernel names: CUPTI hands out pointers it owns; the ring carries a small id. Global
 * because CUPTI's buffer callback has no user argument. Written only by CUPTI's callback thread,
 * read by the writer thread after the event carrying the id (release/acquire on the count). */
static const char *gs__names[GS_CUPTI_NAMES] = {"?"};
static uint32_t gs__nnames = 1;

const char *gs__cupti_name(uint32_t id) {
  uint32_t n = __atomic_load_n(&gs__nnames, __ATOMIC_ACQUIRE);
  return id < n && gs__names[id] ? gs__names[id] : "?";
}

/* Our kernels are extern "C" and named gs_k_* (kernels/codec.cu), so a prefix is exact. */
bool gs__cupti_is_ours(const char *name) { return name && strncmp(name, "gs_k_", 5) == 0; }

/* Set by the engine while PyTorch's profiler (kineto) is on; read by the writer thread, which
 * then hands CUPTI's activity callbacks (one set per process) over to it. Global: two rooms. */
static bool gs__profiler_on;

void gs__cupti_note_profiler(bool on) { __atomic_store_n(&gs__profiler_on, on, __ATOMIC_RELAXED); }
bool gs__cupti_profiler_on(void) { return __atomic_load_n(&gs__profiler_on, __ATOMIC_RELAXED); }

__attribute__((unused)) static uint32_t gs__intern(const char *name) {
  uint32_t n = __atomic_load_n(&gs__nnames, __ATOMIC_ACQUIRE);
  for (uint32_t i = 1; i < n; i++)
    if (gs__names[i] == name || strcmp(gs__names[i], name) == 0) return i;
  if (n >= GS_CUPTI_NAMES) return 0;
  gs__names[n] = name;
  __atomic_store_n(&gs__nnames, n + 1, __ATOMIC_RELEASE);
  return n;
}

#if defined(GS_HAVE_CUPTI_H)
#include <cupti.h>

/* The entry points, resolved once by gs__cupti_start. Global: CUPTI's callbacks need them. */
static struct {
  void *lib;
  CUptiResult (*reg)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
  CUptiResult (*enable)(CUpti_ActivityKind);
  CUptiResult (*disable)(CUpti_ActivityKind);
  CUptiResult (*next)(uint8_t *, size_t, CUpti_Activity **);
  CUptiResult (*flush)(uint32_t);
  CUptiResult (*timestamp)(uint64_t *);
  int64_t offset; /* our clock minus CUPTI's */
  bool on;
} gs__c;

#define GS_CUPTI_BUF (1u << 20)

static void CUPTIAPI gs__buf_requested(uint8_t **buf, size_t *size, size_t *max_records) {
  *buf = aligned_alloc(8, GS_CUPTI_BUF);
  *size = *buf ? GS_CUPTI_BUF : 0;
  *max_records = 0;
}

static void CUPTIAPI gs__buf_completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size,
                                       size_t valid) {
  CUpti_Activity *rec = NULL;
  while (gs__c.next && gs__c.next(buf, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL)
      continue;
    /* Only the fields up to `name` are read: their layout is the same in CUPTI 12's
     * CUpti_ActivityKernel9 and CUPTI 13's CUpti_ActivityKernel10 (fields are appended). */
    const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
    if (!gs__cupti_is_ours(k->name) || k->start == 0) continue;
    gs__trace_kernel(gs__intern(k->name), (uint64_t)((int64_t)k->start + gs__c.offset),
                     (uint64_t)((int64_t)k->end + gs__c.offset), (int)k->deviceId);
  }
  free(buf);
}

static bool gs__resolve(void) {
  static const char *const libs[] = {"libcupti.so", "libcupti.so.13", "libcupti.so.12"};
  for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]) && !gs__c.lib; i++)
    gs__c.lib = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
  if (!gs__c.lib) return false;
  CUptiResult (*version)(uint32_t *) = (CUptiResult(*)(uint32_t *))dlsym(gs__c.lib, "cuptiGetVersion");
  uint32_t v = 0;
  /* CUPTI 12 (API versions 18 to 2x) and 13 (130000 on) lay out the fields read alike; refuse an
   * older one (or one that reports no version, as without a driver) rather than misread them. */
  if (!version || version(&v) != CUPTI_SUCCESS || v < 18) return false;
  *(void **)&gs__c.reg = dlsym(gs__c.lib, "cuptiActivityRegisterCallbacks");
  *(void **)&gs__c.enable = dlsym(gs__c.lib, "cuptiActivityEnable");
  *(void **)&gs__c.disable = dlsym(gs__c.lib, "cuptiActivityDisable");
  *(void **)&gs__c.next = dlsym(gs__c.lib, "cuptiActivityGetNextRecord");
  *(void **)&gs__c.flush = dlsym(gs__c.lib, "cuptiActivityFlushAll");
  *(void **)&gs__c.timestamp = dlsym(gs__c.lib, "cuptiGetTimestamp");
  return gs__c.reg && gs__c.enable && gs__c.disable && gs__c.next && gs__c.flush && gs__c.timestamp;
}

int gs__cupti_start(void) {
  if (gs__c.on) return 0;
  if (!gs__resolve()) return -ENOTSUP;
  uint64_t ts = 0;
  if (gs__c.timestamp(&ts) != CUPTI_SUCCESS) return -ENOTSUP;
  gs__c.offset = (int64_t)gs__now_ns() - (int64_t)ts;
  if (gs__c.reg(gs__buf_requested, gs__buf_completed) != CUPTI_SUCCESS) return -ENOTSUP;
  if (gs__c.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) return -ENOTSUP;
  gs__c.on = true;
  return 0;
}

void gs__cupti_stop(void) {
  if (!gs__c.on) return;
  /* Forced: also the buffers of records still being written (kernels in flight at exit). */
  gs__c.flush(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  gs__c.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  gs__c.on = false;
}

void gs__cupti_atfork_child(void) { gs__c.on = false; }

#else

int gs__cupti_start(void) { return -ENOTSUP; }
void gs__cupti_stop(void) {}
void gs__cupti_atfork_child(void) {}

#endif
