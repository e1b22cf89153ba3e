# test_memory.py: peak RSS growth of a deep MLP's forward+backward, measured in separate processes:
# at 2 bits it must be at least 4x smaller than with the shim's compression off.
import json
import sys

import gsutil


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child():
    import torch
    import torch.nn as nn
    torch.manual_seed(0)
    width, depth, batch = 1024, 48, 512  # 2 MiB per activation, 96 MiB saved in all
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    model = nn.Sequential(*layers)
    x = torch.randn(batch, width)

    def step():
        model.zero_grad(set_to_none=False)  # gradients stay allocated: only activations grow
        model(x).pow(2).mean().backward()
    step()
    step()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    base = rss_kib("VmRSS")
    step()
    print(json.dumps({"growth_kib": rss_kib("VmHWM") - base, "base_kib": base}), flush=True)


def test_peak_rss_4x_smaller():
    # Large blocks through mmap, so freed memory leaves RSS and the baseline is honest.
    env = {"MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    off, _ = gsutil.run_child([__file__, "child"], dict(env, GACTSHIM_POLICY="off"))
    two, stats = gsutil.run_child([__file__, "child"], dict(env, GACTSHIM_BITS="2"))
    g_off, g_two = gsutil.last_json(off)["growth_kib"], gsutil.last_json(two)["growth_kib"]
    ratio = g_off / max(g_two, 1)
    print("peak RSS growth: off %.1f MiB, 2 bits %.1f MiB, ratio %.2fx" % (g_off / 1024, g_two / 1024, ratio))
    gsutil.check(stats["compressed"] > 0, "activations compressed at 2 bits (%d)" % stats["compressed"])
    gsutil.check(ratio >= 4.0, "peak RSS growth %.2fx smaller at 2 bits (>= 4x)" % ratio)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child()
