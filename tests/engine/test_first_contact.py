# test_first_contact.py: a fresh process whose very first backward unpacks a compressed tensor on
# PyTorch's autograd thread, which on device 0 may have no current CUDA context (pytorch#124565).
# F.cross_entropy's log-softmax output is unpacked into a cached buffer by the first backward node.
# GPU only (marker gpu): the CPU has no contexts. No exact backward runs before it, on purpose.
import pytest

import gsutil


@pytest.mark.gpu
@pytest.mark.child_env(GACTSHIM_BITS="4", GACTSHIM_MIN_BYTES="0")
def test_first_backward_on_cold_autograd_thread():
    import torch
    import torch.nn.functional as F
    shim = gsutil.shim()
    torch.manual_seed(0)
    logits = torch.randn(512, 4096, device="cuda", requires_grad=True)
    target = torch.randint(0, 4096, (512,), device="cuda")
    before = shim.stats()["compressed"]
    loss = F.cross_entropy(logits * 2.0, target)
    gsutil.check(shim.stats()["compressed"] > before, "the forward compressed a saved tensor")
    loss.backward()  # raised "a saved tensor could not be decompressed" before the fix
    torch.cuda.synchronize()
    gsutil.check(bool(torch.isfinite(logits.grad).all()), "the gradient is finite")
