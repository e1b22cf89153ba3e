/* compose.c: the shim's hooks beside PyTorch's other users of saved-tensor hooks (torch.func). */
#include "engine.h"

/* Whether this thread popped its hooks because PyTorch was about to disable saved-tensor hooks
 * (torch.func.grad, vjp, jacrev; disable_saved_tensors_hooks). Per thread, as the hooks are. */
static __thread bool gs__thread_suspended;

/* The query and key of the scaled_dot_product_attention call running in this thread, compared by
 * identity in pack (borrowed: the caller holds them for the call). */
static __thread PyObject *gs__sdpa_q, *gs__sdpa_k;

void gs__sdpa_mark(PyObject *q, PyObject *k) {
  gs__sdpa_q = q;
  gs__sdpa_k = k;
}

bool gs__sdpa_is_qk(PyObject *t) { return t == gs__sdpa_q || t == gs__sdpa_k; }

/* Said once per process, at debug level: stepping aside is expected, not a fault. */
static bool gs__said_aside;

/* Whether the top of this thread's saved-tensor hook stack is the shim's pack function. */
static bool gs__top_is(PyObject *pack) {
  PyObject *args = gs__py.PyTuple_New(1);
  if (args == NULL) return false;
  gs__py.Py_IncRef(gs__py.py_true);
  gs__py.PyTuple_SetItem(args, 0, gs__py.py_true); /* ignore_is_tracing */
  PyObject *top = gs__py.PyObject_CallObject(gs__torch.top_hooks, args);
  gs__py.Py_DecRef(args);
  bool ours = top && top != gs__py.none && gs__py.PyTuple_Size(top) == 2 &&
              gs__py.PyTuple_GetItem(top, 0) == pack;
  if (top) gs__py.Py_DecRef(top);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  return ours;
}

int gs__hooks_pop_top(PyObject *pack, bool *popped) {
  *popped = false;
  if (gs__torch.top_hooks == NULL || gs__torch.pop_hooks == NULL || !gs__top_is(pack)) return 0;
  PyObject *r = gs__py.PyObject_CallObject(gs__torch.pop_hooks, NULL);
  if (r == NULL) return -1;
  gs__py.Py_DecRef(r);
  *popped = true;
  return 0;
}

int gs__hooks_suspend(PyObject *pack, bool *popped) {
  if (gs__hooks_pop_top(pack, popped) != 0) return -1;
  if (!*popped) return 0;
  gs__thread_suspended = true;
  gs__stat_add(unseen[GS_UNSEEN_DISABLED], 1);
  if (!__atomic_exchange_n(&gs__said_aside, true, __ATOMIC_RELAXED))
    gs__log(GS_LOG_DEBUG, "PyTorch disabled saved-tensor hooks (torch.func, "
            "disable_saved_tensors_hooks): the shim steps aside there and sees nothing (counted "
            "in the stats' \"unseen\": \"disabled\")");
  return 0;
}

bool gs__hooks_take_suspended(void) {
  bool was = gs__thread_suspended;
  gs__thread_suspended = false;
  return was;
}

int gs__hooks_note_push(PyObject *pack) {
  /* A checkpoint's internal hooks mark their pack function; anything else is the user's. */
  PyObject *mark = gs__py.PyObject_GetAttrString(pack, "_checkpoint_internal");
  int internal = mark ? gs__py.PyObject_IsTrue(mark) : 0;
  if (mark) gs__py.Py_DecRef(mark);
  if (gs__py.PyErr_Occurred()) gs__py.PyErr_Clear();
  gs__stat_add(unseen[internal > 0 ? GS_UNSEEN_CHECKPOINT : GS_UNSEEN_HOOKS], 1);
  return 0;
}
