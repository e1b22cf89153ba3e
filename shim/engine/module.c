/* module.c: the `_gactshim` Python module exported by libgactshim.so (install, hooks, stats). */
#include "engine.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

/* PyTorch's saved-tensor hooks are thread-local: each thread pushes ours once (ensure_hooks). */
static __thread bool gs__thread_has_hooks;

/* The module object, whose pack/unpack functions are pushed. Global because new threads push them
 * again later; set once by PyInit under the GIL. */
static PyObject *gs__module;

/* The module's pack function, as pushed (compared with the top of the hook stack). Set with the
 * module, under the GIL; the module keeps it alive. */
static PyObject *gs__pack_fn;

static int gs__push_hooks(void) {
  if (gs__thread_has_hooks) return 0;
  PyObject *pack = gs__py.PyObject_GetAttrString(gs__module, "pack");
  PyObject *unpack = pack ? gs__py.PyObject_GetAttrString(gs__module, "unpack") : NULL;
  PyObject *args = unpack ? gs__py.PyTuple_New(2) : NULL;
  if (args == NULL) {
    if (pack) gs__py.Py_DecRef(pack);
    if (unpack) gs__py.Py_DecRef(unpack);
    return -1;
  }
  gs__py.PyTuple_SetItem(args, 0, pack);
  gs__py.PyTuple_SetItem(args, 1, unpack);
  PyObject *r = gs__py.PyObject_CallObject(gs__torch.push_hooks, args);
  gs__py.Py_DecRef(args);
  if (r == NULL) return -1;
  gs__py.Py_DecRef(r);
  gs__thread_has_hooks = true;
  return 0;
}

/* suspend_hooks() -> bool: PyTorch is about to disable saved-tensor hooks in this thread (the
 * bootstrap wraps torch._C._autograd._saved_tensors_hooks_disable): pops the shim's hooks when
 * they are the top of the stack, so that PyTorch finds it as it would without the shim. */
static PyObject *gs__m_suspend_hooks(PyObject *self, PyObject *unused) {
  bool popped = false;
  if (gs__thread_has_hooks && gs__hooks_suspend(gs__pack_fn, &popped) != 0) return NULL;
  if (popped) gs__thread_has_hooks = false;
  PyObject *r = popped ? gs__py.py_true : gs__py.none;
  gs__py.Py_IncRef(r);
  return r;
}

/* resume_hooks(): PyTorch enabled saved-tensor hooks again: pushes the shim's back if
 * suspend_hooks popped them in this thread. */
static PyObject *gs__m_resume_hooks(PyObject *self, PyObject *unused) {
  if (gs__hooks_take_suspended() && gs__push_hooks() != 0) return NULL;
  return gs__py_none();
}

/* release_hooks(): the calling thread's Python code has ended (the bootstrap's thread wrapper):
 * drops its compiled-graph names and pops the shim's hooks if they top its stack. PyTorch keeps
 * the stack in C++ thread-local storage, whose destructor drops the hook objects, taking the GIL,
 * after the thread's Python state is gone; when the interpreter is finalizing by then, Python ends the thread inside that
 * destructor and the process aborts ("terminate called without an active exception"). */
static PyObject *gs__m_release_hooks(PyObject *self, PyObject *unused) {
  bool popped = false;
  if (gs__thread_has_hooks && gs__hooks_pop_top(gs__pack_fn, &popped) != 0) return NULL;
  if (popped) gs__thread_has_hooks = false;
  gs__compiled_forget();
  return gs__py_none();
}

/* note_push(pack): someone pushed saved-tensor hooks; above the shim's, they hide it (counted). */
static PyObject *gs__m_note_push(PyObject *self, PyObject *pack) {
  if (gs__thread_has_hooks && pack != gs__pack_fn) gs__hooks_note_push(pack);
  return gs__py_none();
}

/* sdpa_mark((q, k)) before an SDPA call, sdpa_mark(None) after it (gactshim_compose.py). */
static PyObject *gs__m_sdpa_mark(PyObject *self, PyObject *qk) {
  bool pair = qk != gs__py.none && gs__py.PyTuple_Size(qk) == 2;
  if (gs__py.PyErr_Occurred()) return NULL;
  gs__sdpa_mark(pair ? gs__py.PyTuple_GetItem(qk, 0) : NULL, pair ? gs__py.PyTuple_GetItem(qk, 1) : NULL);
  return gs__py_none();
}

/* compiled_saved((tensors, flags)): the intermediates a compiled forward just saved
 * (gactshim_compiled.py), with their producer flags. */
static PyObject *gs__m_compiled_saved(PyObject *self, PyObject *arg) {
  bool pair = gs__py.PyTuple_Size(arg) == 2;
  if (gs__py.PyErr_Occurred()) return NULL;
  if (!pair) {
    gs__py.PyErr_SetString(gs__py.exc_type, "compiled_saved((tensors, flags))");
    return NULL;
  }
  if (gs__compiled_name(gs__py.PyTuple_GetItem(arg, 0), gs__py.PyTuple_GetItem(arg, 1)) != 0)
    return NULL;
  return gs__py_none();
}

/* install(torch): called by the bootstrap once `import torch` finished, in the importing thread. */
static PyObject *gs__m_install(PyObject *self, PyObject *torch) {
  if (!gs__active()) return gs__py_none(); /* GACTSHIM_DISABLE, or loaded without the constructor */
  if (gs__torch.torch == NULL) {
    if (gs__torch_load(torch) != 0) return NULL;
    gs__plans_configure();
  }
  if (gs__push_hooks() != 0) return NULL;
  return gs__py_none();
}

/* ensure_hooks(): pushes the hooks in the calling thread if it has none (new threads). */
static PyObject *gs__m_ensure_hooks(PyObject *self, PyObject *unused) {
  if (!gs__active() || gs__torch.torch == NULL) return gs__py_none();
  if (gs__push_hooks() != 0) return NULL;
  return gs__py_none();
}

static PyObject *gs__m_set_seed(PyObject *self, PyObject *arg) {
  unsigned long long s = gs__py.PyLong_AsUnsignedLongLongMask(arg);
  if (gs__py.PyErr_Occurred()) return NULL;
  gs__engine_set_seed(s);
  return gs__py_none();
}

/* set_probe((probe, collect)): the bootstrap's sensitivity probes (gactshim_probe.py). */
static PyObject *gs__m_set_probe(PyObject *self, PyObject *pair) {
  if (gs__py.PyTuple_Size(pair) != 2) {
    gs__py.PyErr_SetString(gs__py.exc_type, "set_probe expects a (probe, collect) tuple");
    return NULL;
  }
  gs__probe_set(gs__py.PyTuple_GetItem(pair, 0), gs__py.PyTuple_GetItem(pair, 1));
  return gs__py_none();
}

/* plan_json() -> str: the last completed iteration's per-tensor decisions, as in the stats JSON. */
static PyObject *gs__m_plan_json(PyObject *self, PyObject *unused) {
  size_t len = 1u << 20, off = 1;
  char *buf = malloc(len);
  if (buf == NULL) return NULL;
  buf[0] = '{';
  bool ok = gs__engine_plan_json(buf, len - 1, &off, 4096);
  PyObject *s = NULL;
  if (ok) {
    buf[off++] = '}';
    buf[off] = '\0';
    s = gs__py.PyUnicode_FromString(buf);
  } else {
    gs__py.PyErr_SetString(gs__py.exc_runtime, "gactshim: plan too large for plan_json()");
  }
  free(buf);
  return s;
}

static int gs__dict_u64(PyObject *d, const char *key, uint64_t v) {
  PyObject *o = gs__py.PyLong_FromUnsignedLongLong(v);
  if (o == NULL) return -1;
  int rc = gs__py.PyDict_SetItemString(d, key, o);
  gs__py.Py_DecRef(o);
  return rc;
}

#define GS__LOAD(f) __atomic_load_n(&gs__stats.f, __ATOMIC_RELAXED)

static int gs__fill_stats(PyObject *d, PyObject *skipped) {
  int rc = 0;
  rc |= gs__dict_u64(d, "packed", GS__LOAD(packed));
  rc |= gs__dict_u64(d, "compressed", GS__LOAD(compressed));
  rc |= gs__dict_u64(d, "unpacked", GS__LOAD(unpacked));
  rc |= gs__dict_u64(d, "bytes_original", GS__LOAD(bytes_original));
  rc |= gs__dict_u64(d, "bytes_compressed", GS__LOAD(bytes_compressed));
  rc |= gs__dict_u64(d, "codec_ns", GS__LOAD(codec_ns));
  rc |= gs__dict_u64(d, "gpu_kernel_ns", GS__LOAD(gpu_kernel_ns));
  rc |= gs__dict_u64(d, "gpu_kernel_timed", GS__LOAD(gpu_kernel_timed));
  rc |= gs__dict_u64(d, "iteration", gs__engine_iteration());
  rc |= gs__dict_u64(d, "host_saved_bytes", gs__registry_live_bytes(GS_DEVICE_HOST));
  rc |= gs__dict_u64(d, "host_saved_bytes_peak", gs__registry_peak_bytes(GS_DEVICE_HOST));
  rc |= gs__dict_u64(d, "gpu_compressed_bytes", gs__handle_gpu_bytes(GS_CAT_COMPRESSED));
  rc |= gs__dict_u64(d, "gpu_activation_bytes", gs__handle_gpu_bytes(GS_CAT_ACTIVATION));
  for (int r = 0; r < GS_SKIP__COUNT; r++)
    rc |= gs__dict_u64(skipped, gs__skip_name((gs_skip_reason)r), GS__LOAD(skipped[r]));
  rc |= gs__py.PyDict_SetItemString(d, "skipped", skipped);
  PyObject *unseen = gs__py.PyDict_New();
  if (unseen == NULL) return -1;
  for (int r = 0; r < GS_UNSEEN__COUNT; r++)
    rc |= gs__dict_u64(unseen, gs__unseen_name((gs_unseen_reason)r), GS__LOAD(unseen[r]));
  rc |= gs__py.PyDict_SetItemString(d, "unseen", unseen);
  gs__py.Py_DecRef(unseen);
  return rc;
}

/* stats() -> dict: the counters of the GACTSHIM_STATS JSON, now (tests, examples). */
static PyObject *gs__m_stats(PyObject *self, PyObject *unused) {
  PyObject *d = gs__py.PyDict_New();
  PyObject *skipped = d ? gs__py.PyDict_New() : NULL;
  int rc = skipped ? gs__fill_stats(d, skipped) : -1;
  if (skipped) gs__py.Py_DecRef(skipped);
  if (rc == 0) return d;
  if (d) gs__py.Py_DecRef(d);
  return NULL;
}

static PyMethodDef gs__methods[] = {
  {"install", gs__m_install, GS_METH_O, "install(torch): push the saved-tensor hooks"},
  {"ensure_hooks", gs__m_ensure_hooks, GS_METH_NOARGS, "push the hooks in this thread if missing"},
  {"pack", gs__pack, GS_METH_O, "pack hook: tensor -> handle"},
  {"unpack", gs__unpack, GS_METH_O, "unpack hook: handle -> tensor"},
  {"release_hooks", gs__m_release_hooks, GS_METH_NOARGS, "pop the hooks at the end of a thread"},
  {"suspend_hooks", gs__m_suspend_hooks, GS_METH_NOARGS, "pop the hooks before PyTorch disables hooks"},
  {"resume_hooks", gs__m_resume_hooks, GS_METH_NOARGS, "push them back once it enables hooks again"},
  {"note_push", gs__m_note_push, GS_METH_O, "note_push(pack): count a region other hooks hide"},
  {"sdpa_mark", gs__m_sdpa_mark, GS_METH_O, "sdpa_mark((q, k) or None): the SDPA call's query, key"},
  {"compiled_saved", gs__m_compiled_saved, GS_METH_O,
   "compiled_saved((tensors, flags)): a compiled forward's intermediates"},
  {"set_seed", gs__m_set_seed, GS_METH_O, "set the stochastic-rounding seed of later packs"},
  {"stats", gs__m_stats, GS_METH_NOARGS, "current counters as a dict"},
  {"set_probe", gs__m_set_probe, GS_METH_O, "set_probe((probe, collect)): sensitivity probes"},
  {"plan_json", gs__m_plan_json, GS_METH_NOARGS, "the last iteration's per-tensor decisions (JSON)"},
  {"attrib_setup", gs__m_attrib_setup, GS_METH_O, "attrib_setup(torch_dir) -> whether attribution is on"},
  {"intern", gs__m_intern, GS_METH_O, "intern(str) -> the trace's string id"},
  {"module_enter", gs__m_module_enter, GS_METH_O, "module_enter(id): an nn.Module's forward begins"},
  {"module_exit", gs__m_module_exit, GS_METH_NOARGS, "module_exit(): the innermost forward ended"},
  {NULL, NULL, 0, NULL},
};

/* Module definitions must outlive the module: static storage, as CPython expects. */
static PyModuleDef gs__moduledef = {
  .m_base_head = {1, NULL},
  .m_name = "_gactshim",
  .m_doc = "gactshim engine: saved-tensor compression hooks",
  .m_size = -1,
  .m_methods = gs__methods,
};

GS_API PyObject *PyInit__gactshim(void);

GS_API PyObject *PyInit__gactshim(void) {
  if (gs__pyapi_load() != 0) return NULL;
  /* Only free-threaded builds export it (3.13+); their object head is not gs_py_head. */
  if (dlsym(RTLD_DEFAULT, "PyUnstable_Module_SetGIL") != NULL) {
    gs__py.PyErr_SetString(gs__py.exc_runtime, "gactshim: free-threaded Python is not supported");
    return NULL;
  }
  if (gs__module) {
    gs__py.Py_IncRef(gs__module);
    return gs__module;
  }
  gs__module = gs__py.PyModule_Create2(&gs__moduledef, GS_PYTHON_ABI_VERSION);
  if (gs__module == NULL) return NULL;
  gs__py.Py_IncRef(gs__module); /* the global keeps its own reference */
  gs__pack_fn = gs__py.PyObject_GetAttrString(gs__module, "pack"); /* owned, like the module */
  if (gs__pack_fn == NULL) gs__py.PyErr_Clear();
  return gs__module;
}
