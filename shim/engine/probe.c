/* probe.c: sensitivity probes on the schedule — calls the bootstrap's gactshim_probe.py. */
#include "engine.h"

/* The Python callables (probe(t, k, group), collect()). Global because the hooks are plain
 * functions; set once by the bootstrap under the GIL, read under the GIL. */
static PyObject *gs__probe_fn, *gs__collect_fn;

void gs__probe_set(PyObject *probe, PyObject *collect) {
  gs__py.Py_IncRef(probe);
  gs__py.Py_IncRef(collect);
  if (gs__probe_fn) gs__py.Py_DecRef(gs__probe_fn);
  if (gs__collect_fn) gs__py.Py_DecRef(gs__collect_fn);
  gs__probe_fn = probe;
  gs__collect_fn = collect;
}

static void gs__probe_failed(void) {
  gs__py.PyErr_Clear();
  gs__warn_once("probe", "a sensitivity probe failed; that tensor keeps its previous estimate");
}

int gs__probe_tensor(PyObject *t, uint32_t k) {
  if (gs__probe_fn == NULL) return -1;
  PyObject *args = gs__py.PyTuple_New(3);
  if (args == NULL) return gs__probe_failed(), -1;
  gs__py.Py_IncRef(t);
  gs__py.PyTuple_SetItem(args, 0, t);
  gs__py.PyTuple_SetItem(args, 1, gs__py.PyLong_FromUnsignedLongLong(k));
  gs__py.PyTuple_SetItem(args, 2, gs__py.PyLong_FromUnsignedLongLong(gs__cfg.group));
  PyObject *r = gs__py.PyObject_CallObject(gs__probe_fn, args);
  gs__py.Py_DecRef(args);
  if (r == NULL) return gs__probe_failed(), -1;
  gs__py.Py_DecRef(r);
  return 0;
}

/* collect() returns a tuple of (k, c, range_term); c < 0 where no gradient was seen. */
void gs__probe_collect(void) {
  if (gs__collect_fn == NULL) return;
  PyObject *r = gs__py.PyObject_CallObject(gs__collect_fn, NULL);
  Py_ssize_t n = r ? gs__py.PyTuple_Size(r) : -1;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *e = gs__py.PyTuple_GetItem(r, i);
    if (e == NULL || gs__py.PyTuple_Size(e) != 3) break;
    long long k = gs__py.PyLong_AsLongLong(gs__py.PyTuple_GetItem(e, 0));
    double c = gs__py.PyFloat_AsDouble(gs__py.PyTuple_GetItem(e, 1));
    double range = gs__py.PyFloat_AsDouble(gs__py.PyTuple_GetItem(e, 2));
    if (gs__py.PyErr_Occurred()) break;
    if (k >= 0) gs__plan_note_probe((uint32_t)k, c, range); /* c < 0: no gradient seen */
  }
  if (r) gs__py.Py_DecRef(r);
  if (n < 0 || gs__py.PyErr_Occurred()) gs__probe_failed();
}
