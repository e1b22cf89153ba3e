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

#endif
