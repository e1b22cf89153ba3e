/* registry.h: the live allocations of the process (pointer -> record) and live/peak bytes per device. */
#ifndef GS_REGISTRY_H
#define GS_REGISTRY_H

#include "common.h"

/* How the memory was obtained. */
typedef enum gs_alloc_kind {
  GS_KIND_DEVICE = 0,   /* cuMemAlloc, cuMemAllocPitch, cudaMalloc */
  GS_KIND_ASYNC_POOL,   /* cuMemAllocAsync, cuMemAllocFromPoolAsync, cudaMallocAsync */
  GS_KIND_VMM,          /* cuMemCreate physical handles (keyed by handle, not address) */
  GS_KIND_MANAGED,      /* cuMemAllocManaged */
  GS_KIND_HOST_PINNED,  /* cuMemHostAlloc, cuMemAllocHost */
  GS_KIND_SAVED,        /* a saved tensor the engine holds (CPU tensors, or GPU bookkeeping) */
  GS_KIND__COUNT
} gs_alloc_kind;

/* What the bytes are used for, as far as the shim knows. */
typedef enum gs_category {
  GS_CAT_OTHER = 0,
  GS_CAT_ACTIVATION,    /* a saved activation kept at full precision */
  GS_CAT_COMPRESSED,    /* a compressed saved activation */
  GS_CAT_PARAMETER,
  GS_CAT__COUNT
} gs_category;

/* Devices are 0..GS_MAX_DEVICES-1; GS_DEVICE_HOST counts host-side tracked bytes (pinned memory
 * and saved tensors on the CPU), so CPU training has a tracked-memory figure too. */
#define GS_MAX_DEVICES 32
#define GS_DEVICE_HOST GS_MAX_DEVICES

typedef struct gs_alloc_record {
  uint64_t size;
  uint64_t stream;    /* CUstream for stream-ordered allocations, else 0 */
  uint64_t time_ns;   /* gs__now_ns() at allocation */
  uint32_t site;      /* call-site id, 0 when not recorded */
  int16_t device;     /* 0..GS_MAX_DEVICES-1 or GS_DEVICE_HOST */
  uint8_t kind;       /* gs_alloc_kind */
  uint8_t category;   /* gs_category */
} gs_alloc_record;

/* Records a live allocation at key (a device pointer, or a VMM handle; never 0). -EEXIST if key is
 * live (the first record stays), -ENOMEM if the table cannot grow, -EINVAL for key 0 or a bad
 * device, kind or category. Counted in allocs/alloc_bytes. Thread-safe; keys are spread over 64
 * shards, each a small spinlock and a linear-probing table that doubles when 3/4 full. */
int gs__registry_insert(uint64_t key, const gs_alloc_record *rec);

/* Forgets key; *out (may be NULL) receives its record. -ENOENT if key is not live. Counted in
 * frees. */
int gs__registry_remove(uint64_t key, gs_alloc_record *out);

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

/* Copies the record of a live key into *out: 0 or -ENOENT. */
int gs__registry_lookup(uint64_t key, gs_alloc_record *out);
/* Number of live keys. */
uint64_t gs__registry_count(void);
/* Frees of keys the registry never saw (allocated before the shim was active, or by a path it
 * does not watch), and records it could not keep (duplicate key, no memory): both fail open. */
uint64_t gs__registry_untracked_frees(void);
uint64_t gs__registry_failures(void);

/* Drops every record and zeroes the counters: the fork child, and tests. Not safe against
 * concurrent calls from other threads (in the fork child there are none). */
void gs__registry_reset(void);

#endif
