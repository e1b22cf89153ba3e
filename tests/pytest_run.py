"""pytest_run.py: runs pytest for one meson test and turns its outcome into meson's exit status.

Usage: pytest_run.py PATH[::TEST] [pytest options, e.g. -m gpu or --deselect NODEID]
(node ids are relative to tests/, where pytest.ini is: reliability/test_multiproc.py::test_torchrun)

  0   every selected test passed
  77  every selected test was skipped (meson's SKIP); each reason is printed. Also when pytest
      itself is not installed.
  1   a failure or an error; no test selected; or some tests passed while others were skipped:
      a part that can be skipped on its own must be its own meson test, so that meson's summary
      says SKIP for it instead of OK for the whole.
"""
import os
import sys

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


def skip_reason(report):
    lr = report.longrepr
    why = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return why[len("Skipped: "):] if why.startswith("Skipped: ") else why


class Outcomes:
    """Collects one outcome per test (failed wins over skipped over passed) and skipped modules."""

    def __init__(self):
        self.tests = {}  # nodeid -> ("passed" | "skipped" | "failed", reason)
        self.skipped_modules = []  # (nodeid, reason): skipped while collecting
        self.broken = []  # nodeids that could not be collected

    def pytest_collectreport(self, report):
        if report.skipped:
            self.skipped_modules.append((report.nodeid, skip_reason(report)))
        elif report.failed:
            self.broken.append(report.nodeid)

    def pytest_runtest_logreport(self, report):
        old = self.tests.get(report.nodeid, ("passed", ""))
        if report.failed:
            self.tests[report.nodeid] = ("failed", report.when)
        elif report.skipped and not hasattr(report, "wasxfail") and old[0] != "failed":
            self.tests[report.nodeid] = ("skipped", skip_reason(report))
        else:
            self.tests.setdefault(report.nodeid, old)


def main(argv):
    try:
        import pytest
    except ImportError:
        print("SKIP: pytest is not installed (Debian: python3-pytest; tools/dev.sh installs it)", flush=True)
        return SKIP
    seen = Outcomes()
    rc = pytest.main(["-c", os.path.join(HERE, "pytest.ini"), "--rootdir", HERE, "-v", "-rA"] + argv,
                     plugins=[seen])
    by = {"passed": [], "skipped": [], "failed": []}
    for nodeid, (outcome, why) in seen.tests.items():
        by[outcome].append((nodeid, why))
    skips = by["skipped"] + seen.skipped_modules
    print()
    print("pytest_run: %d passed, %d skipped, %d failed, %d not collected (pytest exit %d)"
          % (len(by["passed"]), len(skips), len(by["failed"]), len(seen.broken), int(rc)))
    for nodeid, why in skips:
        print("SKIP: %s: %s" % (nodeid, why))
    if by["failed"] or seen.broken or int(rc) not in (0, 5):
        return 1
    if not by["passed"] and not skips:
        print("FAIL: no test was selected by %s" % " ".join(argv))
        return 1
    if not by["passed"]:
        return SKIP
    if skips:
        print("FAIL: tests passed while others were skipped: a part that can be skipped on its own must "
              "be a meson test of its own (tests/*/meson.build), so that it shows as SKIP")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
