/* pool.c: the CPU codec's persistent worker threads, sized by the process's CPU affinity. */
#include "kernels.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* One job slot, guarded by lock: callers take turns on it, workers claim its indices one by one.
 * Fields are read and written under lock, but lanes (set before the pool is published) and
 * abandoned (written in a fork child only). */
typedef struct gs__pool {
  pthread_mutex_t lock;
  pthread_cond_t wake;        /* workers: a new job was posted (gen changed) */
  pthread_cond_t done;        /* the caller: its job's last index has finished */
  int lanes;                  /* the caller plus the workers wanted */
  int workers;                /* workers started */
  int busy;                   /* a caller owns the job slot */
  unsigned long gen;          /* bumped with every job posted */
  gs__pool_fn fn;             /* the current job */
  void *arg;
  int count, next, finished;  /* its indices: all, the next to claim, the ones done */
  struct gs__pool *abandoned; /* the chain of pools left behind by fork() (see below) */
} gs__pool;

/* Process-wide because threads are: one pool serves every caller. Published once with a
 * compare-and-swap, so that creating it takes no lock a fork() could leave held. */
static _Atomic(gs__pool *) gs__the_pool;
/* In a child of fork(): the parent's pools, never used again (their mutex may have been held by a
 * thread that does not exist here) but kept reachable so that leak checkers stay quiet. */
static gs__pool *gs__graveyard;
/* 0 until the fork handler is registered, 1 once it is, -1 if it could not be (then no pool). */
static atomic_int gs__atfork_state;

/* The child has none of the parent's threads: forget the pool, the next parallel use makes one.
 * Touches no lock: fork() may have caught another thread of the parent holding the pool's. */
static void gs__pool_atfork_child(void) {
  gs__pool *p = atomic_load_explicit(&gs__the_pool, memory_order_relaxed);
  if (p == NULL) return; /* registered twice by a race: harmless */
  p->abandoned = gs__graveyard;
  gs__graveyard = p;
  atomic_store_explicit(&gs__the_pool, NULL, memory_order_relaxed);
}

/* The CPUs the process may run on: the main thread's affinity (the calling thread's may have been
 * narrowed, e.g. by OpenMP binding), in *set (CPU_FREE it) of *size bytes; their count or -errno. */
static int gs__cpus_allowed(cpu_set_t **set, size_t *size) {
  for (size_t ncpu = 1024; ncpu <= 65536; ncpu *= 2) { /* EINVAL: the kernel has more CPUs */
    *set = CPU_ALLOC(ncpu);
    *size = CPU_ALLOC_SIZE(ncpu);
    if (*set == NULL) return -ENOMEM;
    if (sched_getaffinity(getpid(), *size, *set) == 0) return CPU_COUNT_S(*size, *set);
    int err = errno;
    CPU_FREE(*set);
    *set = NULL;
    if (err != EINVAL) return -err;
  }
  return -EINVAL;
}

/* Runs the current job's unclaimed indices; called and returns with p->lock held. */
static void gs__pool_claim(gs__pool *p) {
  while (p->next < p->count) {
    int i = p->next++;
    gs__pool_fn fn = p->fn;
    void *arg = p->arg;
    pthread_mutex_unlock(&p->lock);
    fn(arg, i);
    pthread_mutex_lock(&p->lock);
    if (++p->finished == p->count) pthread_cond_signal(&p->done);
  }
}

/* A worker sleeps on the condition variable between jobs and never ends: at exit the process
 * just stops it, wherever it is, and nothing it uses is ever freed. */
static void *gs__pool_worker(void *arg) {
  gs__pool *p = (gs__pool *)arg;
  unsigned long seen = 0;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (p->gen == seen) pthread_cond_wait(&p->wake, &p->lock);
    seen = p->gen;
    gs__pool_claim(p);
  }
  return NULL;
}

/* Starts up to lanes - 1 workers, detached (nobody joins them: see gs__pool_worker), on the
 * process's CPUs, with every signal blocked so that the program's handlers (Python's SIGINT, the
 * shim's SIGTERM flush) never run on them. Called with p->lock held. Fewer on failure. */
static void gs__pool_start(gs__pool *p, const cpu_set_t *set, size_t size) {
  pthread_attr_t attr;
  sigset_t all, old;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (set != NULL) pthread_attr_setaffinity_np(&attr, size, set); /* else: the creator's */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* a new thread inherits the creator's mask */
  for (p->workers = 0; p->workers < p->lanes - 1; p->workers++) {
    pthread_t t;
    if (pthread_create(&t, &attr, gs__pool_worker, p) != 0) break;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
}

/* A new pool, not yet published: no workers, the lanes the affinity mask allows. */
static gs__pool *gs__pool_new(cpu_set_t **set, size_t *size) {
  gs__pool *p = (gs__pool *)calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  if (pthread_mutex_init(&p->lock, NULL) != 0) goto fail_lock;
  if (pthread_cond_init(&p->wake, NULL) != 0) goto fail_wake;
  if (pthread_cond_init(&p->done, NULL) != 0) goto fail_done;
  int cpus = gs__cpus_allowed(set, size);
  if (cpus < 1) cpus = (int)sysconf(_SC_NPROCESSORS_ONLN); /* no mask: every CPU online */
  p->lanes = cpus < 1 ? 1 : cpus > GS__MAX_THREADS ? GS__MAX_THREADS : cpus;
  return p;
fail_done:
  pthread_cond_destroy(&p->wake);
fail_wake:
  pthread_mutex_destroy(&p->lock);
fail_lock:
  free(p);
  return NULL;
}

static void gs__pool_free(gs__pool *p) {
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* The process's pool, made and its workers started on first call; NULL if it cannot be. */
static gs__pool *gs__pool_get(void) {
  gs__pool *p = atomic_load_explicit(&gs__the_pool, memory_order_acquire), *none = NULL;
  if (p != NULL) return p;
  /* The fork handler first, so that no child can inherit a pool it would not forget. */
  if (atomic_load(&gs__atfork_state) == 0)
    atomic_store(&gs__atfork_state, pthread_atfork(NULL, NULL, gs__pool_atfork_child) == 0 ? 1 : -1);
  if (atomic_load(&gs__atfork_state) < 0) return NULL;
  cpu_set_t *set = NULL;
  size_t size = 0;
  p = gs__pool_new(&set, &size);
  if (p == NULL) return NULL;
  if (!atomic_compare_exchange_strong(&gs__the_pool, &none, p)) { /* another thread was first */
    gs__pool_free(p);
    CPU_FREE(set);
    return none;
  }
  /* Callers that find it meanwhile wait on the lock, then see the workers. */
  pthread_mutex_lock(&p->lock);
  gs__pool_start(p, set, size);
  pthread_mutex_unlock(&p->lock);
  CPU_FREE(set);
  return p;
}

int gs__pool_lanes(void) {
  gs__pool *p = gs__pool_get();
  return p != NULL ? p->lanes : 1; /* lanes is set before the pool is published, never after */
}

int gs__pool_workers(void) {
  gs__pool *p = atomic_load_explicit(&gs__the_pool, memory_order_acquire);
  if (p == NULL) return 0;
  pthread_mutex_lock(&p->lock);
  int n = p->workers;
  pthread_mutex_unlock(&p->lock);
  return n;
}

/* Runs the job on the pool and the calling thread: 0, or -EBUSY (nothing run) if the pool has no
 * workers or another caller's job. A caller that finds the pool busy runs its job inline rather
 * than waiting: the pool's lanes are all at work already, so waiting would add latency but no
 * throughput, and no caller (a Python thread holding the GIL, say) ever blocks behind another's
 * large tensor. The split of a job into indices is the caller's, so who runs them changes no
 * result. */
static int gs__pool_try(gs__pool *p, gs__pool_fn fn, void *arg, int count) {
  pthread_mutex_lock(&p->lock);
  if (p->workers == 0 || p->busy) {
    pthread_mutex_unlock(&p->lock);
    return -EBUSY;
  }
  p->busy = 1;
  p->fn = fn;
  p->arg = arg;
  p->count = count;
  p->next = p->finished = 0;
  p->gen++;
  pthread_cond_broadcast(&p->wake);
  gs__pool_claim(p);
  while (p->finished < p->count) pthread_cond_wait(&p->done, &p->lock);
  p->busy = 0;
  pthread_mutex_unlock(&p->lock);
  return 0;
}

int gs__pool_run(gs__pool_fn fn, void *arg, int count) {
  gs__pool *p = count > 1 ? gs__pool_get() : NULL;
  int cancel, rc = -EBUSY;
  /* Waiting on a condition variable is a cancellation point: a caller cancelled there would leave
   * the slot busy and the lock held for ever. */
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  if (p != NULL) rc = gs__pool_try(p, fn, arg, count);
  pthread_setcancelstate(cancel, NULL);
  for (int i = 0; rc != 0 && i < count; i++) fn(arg, i);
  return 0;
}
