/* pack.c: pack — read a saved tensor's facts once, decide, then compress it or keep it. */
#include "engine.h"

/* Iteration tracking. Globals because an iteration is a process-wide notion PyTorch does not
 * tell us about; only touched under the GIL (pack, unpack). An iteration ends when backward has
 * unpacked something and the iteration's graph is consumed: the next pack starts the next
 * iteration, at index 0. */
static uint64_t gs__iter;
static uint32_t gs__index;
static bool gs__unpacked_since_pack;

void gs__engine_note_unpack(void) { gs__unpacked_since_pack = true; }
uint64_t gs__engine_iteration(void) { return gs__iter; }

static uint32_t gs__next_index(void) {
  if (gs__unpacked_since_pack) {
    gs__unpacked_since_pack = false;
    /* A backward inside forward (a chunked loss, autograd.grad) unpacks too: the iteration goes
     * on while tensors it saved earlier still wait for their backward (plans.c). */
    if (gs__plans_iteration_done()) {
      gs__iter++;
      gs__index = 0;
    }
  }
  if (gs__index == 0) {
    if (gs__cfg.cupti) gs__cupti_note_profiler(gs__torch_profiler_on());
    gs__trace_iteration(gs__iter); /* the timeline's iteration bands */
    gs__plans_iteration(gs__iter); /* the completed iteration becomes a plan */
  }
  return gs__index++;
}

/* --- the hook: read, decide, encode, wrap --------------------------------------------------- */

/* The plans see every pack, kept or not, so that identities stay positional. */
static void gs__note_pack(PyObject *h, const gs_tensor_facts *f, uint32_t index,
                          const gs_pack_choice *c) {
  gs_policy_desc d = gs__facts_desc(f, gs__iter, index);
  gs__plans_pack(h, gs__iter, &d, c->reason, c->skip, c->candidate,
                    (f->producer_flags & GS_PRODUCER_RELU) != 0);
}

/* A tensor whose facts could not be read (a Python error is set): kept exact, fail-open. */
static PyObject *gs__pack_unreadable(PyObject *t, gs_tensor_facts *f, uint32_t index) {
  gs_pack_choice c = {.reason = GS_REASON_SKIPPED};
  gs__note_error(&c.skip);
  f->id = gs__attrib_pack(f, &c);
  PyObject *h = gs__keep(t, f, c.skip);
  gs__note_pack(h, f, index, &c);
  return h;
}

static PyObject *gs__pack_read(PyObject *t, gs_tensor_facts *f, uint32_t index) {
  gs_pack_choice c = gs__facts_decide(f, gs__iter, index);
  f->id = gs__attrib_pack(f, &c); /* who saved it, for the trace */
  if (c.probe) gs__probe_tensor(t, index);
  PyObject *h = c.bits ? gs__compress(t, f, c.bits, &c.skip) : NULL;
  if (h == NULL) h = gs__keep(t, f, c.skip);
  gs__note_pack(h, f, index, &c);
  return h;
}

PyObject *gs__pack(PyObject *self, PyObject *t) {
  gs__stat_add(packed, 1);
  uint32_t index = gs__next_index();
  gs_tensor_facts f = {.dtype = GS_POLICY_DTYPE_OTHER, .device = -1};
  if (gs__get_i64(t, gs__torch.s__version, false, &f.version) != 0)
    return gs__pack_unreadable(t, &f, index);
  PyObject *dup = gs__handle_find(t, f.version);
  if (dup) {
    gs_pack_choice c = {.reason = GS_REASON_SKIPPED, .skip = GS_SKIP_DUPLICATE};
    gs__stat_skip(GS_SKIP_DUPLICATE);
    gs__note_pack(dup, &f, index, &c);
    return dup;
  }
  PyObject *h = gs__facts_read(t, &f) == 0 ? gs__pack_read(t, &f, index)
                                           : gs__pack_unreadable(t, &f, index);
  gs__facts_release(&f);
  return h;
}
