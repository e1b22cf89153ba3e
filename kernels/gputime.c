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

/* A FIFO ring of event pairs: launches go in at the tail, and are read out from the head as their
 * end events complete (in order on one stream; a pair still running stops the reading, so a call
 * costs a query or two, not one per pair). A launch finding the ring full goes untimed (counted)
 * rather than waiting. Events belong to a context: a pair made in another is remade. Process-wide,
 * like the driver; guarded by gs__t_lock. */
#define GS__PAIRS 128
typedef struct gs__pair {
  void *ctx;
  CUevent start, end;
  int state; /* GS__STARTED (its launch is being made), GS__ENDED, GS__FAILED */
} gs__pair;
enum { GS__STARTED = 1, GS__ENDED, GS__FAILED };

static pthread_mutex_t gs__t_lock = PTHREAD_MUTEX_INITIALIZER;
static gs__pair gs__pairs[GS__PAIRS];
static uint64_t gs__head, gs__tail; /* pairs [head, tail) are taken and not read yet */
static uint64_t gs__ns, gs__timed, gs__untimed;
static int gs__t_ready; /* 0 not tried, 1 resolved, -1 unusable driver */
static struct {
  CUresult (*create)(CUevent *, unsigned);
  CUresult (*destroy)(CUevent);
  CUresult (*record)(CUevent, void *);
  CUresult (*query)(CUevent);
  CUresult (*elapsed)(float *, CUevent, CUevent);
} gs__ev;

static bool gs__t_resolve_locked(void) {
  if (gs__t_ready != 0) return gs__t_ready > 0;
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL) return false; /* not loaded yet: asked again next time */
  *(void **)&gs__ev.create = dlsym(h, "cuEventCreate");
  *(void **)&gs__ev.destroy = dlsym(h, "cuEventDestroy_v2");
  *(void **)&gs__ev.record = dlsym(h, "cuEventRecord");
  *(void **)&gs__ev.query = dlsym(h, "cuEventQuery");
  /* CUDA 12.8 added the _v2 (same arguments); CUDA 13's cuda.h names only that one. */
  *(void **)&gs__ev.elapsed = dlsym(h, "cuEventElapsedTime_v2");
  if (gs__ev.elapsed == NULL) *(void **)&gs__ev.elapsed = dlsym(h, "cuEventElapsedTime");
  dlclose(h);
  gs__t_ready = gs__ev.create && gs__ev.destroy && gs__ev.record && gs__ev.query && gs__ev.elapsed ? 1 : -1;
  return gs__t_ready > 0;
}

/* Reads the completed pairs from the head; never waits. Called with gs__t_lock held. */
static void gs__t_poll_locked(void) {
  while (gs__head != gs__tail) {
    gs__pair *p = &gs__pairs[gs__head % GS__PAIRS];
    if (p->state == GS__STARTED) break; /* another thread is launching it */
    CUresult r = p->state == GS__ENDED ? gs__ev.query(p->end) : 1;
    if (r == GS__CUDA_ERROR_NOT_READY) break;
    float ms = 0;
    if (r == 0 && gs__ev.elapsed(&ms, p->start, p->end) == 0 && ms >= 0) {
      gs__ns += (uint64_t)((double)ms * 1e6 + 0.5); /* float ms: round to the nearest ns */
      gs__timed++;
    } else {
      gs__untimed++; /* its context went away, or its stream failed */
    }
    gs__head++;
  }
}

/* Makes pair p's events in ctx (the current context). */
static bool gs__t_make(gs__pair *p, void *ctx) {
  if (p->ctx == ctx) return true;
  if (p->ctx != NULL) gs__ev.destroy(p->start), gs__ev.destroy(p->end);
  p->ctx = NULL;
  if (gs__ev.create(&p->start, 0) != 0) return false;
  if (gs__ev.create(&p->end, 0) != 0) return gs__ev.destroy(p->start), false;
  p->ctx = ctx;
  return true;
}

int gs__gpu_time_begin(void *ctx, void *stream) {
  int slot = -1;
  pthread_mutex_lock(&gs__t_lock);
  if (gs__t_resolve_locked()) {
    gs__t_poll_locked();
    gs__pair *p = &gs__pairs[gs__tail % GS__PAIRS];
    if (gs__tail - gs__head < GS__PAIRS && gs__t_make(p, ctx) && gs__ev.record(p->start, stream) == 0) {
      slot = (int)(gs__tail++ % GS__PAIRS);
      p->state = GS__STARTED;
    } else {
      gs__untimed++;
    }
  }
  pthread_mutex_unlock(&gs__t_lock);
  return slot;
}

void gs__gpu_time_end(int slot, void *stream) {
  if (slot < 0) return;
  pthread_mutex_lock(&gs__t_lock);
  gs__pairs[slot].state = gs__ev.record(gs__pairs[slot].end, stream) == 0 ? GS__ENDED : GS__FAILED;
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
