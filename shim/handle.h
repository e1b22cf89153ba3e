/* handle.h: what pack returns — a capsule holding a saved tensor's compressed (or kept) form. */
#ifndef GS_HANDLE_H
#define GS_HANDLE_H

#include "gactshim.h"
#include "pyapi.h"
#include "registry.h"

/* Every field is owned by the handle; the capsule's destructor releases them (under the GIL). */
typedef struct gs_handle {
  PyObject *data;      /* compressed uint8 tensor, or the kept tensor (detached alias) */
  PyObject *src_ref;   /* weakref to the tensor pack received (version check, dedup) */
  PyObject *cache_ref; /* weakref to the last decompressed tensor, or NULL */
  PyObject *size;      /* torch.Size of the original (compressed handles) */
  PyObject *stride;    /* strides to restore with empty_strided, or NULL for contiguous */
  PyObject *producer;  /* type of the source's grad_fn (for PyTorch's error wording), or NULL */
  PyObject *mask;      /* ReLU outputs: compressed 1-bit `x > 0` (see engine.c), or NULL */
  uint64_t data_bytes; /* compressed size of data */
  uint64_t mask_bytes; /* compressed size of mask */
  gs_codec_params mask_params;
  int64_t output_nr;   /* which output of the producer the source is */
  int dtype;           /* gs_dtype of the original (compressed handles) */
  int device;          /* CUDA device, or -1 for the CPU */
  bool compressed;
  bool registered;     /* reg_key is in the registry (CPU) */
  gs_category cat;     /* what the held bytes count as */
  int64_t version;     /* the source's _version at pack */
  uint64_t reg_key;    /* registry key (data pointer of the held bytes) */
  uint64_t held_bytes; /* bytes the handle keeps alive (compressed size, or the kept tensor) */
  uint64_t stream;     /* CUstream of the pack (GPU) */
  gs_codec_params params;
  PyObject *capsule;   /* borrowed: the capsule that owns this handle */
  uintptr_t key;       /* dedup key: address of the source tensor object */
  struct gs_handle *next; /* dedup chain */
  bool planned;        /* known to the plans (planwire.c): its death is reported */
  uint32_t plan_index; /* k: its pack's position in iteration plan_iter */
  uint64_t plan_iter;
  uint64_t full_bytes; /* the source's bytes at full precision */
} gs_handle;

/* A new capsule owning h (which must be calloc'ed; the capsule frees it). NULL on failure, with
 * h released. The handle enters the dedup table and, for CPU data, the registry. */
PyObject *gs__handle_wrap(gs_handle *h, PyObject *src);

/* Releases a handle that never got its capsule. */
void gs__handle_discard(gs_handle *h);

/* The handle inside obj, or NULL when obj is not one of ours (no Python error is set). */
gs_handle *gs__handle_of(PyObject *obj);

/* A new reference to the live handle already made for src at this version, or NULL. */
PyObject *gs__handle_find(PyObject *src, int64_t version);

/* Live bytes held by handles of GPU tensors, per category (the driver-level registry counts the
 * allocator's segments; these say what part of them is saved activations). */
uint64_t gs__handle_gpu_bytes(gs_category cat);

#endif
