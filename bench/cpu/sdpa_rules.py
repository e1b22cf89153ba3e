# sdpa_rules.py: gradient error of an attention block with each SDPA sensitivity rule on or off.
#
# The codec's scheme is simulated in PyTorch (groups of 256, min-max, stochastic rounding) by a
# saved_tensors_hooks pair that knows each saved tensor's role (query, key, value, output,
# logsumexp), so that each rule can be switched alone; no shim is loaded. Prints, per setting, the
# largest per-parameter gradient error relative to the exact gradient (1 % floor), mean of 5 seeds.
# docs/policies.md#sensitivity-rules has the table.  Usage: python sdpa_rules.py [BITS]
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

B, S, D, H, GROUP = 4, 128, 128, 4, 256
torch.manual_seed(0)
PROJ = [nn.Linear(D, D) for _ in range(4)]
PARAMS = [p for m in PROJ for p in m.parameters()]
X, G = torch.randn(B, S, D), torch.randn(B, S, D)


def quantize(t, bits, gen):
    if bits >= 16:
        return t
    flat = t.detach().reshape(-1)
    n = flat.numel()
    groups = torch.cat([flat, flat.new_zeros((-n) % GROUP)]).view(-1, GROUP)
    lo, hi = groups.min(1, keepdim=True).values, groups.max(1, keepdim=True).values
    scale = (hi - lo).clamp_min(1e-30) / (2 ** bits - 1)
    q = torch.floor((groups - lo) / scale + torch.rand(groups.shape, generator=gen)).clamp(0, 2 ** bits - 1)
    return (q * scale + lo).view(-1)[:n].view(t.shape)


def grads(role_bits, base_bits, seed):
    gen = torch.Generator().manual_seed(seed)
    roles = {}

    def pack(t):
        for role, r in roles.items():
            if t is r:
                return quantize(t, role_bits.get(role, base_bits), gen)
        if t.grad_fn is None:  # the logsumexp [B, H, S]; parameters and inputs stay exact
            return quantize(t, role_bits.get("lse", base_bits), gen) if t.shape == (B, H, S) else t
        if type(t.grad_fn).__name__.startswith("ScaledDotProduct"):
            return quantize(t, role_bits.get("out", base_bits), gen)
        return quantize(t, base_bits, gen)

    for p in PARAMS:
        p.grad = None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        q, k, v = (m(X).view(B, S, H, -1).transpose(1, 2) for m in PROJ[:3])
        roles.update(q=q, k=k, v=v)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        (PROJ[3](o.transpose(1, 2).reshape(B, S, D)) * G).sum().backward()
    return [p.grad.clone() for p in PARAMS]


def error(got, ref):
    total = torch.sqrt(sum((e.double() ** 2).sum() for e in ref)).item()
    return max((a.double() - e.double()).norm().item() / max(e.double().norm().item(), 0.01 * total)
               for a, e in zip(got, ref))


def main():
    bits = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    ref = grads({}, 32, 0)
    rules = {"q": 8, "k": 8, "out": 8, "lse": 32}
    settings = [("everything at %d bits" % bits, {}, bits), ("the logsumexp at %d, the rest exact" % bits, {"lse": bits}, 32),
                ("q, k at 8", {"q": 8, "k": 8}, bits), ("v at 8", {"v": 8}, bits), ("output at 8", {"out": 8}, bits),
                ("logsumexp exact", {"lse": 32}, bits), ("the rules", rules, bits)]
    settings += [("the rules without " + r, {k: v for k, v in rules.items() if k != r}, bits) for r in rules]
    for name, role_bits, base in settings:
        errs = [error(grads(role_bits, base, s), ref) for s in range(5)]
        print("%-40s gradient error %.3f" % (name, sum(errs) / len(errs)), flush=True)


if __name__ == "__main__":
    main()
