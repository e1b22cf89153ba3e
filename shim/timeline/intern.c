/* intern.c: interned strings and saved-tensor attributions, written once each as STRING/ATTR. */
#include "timeline.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Producers (pack and unpack, under the GIL, and any other thread) look up and append under one
 * mutex: they come here only for an attribution, a few hundred nanoseconds at most, and the
 * engine caches what it can. Entries are append-only; `ready` is published with a release store
 * after an entry is complete, so the writer thread reads entries below it without the lock. */
#define GS_INTERN_STRINGS 16384u
#define GS_INTERN_ATTRS 65536u
#define GS_INTERN_STR_MAX 512u /* longer strings are cut (a module path, a file name) */

typedef struct gs__istr {
  char *s;
  uint32_t n;
} gs__istr;

/* The process's one table: every thread's attributions share the ids the trace names. */
static struct {
  pthread_mutex_t lock;
  gs__istr *strs;        /* by id; id 0 = none */
  uint32_t *str_slots;   /* hash of ids, 2x capacity */
  gs_rec_attr *attrs;    /* by id; id 0 = none */
  uint32_t *attr_slots;
  uint32_t nstr, nattr;  /* next ids (guarded by lock) */
  uint32_t str_ready, attr_ready; /* atomic: entries below are complete */
  uint32_t str_emitted, attr_emitted; /* writer thread only */
  bool failed;
} gs__in = {.lock = PTHREAD_MUTEX_INITIALIZER, .nstr = 1, .nattr = 1};

static uint64_t gs__fnv64(const void *p, size_t n, uint64_t h) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* Allocated on first use, under the lock: a job that is never attributed pays nothing. */
static bool gs__intern_ready_locked(void) {
  if (gs__in.strs) return true;
  if (gs__in.failed) return false;
  gs__in.strs = calloc(GS_INTERN_STRINGS, sizeof(gs__istr));
  gs__in.str_slots = calloc(2 * GS_INTERN_STRINGS, sizeof(uint32_t));
  gs__in.attrs = calloc(GS_INTERN_ATTRS, sizeof(gs_rec_attr));
  gs__in.attr_slots = calloc(2 * GS_INTERN_ATTRS, sizeof(uint32_t));
  if (gs__in.strs && gs__in.str_slots && gs__in.attrs && gs__in.attr_slots) return true;
  free(gs__in.strs), free(gs__in.str_slots), free(gs__in.attrs), free(gs__in.attr_slots);
  gs__in.strs = NULL;
  gs__in.failed = true;
  return false;
}

static uint32_t gs__intern_locked(const char *s, size_t n) {
  if (n > GS_INTERN_STR_MAX) n = GS_INTERN_STR_MAX;
  uint32_t mask = 2 * GS_INTERN_STRINGS - 1;
  uint32_t i = (uint32_t)gs__fnv64(s, n, 14695981039346656037ull) & mask;
  for (uint32_t id; (id = gs__in.str_slots[i]) != 0; i = (i + 1) & mask)
    if (gs__in.strs[id].n == n && memcmp(gs__in.strs[id].s, s, n) == 0) return id;
  if (gs__in.nstr >= GS_INTERN_STRINGS) return 0; /* full: unattributed from now on */
  char *copy = malloc(n + 1);
  if (!copy) return 0;
  memcpy(copy, s, n);
  copy[n] = '\0';
  uint32_t id = gs__in.nstr++;
  gs__in.strs[id] = (gs__istr){copy, (uint32_t)n};
  gs__in.str_slots[i] = id;
  __atomic_store_n(&gs__in.str_ready, gs__in.nstr, __ATOMIC_RELEASE);
  return id;
}

uint32_t gs__trace_intern(const char *s, size_t n) {
  if (!s) return 0;
  pthread_mutex_lock(&gs__in.lock);
  uint32_t id = gs__intern_ready_locked() ? gs__intern_locked(s, n) : 0;
  pthread_mutex_unlock(&gs__in.lock);
  return id;
}

uint32_t gs__trace_attr(const gs_rec_attr *key) {
  const uint32_t v[5] = {key->module, key->node, key->file, key->line, key->function};
  uint32_t mask = 2 * GS_INTERN_ATTRS - 1;
  uint32_t i = (uint32_t)gs__fnv64(v, sizeof(v), 14695981039346656037ull) & mask, id;
  pthread_mutex_lock(&gs__in.lock);
  if (!gs__intern_ready_locked()) goto none;
  for (; (id = gs__in.attr_slots[i]) != 0; i = (i + 1) & mask) {
    const gs_rec_attr *a = &gs__in.attrs[id];
    if (a->module == v[0] && a->node == v[1] && a->file == v[2] && a->line == v[3] && a->function == v[4])
      goto found;
  }
  if (gs__in.nattr >= GS_INTERN_ATTRS) goto none;
  id = gs__in.nattr++;
  gs__in.attrs[id] = *key;
  gs__in.attrs[id].id = id;
  gs__in.attrs[id].t = gs__now_ns();
  gs__in.attr_slots[i] = id;
  __atomic_store_n(&gs__in.attr_ready, gs__in.nattr, __ATOMIC_RELEASE);
found:
  pthread_mutex_unlock(&gs__in.lock);
  return id;
none:
  pthread_mutex_unlock(&gs__in.lock);
  return 0;
}

void gs__intern_emit(gs_intern_cb cb, void *arg) {
  uint32_t n = __atomic_load_n(&gs__in.str_ready, __ATOMIC_ACQUIRE);
  uint8_t rec[GS_REC_HDR_BYTES + GS_FMT_STRING_BYTES + GS_INTERN_STR_MAX];
  if (gs__in.str_emitted == 0) gs__in.str_emitted = 1;
  if (gs__in.attr_emitted == 0) gs__in.attr_emitted = 1;
  /* Strings first: an attribution names strings interned before it. */
  for (; gs__in.str_emitted < n; gs__in.str_emitted++) {
    const gs__istr *s = &gs__in.strs[gs__in.str_emitted];
    cb(rec, gs__tracefmt_put_string(rec, sizeof(rec), gs__now_ns(), gs__in.str_emitted, s->s, s->n), arg);
  }
  n = __atomic_load_n(&gs__in.attr_ready, __ATOMIC_ACQUIRE);
  for (; gs__in.attr_emitted < n; gs__in.attr_emitted++)
    cb(rec, gs__tracefmt_put_attr(rec, sizeof(rec), &gs__in.attrs[gs__in.attr_emitted]), arg);
}

void gs__intern_atfork_child(void) {
  /* Another thread may have held the lock at the fork: a fresh one. The tables stay (they hold
   * what this process saw); the child's new file gets every entry again. */
  pthread_mutex_init(&gs__in.lock, NULL);
  gs__in.str_emitted = gs__in.attr_emitted = 0;
}
