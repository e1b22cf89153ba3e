/* torchapi.c: looks up, once, the torch objects and attribute names the hot path needs. */
#include "engine.h"

#include <errno.h>

/* Filled once by gs__torch_load under the GIL before any hook runs; read-only afterwards. */
gs_torch gs__torch;

/* getattr(obj, "a.b.c") following dots; NULL with the Python error cleared when missing. */
static PyObject *gs__lookup(PyObject *obj, const char *dotted) {
  char part[64];
  PyObject *cur = obj;
  gs__py.Py_IncRef(cur);
  while (*dotted) {
    size_t n = 0;
    while (dotted[n] && dotted[n] != '.' && n + 1 < sizeof(part)) {
      part[n] = dotted[n];
      n++;
    }
    part[n] = '\0';
    dotted += n + (dotted[n] == '.');
    PyObject *next = gs__py.PyObject_GetAttrString(cur, part);
    gs__py.Py_DecRef(cur);
    if (next == NULL) {
      gs__py.PyErr_Clear();
      return NULL;
    }
    cur = next;
  }
  return cur;
}

static PyObject *gs__kw_dtype(PyObject *dtype) {
  PyObject *kw = gs__py.PyDict_New();
  if (kw && gs__py.PyDict_SetItemString(kw, "dtype", dtype) != 0) {
    gs__py.Py_DecRef(kw);
    return NULL;
  }
  return kw;
}

static int gs__load_names(void) {
#define GS__INTERN(n)                                        \
  if ((gs__torch.s_##n = gs__py.PyUnicode_InternFromString(#n)) == NULL) return -ENOMEM;
  GS__TORCH_NAMES(GS__INTERN)
#undef GS__INTERN
  return 0;
}

static int gs__load_dtypes(PyObject *torch) {
  static const char *const names[4] = {"float32", "float16", "bfloat16", "bool"};
  for (int i = 0; i < 4; i++) {
    gs__torch.dtype[i] = gs__lookup(torch, names[i]);
    if (gs__torch.dtype[i] == NULL) return -ENOENT;
    if ((gs__torch.kw_dtype[i] = gs__kw_dtype(gs__torch.dtype[i])) == NULL) return -ENOMEM;
  }
  PyObject *u8 = gs__lookup(torch, "uint8");
  if (u8 == NULL || (gs__torch.kw_uint8 = gs__kw_dtype(u8)) == NULL) return -ENOENT;
  gs__py.Py_DecRef(u8);
  return 0;
}

int gs__torch_load(PyObject *torch) {
  gs__py.Py_IncRef(torch);
  gs__torch.torch = torch;
  if (gs__load_names() != 0 || gs__load_dtypes(torch) != 0) goto missing;
  gs__torch.strided = gs__lookup(torch, "strided");
  gs__torch.push_hooks = gs__lookup(torch, "_C._autograd._push_saved_tensors_default_hooks");
  if (gs__torch.strided == NULL || gs__torch.push_hooks == NULL) goto missing;
  /* CUDA entry points: absent in CPU-only builds, which is fine. */
  gs__torch.raw_stream = gs__lookup(torch, "_C._cuda_getCurrentRawStream");
  gs__torch.profiler_enabled = gs__lookup(torch, "_C._autograd._profiler_enabled");
  gs__torch.current_stream = gs__lookup(torch, "cuda.current_stream");
  gs__torch.get_device = gs__lookup(torch, "_C._cuda_getDevice");
  gs__torch.set_device = gs__lookup(torch, "_C._cuda_setDevice");
  return 0;
missing:
  if (!gs__py.PyErr_Occurred())
    gs__py.PyErr_SetString(gs__py.exc_runtime, "gactshim: this torch lacks saved-tensor hooks");
  return -ENOENT;
}

int gs__torch_dtype_code(PyObject *dtype) {
  for (int i = 0; i < 4; i++)
    if (dtype == gs__torch.dtype[i]) return i;
  return -1;
}

PyObject *gs__call_method(PyObject *obj, PyObject *name, PyObject *args, PyObject *kw) {
  PyObject *m = gs__py.PyObject_GetAttr(obj, name);
  if (m == NULL) return NULL;
  PyObject *r = args ? gs__py.PyObject_Call(m, args, kw) : gs__py.PyObject_CallObject(m, NULL);
  gs__py.Py_DecRef(m);
  return r;
}

int gs__get_i64(PyObject *obj, PyObject *name, bool call, int64_t *out) {
  PyObject *v = call ? gs__call_method(obj, name, NULL, NULL) : gs__py.PyObject_GetAttr(obj, name);
  if (v == NULL) return -1;
  long long x = gs__py.PyLong_AsLongLong(v);
  gs__py.Py_DecRef(v);
  if (x == -1 && gs__py.PyErr_Occurred()) return -1;
  *out = (int64_t)x;
  return 0;
}

/* The per-device raw stream: the fast private entry point when torch has it, else the public
 * torch.cuda.current_stream(dev).cuda_stream. */
int gs__torch_current_stream(int dev, uint64_t *stream) {
  PyObject *args = gs__py.PyTuple_New(1);
  *stream = 0;
  if (args == NULL) return -ESRCH;
  gs__py.PyTuple_SetItem(args, 0, gs__py.PyLong_FromLongLong(dev));
  PyObject *r = NULL;
  if (gs__torch.raw_stream) {
    r = gs__py.PyObject_CallObject(gs__torch.raw_stream, args);
  } else if (gs__torch.current_stream) {
    PyObject *st = gs__py.PyObject_CallObject(gs__torch.current_stream, args);
    if (st) r = gs__py.PyObject_GetAttrString(st, "cuda_stream");
    if (st) gs__py.Py_DecRef(st);
  }
  gs__py.Py_DecRef(args);
  int rc = r == NULL ? -ESRCH : 0;
  if (r) {
    *stream = (uint64_t)gs__py.PyLong_AsUnsignedLongLongMask(r);
    gs__py.Py_DecRef(r);
  }
  if (gs__py.PyErr_Occurred()) {
    gs__py.PyErr_Clear();
    rc = -ESRCH;
  }
  return rc;
}

bool gs__torch_profiler_on(void) {
  PyObject *r = gs__torch.profiler_enabled ? gs__py.PyObject_CallObject(gs__torch.profiler_enabled, NULL) : NULL;
  bool on = r != NULL && gs__py.PyObject_IsTrue(r) == 1;
  if (r) gs__py.Py_DecRef(r);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  return on;
}

uint64_t gs__torch_data_ptr(PyObject *t) {
  PyObject *p = gs__call_method(t, gs__torch.s_data_ptr, NULL, NULL);
  if (p == NULL) return 0;
  uint64_t v = (uint64_t)gs__py.PyLong_AsUnsignedLongLongMask(p);
  gs__py.Py_DecRef(p);
  return v;
}
