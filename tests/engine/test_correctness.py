# test_correctness.py: every autograd feature still works under the shim, with gradients matching
# the exact ones (8 bits): retain_graph, double backward, both checkpoints, custom Function,
# in-place errors, non-contiguous layouts, bf16 autocast, threads, no_grad / inference_mode.
# Every test runs on the CPU and on CUDA (marker gpu); all of one device share one pytest child
# started with GACTSHIM_BITS=8 (tests/conftest.py, child_env), in this order, on the same data.
import os
import sys
import threading

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

import gsutil

pytestmark = pytest.mark.child_env(GACTSHIM_BITS="8")  # 8 bits, so 2 % is a fair bound
TOL = 0.02


class Setup:
    """The device, the shim's module and the shared weights and batch (seed 0)."""

    def __init__(self, dev):
        self.dev = dev
        self.shim = gsutil.shim()
        torch.manual_seed(0)
        self.W1, self.W2 = self.param(256, 256), self.param(256, 256)
        self.X = torch.randn(128, 256, device=dev)

    def stat(self, key):
        return self.shim.stats()[key]

    def skipped(self, key):
        return self.shim.stats()["skipped"][key]

    def param(self, *shape):
        # Unit-scale activations: a saturated tanh would make any lossy copy of its output useless.
        return (torch.randn(*shape, device=self.dev) * shape[0] ** -0.5).requires_grad_()

    def mlp(self, x):
        return torch.tanh(torch.relu(x @ self.W1) @ self.W2)

    def compare(self, name, fn, params, tol=TOL):
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
        c0 = self.stat("compressed")
        got = run(False)
        err = gsutil.rel_error(got, exact)
        gsutil.check(self.stat("compressed") > c0, "%s: activations compressed (%d)" % (name, self.stat("compressed") - c0))
        gsutil.check(err < tol, "%s: gradient error %.5f < %g" % (name, err, tol))


@pytest.fixture(scope="module", params=gsutil.DEVICES)
def s(request):
    return Setup(torch.device(request.param))


def test_retain_graph(s):
    loss = s.mlp(s.X).pow(2).mean()
    g1 = torch.autograd.grad(loss, [s.W1, s.W2], retain_graph=True)
    g2 = torch.autograd.grad(loss, [s.W1, s.W2])
    gsutil.check(all(torch.equal(a, b) for a, b in zip(g1, g2)), "retain_graph: second backward equals first")
    s.compare("retain_graph", lambda: s.mlp(s.X).pow(2).mean(), [s.W1, s.W2])


def test_double_backward(s):
    x = torch.randn(128, 256, device=s.dev, requires_grad=True)

    def fn():
        y = s.mlp(x).pow(2).sum()
        (g,) = torch.autograd.grad(y, x, create_graph=True)
        return g.pow(2).sum()
    s.compare("double backward", fn, [s.W1, s.W2])


def test_checkpoint(s):
    for reentrant in (True, False):
        def fn():
            x = s.X.clone().requires_grad_(reentrant)  # reentrant checkpoint needs an input with grad
            h = checkpoint(s.mlp, x, use_reentrant=reentrant)
            return torch.sigmoid(h @ s.W1).pow(2).mean()
        s.compare("checkpoint use_reentrant=%s" % reentrant, fn, [s.W1, s.W2])


class ScaledSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return 2 * a * b * g, a * a * g


def test_custom_function(s):
    s.compare("custom autograd.Function",
              lambda: ScaledSquare.apply(s.X @ s.W1, torch.sigmoid(s.X @ s.W2)).mean(), [s.W1, s.W2])


def expect_inplace_error(dev, label):
    x = torch.randn(256, 256, device=dev)
    w = torch.randn(256, 256, device=dev, requires_grad=True)
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


def test_inplace(s):
    expect_inplace_error(s.dev, "(compressed)")
    small = torch.randn(4, 4, device=s.dev)  # kept exact (small): the check still applies
    w = torch.randn(4, 4, device=s.dev, requires_grad=True)
    y = torch.sigmoid(small @ w)
    y.add_(1)
    try:
        y.sum().backward()
        gsutil.fail("in-place error missing for a kept tensor")
    except RuntimeError as e:
        gsutil.check("modified by an inplace operation" in str(e), "in-place error raised (kept tensor)")
    if os.environ.get("GACTSHIM_POLICY") != "off":
        gsutil.run_child([__file__, "inplace-only", str(s.dev.type)], {"GACTSHIM_POLICY": "off"})


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


def test_layouts(s):
    base = torch.randn(8, 16, 32, 32, device=s.dev)
    cases = {"transposed": base.transpose(2, 3), "channels_last": base.contiguous(memory_format=torch.channels_last),
             "sliced": base[:, ::2]}
    for name, t in cases.items():
        t = t.detach().requires_grad_(False)
        w = torch.randn(32, device=s.dev, requires_grad=True)
        s.compare("layout %s" % name, lambda: (SaveStrides.apply(t * w) + (t * w).sigmoid().sum()), [w])
    t = cases["channels_last"]
    fn_in = (t * 1.0).requires_grad_()
    out = SaveStrides.apply(fn_in * 2)
    out.backward()
    gsutil.check(fn_in.grad is not None, "channels_last backward ran")
    conv = torch.nn.Conv2d(16, 16, 3, padding=1).to(s.dev).to(memory_format=torch.channels_last)
    s.compare("conv channels_last", lambda: F.relu(conv(cases["channels_last"])).mean(), list(conv.parameters()))


def test_strides_restored(s):
    t = torch.randn(64, 64, 32, device=s.dev).transpose(0, 2)
    w = torch.ones(1, device=s.dev, requires_grad=True)
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


def test_autocast(s):
    if s.dev.type != "cpu":
        ctx = torch.autocast("cuda", dtype=torch.float16)
    else:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16)
    lin1, lin2 = torch.nn.Linear(256, 512).to(s.dev), torch.nn.Linear(512, 256).to(s.dev)

    def fn():
        with ctx:
            return lin2(F.gelu(lin1(s.X))).float().pow(2).mean()
    # bf16 rounding of the exact run is itself ~0.4 %
    s.compare("autocast %s" % ("bf16 (CPU)" if s.dev.type == "cpu" else "fp16"), fn,
              list(lin1.parameters()) + list(lin2.parameters()), tol=0.05)


def test_threads(s):
    results, errors = {}, []

    def work(i):
        try:
            torch.manual_seed(i)
            w = s.W1.detach().clone().requires_grad_()
            mlp_loss = torch.relu(s.X @ w).pow(2).mean()
            mlp_loss.backward()
            results[i] = w.grad
        except Exception as e:  # reported below
            errors.append(e)
    c0 = s.stat("compressed")
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gsutil.check(not errors, "threads ran without error %s" % errors)
    gsutil.check(s.stat("compressed") - c0 >= 4, "each thread's activations compressed (%d)" % (s.stat("compressed") - c0))
    w = s.W1.detach().clone().requires_grad_()
    with gsutil.exact_hooks():
        torch.relu(s.X @ w).pow(2).mean().backward()
    err = max(gsutil.rel_error([g], [w.grad]) for g in results.values())
    gsutil.check(err < TOL, "thread gradients match exact: %.5f" % err)


def test_thread_end_pops_hooks(s):
    """A thread pops the shim's hooks when its code ends. Left in PyTorch's thread-local stack,
    they were dropped after the thread's Python state was gone, taking the GIL: a thread ending as
    the interpreter finalized aborted the process (seen in torch.compile jobs)."""
    shim = gsutil.shim()
    top = torch._C._autograd._top_saved_tensors_default_hooks
    real, seen = shim.release_hooks, {}

    def release():
        seen["before"] = top(True)
        real()
        seen["after"] = top(True)
    shim.release_hooks = release
    try:
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
    finally:
        shim.release_hooks = real
    before = seen.get("before")
    gsutil.check(before is not None and before[0] is shim.pack, "the thread ran with the shim's hooks on top")
    gsutil.check("after" in seen and seen["after"] is None, "its code ended with its hook stack empty")


def test_untouched(s):
    p0 = s.stat("packed")
    with torch.no_grad():
        s.mlp(s.X)
    with torch.inference_mode():
        s.mlp(s.X)
    gsutil.check(s.stat("packed") == p0, "no_grad and inference_mode pack nothing")


def test_8bit_groups_of_32(s):
    """At 8 bits a tensor's codec groups hold at most 32 elements, whatever its rows (256 here):
    the buffer is the 32-byte header, 4 bytes per group aligned to 16, then a byte per element."""
    a = torch.randn(128, 256, device=s.dev, requires_grad=True)
    t = a * 1.5  # has a grad_fn: an activation, not a parameter
    b0, c0 = s.stat("bytes_compressed"), s.stat("compressed")
    h = s.shim.pack(t)
    groups = t.numel() // 32
    want = (32 + 4 * groups + 15) // 16 * 16 + t.numel()
    got = s.stat("bytes_compressed") - b0
    gsutil.check(s.stat("compressed") == c0 + 1, "the activation was compressed")
    gsutil.check(got == want, "%d bytes held: groups of 32 at 8 bits (%d; groups of 256 would be %d)"
                 % (got, want, (32 + 4 * (t.numel() // 256) + 15) // 16 * 16 + t.numel()))
    err = ((s.shim.unpack(h) - t).norm() / t.norm()).item()
    gsutil.check(err < 0.01, "it decodes to the tensor (relative error %.4f)" % err)


def test_skips(s):
    d0, b0, dup0 = s.skipped("dtype"), s.stat("compressed"), s.skipped("duplicate")
    w = torch.randn(256, 256, device=s.dev, dtype=torch.float64, requires_grad=True)
    (torch.sigmoid(s.X.double() @ w)).sum().backward()
    gsutil.check(s.skipped("dtype") > d0, "float64 kept exact (skipped dtype)")
    mask = s.X > 0
    w2 = s.param(256)
    s.compare("bool mask (lossless 1-bit)", lambda: torch.where(mask, s.X * w2, s.X * 2 * w2).sigmoid().sum(), [w2])
    r = torch.relu(s.X @ s.W1)
    (r @ s.W2).sum().backward()
    gsutil.check(s.skipped("duplicate") > dup0, "a ReLU output saved twice is compressed once")
    gsutil.check(b0 < s.stat("compressed"), "compression happened")
    # A CPU-path property, checked where it exists (not a part skipped on CUDA):
    if s.dev.type == "cpu":  # the CPU codec reports non-finite groups; the tensor is kept exact
        n0 = s.skipped("nonfinite")
        src = torch.randn(256, 256, device=s.dev)
        src[0, 0] = float("inf")
        t = src * s.param(256)  # an activation (a tensor without grad_fn is kept as a parameter)
        w3 = s.param(256)
        (t * w3).sum().backward()
        gsutil.check(s.skipped("nonfinite") > n0, "a tensor holding Inf is kept exact (skipped nonfinite)")
        gsutil.check(torch.isinf(w3.grad).any().item(), "its gradient is the exact one (Inf reaches w.grad)")


def test_iterations(s):
    it0 = s.stat("iteration")
    for _ in range(3):
        s.mlp(s.X).pow(2).mean().backward()
    gsutil.check(s.stat("iteration") - it0 in (3, 4), "iterations counted without user code (%d)" % (s.stat("iteration") - it0))
    print("stats:", s.shim.stats())


if __name__ == "__main__":  # the child of test_inplace: test_correctness.py inplace-only cpu|cuda
    if sys.argv[1:2] == ["inplace-only"]:
        gsutil.shim()
        expect_inplace_error(torch.device(sys.argv[2]), "(GACTSHIM_POLICY=off)")
