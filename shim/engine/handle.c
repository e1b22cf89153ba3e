/* handle.c: saved-tensor handles (capsules), the dedup table and their memory bookkeeping. */
#include "engine.h"

#include <stdlib.h>

#define GS__HANDLE_NAME "gactshim.handle"
#define GS__DEDUP_BUCKETS 8192u

/* Handles by source-tensor address. Global because PyTorch calls pack as a plain function; all
 * access happens under the GIL (pack, and capsule destructors), so it takes no lock. */
static gs_handle *gs__dedup[GS__DEDUP_BUCKETS];

/* Bytes of GPU saved tensors by category: atomics, since handles die on autograd threads too. */
static uint64_t gs__gpu_bytes[GS_CAT__COUNT];

static unsigned gs__bucket(uintptr_t key) {
  return (unsigned)((key >> 4) * 0x9E3779B97F4A7C15ull >> 51) & (GS__DEDUP_BUCKETS - 1);
}

static void gs__dedup_remove(gs_handle *h) {
  gs_handle **pp = &gs__dedup[gs__bucket(h->key)];
  while (*pp && *pp != h) pp = &(*pp)->next;
  if (*pp) *pp = h->next;
}

static void gs__account(gs_handle *h, bool add) {
  if (h->device >= 0) {
    if (add) __atomic_fetch_add(&gs__gpu_bytes[h->cat], h->held_bytes, __ATOMIC_RELAXED);
    else __atomic_fetch_sub(&gs__gpu_bytes[h->cat], h->held_bytes, __ATOMIC_RELAXED);
    gs__trace_carve(h->device, (gs_category)h->cat, h->held_bytes, add);
    return;
  }
  if (add) {
    gs_alloc_record rec = {.size = h->held_bytes, .time_ns = gs__now_ns(), .device = GS_DEVICE_HOST,
                           .kind = GS_KIND_SAVED, .category = (uint8_t)h->cat};
    /* -EEXIST: the same bytes are already held by another handle (a view): count them once. */
    h->registered = h->reg_key && gs__registry_insert(h->reg_key, &rec) == 0;
  } else if (h->registered) {
    gs__registry_remove(h->reg_key, NULL);
  }
}

static void gs__py_clear(PyObject **p) {
  if (*p) gs__py.Py_DecRef(*p);
  *p = NULL;
}

static void gs__handle_free(gs_handle *h) {
  gs__report_release(h);
  gs__py_clear(&h->data);
  gs__py_clear(&h->src_ref);
  gs__py_clear(&h->cache_ref);
  gs__py_clear(&h->size);
  gs__py_clear(&h->stride);
  gs__py_clear(&h->producer);
  free(h);
}

void gs__handle_discard(gs_handle *h) { gs__handle_free(h); }

static void gs__capsule_destroy(PyObject *cap) {
  gs_handle *h = gs__py.PyCapsule_GetPointer(cap, GS__HANDLE_NAME);
  if (h == NULL) {
    gs__py.PyErr_Clear();
    return;
  }
  gs__dedup_remove(h);
  gs__account(h, false);
  gs__plans_death(h);
  gs__handle_free(h);
}

PyObject *gs__handle_wrap(gs_handle *h, PyObject *src) {
  h->key = (uintptr_t)src;
  h->src_ref = gs__py.PyWeakref_NewRef(src, NULL);
  PyObject *cap = h->src_ref ? gs__py.PyCapsule_New(h, GS__HANDLE_NAME, gs__capsule_destroy) : NULL;
  if (cap == NULL) {
    gs__handle_free(h);
    return NULL;
  }
  h->capsule = cap;
  unsigned b = gs__bucket(h->key);
  h->next = gs__dedup[b];
  gs__dedup[b] = h;
  gs__account(h, true);
  return cap;
}

gs_handle *gs__handle_of(PyObject *obj) {
  if (!gs__py.PyCapsule_IsValid(obj, GS__HANDLE_NAME)) return NULL;
  return gs__py.PyCapsule_GetPointer(obj, GS__HANDLE_NAME);
}

PyObject *gs__handle_find(PyObject *src, int64_t version) {
  for (gs_handle *h = gs__dedup[gs__bucket((uintptr_t)src)]; h; h = h->next) {
    /* The address alone could be a new tensor in a dead one's place: the weakref says whether
     * the object we packed is still this one, and the version that it was not modified since. */
    if (h->key != (uintptr_t)src || h->version != version) continue;
    if (gs__py.PyWeakref_GetObject(h->src_ref) != src) continue;
    gs__py.Py_IncRef(h->capsule);
    return h->capsule;
  }
  return NULL;
}

uint64_t gs__handle_gpu_bytes(gs_category cat) {
  return (unsigned)cat < GS_CAT__COUNT ? __atomic_load_n(&gs__gpu_bytes[cat], __ATOMIC_RELAXED) : 0;
}
