# test_policies.py: the adaptive and budget policies end to end on the char transformer.
#   identity  saved-tensor identities (index, shape, dtype) are the same every iteration, and the
#             plans learned from one iteration are applied in the next
#   budget    GACTSHIM_POLICY=budget keeps tracked saved bytes under GACTSHIM_BUDGET for the whole
#             run, where the same run with GACTSHIM_POLICY=off exceeds it (CPU; CUDA: marker gpu)
import json
import sys

import pytest

import gsutil

STEPS = 6
BATCH = 16


def plan_rows():
    p = json.loads(gsutil.shim().plan_json())
    return p["plan"]["iteration"], p["per_tensor"]


def child_identity():
    import torch
    import models
    torch.set_num_threads(2)
    torch.manual_seed(0)
    data = models.stdlib_text(200_000)
    seen = []
    # After each step: the iteration before it (a plan is made at the next iteration's first pack).
    models.fit(models.CharLM(), models.char_batches(data, STEPS, BATCH, 64, 0),
               after_step=lambda step, losses: seen.append(plan_rows()))
    print(json.dumps({"seen": seen}), flush=True)


def test_identity():
    out, stats = gsutil.run_child([__file__, "child-identity"], {"GACTSHIM_POLICY": "adaptive"})
    seen = [s for s in gsutil.last_json(out)["seen"] if s[0] >= 0]
    iters = [it for it, _ in seen if it >= 0]
    gsutil.check(iters == list(range(len(iters))) and len(iters) >= STEPS - 1,
                 "one completed iteration per step, in order: %s" % iters)
    keys = [[(r["index"], r["shape"], r["dtype"]) for r in rows] for it, rows in seen if it >= 0]
    gsutil.check(all(k == keys[0] for k in keys) and len(keys[0]) > 10,
                 "the %d saved-tensor identities are the same in every iteration" % len(keys[0]))
    first = [r["reason"] for r in seen[0][1] if r["reason"] != "skipped"]
    later = [r["reason"] for r in seen[-1][1] if r["reason"] != "skipped"]
    gsutil.check(set(first) == {"warmup"}, "iteration 0 compresses at GACTSHIM_BITS (warm-up): %s" % sorted(set(first)))
    gsutil.check(set(later) == {"adaptive"}, "later iterations follow the adaptive plan: %s" % sorted(set(later)))
    planned = [r["bits"] for r in seen[-1][1] if r["reason"] == "adaptive"]
    gsutil.check(len(set(planned)) > 1, "adaptive chose different widths: %s" % sorted(set(planned)))
    gsutil.check(len(stats["per_tensor"]) == len(keys[0]), "the stats JSON lists per_tensor for the last iteration")


def child_train(device="cpu"):
    import torch
    import models
    torch.set_num_threads(2)
    loss = models.train_char(steps=STEPS, batch=BATCH, seed=0, device=device)
    print(json.dumps({"loss": loss}), flush=True)


def tracked_peak(stats, device):
    if device == "cpu":
        return stats["live_bytes_peak_host"]
    return stats["devices"]["0"]["peak"]


@pytest.mark.parametrize("device", gsutil.DEVICES)
def test_budget(device):
    child = "child-train" if device == "cpu" else "child-train-gpu"
    _, off = gsutil.run_child([__file__, child], {"GACTSHIM_POLICY": "off"})
    peak_off = tracked_peak(off, device)
    # Half of what the saved tensors hold at the peak: on the CPU they are all that is tracked;
    # on a GPU the rest (parameters, gradients, the allocator's cache) stays.
    saved = sum(r["full_bytes"] for r in off["per_tensor"] if r["alive_at_peak"] and r["skip"] == "policy")
    limit = peak_off // 2 if device == "cpu" else peak_off - saved // 2
    _, st = gsutil.run_child([__file__, child],
                             {"GACTSHIM_POLICY": "budget", "GACTSHIM_BUDGET": str(limit)})
    peak = tracked_peak(st, device)
    reasons = {}
    for r in st["per_tensor"]:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    print("budget %d B: peak with budget %d B, peak with off %d B; last iteration's reasons %s"
          % (limit, peak, peak_off, reasons), flush=True)
    gsutil.check(peak_off > limit, "off exceeds the budget (%d > %d)" % (peak_off, limit))
    gsutil.check(peak <= limit, "budget keeps the peak under it over the whole run (%d <= %d)" % (peak, limit))
    gsutil.check(reasons.get("budget-fits", 0) > 0,
                 "budget compresses only what it needs: %d tensors kept as the budget holds" % reasons.get("budget-fits", 0))
    gsutil.check(reasons.get("budget", 0) > 0, "and compresses %d" % reasons.get("budget", 0))


if __name__ == "__main__":
    {"child-identity": child_identity, "child-train": child_train,
     "child-train-gpu": lambda: child_train("cuda")}[sys.argv[1]]()
