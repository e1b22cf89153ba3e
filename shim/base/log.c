/* log.c: messages on stderr, filtered by GACTSHIM_LOG, and warnings printed once per reason. */
#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void gs__vlog(const char *fmt, va_list ap) {
  char line[1024];
  int n = snprintf(line, sizeof(line), "gactshim: ");
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  if (m < 0) return;
  size_t len = (size_t)n + ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2);
  line[len++] = '\n';
  /* One write(2), so lines from several threads or processes do not interleave. */
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}

void gs__log(gs_log_level level, const char *fmt, ...) {
  if (level > gs__cfg.log) return;
  va_list ap;
  va_start(ap, fmt);
  gs__vlog(fmt, ap);
  va_end(ap);
}

/* Reasons already warned about. Global because "once per reason" is a process-wide promise;
 * slots are claimed with a compare-and-swap, so no lock is taken. */
#define GS__WARN_SLOTS 64
static const char *gs__warned[GS__WARN_SLOTS];

static bool gs__first_warning(const char *reason) {
  for (size_t i = 0; i < GS__WARN_SLOTS; i++) {
    const char *cur = __atomic_load_n(&gs__warned[i], __ATOMIC_ACQUIRE);
    if (cur == NULL) {
      const char *expected = NULL;
      if (__atomic_compare_exchange_n(&gs__warned[i], &expected, reason, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE))
        return true;
      cur = expected;
    }
    if (cur == reason || strcmp(cur, reason) == 0) return false;
  }
  return false; /* table full: stay quiet rather than flood stderr */
}

void gs__warn_once(const char *reason, const char *fmt, ...) {
  if (GS_LOG_WARN > gs__cfg.log || !gs__first_warning(reason)) return;
  va_list ap;
  va_start(ap, fmt);
  gs__vlog(fmt, ap);
  va_end(ap);
}
