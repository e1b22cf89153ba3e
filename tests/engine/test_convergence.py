# test_convergence.py: a 2-block char transformer trained on the standard library's own source
# text reaches, at the default setting, a final loss within 2 % of the same run (same seed, same
# batches) with compression off; and the adaptive policy at 2 bits within 2 % too.
# GS_CONVERGENCE_ALL=1 also runs 2 and 8 bits in test_default_setting, for the record.
import json
import os
import sys

import pytest

import gsutil

STEPS = 200
BATCH = 16  # 1024 tokens a step: the CPU codec, not the model, dominates the time


def child():
    import torch
    import models
    torch.set_num_threads(2)
    loss = models.train_char(steps=STEPS, batch=BATCH, seed=0)
    stats = sys.modules["_gactshim"].stats()
    print(json.dumps({"loss": loss, "compressed": stats["compressed"]}), flush=True)


def run(env):
    out, stats = gsutil.run_child([__file__, "child"], env)
    return gsutil.last_json(out)["loss"], stats


@pytest.mark.slow
def test_adaptive_policy():
    """Adaptive against fixed at the same GACTSHIM_BITS=2 (the same bytes: docs/policies.md)."""
    exact, _ = run({"GACTSHIM_POLICY": "off"})
    fixed, _ = run({"GACTSHIM_BITS": "2"})
    adaptive, st = run({"GACTSHIM_POLICY": "adaptive", "GACTSHIM_BITS": "2"})
    rel = lambda v: 100 * (v - exact) / exact  # noqa: E731
    print("final loss: exact %.4f, fixed-2 %.4f (%+.2f %%), adaptive-2 %.4f (%+.2f %%)"
          % (exact, fixed, rel(fixed), adaptive, rel(adaptive)), flush=True)
    widths = sorted(set(r["bits"] for r in st["per_tensor"] if r["reason"] == "adaptive"))
    gsutil.check(len(widths) > 1, "adaptive used several widths: %s" % widths)
    gsutil.check(abs(rel(adaptive)) < 2.0, "adaptive-2 within 2 %% of exact (%+.2f %%)" % rel(adaptive))
    if adaptive < fixed:
        print("ok: adaptive-2 ends closer to exact than fixed-2", flush=True)
    else:
        print("NOTE: adaptive-2 does not beat fixed-2 here (docs/policies.md says why)", flush=True)


@pytest.mark.slow
def test_default_setting():
    everything = os.environ.get("GS_CONVERGENCE_ALL") == "1"
    exact, _ = run({"GACTSHIM_POLICY": "off"})
    default, stats = run({})
    rel = abs(default - exact) / exact
    print("final loss: exact %.4f, default %.4f (%+.2f %%)" % (exact, default, 100 * (default - exact) / exact))
    if everything:
        for bits in ("8", "2"):
            loss, _ = run({"GACTSHIM_BITS": bits})
            print("final loss at %s bits: %.4f (%+.2f %%)" % (bits, loss, 100 * (loss - exact) / exact))
    gsutil.check(stats["compressed"] > 0, "default setting compressed %d activations" % stats["compressed"])
    gsutil.check(exact < 3.0, "the model learned (exact loss %.3f < 3.0)" % exact)
    gsutil.check(rel < 0.02, "default loss within 2 %% of exact (%.2f %%)" % (100 * rel))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child()
