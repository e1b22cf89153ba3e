"""Runs bench/gpu/run.py --device cpu --quick on one tiny model in a temporary directory
and checks that the results .md and .json were written with the expected tables.
GS_SHIM names the shim (meson sets it)."""
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_harness_dry_run():
    lib = os.environ["GS_SHIM"]
    with tempfile.TemporaryDirectory(prefix="bench-test-") as out:
        cmd = [sys.executable, os.path.join(ROOT, "bench/gpu/run.py"), "--device", "cpu", "--quick",
               "--models", "gcn", "--configs", "baseline,gactshim4", "--lib", lib, "--out-dir", out,
               "--time-budget", "90"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
        print(r.stdout + r.stderr)
        assert r.returncode == 0, "run.py exited %d" % r.returncode
        js, mds = glob.glob(os.path.join(out, "*-cpu-dryrun-*.json")), glob.glob(os.path.join(out, "*-cpu-dryrun-*.md"))
        assert len(js) == 1 and len(mds) == 1, "expected one .json and one .md, got %s" % os.listdir(out)
        res = json.load(open(js[0]))
        runs = res["models"]["gcn"]["runs"]
        for c in ("baseline", "gactshim4"):
            assert runs[c]["fixed"]["ok"], (c, runs[c]["fixed"])
            assert runs[c]["fixed"]["samples_per_s"] > 0, c
            assert runs[c]["max_batch"]["value"] >= res["models"]["gcn"]["fixed_batch"], (c, runs[c]["max_batch"])
        shim = runs["gactshim4"]["fixed"]["shim"]
        assert shim["compressed"] > 0 and shim["bytes_compressed"] < shim["bytes_original"], shim
        md = open(mds[0]).read()
        for needle in ("CPU DRY RUN", "## Targets", "| target | model | config | measured | status |",
                       "throughput ≥ 0.90× baseline", "## gcn", "| config | peak allocated |",
                       "| baseline |", "| gactshim4 |", "Max-batch probes"):
            assert needle in md, "missing %r in %s" % (needle, mds[0])


def test_gpu_check_dry_run():
    """bench/gpu/check.sh --device cpu: every part runs or skips with its reason, in order, and the
    results (check.md/.json, the harness's .md/.json, check.log) land in the folder it is given."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-test-") as out:
        env = dict(os.environ, PYTHON=sys.executable)
        r = subprocess.run([os.path.join(ROOT, "bench/gpu/check.sh"), out, "--device", "cpu"], env=env,
                           capture_output=True, text=True, timeout=1850)
        print(r.stdout + r.stderr)
        assert r.returncode == 0, "check.sh exited %d" % r.returncode
        res = json.load(open(os.path.join(out, "check.json")))
        parts = res["parts"]
        assert sorted(parts) == sorted(["info", "codec", "bandwidth", "first-contact", "resnet50",
                                        "resnet50-bf16", "gpt2", "convergence"]), list(parts)
        want = {"info": "ok", "codec": "skip", "bandwidth": "skip", "first-contact": "skip", "resnet50": "ok",
                "resnet50-bf16": "skip", "gpt2": "ok", "convergence": "ok"}
        assert {k: v["status"] for k, v in parts.items()} == want, {k: (v["status"], v.get("reason")) for k, v in parts.items()}
        for k in ("codec", "bandwidth"):  # skipped, but only after finding the carried binary
            assert "is built" in parts[k]["reason"], parts[k]
        assert "no CUDA device" in parts["first-contact"]["figures"]["cold_thread"]["reason"], parts["first-contact"]
        for m in ("resnet50", "gpt2"):
            fig = parts[m]["figures"]
            for c in ("baseline", "default"):
                assert fig[c]["ok"] and fig[c]["samples_per_s"] > 0, (m, c, fig[c])
                assert fig[c]["max_batch"] or m != "resnet50", (m, c, fig[c])  # the dry run's one search
            assert fig["default"]["shim"]["compressed"] > 0, (m, fig["default"]["shim"])
        conv = parts["convergence"]["figures"]["runs"]
        assert conv["baseline"]["ok"] and conv["default"]["ok"], conv
        rows = {t["target"]: t for t in res["targets"]}
        assert rows["loss within 1 % (char transformer)"]["measured"] is not None, rows
        md = open(os.path.join(out, "check.md")).read()
        for needle in ("CPU DRY RUN", "## Parts", "| codec | skip |", "## Targets (H100/H200)", "## resnet50"):
            assert needle in md, "missing %r in check.md" % needle
        files = sorted(os.listdir(out))
        assert len(files) == 5 and "check.log" in files, files  # the device tool brings back 8 files at most
