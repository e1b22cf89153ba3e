"""conftest.py: what the Python tests share under pytest (the markers are declared in pytest.ini).

gpu              a test that needs a CUDA device is skipped, with the reason "no CUDA device", where
                 torch sees none: it never passes without having run.
child_env(**v)   the shim reads GACTSHIM_* once, when a process starts, so a test that needs other
                 values runs in a child pytest process started with them (a value None unsets the
                 variable). The tests of one module with the same variables share one child; each
                 reports the child's outcome for it (passed, skipped with its reason, or failed with
                 its report) and the child's output for it.
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

CHILD = "_GS_PYTEST_CHILD"  # in a child_env child: the file its outcomes go to

_cuda = None


def cuda_available():
    global _cuda
    if _cuda is None:
        try:
            import torch
        except ImportError:
            _cuda = False
        else:
            _cuda = bool(torch.cuda.is_available())
    return _cuda


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None and not cuda_available():
        pytest.skip("no CUDA device")


# ---- child_env: the parent side ----

def _wanted(item):
    mark = item.get_closest_marker("child_env")
    if mark is None:
        return None
    if mark.args:
        raise pytest.UsageError("child_env takes keyword arguments only: %s" % item.nodeid)
    return {k: (None if v is None else str(v)) for k, v in mark.kwargs.items()}


def _differs(want):
    return {k: v for k, v in want.items() if os.environ.get(k) != v}


_children = {}  # (module path, variables) -> {nodeid: outcome}


def _run_child(item, want):
    session, config = item.session, item.config
    batch = [i.nodeid for i in session.items
             if i.path == item.path and _wanted(i) == want
             and (i.get_closest_marker("gpu") is None or cuda_available())]
    fd, out = tempfile.mkstemp(prefix="gs-pytest-child-", suffix=".json")
    os.close(fd)
    env = dict(os.environ)
    for k, v in want.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    env[CHILD] = out
    cmd = [sys.executable, "-m", "pytest", "-c", str(config.inipath), "--rootdir", str(config.rootpath),
           "-q", "-p", "no:cacheprovider"] + batch
    shown = " ".join("%s=%s" % (k, v) for k, v in want.items() if v is not None)
    print("child_env: running %d test(s) in a child with %s" % (len(batch), shown), flush=True)
    p = subprocess.run(cmd, env=env, cwd=str(config.rootpath), capture_output=True, text=True)
    try:
        with open(out) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = {}
    os.unlink(out)
    res["_child"] = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
    return res


def pytest_pyfunc_call(pyfuncitem):
    want = _wanted(pyfuncitem)
    if want is None:
        return None
    differs = _differs(want)
    if os.environ.get(CHILD):
        if differs:
            pytest.fail("child_env: this child lacks %s" % differs, pytrace=False)
        return None  # the child: run the test here
    if not differs:
        return None  # already the environment it asks for
    key = (str(pyfuncitem.path), tuple(sorted((k, str(v)) for k, v in want.items())))
    if key not in _children:
        _children[key] = _run_child(pyfuncitem, want)
    res = _children[key]
    r = res.get(pyfuncitem.nodeid)
    if r is None:
        c = res["_child"]
        pytest.fail("child_env: the child (exit %d) reported nothing for this test\n%s\n%s"
                    % (c["rc"], c["stdout"][-6000:], c["stderr"][-6000:]), pytrace=False)
    sys.stdout.write(r["output"])
    if r["outcome"] == "skipped":
        pytest.skip(r["text"])
    if r["outcome"] == "failed":
        pytest.fail("in the child_env child:\n" + r["text"], pytrace=False)
    return True


# ---- child_env: the child side ----

class _ChildRecorder:
    def __init__(self, path):
        self.path, self.res = path, {}

    def pytest_runtest_logreport(self, report):
        r = self.res.setdefault(report.nodeid, {"outcome": "passed", "text": "", "output": ""})
        # Each report holds the output of its phase and the phases before it: the last one has all.
        r["output"] = "".join(content for name, content in report.sections if name.startswith("Captured"))
        if report.failed:
            r["outcome"] = "failed"
            r["text"] += "%s (%s)\n" % (report.longreprtext, report.when)
        elif report.skipped and r["outcome"] != "failed":
            r["outcome"] = "skipped"
            r["text"] = skip_reason(report)

    def pytest_sessionfinish(self, session):
        with open(self.path, "w") as f:
            json.dump(self.res, f)


def skip_reason(report):
    lr = report.longrepr
    why = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return why[len("Skipped: "):] if why.startswith("Skipped: ") else why


def pytest_configure(config):
    path = os.environ.get(CHILD)
    if path and not config.pluginmanager.has_plugin("gs-child-recorder"):
        config.pluginmanager.register(_ChildRecorder(path), "gs-child-recorder")
