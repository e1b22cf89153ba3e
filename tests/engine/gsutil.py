# gsutil.py: helpers shared by the Python tests (child processes under the shim, stats, gradients).
# The tests run under pytest (tests/pytest_run.py, from meson); the children they start run their
# module as a plain script (`test_x.py child ...`), which prints what it measured as JSON.
import json
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# The device parameter of the tests that run on both: the CUDA one is skipped without a GPU.
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.gpu)]


def shim():
    """The engine's module, loaded by the bootstrap when torch was imported."""
    import torch  # noqa: F401  (importing torch is what installs the hooks)
    mod = sys.modules.get("_gactshim")
    if mod is None:
        fail("_gactshim is not loaded: is LD_PRELOAD=libgactshim.so set? (%s)"
             % os.environ.get("LD_PRELOAD"))
    return mod


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    """An assertion that also says what it checked when it holds (the numbers go to the log)."""
    if not cond:
        fail(msg)
    print("ok:", msg, flush=True)


def run_child(args, env=None, timeout=600):
    """Runs `python3 args...` under the same LD_PRELOAD with extra env; returns (stdout, stats)."""
    p, stats = run_child_full(args, env, timeout)
    return p.stdout, stats


def run_child_full(args, env=None, timeout=600):
    """run_child, returning the finished process (stdout, stderr) and the stats."""
    e = dict(os.environ)
    e.update(env or {})
    fd, path = tempfile.mkstemp(prefix="gs-stats-", suffix=".json")
    os.close(fd)
    os.unlink(path)
    e["GACTSHIM_STATS"] = path
    p = subprocess.run([sys.executable] + list(args), env=e, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        fail("child %s exited %d: %s" % (args, p.returncode, p.stderr.strip()[-2000:]))
    stats = None
    if os.path.exists(path):
        with open(path) as f:
            stats = json.load(f)
        os.unlink(path)
    return p, stats


def last_json(stdout):
    """The last line of a child's stdout that is a JSON object."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    fail("no JSON result in child output:\n" + stdout)


def exact_hooks():
    """Identity hooks pushed on top of the shim's (innermost wins): exact saved tensors."""
    import torch
    return torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)


def grads(model):
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def rel_errors(got, exact):
    """Each tensor's error relative to a floor: 1 % of the whole gradient's norm (a floor,
    because some exact gradients are ~0, e.g. a key bias under softmax)."""
    import torch
    total = torch.sqrt(sum((e.double() ** 2).sum() for e in exact)).item()
    return [(g.double() - e.double()).norm().item() / max(e.double().norm().item(), 0.01 * total)
            for g, e in zip(got, exact)]


def rel_error(got, exact):
    """The largest of rel_errors; inf when any is NaN (max() would skip a NaN after the first)."""
    errs = rel_errors(got, exact)
    return float("inf") if any(e != e for e in errs) else max(errs, default=0.0)


def all_reduce_settled(t, limit_s=30.0):
    """dist.all_reduce(t), returning only once gloo's worker thread has let go of t.

    The worker drops its reference to t just after waking the caller, and in torch 2.14 that drop
    takes the GIL (the tensor's C++ side holds a reference to its Python object while C++ shares
    it). If the caller's script ends first, the interpreter is finalizing when the worker asks
    for the GIL: Python ends the thread with pthread_exit, whose unwinding through a noexcept
    destructor aborts the process ("terminate called without an active exception", SIGABRT,
    seen in CI without the shim). The extra C++ reference shows in sys.getrefcount(t), so wait
    for it to go; sleeping releases the GIL the worker needs."""
    import time
    import torch.distributed as dist
    base = sys.getrefcount(t)
    dist.all_reduce(t)
    deadline = time.monotonic() + limit_s
    while sys.getrefcount(t) > base and time.monotonic() < deadline:
        time.sleep(0.001)
