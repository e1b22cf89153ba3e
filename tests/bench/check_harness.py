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
