"""CPU benchmark: GACTSHIM_SELECT=lifetime vs =all, step time and memory, in one run.

Runs the same training (the char transformer with activation checkpointing from
tests/engine/models.py, and the plain one) in fresh processes under LD_PRELOAD, alternating the
two settings REPEAT times, and writes bench/results/<date>-cpu-lifetime-<machine>.{json,md}.
Not a test: timings on a shared machine are noisy; the medians are reported.
Usage: /usr/bin/python3 bench/cpu/lifetime.py build/shim/libgactshim.so [steps] [repeat]
"""
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, %r)
import torch, models
torch.set_num_threads(2)
torch.manual_seed(0)
data = models.stdlib_text(200_000)
model = models.CheckpointedCharLM(blocks=8) if %r == "checkpointed" else models.CharLM(blocks=8)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
times = []
for x, y in models.char_batches(data, %d, 16, 64, 0):
    t0 = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 128), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t0)
print(json.dumps({"step_ms": 1000 * statistics.median(times[2:]), "loss": loss.item()}))
"""


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
        return m.group(1).strip() if m else platform.machine()
    except OSError:
        return platform.machine()


def run(lib, model, select, steps):
    fd, stats = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = dict(os.environ, LD_PRELOAD=lib, GACTSHIM_SELECT=select, GACTSHIM_STATS=stats,
               GACTSHIM_QUIET="1", OMP_NUM_THREADS="2")
    code = CHILD % (os.path.join(ROOT, "tests", "engine"), model, steps)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    with open(stats) as f:
        st = json.load(f)
    os.unlink(stats)
    r.update(peak=st["live_bytes_peak_host"], compressed=st["compressed"], codec_ms=st["codec_ns"] / 1e6)
    return r


def main():
    lib = os.path.abspath(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    results = {}
    for model in ("checkpointed", "plain"):
        for _ in range(repeat):
            for select in ("all", "lifetime"):
                results.setdefault(model, {}).setdefault(select, []).append(run(lib, model, select, steps))
    summary = {m: {s: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                   for s, runs in by.items()} for m, by in results.items()}
    day = datetime.date.today().isoformat()
    name = re.sub(r"[^a-z0-9]+", "-", machine().lower()).strip("-")
    base = os.path.join(ROOT, "bench", "results", "%s-cpu-lifetime-%s" % (day, name))
    meta = {"date": day, "device": "cpu", "machine": machine(), "cores": os.cpu_count(),
            "steps": steps, "repeat": repeat, "torch_threads": 2}
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": results}, f, indent=1)
    lines = ["# GACTSHIM_SELECT lifetime vs all — cpu, %s (%s, %d cores)" % (day, machine(), os.cpu_count()), "",
             "8-block char transformer, batch 16 x 64 tokens, fixed 4 bits, %d steps, median of %d runs "
             "(step time: median over steps 3..%d)." % (steps, repeat, steps), "",
             "| model | select | step ms | peak tracked B | tensors compressed | codec ms |", "|---|---|---|---|---|---|"]
    for m, by in summary.items():
        for s, v in by.items():
            lines.append("| %s | %s | %.1f | %d | %d | %.1f |" % (m, s, v["step_ms"], v["peak"], v["compressed"], v["codec_ms"]))
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
