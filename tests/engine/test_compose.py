# test_compose.py: the shim beside PyTorch's other users of saved-tensor hooks. torch.func.grad,
# vjp, jacrev and vmap(grad) work and give the results of a process without the shim;
# disable_saved_tensors_hooks, selective activation checkpointing (no FutureWarning), save_on_cpu
# and the user's own saved_tensors_hooks nested inside the shim's behave as without it; the stats'
# "unseen" counters say which regions the shim did not see.
import os
import subprocess
import sys
import tempfile
import warnings

import pytest
import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

import gsutil


def weights():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 64, generator=g) / 8, torch.randn(64, 64, generator=g) / 8, \
        torch.randn(16, 64, generator=g)


def loss(w1, w2, x):
    return (torch.tanh(torch.relu(x @ w1) @ w2) ** 2).sum()


def func_results():
    """torch.func's answers on fixed data (the same code runs with and without the shim)."""
    w1, w2, x = weights()
    out = {"grad": torch.func.grad(loss)(w1, w2, x)}
    _, vjp_fn = torch.func.vjp(lambda w: torch.tanh(x @ w), w1)
    out["vjp"] = vjp_fn(torch.ones(16, 64))[0]
    out["jacrev"] = torch.func.jacrev(lambda v: torch.tanh(v @ w1))(x[0])
    per_sample = torch.func.vmap(torch.func.grad(lambda w, xi: loss(w, w2, xi[None])), in_dims=(None, 0))
    out["vmap_grad"] = per_sample(w1, x)
    return out


def without_shim(tmp):
    """func_results() in a child process without LD_PRELOAD, saved to tmp."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    code = "import sys, torch; sys.path.insert(0, %r); import test_compose as t; torch.save(t.func_results(), %r)" % (
        os.path.dirname(os.path.abspath(__file__)), tmp)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    return torch.load(tmp)


def unseen(shim, key):
    return shim.stats()["unseen"][key]


def compresses(shim):
    """Whether a plain backward outside any region is still compressed (the hooks are back)."""
    c0 = shim.stats()["compressed"]
    x = torch.randn(256, 256, requires_grad=True)
    (x.exp() * 2).sum().backward()
    return shim.stats()["compressed"] > c0


def test_torch_func_matches_without_shim():
    shim = gsutil.shim()
    d0 = unseen(shim, "disabled")
    got = func_results()
    with tempfile.TemporaryDirectory() as tmp:
        exact = without_shim(os.path.join(tmp, "r.pt"))
    for name, ref in exact.items():
        err = (got[name] - ref).abs().max().item()
        gsutil.check(err <= 1e-6 * max(1.0, ref.abs().max().item()),
                     "torch.func %s under the shim matches the run without it (max diff %.2e)" % (name, err))
    gsutil.check(unseen(shim, "disabled") - d0 >= 4,
                 "each transform's region counted as unseen 'disabled' (%d)" % (unseen(shim, "disabled") - d0))
    gsutil.check(compresses(shim), "after torch.func the shim's hooks are back: a backward is compressed")


def test_step_aside_said_once():
    code = ("import torch\nf = lambda x: (x.exp() * x).sum()\n"
            "for _ in range(3): torch.func.grad(f)(torch.randn(8))\n")
    p = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, GACTSHIM_LOG="debug"),
                       capture_output=True, text=True, timeout=300)
    lines = [l for l in p.stderr.splitlines() if "steps aside" in l]
    gsutil.check(p.returncode == 0, "three torch.func.grad calls under the shim exit 0 (%s)" % p.stderr[-500:])
    gsutil.check(len(lines) == 1, "stepping aside is said once at debug level (%d lines)" % len(lines))
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    gsutil.check("steps aside" not in quiet.stderr, "and not at the default log level")


def test_disable_saved_tensors_hooks():
    shim = gsutil.shim()
    c0, d0 = shim.stats()["compressed"], unseen(shim, "disabled")
    x = torch.randn(256, 256, requires_grad=True)
    with torch.autograd.graph.disable_saved_tensors_hooks("no hooks here"):
        (x.exp() * 2).sum().backward()
        with pytest.raises(RuntimeError, match="no hooks here"):
            with torch.autograd.graph.save_on_cpu():
                pass
        with torch.autograd.graph.disable_saved_tensors_hooks("nested"):
            (x.exp() * 2).sum().backward()
    gsutil.check(shim.stats()["compressed"] == c0, "nothing compressed while hooks are disabled")
    gsutil.check(unseen(shim, "disabled") - d0 == 1, "one unseen 'disabled' region for the outer context")
    gsutil.check(torch.equal(x.grad, 2 * 2 * x.detach().exp()), "exact gradients while disabled")
    gsutil.check(compresses(shim), "the hooks are back after the context")


def block(w1, w2, x):
    return torch.tanh(torch.relu(x @ w1) @ w2)


def sac_policy(ctx, op, *args, **kwargs):
    return CheckpointPolicy.MUST_SAVE if op == torch.ops.aten.mm.default else CheckpointPolicy.PREFER_RECOMPUTE


def grads_of(fn, exact):
    w1, w2, x = weights()
    w1.requires_grad_()
    w2.requires_grad_()
    if exact:
        with gsutil.exact_hooks():
            fn(w1, w2, x).pow(2).sum().backward()
    else:
        fn(w1, w2, x).pow(2).sum().backward()
    return [w1.grad, w2.grad]


def test_selective_checkpoint():
    shim = gsutil.shim()
    k0 = unseen(shim, "checkpoint")

    def sac(w1, w2, x):
        return checkpoint(block, w1, w2, x, use_reentrant=False,
                          context_fn=lambda: create_selective_checkpoint_contexts(sac_policy))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = grads_of(sac, exact=False)
    exact = grads_of(block, exact=True)
    err = gsutil.rel_error(got, exact)
    gsutil.check(err < 1e-6, "SAC under the shim: exact gradients, no warning (error %.2e)" % err)
    gsutil.check(unseen(shim, "checkpoint") > k0, "the checkpoint region counted as unseen 'checkpoint' (%d)"
                 % (unseen(shim, "checkpoint") - k0))


def test_user_hooks_inside_shim():
    shim = gsutil.shim()
    h0, p0 = unseen(shim, "hooks"), shim.stats()["packed"]
    seen = []

    def pack(t):
        seen.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        got = grads_of(block, exact=False)
    gsutil.check(shim.stats()["packed"] == p0, "inside the user's hooks the shim packs nothing")
    gsutil.check(len(seen) >= 4, "the user's pack saw every saved tensor (%d)" % len(seen))
    with torch.autograd.graph.save_on_cpu():
        on_cpu = grads_of(block, exact=False)
    exact = grads_of(block, exact=True)
    err = max(gsutil.rel_error(got, exact), gsutil.rel_error(on_cpu, exact))
    gsutil.check(err < 1e-6, "user hooks and save_on_cpu give exact gradients (error %.2e)" % err)
    gsutil.check(unseen(shim, "hooks") - h0 >= 2, "their regions counted as unseen 'hooks' (%d)"
                 % (unseen(shim, "hooks") - h0))
