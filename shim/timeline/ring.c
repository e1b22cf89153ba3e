/* ring.c: bounded lock-free MPSC event queue (per-slot sequence numbers, one CAS per push). */
#include "timeline.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Each slot carries the position it may next be used for. A producer owns position p once it
 * has advanced tail from p with a CAS while slot[p & mask] is ready for p; it then writes the
 * event and publishes it as ready for p + 1. The consumer reads slot[head] once it is ready for
 * head + 1 and hands it back for the next lap, ready for head + capacity. A slot still holding an
 * unread event from the previous lap (ready for less than p) means the ring is full: the push
 * fails instead of waiting, so a hook never blocks on a slow writer thread.
 *
 * A slot stores that position minus its own index, so a fresh ring is all zeros: the slots are an
 * anonymous mapping whose pages the kernel backs only when first written. The default ring is
 * 4 MiB; a job that queues few events (a CPU job sees no device allocations) no longer carries it
 * all in its resident memory, and gs__ring_reset gives the pages back instead of rewriting them. */

static size_t gs__ring_bytes(const gs_ring *r) { return (size_t)(r->mask + 1) * sizeof(gs_ring_slot); }

/* The position slot i (= pos & mask) is ready for. */
static inline uint64_t gs__ready(const gs_ring *r, uint64_t i, int order) {
  return __atomic_load_n(&r->slots[i].seq, order) + i;
}

static inline void gs__set_ready(gs_ring *r, uint64_t i, uint64_t pos) {
  __atomic_store_n(&r->slots[i].seq, pos - i, __ATOMIC_RELEASE);
}

int gs__ring_init(gs_ring *r, size_t capacity) {
  size_t cap = 64;
  while (cap < capacity) cap <<= 1;
  memset(r, 0, sizeof(*r));
  r->mask = cap - 1;
  void *p = mmap(NULL, gs__ring_bytes(r), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -ENOMEM;
  r->slots = p; /* page-aligned, so each slot is one cache line */
  return 0;
}

void gs__ring_free(gs_ring *r) {
  if (r->slots) munmap(r->slots, gs__ring_bytes(r));
  r->slots = NULL;
}

void gs__ring_reset(gs_ring *r) {
  /* A private anonymous mapping reads as zeros after MADV_DONTNEED: every slot ready for its lap 0. */
  if (madvise(r->slots, gs__ring_bytes(r), MADV_DONTNEED) != 0) memset(r->slots, 0, gs__ring_bytes(r));
  __atomic_store_n(&r->head, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&r->tail, 0, __ATOMIC_RELEASE);
}

int gs__ring_push(gs_ring *r, const gs_event *ev) {
  uint64_t pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
  for (;;) {
    uint64_t i = pos & r->mask;
    int64_t diff = (int64_t)(gs__ready(r, i, __ATOMIC_ACQUIRE) - pos);
    if (diff == 0) {
      if (__atomic_compare_exchange_n(&r->tail, &pos, pos + 1, true, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
        r->slots[i].ev = *ev;
        gs__set_ready(r, i, pos + 1);
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
    uint64_t i = head & r->mask;
    if (gs__ready(r, i, __ATOMIC_ACQUIRE) != head + 1) break;
    out[n++] = r->slots[i].ev;
    gs__set_ready(r, i, head + r->mask + 1);
    head++;
  }
  __atomic_store_n(&r->head, head, __ATOMIC_RELAXED);
  return n;
}
