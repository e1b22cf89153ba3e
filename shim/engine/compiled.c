/* compiled.c: the saved activations of torch.compile'd graphs, which reach pack without grad_fn. */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>

/* A compiled graph's forward runs inside one autograd.Function: the tensors it saves, activations
 * and graph inputs alike, have no grad_fn, so the facts alone keep them all exact as parameters
 * (nothing of a compiled MLP was compressed) and cannot tell a ReLU output (whose backward reads
 * only its sign) from any other. The bootstrap (gactshim_compiled.py) reads the forward graph when
 * it is compiled and, once each compiled forward has saved its tensors, names its intermediates
 * here with the GS_PRODUCER_* flags of the op that made them, just before autograd packs them.
 * Graph inputs (parameters, frozen weights, the batch) and their casts and views are not named:
 * they stay kept, as in eager mode. */

/* What a name may carry: the producer rules that hold for an intermediate. */
#define GS__COMPILED_FLAGS (GS_PRODUCER_SENSITIVE | GS_PRODUCER_RELU | GS_PRODUCER_SDPA)

typedef struct gs__compiled_entry {
  PyObject *ref;  /* owned weakref to the saved tensor: once it dies, nothing matches it */
  unsigned flags; /* GS_PRODUCER_* */
} gs__compiled_entry;

/* The names of this thread's last compiled forward: autograd packs what a forward saved in the
 * thread that ran it, right after it. Per thread, so two threads' forwards do not mix; the next
 * forward's names replace them (weak references: a name never keeps an activation alive). A
 * thread's names are dropped when its Python code ends (gs__compiled_forget, from the bootstrap's
 * thread wrapper): later, Python may be gone. */
static __thread gs__compiled_entry *gs__names;
static __thread size_t gs__nnames, gs__cap;

static void gs__names_clear(void) {
  for (size_t i = 0; i < gs__nnames; i++) gs__py.Py_DecRef(gs__names[i].ref);
  gs__nnames = 0;
}

static int gs__names_reserve(size_t n) {
  if (n <= gs__cap) return 0;
  gs__compiled_entry *grown = realloc(gs__names, n * sizeof(*grown));
  if (grown == NULL) return -ENOMEM;
  gs__names = grown;
  gs__cap = n;
  return 0;
}

/* Adds tensor t with flags (a Python int): 0, or -1 with a Python error set. */
static int gs__names_add(PyObject *t, PyObject *flags) {
  long long fl = gs__py.PyLong_AsLongLong(flags);
  if (fl == -1 && gs__py.PyErr_Occurred()) return -1;
  PyObject *ref = gs__py.PyWeakref_NewRef(t, NULL);
  if (ref == NULL) return -1;
  gs__names[gs__nnames].ref = ref;
  gs__names[gs__nnames].flags = (unsigned)fl & GS__COMPILED_FLAGS;
  gs__nnames++;
  return 0;
}

int gs__compiled_name(PyObject *tensors, PyObject *flags) {
  gs__names_clear();
  Py_ssize_t n = gs__py.PyTuple_Size(tensors);
  if (n < 0 || gs__py.PyTuple_Size(flags) != n) {
    if (!gs__py.PyErr_Occurred())
      gs__py.PyErr_SetString(gs__py.exc_type, "compiled_saved: (tensors, flags) of one length");
    return -1;
  }
  if (gs__names_reserve((size_t)n) != 0) return 0; /* no memory: unnamed, kept exact */
  for (Py_ssize_t i = 0; i < n; i++)
    if (gs__names_add(gs__py.PyTuple_GetItem(tensors, i), gs__py.PyTuple_GetItem(flags, i)) != 0)
      return -1;
  return 0;
}

void gs__compiled_forget(void) {
  gs__names_clear();
  free(gs__names);
  gs__names = NULL;
  gs__cap = 0;
}

bool gs__compiled_lookup(PyObject *t, unsigned *flags) {
  for (size_t i = 0; i < gs__nnames; i++) {
    if (gs__py.PyWeakref_GetObject(gs__names[i].ref) == t) {
      *flags = gs__names[i].flags;
      return true;
    }
  }
  return false;
}
