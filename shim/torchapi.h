/* torchapi.h: torch objects and interned attribute names the engine uses on every saved tensor. */
#ifndef GS_TORCHAPI_H
#define GS_TORCHAPI_H

#include "gactshim.h"
#include "pyapi.h"

/* Interned attribute names, so the hot path never builds a string. */
#define GS__TORCH_NAMES(X)                                                                     \
  X(requires_grad) X(is_leaf) X(_base) X(dtype) X(layout) X(is_cuda) X(is_meta) X(shape)       \
  X(stride) X(data_ptr) X(_version) X(grad_fn) X(new_empty) X(new_empty_strided) X(detach)     \
  X(contiguous) X(get_device) X(type) X(output_nr) X(record_stream) X(__name__) X(gt) X(add_)

#define GS__TORCH_NAME_MEMBER(n) PyObject *s_##n;

typedef struct gs_torch {
  PyObject *torch;
  PyObject *dtype[4];      /* indexed by gs_dtype: float32, float16, bfloat16, bool */
  PyObject *kw_dtype[4];   /* {"dtype": dtype[i]} */
  PyObject *kw_uint8;      /* {"dtype": torch.uint8} */
  PyObject *kw_alpha[4];   /* {"alpha": smallest positive step that survives in dtype i} */
  PyObject *strided;       /* torch.strided */
  PyObject *push_hooks;    /* torch._C._autograd._push_saved_tensors_default_hooks */
  PyObject *raw_stream;    /* torch._C._cuda_getCurrentRawStream, or NULL */
  PyObject *current_stream;/* torch.cuda.current_stream, or NULL */
  PyObject *get_device;    /* torch._C._cuda_getDevice, or NULL */
  PyObject *set_device;    /* torch._C._cuda_setDevice, or NULL */
  GS__TORCH_NAMES(GS__TORCH_NAME_MEMBER)
} gs_torch;

/* Global because the pack/unpack hooks (plain C functions called by PyTorch) need it; filled once
 * by gs__torch_load under the GIL before the hooks are pushed, read-only afterwards. */
extern gs_torch gs__torch;

/* Looks the objects up in the imported torch module. 0 or -ENOENT (a Python error is set). */
int gs__torch_load(PyObject *torch);

/* The gs_dtype of a torch dtype object, or -1. */
int gs__torch_dtype_code(PyObject *dtype);

/* obj.<name>(), or obj.<name>(*args, **kw) when args is not NULL. New reference or NULL. */
PyObject *gs__call_method(PyObject *obj, PyObject *name, PyObject *args, PyObject *kw);

/* int(obj.<name>) or int(obj.<name>()) (call != 0): 0 or -1 with a Python error set. */
int gs__get_i64(PyObject *obj, PyObject *name, bool call, int64_t *out);

/* The raw CUstream current on CUDA device dev (0 when it cannot be found). */
uint64_t gs__torch_current_stream(int dev);

#endif
