/* engine.h: the saved-tensor hooks PyTorch calls — pack in forward, unpack in backward. */
#ifndef GS_ENGINE_H
#define GS_ENGINE_H

#include "handle.h"
#include "pyapi.h"

/* pack(tensor) -> handle. Never raises: whatever fails, the tensor is kept exact (fail-open). */
PyObject *gs__pack(PyObject *self, PyObject *tensor);

/* unpack(handle) -> tensor. Raises only PyTorch's in-place modification error, or when a
 * compressed tensor cannot be restored. */
PyObject *gs__unpack(PyObject *self, PyObject *handle);

/* Iteration bookkeeping shared by pack and unpack (see engine.c). */
void gs__engine_note_unpack(void);
uint64_t gs__engine_iteration(void);

/* Stochastic-rounding seed of later packs (GACTSHIM_SEED at start). */
void gs__engine_set_seed(uint64_t seed);

/* Restores a compressed handle into a new tensor (unpack.c). NULL with a Python error set. */
PyObject *gs__decompress(gs_handle *h);

/* What is known about the op that produced a saved tensor. */
#define GS_PRODUCER_SENSITIVE 1u /* softmax / log-softmax output */
#define GS_PRODUCER_RELU 2u      /* ReLU output: its backward reads only the sign */

/* The producer type of t's grad_fn (borrowed, cached), its GS_PRODUCER_* flags, and t's
 * output_nr. 0, or -1 with a Python error set. *type is NULL for leaves. */
int gs__producer(PyObject *t, PyObject **type, unsigned *flags, int64_t *output_nr);

#endif
