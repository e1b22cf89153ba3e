"""test_attach.py: `gactshim-report attach PID` on a running stand-in training loop (no trace file):
a live report comes back while the job keeps running; a job without a socket gets a clear message.
GS_DEMO names trace-demo, GS_REPORT gactshim-report (meson sets both)."""
import os
import re
import subprocess
import tempfile
import time

DEMO, REPORT = os.environ["GS_DEMO"], os.environ["GS_REPORT"]
tmp = tempfile.mkdtemp(prefix="gs-attach-")
html = os.path.join(tmp, "live.html")


def test_attach_while_training():
    # 300 iterations of 10 ms: about 3 s of "training", recorded in memory only ("-").
    job = subprocess.Popen([DEMO, "-", "300", "10"], stdout=subprocess.PIPE, text=True)
    out = None
    deadline = time.time() + 20
    while time.time() < deadline and job.poll() is None:
        p = subprocess.run([REPORT, "attach", str(job.pid), "--html", html, "--text"], capture_output=True,
                           text=True, timeout=30)
        if p.returncode == 0:
            out = p.stdout
            break
        time.sleep(0.05)
    assert out, "attach never succeeded: %s" % (p.stderr,)
    assert job.poll() is None, "the job stopped while we attached"
    assert "live snapshot" in out and re.search(r"^peak: ", out, re.M), out
    assert "rank -1" not in out, out  # the stand-in sets no RANK: no rank in the heading
    assert os.path.getsize(html) > 1000
    # A second attach while it trains: still fine, and the job still runs to the end.
    p = subprocess.run([REPORT, "attach", str(job.pid)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 or job.poll() is not None, p.stderr
    peak = int(job.communicate(timeout=60)[0].split()[0])
    assert job.returncode == 0
    m = re.search(r"\((\d+) bytes\)", out)
    assert m and int(m.group(1)) <= peak, (out, peak)
    print("attach: live report while training (peak so far %s of %d)" % (m.group(1), peak))


def test_attach_without_socket():
    # A process without the shim: a sentence, exit status 1.
    sleeper = subprocess.Popen(["sleep", "5"])
    p = subprocess.run([REPORT, "attach", str(sleeper.pid)], capture_output=True, text=True, timeout=30)
    sleeper.kill()
    assert p.returncode == 1 and "has no gactshim control socket" in p.stderr, p.stderr
    print("attach: a job without a socket is explained: " + p.stderr.strip()[:100])
