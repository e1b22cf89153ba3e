# test_func.py: torch.func's grad, vjp, jacrev and vmap(grad) (per-sample gradients) work under the
# shim and give the results they give without it (PyTorch disables saved-tensor hooks under these
# transforms: the shim must step aside), and training after them is still compressed.
import json
import os
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
import gsutil  # noqa: E402


def child(out_path):
    import models
    from torch.func import functional_call, grad, jacrev, vjp, vmap
    torch.manual_seed(0)
    model = models.MLP(d_in=64, width=256, depth=2, d_out=10)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))

    def loss(p, xb, yb):
        return torch.nn.functional.cross_entropy(functional_call(model, p, (xb,)), yb)
    res = {"grad": grad(loss)(params, x, y)}
    out, back = vjp(lambda xb: functional_call(model, params, (xb,)), x)
    res["vjp"] = {"out": out, "dx": back(torch.ones_like(out))[0]}
    res["jacrev"] = {"j": jacrev(lambda xb: functional_call(model, params, (xb,)))(x[:2])}
    per_sample = vmap(grad(lambda p, xb, yb: loss(p, xb[None], yb[None])), in_dims=(None, 0, 0))
    res["vmap_grad"] = per_sample(params, x, y)
    torch.save(res, out_path)
    model(torch.randn(256, 64)).pow(2).mean().backward()  # ordinary training goes on under the shim
    shim = sys.modules.get("_gactshim")
    print(json.dumps({"compressed": shim.stats()["compressed"] if shim else None}), flush=True)


def flat(res):
    return {"%s.%s" % (k, n): v for k, d in res.items() for n, v in d.items()}


def test_func_transforms(tmp_path):
    got_p, want_p = str(tmp_path / "shim.pt"), str(tmp_path / "bare.pt")
    out, _ = gsutil.run_child([__file__, "child", got_p], {"GACTSHIM_QUIET": "1"})
    gsutil.check(gsutil.last_json(out)["compressed"] > 0, "training after the transforms is compressed")
    gsutil.run_child([__file__, "child", want_p], {"LD_PRELOAD": ""})
    got, want = flat(torch.load(got_p)), flat(torch.load(want_p))
    gsutil.check(sorted(got) == sorted(want), "the same results: %s" % sorted(want))
    for k in sorted(want):
        gsutil.check(torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-7),
                     "%s under the shim matches the run without it (max diff %.3g)"
                     % (k, (got[k] - want[k]).abs().max().item()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2])
