# test_models.py: MLP, CNN (digits) and a 2-block char transformer (stdlib text) trained under the shim: activations compressed,
# parameters skipped, duplicates shared, and 8-bit gradients within 1 % of the exact ones.
# The test (cpu, cuda) runs this file as a child, `test_models.py child DEVICE`, with GACTSHIM_BITS=8.
import json
import sys

import pytest

import gsutil


def make(name, device):
    """A model, a real batch (sklearn's bundled digits; the stdlib's own source text) and a loss."""
    import torch
    import torch.nn.functional as F
    import models
    from sklearn.datasets import load_digits
    torch.manual_seed(1)
    d = load_digits()
    x = torch.tensor(d.data[:512], dtype=torch.float32, device=device) / 16
    y = torch.tensor(d.target[:512], device=device)
    if name == "mlp":
        return models.MLP(d_in=64, width=256).to(device), x, lambda out: F.cross_entropy(out, y)
    if name == "cnn":
        img = F.interpolate(x[:64].view(-1, 1, 8, 8), size=32).expand(-1, 3, -1, -1).contiguous()
        return models.CNN().to(device), img, lambda out: F.cross_entropy(out, y[:64])
    text = models.stdlib_text(200_000)
    idx, tgt = next(models.char_batches(text, 1, 16, 64, 0))
    lm = models.CharLM().to(device)
    tgt = tgt.to(device)
    return lm, idx.to(device), lambda out: F.cross_entropy(out.reshape(-1, out.shape[-1]), tgt.reshape(-1))


def grads_of(model, x, loss_fn, exact):
    import torch
    model.zero_grad(set_to_none=True)
    torch.manual_seed(7)  # the same dropout mask in both runs
    if exact:
        with gsutil.exact_hooks():
            out = model(x)
    else:
        out = model(x)
    loss_fn(out.float()).backward()
    return gsutil.grads(model)


def child(device):
    shim = gsutil.shim()
    result = {}
    for name in ("mlp", "cnn", "block"):
        model, x, loss_fn = make(name, device)
        exact = grads_of(model, x, loss_fn, True)
        before = shim.stats()["compressed"]
        got = grads_of(model, x, loss_fn, False)
        result[name] = {"err": gsutil.rel_error(got, exact),
                        "compressed": shim.stats()["compressed"] - before}
    print(json.dumps(result), flush=True)


@pytest.mark.parametrize("device", gsutil.DEVICES)
def test_models(device):
    out, stats = gsutil.run_child([__file__, "child", device], {"GACTSHIM_BITS": "8"})
    res = gsutil.last_json(out)
    for name, r in res.items():
        gsutil.check(r["compressed"] > 0, "%s on %s: %d activations compressed" % (name, device, r["compressed"]))
        gsutil.check(r["err"] < 0.01, "%s on %s: 8-bit gradient error %.5f < 1%%" % (name, device, r["err"]))
    gsutil.check(stats is not None, "GACTSHIM_STATS JSON written")
    for key in ("packed", "compressed", "unpacked", "bytes_original", "bytes_compressed"):
        gsutil.check(isinstance(stats.get(key), int) and stats[key] > 0, "stats %s = %s" % (key, stats.get(key)))
    sk = stats["skipped"]
    gsutil.check(sk["param"] > 0, "parameters skipped: %d" % sk["param"])
    gsutil.check(sk["duplicate"] > 0, "duplicates shared: %d" % sk["duplicate"])
    gsutil.check(stats["bytes_compressed"] * 3 < stats["bytes_original"],
                 "8 bits: %d -> %d bytes" % (stats["bytes_original"], stats["bytes_compressed"]))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        child(sys.argv[2])
