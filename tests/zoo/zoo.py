# zoo.py: the model zoo's harness: a child runs one case's training steps and prints what it saw;
# the parent runs it exact (GACTSHIM_POLICY=off), at 8 bits and at the default, and compares.
import json
import os
import re
import statistics
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
import gsutil  # noqa: E402  (the engine tests' helpers: children under the shim, gradient error)

CHILD = os.path.abspath(__file__)  # the child is this file run as a script
# The three runs of a case: exact (hooks on, everything kept), 8 bits, the default setting.
SETTINGS = {"exact": {"GACTSHIM_POLICY": "off"}, "bits8": {"GACTSHIM_BITS": "8"}, "default": {}}
# Nothing is downloaded: the models are built from configs with random weights.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "GACTSHIM_QUIET": "1", "OMP_NUM_THREADS": "1"}


# ---- the child side ----

class Probe:
    """Saved-tensor hooks pushed over the shim's that call the shim's own pack and unpack, and
    record every tensor the shim compressed that is a model weight: a parameter (frozen or not),
    a view of one, or a cast of one (autocast's bf16 copy), found by storage or by value."""

    def __init__(self, shim):
        self.shim, self.weights, self.bad, self.compressed, self.kept_weights = shim, [], [], 0, 0

    def watch(self, model):
        self.weights = [(n, p.detach()) for n, p in model.named_parameters()]
        self.ptrs = {p.untyped_storage().data_ptr() for _, p in self.weights}

    def weight_of(self, t):
        import torch
        if not self.weights or t.layout != torch.strided or t.device.type == "meta":
            return None
        if isinstance(t, torch.nn.Parameter) or t.untyped_storage().data_ptr() in self.ptrs:
            for n, p in self.weights:
                if p.untyped_storage().data_ptr() == t.untyped_storage().data_ptr():
                    return n
        for n, p in self.weights:
            if p.numel() != t.numel() or p.numel() < 64:
                continue
            cand = [t] + ([t.t()] if t.dim() == 2 and t.shape != p.shape else [])
            for c in cand:
                if c.shape == p.shape and torch.equal(c.detach(), p.to(c.dtype)):
                    return n + " (cast to %s)" % str(t.dtype).replace("torch.", "")
        return None

    def pack(self, t):
        before = self.shim.stats()["compressed"]
        h = self.shim.pack(t)
        packed = self.shim.stats()["compressed"] > before
        name = self.weight_of(t)
        if packed:
            self.compressed += 1
            if name:
                self.bad.append("%s %s %s" % (name, tuple(t.shape), getattr(t.grad_fn, "name", lambda: None)()))
        elif name:
            self.kept_weights += 1
        return h

    def hooks(self):
        import torch
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.shim.unpack)


class Run:
    """What a case's training loop reports to: grads after step 0's backward, each step's loss."""

    def __init__(self, steps, probe):
        self.steps, self.probe, self.losses, self.times, self.grads = steps, probe, [], [], None
        self.t0 = time.perf_counter()

    def watch(self, model):
        if self.probe:
            self.probe.watch(model)

    def backward_done(self, model):
        """Called after each backward, before the optimizer step: the first one's gradients."""
        if self.grads is None:
            self.grads = {n: p.grad.detach().float().clone() for n, p in model.named_parameters()
                          if p.grad is not None}

    def step_done(self, loss):
        now = time.perf_counter()
        self.losses.append(float(loss))
        self.times.append(now - self.t0)
        self.t0 = now


def child(case_name, grads_path):
    import torch
    import zoo_cases
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    shim = sys.modules.get("_gactshim")
    probe = Probe(shim) if shim is not None and os.environ.get("GS_ZOO_PROBE") == "1" else None
    run = Run(int(os.environ.get("GS_ZOO_STEPS", "6")), probe)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx = probe.hooks() if probe else None
        if ctx:
            ctx.__enter__()
        extra = zoo_cases.CASES[case_name](run) or {}
        if ctx:
            ctx.__exit__(None, None, None)
    seen = sorted({"%s: %s" % (w.category.__name__, str(w.message).splitlines()[0][:300]) for w in caught})
    if run.grads is not None:
        torch.save(run.grads, grads_path)
    out = {"losses": run.losses, "step_s": run.times, "warnings": seen, "extra": extra}
    if probe:
        out["probe"] = {"compressed": probe.compressed, "kept_weights": probe.kept_weights,
                        "bad": probe.bad[:20]}
    print(json.dumps(out), flush=True)


# ---- the parent side ----

def run_setting(case, setting, steps, extra_env=None):
    """One child run of a case; its result dict with the stats and the gradients added."""
    import torch
    fd, gpath = tempfile.mkstemp(prefix="gs-zoo-grads-", suffix=".pt")
    os.close(fd)
    env = dict(OFFLINE, GS_ZOO_STEPS=str(steps), **SETTINGS[setting])
    env.update(extra_env or {})
    if setting == "bits8":
        env["GS_ZOO_PROBE"] = "1"
    p, stats = gsutil.run_child_full([CHILD, case, gpath], env)
    res = gsutil.last_json(p.stdout)
    res["stats"], res["stderr"] = stats, p.stderr
    res["grads"] = torch.load(gpath) if os.path.getsize(gpath) else None
    os.unlink(gpath)
    return res


def median_step(res):
    t = res["step_s"][1:] or res["step_s"]  # step 0 includes one-time work (compiles, caches)
    return statistics.median(t)


def measure(case, steps=6, extra_env=None):
    """The three runs of a case and the figures the zoo checks and the bench prints."""
    runs = {s: run_setting(case, s, steps, extra_env) for s in SETTINGS}
    ex, b8, de = runs["exact"], runs["bits8"], runs["default"]
    names = sorted(ex["grads"]) if ex["grads"] else []
    fig = {"runs": runs}
    if names:
        fig["grad_err"] = gsutil.rel_error([b8["grads"][n] for n in names], [ex["grads"][n] for n in names])
        fig["grad_names"] = (names == sorted(b8["grads"]))
    fig["loss_exact"], fig["loss_default"] = ex["losses"][-1], de["losses"][-1]
    fig["loss_rel"] = (de["losses"][-1] - ex["losses"][-1]) / abs(ex["losses"][-1])
    fig["bytes_exact"] = ex["stats"]["live_bytes_peak_host"]
    fig["bytes_default"] = de["stats"]["live_bytes_peak_host"]
    fig["ratio"] = fig["bytes_exact"] / max(fig["bytes_default"], 1)
    fig["time_ratio"] = median_step(de) / median_step(ex)
    return fig


def check_case(case, min_ratio, expected_warnings=(), steps=6, extra_env=None):
    """The zoo's assertions for one case; returns the figures."""
    fig = measure(case, steps, extra_env)
    runs = fig["runs"]
    print("%s: saved bytes exact %d, default %d: %.2fx smaller; 8-bit gradient error %.5f; "
          "default loss %.5f vs exact %.5f (%+.3f %%); step time x%.2f"
          % (case, fig["bytes_exact"], fig["bytes_default"], fig["ratio"], fig.get("grad_err", -1),
             fig["loss_default"], fig["loss_exact"], 100 * fig["loss_rel"], fig["time_ratio"]), flush=True)
    if "grad_err" in fig:
        gsutil.check(fig["grad_names"], "%s: the same parameters got gradients at 8 bits and exact" % case)
        gsutil.check(fig["grad_err"] < 0.01, "%s: 8-bit gradients within 1 %% of exact per parameter "
                     "(worst %.5f)" % (case, fig["grad_err"]))
    gsutil.check(abs(fig["loss_rel"]) < 0.02, "%s: default loss after %d steps within 2 %% of exact (%+.3f %%)"
                 % (case, steps, 100 * fig["loss_rel"]))
    gsutil.check(fig["ratio"] >= min_ratio, "%s: peak saved-activation bytes %.2fx smaller at the default "
                 "(>= %.1fx)" % (case, fig["ratio"], min_ratio))
    st = runs["default"]["stats"]
    gsutil.check(st["compressed"] > 0 and not any(st["failed"].values()),
                 "%s: %d tensors compressed, nothing failed %s" % (case, st["compressed"], st["failed"]))
    pr = runs["bits8"]["probe"]
    gsutil.check(pr["compressed"] > 0, "%s: the probe saw %d compressed tensors" % (case, pr["compressed"]))
    gsutil.check(not pr["bad"], "%s: no parameter, frozen weight or weight cast compressed (%d kept exact) %s"
                 % (case, pr["kept_weights"], pr["bad"]))
    check_quiet(case, runs, expected_warnings)
    return fig


def check_quiet(case, runs, expected):
    """No warning but the expected ones (library warnings that come without the shim too), and
    nothing from the shim on stderr."""
    for name, r in runs.items():
        extra = [w for w in r["warnings"] if not any(re.search(e, w) for e in expected)]
        gsutil.check(not extra, "%s (%s): no unexpected warning %s" % (case, name, extra))
        said = [line for line in r["stderr"].splitlines() if "gactshim" in line.lower()]
        gsutil.check(not said, "%s (%s): the shim said nothing on stderr %s" % (case, name, said[:5]))


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2])
