# gactshim_probe.py: the sensitivity probes of the adaptive and budget policies (shim/probe.c).
#
# On probe iterations (the first three, then every GACTSHIM_ADAPT_EVERY) the engine calls
# probe(t, k, group) for each tensor it may compress. The probe measures what the allocators
# weigh: the per-group value ranges of t, Σ_g n_g·range_g² (the quantization noise the tensor
# would carry at a given width). It stays a tensor (no host sync in forward); collect(), at the
# next iteration's first pack, turns the results into numbers once per probe iteration.
#
# collect() may also report C, a gradient scale per tensor (ActNN), and plan.c weighs it when
# present. This probe reports none (-1): C = mean ‖dL/dt‖² read by a hook on t was measured and
# made the char transformer worse (docs/policies.md: the gradient a saved tensor's error is
# multiplied by is its consumer's output gradient, which ‖dL/dt‖ misjudges).
import torch

_pending = []


def _range_term(x, group):
    m = x.numel() // group * group
    total = x.new_zeros((), dtype=torch.float32)
    if m:
        g = x[:m].view(-1, group)
        r = (g.amax(1) - g.amin(1)).float()
        total = total + (r * r).sum() * group
    if m < x.numel():
        tail = x[m:]
        r = (tail.max() - tail.min()).float()
        total = total + r * r * tail.numel()
    return total


def probe(t, k, group):
    with torch.no_grad():
        _pending.append((k, _range_term(t.detach().reshape(-1), group)))


def collect():
    out = tuple((k, -1.0, float(rt)) for k, rt in _pending)
    _pending.clear()
    return out
