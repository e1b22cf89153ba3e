/* common.h: conventions shared by every subsystem of the shim (visibility, errors, time). */
#ifndef GS_COMMON_H
#define GS_COMMON_H

/* Error convention (as libuv): a function returns 0 or a negative errno and never aborts or exits
 * the host process. The one exception is a bad GACTSHIM_* variable at load, which exits 2 before
 * the program runs, as the README promises. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gactshim.h" /* GS_API: exported symbols */

#define gs__likely(x) __builtin_expect(!!(x), 1)
#define gs__unlikely(x) __builtin_expect(!!(x), 0)
#define GS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static inline uint64_t gs__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
