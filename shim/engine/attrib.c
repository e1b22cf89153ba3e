/* attrib.c: who saved a tensor — nn.Module path, Python line outside torch, autograd node. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

/* The module path comes from the bootstrap's global module forward hooks (module_enter/exit keep
 * a per-thread stack of interned path ids here); the frame is the innermost Python frame whose
 * file is not under torch's directory, found by walking frames from pack with a per-code-object
 * cache; the node is the autograd node running when the tensor is first unpacked (PyTorch does
 * not name the saving node at pack). Each is an interned string (shim/timeline/intern.c). */

#define GS__MSTACK 64     /* deeper module nesting is counted but not named */
#define GS__CODES 4096u   /* code objects cached (each keeps its code object alive) */
#define GS__WALK 24       /* frames looked at per pack */

/* Per thread: saved-tensor hooks and module forwards run in the thread of their forward. */
static __thread uint32_t gs__mstack[GS__MSTACK];
static __thread unsigned gs__mdepth;

typedef struct gs__code {
  PyObject *code;   /* a reference: its address stays this code object's */
  uint32_t file, function;
  bool torch;
} gs__code;

/* Global because pack is a plain C function; touched under the GIL only (pack, unpack, setup). */
static struct {
  bool on;
  char torch_dir[1024];
  size_t torch_dir_n;
  gs__code codes[GS__CODES];
  uint32_t ncodes;
  PyObject *current_node;   /* torch._C._current_autograd_node, or NULL */
  PyObject *node_type;      /* last node type seen, and its name's id */
  uint32_t node_name;
  uint64_t serial;
} gs__at;

PyObject *gs__m_attrib_setup(PyObject *self, PyObject *dir) {
  Py_ssize_t n = 0;
  const char *s = gs__py.PyUnicode_AsUTF8AndSize(dir, &n);
  if (s == NULL) return NULL;
  gs__at.on = gs__cfg.trace_path[0] && gs__cfg.attribution && (size_t)n < sizeof(gs__at.torch_dir);
  if (!gs__at.on) return gs__py_none();
  memcpy(gs__at.torch_dir, s, (size_t)n);
  gs__at.torch_dir_n = (size_t)n;
  PyObject *c = gs__py.PyObject_GetAttrString(gs__torch.torch, "_C");
  gs__at.current_node = c ? gs__py.PyObject_GetAttrString(c, "_current_autograd_node") : NULL;
  if (c) gs__py.Py_DecRef(c);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  gs__py.Py_IncRef(gs__py.py_true);
  return gs__py.py_true;
}

PyObject *gs__m_intern(PyObject *self, PyObject *str) {
  Py_ssize_t n = 0;
  const char *s = gs__py.PyUnicode_AsUTF8AndSize(str, &n);
  if (s == NULL) return NULL;
  return gs__py.PyLong_FromUnsignedLongLong(gs__trace_intern(s, (size_t)n));
}

PyObject *gs__m_module_enter(PyObject *self, PyObject *id) {
  unsigned long long v = gs__py.PyLong_AsUnsignedLongLongMask(id);
  if (gs__mdepth < GS__MSTACK) gs__mstack[gs__mdepth] = (uint32_t)v;
  gs__mdepth++;
  return gs__py_none();
}

PyObject *gs__m_module_exit(PyObject *self, PyObject *unused) {
  if (gs__mdepth) gs__mdepth--;
  return gs__py_none();
}

/* The interned id of the string o.<name>, or 0 (a Python error may be set). */
static uint32_t gs__intern_attr(PyObject *o, PyObject *name) {
  PyObject *v = gs__py.PyObject_GetAttr(o, name);
  Py_ssize_t n = 0;
  const char *s = v ? gs__py.PyUnicode_AsUTF8AndSize(v, &n) : NULL;
  uint32_t id = s ? gs__trace_intern(s, (size_t)n) : 0;
  if (v) gs__py.Py_DecRef(v);
  return id;
}

/* A code object's file and function, interned unless the file is torch's own. */
static void gs__code_fill(gs__code *e, PyObject *code) {
  PyObject *v = gs__py.PyObject_GetAttr(code, gs__torch.s_co_filename);
  Py_ssize_t n = 0;
  const char *path = v ? gs__py.PyUnicode_AsUTF8AndSize(v, &n) : NULL;
  e->torch = path && (size_t)n >= gs__at.torch_dir_n && memcmp(path, gs__at.torch_dir, gs__at.torch_dir_n) == 0;
  if (path && !e->torch) {
    e->file = gs__trace_intern(path, (size_t)n);
    e->function = gs__intern_attr(code, gs__torch.s_co_qualname);
    if (!e->function) {
      gs__py.PyErr_Clear(); /* before 3.11: no co_qualname */
      e->function = gs__intern_attr(code, gs__torch.s_co_name);
    }
  }
  if (v) gs__py.Py_DecRef(v);
}

/* The cache entry of a code object (filled on first sight), or NULL when the cache is full. */
static gs__code *gs__code_of(PyObject *code) {
  uint32_t mask = GS__CODES - 1, i = (uint32_t)(((uintptr_t)code >> 4) * 0x9E3779B97F4A7C15ull >> 40) & mask;
  for (uint32_t probes = 0; probes < GS__CODES; probes++, i = (i + 1) & mask) {
    gs__code *e = &gs__at.codes[i];
    if (e->code == code) return e;
    if (e->code) continue;
    if (gs__at.ncodes >= GS__CODES * 3 / 4) return NULL;
    gs__code_fill(e, code);
    gs__py.Py_IncRef(code);
    e->code = code;
    gs__at.ncodes++;
    return e;
  }
  return NULL;
}

/* The innermost frame outside torch into key (file, line, function). */
static void gs__user_frame(gs_rec_attr *key) {
  PyObject *f = gs__py.PyEval_GetFrame();
  if (f) gs__py.Py_IncRef(f);
  for (int depth = 0; f && depth < GS__WALK; depth++) {
    PyObject *code = gs__py.PyObject_GetAttr(f, gs__torch.s_f_code);
    gs__code *e = code ? gs__code_of(code) : NULL;
    if (code) gs__py.Py_DecRef(code);
    if (e && !e->torch) {
      key->file = e->file;
      key->function = e->function;
      key->line = (uint32_t)gs__py.PyFrame_GetLineNumber(f);
      break;
    }
    PyObject *back = e ? gs__py.PyObject_GetAttr(f, gs__torch.s_f_back) : NULL;
    gs__py.Py_DecRef(f);
    f = back && back != gs__py.none ? back : NULL;
    if (back == gs__py.none) gs__py.Py_DecRef(back);
  }
  if (f) gs__py.Py_DecRef(f);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
}

/* Whether a policy could compress f (whichever runs now, GACTSHIM_POLICY=off included): what a
 * what-if replay of the trace may compress. */
static bool gs__any_policy_candidate(const gs_tensor_facts *f) {
  bool kept;
  gs__facts_kept_before_policy(f, &kept);
  return !kept && f->dtype != GS_POLICY_DTYPE_OTHER && f->bytes >= gs__cfg.min_bytes;
}

gs_trace_saved_id gs__attrib_pack(const gs_tensor_facts *f, const gs_pack_choice *c) {
  unsigned elem = f->numel ? (unsigned)(f->bytes / f->numel) : 0;
  bool candidate = gs__any_policy_candidate(f);
  gs_trace_saved_id id = {.serial = ++gs__at.serial,
                          .flags = (uint16_t)((candidate ? GS_SAVED_F_CANDIDATE : 0) |
                                              ((f->producer_flags & GS_PRODUCER_SENSITIVE) ? GS_SAVED_F_SENSITIVE : 0) |
                                              ((f->producer_flags & GS_PRODUCER_RELU) ? GS_SAVED_F_RELU : 0) |
                                              ((elem & 0xf) << GS_SAVED_F_ELEM_SHIFT))};
  if (!gs__at.on) return id;
  gs_rec_attr key = {0};
  if (gs__mdepth) key.module = gs__mstack[(gs__mdepth < GS__MSTACK ? gs__mdepth : GS__MSTACK) - 1];
  gs__user_frame(&key);
  id.attr = gs__trace_attr(&key);
  return id;
}

uint32_t gs__attrib_unpack(void) {
  if (!gs__at.on || !gs__at.current_node) return 0;
  PyObject *node = gs__py.PyObject_CallObject(gs__at.current_node, NULL);
  if (node == NULL || node == gs__py.none) {
    if (node) gs__py.Py_DecRef(node);
    gs__py.PyErr_Clear();
    return 0;
  }
  PyObject *type = gs__py.PyObject_Type(node);
  gs__py.Py_DecRef(node);
  if (type == NULL) return gs__py.PyErr_Clear(), 0;
  if (type != gs__at.node_type) { /* node types are immortal classes: the pointer is a fine key */
    gs__at.node_name = gs__intern_attr(type, gs__torch.s___name__);
    gs__at.node_type = type;
  }
  gs__py.Py_DecRef(type);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  gs_rec_attr key = {.node = gs__at.node_name};
  return key.node ? gs__trace_attr(&key) : 0;
}
