/* callsite.h: call stacks as a prefix tree of instruction pointers (one id per distinct path). */
#ifndef GS_CALLSITE_H
#define GS_CALLSITE_H

#include "common.h"

#define GS_SITES_MAX_DEPTH 64

/* Allocates the tree for up to max_nodes nodes (ids 1..max_nodes-1; 0 means "no site") and
 * resolves the unwinder: libunwind's unw_backtrace via dlopen("libunwind.so.8"), else glibc's
 * backtrace(). skip_own drops the frames of the object holding this code (the shim). depth limits the frames kept (the innermost ones). 0 or -ENOMEM. Not thread-safe:
 * call before any capture. */
int gs__sites_init(uint32_t max_nodes, unsigned depth, bool skip_own);
void gs__sites_fini(void);

/* Unwinds the calling thread, drops the shim's own frames, and returns the id of the path's leaf
 * (0 when unwinding failed). Lock-free; never allocates. */
uint32_t gs__sites_capture(void);

/* Inserts a path given innermost frame first (as unwinders return it); returns the leaf id.
 * Paths that do not fit in a full tree end at the deepest node already present. */
uint32_t gs__sites_insert(const uint64_t *ips, unsigned n);

/* Node id's parent and ip once it is ready to be written: 1, else 0 (not yet, or no such id). */
int gs__sites_get(uint32_t id, uint32_t *parent, uint64_t *ip);

/* Next id to be handed out (ids below it are ready or about to be). */
uint32_t gs__sites_next_id(void);

/* Paths cut short because the tree was full. */
uint64_t gs__sites_dropped(void);

/* Which unwinder is in use: "libunwind", "glibc" or "none". */
const char *gs__sites_unwinder(void);

#endif
