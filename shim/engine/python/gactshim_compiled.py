# gactshim_compiled.py: the saved tensors of torch.compile'd graphs, named for the shim.
#
# A compiled graph's forward runs inside one autograd.Function (AOTAutograd's CompiledFunction):
# every tensor it saves reaches the pack hook without a grad_fn, activations and graph inputs
# alike. The shim keeps every tensor without a grad_fn exact as a parameter (it may be one), so
# under torch.compile nothing was compressed; and what made an activation (a ReLU, whose backward
# reads only its sign; a softmax) cannot be read from the tensor either. The graph knows both:
#   - when a forward graph is partitioned, each saved tensor's node is read: a graph input
#     (a parameter, a frozen weight, the batch) and a cast or view of one stay unnamed (kept, as in
#     eager mode); an intermediate is named with the producer flags of the op that made it
#     (_saved_flags), stored beside AOTAutograd's own per-saved-tensor metadata;
#   - each time a compiled forward has saved its tensors (just before autograd packs them), the
#     shim is told which they are (shim.compiled_saved), and pack treats them as activations.
# AOTAutograd's cache hands back a compiled graph without running the partitioner: its entry
# carries the names (they are stored in the metadata it pickles) only when it was made under this
# very naming code, so the shim's entries are keyed apart (_separate_cache). The hooks are
# installed when AOTAutograd is first imported (by the first compile), not at `import torch`.
# Anything unexpected (another torch version's internals) leaves the tensors unnamed: kept exact.
import functools
import sys

# GS_PRODUCER_* (shim/engine/engine.h).
SENSITIVE, RELU, SDPA = 1, 2, 4
GRAPH_COMPILE = "torch._functorch._aot_autograd.graph_compile"
RUNTIME_WRAPPERS = "torch._functorch._aot_autograd.runtime_wrappers"
# Ops whose output holds their first input's values: a saved chain of them from a graph input is
# that input (eager mode's ToCopyBackward0/TBackward0/ViewBackward0 rule, docs/policies.md).
PASS_OPS = {"convert_element_type", "_to_copy", "view", "_unsafe_view", "reshape", "t",
            "transpose", "permute", "expand", "alias", "clone", "detach", "squeeze", "unsqueeze"}
CHAIN_MAX = 4  # as producer.c's GS__CHAIN_MAX
SDPA_PREFIX = "_scaled_dot_product"


def install(torch, shim, after_import):
    """after_import(name, then): the bootstrap's one-shot finder that calls then(module) once
    module `name` has been executed."""
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    hooks = top(True) if top is not None else None
    if not hooks or hooks[0] is not shim.pack:
        return  # the shim is off (GACTSHIM_DISABLE): torch.compile is left as it is
    if GRAPH_COMPILE in sys.modules:
        _hook_or_say(torch, shim)
    else:
        sys.meta_path.insert(0, after_import(GRAPH_COMPILE, lambda module: _hook_or_say(torch, shim)))


def _hook_or_say(torch, shim):
    try:
        _hook(torch, shim)
    except Exception as err:  # never break torch.compile: the tensors stay unnamed
        sys.stderr.write("gactshim: torch.compile's saved tensors cannot be named (%s: %s); "
                         "they are kept exact\n" % (type(err).__name__, err))


def _hook(torch, shim):
    gc = sys.modules[GRAPH_COMPILE]
    rw = sys.modules.get(RUNTIME_WRAPPERS) or __import__(RUNTIME_WRAPPERS, fromlist=["_"])
    categorize = getattr(gc, "_categorize_saved_tensors_for_backward", None)
    state = getattr(rw, "_AutogradSavedState", None)
    if categorize is None or state is None or not hasattr(state, "save_from_forward"):
        return  # another torch: compiled graphs' saved tensors stay kept exact
    _separate_cache()
    gc._categorize_saved_tensors_for_backward = _wrap_categorize(categorize)
    state.save_from_forward = _wrap_save(state.save_from_forward, shim)


def _separate_cache():
    """AOTAutograd's cache keys of this process get a suffix naming this file's contents: an
    entry made without the shim, or by another version of its rules, has no names or others, and
    is never found. Where the key cannot be wrapped, the cache is turned off (inductor's cache of
    compiled kernels still serves)."""
    import hashlib
    import torch._functorch._aot_autograd.autograd_cache as cache
    key_fn = getattr(cache, "autograd_cache_key", None)
    if key_fn is None:
        import torch._functorch.config as fconfig
        fconfig.enable_autograd_cache = False
        return
    with open(__file__, "rb") as f:
        suffix = "gs" + hashlib.sha256(f.read()).hexdigest()[:12]

    @functools.wraps(key_fn)
    def autograd_cache_key(*args, **kwargs):
        key, debug_lines = key_fn(*args, **kwargs)
        return key + suffix, debug_lines
    cache.autograd_cache_key = autograd_cache_key


def _wrap_categorize(categorize):
    @functools.wraps(categorize)
    def _categorize_saved_tensors_for_backward(fw_module, bw_module, inner_meta, fw_metadata,
                                               num_inner_fwd_outputs, *args, **kwargs):
        out = categorize(fw_module, bw_module, inner_meta, fw_metadata, num_inner_fwd_outputs,
                         *args, **kwargs)
        try:
            flags = _saved_flags(fw_module, num_inner_fwd_outputs)
        except Exception:
            flags = None
        # Only when it lines up with AOTAutograd's own list of saved tensors.
        if flags is not None and len(flags) == len(fw_metadata.saved_tensor_is_graph_input):
            fw_metadata.gactshim_saved_flags = tuple(flags)
        return out
    return _categorize_saved_tensors_for_backward


def _wrap_save(save_from_forward, shim):
    @functools.wraps(save_from_forward)
    def wrapped(self, ctx, fw_outs):
        save_from_forward(self, ctx, fw_outs)
        flags = getattr(self.metadata, "gactshim_saved_flags", None)
        saved = getattr(ctx, "to_save", None)
        # to_save holds the tensors saved with a version check, first in the same order; those
        # with flags -1 stay unnamed (kept exact).
        if flags is not None and saved is not None and len(saved) <= len(flags):
            named = [(t, f) for t, f in zip(saved, flags) if f >= 0]
            try:
                shim.compiled_saved((tuple(t for t, _ in named), tuple(f for _, f in named)))
            except Exception:  # never break the forward: what is not named is kept exact
                pass
    return wrapped


# ---- the forward graph: what made each saved tensor ----

def _saved_flags(fw_module, num_inner_fwd_outputs):
    """Per saved tensor, in AOTAutograd's order (a fake tensor value, as its
    _categorize_saved_tensors_for_backward counts them): -1 for a graph input or a cast or view
    of one (kept), else the GS_PRODUCER_* flags of its producer (0: a plain activation)."""
    import torch
    outs = fw_module.graph.output_node().args[0][num_inner_fwd_outputs:]
    flags = []
    for node in outs:
        val = getattr(node, "meta", {}).get("val") if isinstance(node, torch.fx.Node) else None
        if not isinstance(val, torch.Tensor):
            if not isinstance(node, torch.fx.Node) or "val" not in node.meta:
                flags.append(-1)  # AOTAutograd counts it as a saved tensor: keep it
            continue
        flags.append(_node_flags(node))
    return flags


def _name(node):
    """The op's short name: aten.relu.default -> relu, prims.convert_element_type -> itself."""
    if node.op != "call_function":
        return node.op
    target = node.target
    packet = getattr(target, "overloadpacket", None)
    name = getattr(packet, "__name__", None) or getattr(target, "__name__", "")
    return name.split(".")[-1]


def _arg(node, i):
    a = node.args[i] if len(node.args) > i else None
    return a if hasattr(a, "op") else None


def _origin(node):
    """The node a chain of casts and views (at most CHAIN_MAX) starts from, or None."""
    for _ in range(CHAIN_MAX):
        if node is None or _name(node) not in PASS_OPS:
            return node
        node = _arg(node, 0)
    return node if node is None or _name(node) not in PASS_OPS else None


def _is_softmax(node):
    """softmax, and log_softmax, as written or as decomposed for inductor: exp(x) / sum(exp(x)),
    x - log(sum(exp(x)))."""
    name = _name(node)
    if name in ("_softmax", "softmax", "_log_softmax", "log_softmax"):
        return True
    a, b = _arg(node, 0), _arg(node, 1)
    if name == "div" and a is not None and b is not None:
        return _name(a) == "exp" and _name(b) == "sum" and _arg(b, 0) is a
    return name == "sub" and b is not None and _name(b) == "log" and _is_sum_exp(_arg(b, 0))


def _is_sum_exp(node):
    e = _arg(node, 0) if node is not None and _name(node) == "sum" else None
    return e is not None and _name(e) == "exp"


def _node_flags(node):
    origin = _origin(node)  # casts and views hold their input's values: judged by it
    if origin is None or origin.op == "placeholder":
        return -1
    name = _name(origin)
    if name == "relu" or (name == "clamp_min" and origin.args[1:2] == (0,)) or (
            name == "threshold" and origin.args[1:3] == (0, 0)):
        return RELU
    if name == "amax" or (name == "log" and _is_sum_exp(_arg(origin, 0))):
        return -1  # a softmax's row max or logsumexp, saved to recompute it: small, kept exact
    flags = SENSITIVE if _is_softmax(origin) else 0
    if any(_name(user) == "amax" for user in node.users):
        flags |= SENSITIVE  # a softmax's input, saved to recompute the softmax in backward
    if name == "getitem":  # one output of a multi-output op: SDPA's output 0; its logsumexp kept
        src = _arg(origin, 0)
        if src is not None and _name(src).startswith(SDPA_PREFIX):
            return SDPA if origin.args[1] == 0 else -1
    for user in node.users:  # SDPA's query and key: their errors are multiplied (policies.md)
        if _name(user).startswith(SDPA_PREFIX) and node in user.args[:2]:
            flags |= SENSITIVE
    return flags
