# test_unbiased.py: at 2 bits one backward is noisy, but the mean gradient over many seeds tends
# to the exact one (stochastic rounding is unbiased): the error of the mean shrinks ~1/sqrt(seeds).
# The model uses each saved tensor linearly (matmuls, a ReLU whose sign the shim keeps exactly),
# which is where unbiased saved tensors give unbiased gradients. On the CPU and on CUDA (marker
# gpu), in a pytest child started with GACTSHIM_BITS=2 (tests/conftest.py, child_env).
import pytest

import gsutil


def _model(device):
    """The exact gradients and a function giving the shim's gradients of the same small model."""
    import torch
    dev = torch.device(device)
    torch.manual_seed(0)
    x = torch.randn(256, 128, device=dev)
    w1 = (torch.randn(128, 256, device=dev) / 128 ** 0.5).requires_grad_()
    w2 = (torch.randn(256, 256, device=dev) / 256 ** 0.5).requires_grad_()
    r = torch.randn(256, 256, device=dev)

    def loss():
        return ((torch.relu(x @ w1) @ w2) * r).sum()

    def grads():
        w1.grad = w2.grad = None
        loss().backward()
        return [w1.grad.clone(), w2.grad.clone()]

    with gsutil.exact_hooks():
        exact = grads()
    return exact, grads


def _check_mean_tends_to_exact(shim, exact, grads, label=""):
    import torch
    total = [torch.zeros_like(g) for g in exact]
    errs = {}
    for seed in range(1, 65):
        shim.set_seed(seed)
        for t, g in zip(total, grads()):
            t += g
        if seed in (1, 4, 16, 64):
            errs[seed] = gsutil.rel_error([t / seed for t in total], exact)
    print(label + "error of the mean gradient by number of seeds:", errs)
    gsutil.check(errs[1] > 0.02, "2 bits: one backward is visibly noisy (%.4f)" % errs[1])
    gsutil.check(errs[16] < errs[1] * 0.5, "16 seeds: error %.4f < half of 1 seed's" % errs[16])
    gsutil.check(errs[64] < errs[1] * 0.25, "64 seeds: error %.4f < quarter of 1 seed's (ideal 1/8)" % errs[64])


@pytest.mark.child_env(GACTSHIM_BITS="2")
@pytest.mark.parametrize("device", gsutil.DEVICES)
def test_mean_gradient_tends_to_exact(device):
    exact, grads = _model(device)
    _check_mean_tends_to_exact(gsutil.shim(), exact, grads)


# DDP ranks see the same tensor ids in the same order: with the same seed they drew the same
# rounding noise, which then does not average out across ranks. Two fresh processes play ranks 0
# and 1 (same seed, same tensor ids); each rank's noise is unbiased on its own.
_ONE_RANK = """
import sys, torch
sys.path.insert(0, sys.argv[2])
import gsutil
from test_unbiased import _model
exact, grads = _model("cpu")
gsutil.shim().set_seed(7)
torch.save(grads(), sys.argv[1])
"""


@pytest.mark.child_env(GACTSHIM_BITS="2", RANK=None, LOCAL_RANK=None)
def test_ranks_draw_different_noise(tmp_path):
    import os
    import subprocess
    import sys
    import torch
    here = os.path.dirname(os.path.abspath(__file__))
    out = {}
    for rank in ("0", "1"):
        out[rank] = str(tmp_path / ("rank%s.pt" % rank))
        env = dict(os.environ, RANK=rank)
        env.pop("_GS_PYTEST_CHILD", None)
        subprocess.run([sys.executable, "-c", _ONE_RANK, out[rank], here], env=env, check=True,
                       timeout=120)
    g0, g1 = torch.load(out["0"]), torch.load(out["1"])
    diff = gsutil.rel_error(g0, g1)
    gsutil.check(diff > 0.01, "ranks 0 and 1, same seed and tensor ids: different noise "
                 "(relative difference %.4f)" % diff)


@pytest.mark.child_env(GACTSHIM_BITS="2", RANK="1")
def test_rank_noise_unbiased():
    exact, grads = _model("cpu")
    _check_mean_tends_to_exact(gsutil.shim(), exact, grads, "rank 1: ")
