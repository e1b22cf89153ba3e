/* pack.c: pack — classify a saved tensor, ask the policy, compress it or keep it (fail-open). */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>

#define GS__MAX_DIMS 16
/* Tensors at least this large are compressed with the GIL released, so other Python threads run. */
#define GS__RELEASE_GIL_BYTES (1u << 20)

/* What pack learned about a tensor. */
typedef struct gs__tinfo {
  int dtype;          /* gs_dtype or GS_POLICY_DTYPE_OTHER */
  int device;         /* CUDA device index, or -1 for the CPU */
  int ndim;
  int64_t shape[GS__MAX_DIMS];
  int64_t stride[GS__MAX_DIMS];
  uint64_t numel, bytes;
  bool contiguous;    /* row-major contiguous */
  bool dense;         /* dense and non-overlapping: its memory span is numel elements */
  unsigned flags;      /* GS_PRODUCER_* */
  PyObject *producer; /* borrowed grad_fn type, or NULL */
  int64_t output_nr;
  PyObject *stride_obj; /* owned: t.stride() */
} gs__tinfo;

/* Iteration tracking. Globals because an iteration is a process-wide notion PyTorch does not
 * tell us about; only touched under the GIL (pack, unpack). An iteration ends when backward has
 * unpacked something and the iteration's graph is consumed: the next pack starts the next
 * iteration, at index 0. */
static uint64_t gs__iter;
static uint32_t gs__index;
static bool gs__unpacked_since_pack;
/* Stochastic-rounding key and a distinct id per compressed tensor; GIL-protected as above. */
static uint64_t gs__seed_override;
static bool gs__seed_set;
static uint64_t gs__next_tensor_id;

void gs__engine_note_unpack(void) { gs__unpacked_since_pack = true; }
uint64_t gs__engine_iteration(void) { return gs__iter; }

void gs__engine_set_seed(uint64_t seed) {
  gs__seed_override = seed;
  gs__seed_set = true;
}

static uint32_t gs__next_index(void) {
  if (gs__unpacked_since_pack) {
    gs__unpacked_since_pack = false;
    /* A backward inside forward (a chunked loss, autograd.grad) unpacks too: the iteration goes
     * on while tensors it saved earlier still wait for their backward (planwire.c). */
    if (gs__planwire_iteration_done()) {
      gs__iter++;
      gs__index = 0;
    }
  }
  if (gs__index == 0) {
    gs__trace_iteration(gs__iter); /* the timeline's iteration bands */
    gs__planwire_iteration(gs__iter); /* the completed iteration becomes a plan */
  }
  return gs__index++;
}

static const unsigned gs__elem_size[4] = {4, 2, 2, 1};

/* Whether the strides are a permutation of a contiguous layout's (channels_last, transposes). */
static bool gs__is_dense(const gs__tinfo *ti) {
  int order[GS__MAX_DIMS], n = 0;
  for (int d = 0; d < ti->ndim; d++)
    if (ti->shape[d] != 1) order[n++] = d;
  /* Insertion sort by stride, smallest first; ties mean overlap (or size-1 dims, skipped). */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && ti->stride[order[j]] < ti->stride[order[j - 1]]; j--) {
      int tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  int64_t expect = 1;
  for (int i = 0; i < n; i++) {
    if (ti->stride[order[i]] != expect) return false;
    expect *= ti->shape[order[i]];
  }
  return true;
}

static bool gs__is_contiguous(const gs__tinfo *ti) {
  int64_t expect = 1;
  for (int d = ti->ndim - 1; d >= 0; d--) {
    if (ti->shape[d] != 1 && ti->stride[d] != expect) return false;
    expect *= ti->shape[d];
  }
  return true;
}

/* Reads a tuple of ints (torch.Size, or t.stride()) into out. 0 or -1. */
static int gs__read_dims(PyObject *tuple, int64_t *out, int *ndim) {
  Py_ssize_t n = gs__py.PyTuple_Size(tuple);
  if (n < 0) return -1;
  if (n > GS__MAX_DIMS) return -2;
  for (Py_ssize_t i = 0; i < n; i++) {
    long long v = gs__py.PyLong_AsLongLong(gs__py.PyTuple_GetItem(tuple, i));
    if (v == -1 && gs__py.PyErr_Occurred()) return -1;
    out[i] = v;
  }
  *ndim = (int)n;
  return 0;
}

static int gs__attr_is(PyObject *t, PyObject *name, PyObject *value, bool *out) {
  PyObject *v = gs__py.PyObject_GetAttr(t, name);
  if (v == NULL) return -1;
  *out = v == value;
  gs__py.Py_DecRef(v);
  return 0;
}

/* A parameter, or a view of one (Linear saves weight.t()). */
static int gs__is_param(PyObject *t, PyObject *producer, bool *out) {
  bool rg;
  *out = false;
  if (gs__attr_is(t, gs__torch.s_requires_grad, gs__py.py_true, &rg) != 0) return -1;
  if (!rg) return 0;
  if (producer == NULL) {
    *out = true;
    return 0;
  }
  PyObject *base = gs__py.PyObject_GetAttr(t, gs__torch.s__base);
  if (base == NULL) return -1;
  int rc = 0;
  if (base != gs__py.none) {
    bool leaf = false, brg = false;
    rc = gs__attr_is(base, gs__torch.s_is_leaf, gs__py.py_true, &leaf);
    if (rc == 0) rc = gs__attr_is(base, gs__torch.s_requires_grad, gs__py.py_true, &brg);
    *out = leaf && brg;
  }
  gs__py.Py_DecRef(base);
  return rc;
}

static int gs__read_geometry(PyObject *t, gs__tinfo *ti) {
  PyObject *shape = gs__py.PyObject_GetAttr(t, gs__torch.s_shape);
  if (shape == NULL) return -1;
  int rc = gs__read_dims(shape, ti->shape, &ti->ndim);
  gs__py.Py_DecRef(shape);
  if (rc != 0) return rc;
  ti->stride_obj = gs__call_method(t, gs__torch.s_stride, NULL, NULL);
  if (ti->stride_obj == NULL) return -1;
  int nd;
  if ((rc = gs__read_dims(ti->stride_obj, ti->stride, &nd)) != 0) return rc;
  ti->numel = 1;
  for (int d = 0; d < ti->ndim; d++) ti->numel *= (uint64_t)ti->shape[d];
  ti->bytes = ti->numel * gs__elem_size[ti->dtype];
  ti->contiguous = gs__is_contiguous(ti);
  ti->dense = ti->contiguous || gs__is_dense(ti);
  return 0;
}

static int gs__read_device(PyObject *t, gs__tinfo *ti) {
  bool cuda;
  if (gs__attr_is(t, gs__torch.s_is_cuda, gs__py.py_true, &cuda) != 0) return -1;
  ti->device = -1;
  if (!cuda) return 0;
  int64_t dev;
  if (gs__get_i64(t, gs__torch.s_get_device, true, &dev) != 0) return -1;
  ti->device = (int)dev;
  return 0;
}

/* Fills ti. Returns 0 (a candidate for the policy), 1 with *why (kept before asking the policy),
 * or -1 with a Python error set. */
static int gs__classify(PyObject *t, gs__tinfo *ti, gs_skip_reason *why) {
  bool param, strided, meta;
  if (gs__producer(t, &ti->producer, &ti->flags, &ti->output_nr) != 0) return -1;
  if (gs__is_param(t, ti->producer, &param) != 0) return -1;
  if (param) return *why = GS_SKIP_PARAM, 1;
  if (gs__attr_is(t, gs__torch.s_layout, gs__torch.strided, &strided) != 0) return -1;
  if (gs__attr_is(t, gs__torch.s_is_meta, gs__py.py_true, &meta) != 0) return -1;
  if (!strided || meta) return *why = GS_SKIP_LAYOUT, 1;
  PyObject *dt = gs__py.PyObject_GetAttr(t, gs__torch.s_dtype);
  if (dt == NULL) return -1;
  ti->dtype = gs__torch_dtype_code(dt);
  gs__py.Py_DecRef(dt);
  if (ti->dtype < 0) return *why = GS_SKIP_DTYPE, 1;
  int rc = gs__read_geometry(t, ti);
  if (rc == -2) return *why = GS_SKIP_LAYOUT, 1; /* more dims than the shim handles */
  if (rc != 0 || gs__read_device(t, ti) != 0) return -1;
  return 0;
}

/* --- keeping a tensor exact ------------------------------------------------------------- */

static void gs__note_error(gs_skip_reason *why) {
  PyObject *type, *value, *tb;
  gs__py.PyErr_Fetch(&type, &value, &tb);
  gs__warn_once("pack-error", "a saved tensor could not be inspected or compressed; it is kept "
                "exact (further such tensors are kept silently)");
  if (type) gs__py.Py_DecRef(type);
  if (value) gs__py.Py_DecRef(value);
  if (tb) gs__py.Py_DecRef(tb);
  *why = GS_SKIP_ERROR;
}

static uint64_t gs__data_ptr(PyObject *t) {
  PyObject *p = gs__call_method(t, gs__torch.s_data_ptr, NULL, NULL);
  if (p == NULL) return 0;
  uint64_t v = (uint64_t)gs__py.PyLong_AsUnsignedLongLongMask(p);
  gs__py.Py_DecRef(p);
  return v;
}

/* The handle of a kept tensor holds a detached alias: the tensor itself would make a reference
 * cycle through its own grad_fn (outputs save themselves). Same storage, same version counter. */
static PyObject *gs__keep(PyObject *t, const gs__tinfo *ti, int64_t version, gs_skip_reason why) {
  gs__stat_skip(why);
  gs_handle *h = calloc(1, sizeof(*h));
  if (h == NULL) goto last_resort;
  h->data = gs__call_method(t, gs__torch.s_detach, NULL, NULL);
  if (h->data == NULL) {
    free(h);
    goto last_resort;
  }
  h->version = version;
  h->device = ti->device;
  h->output_nr = ti->output_nr;
  h->producer = ti->producer;
  if (h->producer) gs__py.Py_IncRef(h->producer);
  /* Kept activations count as tracked bytes; parameters are not the engine's to count. */
  if (why != GS_SKIP_PARAM && ti->dtype >= 0 && ti->numel) {
    h->cat = GS_CAT_ACTIVATION;
    h->held_bytes = ti->bytes;
    if (ti->device < 0) h->reg_key = gs__data_ptr(h->data);
  }
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  PyObject *cap = gs__handle_wrap(h, t);
  if (cap && h->held_bytes) gs__trace_saved(GS_SAVED_PACK, h->held_bytes, h->held_bytes, 0, 0, ti->device);
  if (cap) return cap;
last_resort:
  /* Not even a handle could be made: give PyTorch the tensor itself, which unpack passes back. */
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  gs__py.Py_IncRef(t);
  return t;
}

/* --- compressing ---------------------------------------------------------------------------- */

static int gs__codec_cpu(const gs_codec_params *p, uint64_t src, uint64_t dst, uint64_t bytes) {
  if (gs__fault(GS_FAULT_CODEC)) return -EIO;
  if (bytes < GS__RELEASE_GIL_BYTES)
    return gs_compress_cpu(p, (const void *)(uintptr_t)src, (void *)(uintptr_t)dst, 0);
  PyObject *ts = gs__py.PyEval_SaveThread();
  int rc = gs_compress_cpu(p, (const void *)(uintptr_t)src, (void *)(uintptr_t)dst, 0);
  gs__py.PyEval_RestoreThread(ts);
  return rc;
}

static void gs__set_device(int64_t dev) {
  PyObject *args = gs__py.PyTuple_New(1), *r;
  if (args == NULL) return;
  gs__py.PyTuple_SetItem(args, 0, gs__py.PyLong_FromLongLong(dev));
  if ((r = gs__py.PyObject_CallObject(gs__torch.set_device, args))) gs__py.Py_DecRef(r);
  gs__py.Py_DecRef(args);
}

/* Encodes on the current stream of device dev, with dev current (multi-GPU: pack may run with
 * another device current). No record_stream for the source: the op that saved it read it on this
 * very stream, so our kernel is ordered like that op, and the caching allocator cannot hand its
 * memory to another stream's work before it. */
static int gs__codec_gpu(const gs_codec_params *p, uint64_t src, uint64_t dst, int dev,
                         uint64_t *stream) {
  int64_t prev = dev;
  PyObject *r;
  if (gs__torch.get_device && (r = gs__py.PyObject_CallObject(gs__torch.get_device, NULL))) {
    prev = gs__py.PyLong_AsLongLong(r);
    gs__py.Py_DecRef(r);
  }
  bool switched = prev != dev && gs__torch.set_device;
  if (switched) gs__set_device(dev);
  *stream = gs__torch_current_stream(dev);
  int rc = gs__fault(GS_FAULT_LAUNCH) ? -EIO : gs_gpu_compress(p, src, dst, (void *)(uintptr_t)*stream);
  if (switched) gs__set_device(prev);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  return rc;
}

/* Says why encoding failed — once per reason — and counts it; the tensor will be kept exact. */
static void gs__encode_failed(int rc, int device, gs_skip_reason *why) {
  *why = GS_SKIP_ERROR;
  if (rc == -ERANGE) {
    gs__warn_once("nonfinite", "a saved tensor holds Inf or NaN; such tensors are kept exact");
    *why = GS_SKIP_NONFINITE;
  } else if (rc == -EBUSY) {
    *why = GS_SKIP_CAPTURE; /* expected under CUDA graphs: counted, not warned */
  } else if (gs__py.PyErr_Occurred()) {
    gs__note_error(why);
  } else if (rc == -ENOMEM) {
    gs__stat_fail(GS_FAIL_ALLOC);
    gs__warn_once("alloc", "could not allocate a compressed buffer; such tensors are kept exact");
  } else if (device >= 0) {
    gs__stat_fail(GS_FAIL_LAUNCH);
    gs__warn_once("launch", "the GPU compression kernel could not be launched (%d); such tensors "
                  "are kept exact", rc);
  } else {
    gs__stat_fail(GS_FAIL_CODEC);
    gs__warn_once("codec-error", "compression failed (%d); such tensors are kept exact", rc);
  }
}

/* Allocates the compressed buffer with torch (so its memory statistics see it) and fills it. */
static PyObject *gs__encode(PyObject *src, const gs__tinfo *ti, const gs_codec_params *p,
                            uint64_t *stream, int *rc) {
  size_t nbytes = gs_codec_size(p);
  PyObject *args = nbytes ? gs__py.PyTuple_New(1) : NULL;
  if (args == NULL) return *rc = -EINVAL, NULL;
  gs__py.PyTuple_SetItem(args, 0, gs__py.PyLong_FromUnsignedLongLong(nbytes));
  PyObject *out = gs__fault(GS_FAULT_ALLOC) ? NULL
                : gs__call_method(src, gs__torch.s_new_empty, args, gs__torch.kw_uint8);
  gs__py.Py_DecRef(args);
  if (out == NULL) {
    /* Out of memory for our copy (often the GPU): the tensor stays exact, the job goes on. */
    if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
    return *rc = -ENOMEM, NULL;
  }
  uint64_t s = gs__data_ptr(src), d = gs__data_ptr(out);
  if (gs__py.PyErr_Occurred()) *rc = -EFAULT;
  else if (ti->device >= 0) *rc = gs__codec_gpu(p, s, d, ti->device, stream);
  else *rc = gs__codec_cpu(p, s, d, ti->bytes);
  if (*rc == 0) return out;
  gs__py.Py_DecRef(out);
  return NULL;
}

/* ReLU's backward reads only `output > 0`, but stochastic rounding sends small positive outputs
 * to 0 (the group minimum), flipping the mask and biasing the gradient (measured: 5 % error on an
 * MLP at 8 bits). Their handles also keep the sign as a lossless 1-bit bool, so that unpack can
 * restore it exactly; +1 bit per element. */
static int gs__encode_mask(gs_handle *h, PyObject *src, const gs__tinfo *ti) {
  PyObject *args = gs__py.PyTuple_New(1);
  if (args == NULL) return -1;
  gs__py.PyTuple_SetItem(args, 0, gs__py.PyLong_FromLongLong(0));
  PyObject *m = gs__call_method(src, gs__torch.s_gt, args, NULL); /* same strides as src */
  gs__py.Py_DecRef(args);
  if (m == NULL) return -1;
  gs__tinfo mi = *ti;
  mi.dtype = GS_DTYPE_BOOL;
  mi.bytes = ti->numel;
  h->mask_params = h->params;
  h->mask_params.dtype = GS_DTYPE_BOOL;
  h->mask_params.bits = 1;
  h->mask_params.tensor_id = ++gs__next_tensor_id;
  uint64_t stream = 0;
  int rc = 0;
  h->mask = gs__encode(m, &mi, &h->mask_params, &stream, &rc);
  gs__py.Py_DecRef(m);
  if (h->mask == NULL) return -1;
  h->mask_bytes = gs_codec_size(&h->mask_params);
  return 0;
}

static PyObject *gs__compress_src(PyObject *t, PyObject *src, const gs__tinfo *ti, unsigned bits,
                                  int64_t version, gs_skip_reason *why) {
  gs_codec_params p = {.n = ti->numel, .dtype = (gs_dtype)ti->dtype, .bits = bits,
                       .group = gs__cfg.group, .seed = gs__seed_set ? gs__seed_override : gs__cfg.seed,
                       .tensor_id = ++gs__next_tensor_id};
  uint64_t stream = 0;
  int rc = 0;
  PyObject *out = gs__encode(src, ti, &p, &stream, &rc);
  if (out == NULL) {
    gs__encode_failed(rc, ti->device, why);
    return NULL;
  }
  PyObject *size = gs__py.PyObject_GetAttr(t, gs__torch.s_shape);
  gs_handle *h = size ? calloc(1, sizeof(*h)) : NULL;
  if (h == NULL) {
    gs__py.Py_DecRef(out);
    if (size) gs__py.Py_DecRef(size);
    return gs__note_error(why), NULL;
  }
  h->data = out;
  h->size = size;
  if (!ti->contiguous && ti->dense) {
    h->stride = ti->stride_obj;
    gs__py.Py_IncRef(h->stride);
  }
  h->producer = ti->producer;
  if (h->producer) gs__py.Py_IncRef(h->producer);
  h->output_nr = ti->output_nr;
  h->dtype = ti->dtype;
  h->device = ti->device;
  h->compressed = true;
  h->cat = GS_CAT_COMPRESSED;
  h->version = version;
  h->data_bytes = gs_codec_size(&p);
  h->reg_key = ti->device < 0 ? gs__data_ptr(out) : 0;
  h->stream = stream;
  h->params = p;
  if ((ti->flags & GS_PRODUCER_RELU) && gs__encode_mask(h, src, ti) != 0) {
    if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
    gs__warn_once("relu-mask", "could not keep a ReLU sign mask; that output is kept exact");
    gs__handle_discard(h);
    *why = GS_SKIP_ERROR;
    return NULL;
  }
  h->held_bytes = h->data_bytes + h->mask_bytes;
  PyObject *cap = gs__handle_wrap(h, t);
  if (cap == NULL) return gs__note_error(why), NULL;
  gs__stat_add(compressed, 1);
  gs__stat_add(bytes_original, ti->bytes);
  gs__stat_add(bytes_compressed, h->held_bytes);
  return cap;
}

static PyObject *gs__compress(PyObject *t, const gs__tinfo *ti, unsigned bits, int64_t version,
                              gs_skip_reason *why) {
  /* A dense layout (any dim order) is encoded as it lies in memory and restored with the same
   * strides; anything else (slices with gaps, broadcasts) through a contiguous copy. */
  PyObject *src = ti->dense ? t : gs__call_method(t, gs__torch.s_contiguous, NULL, NULL);
  if (src == NULL) return gs__note_error(why), NULL;
  if (src == t) gs__py.Py_IncRef(src);
  uint64_t t0 = gs__now_ns();
  PyObject *cap = gs__compress_src(t, src, ti, bits, version, why);
  gs_handle *h = cap ? gs__handle_of(cap) : NULL;
  uint64_t dur = gs__now_ns() - t0;
  gs__stat_add(codec_ns, dur);
  if (h) gs__trace_saved(GS_SAVED_COMPRESS, ti->bytes, h->held_bytes, bits, dur, ti->device);
  gs__py.Py_DecRef(src);
  return cap;
}

/* --- the hook ------------------------------------------------------------------------------ */

static gs_policy_desc gs__desc(const gs__tinfo *ti, uint32_t index) {
  gs_policy_desc d = {.iteration = gs__iter, .index = index, .ndim = ti->ndim, .shape = ti->shape,
                      .dtype = ti->dtype, .bytes = ti->bytes, .device = ti->device,
                      .sensitive = (ti->flags & GS_PRODUCER_SENSITIVE) != 0};
  return d;
}

static PyObject *gs__pack_classified(PyObject *t, gs__tinfo *ti, uint32_t index, int64_t version) {
  gs_skip_reason why = GS_SKIP_ERROR;
  int rc = gs__classify(t, ti, &why);
  if (rc < 0) gs__note_error(&why);
  gs_policy_desc d = gs__desc(ti, index);
  gs_plan_reason reason = GS_REASON_SKIPPED;
  PyObject *h = NULL;
  if (rc == 0) {
    gs_policy_decision dec = gs__planwire_decide(t, &d, &reason);
    why = gs__planwire_skip(dec.keep);
    if (dec.bits) h = gs__compress(t, ti, dec.bits, version, &why);
  }
  if (h == NULL) h = gs__keep(t, ti, version, why);
  /* The plans see every pack, kept or not, so that identities stay positional. */
  gs__planwire_pack(h, gs__iter, &d, reason, why, reason != GS_REASON_SKIPPED,
                    (ti->flags & GS_PRODUCER_RELU) != 0);
  return h;
}

PyObject *gs__pack(PyObject *self, PyObject *t) {
  gs__stat_add(packed, 1);
  uint32_t index = gs__next_index();
  gs__tinfo ti = {.dtype = GS_POLICY_DTYPE_OTHER, .device = -1};
  int64_t version = 0;
  gs_policy_desc d = gs__desc(&ti, index);
  if (gs__get_i64(t, gs__torch.s__version, false, &version) != 0) {
    gs_skip_reason why;
    gs__note_error(&why);
    PyObject *h = gs__keep(t, &ti, version, why);
    gs__planwire_pack(h, gs__iter, &d, GS_REASON_SKIPPED, why, false, false);
    return h;
  }
  PyObject *dup = gs__handle_find(t, version);
  if (dup) {
    gs__stat_skip(GS_SKIP_DUPLICATE);
    gs__planwire_pack(dup, gs__iter, &d, GS_REASON_SKIPPED, GS_SKIP_DUPLICATE, false, false);
    return dup;
  }
  PyObject *h = gs__pack_classified(t, &ti, index, version);
  if (ti.stride_obj) gs__py.Py_DecRef(ti.stride_obj);
  return h;
}
