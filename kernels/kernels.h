/* kernels.h: internals the kernels' host files share with each other and with their tests. */
#ifndef GS_KERNELS_H
#define GS_KERNELS_H

/* Most lanes the CPU codec uses: ranges one call is split into, and threads the pool may have. */
#define GS__MAX_THREADS 64

/* ---- pool.c: the CPU codec's worker threads ----
 *
 * One process-wide pool of persistent worker threads, started on first parallel use, sized by the
 * CPUs the process may run on (its affinity mask, at most GS__MAX_THREADS lanes). Workers block
 * every signal. After fork() the child has no workers; its first parallel use starts its own. */

/* One unit of a parallel call: fn(arg, i) for i in [0, count). */
typedef void (*gs__pool_fn)(void *arg, int i);

/* Runs fn(arg, i) for every i in [0, count), on the pool's workers and the calling thread, and
 * returns once all have returned. Which thread runs which i is unspecified, so results must not
 * depend on it. Runs everything on the calling thread when count < 2, when the pool has no
 * workers (one CPU, or they could not be started) or when another caller is using it. Returns 0. */
int gs__pool_run(gs__pool_fn fn, void *arg, int count);

/* Lanes of the pool (its workers plus the caller: the CPUs of the affinity mask when it was
 * created, capped at GS__MAX_THREADS), creating it on first use; 1 if it cannot be created. */
int gs__pool_lanes(void);

/* Worker threads the pool has started (0 before its first use, or after fork() in the child);
 * creates nothing. For tests. */
int gs__pool_workers(void);

#endif
