# test_dist.py: torchrun, 2 ranks, gloo on the CPU: a transformers Llama-style LM under DDP and
# under FSDP2 (fully_shard, which this PyTorch runs on the CPU with gloo). With the shim at the
# default setting, every rank compresses, writes its own stats (%r), and the final loss is within
# 2 % of the same torchrun job without the shim.
import json
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
import gsutil  # noqa: E402
import zoo  # noqa: E402

STEPS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(mode, shim, tmp):
    env = dict(os.environ, **zoo.OFFLINE, GACTSHIM_STATS=os.path.join(tmp, "stats-%r.json"))
    if not shim:
        env["LD_PRELOAD"] = ""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", "--master_port=%d" % free_port(),
           os.path.join(HERE, "dist_job.py"), mode, str(STEPS)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=500)
    gsutil.check(p.returncode == 0, "%s %s: torchrun exits 0%s" % (
        mode, "with the shim" if shim else "without the shim", "" if p.returncode == 0 else "\n" + p.stderr[-3000:]))
    res = sorted((json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")),
                 key=lambda r: r["rank"])
    gsutil.check([r["rank"] for r in res] == [0, 1], "%s: both ranks reported" % mode)
    return res


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_torchrun(mode, tmp_path):
    bare = torchrun(mode, False, str(tmp_path / "bare"))
    got = torchrun(mode, True, str(tmp_path))
    gsutil.check(got[0]["losses"] == got[1]["losses"], "%s: both ranks report the same global losses" % mode)
    exact, loss = bare[0]["losses"][-1], got[0]["losses"][-1]
    rel = (loss - exact) / exact
    gsutil.check(abs(rel) < 0.02, "%s: final loss %.5f within 2 %% of the run without the shim (%.5f, %+.3f %%)"
                 % (mode, loss, exact, 100 * rel))
    for rank in (0, 1):
        with open(str(tmp_path / ("stats-%d.json" % rank))) as f:
            st = json.load(f)
        gsutil.check(got[rank]["compressed"] > 0 and st["compressed"] > 0 and not any(st["failed"].values()),
                     "%s: rank %d compressed %d tensors, wrote its own stats, nothing failed"
                     % (mode, rank, st["compressed"]))
