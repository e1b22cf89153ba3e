/* interpose.h: the dlsym / cuGetProcAddress hooks and the wrapped driver and runtime memory calls. */
#ifndef GS_INTERPOSE_H
#define GS_INTERPOSE_H

#include "common.h"

/* Resolves the real dlsym (dlvsym on RTLD_NEXT); no CUDA call. Called by the constructor even when
 * the shim is disabled, since our exported dlsym must always reach the real one. */
void gs__interpose_init(void);

/* In the fork child: resets the interposer's locks and once-flags. */
void gs__interpose_atfork_child(void);

#endif
