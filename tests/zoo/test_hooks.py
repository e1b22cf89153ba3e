# test_hooks.py: PyTorch's own saved-tensor machinery under the shim behaves as without it:
# non-reentrant checkpoint, selective activation checkpointing (no FutureWarning from 2.14 on),
# save_on_cpu, and a user's own saved_tensors_hooks nested inside the shim's (the shim sees nothing
# of that region; the user's hooks see exactly what they see without the shim).
import contextlib
import functools
import json
import os
import sys
import warnings

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
import gsutil  # noqa: E402

MODES = ["checkpoint", "sac", "save-on-cpu", "user-hooks"]


def sac_policy(ctx, op, *args, **kwargs):
    """Save the matrix products, recompute the rest (the usual SAC policy)."""
    from torch.utils.checkpoint import CheckpointPolicy
    aten = torch.ops.aten
    saved = (aten.mm.default, aten.addmm.default, aten.bmm.default)
    return CheckpointPolicy.MUST_SAVE if op in saved else CheckpointPolicy.PREFER_RECOMPUTE


def forward(mode, model, idx):
    """CharLM's forward with its blocks wrapped as the mode says."""
    from torch.utils.checkpoint import checkpoint, create_selective_checkpoint_contexts
    x = model.tok(idx) + model.pos[: idx.shape[1]]
    for blk in model.blocks:
        if mode == "checkpoint":
            x = checkpoint(blk, x, use_reentrant=False)
        elif mode == "sac":
            x = checkpoint(blk, x, use_reentrant=False,
                           context_fn=functools.partial(create_selective_checkpoint_contexts, sac_policy))
        else:
            x = blk(x)
    return model.head(model.ln(x))


def user_hooks(seen):
    def pack(t):
        seen.append([list(t.shape), float(t.double().sum())])
        return t
    return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)


def child(mode, grads_path):
    import models
    torch.manual_seed(0)
    model = models.CharLM(ctx=64)
    idx, tgt = next(models.char_batches(models.stdlib_text(200_000), 1, 16, 64, 0))
    shim = sys.modules.get("_gactshim")
    packed = lambda: shim.stats()["packed"] if shim else 0  # noqa: E731
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = packed()
        region = {"save-on-cpu": lambda: torch.autograd.graph.save_on_cpu(),
                  "user-hooks": lambda: user_hooks(seen)}.get(mode, contextlib.nullcontext)
        with region():
            logits = forward(mode, model, idx)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 128), tgt.reshape(-1))
        in_region = packed() - before
        loss.backward()
    torch.save({n: p.grad for n, p in model.named_parameters()}, grads_path)
    print(json.dumps({"warnings": sorted({"%s: %s" % (w.category.__name__, w.message) for w in caught}),
                      "packed_in_forward": in_region, "user_seen": seen,
                      "compressed": shim.stats()["compressed"] if shim else None}), flush=True)


@pytest.mark.parametrize("mode", MODES)
def test_hooks(mode, tmp_path):
    g_shim, g_bare = str(tmp_path / "shim.pt"), str(tmp_path / "bare.pt")
    out, _ = gsutil.run_child([__file__, "child", mode, g_shim], {"GACTSHIM_BITS": "8", "GACTSHIM_QUIET": "1"})
    shim = gsutil.last_json(out)
    out, _ = gsutil.run_child([__file__, "child", mode, g_bare], {"LD_PRELOAD": ""})
    bare = gsutil.last_json(out)
    gsutil.check(shim["warnings"] == bare["warnings"], "%s: the same warnings as without the shim %s (without: %s)"
                 % (mode, shim["warnings"], bare["warnings"]))
    got, want = torch.load(g_shim), torch.load(g_bare)
    names = sorted(want)
    err = gsutil.rel_error([got[n] for n in names], [want[n] for n in names])
    if mode in ("save-on-cpu", "user-hooks"):
        gsutil.check(shim["packed_in_forward"] == 0, "%s: the shim saw nothing inside the region" % mode)
        gsutil.check(err < 1e-6, "%s: gradients as without the shim (error %.3g)" % (mode, err))
    else:
        gsutil.check(shim["compressed"] > 0, "%s: the shim compressed %d tensors outside the checkpointed blocks"
                     % (mode, shim["compressed"]))
        gsutil.check(err < 0.01, "%s: 8-bit gradients within 1 %% of those without the shim (%.5f)" % (mode, err))
    if mode == "user-hooks":
        gsutil.check(len(bare["user_seen"]) > 0 and shim["user_seen"] == bare["user_seen"],
                     "user-hooks: the user's pack saw the same %d tensors (shapes, sums) as without the shim"
                     % len(bare["user_seen"]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2], sys.argv[3])
