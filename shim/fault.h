/* fault.h: test-only fault injection (_GACTSHIM_FAULT), compiled in with -Dfault_injection=true. */
#ifndef GS_FAULT_H
#define GS_FAULT_H

#include "common.h"

/* Places where a test can make the shim's own work fail. */
typedef enum gs_fault {
  GS_FAULT_ALLOC = 0,   /* "alloc": the compressed buffer cannot be allocated */
  GS_FAULT_CODEC,       /* "codec": the CPU codec fails */
  GS_FAULT_LAUNCH,      /* "launch": the GPU kernel launch fails */
  GS_FAULT_TRACE_NOSPC, /* "trace_nospc": trace file writes fail with ENOSPC (disk full) */
  GS_FAULT__COUNT
} gs_fault;

#ifdef GS_FAULT_INJECTION
/* Reads _GACTSHIM_FAULT from envp: a comma-separated list of names, each optionally "@N" to fail
 * from its N-th occurrence on (default 1: always). The leading underscore keeps it out of the
 * GACTSHIM_* namespace, whose unknown names stop the job. 0, or -EINVAL with a line in err. */
int gs__fault_parse(char *const *envp, char *err, size_t errlen);

/* Whether this occurrence of f must fail. Thread-safe. */
bool gs__fault(gs_fault f);
#else
static inline int gs__fault_parse(char *const *envp, char *err, size_t errlen) {
  (void)envp, (void)err, (void)errlen;
  return 0;
}
static inline bool gs__fault(gs_fault f) {
  (void)f;
  return false;
}
#endif

#endif
