# test_bootstrap.py: the shim leaves alone what it must: a Python process that never imports torch
# (sys.path, sys.modules, PYTHONPATH as without the shim; Debian's sitecustomize still runs), a
# non-Python process, and GACTSHIM_DISABLE=1; and it installs the hooks when torch is imported.
import json
import os
import subprocess
import sys

import pytest

import gsutil

PROBE = r"""
import json, os, sys
site = sys.modules.get("sitecustomize")
print(json.dumps({"path": sys.path, "modules": sorted(sys.modules),
                  "pythonpath": os.environ.get("PYTHONPATH"),
                  "sitecustomize": getattr(site, "__file__", None),
                  "shim": "_gactshim" in sys.modules}))
"""


def probe(preload, pythonpath=None, extra=None, code=PROBE):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONPATH")}
    if preload:
        env["LD_PRELOAD"] = preload
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    env.update(extra or {})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd="/", check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def lib():
    lib = os.environ.get("LD_PRELOAD", "")
    gsutil.check("libgactshim" in lib, "running under LD_PRELOAD=%s" % lib)
    return lib


@pytest.mark.parametrize("pp", [None, "/tmp/gs-a:/tmp/gs-b"], ids=["no-pythonpath", "pythonpath"])
def test_python_without_torch_untouched(lib, pp):
    plain, shimmed = probe(None, pp), probe(lib, pp)
    gsutil.check(shimmed["pythonpath"] == plain["pythonpath"], "PYTHONPATH restored (%r)" % (pp,))
    gsutil.check(shimmed["path"] == plain["path"], "sys.path restored (PYTHONPATH=%r)" % (pp,))
    gsutil.check(shimmed["modules"] == plain["modules"],
                 "sys.modules untouched without torch: %s" % sorted(set(shimmed["modules"]) ^ set(plain["modules"])))
    gsutil.check(shimmed["sitecustomize"] == plain["sitecustomize"],
                 "the shadowed sitecustomize ran: %s" % shimmed["sitecustomize"])
    gsutil.check(not shimmed["shim"], "no torch, no _gactshim module")


def test_import_torch_installs_hooks(lib):
    with_torch = probe(lib, code="import torch\n" + PROBE)
    gsutil.check(with_torch["shim"], "importing torch loads _gactshim")
    hooked = probe(lib, code="import torch, json, sys\nx = torch.randn(256, 256, requires_grad=True)\n"
                   "(x.exp() * 2).sum().backward()\nprint(json.dumps(sys.modules['_gactshim'].stats()))")
    gsutil.check(hooked["compressed"] >= 1, "a saved tensor was compressed after `import torch`")


def test_disable(lib):
    off = probe(lib, extra={"GACTSHIM_DISABLE": "1"}, code="import torch\n" + PROBE)
    gsutil.check(not off["shim"], "GACTSHIM_DISABLE=1: no hooks")


def test_non_python_process(lib):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(["/usr/bin/env"], env=env, capture_output=True, text=True, check=True).stdout
    gsutil.check("PYTHONPATH=" not in out, "a non-Python process keeps its environment")
