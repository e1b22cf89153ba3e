/* ring.c: bounded lock-free MPSC event queue (per-slot sequence numbers, one CAS per push). */
#include "timeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Each slot carries the position it may next be used for. A producer owns position p once it
 * has advanced tail from p with a CAS while slot[p & mask].seq == p; it then writes the event and
 * publishes it with seq = p + 1. The consumer reads slot[head] once seq == head + 1 and hands it
 * back for the next lap with seq = head + capacity. A slot still holding an unread event from the
 * previous lap (seq < p) means the ring is full: the push fails instead of waiting, so a hook
 * never blocks on a slow writer thread. */

int gs__ring_init(gs_ring *r, size_t capacity) {
  size_t cap = 64;
  while (cap < capacity) cap <<= 1;
  memset(r, 0, sizeof(*r));
  r->slots = aligned_alloc(64, cap * sizeof(gs_ring_slot));
  if (!r->slots) return -ENOMEM;
  r->mask = cap - 1;
  gs__ring_reset(r);
  return 0;
}

void gs__ring_free(gs_ring *r) {
  free(r->slots);
  r->slots = NULL;
}

void gs__ring_reset(gs_ring *r) {
  for (uint64_t i = 0; i <= r->mask; i++) __atomic_store_n(&r->slots[i].seq, i, __ATOMIC_RELAXED);
  __atomic_store_n(&r->head, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&r->tail, 0, __ATOMIC_RELEASE);
}

int gs__ring_push(gs_ring *r, const gs_event *ev) {
  uint64_t pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
  for (;;) {
    gs_ring_slot *s = &r->slots[pos & r->mask];
    uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    int64_t diff = (int64_t)(seq - pos);
    if (diff == 0) {
      if (__atomic_compare_exchange_n(&r->tail, &pos, pos + 1, true, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
        s->ev = *ev;
        __atomic_store_n(&s->seq, pos + 1, __ATOMIC_RELEASE);
        return 0;
      }
      /* pos was reloaded by the failed CAS: try the new tail. */
    } else if (diff < 0) {
      __atomic_fetch_add(&r->dropped, 1, __ATOMIC_RELAXED);
      return -ENOBUFS;
    } else {
      pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
    }
  }
}

size_t gs__ring_pop(gs_ring *r, gs_event *out, size_t max) {
  size_t n = 0;
  uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
  while (n < max) {
    gs_ring_slot *s = &r->slots[head & r->mask];
    if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != head + 1) break;
    out[n++] = s->ev;
    __atomic_store_n(&s->seq, head + r->mask + 1, __ATOMIC_RELEASE);
    head++;
  }
  __atomic_store_n(&r->head, head, __ATOMIC_RELAXED);
  return n;
}
