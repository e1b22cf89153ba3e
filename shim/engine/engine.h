/* engine.h: the saved-tensor hooks PyTorch calls — pack in forward, unpack in backward. */
#ifndef GS_ENGINE_H
#define GS_ENGINE_H

/* The engine room depends on base, registry, timeline, policy (decisions) and kernels (the
 * codec). It is the only room that knows Python and torch. */

#include "base.h"
#include "gactshim.h"
#include "policy.h"
#include "registry.h"
#include "timeline.h"

#include <sys/types.h>

/* ---- the Python stable-ABI functions the shim calls, resolved at run time (pyapi.c) -------- */

/* libgactshim.so is loaded into every process, Python or not, and one build serves several
 * Python versions: it links no libpython and names no Python symbol. Every function and data
 * object below comes from dlsym(RTLD_DEFAULT) once the interpreter imports our module, and only
 * stable-ABI (limited API) entries and struct layouts are used. */


typedef struct _object PyObject; /* opaque: reference counts go through Py_IncRef/Py_DecRef */
typedef ssize_t Py_ssize_t;
typedef PyObject *(*PyCFunction)(PyObject *self, PyObject *args);
typedef void (*PyCapsule_Destructor)(PyObject *capsule);

/* Stable-ABI layouts (Include/moduleobject.h, methodobject.h; unchanged since 3.5). */
typedef struct gs_py_head {
  Py_ssize_t ob_refcnt;
  void *ob_type;
} gs_py_head;
typedef struct PyMethodDef {
  const char *ml_name;
  PyCFunction ml_meth;
  int ml_flags;
  const char *ml_doc;
} PyMethodDef;
typedef struct PyModuleDef {
  gs_py_head m_base_head;
  PyObject *(*m_init)(void);
  Py_ssize_t m_index;
  PyObject *m_copy;
  const char *m_name;
  const char *m_doc;
  Py_ssize_t m_size;
  PyMethodDef *m_methods;
  void *m_slots;
  void *m_traverse;
  void *m_clear;
  void *m_free;
} PyModuleDef;

#define GS_METH_VARARGS 0x0001
#define GS_METH_NOARGS 0x0004
#define GS_METH_O 0x0008
#define GS_PYTHON_ABI_VERSION 3

/* X(return type, name, parameter list): every function the shim calls. */
#define GS__PYAPI_FUNCS(X)                                                                  \
  X(PyObject *, PyModule_Create2, (PyModuleDef *, int))                                     \
  X(void, Py_IncRef, (PyObject *))                                                          \
  X(void, Py_DecRef, (PyObject *))                                                          \
  X(PyObject *, PyObject_GetAttr, (PyObject *, PyObject *))                                 \
  X(PyObject *, PyObject_GetAttrString, (PyObject *, const char *))                         \
  X(int, PyObject_SetAttrString, (PyObject *, const char *, PyObject *))                    \
  X(PyObject *, PyObject_Call, (PyObject *, PyObject *, PyObject *))                        \
  X(PyObject *, PyObject_CallObject, (PyObject *, PyObject *))                              \
  X(PyObject *, PyObject_Type, (PyObject *))                                                \
  X(int, PyObject_IsTrue, (PyObject *))                                                     \
  X(PyObject *, PyUnicode_InternFromString, (const char *))                                 \
  X(PyObject *, PyUnicode_FromString, (const char *))                                       \
  X(const char *, PyUnicode_AsUTF8AndSize, (PyObject *, Py_ssize_t *))                      \
  X(PyObject *, PyFloat_FromDouble, (double))                                               \
  X(double, PyFloat_AsDouble, (PyObject *))                                                 \
  X(PyObject *, PyLong_FromLongLong, (long long))                                           \
  X(PyObject *, PyLong_FromUnsignedLongLong, (unsigned long long))                          \
  X(long long, PyLong_AsLongLong, (PyObject *))                                             \
  X(unsigned long long, PyLong_AsUnsignedLongLongMask, (PyObject *))                        \
  X(PyObject *, PyTuple_New, (Py_ssize_t))                                                  \
  X(int, PyTuple_SetItem, (PyObject *, Py_ssize_t, PyObject *))                             \
  X(PyObject *, PyTuple_GetItem, (PyObject *, Py_ssize_t))                                  \
  X(Py_ssize_t, PyTuple_Size, (PyObject *))                                                 \
  X(PyObject *, PyDict_New, (void))                                                         \
  X(int, PyDict_SetItemString, (PyObject *, const char *, PyObject *))                      \
  X(PyObject *, PyCapsule_New, (void *, const char *, PyCapsule_Destructor))                \
  X(void *, PyCapsule_GetPointer, (PyObject *, const char *))                               \
  X(int, PyCapsule_IsValid, (PyObject *, const char *))                                     \
  X(PyObject *, PyWeakref_NewRef, (PyObject *, PyObject *))                                 \
  X(PyObject *, PyWeakref_GetObject, (PyObject *))                                          \
  X(PyObject *, PyErr_Occurred, (void))                                                     \
  X(void, PyErr_Clear, (void))                                                              \
  X(void, PyErr_SetString, (PyObject *, const char *))                                      \
  X(void, PyErr_Fetch, (PyObject **, PyObject **, PyObject **))                             \
  X(void, PyErr_Restore, (PyObject *, PyObject *, PyObject *))                              \
  X(PyObject *, PyEval_SaveThread, (void))                                                  \
  X(PyObject *, PyEval_GetFrame, (void))                                                    \
  X(int, PyFrame_GetLineNumber, (PyObject *))                                               \
  X(void, PyEval_RestoreThread, (PyObject *))

#define GS__PYAPI_MEMBER(ret, name, args) ret(*name) args;

/* The resolved table, with the data objects the shim needs. */
typedef struct gs_pyapi {
  GS__PYAPI_FUNCS(GS__PYAPI_MEMBER)
  PyObject *none;          /* &_Py_NoneStruct */
  PyObject *py_true;       /* &_Py_TrueStruct */
  PyObject *exc_runtime;   /* PyExc_RuntimeError */
  PyObject *exc_type;      /* PyExc_TypeError */
} gs_pyapi;

/* Global because every Python-facing function of the shim calls through it; written once by
 * gs__pyapi_load (under the GIL, before any hook is installed), read-only afterwards. */
extern gs_pyapi gs__py;

/* Resolves the table from the running interpreter. 0, or -ENOENT naming nothing in Python (the
 * interpreter may not be able to raise yet); the caller then refuses to load the module. */
int gs__pyapi_load(void);

/* A new reference to None, for functions that return nothing. */
PyObject *gs__py_none(void);


/* ---- torch objects and interned attribute names (torchapi.c) ------------------------------ */

/* Interned attribute names, so the hot path never builds a string. */
#define GS__TORCH_NAMES(X)                                                                     \
  X(requires_grad) X(is_leaf) X(_base) X(dtype) X(layout) X(is_cuda) X(is_meta) X(shape)       \
  X(stride) X(data_ptr) X(_version) X(grad_fn) X(new_empty) X(new_empty_strided) X(detach)     \
  X(contiguous) X(get_device) X(type) X(output_nr) X(record_stream) X(__name__)                \
  X(next_functions) X(is_cpu) X(copy_) X(f_back) X(f_code) X(co_filename) X(co_qualname)     \
  X(co_name)

#define GS__TORCH_NAME_MEMBER(n) PyObject *s_##n;

typedef struct gs_torch {
  PyObject *torch;
  PyObject *dtype[4];      /* indexed by gs_dtype: float32, float16, bfloat16, bool */
  PyObject *kw_dtype[4];   /* {"dtype": dtype[i]} */
  PyObject *kw_uint8;      /* {"dtype": torch.uint8} */
  PyObject *strided;       /* torch.strided */
  PyObject *tensor_type;   /* torch.Tensor: with Parameter, the types pack reads (not subclasses) */
  PyObject *param_type;    /* torch.nn.Parameter */
  PyObject *push_hooks;    /* torch._C._autograd._push_saved_tensors_default_hooks */
  PyObject *pop_hooks;     /* torch._C._autograd._pop_saved_tensors_default_hooks, or NULL */
  PyObject *top_hooks;     /* torch._C._autograd._top_saved_tensors_default_hooks, or NULL */
  PyObject *raw_stream;    /* torch._C._cuda_getCurrentRawStream, or NULL */
  PyObject *current_stream;/* torch.cuda.current_stream, or NULL */
  PyObject *profiler_enabled; /* torch._C._autograd._profiler_enabled, or NULL */
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

/* The raw CUstream current on CUDA device dev into *stream (0 is the legacy stream, a real
 * answer). 0, or -ESRCH when it cannot be found: the caller must not launch then, since a launch
 * on a guessed stream is not ordered with PyTorch's. */
int gs__torch_current_stream(int dev, uint64_t *stream);

/* Whether PyTorch's profiler (kineto) is on now. */
bool gs__torch_profiler_on(void);

/* Copies the codec's GPU time so far (CUDA events, gs_gpu_kernel_time) into the stats. */
void gs__note_gpu_time(void);

/* t.data_ptr(): the address of t's first element (0 with a Python error set on failure). */
uint64_t gs__torch_data_ptr(PyObject *t);


/* ---- handles: what pack returns (handle.c) ----------------------------------------------- */

/* Every field is owned by the handle; the capsule's destructor releases them (under the GIL). */
typedef struct gs_handle {
  PyObject *data;      /* compressed uint8 tensor, or the kept tensor (detached alias) */
  PyObject *src_ref;   /* weakref to the tensor pack received (version check, dedup) */
  PyObject *cache_ref; /* weakref to the last decompressed tensor, or NULL */
  PyObject *size;      /* torch.Size of the original (compressed handles) */
  PyObject *stride;    /* strides to restore with empty_strided, or NULL for contiguous */
  bool restride;       /* not dense (a slice with gaps): decoded contiguous, then copied to stride */
  PyObject *producer;  /* type of the source's grad_fn (for PyTorch's error wording), or NULL */
  uint64_t data_bytes; /* compressed size of data */
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
  bool planned;        /* known to the plans (plans.c): its death is reported */
  uint32_t plan_index; /* k: its pack's position in iteration plan_iter */
  uint64_t plan_iter;
  uint64_t full_bytes; /* the source's bytes at full precision */
  gs_trace_saved_id id; /* the pack's attribution and serial (SAVED records) */
  uint32_t node_attr;   /* the attribution naming the node of its first unpack */
  bool node_known;
  PyObject *orig;      /* GPU: the original, held until its kernel reports no non-finite group */
  uint32_t report;     /* GPU: 1 + index of the pinned word its kernel reports to, or 0 */
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


/* ---- non-finite groups on the GPU (nonfinite.c): decided without a host sync ------------- */

/* Whether the pinned words exist (the first gs__report_take allocates them). */
bool gs__report_allocated(void);
/* A pinned host word for one compress launch (its device address in *addr, set to 0): the word's
 * index, or -ENOMEM (no pinned memory) / -ENOSPC (all words pending): keep the tensor exact. */
int gs__report_take(uint64_t *addr);
/* Returns a word taken for a launch that did not happen. */
void gs__report_give_back(int word);
/* A word whose launch happened but that no handle will own: freed once the kernel wrote it. */
void gs__report_abandon(int word);
/* h holds orig (a new reference, now h's) until the word says its kernel found no bad group. */
void gs__report_attach(gs_handle *h, int word, PyObject *orig);
/* 0: h's kernel has not reported yet (use h->orig); 1: clean (orig dropped); 2: it had a
 * non-finite group, and h is now a kept handle holding the original. Never waits. */
int gs__report_settle(gs_handle *h);
/* Settles every handle whose kernel has reported (pack calls it: originals are dropped early). */
void gs__report_poll(void);
/* At h's death: its orig and its word (kept aside if the kernel has not written it yet). */
void gs__report_release(gs_handle *h);

/* ---- pack: read the facts (facts.c), decide, encode (encode.c), wrap (handle.c) ----------- */

/* What is known about the op that produced a saved tensor. */
#define GS_PRODUCER_SENSITIVE 1u /* softmax / log-softmax output (or one seen through casts, dropout) */
#define GS_PRODUCER_RELU 2u      /* ReLU output: its backward reads only the sign */
#define GS_PRODUCER_SDPA 4u      /* scaled_dot_product_attention's output */
#define GS_PRODUCER_LEAF 8u      /* AccumulateGrad: the node of a leaf that requires grad */
#define GS_PRODUCER_PASS 16u     /* passes its input's values on: casts, views, dropout */
#define GS_PRODUCER_CAST 32u     /* a cast or a view: a parameter's copy is still the parameter */
#define GS_PRODUCER_CONV 64u     /* a convolution's output: BatchNorm's input in a CNN (group.c) */

#define GS_FACTS_MAX_DIMS 16

/* Everything pack needs to know about a saved tensor, read from Python once (gs__facts_read);
 * the decision is then made on these plain facts alone, so a test can make them by hand. */
typedef struct gs_tensor_facts {
  int64_t version;      /* t._version at pack */
  bool param;           /* a parameter, or a view of one: nothing below is read */
  bool strided;         /* torch.strided and not meta */
  int dtype;            /* gs_dtype, or GS_POLICY_DTYPE_OTHER */
  bool too_many_dims;   /* more than GS_FACTS_MAX_DIMS: kept, geometry not read */
  int ndim;
  int64_t shape[GS_FACTS_MAX_DIMS];
  int64_t stride[GS_FACTS_MAX_DIMS];
  uint64_t numel, bytes;
  bool contiguous;      /* row-major contiguous */
  bool dense;           /* dense and non-overlapping: its memory span is numel elements */
  int device;           /* CUDA device index, or -1 for the CPU */
  bool subclass;        /* a tensor subclass: nothing below is read */
  bool other_device;    /* neither the CPU nor CUDA: kept */
  bool broadcast;       /* a stride-0 dimension of size > 1 (expand): kept */
  uint64_t data_ptr;     /* CPU tensors only (see gs__facts_read) */
  unsigned producer_flags; /* GS_PRODUCER_* */
  PyObject *producer;   /* borrowed: the grad_fn's type, or NULL for leaves */
  int64_t output_nr;
  PyObject *size_obj;   /* owned: t.shape, to restore it */
  PyObject *stride_obj; /* owned: t.stride() */
  gs_trace_saved_id id; /* who saved it (attrib.c), for the trace's SAVED records */
} gs_tensor_facts;

/* Fills f (which holds t's version already) from t: 0, or -1 with a Python error set (f then
 * holds what was read). Stops early once the facts decide the tensor is kept. */
int gs__facts_read(PyObject *t, gs_tensor_facts *f);
void gs__facts_release(gs_tensor_facts *f);
/* numel, bytes, contiguous and dense from ndim, shape, stride and dtype. Pure. */
void gs__facts_geometry(gs_tensor_facts *f);
/* The reason f is kept before the policy is asked (*kept true), else *kept false. Pure. */
gs_skip_reason gs__facts_kept_before_policy(const gs_tensor_facts *f, bool *kept);
/* What the policy and the plans are told of f (shape points into f). */
gs_policy_desc gs__facts_desc(const gs_tensor_facts *f, uint64_t iteration, uint32_t index);

/* What pack does with a tensor. */
typedef struct gs_pack_choice {
  unsigned bits;         /* 1..8: compress; 0: keep, for `skip` */
  gs_skip_reason skip;
  gs_plan_reason reason; /* for the plans and the trace */
  bool candidate;        /* the policy chose among the tensors it may compress */
  bool probe;            /* measure its sensitivity first (adaptive and budget policies) */
} gs_pack_choice;

/* The codec group for f (group.c): the largest multiple of 32 up to max that divides the
 * innermost row or plane of f as the codec reads it, so that no group straddles two rows of
 * different scale; max when none does. Pure. */
uint32_t gs__facts_group(const gs_tensor_facts *f, uint32_t max);
/* Whether f is encoded from a row-major copy (and restored with its strides) instead of as it
 * lies: when it is not dense, and when it is a convolution's channels_last output whose channel
 * planes groups can then follow (group.c says why). */
bool gs__facts_copied(const gs_tensor_facts *f, uint32_t max);

/* The decision for tensor `index` of `iteration` from its facts: the keep rules, then the policy
 * and the plans. No Python call. */
gs_pack_choice gs__facts_decide(const gs_tensor_facts *f, uint64_t iteration, uint32_t index);

/* A compressed handle for t at bits, or NULL with *why set (the tensor is then kept). */
PyObject *gs__compress(PyObject *t, const gs_tensor_facts *f, unsigned bits, gs_skip_reason *why);
/* A handle keeping t exact (counted under why); never fails (the last resort returns t). */
PyObject *gs__keep(PyObject *t, const gs_tensor_facts *f, gs_skip_reason why);
/* Clears the pending Python error, warns once, sets *why to GS_SKIP_ERROR. */
void gs__note_error(gs_skip_reason *why);

/* pack(tensor) -> handle. Never raises: whatever fails, the tensor is kept exact (fail-open). */
PyObject *gs__pack(PyObject *self, PyObject *tensor);

/* unpack(handle) -> tensor. Raises only PyTorch's in-place modification error, or when a
 * compressed tensor cannot be restored. */
PyObject *gs__unpack(PyObject *self, PyObject *handle);

/* Iteration bookkeeping shared by pack and unpack (see pack.c). */
void gs__engine_note_unpack(void);
uint64_t gs__engine_iteration(void);

/* Stochastic-rounding seed of later packs (GACTSHIM_SEED at start). */
void gs__engine_set_seed(uint64_t seed);

/* Restores a compressed handle into a new tensor (unpack.c). NULL with a Python error set. */
PyObject *gs__decompress(gs_handle *h);

/* The producer type of t's grad_fn (borrowed, cached), its GS_PRODUCER_* flags, and t's
 * output_nr. 0, or -1 with a Python error set. *type is NULL for leaves. */
int gs__producer(PyObject *t, PyObject **type, unsigned *flags, int64_t *output_nr);
/* Follows grad_fn node fn through GS_PRODUCER_PASS nodes (a few at most): *found gets
 * GS_PRODUCER_SENSITIVE when it reaches a softmax, GS_PRODUCER_LEAF when only casts and views lead
 * to a leaf's AccumulateGrad. 0, or -1 with a Python error set. */
int gs__producer_chain(PyObject *fn, unsigned *found);

/* ---- the per-iteration plans: identity, lifetimes, probes (plans.c, probe.c) --------- */

/* Hands GACTSHIM_* to the plans (once, before the hooks are pushed). */
void gs__plans_configure(void);

/* The engine's skip reason for a policy's reason to keep a tensor. */
gs_skip_reason gs__plans_skip(gs_policy_keep keep);

/* The last completed iteration's per-tensor decisions as JSON members ("per_tensor": [...], at
 * most max entries, then "per_tensor_count" and "plan"), appended to buf at *off; false once the
 * buffer is full. For the stats file and the module's plan_json(). */
bool gs__engine_plan_json(char *buf, size_t len, size_t *off, size_t max);

/* A new iteration starts (pack.c): collects the probes of the one that ended, turns it into a
 * plan and records its decisions on the timeline when they changed. */
void gs__plans_iteration(uint64_t it);

/* Whether the current iteration's graph is consumed: every handle it made has died, or its first
 * saved tensor (the last one backward reaches) was unpacked — retain_graph keeps handles alive. */
bool gs__plans_iteration_done(void);

/* After pack made cap (or found a duplicate): records tensor d->index of iteration `it`. */
void gs__plans_pack(PyObject *cap, uint64_t it, const gs_policy_desc *d, gs_plan_reason reason,
                       gs_skip_reason skip, bool candidate, bool relu);

/* Unpack and handle death (unpack.c, handle.c). */
void gs__plans_unpack(const gs_handle *h);
void gs__plans_death(const gs_handle *h);

/* Probe callables from the Python bootstrap (module.c: set_probe). Steals nothing. */
void gs__probe_set(PyObject *probe, PyObject *collect);
/* Probes t as tensor k of the current iteration; 0 or -1 (errors are cleared, never raised). */
int gs__probe_tensor(PyObject *t, uint32_t k);
/* Hands the finished probes to the plan (gs__plan_note_probe). */
void gs__probe_collect(void);


/* ---- attribution: who saved a tensor (attrib.c) -------------------------------------------- */

/* The SAVED records' id of the tensor being packed: its attribution (the innermost nn.Module
 * being run, the innermost Python frame outside torch) when attribution is on, a serial number,
 * and the flags of its facts and choice. Under the GIL; no Python error is left set. */
gs_trace_saved_id gs__attrib_pack(const gs_tensor_facts *f, const gs_pack_choice *c);
/* At a handle's first unpack: the attribution naming the autograd node now running (the node
 * that saved it), or 0. */
uint32_t gs__attrib_unpack(void);
/* Module methods (module.c): attrib_setup(torch_dir) -> bool, intern(str) -> int,
 * module_enter(int), module_exit(). */
PyObject *gs__m_attrib_setup(PyObject *self, PyObject *dir);
PyObject *gs__m_intern(PyObject *self, PyObject *s);
PyObject *gs__m_module_enter(PyObject *self, PyObject *id);
PyObject *gs__m_module_exit(PyObject *self, PyObject *unused);

/* ---- beside PyTorch's other saved-tensor hooks (compose.c) ------------------------------- */

/* Pops the shim's hooks (pack is its pack function) when they top this thread's stack: *popped
 * says whether it did. 0, or -1 with a Python error set. */
int gs__hooks_pop_top(PyObject *pack, bool *popped);
/* The same, for PyTorch disabling hooks: also marks the thread suspended and counts an unseen
 * "disabled" region. */
int gs__hooks_suspend(PyObject *pack, bool *popped);
/* Whether this thread's hooks were suspended, clearing the mark. */
bool gs__hooks_take_suspended(void);
/* Counts a region hidden by hooks pushed above the shim's (a checkpoint's, or the user's). */
int gs__hooks_note_push(PyObject *pack);
/* The query and key of the SDPA call now running in this thread (NULL, NULL after it): saved by
 * it, they get the sensitive floor (docs/policies.md#sensitivity-rules). */
void gs__sdpa_mark(PyObject *q, PyObject *k);
bool gs__sdpa_is_qk(PyObject *t);


/* ---- torch.compile's saved tensors (compiled.c) ------------------------------------------- */

/* A compiled forward saved tensors[i] (a tuple), an intermediate of its graph made by an op with
 * GS_PRODUCER_* flags[i] (gactshim_compiled.py): replaces this thread's previous names. 0, or -1
 * with a Python error set. */
int gs__compiled_name(PyObject *tensors, PyObject *flags);
/* Whether t, which has no grad_fn, was named by the last compiled forward (its flags in *flags):
 * an activation, not a parameter. */
bool gs__compiled_lookup(PyObject *t, unsigned *flags);
/* Drops this thread's names (its Python code has ended; the GIL is held). */
void gs__compiled_forget(void);

/* ---- activation in Python processes with only LD_PRELOAD (python.c) ---------------------- */

/* In a Python process, puts the shim's bootstrap directory first on PYTHONPATH so that its
 * sitecustomize (which chains to the one it shadows and then waits for `import torch`) runs.
 * Any other process is left untouched. Called once by the constructor; no Python call is made. */
void gs__python_preinit(void);

#endif
