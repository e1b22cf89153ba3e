# test_unbiased.py: at 2 bits one backward is noisy, but the mean gradient over many seeds tends
# to the exact one (stochastic rounding is unbiased): the error of the mean shrinks ~1/sqrt(seeds).
# The model uses each saved tensor linearly (matmuls, a ReLU whose sign the shim keeps exactly),
# which is where unbiased saved tensors give unbiased gradients. On the CPU and on CUDA (marker
# gpu), in a pytest child started with GACTSHIM_BITS=2 (tests/conftest.py, child_env).
import pytest

import gsutil


@pytest.mark.child_env(GACTSHIM_BITS="2")
@pytest.mark.parametrize("device", gsutil.DEVICES)
def test_mean_gradient_tends_to_exact(device):
    import torch
    dev = torch.device(device)
    shim = gsutil.shim()
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
    total = [torch.zeros_like(g) for g in exact]
    errs = {}
    for seed in range(1, 65):
        shim.set_seed(seed)
        for t, g in zip(total, grads()):
            t += g
        if seed in (1, 4, 16, 64):
            errs[seed] = gsutil.rel_error([t / seed for t in total], exact)
    print("error of the mean gradient by number of seeds:", errs)
    gsutil.check(errs[1] > 0.02, "2 bits: one backward is visibly noisy (%.4f)" % errs[1])
    gsutil.check(errs[16] < errs[1] * 0.5, "16 seeds: error %.4f < half of 1 seed's" % errs[16])
    gsutil.check(errs[64] < errs[1] * 0.25, "64 seeds: error %.4f < quarter of 1 seed's (ideal 1/8)" % errs[64])
