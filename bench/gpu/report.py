"""Renders a results dict (the JSON run.py writes) as Markdown: targets with measured values
and PASS/MISS first, then per-model tables, convergence, and the codec bandwidth output.
Numbers come only from the results; anything not measured reads "—" or says why.
"""
import re

KERNEL_ROW = re.compile(r"^(\w+)\s+bits=(\d)\s+compress\s+([\d.]+) GB/s \(\s*(\d+)% of copy\)"
                        r"\s+decompress\s+([\d.]+) GB/s \(\s*(\d+)%\)")
TARGETS = {  # the targets
    "peak": ("resnet50", 4.0), "maxbatch": {"resnet50": 6.0, "gpt2": 10.0},
    "throughput": 0.90, "kernels": 80, "loss": 0.01,
}
DASH = "—"


def gib(b):
    if b is None:
        return DASH
    return "%.2f GiB" % (b / 2**30) if b >= 2**30 else "%.1f MiB" % (b / 2**20)


def num(x, fmt="%.1f"):
    return DASH if x is None else fmt % x


def why(r):
    """Short reason a run has no numbers."""
    if not r:
        return "not run"
    if r.get("skipped"):
        return r["skipped"]
    if r.get("oom"):
        return "OOM"
    if r.get("timeout"):
        return "timeout"
    return "error: " + (r.get("error") or "?")[:120].replace("|", "/")


def shim_configs(res):
    """The gactshim configs that ran (unsupported ones are listed under Configs instead)."""
    return [c for c, v in res.get("configs", {}).items() if "LD_PRELOAD" in v.get("env", {}) and not v.get("status")]


def fixed(res, m, c, key):
    r = res["models"].get(m, {}).get("runs", {}).get(c, {}).get("fixed") or {}
    return r.get(key) if r.get("ok") else None


def mem_key(res):
    return "peak_alloc" if res["meta"]["device"] == "cuda" else "peak_rss"


def status(ok, dry):
    if ok is None:
        return "not measured"
    if dry:
        return "n/a (dry run)"
    return "PASS" if ok else "MISS"


def target_rows(res):
    dry = res["meta"]["device"] != "cuda" or res["meta"]["quick"]
    mk = mem_key(res)
    rows = []
    m, want = TARGETS["peak"]
    if m in res["models"]:
        b0 = fixed(res, m, "baseline", mk)
        for c in shim_configs(res):
            v = fixed(res, m, c, mk)
            ratio = b0 / v if b0 and v else None
            rows.append(("peak memory ≥ %.0f× lower at batch %s" % (want, res["models"][m]["fixed_batch"]), m, c,
                         DASH if ratio is None else "%.2f× (%s → %s)" % (ratio, gib(b0), gib(v)),
                         status(None if ratio is None else ratio >= want, dry)))
    for m, want in TARGETS["maxbatch"].items():
        if m not in res["models"]:
            continue
        base = res["models"][m]["runs"].get("baseline", {}).get("max_batch") or {}
        for c in shim_configs(res):
            mb = res["models"][m]["runs"].get(c, {}).get("max_batch") or {}
            text, ok = DASH, None
            if base.get("value") and mb.get("value"):
                ratio = mb["value"] / base["value"]
                text = "%s%.2f× (%d → %d)" % ("≥" if mb.get("capped") else "", ratio, base["value"], mb["value"])
                ok = ratio >= want
                if mb.get("capped") and not ok or base.get("capped") and ok:
                    text += ", inconclusive: search hit the cap"
                    ok = None if not dry else ok
            rows.append(("max batch ≥ %.0f×" % want, m, c, text, status(ok, dry)))
    for m in res["models"]:
        t0 = fixed(res, m, "baseline", "samples_per_s")
        for c in shim_configs(res):
            t = fixed(res, m, c, "samples_per_s")
            ratio = t / t0 if t and t0 else None
            rows.append(("throughput ≥ %.2f× baseline at batch %s" % (TARGETS["throughput"], res["models"][m]["fixed_batch"]),
                         m, c, DASH if ratio is None else "%.2f× (%.1f vs %.1f /s)" % (ratio, t, t0),
                         status(None if ratio is None else ratio >= TARGETS["throughput"], dry)))
    rows += kernel_target(res)
    for task, e in res.get("convergence", {}).items():
        r0 = e["runs"].get("baseline", {})
        for c, r in e["runs"].items():
            if c not in shim_configs(res):
                continue
            rel = (r["eval_loss"] - r0["eval_loss"]) / r0["eval_loss"] if r.get("ok") and r0.get("ok") else None
            rows.append(("final loss within %.0f%% of baseline" % (100 * TARGETS["loss"]), task, c,
                         DASH if rel is None else "%+.2f%% (%.4f vs %.4f)" % (100 * rel, r["eval_loss"], r0["eval_loss"]),
                         status(None if rel is None else rel <= TARGETS["loss"], res["meta"]["quick"])))
    return rows


def kernel_rows(res):
    k = res.get("kernels") or {}
    rows = []
    for run in k.get("runs", []):
        rows += [m.groups() for m in map(KERNEL_ROW.match, run["output"].splitlines()) if m]
    return rows


def kernel_target(res):
    k = res.get("kernels")
    if k is None:
        return []
    rows = kernel_rows(res)
    if not rows:
        return [("kernels ≥ %d%% of copy bandwidth" % TARGETS["kernels"], "codec-bench", "all",
                 "no GPU rows (%s)" % kernel_note(k), "not measured")]
    worst = min(rows, key=lambda r: min(int(r[3]), int(r[5])))
    passing = sum(min(int(r[3]), int(r[5])) >= TARGETS["kernels"] for r in rows)
    return [("kernels ≥ %d%% of copy bandwidth" % TARGETS["kernels"], "codec-bench", "all dtypes/widths",
             "worst %s bits=%s: compress %s%%, decompress %s%%; %d/%d rows ≥ %d%%"
             % (worst[0], worst[1], worst[3], worst[5], passing, len(rows), TARGETS["kernels"]),
             "PASS" if passing == len(rows) else "MISS")]


def kernel_note(k):
    if k.get("missing"):
        return k["missing"]
    out = " ".join(r["output"] for r in k.get("runs", []))
    m = re.search(r"SKIP: .*", out)
    return m.group(0)[:160] if m else "no parsable output"


def model_section(res, m, e):
    mk = mem_key(res)
    unit = e.get("unit", "samples")
    out = ["## %s" % m, "",
           "Implementation: %s. Fixed batch %s %s; max-batch search cap %s." % (e.get("impl", DASH), e["fixed_batch"], unit, e["cap"]),
           "",
           "| config | peak allocated | peak reserved | peak RSS (host) | peak vs baseline | %s/s @ %s | vs baseline "
           "| max batch | vs baseline | %s/s @ max | saved tensors compressed | GPU time in our kernels |" % (unit, e["fixed_batch"], unit),
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    b_mem, b_tp = fixed(res, m, "baseline", mk), fixed(res, m, "baseline", "samples_per_s")
    b_mb = (e["runs"].get("baseline", {}).get("max_batch") or {}).get("value")
    notes = []
    for c, r in e["runs"].items():
        if r.get("status"):
            out.append("| %s | %s |%s" % (c, r["status"], " |" * 10))
            continue
        f = r.get("fixed") or {}
        mb = r.get("max_batch") or {}
        am = r.get("at_max") or {}
        mem = f.get(mk) if f.get("ok") else None
        tp = f.get("samples_per_s") if f.get("ok") else None
        shim = f.get("shim")
        comp = DASH
        if shim:
            ob, cb = shim.get("bytes_original", 0), shim.get("bytes_compressed", 0)
            comp = "%d of %d, %s → %s%s" % (shim.get("compressed", 0), shim.get("packed", 0), gib(ob), gib(cb),
                                            " (%.1f×)" % (ob / cb) if cb else "")
        mbv = mb.get("value")
        mbtxt = DASH if not mb else (("≥%d (cap)" % mbv) if mb.get("capped") else (str(mbv) if mbv else "none fits"))
        at_max = "%.1f @ %d" % (am["samples_per_s"], am["batch"]) if am.get("ok") else (why(am) if am else DASH)
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c, gib(f.get("peak_alloc")) if f.get("ok") else why(f), gib(f.get("peak_reserved")), gib(f.get("peak_rss")),
            "%.2f×" % (b_mem / mem) if b_mem and mem else DASH, num(tp), "%.2f×" % (tp / b_tp) if tp and b_tp else DASH,
            mbtxt, "%s%.2f×" % ("≥" if mb.get("capped") else "", mbv / b_mb) if mbv and b_mb else DASH, at_max, comp,
            "n/a" if shim else DASH))
        if mb.get("probes"):
            notes.append("- %s: probes %s; stopped by %s" % (c, ", ".join(
                "%d %s (%.0f s)" % (p["batch"], "ok" if p["ok"] else ("OOM" if p["oom"] else (p["error"] or "fail")[:60]), p["wall_s"] or 0)
                for p in mb["probes"]), mb["stopped_by"]))
    if notes:
        out += ["", "Max-batch probes (fresh process each; the fixed-batch run counts as the first):"] + notes
    return out + [""]


def render(res):
    meta = res["meta"]
    info = meta.get("info", {})
    cpu = meta["device"] != "cuda"
    out = ["# gactshim benchmark — %s" % meta["device_name"], ""]
    if cpu:
        out += ["> **CPU DRY RUN** (%s shapes): exercises the harness only. No figure here is a GPU result; "
                "memory is host RSS, and the max batch is found against an emulated limit "
                "(baseline's fixed-batch RSS + headroom)." % meta["size"], ""]
    out += ["- command: `%s`" % meta.get("command"),
            "- started %s, updated %s; git %s" % (meta.get("started"), meta.get("updated"), meta.get("git")),
            "- python %s, torch %s, CUDA %s; packages: %s" % (info.get("python"), info.get("torch"), info.get("cuda"),
                                                            ", ".join("%s %s" % (k, v or "missing") for k, v in info.get("packages", {}).items())),
            "- shim: `%s`; budget config GACTSHIM_BUDGET=%s" % (meta.get("lib"), meta.get("budget")),
            "- GPU time in our kernels: n/a — the shim's stats JSON (GACTSHIM_STATS) reports counts and bytes, "
            "no kernel time, and this build writes no trace; run under nsys/ncu to get it.",
            "- throughput: median of the timed steps after warm-up; peak memory: over those steps "
            "(torch.cuda.max_memory_allocated/reserved after a reset that follows warm-up).",
            "", "## Targets", "", "| target | model | config | measured | status |", "|---|---|---|---|---|"]
    out += ["| %s | %s | %s | %s | %s |" % r for r in target_rows(res)]
    out += ["", "## Configs", "", "| config | environment | status |", "|---|---|---|"]
    for c, v in res.get("configs", {}).items():
        env = " ".join("%s=%s" % kv for kv in sorted(v["env"].items()) if kv[0] != "LD_PRELOAD")
        out.append("| %s | %s | %s |" % (c, ("LD_PRELOAD " + env) if "LD_PRELOAD" in v["env"] else "no shim", v["status"] or "ok"))
    out.append("")
    for m, e in res.get("models", {}).items():
        out += model_section(res, m, e)
    if res.get("convergence"):
        out += ["## Convergence (real data, same seeds and steps)", "",
                "| task | steps | config | held-out loss | vs baseline | accuracy | train loss (last 10 %) | data/model |",
                "|---|---|---|---|---|---|---|---|"]
        for task, e in res["convergence"].items():
            l0 = (e["runs"].get("baseline") or {}).get("eval_loss")
            for c, r in e["runs"].items():
                if not r.get("ok"):
                    out.append("| %s | %d | %s | %s | | | | |" % (task, e["steps"], c, why(r)))
                    continue
                out.append("| %s | %d | %s | %.4f | %s | %s | %.4f | %s |" % (
                    task, e["steps"], c, r["eval_loss"], "%+.2f%%" % (100 * (r["eval_loss"] - l0) / l0) if l0 else DASH,
                    num(r.get("eval_accuracy"), "%.3f"), r["train_loss_tail"], r["impl"]))
        out.append("")
    k = res.get("kernels")
    if k:
        out += ["## Codec kernels (`%s`)" % k["cmd"], ""]
        if k.get("missing"):
            out.append(k["missing"])
        for run in k.get("runs", []):
            out += ["`%s` (exit %s, %.1f s):" % (" ".join(["codec-bench"] + run["argv"]), run["rc"], run["wall_s"]), "",
                    "```", run["output"].rstrip(), "```", ""]
    return "\n".join(out) + "\n"
