"""rutil.py: helpers of the reliability tests — jobs under the shim, their stats, the report tool.
The tests run under pytest (tests/pytest_run.py, from meson); GS_SHIM and GS_REPORT name the shim
and gactshim-report, PRELOAD_FIRST the sanitizer runtimes that must precede an instrumented shim."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

PY = sys.executable  # the interpreter meson runs the tests with (the venv's PyTorch)
HERE = os.path.dirname(os.path.abspath(__file__))
JOB = os.path.join(HERE, "train_job.py")
SHIM = os.environ.get("GS_SHIM", "")
REPORT = os.environ.get("GS_REPORT", "")
PRELOAD_FIRST = os.environ.get("PRELOAD_FIRST", "").strip()
TMP = tempfile.mkdtemp(prefix="gs-reliab-")


def skip(why):
    """Skips the test, or the whole module when called at its top level."""
    pytest.skip(why, allow_module_level=True)


def need_torch():
    p = subprocess.run([PY, "-c", "import torch"], capture_output=True)
    if p.returncode != 0:
        skip("Debian python3-torch is not installed")


def check(cond, msg, detail=""):
    """An assertion that says what it checked when it holds; on failure, detail follows the message."""
    if not cond:
        raise AssertionError(msg + ("\n" + str(detail) if detail else ""))
    print("ok:", msg, flush=True)


def env_changes(shim=True, **kw):
    """What a job's environment changes from ours (None: unset): no GACTSHIM_* of ours, the shim
    preloaded (or not), one thread, quiet unless a test wants the summary line; keyword arguments add
    variables (values made strings)."""
    ch = {k: None for k in os.environ if k.startswith(("GACTSHIM_", "_GACTSHIM_"))}
    ch.update(OMP_NUM_THREADS="1", MALLOC_PERTURB_="0", PYTHONDONTWRITEBYTECODE="1", LD_PRELOAD=None)
    if shim:  # sanitizer runtimes (PRELOAD_FIRST) must come before an instrumented shim
        ch["LD_PRELOAD"] = (PRELOAD_FIRST + " " + SHIM).strip()
    ch.update({k: str(v) for k, v in kw.items()})
    return ch


def env(shim=True, **kw):
    """The environment of a job (env_changes applied to ours)."""
    e = dict(os.environ)
    for k, v in env_changes(shim, **kw).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def run(args, timeout=300, **kw):
    """Runs args (a list; a leading .py file runs under Debian's python3) and returns the process."""
    if args[0].endswith(".py"):
        args = [PY] + list(args)
    return subprocess.run(args, env=env(**kw), capture_output=True, text=True, timeout=timeout)


def result(p):
    """The JSON line a train_job.py printed last."""
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    check(False, "the job printed its result", p.stdout + p.stderr)


def stats_path(name):
    return os.path.join(TMP, name + ".json")


def load_stats(path):
    with open(path) as f:
        return json.load(f)


def warnings(stderr):
    return [line for line in stderr.splitlines() if line.startswith("gactshim:")]
