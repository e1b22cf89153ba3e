"""test_faults.py: the shim fails open. With _GACTSHIM_FAULT (compiled in by -Dfault_injection) the
compressed-buffer allocation, the CPU codec or trace writes fail; a real trace path that cannot be
written (missing or non-directory parent, /dev/full) too. Each time: the job completes with its exit
status, the failed tensors are exact (the losses equal GACTSHIM_POLICY=off's bit for bit when every
tensor fails), the reason is counted in the stats' "failed" object, and it is said once."""
import os

import pytest

from rutil import JOB, REPORT, TMP, check, load_stats, need_torch, result, run, skip, stats_path, warnings

STEPS = 12

need_torch()


def job(name, **kw):
    path = stats_path(name)
    p = run([JOB, str(STEPS)], GACTSHIM_STATS=path, **kw)
    check(p.returncode == 0, "%s: the job exits 0" % name, p.stdout + p.stderr)
    return result(p)["losses"], load_stats(path), warnings(p.stderr)


def fault_injection_built():
    p = run(["/bin/true"], _GACTSHIM_FAULT="no_such_fault")
    return p.returncode == 2 and "_GACTSHIM_FAULT='no_such_fault' is not valid" in p.stderr


@pytest.fixture(scope="module")
def injection():
    if not fault_injection_built():
        skip("the shim was built with -Dfault_injection=false (no _GACTSHIM_FAULT)")
    check(True, "a bad _GACTSHIM_FAULT stops the job with exit 2 and a line, like GACTSHIM_*")


@pytest.fixture(scope="module")
def exact(injection):
    return job("exact", GACTSHIM_POLICY="off", GACTSHIM_QUIET=1)[0]


@pytest.fixture(scope="module")
def plain(injection):
    plain_losses, plain_st, warn = job("plain", GACTSHIM_QUIET=1)
    check(plain_st["compressed"] > 0 and not warn, "the fault-free run compresses, silently")
    return dict(plain_st, losses=plain_losses)


@pytest.mark.parametrize("fault, key, says", [("alloc", "alloc", "could not allocate"),
                                              ("codec", "codec", "compression failed")],
                         ids=["alloc", "codec"])
def test_tensor_fault(exact, plain, fault, key, says):
    losses, st, warn = job(fault, _GACTSHIM_FAULT=fault, GACTSHIM_QUIET=1)
    check(losses == exact, "%s fails every time: losses equal the uncompressed run's exactly" % fault)
    check(st["compressed"] == 0 and st["failed"][key] > 0 and st["skipped"]["error"] == st["failed"][key],
          "%s: counted in failed.%s (%d) and skipped.error" % (fault, key, st["failed"][key]), st)
    check(len(warn) == 1 and says in warn[0], "%s: one warning" % fault, "\n".join(warn))
    # From the 10th time on: the first tensors are compressed, the rest kept exact.
    losses, st, warn = job(fault + "-late", _GACTSHIM_FAULT=fault + "@10", GACTSHIM_QUIET=1)
    check(st["compressed"] == 9 and st["failed"][key] == plain["compressed"] - 9,
          "%s@10: 9 compressed, the other %d failed and were kept" % (fault, st["failed"][key]), st)
    check(losses[0] == plain["losses"][0] and len(warn) == 1, "%s@10: the job runs on, one warning" % fault)


@pytest.mark.parametrize("name, kw, says", [
    ("trace-nospc", dict(_GACTSHIM_FAULT="trace_nospc@2", GACTSHIM_TRACE=os.path.join(TMP, "full.trace")),
     "No space left on device"),
    ("trace-devfull", dict(GACTSHIM_TRACE="/dev/full"), "GACTSHIM_TRACE=/dev/full"),
    ("trace-nodir", dict(GACTSHIM_TRACE=os.path.join(TMP, "missing", "t.trace")), "No such file"),
    ("trace-notdir", dict(GACTSHIM_TRACE="/etc/hostname/t.trace"), "Not a directory"),
], ids=["nospc", "devfull", "nodir", "notdir"])
def test_trace_fault(plain, name, kw, says):
    losses, st, warn = job(name, GACTSHIM_QUIET=1, **kw)
    check(losses == plain["losses"], "%s: losses equal the same run's without the fault" % name)
    check(st["failed"]["trace"] == 1 and st["compressed"] == plain["compressed"],
          "%s: counted once in failed.trace, compression unaffected" % name, st)
    check(len(warn) == 1 and says in warn[0], "%s: one warning naming the reason" % name, "\n".join(warn))
    if name == "trace-nospc":
        # The disk filled after one batch: the file still ends at a whole record and loads.
        check(REPORT, "GS_REPORT names gactshim-report")
        p = run([REPORT, os.path.join(TMP, "full.trace")], shim=False)
        check(p.returncode == 0 and "peak:" in p.stdout and "corrupt" not in p.stdout + p.stderr,
              "the trace cut by a full disk still loads without a corrupt record", p.stdout + p.stderr)


def test_stats_unwritable(injection):
    p = run([JOB, "2"], GACTSHIM_STATS="/etc/hostname/s.json", GACTSHIM_QUIET=1)
    warn = warnings(p.stderr)
    check(p.returncode == 0 and len(warn) == 1 and "GACTSHIM_STATS" in warn[0],
          "unwritable GACTSHIM_STATS: exit 0, one error line", p.stderr)
