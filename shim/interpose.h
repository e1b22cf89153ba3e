/* interpose.h: the dlsym / cuGetProcAddress hooks and the wrapped driver and runtime memory calls. */
#ifndef GS_INTERPOSE_H
#define GS_INTERPOSE_H

#include "common.h"

/* Code that can run inside a sanitizer runtime's own start-up (it resolves its interceptors with
 * dlsym(RTLD_NEXT) before its shadow memory exists, and our dlsym is the one it reaches) must not
 * be instrumented. Only the dlsym path carries this. */
#define GS_NO_SANITIZE __attribute__((no_sanitize("address", "undefined", "thread")))

/* glibc's dlsym, once resolved. Global so that dlsym.c's entry stub can jump to it directly. */
extern void *(*gs__dlsym_real)(void *, const char *);

/* Resolves the real dlsym (dlvsym on RTLD_NEXT); no CUDA call. Called by the constructor even when
 * the shim is disabled, since our exported dlsym must always reach the real one. */
void gs__interpose_init(void);

/* In the fork child: resets the interposer's locks and once-flags. */
void gs__interpose_atfork_child(void);

/* The real dlsym, never our hook (resolves it first if the constructor has not run yet). */
void *gs__real_dlsym(void *handle, const char *name);

/* RTLD_NEXT relative to the object that contains address `caller`: the first definition of name in
 * an object loaded after that one. NULL (with dlerror set) when there is none. */
void *gs__dlsym_next(const void *caller, const char *name);

/* What our exported dlsym does (dlsym.c): the real lookup (RTLD_NEXT relative to caller, the
 * return address of the application's call), then gs__route. */
void *gs__dlsym_hook(void *handle, const char *name, const void *caller);

/* Returns the shim's wrapper when p is one of the driver's watched entry points (compared by
 * address with the driver's exact-named exports), else p. name only decides whether it is worth
 * building the table now (a "cu" prefix); it never selects a wrapper. */
void *gs__route(const char *name, void *p);

/* Per-thread recursion guard: while it is held, every wrapper passes straight through, so work the
 * shim does itself (bookkeeping, the engine's own buffers) is never recorded twice or re-entered.
 * Thread-local because re-entrancy is a property of one call stack. */
extern __thread int gs__tl_guard __attribute__((tls_model("initial-exec")));
static inline void gs__guard_enter(void) { gs__tl_guard++; }
static inline void gs__guard_leave(void) { gs__tl_guard--; }

#endif
