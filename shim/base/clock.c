/* clock.c: gs__now_ns — CLOCK_MONOTONIC nanoseconds, extrapolated from the TSC between re-anchors. */
#include "base.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static uint64_t gs__mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__)
#include <x86intrin.h>

/* Why not clock_gettime every time: on the 2-core KVM machine of bench/results it costs 45 ns,
 * and every allocation and every free takes one (two per pair, most of the interposition cost).
 * Why not CLOCK_MONOTONIC_COARSE (11 ns): it ticks every 4 ms there, so a free could be stamped
 * milliseconds before the allocation made just before it, and samples of one window would carry
 * the same time. rdtsc costs 16-19 ns there; each thread re-anchors on clock_gettime every ~1 ms
 * of ticks, so the result follows CLOCK_MONOTONIC (NTP slew included) within ~1 µs, never goes
 * back on a thread, and has nanosecond resolution. Used only when the kernel itself uses the TSC
 * for CLOCK_MONOTONIC (clocksource "tsc": invariant and synchronized across CPUs). */

/* Calibration, process-wide because the TSC is: nanoseconds per tick << 32 (0: not yet, or the
 * TSC is not used), ticks between re-anchors, and the first anchor it is measured from. */
static uint64_t gs__tsc_mult, gs__tsc_refresh;
static int gs__tsc_state; /* 0 not checked, 1 usable, -1 not used */
static uint64_t gs__cal_ns, gs__cal_tsc;
static int gs__cal_lock;

#define GS__CAL_SPAN_NS 2000000u /* calibrate over >= 2 ms: clock_gettime jitter is ~50 ns */
#define GS__ANCHOR_NS 1000000u   /* re-anchor each thread every ~1 ms of ticks */

typedef struct gs__anchor {
  uint64_t ns, tsc, last;
} gs__anchor;
/* Per thread, so the hot path touches no shared line; initial-exec: the shim is preloaded. */
static __thread gs__anchor gs__tl_anchor __attribute__((tls_model("initial-exec")));

static int gs__tsc_is_clocksource(void) {
  char buf[16] = {0};
  int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n >= 3 && memcmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n') ? 1 : -1;
}

/* Called on a thread's re-anchor: the first anchor in the process starts the calibration, a
 * later one >= 2 ms after it finishes it. */
static void gs__calibrate(uint64_t ns, uint64_t tsc) {
  int st = __atomic_load_n(&gs__tsc_state, __ATOMIC_ACQUIRE);
  if (st < 0 || __atomic_load_n(&gs__tsc_mult, __ATOMIC_RELAXED)) return;
  if (__atomic_exchange_n(&gs__cal_lock, 1, __ATOMIC_ACQUIRE)) return; /* another thread is at it */
  if (st == 0) __atomic_store_n(&gs__tsc_state, st = gs__tsc_is_clocksource(), __ATOMIC_RELEASE);
  if (st > 0 && gs__cal_tsc == 0) {
    gs__cal_ns = ns;
    gs__cal_tsc = tsc;
  } else if (st > 0 && ns - gs__cal_ns >= GS__CAL_SPAN_NS && tsc > gs__cal_tsc) {
    uint64_t mult = (uint64_t)(((unsigned __int128)(ns - gs__cal_ns) << 32) / (tsc - gs__cal_tsc));
    __atomic_store_n(&gs__tsc_refresh, ((uint64_t)GS__ANCHOR_NS << 32) / (mult ? mult : 1), __ATOMIC_RELAXED);
    __atomic_store_n(&gs__tsc_mult, mult, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&gs__cal_lock, 0, __ATOMIC_RELEASE);
}

static uint64_t gs__now_anchor(gs__anchor *a) {
  uint64_t tsc = __rdtsc(), ns = gs__mono();
  a->ns = ns;
  a->tsc = tsc;
  gs__calibrate(ns, tsc);
  return a->last = ns > a->last ? ns : a->last;
}

uint64_t gs__now_ns(void) {
  gs__anchor *a = &gs__tl_anchor;
  uint64_t mult = __atomic_load_n(&gs__tsc_mult, __ATOMIC_ACQUIRE);
  if (gs__likely(mult != 0)) {
    uint64_t d = __rdtsc() - a->tsc; /* the thread's first call: a->tsc is 0, d is huge */
    if (gs__likely(d < gs__tsc_refresh)) {
      uint64_t t = a->ns + (uint64_t)(((unsigned __int128)d * mult) >> 32);
      return a->last = t > a->last ? t : a->last;
    }
  }
  return gs__now_anchor(a);
}

#else

uint64_t gs__now_ns(void) { return gs__mono(); }

#endif
