/* callsite.c: stack capture (libunwind loaded lazily) and a lock-free prefix tree of call sites. */
#include "timeline.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

/* A node is (parent, ip). Nodes live in an array indexed by id; a hash table of ids finds the
 * child of a parent for an ip. A thread adding a node takes a fresh id, fills the node, marks it
 * ready, then publishes the id into an empty hash slot with a CAS. If another thread published
 * the same (parent, ip) first, the lookup continues to that one and our id stays an orphan: a
 * ready node nothing names, harmless. Readers never wait, and the writer thread emits nodes in id
 * order as soon as they are ready, each exactly once. */
typedef struct gs__node {
  uint64_t ip;
  uint32_t parent;
  uint32_t ready;
} gs__node;

typedef int (*gs__unw_fn)(void **, int);

/* The process's one tree: every thread's allocations share it so that a path gets one id. */
static struct {
  gs__node *nodes;
  uint32_t *slots;      /* hash table of ids, 0 = empty */
  uint32_t max_nodes;
  uint32_t slot_mask;
  uint32_t next_id;
  unsigned depth;
  uint64_t dropped;
  gs__unw_fn unwind;
  const char *unwinder;
  uintptr_t self_lo, self_hi; /* the shim's own mapping: its frames are skipped */
} gs__t;

static uint32_t gs__hash(uint32_t parent, uint64_t ip) {
  uint64_t h = (ip ^ ((uint64_t)parent << 40)) * 0x9e3779b97f4a7c15ull;
  return (uint32_t)(h >> 32);
}

static int gs__find_self(struct dl_phdr_info *info, size_t size, void *data) {
  uintptr_t me = (uintptr_t)data;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (me >= lo && me < hi) {
      gs__t.self_lo = lo;
      gs__t.self_hi = hi;
      return 1;
    }
  }
  return 0;
}

/* libunwind is optional: the GPU machine may lack it, so it is loaded if present, not linked. */
static void gs__load_unwinder(void) {
  void *h = NULL;
#if !defined(__SANITIZE_THREAD__)
  /* Under TSan, libunwind (not instrumented) crashes in its thread-exit destructor: glibc's then. */
  h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
#endif
  if (h) gs__t.unwind = (gs__unw_fn)dlsym(h, "unw_backtrace");
  if (gs__t.unwind) {
    gs__t.unwinder = "libunwind";
    return;
  }
  gs__t.unwind = backtrace;
  gs__t.unwinder = "glibc";
  void *warm[4];
  backtrace(warm, 4); /* its first call loads libgcc_s: do that now, not in a hook */
}

int gs__sites_init(uint32_t max_nodes, unsigned depth, bool skip_own) {
  if (gs__t.nodes) return 0;
  if (max_nodes < 16) max_nodes = 16;
  uint32_t slots = 1;
  while (slots < max_nodes * 2u) slots <<= 1;
  gs__t.nodes = calloc(max_nodes, sizeof(gs__node));
  gs__t.slots = calloc(slots, sizeof(uint32_t));
  if (!gs__t.nodes || !gs__t.slots) {
    gs__sites_fini();
    return -ENOMEM;
  }
  gs__t.max_nodes = max_nodes;
  gs__t.slot_mask = slots - 1;
  gs__t.next_id = 1;
  gs__t.depth = depth < 1 ? 1 : depth > GS_SITES_MAX_DEPTH ? GS_SITES_MAX_DEPTH : depth;
  if (skip_own) dl_iterate_phdr(gs__find_self, (void *)(uintptr_t)gs__find_self);
  gs__load_unwinder();
  return 0;
}

void gs__sites_fini(void) {
  free(gs__t.nodes);
  free(gs__t.slots);
  memset(&gs__t, 0, sizeof(gs__t));
}

/* The child of parent for ip: its id, or a new node, or 0 when the tree is full. */
static uint32_t gs__child(uint32_t parent, uint64_t ip) {
  uint32_t mine = 0;
  for (uint32_t i = gs__hash(parent, ip), probes = 0; probes <= gs__t.slot_mask; i++, probes++) {
    uint32_t *slot = &gs__t.slots[i & gs__t.slot_mask];
    uint32_t id = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (id == 0) {
      if (!mine) {
        mine = __atomic_fetch_add(&gs__t.next_id, 1, __ATOMIC_RELAXED);
        if (mine >= gs__t.max_nodes) return 0;
        gs__t.nodes[mine].ip = ip;
        gs__t.nodes[mine].parent = parent;
        __atomic_store_n(&gs__t.nodes[mine].ready, 1, __ATOMIC_RELEASE);
      }
      if (__atomic_compare_exchange_n(slot, &id, mine, false, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
        return mine;
    }
    const gs__node *n = &gs__t.nodes[id];
    if (n->ip == ip && n->parent == parent) return id;
  }
  return 0;
}

uint32_t gs__sites_insert(const uint64_t *ips, unsigned n) {
  if (!gs__t.nodes) return 0;
  uint32_t node = 0;
  for (unsigned i = n; i-- > 0;) {
    uint32_t child = gs__child(node, ips[i]);
    if (!child) {
      __atomic_fetch_add(&gs__t.dropped, 1, __ATOMIC_RELAXED);
      break;
    }
    node = child;
  }
  return node;
}

uint32_t gs__sites_capture(void) {
  if (!gs__t.unwind) return 0;
  void *raw[GS_SITES_MAX_DEPTH + 16];
  int n = gs__t.unwind(raw, (int)(gs__t.depth + 16));
  uint64_t ips[GS_SITES_MAX_DEPTH];
  unsigned k = 0;
  for (int i = 0; i < n && k < gs__t.depth; i++) {
    uintptr_t ip = (uintptr_t)raw[i];
    if (ip >= gs__t.self_lo && ip < gs__t.self_hi) continue;
    ips[k++] = ip;
  }
  return k ? gs__sites_insert(ips, k) : 0;
}

int gs__sites_get(uint32_t id, uint32_t *parent, uint64_t *ip) {
  if (!gs__t.nodes || id == 0 || id >= gs__t.max_nodes) return 0;
  if (!__atomic_load_n(&gs__t.nodes[id].ready, __ATOMIC_ACQUIRE)) return 0;
  *parent = gs__t.nodes[id].parent;
  *ip = gs__t.nodes[id].ip;
  return 1;
}

uint32_t gs__sites_next_id(void) {
  uint32_t n = __atomic_load_n(&gs__t.next_id, __ATOMIC_RELAXED);
  return n > gs__t.max_nodes ? gs__t.max_nodes : n;
}

uint64_t gs__sites_dropped(void) { return __atomic_load_n(&gs__t.dropped, __ATOMIC_RELAXED); }

const char *gs__sites_unwinder(void) { return gs__t.unwinder ? gs__t.unwinder : "none"; }
