/* log.h: messages on stderr, filtered by GACTSHIM_LOG, and warnings printed once per reason. */
#ifndef GS_LOG_H
#define GS_LOG_H

#include "config.h"

/* Writes "gactshim: <message>\n" to stderr with one write(2) when level <= GACTSHIM_LOG. */
void gs__log(gs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like gs__log at GS_LOG_WARN, but only the first time for a given reason (a string literal, kept by
 * pointer; compared by
 * content); later calls are silent. Thread-safe, lock-free after the first call per reason. */
void gs__warn_once(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
