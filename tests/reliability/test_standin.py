"""test_standin.py: driver-level reliability on the stand-in CUDA driver (no GPU needed). "oom": an
allocation the driver refuses reaches the caller with its own CUDA_ERROR_OUT_OF_MEMORY through dlsym
and cuGetProcAddress, and the trace records the OOM events. "capture": the shim's GPU compress asks
cuStreamIsCapturing and launches nothing on a capturing stream (-EBUSY: the engine keeps the tensor).
GS_STANDIN_JOB names the program (standin_job.c); PRELOAD_FIRST: sanitizer runtimes that must
precede the shim."""
import os
import re
import subprocess

from rutil import REPORT, TMP, check, env

JOB = os.environ["GS_STANDIN_JOB"]


def run_job(case, **kw):
    # the stand-in answers a huge request by failing malloc: under a sanitizer that must return NULL
    san = {k: os.environ.get(k, "") + ":allocator_may_return_null=1" for k in ("ASAN_OPTIONS", "TSAN_OPTIONS")}
    p = subprocess.run([JOB, case], env=env(GACTSHIM_QUIET=1, **san, **kw), capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0, "%s: %s" % (case, p.stdout.strip()), p.stdout + p.stderr)
    return p


def test_oom():
    trace = os.path.join(TMP, "oom.trace")
    run_job("oom", GACTSHIM_TRACE=trace)
    p = subprocess.run([REPORT, trace], capture_output=True, text=True, timeout=60)
    m = re.search(r"^out-of-memory errors: (\d+)", p.stdout, re.M)
    check(p.returncode == 0 and m and int(m.group(1)) == 2, "the trace records both OOM events", p.stdout + p.stderr)


def test_capture():
    run_job("capture")
