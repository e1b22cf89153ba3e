"""CPU benchmark: the noise floor of the zoo ResNet-18's first-step gradients, fp32 and bf16 autocast.

Plain PyTorch, no shim. Each saved floating tensor (except ReLU outputs, casts and small ones) is
replaced in a saved_tensors_hook by itself plus uniform noise of a given amplitude (times the
tensor's max |x|), and the first step's gradients are compared with the unperturbed ones, by the
zoo's measure (worst per-parameter relative error, floor 1 % of the total norm). The 8-bit codec's
error is up to half a step, about max|x|/255 for a symmetric range: an amplitude of 2/255.
If a perturbation far below that already moves the gradients past the zoo's 1 %, the bf16
arithmetic, not the codec, sets the error.
Usage: .venv/bin/python bench/cpu/bf16_floor.py [amplitude,...]   (default 0.00002,0.002,0.0078)
"""
import os
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "engine"))
import gsutil  # noqa: E402  (the zoo's gradient error)


def first_grads(amplitude, dtype):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 64, 64, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), generator=g)
    noise = torch.Generator().manual_seed(1)

    def pack(t):
        name = type(t.grad_fn).__name__ if t.grad_fn is not None else ""
        if not amplitude or not t.is_floating_point() or not name or t.numel() <= 4096 or \
                "Relu" in name or "ToCopy" in name:
            return t  # ReLU's backward reads the sign (the shim keeps it exactly), casts are weights
        r = torch.rand(t.shape, generator=noise) - 0.5
        return (t.detach().float() + r * t.detach().float().abs().amax() * amplitude).to(t.dtype)

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
    return {n: p.grad.detach().float().clone() for n, p in model.named_parameters()}


def main():
    torch.set_num_threads(1)
    amplitudes = [float(a) for a in (sys.argv[1] if len(sys.argv) > 1 else "0.00002,0.002,0.0078").split(",")]
    for dtype in (None, torch.bfloat16):
        exact = first_grads(0, dtype)
        names = sorted(exact)
        for a in amplitudes:
            got = first_grads(a, dtype)
            err = gsutil.rel_error([got[n] for n in names], [exact[n] for n in names])
            print("%s: noise amplitude %.5f x max -> worst gradient error %.4f"
                  % ("bf16 autocast" if dtype else "fp32", a, err), flush=True)


if __name__ == "__main__":
    main()
