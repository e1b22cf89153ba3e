/* registry.h: the live allocations of the process (pointer -> record), live/peak bytes per device. */
#ifndef GS_REGISTRY_H
#define GS_REGISTRY_H

#include "base.h"

/* The registry room depends on base only. It knows nothing of who watches it: the timeline (and
 * tests) register observers, which it tells of every allocation, free, category change and
 * out-of-memory answer. */

typedef struct gs_alloc_record {
  uint64_t size;
  uint64_t stream;    /* CUstream for stream-ordered allocations, else 0 */
  uint64_t time_ns;   /* gs__now_ns() at allocation */
  uint32_t site;      /* call-site id, 0 when not recorded */
  int16_t device;     /* 0..GS_MAX_DEVICES-1 or GS_DEVICE_HOST */
  uint8_t kind;       /* gs_alloc_kind */
  uint8_t category;   /* gs_category */
} gs_alloc_record;

/* Told of every change, on the thread that made it, after the registry's own bookkeeping. The
 * callbacks must not block and must not call back into the registry. Any member may be NULL. */
typedef struct gs_registry_observer {
  void (*on_alloc)(uint64_t key, const gs_alloc_record *rec);
  void (*on_free)(uint64_t key, const gs_alloc_record *rec);
  void (*on_recat)(uint64_t key, const gs_alloc_record *rec, gs_category to);
  void (*on_oom)(uint64_t size, int device, int result);
} gs_registry_observer;

#define GS_REGISTRY_OBSERVERS_MAX 4

/* Adds an observer (kept by pointer: static storage). Before the hooks run (the constructor), or
 * in tests. 0, or -ENOSPC when GS_REGISTRY_OBSERVERS_MAX are registered. */
int gs__registry_observe(const gs_registry_observer *o);

/* Removes every observer (tests). */
void gs__registry_observe_none(void);

/* An allocation of size bytes on device was refused with out-of-memory (driver result): told to
 * the observers, nothing recorded. */
void gs__registry_note_oom(uint64_t size, int device, int result);

/* Records a live allocation at key (a device pointer, or a VMM handle; never 0). -EEXIST if key is
 * live (the first record stays), -ENOMEM if the table cannot grow, -EINVAL for key 0 or a bad
 * device, kind or category. Counted in allocs/alloc_bytes (gs__registry_counts). Thread-safe;
 * keys are spread over 64 shards, each a small spinlock and a linear-probing table that doubles
 * when 3/4 full. */
int gs__registry_insert(uint64_t key, const gs_alloc_record *rec);

/* Forgets key; *out (may be NULL) receives its record. -ENOENT if key is not live. Counted in
 * frees. */
int gs__registry_remove(uint64_t key, gs_alloc_record *out);

/* Allocations recorded, frees recorded and bytes allocated since start (the stats JSON's allocs,
 * frees and alloc_bytes). A sum over the shards: exact once the hooks are quiet. */
typedef struct gs_registry_counts {
  uint64_t allocs, frees, alloc_bytes;
} gs_registry_counts;
gs_registry_counts gs__registry_counts(void);

/* Puts back a record that gs__registry_remove returned when the free it preceded then failed:
 * afterwards the table and the counters are as if it had never been removed. */
void gs__registry_undo_remove(uint64_t key, const gs_alloc_record *rec);

/* Changes the category of a live key (bytes move between the per-category totals). */
int gs__registry_set_category(uint64_t key, gs_category cat);

/* Live and peak bytes on a device (0..GS_MAX_DEVICES-1 or GS_DEVICE_HOST); by category too. */
uint64_t gs__registry_live_bytes(int device);
uint64_t gs__registry_peak_bytes(int device);
uint64_t gs__registry_live_bytes_cat(int device, gs_category cat);
uint64_t gs__registry_peak_bytes_cat(int device, gs_category cat);
/* The largest peak over all devices and the host (the stats JSON's live_bytes_peak). */
uint64_t gs__registry_peak_any(void);
/* Live bytes summed over all devices and the host (the stats JSON's live_bytes). */
uint64_t gs__registry_live_total(void);

/* Frees of keys the registry never saw (allocated before the shim was active, or by a path it
 * does not watch), and records it could not keep (duplicate key, no memory): both fail open. */
uint64_t gs__registry_untracked_frees(void);
uint64_t gs__registry_failures(void);

/* Drops every record and zeroes the counters: the fork child, and tests. Not safe against
 * concurrent calls from other threads (in the fork child there are none). */
void gs__registry_reset(void);

#endif
