"""test_multiproc.py: distributed and multi-process jobs under the shim.
DDP (gloo) with two ranks started by hand and with torchrun: every rank compresses, writes its own
stats and trace (%r), one merged report has a row per rank, and the loss is within the convergence
test's 2 % of the same DDP run without the shim. DataLoader workers (fork, spawn), multiprocessing
pools (fork, spawn) and non-Python subprocess children: no hang, one set of hooks per process,
and children that never use the shim leave nothing behind (no stats, no trace).
test_torchrun is a meson test of its own: it is skipped where torchrun itself fails identically
without the shim (Debian's torch 1.13 launcher does)."""
import glob
import os
import re
import socket
import subprocess

import pytest

from rutil import JOB, PY, REPORT, TMP, check, env, load_stats, need_torch, result, run, skip

HERE = os.path.dirname(os.path.abspath(__file__))
MP_JOB = os.path.join(HERE, "mp_job.py")
STEPS = 30

need_torch()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def by_hand(tag, shim=True):
    """Two ranks started by hand (MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE); their results."""
    port, procs = free_port(), []
    for rank in range(2):
        e = env(shim=shim, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=rank, LOCAL_RANK=rank,
                WORLD_SIZE=2, GACTSHIM_QUIET=1, GACTSHIM_STATS=os.path.join(TMP, tag + "-%r.json"),
                GACTSHIM_TRACE=os.path.join(TMP, tag + "-%r.trace"))
        procs.append(subprocess.Popen([PY, JOB, str(STEPS), "--ddp"], env=e, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    for rank, (p, (out, err)) in enumerate(zip(procs, outs)):
        check(p.returncode == 0, "%s: rank %d exits 0" % (tag, rank), out + err)
    return [result(subprocess.CompletedProcess([], 0, out, err)) for out, err in outs]


def check_ranks(tag, res, exact):
    check(res[0]["losses"] == res[1]["losses"], "%s: both ranks report the same global losses" % tag)
    rel = abs(res[0]["loss"] - exact) / exact
    check(rel < 0.02, "%s: final loss %.5f within 2 %% of the run without the shim (%.5f, %.3f %%)"
          % (tag, res[0]["loss"], exact, 100 * rel))
    for rank in range(2):
        st = load_stats(os.path.join(TMP, "%s-%d.json" % (tag, rank)))
        check(st["compressed"] > 0 and st["failed"] == dict.fromkeys(st["failed"], 0),
              "%s: rank %d compressed %d tensors, no failure" % (tag, rank, st["compressed"]))
    traces = [os.path.join(TMP, "%s-%d.trace" % (tag, r)) for r in range(2)]
    p = run([REPORT] + traces, shim=False)
    rows = re.findall(r"^== .*\(pid \d+, rank (\d)\)", p.stdout, re.M)
    check(p.returncode == 0 and sorted(rows) == ["0", "1"], "%s: one report, a row per rank %s" % (tag, rows),
          p.stdout + p.stderr)


@pytest.fixture(scope="module")
def exact():
    """The final loss of the same DDP run without the shim."""
    return by_hand("bare", shim=False)[0]["loss"]


def test_ddp_by_hand(exact):
    check_ranks("by-hand", by_hand("by-hand"), exact)


def test_torchrun(request):
    port = free_port()
    cmd = [PY, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           "--master_port=%d" % port, JOB, str(STEPS), "--ddp"]
    p = run(cmd, GACTSHIM_QUIET=1, GACTSHIM_STATS=os.path.join(TMP, "torchrun-%r.json"),
            GACTSHIM_TRACE=os.path.join(TMP, "torchrun-%r.trace"))
    if p.returncode != 0:
        bare = run(cmd, shim=False)
        same = bare.returncode == p.returncode and last_error(bare.stderr) == last_error(p.stderr)
        check(same, "torchrun failed (%d) with the shim, and identically without it" % p.returncode,
              "with:\n%s\nwithout:\n%s" % (p.stderr[-2000:], bare.stderr[-2000:]))
        skip("Debian's torchrun fails in its launcher here, with or without the shim: %s" % last_error(p.stderr))
    exact = request.getfixturevalue("exact")
    res = [result(subprocess.CompletedProcess([], 0, "\n".join(
        line for line in p.stdout.splitlines() if line.startswith("{") and '"rank": %d' % r in line), ""))
        for r in range(2)]
    check_ranks("torchrun", res, exact)
    check(not glob.glob(os.path.join(TMP, "torchrun-[!01]*")), "the launcher itself wrote no stats or trace")


def last_error(stderr):
    lines = [line for line in stderr.splitlines() if re.match(r"^\w*(Error|Exception)\b", line)]
    return lines[-1] if lines else stderr.strip().splitlines()[-1:]


@pytest.mark.parametrize("case", ["dataloader-fork", "dataloader-spawn", "pool-fork", "pool-spawn", "exec"])
def test_children(case):
    d = os.path.join(TMP, case)
    os.mkdir(d)
    p = run([MP_JOB, case], timeout=240, GACTSHIM_QUIET=1, GACTSHIM_STATS=os.path.join(d, "s-%p.json"),
            GACTSHIM_TRACE=os.path.join(d, "t-%p.trace"))
    check(p.returncode == 0 and not p.stderr, "%s: no hang, exit 0, nothing on stderr" % case, p.stdout + p.stderr)
    res = result(p)
    files = sorted(os.listdir(d))
    if case.startswith("pool-"):
        own, kids = res["parent"], res["children"]
        check(all(k["shim"] and (k["packed"], k["compressed"]) == (own["packed"], own["compressed"])
                  and k["loss"] == own["loss"] for k in kids),
              "%s: every child packs what the parent's same pass packs (%d, %d compressed): one set of hooks"
              % (case, own["packed"], own["compressed"]), str(res))
        users = {str(k["pid"]) for k in kids} | {str(own["pid"])}
        check({re.sub(r"\D", "", f) for f in files} <= users,
              "%s: only processes that trained left files %s" % (case, files))
    else:
        check(len(files) == 2, "%s: only the training process left a stats and a trace file %s" % (case, files))
    if case == "exec":
        check(res["sh_out"] == "child-ok" and res["sh_rc"] == 3 and res["ls_rc"] == 0 and not res["sh_err"],
              "exec: /bin/sh and ls children behave as without the shim")
