/* nonfinite.c: a GPU tensor with Inf/NaN or a huge-range group stays exact, decided without a sync. */
#include "engine.h"

#include <errno.h>

/* The CPU twin returns -ERANGE and pack keeps such a tensor exact. The GPU kernel cannot return
 * anything without a host sync, so (issue 14, defect 2) it publishes its count of flagged groups
 * to a word of pinned host memory (gs_codec_params.report, docs/codec-format.md) once it has
 * finished. Until that word says "ready, 0" the handle also holds the original tensor: unpack
 * returns the original while the count is unknown or non-zero, so nothing ever waits, and both
 * twins give the same result (the exact tensor). Pack polls the pending words and drops the
 * originals of clean tensors, so the memory is saved one pack later. */

#define GS__REPORT_WORDS 4096u

/* Process-wide because the pinned words are one allocation for the process: a torch int32 tensor
 * made by the first GPU pack and kept for the process's life, which handle waits on each word,
 * and how many do. Touched under the GIL only (pack, unpack, handle destruction). */
static PyObject *gs__report_tensor;
static volatile uint32_t *gs__report_words;
static gs_handle *gs__report_owner[GS__REPORT_WORDS];
/* Owner markers: taken for a launch not yet attached; orphaned by a handle that died before its
 * kernel reported (the kernel may still write the word, so it is not reused until it has). */
static gs_handle gs__report_marks[2];
#define GS__REPORT_TAKEN (&gs__report_marks[0])
#define GS__REPORT_ORPHAN (&gs__report_marks[1])
static unsigned gs__report_busy, gs__report_hint;

/* torch.empty(GS__REPORT_WORDS, dtype=torch.int32, pin_memory=True): pinned host memory, which
 * under unified addressing (every GPU the kernels run on) the device writes at the same address. */
static int gs__report_alloc(void) {
  PyObject *empty = gs__py.PyObject_GetAttrString(gs__torch.torch, "empty");
  PyObject *i32 = gs__py.PyObject_GetAttrString(gs__torch.torch, "int32");
  PyObject *kw = gs__py.PyDict_New(), *args = gs__py.PyTuple_New(1), *t = NULL;
  if (empty && i32 && kw && args && gs__py.PyDict_SetItemString(kw, "dtype", i32) == 0 &&
      gs__py.PyDict_SetItemString(kw, "pin_memory", gs__py.py_true) == 0) {
    gs__py.PyTuple_SetItem(args, 0, gs__py.PyLong_FromLongLong(GS__REPORT_WORDS));
    t = gs__py.PyObject_Call(empty, args, kw);
  }
  PyObject *objs[] = {empty, i32, kw, args};
  for (unsigned i = 0; i < 4; i++)
    if (objs[i]) gs__py.Py_DecRef(objs[i]);
  uint64_t ptr = t ? gs__torch_data_ptr(t) : 0;
  if (ptr == 0) {
    if (t) gs__py.Py_DecRef(t);
    if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
    return -ENOMEM;
  }
  gs__report_tensor = t;
  gs__report_words = (volatile uint32_t *)(uintptr_t)ptr;
  return 0;
}

bool gs__report_allocated(void) { return gs__report_words != NULL; }

int gs__report_take(uint64_t *addr) {
  if (gs__report_words == NULL && gs__report_alloc() != 0) return -ENOMEM;
  if (gs__report_busy == GS__REPORT_WORDS) gs__report_poll();
  for (unsigned n = 0; n < GS__REPORT_WORDS; n++) {
    unsigned i = (gs__report_hint + n) % GS__REPORT_WORDS;
    if (gs__report_owner[i] != NULL) continue;
    gs__report_owner[i] = GS__REPORT_TAKEN;
    gs__report_busy++;
    gs__report_hint = i + 1;
    gs__report_words[i] = 0; /* a plain store, done before the launch that overwrites it */
    *addr = (uint64_t)(uintptr_t)&gs__report_words[i];
    return (int)i;
  }
  return -ENOSPC; /* every word is waited on: the caller keeps the tensor exact */
}

void gs__report_give_back(int word) {
  if (word < 0 || (unsigned)word >= GS__REPORT_WORDS || gs__report_owner[word] == NULL) return;
  gs__report_owner[word] = NULL;
  gs__report_busy--;
}

void gs__report_abandon(int word) {
  if (word >= 0 && (unsigned)word < GS__REPORT_WORDS) gs__report_owner[word] = GS__REPORT_ORPHAN;
}

void gs__report_attach(gs_handle *h, int word, PyObject *orig) {
  h->orig = orig;
  h->report = (uint32_t)word + 1;
  gs__report_owner[word] = h;
}

/* The word's verdict for h: 0 still running, 1 clean (the original is dropped), 2 non-finite
 * (the handle becomes a kept one: the original replaces the compressed buffer). */
int gs__report_settle(gs_handle *h) {
  if (h->report == 0) return h->orig ? 2 : 1;
  unsigned word = h->report - 1;
  uint32_t v = gs__report_words[word];
  if (!(v & GS_CODEC_REPORT_READY)) return 0;
  h->report = 0;
  gs__report_give_back((int)word);
  if ((v & ~GS_CODEC_REPORT_READY) == 0) {
    gs__py.Py_DecRef(h->orig);
    h->orig = NULL;
    return 1;
  }
  gs__warn_once("nonfinite", "a saved tensor holds Inf or NaN; such tensors are kept exact");
  gs__stat_skip(GS_SKIP_NONFINITE);
  /* Accounting keeps the handle's category and bytes: counters say "compressed" for it until it
   * dies, while the original (not the small buffer) is what it holds. */
  gs__py.Py_DecRef(h->data);
  h->data = h->orig;
  h->orig = NULL;
  h->compressed = false;
  return 2;
}

void gs__report_poll(void) {
  unsigned left = gs__report_busy; /* stop once every busy word was seen */
  for (unsigned i = 0; i < GS__REPORT_WORDS && left > 0; i++) {
    gs_handle *h = gs__report_owner[i];
    left -= h != NULL;
    if (h == GS__REPORT_ORPHAN && (gs__report_words[i] & GS_CODEC_REPORT_READY))
      gs__report_give_back((int)i);
    else if (h != NULL && h != GS__REPORT_TAKEN && h != GS__REPORT_ORPHAN)
      gs__report_settle(h);
  }
}

void gs__report_release(gs_handle *h) {
  if (h->report) {
    unsigned word = h->report - 1;
    if (gs__report_words[word] & GS_CODEC_REPORT_READY) gs__report_give_back((int)word);
    else gs__report_owner[word] = GS__REPORT_ORPHAN;
  }
  h->report = 0;
  if (h->orig) gs__py.Py_DecRef(h->orig);
  h->orig = NULL;
}
