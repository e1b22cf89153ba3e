/* registry.c: live allocations (key -> record) in 64 locked shards, and live/peak bytes counters. */
#include "registry.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define GS__SHARDS 64
#define GS__SHARD_BITS 6
#define GS__MIN_CAP 64u

typedef struct gs__slot {
  uint64_t key; /* 0 = empty */
  gs_alloc_record rec;
} gs__slot;

/* One shard: a spinlock (held for a few dozen instructions; calloc only when the table doubles)
 * and a linear-probing table with backward-shift deletion, so there are no tombstones to clean.
 * The allocation counters live here, written under the lock (relaxed stores, read without it):
 * process-wide atomics were three locked instructions per alloc+free pair on the hot path. */
typedef struct gs__shard {
  int lock;
  uint32_t count;
  uint32_t cap; /* a power of two, or 0 before the first insert */
  gs__slot *slots;
  uint64_t allocs, frees, alloc_bytes;
} __attribute__((aligned(64))) gs__shard;

/* The registry is process-wide by nature: every hook in every thread records here. */
static gs__shard gs__shards[GS__SHARDS];

/* Byte counters, global for the same reason; relaxed atomics, peaks raised by CAS only when the
 * live figure exceeds them. */
static uint64_t gs__live[GS_DEVICE_SLOTS], gs__peak[GS_DEVICE_SLOTS];
static uint64_t gs__live_cat[GS_DEVICE_SLOTS][GS_CAT__COUNT], gs__peak_cat[GS_DEVICE_SLOTS][GS_CAT__COUNT];
static uint64_t gs__untracked, gs__failed;

/* Who is told of changes. Written before the hooks run (the constructor), read-only afterwards;
 * global because the registry itself is. */
static const gs_registry_observer *gs__observers[GS_REGISTRY_OBSERVERS_MAX];
static int gs__nobservers;

int gs__registry_observe(const gs_registry_observer *o) {
  if (gs__nobservers == GS_REGISTRY_OBSERVERS_MAX) return -ENOSPC;
  gs__observers[gs__nobservers++] = o;
  return 0;
}

void gs__registry_observe_none(void) { gs__nobservers = 0; }

#define GS__TELL(member, ...)                                                    \
  for (int i_ = 0; i_ < gs__nobservers; i_++)                                  \
    if (gs__observers[i_]->member) gs__observers[i_]->member(__VA_ARGS__)

void gs__registry_note_oom(uint64_t size, int device, int result) { GS__TELL(on_oom, size, device, result); }

static inline void gs__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void gs__lock_slow(int *l) {
  unsigned spins = 0;
  do {
    while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
      /* A hold lasts a few dozen instructions, so a lock still held after a few pauses most
       * likely has a preempted holder (oversubscribed jobs): give it the core. Spinning longer
       * doubled the 4-thread cost on a 2-core machine. */
      if (++spins > 16) sched_yield();
      else gs__cpu_relax();
    }
  } while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE));
}

static inline void gs__lock(int *l) {
  if (gs__unlikely(__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))) gs__lock_slow(l);
}

static inline void gs__unlock(int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

/* Adds d (wrapping: -1 subtracts) to a shard counter; the caller holds the shard's lock. */
static inline void gs__count(uint64_t *c, uint64_t d) { __atomic_store_n(c, *c + d, __ATOMIC_RELAXED); }

static inline uint64_t gs__mix(uint64_t key) {
  uint64_t h = key * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

static inline gs__shard *gs__shard_of(uint64_t key) {
  return &gs__shards[(key * 0x9e3779b97f4a7c15ull) >> (64 - GS__SHARD_BITS)];
}

static inline uint32_t gs__home(uint64_t key, uint32_t cap) { return (uint32_t)gs__mix(key) & (cap - 1); }

/* Index of key in the shard, or -1. */
static int64_t gs__find(const gs__shard *s, uint64_t key) {
  if (s->cap == 0) return -1;
  uint32_t mask = s->cap - 1;
  for (uint32_t i = gs__home(key, s->cap);; i = (i + 1) & mask) {
    if (s->slots[i].key == key) return i;
    if (s->slots[i].key == 0) return -1;
  }
}

static void gs__place(gs__slot *slots, uint32_t cap, const gs__slot *e) {
  uint32_t i = gs__home(e->key, cap);
  while (slots[i].key != 0) i = (i + 1) & (cap - 1);
  slots[i] = *e;
}

/* Doubles the table (or creates it). Called with the shard locked. */
static int gs__grow(gs__shard *s) {
  uint32_t cap = s->cap ? s->cap * 2 : GS__MIN_CAP;
  if (cap == 0) return -ENOMEM;
  gs__slot *slots = calloc(cap, sizeof(*slots));
  if (slots == NULL) return -ENOMEM;
  for (uint32_t i = 0; i < s->cap; i++)
    if (s->slots[i].key) gs__place(slots, cap, &s->slots[i]);
  free(s->slots);
  s->slots = slots;
  s->cap = cap;
  return 0;
}

/* Removes slot i, shifting later members of its probe run back so lookups stay correct. */
static void gs__erase(gs__shard *s, uint32_t i) {
  uint32_t mask = s->cap - 1, j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (s->slots[j].key == 0) break;
    uint32_t k = gs__home(s->slots[j].key, s->cap);
    bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    s->slots[i] = s->slots[j];
    i = j;
  }
  s->slots[i].key = 0;
  s->count--;
}

static void gs__peak_raise(uint64_t *peak, uint64_t live) {
  uint64_t cur = __atomic_load_n(peak, __ATOMIC_RELAXED);
  while (live > cur &&
         !__atomic_compare_exchange_n(peak, &cur, live, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

/* Bytes in GS_CAT_OTHER are not counted separately: they are the device's live bytes minus the
 * other categories, which change rarely. Most allocations are OTHER, so the common path touches
 * one contended counter instead of two. */
static uint64_t gs__other_live(int dev, uint64_t live) {
  for (int c = 0; c < GS_CAT__COUNT; c++)
    if (c != GS_CAT_OTHER) live -= __atomic_load_n(&gs__live_cat[dev][c], __ATOMIC_RELAXED);
  return live;
}

static void gs__account_add(int dev, int cat, uint64_t n) {
  uint64_t live = __atomic_add_fetch(&gs__live[dev], n, __ATOMIC_RELAXED);
  gs__peak_raise(&gs__peak[dev], live);
  if (cat == GS_CAT_OTHER) {
    gs__peak_raise(&gs__peak_cat[dev][GS_CAT_OTHER], gs__other_live(dev, live));
    return;
  }
  gs__peak_raise(&gs__peak_cat[dev][cat], __atomic_add_fetch(&gs__live_cat[dev][cat], n, __ATOMIC_RELAXED));
}

static void gs__account_sub(int dev, int cat, uint64_t n) {
  __atomic_sub_fetch(&gs__live[dev], n, __ATOMIC_RELAXED);
  if (cat != GS_CAT_OTHER) __atomic_sub_fetch(&gs__live_cat[dev][cat], n, __ATOMIC_RELAXED);
}

static bool gs__valid_dev(int d) { return d >= 0 && d < GS_DEVICE_SLOTS; }

/* Records key; a new allocation is counted, an undone free (undo) takes its free back. */
static int gs__insert(uint64_t key, const gs_alloc_record *rec, bool undo) {
  if (key == 0 || rec == NULL || !gs__valid_dev(rec->device) || rec->kind >= GS_KIND__COUNT ||
      rec->category >= GS_CAT__COUNT) {
    __atomic_add_fetch(&gs__failed, 1, __ATOMIC_RELAXED);
    return -EINVAL;
  }
  gs__shard *s = gs__shard_of(key);
  int rc = -EEXIST;
  gs__lock(&s->lock);
  /* Grow before probing, so one probe finds either the key or the empty slot to fill. */
  if ((uint64_t)(s->count + 1) * 4 > (uint64_t)s->cap * 3 && gs__grow(s) != 0 && s->count + 1 >= s->cap) {
    rc = -ENOMEM; /* could not grow and no room left: keep one slot empty so probes end */
  } else {
    uint32_t mask = s->cap - 1;
    for (uint32_t i = gs__home(key, s->cap);; i = (i + 1) & mask) {
      if (s->slots[i].key == key) break;
      if (s->slots[i].key == 0) {
        s->slots[i].key = key;
        s->slots[i].rec = *rec;
        s->count++;
        if (undo) {
          gs__count(&s->frees, (uint64_t)-1);
        } else {
          gs__count(&s->allocs, 1);
          gs__count(&s->alloc_bytes, rec->size);
        }
        rc = 0;
        break;
      }
    }
  }
  gs__unlock(&s->lock);
  if (rc != 0) {
    __atomic_add_fetch(&gs__failed, 1, __ATOMIC_RELAXED);
    return rc;
  }
  gs__account_add(rec->device, rec->category, rec->size);
  GS__TELL(on_alloc, key, rec);
  return 0;
}

int gs__registry_insert(uint64_t key, const gs_alloc_record *rec) { return gs__insert(key, rec, false); }

int gs__registry_remove(uint64_t key, gs_alloc_record *out) {
  gs__shard *s = gs__shard_of(key);
  gs_alloc_record rec;
  gs__lock(&s->lock);
  int64_t i = gs__find(s, key);
  if (i >= 0) {
    rec = s->slots[i].rec;
    gs__erase(s, (uint32_t)i);
    gs__count(&s->frees, 1);
  }
  gs__unlock(&s->lock);
  if (i < 0) {
    __atomic_add_fetch(&gs__untracked, 1, __ATOMIC_RELAXED);
    return -ENOENT;
  }
  gs__account_sub(rec.device, rec.category, rec.size);
  GS__TELL(on_free, key, &rec);
  if (out) *out = rec;
  return 0;
}

void gs__registry_undo_remove(uint64_t key, const gs_alloc_record *rec) { (void)gs__insert(key, rec, true); }

int gs__registry_set_category(uint64_t key, gs_category cat) {
  if ((unsigned)cat >= GS_CAT__COUNT) return -EINVAL;
  gs__shard *s = gs__shard_of(key);
  gs__lock(&s->lock);
  int64_t i = gs__find(s, key);
  gs_alloc_record old;
  if (i >= 0) {
    old = s->slots[i].rec;
    s->slots[i].rec.category = (uint8_t)cat;
    /* Moved under the lock, so a concurrent remove of the key sees the new category. */
    if (old.category != GS_CAT_OTHER)
      __atomic_sub_fetch(&gs__live_cat[old.device][old.category], old.size, __ATOMIC_RELAXED);
    if (cat != GS_CAT_OTHER)
      gs__peak_raise(&gs__peak_cat[old.device][cat],
                     __atomic_add_fetch(&gs__live_cat[old.device][cat], old.size, __ATOMIC_RELAXED));
    else
      gs__peak_raise(&gs__peak_cat[old.device][cat],
                     gs__other_live(old.device, __atomic_load_n(&gs__live[old.device], __ATOMIC_RELAXED)));
  }
  gs__unlock(&s->lock);
  if (i >= 0) GS__TELL(on_recat, key, &old, cat);
  return i >= 0 ? 0 : -ENOENT;
}

static uint64_t gs__get(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

uint64_t gs__registry_live_bytes(int d) { return gs__valid_dev(d) ? gs__get(&gs__live[d]) : 0; }
uint64_t gs__registry_peak_bytes(int d) { return gs__valid_dev(d) ? gs__get(&gs__peak[d]) : 0; }

uint64_t gs__registry_live_bytes_cat(int d, gs_category c) {
  if (!gs__valid_dev(d) || (unsigned)c >= GS_CAT__COUNT) return 0;
  return c == GS_CAT_OTHER ? gs__other_live(d, gs__get(&gs__live[d])) : gs__get(&gs__live_cat[d][c]);
}

uint64_t gs__registry_peak_bytes_cat(int d, gs_category c) {
  return gs__valid_dev(d) && (unsigned)c < GS_CAT__COUNT ? gs__get(&gs__peak_cat[d][c]) : 0;
}

uint64_t gs__registry_peak_any(void) {
  uint64_t m = 0;
  for (int d = 0; d < GS_DEVICE_SLOTS; d++)
    if (gs__get(&gs__peak[d]) > m) m = gs__get(&gs__peak[d]);
  return m;
}

uint64_t gs__registry_live_total(void) {
  uint64_t t = 0;
  for (int d = 0; d < GS_DEVICE_SLOTS; d++) t += gs__get(&gs__live[d]);
  return t;
}

gs_registry_counts gs__registry_counts(void) {
  gs_registry_counts c = {0};
  for (int i = 0; i < GS__SHARDS; i++) {
    c.allocs += gs__get(&gs__shards[i].allocs);
    c.frees += gs__get(&gs__shards[i].frees);
    c.alloc_bytes += gs__get(&gs__shards[i].alloc_bytes);
  }
  return c;
}

uint64_t gs__registry_untracked_frees(void) { return gs__get(&gs__untracked); }
uint64_t gs__registry_failures(void) { return gs__get(&gs__failed); }

void gs__registry_reset(void) {
  for (int i = 0; i < GS__SHARDS; i++) {
    gs__shard *s = &gs__shards[i];
    /* In a fork child another thread may have held the lock at fork time: take it over. */
    __atomic_store_n(&s->lock, 0, __ATOMIC_RELAXED);
    free(s->slots);
    s->slots = NULL;
    s->cap = 0;
    s->count = 0;
    s->allocs = s->frees = s->alloc_bytes = 0;
  }
  memset(gs__live, 0, sizeof(gs__live));
  memset(gs__peak, 0, sizeof(gs__peak));
  memset(gs__live_cat, 0, sizeof(gs__live_cat));
  memset(gs__peak_cat, 0, sizeof(gs__peak_cat));
  gs__untracked = 0;
  gs__failed = 0;
}
