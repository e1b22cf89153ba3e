# gactshim_compose.py: the shim's saved-tensor hooks beside PyTorch's other users of them.
#
# The shim's hooks sit at the bottom of each thread's hook stack. Three places in PyTorch would
# otherwise see them where, without the shim, they would see nothing:
#   - torch.func.grad, vjp, jacrev (and disable_saved_tensors_hooks) disable saved-tensor hooks and
#     raise when any are on the stack: the shim pops its own just before (it "steps aside"),
#     pushes them back when hooks are enabled again, and counts the region (unseen "disabled").
#   - selective activation checkpointing (2.14) routes the tensors it caches through the nearest
#     "user" hooks when asked to, and warns when some are in scope: the shim's are not the user's,
#     so SAC is shown none, as without the shim (its cache stays exact and outside the shim).
#   - scaled_dot_product_attention saves its query and key, whose errors its backward multiplies
#     (docs/policies.md#sensitivity-rules): the call tells the shim which tensors they are.
#   - hooks pushed above the shim's (checkpoint's own, save_on_cpu, the user's) see the tensors
#     saved in their region instead of it: each such region is counted (unseen "checkpoint",
#     "hooks").
# All of it is done once at install; nothing here runs per saved tensor (the SDPA wrapper runs
# once per attention call).
import functools


def install(torch, shim):
    ag = torch._C._autograd
    if not hasattr(ag, "_saved_tensors_hooks_disable"):
        return
    _wrap_disable(ag, shim)
    _wrap_push(ag, shim)
    _hide_from_sac(torch, shim)
    _mark_sdpa(torch, shim)


def _wrap_disable(ag, shim):
    disable, enable = ag._saved_tensors_hooks_disable, ag._saved_tensors_hooks_enable

    @functools.wraps(disable)
    def _saved_tensors_hooks_disable(message, fail_if_non_empty=True):
        # fail_if_non_empty=False (compiled regions) keeps the stack as it is: so do we.
        if fail_if_non_empty:
            shim.suspend_hooks()
        return disable(message, fail_if_non_empty)

    @functools.wraps(enable)
    def _saved_tensors_hooks_enable():
        enable()
        shim.resume_hooks()

    ag._saved_tensors_hooks_disable = _saved_tensors_hooks_disable
    ag._saved_tensors_hooks_enable = _saved_tensors_hooks_enable


def _wrap_push(ag, shim):
    push = ag._push_saved_tensors_default_hooks

    @functools.wraps(push)
    def _push_saved_tensors_default_hooks(pack_hook, unpack_hook):
        push(pack_hook, unpack_hook)
        shim.note_push(pack_hook)

    ag._push_saved_tensors_default_hooks = _push_saved_tensors_default_hooks


def _hide_from_sac(torch, shim):
    ckpt = getattr(getattr(torch, "utils", None), "checkpoint", None)
    current = getattr(ckpt, "_current_user_saved_tensors_hooks", None)
    if current is None:  # before 2.14: SAC never looks at the hooks in scope
        return
    ours = shim.pack

    @functools.wraps(current)
    def _current_user_saved_tensors_hooks():
        hooks = current()
        return None if hooks is not None and hooks[0] is ours else hooks

    ckpt._current_user_saved_tensors_hooks = _current_user_saved_tensors_hooks


def _mark_sdpa(torch, shim):
    F = torch.nn.functional
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    if sdpa is None:
        return
    mark = shim.sdpa_mark

    @functools.wraps(sdpa)
    def scaled_dot_product_attention(query, key, *args, **kwargs):
        # Traced by torch.compile: the original call, nothing of the shim's in the graph.
        if torch.compiler.is_compiling():
            return sdpa(query, key, *args, **kwargs)
        mark((query, key))
        try:
            return sdpa(query, key, *args, **kwargs)
        finally:
            mark(None)

    F.scaled_dot_product_attention = scaled_dot_product_attention
