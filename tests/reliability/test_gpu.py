"""test_gpu.py: GPU reliability (marker gpu: skipped without a CUDA device). _GACTSHIM_FAULT=launch
keeps every tensor exact (losses equal GACTSHIM_POLICY=off's, failed.launch counted, one warning); a
forward+backward captured in a CUDA graph neither errors nor synchronizes and its gradients match the
exact ones (tensors on a capturing stream are kept: skipped.capture); PyTorch's own OOM error reaches
the program unchanged and the trace records it."""
import os
import re

import pytest

from rutil import REPORT, TMP, check, load_stats, need_torch, result, run, stats_path, warnings

HERE = os.path.dirname(os.path.abspath(__file__))
GPU_JOB = os.path.join(HERE, "gpu_job.py")

need_torch()
pytestmark = pytest.mark.gpu


def job(case, name, **kw):
    path = stats_path(name)
    p = run([GPU_JOB, case], GACTSHIM_STATS=path, GACTSHIM_QUIET=1, **kw)
    check(p.returncode == 0, "%s: exits 0" % name, p.stdout + p.stderr)
    return result(p), (load_stats(path) if os.path.exists(path) else None), warnings(p.stderr)


def test_launch_fault():
    exact, _, _ = job("train", "gpu-exact", GACTSHIM_POLICY="off")
    res, st, warn = job("train", "gpu-launch", _GACTSHIM_FAULT="launch")
    check(res["losses"] == exact["losses"], "launch fails every time: losses equal the uncompressed run's")
    check(st["failed"]["launch"] > 0 and st["compressed"] == 0 and len(warn) == 1,
          "launch: counted (%d), one warning" % st["failed"]["launch"], str(st) + "\n".join(warn))


def test_graph_capture():
    res, st, _ = job("graph", "gpu-graph", GACTSHIM_BITS=8)
    check(res["error"] < 0.05, "graph capture + replay: gradients within 5 %% of exact (%.4f)" % res["error"])
    check(st["skipped"]["capture"] > 0, "tensors saved during capture were kept (%d)" % st["skipped"]["capture"])


def test_oom():
    bare = run([GPU_JOB, "oom"], shim=False)
    trace = os.path.join(TMP, "oom.trace")
    res, _, _ = job("oom", "gpu-oom", GACTSHIM_TRACE=trace)
    check(res == result(bare) and res["type"], "OOM: PyTorch's own error, unchanged (%s)" % res)
    p = run([REPORT, trace], shim=False)
    m = re.search(r"^out-of-memory errors: (\d+)", p.stdout, re.M)
    check(m and int(m.group(1)) >= 1, "OOM: the trace records it", p.stdout + p.stderr)
