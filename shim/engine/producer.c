/* producer.c: which op produced a saved tensor (grad_fn type), and whether it is a sensitive one. */
#include "engine.h"

#include <string.h>

#define GS__PRODUCER_CACHE 128

typedef struct gs__producer_entry {
  PyObject *type; /* owned: grad_fn classes live as long as torch anyway */
  unsigned flags;
} gs__producer_entry;

/* grad_fn type -> sensitivity. Global because it caches a per-class fact for every pack; used
 * under the GIL only. Full: later classes are looked up by name each time (still correct). */
static gs__producer_entry gs__producers[GS__PRODUCER_CACHE];
static int gs__nproducers;

/* Outputs of softmax and log-softmax are saved by their own backward and by the loss (nll_loss
 * saves the log-probabilities): at 2 bits they cost 17.6 % in final loss where 8 bits cost 0.56 %
 * (the measurement is in policy/policy.c). */
static unsigned gs__name_flags(const char *name) {
  unsigned f = strstr(name, "Softmax") ? GS_PRODUCER_SENSITIVE : 0;
  if (strcmp(name, "ReluBackward0") == 0 || strcmp(name, "ReluBackward1") == 0 ||
      strcmp(name, "ThresholdBackward0") == 0)
    f |= GS_PRODUCER_RELU;
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
