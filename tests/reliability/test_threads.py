"""test_threads.py: forward and backward passes in several threads at once under the shim (two
models, two threads each, started together at a barrier): every pass is compressed (the count is
exactly the sequential count times the passes) and every gradient is within 8-bit quantization
error of the exact gradient (relative to 1 % of the whole gradient's norm as a floor).
Runs in a pytest child under the shim (tests/conftest.py, child_env: a job's environment, rutil)."""
import sys
import threading

import pytest

from rutil import check, env_changes, need_torch

ROUNDS, THREADS_PER_MODEL, TOL = 3, 2, 0.05

need_torch()


def models():
    import torch
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 10))
    b = torch.nn.Sequential(torch.nn.Linear(512, 768), torch.nn.LayerNorm(768), torch.nn.Tanh(),
                            torch.nn.Linear(768, 10))
    return {"a": a, "b": b}


def batch(name):
    import torch
    g = torch.Generator().manual_seed(ord(name))
    return torch.randn(512, 512, generator=g), torch.randint(0, 10, (512,), generator=g)


def grads_of(model, name):
    """Gradients of one pass, computed into fresh tensors (the model is shared between threads)."""
    import torch
    import torch.nn.functional as F
    x, y = batch(name)
    params = list(model.parameters())
    return torch.autograd.grad(F.cross_entropy(model(x), y), params)


def rel_error(got, want):
    import torch
    floor = 0.01 * torch.sqrt(sum((w * w).sum() for w in want))
    return max(float((g - w).norm() / max(w.norm(), floor)) for g, w in zip(got, want))


def compressed():
    return sys.modules["_gactshim"].stats()["compressed"]


# SELECT=all: this test counts compressions per pass; lifetime selection would (rightly) keep
# some tensors exact when four threads interleave their iterations, which is not its subject.
@pytest.mark.child_env(**env_changes(GACTSHIM_BITS=8, GACTSHIM_SELECT="all", GACTSHIM_QUIET=1))
def test_threads():
    import torch
    torch.set_num_threads(1)
    ms = models()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):  # innermost: exact
        exact = {n: grads_of(m, n) for n, m in ms.items()}
    c0 = compressed()
    for n, m in ms.items():
        grads_of(m, n)
    per_pass = compressed() - c0
    check(per_pass > 0, "a sequential pass of both models compresses %d tensors" % per_pass)

    barrier = threading.Barrier(len(ms) * THREADS_PER_MODEL)
    errors, crashes = [], []

    def worker(name):
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                errors.append((name, rel_error(grads_of(ms[name], name), exact[name])))
        except Exception as e:  # noqa: BLE001 - reported below
            crashes.append(repr(e))

    c1 = compressed()
    threads = [threading.Thread(target=worker, args=(n,)) for n in ms for _ in range(THREADS_PER_MODEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    check(not crashes and not any(t.is_alive() for t in threads), "%d threads finished without error %s"
          % (len(threads), crashes))
    check(compressed() - c1 == per_pass * ROUNDS * THREADS_PER_MODEL,
          "every threaded pass compressed as many tensors as a sequential one")
    worst = max(e for _, e in errors)
    check(len(errors) == len(threads) * ROUNDS and worst < TOL,
          "all %d threaded gradients within %.0f %% of exact (worst %.4f)" % (len(errors), 100 * TOL, worst))
