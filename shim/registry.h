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

/* Records a live allocation at key (a device pointer, or a VMM handle). -EEXIST if key is live
 * (the first record stays), -ENOMEM if the table cannot grow. Counted in allocs/alloc_bytes. */
int gs__registry_insert(uint64_t key, const gs_alloc_record *rec);

/* Forgets key; *out (may be NULL) receives its record. -ENOENT if key is not live. */
int gs__registry_remove(uint64_t key, gs_alloc_record *out);

/* Changes the category of a live key (bytes move between the per-category totals). */
int gs__registry_set_category(uint64_t key, gs_category cat);

/* Live and peak bytes on a device (0..GS_MAX_DEVICES-1 or GS_DEVICE_HOST); by category too. */
uint64_t gs__registry_live_bytes(int device);
uint64_t gs__registry_peak_bytes(int device);
uint64_t gs__registry_live_bytes_cat(int device, gs_category cat);
/* The largest peak over all devices (the stats JSON's live_bytes_peak). */
uint64_t gs__registry_peak_any(void);

/* Drops every record and zeroes the counters: the fork child, and tests. */
void gs__registry_reset(void);

#endif
