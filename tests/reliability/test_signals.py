"""test_signals.py: a job stopped by SIGTERM or SIGINT mid-training still leaves its stats and a
complete trace (END record), with the exit status it has without the shim. SIGTERM: the shim's
handler (installed at first use, only where SIGTERM had its default action) flushes, then dies of
SIGTERM. SIGINT: Python's KeyboardInterrupt, a normal exit. A program's own SIGTERM handler wins,
and Python still sees SIGTERM's default handler (the shim arms after Python's start-up)."""
import os
import signal
import subprocess
import time

import pytest

from rutil import JOB, PY, REPORT, TMP, check, env, load_stats, need_torch, result

need_torch()


def stopped_run(tag, sig, shim=True, extra=()):
    ready = os.path.join(TMP, tag + ".ready")
    stats, trace = os.path.join(TMP, tag + ".json"), os.path.join(TMP, tag + ".trace")
    p = subprocess.Popen([PY, JOB, "2000", "--pause", "0.01", "--ready", ready] + list(extra),
                         env=env(shim=shim, GACTSHIM_QUIET=1, GACTSHIM_STATS=stats, GACTSHIM_TRACE=trace),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.path.exists(ready) and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few more steps: saved tensors live, events queued
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    steps = out.count("step ")
    check(0 < steps < 2000, "%s: stopped mid-training after %d steps" % (tag, steps), err)
    return p.returncode, stats, trace, err


def check_outputs(tag, stats, trace):
    st = load_stats(stats)
    check(st["packed"] > 0 and st["compressed"] > 0, "%s: stats written (%d packed)" % (tag, st["packed"]))
    p = subprocess.run([REPORT, trace], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "peak:" in p.stdout and "warning" not in p.stdout,
          "%s: the trace loads, complete (END record, no warning)" % tag, p.stdout + p.stderr)


@pytest.mark.parametrize("sig, name", [(signal.SIGTERM, "sigterm"), (signal.SIGINT, "sigint")],
                         ids=["sigterm", "sigint"])
def test_stopped_job_leaves_stats_and_trace(sig, name):
    bare_rc = stopped_run(name + "-bare", sig, shim=False)[0]
    rc, stats, trace, err = stopped_run(name, sig)
    check(rc == bare_rc, "%s: exit status %d, as without the shim" % (name, rc), err[-2000:])
    check_outputs(name, stats, trace)


def test_own_sigterm_handler_wins():
    rc, stats, trace, err = stopped_run("own-handler", signal.SIGTERM, extra=["--own-sigterm"])
    check(rc == 7, "a program's own SIGTERM handler runs instead of the shim's (exit 7)", err[-2000:])
    check_outputs("own-handler", stats, trace)


def test_python_sees_default_sigterm_handler():
    p = subprocess.run([PY, JOB, "2"], env=env(GACTSHIM_QUIET=1), capture_output=True, text=True, timeout=120)
    check(result(p)["sigterm"] == str(signal.SIG_DFL), "Python still sees SIGTERM's default handler (%s)"
          % result(p)["sigterm"])
