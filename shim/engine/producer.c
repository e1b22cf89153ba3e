/* producer.c: which op produced a saved tensor (grad_fn type), and whether it is a sensitive one. */
#include "engine.h"

#include <string.h>

#define GS__PRODUCER_CACHE 128
/* How many nodes gs__producer_chain follows (a cast of a view of a cast is three). */
#define GS__CHAIN_MAX 4

typedef struct gs__producer_entry {
  PyObject *type; /* owned: grad_fn classes live as long as torch anyway */
  unsigned flags;
} gs__producer_entry;

/* grad_fn type -> sensitivity. Global because it caches a per-class fact for every pack; used
 * under the GIL only. Full: later classes are looked up by name each time (still correct). */
static gs__producer_entry gs__producers[GS__PRODUCER_CACHE];
static int gs__nproducers;

/* Nodes whose output holds its input's values, unchanged in meaning: a cast (autocast's weight
 * copies) or a view; and dropout, which only zeroes and scales (on the CPU, F.dropout is a
 * multiply by a scaled mask: MulBackward0, followed to its first input). docs/policies.md has
 * the table. */
static const char *const gs__cast_names[] = {
  "ToCopyBackward0", "TBackward0", "TransposeBackward0", "PermuteBackward0", "ViewBackward0",
  "UnsafeViewBackward0", "ExpandBackward0", "ReshapeAliasBackward0", "AliasBackward0",
};
static const char *const gs__dropout_names[] = {"NativeDropoutBackward0", "FusedDropoutBackward0",
                                                "MulBackward0"};

static bool gs__name_in(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, list[i]) == 0) return true;
  return false;
}

/* Outputs of softmax and log-softmax are saved by their own backward and by the loss (nll_loss
 * saves the log-probabilities): at 2 bits they cost 17.6 % in final loss where 8 bits cost 0.56 %
 * (the measurement is in policy/policy.c). SDPA's output gets >= 8 bits too; its logsumexp has no
 * grad_fn, so it is kept exact as the inputs are (docs/policies.md#sensitivity-rules). */
static unsigned gs__name_flags(const char *name) {
  unsigned f = strstr(name, "Softmax") ? GS_PRODUCER_SENSITIVE : 0;
  if (strncmp(name, "ScaledDotProduct", 16) == 0) f |= GS_PRODUCER_SDPA;
  if (strcmp(name, "ReluBackward0") == 0 || strcmp(name, "ReluBackward1") == 0 ||
      strcmp(name, "ThresholdBackward0") == 0)
    f |= GS_PRODUCER_RELU;
  if (strcmp(name, "AccumulateGrad") == 0) f |= GS_PRODUCER_LEAF;
  if (strstr(name, "Convolution")) f |= GS_PRODUCER_CONV; /* every backend's node */
  if (gs__name_in(name, gs__cast_names, GS_ARRAY_LEN(gs__cast_names)))
    f |= GS_PRODUCER_PASS | GS_PRODUCER_CAST;
  if (gs__name_in(name, gs__dropout_names, GS_ARRAY_LEN(gs__dropout_names))) f |= GS_PRODUCER_PASS;
  return f;
}

static int gs__classify_type(PyObject *type, unsigned *flags) {
  PyObject *name = gs__py.PyObject_GetAttr(type, gs__torch.s___name__);
  if (name == NULL) return -1;
  const char *s = gs__py.PyUnicode_AsUTF8AndSize(name, NULL);
  *flags = s ? gs__name_flags(s) : 0;
  gs__py.Py_DecRef(name);
  if (s == NULL) return -1;
  if (gs__nproducers < GS__PRODUCER_CACHE) {
    gs__py.Py_IncRef(type);
    gs__producers[gs__nproducers].type = type;
    gs__producers[gs__nproducers].flags = *flags;
    gs__nproducers++;
  }
  return 0;
}

static int gs__type_flags(PyObject *type, unsigned *flags) {
  for (int i = 0; i < gs__nproducers; i++) {
    if (gs__producers[i].type == type) {
      *flags = gs__producers[i].flags;
      return 0;
    }
  }
  return gs__classify_type(type, flags);
}

/* The first input node of grad_fn node fn (next_functions[0][0]): new reference, None at the end. */
static PyObject *gs__first_input(PyObject *fn) {
  PyObject *next = gs__py.PyObject_GetAttr(fn, gs__torch.s_next_functions);
  if (next == NULL) return NULL;
  PyObject *edge = gs__py.PyTuple_Size(next) > 0 ? gs__py.PyTuple_GetItem(next, 0) : NULL;
  PyObject *node = edge && gs__py.PyTuple_Size(edge) > 0 ? gs__py.PyTuple_GetItem(edge, 0) : gs__py.none;
  if (node) gs__py.Py_IncRef(node);
  gs__py.Py_DecRef(next);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  return node ? node : (gs__py_none());
}

int gs__producer_chain(PyObject *fn, unsigned *found) {
  *found = 0;
  gs__py.Py_IncRef(fn);
  bool cast_only = true;
  for (int i = 0; i < GS__CHAIN_MAX && fn != gs__py.none; i++) {
    PyObject *ty = gs__py.PyObject_Type(fn);
    unsigned fl = 0;
    int rc = ty ? gs__type_flags(ty, &fl) : -1;
    if (ty) gs__py.Py_DecRef(ty);
    if (rc != 0) break;
    if (fl & (GS_PRODUCER_LEAF | GS_PRODUCER_SENSITIVE)) {
      *found = (fl & GS_PRODUCER_SENSITIVE) | (cast_only && (fl & GS_PRODUCER_LEAF) ? GS_PRODUCER_LEAF : 0);
      break;
    }
    if (!(fl & GS_PRODUCER_PASS)) break;
    cast_only = cast_only && (fl & GS_PRODUCER_CAST);
    PyObject *next = gs__first_input(fn);
    gs__py.Py_DecRef(fn);
    if ((fn = next) == NULL) return -1;
  }
  gs__py.Py_DecRef(fn);
  return gs__py.PyErr_Occurred() ? -1 : 0;
}

int gs__producer(PyObject *t, PyObject **type, unsigned *flags, int64_t *output_nr) {
  *type = NULL;
  *flags = 0;
  *output_nr = 0;
  PyObject *fn = gs__py.PyObject_GetAttr(t, gs__torch.s_grad_fn);
  if (fn == NULL) return -1;
  if (fn == gs__py.none) {
    gs__py.Py_DecRef(fn);
    return 0;
  }
  PyObject *ty = gs__py.PyObject_Type(fn);
  gs__py.Py_DecRef(fn);
  if (ty == NULL) return -1;
  int rc = gs__type_flags(ty, flags);
  /* The cache (or torch's own module) keeps the class alive; hand back a borrowed pointer. */
  gs__py.Py_DecRef(ty);
  if (rc != 0) return -1;
  *type = ty;
  return gs__get_i64(t, gs__torch.s_output_nr, false, output_nr);
}
