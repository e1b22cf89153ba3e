/* facts.c: reads, once, everything pack needs to know about a saved tensor into plain C facts. */
#include "engine.h"

#include <string.h>

static int gs__attr_is(PyObject *t, PyObject *name, PyObject *value, bool *out) {
  PyObject *v = gs__py.PyObject_GetAttr(t, name);
  if (v == NULL) return -1;
  *out = v == value;
  gs__py.Py_DecRef(v);
  return 0;
}

/* Reads a tuple of ints (torch.Size, or t.stride()) into out: 0, 1 when it has more than
 * GS_FACTS_MAX_DIMS entries, or -1 with a Python error set. */
static int gs__read_dims(PyObject *tuple, int64_t *out, int *ndim) {
  Py_ssize_t n = gs__py.PyTuple_Size(tuple);
  if (n < 0) return -1;
  if (n > GS_FACTS_MAX_DIMS) return 1;
  for (Py_ssize_t i = 0; i < n; i++) {
    long long v = gs__py.PyLong_AsLongLong(gs__py.PyTuple_GetItem(tuple, i));
    if (v == -1 && gs__py.PyErr_Occurred()) return -1;
    out[i] = v;
  }
  *ndim = (int)n;
  return 0;
}

/* Kept as a parameter, whatever requires_grad says: a tensor without grad_fn (a parameter, a frozen
 * weight, its view `W.t()` or autocast cast, an input), or one whose casts and views lead to a
 * leaf's AccumulateGrad (autocast's cached bf16 copy of a trainable weight, and its views). A
 * view is judged by its base; a cast, dropout or view chain also carries a softmax's sensitivity
 * (HF's `softmax(dtype=float32).to(bf16)`). Most activations cost one attribute read here. The
 * exception without grad_fn: an intermediate of a torch.compile'd graph that its forward named
 * (compiled.c), an activation with its producer's flags (a ReLU output keeps its sign plane). */
static int gs__read_param(PyObject *t, gs_tensor_facts *f) {
  unsigned named;
  if (f->producer == NULL && gs__compiled_lookup(t, &named))
    return f->producer_flags |= named, 0;
  if (f->producer == NULL) return f->param = true, 0;
  PyObject *base = gs__py.PyObject_GetAttr(t, gs__torch.s__base);
  if (base == NULL) return -1;
  PyObject *x = base != gs__py.none ? base : t;
  unsigned flags = f->producer_flags;
  int rc = 0;
  if (x != t) {
    PyObject *type;
    int64_t nr;
    rc = gs__producer(x, &type, &flags, &nr);
    if (rc == 0 && type == NULL) f->param = true;
  }
  if (rc == 0 && !f->param && (flags & GS_PRODUCER_PASS)) {
    PyObject *fn = gs__py.PyObject_GetAttr(x, gs__torch.s_grad_fn);
    unsigned found = 0;
    rc = fn ? gs__producer_chain(fn, &found) : -1;
    if (fn) gs__py.Py_DecRef(fn);
    f->param = (found & GS_PRODUCER_LEAF) != 0;
    flags |= found;
  }
  f->producer_flags |= flags & GS_PRODUCER_SENSITIVE;
  gs__py.Py_DecRef(base);
  return rc;
}

/* Only torch.Tensor and nn.Parameter are read: a subclass (DTensor, Float8, NF4) wraps data that
 * its outer tensor's pointer and dtype do not describe, and reading it runs its Python code. */
static bool gs__is_subclass(PyObject *t) {
  PyObject *ty = gs__py.PyObject_Type(t);
  bool sub = ty != gs__torch.tensor_type && ty != gs__torch.param_type;
  if (ty) gs__py.Py_DecRef(ty);
  return sub;
}

static int gs__read_layout(PyObject *t, gs_tensor_facts *f) {
  bool strided, meta;
  if (gs__attr_is(t, gs__torch.s_layout, gs__torch.strided, &strided) != 0) return -1;
  if (gs__attr_is(t, gs__torch.s_is_meta, gs__py.py_true, &meta) != 0) return -1;
  f->strided = strided && !meta;
  if (!f->strided) return 0;
  PyObject *dt = gs__py.PyObject_GetAttr(t, gs__torch.s_dtype);
  if (dt == NULL) return -1;
  f->dtype = gs__torch_dtype_code(dt);
  gs__py.Py_DecRef(dt);
  if (f->dtype < 0) f->dtype = GS_POLICY_DTYPE_OTHER;
  return 0;
}

static int gs__read_geometry(PyObject *t, gs_tensor_facts *f) {
  f->size_obj = gs__py.PyObject_GetAttr(t, gs__torch.s_shape);
  if (f->size_obj == NULL) return -1;
  int rc = gs__read_dims(f->size_obj, f->shape, &f->ndim);
  if (rc != 0) return rc < 0 ? -1 : (f->too_many_dims = true, 0);
  f->stride_obj = gs__call_method(t, gs__torch.s_stride, NULL, NULL);
  if (f->stride_obj == NULL) return -1;
  int nd;
  if (gs__read_dims(f->stride_obj, f->stride, &nd) != 0) return -1;
  gs__facts_geometry(f);
  return 0;
}

static int gs__read_device(PyObject *t, gs_tensor_facts *f) {
  bool cuda, cpu;
  if (gs__attr_is(t, gs__torch.s_is_cuda, gs__py.py_true, &cuda) != 0) return -1;
  f->device = -1;
  if (!cuda) { /* XPU, MPS, HPU…: their pointers are not the CPU codec's to read */
    if (gs__attr_is(t, gs__torch.s_is_cpu, gs__py.py_true, &cpu) != 0) return -1;
    f->other_device = !cpu;
    return 0;
  }
  int64_t dev;
  if (gs__get_i64(t, gs__torch.s_get_device, true, &dev) != 0) return -1;
  f->device = (int)dev;
  return 0;
}

int gs__facts_read(PyObject *t, gs_tensor_facts *f) {
  if ((f->subclass = gs__is_subclass(t))) return 0;
  if (gs__producer(t, &f->producer, &f->producer_flags, &f->output_nr) != 0) return -1;
  if (gs__sdpa_is_qk(t)) f->producer_flags |= GS_PRODUCER_SENSITIVE;
  if (gs__read_param(t, f) != 0) return -1;
  if (f->param) return 0; /* kept whatever the rest says: no need to read it */
  if (gs__read_layout(t, f) != 0) return -1;
  if (!f->strided || f->dtype == GS_POLICY_DTYPE_OTHER) return 0;
  if (gs__read_geometry(t, f) != 0) return -1;
  if (f->too_many_dims) return 0;
  if (gs__read_device(t, f) != 0) return -1;
  if (f->other_device || f->broadcast) return 0;
  /* A CPU tensor's address is always used (the registry key if kept, else the codec's source); a
   * GPU tensor's only if it is compressed, so encode reads it then (kept ones are most packs). */
  if (f->device < 0) f->data_ptr = gs__torch_data_ptr(t);
  return gs__py.PyErr_Occurred() ? -1 : 0;
}

void gs__facts_release(gs_tensor_facts *f) {
  if (f->size_obj) gs__py.Py_DecRef(f->size_obj);
  if (f->stride_obj) gs__py.Py_DecRef(f->stride_obj);
  f->size_obj = f->stride_obj = NULL;
}

/* --- pure: what the numbers say ----------------------------------------------------------- */

/* Whether the strides are a permutation of a contiguous layout's (channels_last, transposes). */
static bool gs__is_dense(const gs_tensor_facts *f) {
  int order[GS_FACTS_MAX_DIMS], n = 0;
  for (int d = 0; d < f->ndim; d++)
    if (f->shape[d] != 1) order[n++] = d;
  /* Insertion sort by stride, smallest first; ties mean overlap (or size-1 dims, skipped). */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && f->stride[order[j]] < f->stride[order[j - 1]]; j--) {
      int tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  int64_t expect = 1;
  for (int i = 0; i < n; i++) {
    if (f->stride[order[i]] != expect) return false;
    expect *= f->shape[order[i]];
  }
  return true;
}

static bool gs__is_contiguous(const gs_tensor_facts *f) {
  int64_t expect = 1;
  for (int d = f->ndim - 1; d >= 0; d--) {
    if (f->shape[d] != 1 && f->stride[d] != expect) return false;
    expect *= f->shape[d];
  }
  return true;
}

void gs__facts_geometry(gs_tensor_facts *f) {
  f->numel = 1;
  f->broadcast = false;
  for (int d = 0; d < f->ndim; d++) {
    f->numel *= (uint64_t)f->shape[d];
    if (f->stride[d] == 0 && f->shape[d] > 1) f->broadcast = true;
  }
  f->bytes = f->dtype >= 0 ? f->numel * gs_dtype_bytes((gs_dtype)f->dtype) : 0;
  f->contiguous = gs__is_contiguous(f);
  f->dense = f->contiguous || gs__is_dense(f);
}

gs_skip_reason gs__facts_kept_before_policy(const gs_tensor_facts *f, bool *kept) {
  *kept = true;
  if (f->subclass) return GS_SKIP_SUBCLASS;
  if (f->param) return GS_SKIP_PARAM;
  if (!f->strided) return GS_SKIP_LAYOUT;
  if (f->dtype == GS_POLICY_DTYPE_OTHER) return GS_SKIP_DTYPE;
  /* A broadcast (an attention mask expanded over heads) holds a fraction of its numel: a copy at
   * full size, even compressed, could outweigh the storage it shares. */
  if (f->too_many_dims || f->broadcast) return GS_SKIP_LAYOUT;
  if (f->other_device) return GS_SKIP_DEVICE;
  *kept = false;
  return GS_SKIP_POLICY;
}

gs_policy_desc gs__facts_desc(const gs_tensor_facts *f, uint64_t iteration, uint32_t index) {
  gs_policy_desc d = {.iteration = iteration, .index = index, .ndim = f->ndim, .shape = f->shape,
                      .dtype = f->dtype, .bytes = f->bytes, .device = f->device,
                      .sensitive = (f->producer_flags & (GS_PRODUCER_SENSITIVE | GS_PRODUCER_SDPA)) != 0};
  return d;
}

gs_pack_choice gs__facts_decide(const gs_tensor_facts *f, uint64_t iteration, uint32_t index) {
  gs_pack_choice c = {.reason = GS_REASON_SKIPPED};
  bool kept;
  c.skip = gs__facts_kept_before_policy(f, &kept);
  if (kept) return c;
  gs_policy_desc d = gs__facts_desc(f, iteration, index);
  gs_policy_decision dec = gs__plan_decide(&d, &c.reason);
  c.bits = dec.bits;
  c.skip = dec.bits ? GS_SKIP_POLICY : gs__plans_skip(dec.keep);
  c.candidate = c.reason != GS_REASON_SKIPPED;
  c.probe = dec.bits && f->dtype != GS_DTYPE_BOOL && gs__plan_probing(iteration);
  return c;
}
