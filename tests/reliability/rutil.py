"""rutil.py: helpers of the reliability tests — jobs under the shim, their stats, the report tool."""
import json
import os
import subprocess
import sys
import tempfile

PY = "/usr/bin/python3"  # Debian's interpreter, where python3-torch lives
HERE = os.path.dirname(os.path.abspath(__file__))
JOB = os.path.join(HERE, "train_job.py")
SHIM = os.environ.get("GS_SHIM", "")
REPORT = os.environ.get("GS_REPORT", "")
PRELOAD_FIRST = os.environ.get("PRELOAD_FIRST", "").strip()
TMP = tempfile.mkdtemp(prefix="gs-reliab-")
SKIP = 77


def skip(why):
    print("SKIP:", why, flush=True)
    sys.exit(SKIP)


def need_torch():
    p = subprocess.run([PY, "-c", "import torch"], capture_output=True)
    if p.returncode != 0:
        skip("Debian python3-torch is not installed")


def check(cond, msg, detail=""):
    if not cond:
        print("FAIL:", msg, flush=True)
        if detail:
            print(detail, flush=True)
        sys.exit(1)
    print("ok:", msg, flush=True)


def env(shim=True, **kw):
    """The environment of a job: the shim preloaded (or not), one thread, quiet unless a test wants
    the summary line; keyword arguments add variables (values made strings)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("GACTSHIM_", "_GACTSHIM_"))}
    e.update(OMP_NUM_THREADS="1", MALLOC_PERTURB_="0", PYTHONDONTWRITEBYTECODE="1")
    e.pop("LD_PRELOAD", None)
    if shim:  # sanitizer runtimes (PRELOAD_FIRST) must come before an instrumented shim
        e["LD_PRELOAD"] = (PRELOAD_FIRST + " " + SHIM).strip()
    e.update({k: str(v) for k, v in kw.items()})
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
