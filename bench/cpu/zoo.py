"""CPU benchmark: the model zoo (tests/zoo) side by side: exact vs shim, per model, in one run.

For each zoo case, fresh processes run the same training steps (same seeds) without the shim, with
the shim kept exact (GACTSHIM_POLICY=off), at 8 bits and at the default setting, and this prints:
peak saved-activation bytes exact vs default (stats live_bytes_peak_host), the 8-bit gradient
error (worst per parameter, relative, with the zoo's floor), the default's final-loss delta and the
step-time ratio default / without the shim (median of steps 2..N). Writes
bench/results/<date>-cpu-zoo-<machine>.{json,md}. Not a test: timings on a shared machine are noisy.
Usage: .venv/bin/python bench/cpu/zoo.py build/shim/libgactshim.so [steps] [case ...]
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "zoo"))


def machine():
    name = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            name = re.search(r"model name\s*:\s*(.*)", f.read()).group(1).strip()
    except (OSError, AttributeError):
        pass
    load = os.getloadavg()
    return {"cpu": name, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_at_start": [round(x, 2) for x in load]}


def bench_case(zoo, case, steps):
    t0 = time.perf_counter()
    fig = zoo.measure(case, steps)
    bare = zoo.run_setting(case, "exact", steps, {"LD_PRELOAD": ""})
    row = {k: v for k, v in fig.items() if k != "runs"}
    row["step_ms"] = {s: 1000 * zoo.median_step(r) for s, r in fig["runs"].items()}
    row["step_ms"]["bare"] = 1000 * zoo.median_step(bare)
    row["time_ratio_vs_bare"] = row["step_ms"]["default"] / row["step_ms"]["bare"]
    row["compressed"] = fig["runs"]["default"]["stats"]["compressed"]
    row["weights_compressed_at_8_bits"] = len(fig["runs"]["bits8"]["probe"]["bad"])
    row["wall_s"] = time.perf_counter() - t0
    return row


def markdown(res):
    m = res["machine"]
    out = ["# Model zoo under the shim — cpu, %s (%s, %d cores)" % (res["date"], m["cpu"], m["cores"]), "",
           "torch %s, %d training steps per run, fresh processes per setting; load average at start %s "
           "(the machine is shared: step times are indicative only)." % (res["torch"], res["steps"], m["load_at_start"]),
           "", "| model | saved bytes exact | saved bytes default | ratio | 8-bit grad error | default loss delta "
           "| step time default / no shim | weight tensors compressed (8 bits) |",
           "|---|---|---|---|---|---|---|---|"]
    for case, r in res["cases"].items():
        if "error" in r:
            out.append("| %s | failed: %s | | | | | | |" % (case, r["error"]))
            continue
        out.append("| %s | %d | %d | %.2fx | %s | %+.3f %% | %.2fx | %d |" % (
            case, r["bytes_exact"], r["bytes_default"], r["ratio"],
            "%.5f" % r["grad_err"] if "grad_err" in r else "n/a", 100 * r["loss_rel"],
            r["time_ratio_vs_bare"], r["weights_compressed_at_8_bits"]))
    return "\n".join(out) + "\n"


def main(argv):
    shim = os.path.abspath(argv[0])
    steps = int(argv[1]) if len(argv) > 1 else 4
    os.environ["LD_PRELOAD"] = shim
    import zoo
    import zoo_cases
    cases = argv[2:] or list(zoo_cases.CASES)
    torch_v = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], env=dict(
        os.environ, LD_PRELOAD=""), capture_output=True, text=True).stdout.strip()
    res = {"date": datetime.date.today().isoformat(), "machine": machine(), "torch": torch_v,
           "steps": steps, "shim": shim, "cases": {}}
    slug = re.sub(r"[^a-z0-9]+", "-", res["machine"]["cpu"].lower()).strip("-")
    base = os.path.join(ROOT, "bench", "results", "%s-cpu-zoo-%s" % (res["date"], slug))
    for case in cases:  # the files are rewritten after each case: a cut-short run keeps its rows
        try:
            res["cases"][case] = bench_case(zoo, case, steps)
        except (AssertionError, subprocess.SubprocessError, OSError, KeyError, TypeError) as e:
            res["cases"][case] = {"error": str(e).splitlines()[0][:200]}
        print(case, json.dumps(res["cases"][case]), flush=True)
        with open(base + ".json", "w") as f:
            json.dump(res, f, indent=1)
        with open(base + ".md", "w") as f:
            f.write(markdown(res))
    print(markdown(res))

if __name__ == "__main__":
    main(sys.argv[1:])
