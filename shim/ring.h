/* ring.h: a bounded lock-free multi-producer, single-consumer queue of fixed-size trace events. */
#ifndef GS_RING_H
#define GS_RING_H

#include "common.h"

/* One trace event as the hot path hands it over: 56 bytes, so a slot with its sequence number is
 * one 64-byte cache line. Field use per type is listed in tools/TRACE-FORMAT.md. */
typedef struct gs_event {
  uint64_t t;        /* gs__now_ns() */
  uint8_t type;      /* gs_rec_type */
  uint8_t kind;      /* gs_alloc_kind, or the saved-tensor operation */
  uint8_t cat;       /* gs_category */
  uint8_t cat2;      /* new category (recategorize), bits (saved tensors) */
  int16_t device;
  uint16_t flags;
  uint32_t site;     /* call-site node id, 0 = none */
  uint32_t tid;
  uint64_t a, b, c, d;
} gs_event;

typedef struct gs_ring_slot {
  uint64_t seq;      /* the position this slot is ready for (see ring.c) */
  gs_event ev;
} gs_ring_slot;

typedef struct gs_ring {
  gs_ring_slot *slots;
  uint64_t mask;
  uint64_t head __attribute__((aligned(64)));  /* consumer position */
  uint64_t tail __attribute__((aligned(64)));  /* next producer position */
  uint64_t dropped __attribute__((aligned(64)));  /* pushes refused because the ring was full */
} gs_ring;

/* capacity is rounded up to a power of two (at least 64). 0 or -ENOMEM. */
int gs__ring_init(gs_ring *r, size_t capacity);
void gs__ring_free(gs_ring *r);

/* Any thread, never blocks: 0, or -ENOBUFS when full (the event is dropped and counted). */
int gs__ring_push(gs_ring *r, const gs_event *ev);

/* The consumer only: copies up to max events into out, returns how many. */
size_t gs__ring_pop(gs_ring *r, gs_event *out, size_t max);

/* Events currently queued (approximate under concurrency). */
size_t gs__ring_size(const gs_ring *r);

/* Empties the ring with no consumer running: the fork child, and tests. */
void gs__ring_reset(gs_ring *r);

#endif
