/* init.h: load-time set-up and exit-time reporting of the shim, and its fork handling. */
#ifndef GS_INIT_H
#define GS_INIT_H

#include "common.h"

/* True once the constructor finished and GACTSHIM_DISABLE is not set. Hooks that run before that
 * (or with the shim disabled) pass straight through. */
bool gs__active(void);

/* Expands %p (pid) and %r (RANK, else LOCAL_RANK, else 0) of a path template into out.
 * 0, or -1 when it does not fit. */
int gs__expand_path(const char *tmpl, char *out, size_t len);

/* Stops the trace (END record, file closed) and writes the stats and the summary line; once per
 * process: the destructor, the SIGTERM handler or the end of Python's finalization, whichever
 * comes first. */
void gs__exit_flush(void);

/* Once the process first uses the shim (exitflush.c): in Python, registers gs__exit_flush with
 * Py_AtExit; if SIGTERM still has its default action, installs a handler that wakes a thread of
 * ours to call gs__exit_flush and then die of SIGTERM. Not at load: processes that never use the
 * shim, and Python's own view of its signal handlers, stay untouched. */
void gs__exit_paths_arm(void);

#endif
