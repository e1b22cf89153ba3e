/* tracewire.h: connects the recorder to the rest of the shim (configuration, registry, fork). */
#ifndef GS_TRACEWIRE_H
#define GS_TRACEWIRE_H

/* From the constructor, after the configuration is parsed: stores the recorder's options and,
 * when GACTSHIM_TRACE names a file, starts the writer thread. Makes no CUDA call. Logs and goes
 * on without a trace if the file cannot be created. */
void gs__tracewire_init(void);

/* From the destructor: drains and closes the trace (before the stats are written). */
void gs__tracewire_fini(void);

/* In the fork child. */
void gs__tracewire_atfork_child(void);

#endif
