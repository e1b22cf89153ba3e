/* gputime.c: GPU time of the codec's own launches, from CUDA events around them (no CUPTI). */
#include "gactshim.h"
#include "kernels.h"

#if !defined(GS_HAVE_CUDA_KERNELS)

int gs_gpu_kernel_time(uint64_t *ns, uint64_t *timed, uint64_t *untimed) {
  *ns = *timed = *untimed = 0;
  return -ENOSYS;
}

#else

#include <dlfcn.h>
#include <pthread.h>

typedef int CUresult;
typedef struct CUevent_st *CUevent;
#define GS__CUDA_ERROR_NOT_READY 600

/* A ring of event pairs. Events belong to the context they were made in, so a pair is reused only
 * in its own context; a launch finding no free pair goes untimed (counted) rather than waiting.
 * Process-wide, like the driver; guarded by gs__t_lock. */
#define GS__PAIRS 128
typedef struct gs__pair {
  void *ctx;
  CUevent start, end;
  bool pending; /* recorded, elapsed time not read yet */
} gs__pair;

static pthread_mutex_t gs__t_lock = PTHREAD_MUTEX_INITIALIZER;
static gs__pair gs__pairs[GS__PAIRS];
static uint64_t gs__ns, gs__timed, gs__untimed;
static int gs__t_ready; /* 0 not tried, 1 resolved, -1 unusable driver */
static struct {
  CUresult (*create)(CUevent *, unsigned);
  CUresult (*record)(CUevent, void *);
  CUresult (*query)(CUevent);
  CUresult (*elapsed)(float *, CUevent, CUevent);
} gs__ev;

static bool gs__t_resolve_locked(void) {
  if (gs__t_ready != 0) return gs__t_ready > 0;
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL) return false; /* not loaded yet: asked again next time */
  *(void **)&gs__ev.create = dlsym(h, "cuEventCreate");
  *(void **)&gs__ev.record = dlsym(h, "cuEventRecord");
  *(void **)&gs__ev.query = dlsym(h, "cuEventQuery");
  /* CUDA 12.8 added the _v2 (same arguments); CUDA 13's cuda.h names only that one. */
  *(void **)&gs__ev.elapsed = dlsym(h, "cuEventElapsedTime_v2");
  if (gs__ev.elapsed == NULL) *(void **)&gs__ev.elapsed = dlsym(h, "cuEventElapsedTime");
  dlclose(h);
  gs__t_ready = gs__ev.create && gs__ev.record && gs__ev.query && gs__ev.elapsed ? 1 : -1;
  return gs__t_ready > 0;
}

/* Adds the pairs whose end event has completed; never waits. Called with gs__t_lock held. */
static void gs__t_poll_locked(void) {
  for (int i = 0; i < GS__PAIRS; i++) {
    gs__pair *p = &gs__pairs[i];
    if (!p->pending) continue;
    CUresult r = gs__ev.query(p->end);
    if (r == GS__CUDA_ERROR_NOT_READY) continue;
    float ms = 0;
    if (r == 0 && gs__ev.elapsed(&ms, p->start, p->end) == 0 && ms >= 0) {
      gs__ns += (uint64_t)((double)ms * 1e6 + 0.5); /* float ms: round to the nearest ns */
      gs__timed++;
    } else {
      gs__untimed++; /* its context went away, or the stream failed */
    }
    p->pending = false;
  }
}

int gs__gpu_time_begin(void *ctx, void *stream) {
  int slot = -1;
  pthread_mutex_lock(&gs__t_lock);
  if (gs__t_resolve_locked()) {
    gs__t_poll_locked();
    for (int i = 0; i < GS__PAIRS && slot < 0; i++) /* a free pair of this context */
      if (!gs__pairs[i].pending && gs__pairs[i].ctx == ctx) slot = i;
    for (int i = 0; i < GS__PAIRS && slot < 0; i++) /* else a never-used one */
      if (gs__pairs[i].ctx == NULL && gs__ev.create(&gs__pairs[i].start, 0) == 0) {
        if (gs__ev.create(&gs__pairs[i].end, 0) == 0) gs__pairs[i].ctx = ctx, slot = i;
        else break; /* one event leaks: the driver is failing, timing stops being tried here */
      }
    if (slot >= 0 && gs__ev.record(gs__pairs[slot].start, stream) != 0) slot = -1;
    if (slot < 0) gs__untimed++;
  }
  pthread_mutex_unlock(&gs__t_lock);
  return slot;
}

void gs__gpu_time_end(int slot, void *stream) {
  if (slot < 0) return;
  pthread_mutex_lock(&gs__t_lock);
  if (gs__ev.record(gs__pairs[slot].end, stream) == 0) gs__pairs[slot].pending = true;
  else gs__untimed++;
  pthread_mutex_unlock(&gs__t_lock);
}

int gs_gpu_kernel_time(uint64_t *ns, uint64_t *timed, uint64_t *untimed) {
  pthread_mutex_lock(&gs__t_lock);
  if (gs__t_ready > 0) gs__t_poll_locked();
  *ns = gs__ns;
  *timed = gs__timed;
  *untimed = gs__untimed;
  pthread_mutex_unlock(&gs__t_lock);
  return 0;
}

#endif
