/* encode.c: turns a saved tensor into a handle — compressed by the codec, or kept exact. */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>

/* Tensors at least this large are compressed with the GIL released, so other Python threads run. */
#define GS__RELEASE_GIL_BYTES (1u << 20)

/* Stochastic-rounding key and a distinct id per compressed tensor. Global because PyTorch calls
 * pack as a plain function; touched under the GIL only. */
static uint64_t gs__seed_override;
static bool gs__seed_set;
static uint64_t gs__next_tensor_id;

void gs__engine_set_seed(uint64_t seed) {
  gs__seed_override = seed;
  gs__seed_set = true;
}

/* The seed of a pack: the configured (or set) seed, mixed with the job's rank when it has one, so
 * that DDP ranks, which see the same tensor ids in the same order, do not draw the same rounding
 * noise (correlated noise would not average out in the all-reduced gradient). Rank 0 and a job
 * without a rank keep the seed as it is, so single-process runs stay as they were. The variable
 * is read at each pack (a getenv, small beside a codec call), so a process that sets RANK late
 * is still seen. */
static uint64_t gs__pack_seed(void) {
  uint64_t seed = gs__seed_set ? gs__seed_override : gs__cfg.seed;
  const char *r = gs__rank_env();
  char *end;
  unsigned long long rank = r ? strtoull(r, &end, 10) : 0;
  if (rank == 0 || *end != '\0') return seed;
  uint64_t z = seed ^ (rank * 0x9e3779b97f4a7c15ull); /* splitmix64's finalizer */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void gs__note_error(gs_skip_reason *why) {
  PyObject *type, *value, *tb;
  gs__py.PyErr_Fetch(&type, &value, &tb);
  gs__warn_once("pack-error", "a saved tensor could not be inspected or compressed; it is kept "
                "exact (further such tensors are kept silently)");
  if (type) gs__py.Py_DecRef(type);
  if (value) gs__py.Py_DecRef(value);
  if (tb) gs__py.Py_DecRef(tb);
  *why = GS_SKIP_ERROR;
}

/* --- keeping a tensor exact ------------------------------------------------------------- */

/* The handle of a kept tensor holds a detached alias: the tensor itself would make a reference
 * cycle through its own grad_fn (outputs save themselves). Same storage, same version counter. */
PyObject *gs__keep(PyObject *t, const gs_tensor_facts *f, gs_skip_reason why) {
  gs__stat_skip(why);
  gs_handle *h = calloc(1, sizeof(*h));
  if (h == NULL) goto last_resort;
  h->data = gs__call_method(t, gs__torch.s_detach, NULL, NULL);
  if (h->data == NULL) {
    free(h);
    goto last_resort;
  }
  h->version = f->version;
  h->device = f->device;
  h->id = f->id;
  h->output_nr = f->output_nr;
  h->producer = f->producer;
  if (h->producer) gs__py.Py_IncRef(h->producer);
  /* Kept activations count as tracked bytes; parameters are not the engine's to count. */
  if (why != GS_SKIP_PARAM && f->numel) {
    h->cat = GS_CAT_ACTIVATION;
    h->held_bytes = f->bytes;
    if (f->device < 0) h->reg_key = f->data_ptr;
  }
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  PyObject *cap = gs__handle_wrap(h, t);
  if (cap && h->held_bytes) gs__trace_saved(GS_SAVED_PACK, h->held_bytes, h->held_bytes, 0, 0, f->device, &h->id);
  if (cap) return cap;
last_resort:
  /* Not even a handle could be made: give PyTorch the tensor itself, which unpack passes back. */
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  gs__py.Py_IncRef(t);
  return t;
}

/* --- the codec ------------------------------------------------------------------------------ */

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
  int rc = gs_gpu_use_device(dev);
  if (rc == 0) rc = gs__torch_current_stream(dev, stream);
  if (rc == 0)
    rc = gs__fault(GS_FAULT_LAUNCH) ? -EIO : gs_gpu_compress(p, src, dst, (void *)(uintptr_t)*stream);
  if (rc == 0) gs__note_gpu_time();
  int cu = 0;
  /* Asked while dev's context is still current: the load is tried, and fails, per context. */
  const char *why = NULL;
  if (rc == -ENOEXEC && gs_gpu_load_status(NULL, &cu) == -ENOEXEC) {
    gs_gpu_load_source(NULL, &why);
    gs__warn_once("gpu-load", "the GPU kernels could not be loaded on device %d (CUresult %d%s%s); "
                  "its saved tensors are kept exact", dev, cu, why ? "; run-time compile: " : "",
                  why ? why : "");
  }
  if (switched) gs__set_device(prev);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  return rc;
}

void gs__note_gpu_time(void) {
  uint64_t ns, timed, untimed;
  if (gs_gpu_kernel_time(&ns, &timed, &untimed) != 0) return;
  __atomic_store_n(&gs__stats.gpu_kernel_ns, ns, __ATOMIC_RELAXED);
  __atomic_store_n(&gs__stats.gpu_kernel_timed, timed, __ATOMIC_RELAXED);
  __atomic_store_n(&gs__stats.gpu_kernel_untimed, untimed, __ATOMIC_RELAXED);
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
  } else if (device >= 0 && rc == -ESRCH) {
    gs__stat_fail(GS_FAIL_LAUNCH);
    gs__warn_once("stream", "PyTorch's current CUDA stream could not be found; nothing is launched "
                  "on a guessed stream, such tensors are kept exact");
  } else if (device >= 0) {
    gs__stat_fail(GS_FAIL_LAUNCH);
    gs__warn_once("launch", "the GPU compression kernel could not be launched (%d); such tensors "
                  "are kept exact", rc);
  } else {
    gs__stat_fail(GS_FAIL_CODEC);
    gs__warn_once("codec-error", "compression failed (%d); such tensors are kept exact", rc);
  }
}

/* Allocates the compressed buffer with torch (so its memory statistics see it) and fills it from
 * the n elements at src (device dev, or -1). */
static PyObject *gs__encode_buffer(PyObject *like, uint64_t src, int dev, const gs_codec_params *p,
                                   uint64_t *stream, int *rc) {
  size_t nbytes = gs_codec_size(p);
  PyObject *args = nbytes ? gs__py.PyTuple_New(1) : NULL;
  if (args == NULL) return *rc = -EINVAL, NULL;
  gs__py.PyTuple_SetItem(args, 0, gs__py.PyLong_FromUnsignedLongLong(nbytes));
  PyObject *out = gs__fault(GS_FAULT_ALLOC) ? NULL
                : gs__call_method(like, gs__torch.s_new_empty, args, gs__torch.kw_uint8);
  gs__py.Py_DecRef(args);
  if (out == NULL) {
    /* Out of memory for our copy (often the GPU): the tensor stays exact, the job goes on. */
    if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
    return *rc = -ENOMEM, NULL;
  }
  uint64_t dst = gs__torch_data_ptr(out);
  if (gs__py.PyErr_Occurred()) *rc = -EFAULT;
  else if (dev >= 0) *rc = gs__codec_gpu(p, src, dst, dev, stream);
  else *rc = gs__codec_cpu(p, src, dst, p->n * gs_dtype_bytes(p->dtype));
  if (*rc == 0) return out;
  gs__py.Py_DecRef(out);
  return NULL;
}

/* The handle of a compressed tensor: what unpack needs to restore it with its shape and strides. */
static gs_handle *gs__compressed_handle(PyObject *out, const gs_tensor_facts *f, bool copied,
                                        const gs_codec_params *p, uint64_t stream) {
  gs_handle *h = calloc(1, sizeof(*h));
  if (h == NULL) return NULL;
  h->data = out;
  h->size = f->size_obj;
  gs__py.Py_IncRef(h->size);
  if (!f->contiguous) { /* restored with the strides the saving op saw */
    h->stride = f->stride_obj;
    gs__py.Py_IncRef(h->stride);
    h->restride = copied; /* encoded from a contiguous copy: decoded so, then copied back */
  }
  h->producer = f->producer;
  if (h->producer) gs__py.Py_IncRef(h->producer);
  h->output_nr = f->output_nr;
  h->dtype = f->dtype;
  h->device = f->device;
  h->compressed = true;
  h->cat = GS_CAT_COMPRESSED;
  h->version = f->version;
  h->data_bytes = gs_codec_size(p);
  h->reg_key = f->device < 0 ? gs__torch_data_ptr(out) : 0;
  h->stream = stream;
  h->params = *p;
  return h;
}

/* GPU: a pinned word for the kernel's count of non-finite groups, and the original to hold until
 * it says 0 (nonfinite.c). 0, or -1 with *why set: the tensor is kept exact. */
static int gs__gpu_report(PyObject *t, int dev, gs_codec_params *p, int *word, PyObject **orig,
                          gs_skip_reason *why) {
  gs__report_poll(); /* originals of tensors found clean since the last pack go now */
  /* The first word allocates pinned memory, which must not happen inside a CUDA graph capture. */
  uint64_t stream;
  if (!gs__report_allocated() && (gs__torch_current_stream(dev, &stream) != 0 ||
                                  gs_gpu_stream_capturing((void *)(uintptr_t)stream) != 0)) {
    if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
    *why = GS_SKIP_CAPTURE;
    return -1;
  }
  *word = gs__report_take(&p->report);
  if (*word < 0) {
    gs__warn_once("report", "no pinned memory for the GPU kernels' non-finite counts (%d); such "
                  "tensors are kept exact", *word);
    *why = GS_SKIP_ERROR;
    return -1;
  }
  *orig = gs__call_method(t, gs__torch.s_detach, NULL, NULL); /* detached: no reference cycle */
  if (*orig != NULL) return 0;
  gs__report_give_back(*word);
  gs__note_error(why);
  return -1;
}

/* Encodes src (t itself, or a contiguous copy of it) at bits and wraps the result. */
static PyObject *gs__compress_src(PyObject *t, PyObject *src, uint64_t src_ptr,
                                  const gs_tensor_facts *f, unsigned bits, gs_skip_reason *why) {
  /* ReLU's backward reads only `output > 0`, but stochastic rounding sends small positive outputs
   * to 0 (the group minimum), flipping the mask and biasing the gradient (measured: 5 % error on
   * an MLP at 8 bits). The codec's sign plane keeps `x > 0` exactly, written by the compress
   * kernel and applied by the decompress kernel: +1 bit per element, no extra pass. */
  gs_codec_params p = {.n = f->numel, .dtype = (gs_dtype)f->dtype, .bits = bits,
                       .group = gs__facts_group(f, gs__group_at_bits(gs__cfg.group, bits)),
                       .seed = gs__pack_seed(),
                       .tensor_id = ++gs__next_tensor_id,
                       .flags = (f->producer_flags & GS_PRODUCER_RELU) ? GS_CODEC_RELU_MASK : 0u};
  uint64_t stream = 0;
  int rc = 0, word = -1;
  PyObject *orig = NULL;
  if (f->device >= 0 && gs__gpu_report(t, f->device, &p, &word, &orig, why) != 0) return NULL;
  PyObject *out = gs__encode_buffer(src, src_ptr, f->device, &p, &stream, &rc);
  if (out == NULL) {
    if (orig) gs__report_give_back(word), gs__py.Py_DecRef(orig); /* nothing was launched */
    return gs__encode_failed(rc, f->device, why), NULL;
  }
  gs_handle *h = gs__compressed_handle(out, f, src != t, &p, stream);
  if (h == NULL) {
    if (orig) gs__report_abandon(word), gs__py.Py_DecRef(orig);
    gs__py.Py_DecRef(out);
    return gs__note_error(why), NULL;
  }
  if (orig) gs__report_attach(h, word, orig);
  h->held_bytes = h->data_bytes;
  PyObject *cap = gs__handle_wrap(h, t);
  if (cap == NULL) return gs__note_error(why), NULL;
  gs__stat_add(compressed, 1);
  gs__stat_add(bytes_original, f->bytes);
  gs__stat_add(bytes_compressed, h->held_bytes);
  return cap;
}

PyObject *gs__compress(PyObject *t, const gs_tensor_facts *f, unsigned bits, gs_skip_reason *why) {
  /* A dense layout (any dim order) is encoded as it lies in memory and restored with the same
   * strides; anything else (slices with gaps; a convolution's channels_last output, whose groups
   * should follow channel planes) through a contiguous copy. */
  bool copied = gs__facts_copied(f, gs__cfg.group);
  PyObject *src = copied ? gs__call_method(t, gs__torch.s_contiguous, NULL, NULL) : t;
  if (src == NULL) return gs__note_error(why), NULL;
  if (src == t) gs__py.Py_IncRef(src);
  uint64_t src_ptr = src == t && f->device < 0 ? f->data_ptr : gs__torch_data_ptr(src);
  uint64_t t0 = gs__now_ns();
  PyObject *cap = gs__py.PyErr_Occurred() ? (gs__note_error(why), NULL)
                                          : gs__compress_src(t, src, src_ptr, f, bits, why);
  gs_handle *h = cap ? gs__handle_of(cap) : NULL;
  uint64_t dur = gs__now_ns() - t0;
  gs__stat_add(codec_ns, dur);
  if (h) h->id = f->id;
  if (h) gs__trace_saved(GS_SAVED_COMPRESS, f->bytes, h->held_bytes, bits, dur, f->device, &h->id);
  gs__py.Py_DecRef(src);
  return cap;
}
