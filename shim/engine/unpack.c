/* unpack.c: unpack — PyTorch's in-place check (which it skips under hooks), then decompression. */
#include "engine.h"

#include <errno.h>
#include <stdio.h>

/* "[torch.FloatTensor [3, 3]]" part of PyTorch's message, from the live tensor. */
static void gs__describe(PyObject *t, char *buf, size_t len) {
  size_t off = 0;
  PyObject *ty = gs__call_method(t, gs__torch.s_type, NULL, NULL);
  const char *tn = ty ? gs__py.PyUnicode_AsUTF8AndSize(ty, NULL) : NULL;
  off += (size_t)snprintf(buf, len, "[%s [", tn ? tn : "torch.Tensor");
  if (ty) gs__py.Py_DecRef(ty);
  PyObject *shape = gs__py.PyObject_GetAttr(t, gs__torch.s_shape);
  Py_ssize_t n = shape ? gs__py.PyTuple_Size(shape) : 0;
  for (Py_ssize_t i = 0; i < n && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? ", " : "",
                            gs__py.PyLong_AsLongLong(gs__py.PyTuple_GetItem(shape, i)));
  if (shape) gs__py.Py_DecRef(shape);
  if (off < len) snprintf(buf + off, len - off, "]]");
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
}

static void gs__raise_version(gs_handle *h, PyObject *t, int64_t now) {
  char what[256], producer[160] = "";
  gs__describe(t, what, sizeof(what));
  PyObject *name = h->producer ? gs__py.PyObject_GetAttr(h->producer, gs__torch.s___name__) : NULL;
  const char *pn = name ? gs__py.PyUnicode_AsUTF8AndSize(name, NULL) : NULL;
  if (pn) snprintf(producer, sizeof(producer), ", which is output %lld of %s", (long long)h->output_nr, pn);
  if (name) gs__py.Py_DecRef(name);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  char msg[768];
  snprintf(msg, sizeof(msg),
           "one of the variables needed for gradient computation has been modified by an inplace "
           "operation: %s%s, is at version %lld; expected version %lld instead. Hint: enable anomaly "
           "detection to find the operation that failed to compute its gradient, with "
           "torch.autograd.set_detect_anomaly(True).",
           what, producer, (long long)now, (long long)h->version);
  gs__py.PyErr_SetString(gs__py.exc_runtime, msg);
}

/* PyTorch compares saved versions only without hooks; we compare them ourselves, as long as the
 * tensor can still be reached (a dead tensor can no longer be modified). 0, or -1 raised. */
static int gs__check_version(gs_handle *h) {
  PyObject *src = gs__py.PyWeakref_GetObject(h->src_ref);
  PyObject *probe = h->compressed ? src : h->data; /* a kept alias shares the version counter */
  if (probe == NULL || probe == gs__py.none) {
    gs__py.PyErr_Clear();
    return 0;
  }
  int64_t now;
  if (gs__get_i64(probe, gs__torch.s__version, false, &now) != 0) {
    gs__py.PyErr_Clear();
    return 0;
  }
  if (now == h->version) return 0;
  gs__raise_version(h, (src && src != gs__py.none) ? src : probe, now);
  return -1;
}

/* Autograd may run a backward node on another stream than its forward: the compressed buffer
 * (its sign plane included), read by the decompress kernel there, must not be reused before that
 * kernel ran. */
static void gs__guard_stream(gs_handle *h, PyObject *data, uint64_t stream) {
  if (stream == h->stream || gs__torch.current_stream == NULL) return;
  PyObject *args = gs__py.PyTuple_New(1);
  if (args == NULL) return;
  gs__py.PyTuple_SetItem(args, 0, gs__py.PyLong_FromLongLong(h->device));
  PyObject *st = gs__py.PyObject_CallObject(gs__torch.current_stream, args);
  gs__py.Py_DecRef(args);
  if (st && (args = gs__py.PyTuple_New(1))) {
    gs__py.Py_IncRef(st);
    gs__py.PyTuple_SetItem(args, 0, st);
    PyObject *r = gs__call_method(data, gs__torch.s_record_stream, args, NULL);
    if (r) gs__py.Py_DecRef(r);
    gs__py.Py_DecRef(args);
  }
  if (st) gs__py.Py_DecRef(st);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
}

static int gs__decode(gs_handle *h, PyObject *data, uint64_t bytes, const gs_codec_params *p,
                      uint64_t dst) {
  uint64_t src = gs__torch_data_ptr(data);
  if (src == 0) return -EFAULT;
  if (h->device < 0)
    return gs_decompress_cpu((const void *)(uintptr_t)src, bytes, (void *)(uintptr_t)dst, p, 0);
  /* Backward runs on the tensor's device and stream (autograd's guard), but its thread may have
   * no current context yet (pytorch#124565): make the device's primary context current. No stream
   * found: no launch, which on the legacy stream would not be ordered with PyTorch's streams. */
  uint64_t stream;
  int rc = gs_gpu_use_device(h->device);
  if (rc == 0) rc = gs__torch_current_stream(h->device, &stream);
  if (rc != 0) return rc;
  gs__guard_stream(h, data, stream);
  rc = gs_gpu_decompress(p, src, dst, (void *)(uintptr_t)stream);
  if (rc == 0) gs__note_gpu_time();
  return rc;
}

/* A new tensor of the handle's size and layout, of dtype code dt. */
static PyObject *gs__empty_like(gs_handle *h, int dt) {
  PyObject *args = gs__py.PyTuple_New(h->stride ? 2 : 1);
  if (args == NULL) return NULL;
  gs__py.Py_IncRef(h->size);
  gs__py.PyTuple_SetItem(args, 0, h->size);
  if (h->stride) {
    gs__py.Py_IncRef(h->stride);
    gs__py.PyTuple_SetItem(args, 1, h->stride);
  }
  PyObject *name = h->stride ? gs__torch.s_new_empty_strided : gs__torch.s_new_empty;
  PyObject *out = gs__call_method(h->data, name, args, gs__torch.kw_dtype[dt]);
  gs__py.Py_DecRef(args);
  return out;
}

PyObject *gs__decompress(gs_handle *h) {
  PyObject *out = gs__empty_like(h, h->dtype);
  if (out == NULL) return NULL;
  uint64_t dst = gs__torch_data_ptr(out);
  int rc = dst ? gs__decode(h, h->data, h->data_bytes, &h->params, dst) : -EFAULT;
  if (rc == 0) return out;
  gs__py.Py_DecRef(out);
  if (!gs__py.PyErr_Occurred()) {
    char msg[240];
    if (rc == -EBUSY)
      snprintf(msg, sizeof(msg), "gactshim: a compressed saved tensor was unpacked on a stream "
               "that is capturing a CUDA graph; run that backward outside capture, or with "
               "GACTSHIM_DISABLE=1");
    else
      snprintf(msg, sizeof(msg), "gactshim: a saved tensor could not be decompressed (error %d)", rc);
    gs__py.PyErr_SetString(gs__py.exc_runtime, msg);
  }
  return NULL;
}

/* The SAVED records' id at unpack: the attribution names the node that runs the first unpack. */
static const gs_trace_saved_id *gs__unpack_id(gs_handle *h, gs_trace_saved_id *out) {
  if (!h->node_known) h->node_attr = gs__attrib_unpack(), h->node_known = true;
  *out = h->id;
  out->attr = h->node_attr;
  return out;
}

PyObject *gs__unpack(PyObject *self, PyObject *obj) {
  gs__engine_note_unpack();
  gs_handle *h = gs__handle_of(obj);
  if (h == NULL) { /* pack's last resort handed PyTorch the tensor itself */
    gs__py.Py_IncRef(obj);
    return obj;
  }
  if (gs__check_version(h) != 0) return NULL;
  gs__plans_unpack(h);
  gs_trace_saved_id id;
  /* GPU: until its kernel has reported no non-finite group, the original is the answer. */
  if (h->compressed && (h->report || h->orig) && gs__report_settle(h) == 0) {
    gs__py.Py_IncRef(h->orig);
    return h->orig;
  }
  if (!h->compressed) {
    if (h->held_bytes) gs__trace_saved(GS_SAVED_UNPACK, h->held_bytes, h->held_bytes, 0, 0, h->device, gs__unpack_id(h, &id));
    gs__py.Py_IncRef(h->data);
    return h->data;
  }
  /* Dedup and retain_graph unpack one handle several times: reuse the copy while it lives. */
  PyObject *cached = h->cache_ref ? gs__py.PyWeakref_GetObject(h->cache_ref) : NULL;
  if (cached && cached != gs__py.none) {
    gs__py.Py_IncRef(cached);
    return cached;
  }
  uint64_t t0 = gs__now_ns();
  PyObject *out = gs__decompress(h);
  if (out == NULL) return NULL;
  uint64_t dur = gs__now_ns() - t0;
  gs__stat_add(codec_ns, dur);
  gs__trace_saved(GS_SAVED_DECOMPRESS, h->held_bytes, h->params.n * gs_dtype_bytes(h->params.dtype), h->params.bits, dur,
                  h->device, gs__unpack_id(h, &id));
  if (h->cache_ref) gs__py.Py_DecRef(h->cache_ref);
  h->cache_ref = gs__py.PyWeakref_NewRef(out, NULL);
  if (h->cache_ref == NULL) gs__py.PyErr_Clear();
  gs__stat_add(unpacked, 1);
  return out;
}
