"""Benchmark driver: baseline vs gactshim vs PyTorch's own memory savers, per model.

Every measurement runs in a fresh `worker.py` process (LD_PRELOAD only for the gactshim
configs), so one OOM, crash or hang costs one probe, not the run. Results are merged into
<out-dir>/<date>-<device>.json after every measurement and the .md tables are re-rendered,
so a run cut short (or sliced over several invocations, e.g. one --models entry each) keeps
what it measured. Parts (--models): the benchmark models, the convergence tasks, and
'kernels' (the codec bandwidth table from build/bench/kernels/codec-bench).
Standard library only, plus models.py for the model list (which imports torch; CUDA
is never initialised in this process).
"""
import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import report  # noqa: E402
from models import BENCH_MODELS, CONVERGENCE_TASKS, SPECS  # noqa: E402

PARTS = ["kernels"] + BENCH_MODELS + CONVERGENCE_TASKS

# The shim configs' environment (LD_PRELOAD is added); the others run without the shim.
SHIM_CONFIGS = {
    "default": {},  # the shim as a user first meets it: no GACTSHIM_* setting
    "gactshim4": {"GACTSHIM_POLICY": "fixed", "GACTSHIM_BITS": "4", "GACTSHIM_SELECT": "all"},
    # Issue 9: the same 4 bits, compressing only what the memory peak needs (GACTSHIM_SELECT).
    "lifetime4": {"GACTSHIM_POLICY": "fixed", "GACTSHIM_BITS": "4", "GACTSHIM_SELECT": "lifetime"},
    "gactshim2": {"GACTSHIM_POLICY": "fixed", "GACTSHIM_BITS": "2"},
    "adaptive": {"GACTSHIM_POLICY": "adaptive", "GACTSHIM_BITS": "2"},
    "budget": {"GACTSHIM_POLICY": "budget"},          # GACTSHIM_BUDGET from --budget
}
CONFIGS = ["baseline", "default", "gactshim4", "lifetime4", "gactshim2", "adaptive", "budget", "checkpoint",
           "save_on_cpu"]

CONV_STEPS = {"digits-cnn": (500, 40), "char-transformer": (600, 15)}  # (full, quick)


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


class Runner:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.time_budget if args.time_budget else None
        self.tmp = tempfile.mkdtemp(prefix="gactshim-bench-")
        self.size = "tiny" if args.quick else "full"
        self.support = {}

    # -------------------------------------------------------------- processes
    def remaining(self):
        return None if self.deadline is None else self.deadline - time.monotonic()

    def env_for(self, config):
        env = dict(os.environ)
        for k in [k for k in env if k.startswith("GACTSHIM_")] + ["LD_PRELOAD"]:
            env.pop(k, None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if config in SHIM_CONFIGS:
            env.update(SHIM_CONFIGS[config])
            if config == "budget":
                env["GACTSHIM_BUDGET"] = self.args.budget
            env["LD_PRELOAD"] = os.path.abspath(self.args.lib)
            env["GACTSHIM_QUIET"] = "1"
        return env

    def spawn(self, cmd, env, timeout):
        """(rc or None on timeout, stdout, stderr, seconds); the timeout shrinks to the budget."""
        left = self.remaining()
        if left is not None:
            if left < 5:
                return "budget", "", "", 0.0
            timeout = min(timeout, left)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, err = p.communicate()
            rc = None
        return rc, out, err, time.monotonic() - t0

    def worker(self, config, timeout, **kw):
        """Run worker.py; returns its JSON record plus the shim's stats and the wall time."""
        cmd = [self.args.python, os.path.join(HERE, "worker.py"), "--device", self.args.device,
               "--size", self.size, "--config", config]
        for k, v in kw.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        env = self.env_for(config)
        stats = None
        if config in SHIM_CONFIGS:
            stats = os.path.join(self.tmp, "stats-%d.json" % time.monotonic_ns())
            env["GACTSHIM_STATS"] = stats
        rc, out, err, wall = self.spawn(cmd, env, timeout)
        if rc == "budget":
            return {"ok": False, "skipped": "time budget exhausted"}
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if rc is None:
            res = {"ok": False, "timeout": True, "error": "timed out after %.0f s" % wall}
        elif lines:
            res = json.loads(lines[-1])
        else:
            tail = " | ".join(err.strip().splitlines()[-3:])
            res = {"ok": False, "error": "exit %s without a result: %s" % (rc, tail[-400:])}
        res["wall_s"] = round(wall, 1)
        if stats and os.path.exists(stats):
            with open(stats) as f:
                res["shim"] = json.load(f)
            os.unlink(stats)
        if self.args.verbose:
            print("   ", config, kw, "->", {k: res.get(k) for k in ("ok", "oom", "error", "samples_per_s", "peak_alloc", "peak_rss", "wall_s") if k in res}, flush=True)
        return res

    def config_status(self, config):
        """None if the config can run here, else why not. A shim config is tried once:
        the shim rejects an unknown policy value with exit status 2 before any work."""
        if config not in SHIM_CONFIGS:
            return None
        if config not in self.support:
            lib = os.path.abspath(self.args.lib)
            if not os.path.exists(lib):
                self.support[config] = "shim not built (%s missing)" % self.args.lib
            else:
                rc, out, err, _ = self.spawn([self.args.python, "-c", "pass"], self.env_for(config), 60)
                if rc == 0:
                    self.support[config] = None
                else:
                    msg = " ".join(err.strip().splitlines()[-1:]) or "exit %s" % rc
                    self.support[config] = "not supported by this shim build (exit %s: %s)" % (rc, msg[:200])
        return self.support[config]


class Bench:
    def __init__(self, args):
        self.args = args
        self.run = Runner(args)
        self.info = None
        self.results = None
        self.path = None

    def save(self):
        self.results["meta"]["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
        tmp = self.path + ".json.tmp"
        with open(tmp, "w") as f:
            json.dump(self.results, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path + ".json")
        with open(self.path + ".md.tmp", "w") as f:
            f.write(report.render(self.results))
        os.replace(self.path + ".md.tmp", self.path + ".md")

    def start(self):
        a = self.args
        info = self.run.worker("baseline", 300, measure="info")
        if not info.get("ok"):
            sys.exit("worker info failed: %s" % info.get("error"))
        self.info = info
        name = slug(info["device_name"]) if a.device == "cuda" else "cpu-dryrun-" + slug(info["device_name"])[:32]
        os.makedirs(a.out_dir, exist_ok=True)
        self.path = os.path.join(a.out_dir, "%s-%s" % (datetime.date.today().isoformat(), name))
        old = None
        if not a.fresh and os.path.exists(self.path + ".json"):
            with open(self.path + ".json") as f:
                old = json.load(f)
            if old["meta"].get("quick") != a.quick:
                sys.exit("%s.json was written with --quick=%s; pass --fresh or a different --out-dir"
                         % (self.path, old["meta"].get("quick")))
        self.results = old or {"models": {}, "convergence": {}, "kernels": None, "configs": {}}
        self.results["meta"] = {
            "device": a.device, "device_name": info["device_name"], "quick": a.quick, "size": self.run.size,
            "info": info, "lib": rel(a.lib), "budget": a.budget, "git": git_describe(),
            "started": self.results.get("meta", {}).get("started") or datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        }
        for c in a.configs:
            self.results["configs"][c] = {"env": {k: v for k, v in self.run.env_for(c).items()
                                                  if k.startswith("GACTSHIM_") or k == "LD_PRELOAD"},
                                          "status": self.run.config_status(c)}
        self.save()
        print("results: %s.{md,json}" % os.path.relpath(self.path), flush=True)

    def mem_limit(self, model):
        """Bytes of host RSS counted as out of memory: a guard on cuda (a fraction of host
        RAM: save_on_cpu must not take the machine down), the stand-in for device memory on
        cpu (baseline's fixed-batch peak RSS + --cpu-headroom, so the search meets an OOM)."""
        if self.args.device == "cuda":
            return int(self.info["host_mem"] * self.args.host_mem_fraction)
        base = self.results["models"][model]["runs"].get("baseline", {}).get("fixed", {})
        return base["peak_rss"] + self.args.cpu_headroom if base.get("ok") else 0

    # -------------------------------------------------------------- figures
    def model(self, m):
        a = self.args
        fixed, cap = SPECS[m][self.run.size]
        if a.cap:
            cap = a.cap
        entry = self.results["models"].setdefault(m, {"runs": {}})
        entry.update(fixed_batch=fixed, cap=cap)
        runs = entry["runs"]
        configs = [c for c in a.configs if self.run.config_status(c) is None]
        for c in a.configs:
            runs.setdefault(c, {})["status"] = self.run.config_status(c)
        if "peak" in a.figures or "throughput" in a.figures:
            measure = "throughput" if "throughput" in a.figures else "peak"
            for c in sorted(configs, key=lambda c: c != "baseline"):  # baseline first: others compare to it
                print("[%s] %s: %s at batch %d" % (m, c, measure, fixed), flush=True)
                r = self.run.worker(c, a.measure_timeout, model=m, batch=fixed, measure=measure,
                                    steps=a.steps, warmup=a.warmup, mem_limit=self.mem_limit(m))
                runs[c]["fixed"] = r
                self.note(entry, r)
                self.save()
        for c in configs:  # per config, in --configs order: a time budget cuts the last ones
            if "maxbatch" in a.figures:
                print("[%s] %s: max batch search (cap %d)" % (m, c, cap), flush=True)
                runs[c]["max_batch"] = self.search(m, c, runs[c].get("fixed"), fixed, cap, entry)
                self.save()
            mb = (runs[c].get("max_batch") or {}).get("value")
            if "atmax" in a.figures and mb:
                print("[%s] %s: throughput at max batch %d" % (m, c, mb), flush=True)
                runs[c]["at_max"] = self.at_max(m, c, mb)
                self.save()

    @staticmethod
    def note(entry, r):
        """Record which implementation ran (whichever run reports it first)."""
        for k in ("impl", "unit"):
            if r.get(k):
                entry[k] = r[k]

    def search(self, m, c, fixed_res, fixed, cap, entry):
        """Largest batch that trains --probe-steps steps, each probe a fresh process.
        Coarse: predict the limit from the memory a run used (peak reserved vs device
        memory; peak RSS vs the host limit), linear in batch; fine: bisect the bracket
        until hi/lo <= 1 + --tolerance. Timeouts and errors count as failures."""
        a = self.args
        probes = []
        oks, lo, hi = [], None, None
        if fixed_res and fixed_res.get("ok"):
            lo = fixed
            oks.append((fixed, fixed_res))
        elif fixed_res and fixed_res.get("oom"):
            hi = fixed
        limit = "tolerance"
        while True:
            if lo is not None and lo >= cap:
                limit = "cap"
                break
            if hi is not None and (hi <= 1 or (lo is not None and (hi - lo <= 1 or hi / lo <= 1 + a.tolerance))):
                break
            if len(probes) >= a.max_probes:
                limit = "probe limit"
                break
            if lo is None:
                guess = max(1, (hi or fixed * 2) // 2)
            elif hi is None:
                pred = self.predict(oks, self.mem_limit(m))
                guess = lo * 2 if pred is None else min(max(pred, lo * 1.15), lo * 8)
                guess = min(int(guess), cap)
            else:
                guess = int(math.sqrt(lo * hi))
            guess = max(guess, (lo or 0) + 1)
            r = self.run.worker(c, a.probe_timeout, model=m, batch=guess, measure="probe",
                                steps=a.probe_steps, mem_limit=self.mem_limit(m))
            probes.append({"batch": guess, "ok": r.get("ok"), "oom": r.get("oom"), "wall_s": r.get("wall_s"),
                           "error": None if r.get("ok") or r.get("oom") else r.get("error") or r.get("skipped")})
            if r.get("skipped"):
                limit = "time budget"
                break
            if r.get("ok"):
                self.note(entry, r)
                lo = guess
                oks.append((guess, r))
            else:
                hi = guess
        return {"value": lo, "first_fail": hi, "capped": limit == "cap", "stopped_by": limit, "probes": probes}

    def predict(self, oks, host_limit):
        """Batch at which memory would reach the limit, fitted on the two largest OK runs
        (or one run and its batch-independent base), the smaller of device and host."""
        pts = sorted(oks)[-2:]
        preds = []
        for key, cap, base_key in (("peak_reserved", "device_total", "base_alloc"), ("peak_rss", None, None)):
            limit = host_limit if cap is None else pts[-1][1].get(cap, 0) * self.args.device_mem_fraction
            if not limit or any(key not in r for _, r in pts):
                continue
            (b1, r1), (b2, r2) = pts[0], pts[-1]
            if b2 > b1:
                slope = (r2[key] - r1[key]) / (b2 - b1)
                base = r2[key] - slope * b2
            elif base_key and base_key in r2:
                base = r2[base_key]
                slope = (r2[key] - base) / b2
            else:
                continue
            if slope > 0:
                preds.append((limit - base) / slope)
        return min(preds) if preds else None

    def at_max(self, m, c, mb):
        a = self.args
        for batch in (mb, int(mb * 0.9)):
            r = self.run.worker(c, a.measure_timeout, model=m, batch=batch, measure="throughput",
                                steps=a.steps, warmup=a.warmup, mem_limit=self.mem_limit(m))
            if r.get("ok") or not r.get("oom") or batch < 2:
                return r
        return r

    def convergence(self, task):
        a = self.args
        steps = a.conv_steps or CONV_STEPS[task][1 if a.quick else 0]
        entry = self.results["convergence"].setdefault(task, {"runs": {}})
        entry["steps"] = steps
        for c in a.configs:
            if c in ("checkpoint", "save_on_cpu"):
                continue  # exact recomputation / offload: same gradients as baseline
            status = self.run.config_status(c)
            if status:
                entry["runs"][c] = {"ok": False, "skipped": status}
                continue
            print("[%s] %s: %d steps" % (task, c, steps), flush=True)
            entry["runs"][c] = self.run.worker(c, a.measure_timeout, model=task, measure="converge",
                                               steps=steps, seed=0)
            self.save()

    def kernels(self):
        exe = self.args.codec_bench
        res = {"cmd": rel(exe), "runs": []}
        if not os.path.exists(exe):
            res["missing"] = "%s not built (meson setup build && ninja -C build)" % rel(exe)
        else:
            argv = [[exe]] + ([[exe, "cpu", "8"]] if self.args.device == "cpu" else [])
            for cmd in argv:
                print("[kernels] %s" % " ".join(cmd), flush=True)
                rc, out, err, wall = self.run.spawn(cmd, dict(os.environ), self.args.measure_timeout)
                res["runs"].append({"argv": cmd[1:], "rc": rc, "output": out + err, "wall_s": round(wall, 1)})
        self.results["kernels"] = res
        self.save()


def rel(path):
    """`path` relative to the repository root when it lies inside it (for the report)."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def git_describe():
    try:
        return subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def csv(choices):
    def parse(s):
        items = [x for x in s.split(",") if x]
        bad = [x for x in items if x not in choices]
        if bad:
            raise argparse.ArgumentTypeError("unknown %s (choose from %s)" % (",".join(bad), ",".join(choices)))
        return items
    return parse


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--quick", action="store_true", help="tiny shapes, small caps, few steps (dry run)")
    p.add_argument("--models", type=csv(PARTS), default=PARTS, help="parts to run, comma-separated: " + ",".join(PARTS))
    p.add_argument("--configs", type=csv(CONFIGS), default=CONFIGS, help=",".join(CONFIGS))
    figures = ["peak", "throughput", "maxbatch", "atmax"]
    p.add_argument("--figures", type=csv(figures), default=figures,
                   help="peak/throughput: at the fixed batch (one process: throughput also gives peak); "
                        "maxbatch: the search (reuses earlier results' fixed-batch run); atmax: throughput at the max batch")
    p.add_argument("--time-budget", type=float, default=0, help="seconds for the whole invocation (0: none)")
    p.add_argument("--lib", default=os.path.join(ROOT, "build/shim/libgactshim.so"))
    p.add_argument("--codec-bench", default=os.path.join(ROOT, "build/bench/kernels/codec-bench"))
    p.add_argument("--python", default=sys.executable, help="interpreter for the workers")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "bench/results"))
    p.add_argument("--fresh", action="store_true", help="start a new results file instead of merging into today's")
    p.add_argument("--budget", default="12GiB", help="GACTSHIM_BUDGET for the 'budget' config")
    p.add_argument("--steps", type=int, help="timed steps per throughput run (default 20; quick 3)")
    p.add_argument("--warmup", type=int, help="warm-up steps (default 3; quick 1)")
    p.add_argument("--probe-steps", type=int, default=2)
    p.add_argument("--cap", type=int, help="max-batch cap for every model (default per model)")
    p.add_argument("--tolerance", type=float, default=0.1, help="stop the search when hi/lo <= 1 + this")
    p.add_argument("--max-probes", type=int, help="probes per search (default 6; quick 4)")
    p.add_argument("--probe-timeout", type=float, help="seconds per probe (default 120; quick 60)")
    p.add_argument("--measure-timeout", type=float, default=300, help="seconds per fixed/at-max/convergence run")
    p.add_argument("--conv-steps", type=int, help="training steps per convergence run (default per task)")
    p.add_argument("--device-mem-fraction", type=float, default=0.95, help="device memory the search predicts against")
    p.add_argument("--host-mem-fraction", type=float, default=0.6, help="host RSS counted as OOM on cuda")
    p.add_argument("--cpu-headroom", type=int, default=32 << 20, help="cpu: OOM at baseline RSS + this")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    a.steps = a.steps or (3 if a.quick else 20)
    a.warmup = a.warmup or (1 if a.quick else 3)
    a.max_probes = a.max_probes or (4 if a.quick else 6)
    a.probe_timeout = a.probe_timeout or (60 if a.quick else 120)
    b = Bench(a)
    b.start()
    t0 = time.monotonic()
    for part in a.models:
        if part == "kernels":
            b.kernels()
        elif part in BENCH_MODELS:
            b.model(part)
        else:
            b.convergence(part)
    print("done in %.0f s: %s.md" % (time.monotonic() - t0, os.path.relpath(b.path)), flush=True)


if __name__ == "__main__":
    main()
