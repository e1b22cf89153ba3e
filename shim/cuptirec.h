/* cuptirec.h: GPU durations of our compression kernels from CUPTI activity records (dlopen'ed). */
#ifndef GS_CUPTIREC_H
#define GS_CUPTIREC_H

#include "common.h"

/* Loads libcupti with dlopen and enables kernel activity records; each record of one of our
 * kernels (named gs_k_*) becomes a KERNEL trace event. Fail-open: returns
 * -ENOTSUP when CUPTI is absent, was not compiled in, or refuses (another subscriber); the job
 * runs on untouched. Called on the writer thread once CUDA is in use, never from a constructor. */
int gs__cupti_start(void);

/* Flushes pending records and disables collection. */
void gs__cupti_stop(void);

/* The kernel name for an id handed to gs__trace_kernel ("?" if unknown). */
const char *gs__cupti_name(uint32_t id);

/* Whether a kernel name is one of ours. */
bool gs__cupti_is_ours(const char *name);

void gs__cupti_atfork_child(void);

#endif
