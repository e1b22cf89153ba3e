# gactshim bootstrap: restore the environment, chain to the shadowed sitecustomize, hook torch.
#
# libgactshim.so (LD_PRELOAD) put this directory first on PYTHONPATH. This file undoes that, runs
# the sitecustomize it shadows (Debian ships one), and waits for `import torch` to finish; only
# then does it load the C module from libgactshim.so itself and install the saved-tensor hooks.
# A process that never imports torch ends up with the sys.path, PYTHONPATH and sys.modules it
# would have had without the shim.
import os
import sys


def _gs_restore_paths(here):
    sys.path[:] = [p for p in sys.path if not (p and os.path.abspath(p) == here)]
    pp = os.environ.get("PYTHONPATH")
    if pp is None:
        return
    if pp == here:
        del os.environ["PYTHONPATH"]
    elif pp.startswith(here + os.pathsep):
        os.environ["PYTHONPATH"] = pp[len(here) + 1:]


def _gs_chain_sitecustomize():
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find("sitecustomize", None) if find else None
        if spec is not None and spec.loader is not None:
            break
    else:
        return False
    module = type(sys)("sitecustomize")
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__loader__ = spec.loader
    sys.modules["sitecustomize"] = module  # what `import sitecustomize` would have given
    spec.loader.exec_module(module)
    return True


def _gs_warn(what, err):
    sys.stderr.write("gactshim: %s: %s: %s; training continues without compression\n"
                     % (what, type(err).__name__, err))


def _gs_threads(shim):
    # Saved-tensor hooks are per thread: every new threading.Thread pushes ours first, and pops
    # them when its code ends, while it still holds the GIL: left in PyTorch's thread-local
    # stack, they would be dropped after the thread's Python state is gone, taking the GIL, which
    # aborts the process if the interpreter is finalizing by then (module.c, release_hooks).
    import threading
    inner = getattr(threading.Thread, "_bootstrap_inner", None)
    if inner is None:
        return

    def _bootstrap_inner(self):
        try:
            shim.ensure_hooks()
        except Exception as err:  # never break the user's thread
            _gs_warn("thread hooks", err)
        try:
            return inner(self)
        finally:
            try:
                shim.release_hooks()
            except Exception as err:  # the thread's end goes on
                sys.stderr.write("gactshim: thread end: %s: %s\n" % (type(err).__name__, err))

    threading.Thread._bootstrap_inner = _bootstrap_inner


def _gs_free_threaded():
    # A free-threaded build (3.13t, 3.14t) lays out object heads differently from the stable ABI
    # the C module is written for: it is not loaded there at all.
    import sysconfig
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _gs_install(torch, here):
    import importlib.machinery
    import importlib.util
    if _gs_free_threaded():
        sys.stderr.write("gactshim: free-threaded Python (Py_GIL_DISABLED) is not supported; no "
                         "saved-tensor hooks, training continues without compression\n")
        return
    lib = os.path.join(os.path.dirname(here), "libgactshim.so")
    loader = importlib.machinery.ExtensionFileLoader("_gactshim", lib)
    spec = importlib.util.spec_from_file_location("_gactshim", lib, loader=loader)
    shim = importlib.util.module_from_spec(spec)
    loader.exec_module(shim)
    sys.modules["_gactshim"] = shim
    shim.install(torch)
    _gs_threads(shim)
    _gs_helper(here, "gactshim_compose").install(torch, shim)
    _gs_helper(here, "gactshim_compiled").install(torch, shim, _GsAfterImport)
    probe = _gs_helper(here, "gactshim_probe")
    shim.set_probe((probe.probe, probe.collect))
    _gs_modules(shim, torch, here)


def _gs_root_name(mod, torch_dir, here):
    # The variable the caller holds the root module in ("model"), else its class name.
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith(torch_dir)
                                 or frame.f_code.co_filename.startswith(here)):
        frame = frame.f_back
    if frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            for name, value in list(scope.items()):
                if value is mod and name != "self" and not name.startswith("_"):
                    return name
    return type(mod).__name__


def _gs_child_name(parent, mod):
    for name, child in parent._modules.items():
        if child is mod:
            return name
    for name, child in parent.named_modules():
        if child is mod and name:
            return name
    return None


def _gs_modules(shim, torch, here):
    # nn.Module paths for the trace's attributions: global forward hooks keep a per-thread stack
    # in the shim (module_enter/module_exit); each module's path is named and interned once.
    torch_dir = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
    if not shim.attrib_setup(torch_dir):
        return  # no trace file, or GACTSHIM_ATTRIBUTION=0
    import threading
    import weakref
    from torch.nn.modules import module as nn_module
    ids, local = weakref.WeakKeyDictionary(), threading.local()
    enter, leave, intern = shim.module_enter, shim.module_exit, shim.intern
    compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)

    def name_of(mod, stack):
        child = None
        if stack:
            parent, path = stack[-1]
            child = _gs_child_name(parent, mod)
        return path + "." + child if child else _gs_root_name(mod, torch_dir, here)

    def pre(mod, args):
        if compiling():
            return
        stack = getattr(local, "stack", None)
        if stack is None:
            stack = local.stack = []
        entry = ids.get(mod)
        if entry is None:
            path = name_of(mod, stack)
            entry = ids[mod] = (path, intern(path))
        stack.append((mod, entry[0]))
        enter(entry[1])

    def post(mod, args, out):
        if compiling():
            return
        stack = getattr(local, "stack", None)
        if stack and stack[-1][0] is mod:
            stack.pop()
            leave()

    nn_module.register_module_forward_pre_hook(pre)
    try:
        nn_module.register_module_forward_hook(post, always_call=True)
    except TypeError:  # before 2.1: no always_call (an exception inside forward unbalances it)
        nn_module.register_module_forward_hook(post)


def _gs_helper(here, name):
    # The bootstrap's other modules (gactshim_compose.py: beside PyTorch's other hooks;
    # gactshim_compiled.py: torch.compile's saved activations named; gactshim_probe.py: the
    # adaptive and budget policies' sensitivity probes), loaded by path: this directory is no
    # longer on sys.path, and they are not the user's to import.
    import importlib.util
    spec = importlib.util.spec_from_file_location("_" + name, os.path.join(here, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _GsAfterImport:
    """One-shot meta-path finder: lets the real finders locate module `name`, then calls
    then(module) once it has been executed (torch here; AOTAutograd in gactshim_compiled.py)."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module, then = loader.exec_module, self.then

        def exec_then(module):
            exec_module(module)
            try:
                del loader.exec_module
            except AttributeError:
                pass
            then(module)

        loader.exec_module = exec_then
        return spec


def _gs_install_or_warn(torch, here):
    try:
        _gs_install(torch, here)
    except Exception as err:
        _gs_warn("could not install the torch hooks", err)


def _gs_main():
    here = os.path.dirname(os.path.abspath(__file__))
    _gs_restore_paths(here)
    chained = False
    try:
        chained = _gs_chain_sitecustomize()
    finally:
        if "torch" in sys.modules:  # the chained sitecustomize imported it already
            _gs_install_or_warn(sys.modules["torch"], here)
        else:
            sys.meta_path.insert(0, _GsAfterImport("torch", lambda torch: _gs_install_or_warn(torch, here)))
    return chained


if not _gs_main():
    # No sitecustomize was shadowed (a venv, pyenv): without the shim `import sitecustomize`
    # would have failed, so it fails now too. site.py ignores this ImportError, the import
    # system drops this module from sys.modules, and the finder above stays in sys.meta_path.
    raise ImportError("no sitecustomize beside gactshim's", name="sitecustomize")
