# test_correctness.py: every autograd feature still works under the shim, with gradients matching
# the exact ones (8 bits): retain_graph, double backward, both checkpoints, custom Function,
# in-place errors, non-contiguous layouts, bf16 autocast, threads, no_grad / inference_mode.
# Usage: test_correctness.py cpu|cuda
import os
import sys
import threading

import gsutil

if os.environ.get("GACTSHIM_BITS") is None:  # run the checks at 8 bits, so 2 % is a fair bound
    os.environ["GACTSHIM_BITS"] = "8"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402

DEV = gsutil.device_or_skip(sys.argv[-1] if len(sys.argv) > 1 else "cpu")
shim = gsutil.shim()
TOL = 0.02


def stat(key):
    return shim.stats()[key]


def skipped(key):
    return shim.stats()["skipped"][key]


def compare(name, fn, params):
    """fn() builds a loss; its gradients under the shim vs the same with exact saved tensors."""
    def run(exact):
        for p in params:
            p.grad = None
        torch.manual_seed(3)
        if exact:
            with gsutil.exact_hooks():
                fn().backward()
        else:
            fn().backward()
        return [p.grad.clone() for p in params]
    exact = run(True)
    c0 = stat("compressed")
    got = run(False)
    err = gsutil.rel_error(got, exact)
    gsutil.check(stat("compressed") > c0, "%s: activations compressed (%d)" % (name, stat("compressed") - c0))
    gsutil.check(err < TOL, "%s: gradient error %.5f < %g" % (name, err, TOL))


def param(*shape):
    # Unit-scale activations: a saturated tanh would make any lossy copy of its output useless.
    return (torch.randn(*shape, device=DEV) * shape[0] ** -0.5).requires_grad_()


torch.manual_seed(0)
W1, W2 = param(256, 256), param(256, 256)
X = torch.randn(128, 256, device=DEV)


def mlp(x):
    return torch.tanh(torch.relu(x @ W1) @ W2)


def test_retain_graph():
    loss = mlp(X).pow(2).mean()
    g1 = torch.autograd.grad(loss, [W1, W2], retain_graph=True)
    g2 = torch.autograd.grad(loss, [W1, W2])
    gsutil.check(all(torch.equal(a, b) for a, b in zip(g1, g2)), "retain_graph: second backward equals first")
    compare("retain_graph", lambda: mlp(X).pow(2).mean(), [W1, W2])


def test_double_backward():
    x = torch.randn(128, 256, device=DEV, requires_grad=True)

    def fn():
        y = mlp(x).pow(2).sum()
        (g,) = torch.autograd.grad(y, x, create_graph=True)
        return g.pow(2).sum()
    compare("double backward", fn, [W1, W2])


def test_checkpoint():
    for reentrant in (True, False):
        def fn():
            x = X.clone().requires_grad_(reentrant)  # reentrant checkpoint needs an input with grad
            h = checkpoint(mlp, x, use_reentrant=reentrant)
            return torch.sigmoid(h @ W1).pow(2).mean()
        compare("checkpoint use_reentrant=%s" % reentrant, fn, [W1, W2])


class ScaledSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return 2 * a * b * g, a * a * g


def test_custom_function():
    compare("custom autograd.Function",
            lambda: ScaledSquare.apply(X @ W1, torch.sigmoid(X @ W2)).mean(), [W1, W2])


def expect_inplace_error(label):
    x = torch.randn(256, 256, device=DEV)
    w = torch.randn(256, 256, device=DEV, requires_grad=True)
    y = torch.sigmoid(x @ w)
    y.mul_(2)
    try:
        y.sum().backward()
    except RuntimeError as e:
        msg = str(e)
        ok = "modified by an inplace operation" in msg and "SigmoidBackward0" in msg and "version 1; expected version 0" in msg
        gsutil.check(ok, "in-place error raised %s: %s" % (label, msg.splitlines()[0][:160]))
        return
    gsutil.fail("in-place modification of a saved tensor went unnoticed (%s)" % label)


def test_inplace():
    expect_inplace_error("(compressed)")
    small = torch.randn(4, 4, device=DEV)  # kept exact (small): the check still applies
    w = torch.randn(4, 4, device=DEV, requires_grad=True)
    y = torch.sigmoid(small @ w)
    y.add_(1)
    try:
        y.sum().backward()
        gsutil.fail("in-place error missing for a kept tensor")
    except RuntimeError as e:
        gsutil.check("modified by an inplace operation" in str(e), "in-place error raised (kept tensor)")
    if os.environ.get("GACTSHIM_POLICY") != "off":
        gsutil.run_child([__file__, "inplace-only", str(DEV.type)], {"GACTSHIM_POLICY": "off"})


class SaveStrides(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        ctx.stride = a.stride()
        return a.sum()

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        ctx.seen = a.stride()
        return a * g


def test_layouts():
    base = torch.randn(8, 16, 32, 32, device=DEV)
    cases = {"transposed": base.transpose(2, 3), "channels_last": base.contiguous(memory_format=torch.channels_last),
             "sliced": base[:, ::2]}
    for name, t in cases.items():
        t = t.detach().requires_grad_(False)
        w = torch.randn(32, device=DEV, requires_grad=True)
        compare("layout %s" % name, lambda: (SaveStrides.apply(t * w) + (t * w).sigmoid().sum()), [w])
    t = cases["channels_last"]
    fn_in = (t * 1.0).requires_grad_()
    out = SaveStrides.apply(fn_in * 2)
    out.backward()
    gsutil.check(fn_in.grad is not None, "channels_last backward ran")
    conv = torch.nn.Conv2d(16, 16, 3, padding=1).to(DEV).to(memory_format=torch.channels_last)
    compare("conv channels_last", lambda: F.relu(conv(cases["channels_last"])).mean(), list(conv.parameters()))


def test_strides_restored():
    t = torch.randn(64, 64, 32, device=DEV).transpose(0, 2)
    w = torch.ones(1, device=DEV, requires_grad=True)
    holder = {}

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            holder["stride"] = ctx.saved_tensors[0].stride()
            return None
    (Probe.apply(t * w)).backward()
    gsutil.check(holder["stride"] == (t * w).stride(), "dense non-contiguous strides restored %s" % (holder["stride"],))


def test_autocast():
    if DEV.type != "cpu":
        ctx = torch.autocast("cuda", dtype=torch.float16)
    else:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16)
    lin1, lin2 = torch.nn.Linear(256, 512).to(DEV), torch.nn.Linear(512, 256).to(DEV)

    def fn():
        with ctx:
            return lin2(F.gelu(lin1(X))).float().pow(2).mean()
    global TOL
    old, TOL = TOL, 0.05  # bf16 rounding of the exact run is itself ~0.4 %
    compare("autocast %s" % ("bf16 (CPU)" if DEV.type == "cpu" else "fp16"), fn, list(lin1.parameters()) + list(lin2.parameters()))
    TOL = old


def test_threads():
    results, errors = {}, []

    def work(i):
        try:
            torch.manual_seed(i)
            w = W1.detach().clone().requires_grad_()
            mlp_loss = torch.relu(X @ w).pow(2).mean()
            mlp_loss.backward()
            results[i] = w.grad
        except Exception as e:  # reported below
            errors.append(e)
    c0 = stat("compressed")
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gsutil.check(not errors, "threads ran without error %s" % errors)
    gsutil.check(stat("compressed") - c0 >= 4, "each thread's activations compressed (%d)" % (stat("compressed") - c0))
    w = W1.detach().clone().requires_grad_()
    with gsutil.exact_hooks():
        torch.relu(X @ w).pow(2).mean().backward()
    err = max(gsutil.rel_error([g], [w.grad]) for g in results.values())
    gsutil.check(err < TOL, "thread gradients match exact: %.5f" % err)


def test_untouched():
    p0 = stat("packed")
    with torch.no_grad():
        mlp(X)
    with torch.inference_mode():
        mlp(X)
    gsutil.check(stat("packed") == p0, "no_grad and inference_mode pack nothing")


def test_skips():
    d0, b0, dup0 = skipped("dtype"), stat("compressed"), skipped("duplicate")
    w = torch.randn(256, 256, device=DEV, dtype=torch.float64, requires_grad=True)
    (torch.sigmoid(X.double() @ w)).sum().backward()
    gsutil.check(skipped("dtype") > d0, "float64 kept exact (skipped dtype)")
    mask = X > 0
    w2 = param(256)
    compare("bool mask (lossless 1-bit)", lambda: torch.where(mask, X * w2, X * 2 * w2).sigmoid().sum(), [w2])
    r = torch.relu(X @ W1)
    (r @ W2).sum().backward()
    gsutil.check(skipped("duplicate") > dup0, "a ReLU output saved twice is compressed once")
    gsutil.check(b0 < stat("compressed"), "compression happened")


if __name__ == "__main__":
    if sys.argv[1:2] == ["inplace-only"]:
        expect_inplace_error("(GACTSHIM_POLICY=off)")
        sys.exit(0)
    for t in (test_retain_graph, test_double_backward, test_checkpoint, test_custom_function, test_inplace,
              test_layouts, test_strides_restored, test_autocast, test_threads, test_untouched, test_skips):
        t()
    print("stats:", shim.stats())
