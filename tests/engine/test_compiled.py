# test_compiled.py: torch.compile (inductor on the CPU) under the shim. A compiled graph's saved
# tensors have no grad_fn; its intermediates are named by the bootstrap (gactshim_compiled.py) and
# compressed as in eager mode, ReLU outputs with their sign plane, while its inputs (parameters,
# frozen weights, the batch) stay kept exact. Before that, nothing compiled was compressed (every
# tensor without grad_fn is kept as a parameter); compressed without the sign plane, the MLP's
# 8-bit gradients were 11.7 % from exact (zoo-compile-mlp).
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import gsutil

pytestmark = pytest.mark.child_env(GACTSHIM_BITS="8", GACTSHIM_MIN_BYTES="0")


def stats_delta(fn):
    shim = gsutil.shim()
    s0 = shim.stats()
    out = fn()
    s1 = shim.stats()
    return {"compressed": s1["compressed"] - s0["compressed"],
            "param": s1["skipped"]["param"] - s0["skipped"]["param"]}, out


def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return torch.tensor(d.data[:512], dtype=torch.float32) / 16, torch.tensor(d.target[:512])


def test_compiled_mlp_8bit_gradients():
    import models
    torch.manual_seed(1)
    model = models.MLP(d_in=64, width=256)
    compiled = torch.compile(model)
    x, y = digits()

    def grads(exact):
        model.zero_grad(set_to_none=True)
        with gsutil.exact_hooks() if exact else torch.enable_grad():
            out = compiled(x)
        F.cross_entropy(out, y).backward()
        return gsutil.grads(model)

    exact = grads(True)
    d, got = stats_delta(lambda: grads(False))
    err = gsutil.rel_error(got, exact)
    gsutil.check(d["compressed"] >= 3, "the compiled MLP's 3 ReLU outputs compressed (%s)" % d)
    gsutil.check(d["param"] >= 4, "its input and the weights it saves kept exact (%s)" % d)
    gsutil.check(err < 0.01, "8-bit gradients within 1 %% of exact per parameter (worst %.5f)" % err)


def test_compiled_relu_sign_and_weights_exact():
    # x's gradient is ((g @ W2) * (h > 0)) @ W1: bit-exact iff both weights are kept and the ReLU
    # output's sign survives its compression exactly (stochastic rounding would flip small ones).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256))
    model[0].requires_grad_(False)  # a frozen weight the compiled backward still needs
    compiled = torch.compile(model)
    x0 = torch.randn(128, 64)
    g = torch.randn(128, 256, generator=torch.Generator().manual_seed(1))

    def input_grad(exact):
        x = x0.clone().requires_grad_()
        with gsutil.exact_hooks() if exact else torch.enable_grad():
            out = compiled(x)
        (out * g).sum().backward()
        return x.grad

    exact = input_grad(True)
    d, got = stats_delta(lambda: input_grad(False))
    gsutil.check(d["compressed"] >= 1, "the compiled ReLU output compressed (%s)" % d)
    gsutil.check(torch.equal(got, exact), "the input gradient is bit-exact (max diff %.3g)"
                 % (got - exact).abs().max().item())


def test_thread_end_drops_compiled_names():
    """A thread's compiled-graph names (weak references to its saved tensors) go when its code
    ends; they used to stay behind, one set per thread that ever ran a compiled forward."""
    import threading
    import weakref
    shim = gsutil.shim()
    t, seen = torch.randn(64, 64), {}

    def forward_saved():
        shim.compiled_saved(((t,), (0,)))
        seen["named"] = weakref.getweakrefcount(t)
    th = threading.Thread(target=forward_saved)
    th.start()
    th.join()
    gsutil.check(seen.get("named") == 1, "the thread named the tensor (%s weak references)" % seen.get("named"))
    gsutil.check(weakref.getweakrefcount(t) == 0, "its name went with the thread (%d weak references left)"
                 % weakref.getweakrefcount(t))
