"""test_standin.py: driver-level reliability on the stand-in CUDA driver (no GPU needed). "oom": an
allocation the driver refuses reaches the caller with its own CUDA_ERROR_OUT_OF_MEMORY through dlsym
and cuGetProcAddress, and the trace records the OOM events. "capture": the shim's GPU compress asks
cuStreamIsCapturing and launches nothing on a capturing stream (-EBUSY: the engine keeps the tensor).
"exit": a SIGTERM that lands while the destructor is writing the stats and the trace waits for that
flush to finish instead of killing the process in the middle of it.
GS_STANDIN_JOB names the program (standin_job.c); PRELOAD_FIRST: sanitizer runtimes that must
precede the shim."""
import json
import os
import re
import signal
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


def test_sigterm_during_exit_flush():
    """The destructor starts the flush, slowed by the test-only fault so that SIGTERM lands in it;
    the SIGTERM thread must wait for that flush, not end the process halfway through it."""
    stats, trace = os.path.join(TMP, "exit.json"), os.path.join(TMP, "exit.trace")
    p = subprocess.Popen([JOB, "exit"], env=env(GACTSHIM_STATS=stats, GACTSHIM_TRACE=trace,
                                                 _GACTSHIM_FAULT="flush_slow"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = p.stderr.readline()  # printed once the flush is under way
    check("exit flush under way" in marker, "the exit flush started", marker)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    # Either exit is honest: the process was exiting anyway (0), or SIGTERM ended it after the flush.
    check(p.returncode in (0, -signal.SIGTERM), "the job ended by its exit or by SIGTERM (%d)" % p.returncode,
          out + err)
    check(os.path.exists(stats) and json.load(open(stats))["allocs"] == 1,
          "the stats file was written whole", out + err)
    r = subprocess.run([REPORT, trace], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "no END record" not in r.stdout + r.stderr,
          "the trace ends with its END record", r.stdout + r.stderr)
