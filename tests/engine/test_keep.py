# test_keep.py: what pack keeps exact whatever the policy says, and how it restores layouts.
# Parameters, frozen weights and what their casts and views lead back to (W.t() of a frozen
# nn.Linear, autocast's bf16 weight copies) are kept and counted as `param`; tensor subclasses as
# `subclass`; broadcasts (a stride-0 dimension of size > 1) as `layout`; a non-dense saved tensor
# comes back with the strides the op saw; softmax outputs seen through a cast or dropout get 8 bits;
# a free-threaded interpreter gets one line and no hooks.
import contextlib
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import gsutil

# Small tensors count too (the default floor is 64 KiB).
pytestmark = pytest.mark.child_env(GACTSHIM_MIN_BYTES="0", GACTSHIM_BITS="4")


def delta(fn):
    """(stats difference, result) of fn() under the shim."""
    shim = gsutil.shim()
    s0 = shim.stats()
    out = fn()
    s1 = shim.stats()
    d = {k: s1["skipped"][k] - s0["skipped"][k] for k in s1["skipped"]}
    d.update(compressed=s1["compressed"] - s0["compressed"], packed=s1["packed"] - s0["packed"])
    return d, out


def input_grad(model, x, autocast=False, exact=False):
    x = x.detach().clone().requires_grad_()
    g = torch.randn(64, 256, generator=torch.Generator().manual_seed(1))  # a fixed output gradient
    with gsutil.exact_hooks() if exact else contextlib.nullcontext():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = model(x * 1.5)  # x * 1.5: the layer's input is an activation, as in a network
        (y.float() * g).sum().backward()
    return x.grad


def linear(frozen):
    torch.manual_seed(0)
    lin = nn.Linear(256, 256)
    lin.requires_grad_(not frozen)
    return lin


def test_frozen_and_cast_weights_kept():
    x = torch.randn(64, 256)
    for frozen in (True, False):
        for autocast in (False, True):
            lin = linear(frozen)
            what = "%s weight%s" % ("frozen" if frozen else "trainable", ", bf16 autocast" if autocast else "")
            d, got = delta(lambda: input_grad(lin, x, autocast))
            exact = input_grad(lin, x, autocast, exact=True)
            gsutil.check(d["param"] >= 1, "%s: the weight (or its cast / view) counted as param (%d)" % (what, d["param"]))
            # The input gradient is the output gradient times the weight: exact iff the weight is.
            gsutil.check(torch.equal(got, exact), "%s: the input gradient is bit-exact" % what)
            # Only activations may be compressed: the layer's input (and, trainable, the product).
            gsutil.check(d["compressed"] <= d["packed"] - d["param"] - d["duplicate"],
                         "%s: nothing counted as param was compressed (%s)" % (what, d))


def test_softmax_through_cast_and_dropout_sensitive():
    torch.manual_seed(0)
    q = torch.randn(128, 64, requires_grad=True)
    v = torch.randn(128, 64, requires_grad=True)

    def attn(kind):
        a = (q @ q.t()).softmax(-1, dtype=torch.float32)
        a = a.to(torch.bfloat16).float() if kind == "cast" else nn.functional.dropout(a, 0.1)
        return (a @ v).sum().backward()

    for kind in ("cast", "dropout"):
        shim = gsutil.shim()
        attn(kind)
        attn(kind)  # the plan is the last completed iteration's: the first run's, once this one starts
        plan = json.loads(shim.plan_json())["per_tensor"]
        # (dropout's bool mask is kept losslessly at 1 bit, whatever the width: not counted here)
        square = [t for t in plan if t["shape"] == [128, 128] and t["bits"] and t["dtype"] != "bool"]
        gsutil.check(square and all(t["bits"] >= 8 for t in square),
                     "softmax output seen through %s: %s bits" % (kind, [t["bits"] for t in square]))


def test_broadcast_kept_and_strides_restored():
    torch.manual_seed(0)
    w = torch.randn(1, 256, requires_grad=True)
    y = torch.randn(64, 256, requires_grad=True)  # its gradient needs the broadcast saved
    d, _ = delta(lambda: ((w * 2).expand(64, 256) * y).sum().backward())
    gsutil.check(d["layout"] >= 1, "an expanded (stride-0) activation is kept, counted as layout (%s)" % d)

    seen = {}

    class StrideSpy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * 3

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            seen["stride"], seen["values"] = a.stride(), a.detach().clone()
            return g * 3

    big = torch.randn(64, 512, requires_grad=True)
    d, _ = delta(lambda: StrideSpy.apply((big * 1)[:, ::2]).sum().backward())
    sliced = (big.detach() * 1)[:, ::2]
    gsutil.check(d["compressed"] >= 1, "the non-dense slice was compressed (%s)" % d)
    gsutil.check(seen["stride"] == sliced.stride(),
                 "it comes back with the strides the op saw: %s (forward %s)" % (seen["stride"], sliced.stride()))
    err = (seen["values"] - sliced).abs().max().item() / sliced.abs().max().item()
    gsutil.check(err < 0.2, "and its values at 4 bits (max error %.3f of the range)" % err)


class Tagged(torch.Tensor):
    """A trivial subclass: its ops return Tagged (the default __torch_function__)."""


def test_subclass_skipped():
    torch.manual_seed(0)
    w = torch.randn(256, 256, requires_grad=True)
    x = torch.randn(64, 256).as_subclass(Tagged)
    g = torch.randn(64, 256)

    def run():
        h = x @ w  # mm saves its input x (the subclass) for w's gradient
        gsutil.check(type(h) is Tagged, "the activation is a subclass")
        (h * g).sum().backward()
        return w.grad.clone()

    d, got = delta(run)
    w.grad = None
    ((x.as_subclass(torch.Tensor) @ w) * g).sum().backward()
    gsutil.check(d["subclass"] >= 1, "the subclass input kept, counted as subclass (%s)" % d)
    gsutil.check(torch.equal(got, w.grad), "the gradient that needs it is exact")


def test_free_threaded_no_hooks():
    # The bootstrap reads the build flag at `import torch`; here it is made to say free-threaded.
    code = ("import sysconfig\nreal = sysconfig.get_config_var\n"
            "sysconfig.get_config_var = lambda n: 1 if n == 'Py_GIL_DISABLED' else real(n)\n"
            "import sys, torch\nx = torch.randn(256, 256, requires_grad=True)\n"
            "(x.exp() * 2).sum().backward()\nprint('_gactshim' in sys.modules, "
            "torch._C._autograd._top_saved_tensors_default_hooks(True))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ))
    lines = [l for l in p.stderr.splitlines() if "free-threaded" in l]
    gsutil.check(p.returncode == 0, "a free-threaded interpreter trains (exit %d: %s)" % (p.returncode, p.stderr[-300:]))
    gsutil.check(p.stdout.split() == ["False", "None"], "no module, no hooks (%s)" % p.stdout.strip())
    gsutil.check(len(lines) == 1, "one log line says why (%s)" % lines)


def test_sdpa_rules():
    shim = gsutil.shim()
    torch.manual_seed(0)
    w = torch.randn(32, 32, requires_grad=True)
    x = torch.randn(2, 4, 128, 32)

    def run():
        q, k, v = x @ w, x @ (w * 2), x @ (w * 3)
        o = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        (o * x).sum().backward()
        return q, k, v

    run()
    run()  # the plan read below is the first run's (the last completed iteration)
    plan = json.loads(shim.plan_json())["per_tensor"]
    four_d = [t for t in plan if len(t["shape"]) == 4 and t["shape"][-1] == 32 and t["bits"]]
    # The logsumexp is packed just before the output; it has no grad_fn (kept, counted as param).
    lse = plan[plan.index(four_d[-1]) - 1]
    bits = [t["bits"] for t in four_d]
    print("SDPA's saved tensors (q, k, v, ..., out):", [(t["shape"], t["bits"], t["skip"]) for t in plan])
    # Packed in this order by SDPA's backward node: query, key, value, logsumexp, output.
    gsutil.check(len(bits) >= 4 and bits[0] >= 8 and bits[1] >= 8, "query and key at >= 8 bits (%s)" % bits)
    gsutil.check(bits[2] == 4, "value at the policy's 4 bits (%s)" % bits)
    gsutil.check(bits[-1] >= 8, "the attention output at >= 8 bits (%s)" % bits)
    gsutil.check(lse["bits"] == 0 and lse["skip"] == "param", "the logsumexp kept exact (%s)" % lse)
