"""test_report.py: gactshim-report end to end on traces from the stand-in training loop (trace-demo):
text peak, Perfetto JSON, HTML (and rendered in headless Chromium: test_html_in_chromium, a meson test
of its own, skipped without Chromium), several ranks, broken traces.
GS_DEMO names trace-demo, GS_REPORT gactshim-report (meson sets both)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import pngcount

DEMO, REPORT = os.environ["GS_DEMO"], os.environ["GS_REPORT"]
TMP = tempfile.mkdtemp(prefix="gs-report-")
COLOURS = {"activation": (0xe1, 0x57, 0x59),
           "compressed": (0x59, 0xa1, 0x4f), "other": (0xba, 0xb0, 0xac)}


def run(*args, env=None, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=120)
    if check and p.returncode != 0:
        pytest.fail("%s -> %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr), pytrace=False)
    return p


def demo(name, iters, rank=None):
    env = dict(os.environ)
    if rank is not None:
        env["RANK"] = str(rank)
    path = os.path.join(TMP, name)
    peak, without = map(int, run(DEMO, path, str(iters), env=env).stdout.split())
    demo.without[path] = without
    return path, peak


demo.without = {}  # path -> the demo's true peak without compression


@pytest.fixture(scope="module")
def trace():
    """A 200-iteration trace and its peak; the module's files go when it is done."""
    yield demo("t.trace", 200)
    shutil.rmtree(TMP, ignore_errors=True)


@pytest.fixture(scope="module")
def html(trace):
    out = os.path.join(TMP, "t.html")
    run(REPORT, "--html", out, trace[0])
    return out


def test_text(trace):
    path, peak = trace
    out = run(REPORT, path).stdout
    m = re.search(r"^peak: .* \((\d+) bytes\)", out, re.M)
    assert m and int(m.group(1)) == peak, (peak, out)
    for word in ("activation", "compressed", "other", "ratio", "per-iteration peak",
                 "forward_layer"):
        assert word in out, (word, out)
    print("text report: peak %d bytes matches the run" % peak)


def test_perfetto(trace):
    out = os.path.join(TMP, "t.json")
    run(REPORT, "--perfetto", out, trace[0])
    ev = json.load(open(out))["traceEvents"]
    counters = [e for e in ev if e["ph"] == "C"]
    assert counters and all(set(COLOURS) <= set(e["args"]) for e in counters)
    assert any(e["ph"] == "X" and e["name"] == "compress" and "dur" in e for e in ev)
    assert any(e["ph"] == "M" and e["name"] == "process_name" for e in ev)
    assert all(isinstance(e["ts"], (int, float)) for e in ev if "ts" in e)
    print("perfetto: %d events, %d counter samples" % (len(ev), len(counters)))


def html_series(html):
    text = open(html).read()
    series = re.findall(r'<path class="series" data-category="(\w+)"', text)
    npoints = int(re.search(r"(\d+) points, max-preserving", text).group(1))
    return text, series, npoints


def test_html(html):
    text, series, npoints = html_series(html)
    assert sorted(series) == sorted(COLOURS), series
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 0 < npoints <= 2000, npoints
    print("html: %d series, %d points" % (len(series), npoints))


def test_html_in_chromium(html):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (tools/dev.sh installs it): the HTML report was not rendered")
    _, series, npoints = html_series(html)
    png = os.environ.get("GS_REPORT_PNG") or os.path.join(TMP, "t.png")
    run(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--user-data-dir=" + os.path.join(TMP, "chrome"), "--screenshot=" + png,
        "--window-size=1400,1000", "file://" + html)
    total = pngcount.non_white(png)
    assert total > 20000, total
    for cat, rgb in COLOURS.items():
        n = pngcount.non_white(png, rgb)
        assert n > 200, (cat, n)
    print("html: %d series, %d points; rendered %s with %d non-white pixels" % (len(series), npoints, png, total))


def test_ranks():
    a, pa = demo("r0.trace", 20, rank=0)
    b, pb = demo("r1.trace", 30, rank=1)
    out = run(REPORT, a, b).stdout
    rows = [l for l in out.splitlines() if re.match(r"^[01]\s+\d+\s", l)]
    assert len(rows) == 2 and out.startswith("rank"), out
    print("ranks: one row per rank")


def test_broken(trace):
    path = trace[0]
    junk = os.path.join(TMP, "junk.trace")
    open(junk, "wb").write(b"hello, this is not a trace at all" * 4)
    p = run(REPORT, junk, check=False)
    assert p.returncode == 1 and "not a gactshim trace" in p.stderr, (p.returncode, p.stderr)
    cut = os.path.join(TMP, "cut.trace")
    data = open(path, "rb").read()
    open(cut, "wb").write(data[:len(data) * 2 // 3 + 5])
    p = run(REPORT, cut, check=False)
    assert p.returncode == 0 and "ends inside a record" in p.stdout, p.stdout
    p = run(REPORT, "/nonexistent.trace", check=False)
    assert p.returncode == 1 and "No such file" in p.stderr
    print("broken traces: clear messages")


def test_killed():
    # SIGKILL mid-run: the file is flushed every 100 ms, so a readable prefix remains.
    path = os.path.join(TMP, "killed.trace")
    job = subprocess.Popen([DEMO, path, "100000", "2"], stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    job.kill()
    job.wait()
    out = run(REPORT, path).stdout
    assert re.search(r"^peak: ", out, re.M) and "warning:" in out, out
    print("killed job: its trace reads (%s)" % re.search(r"warning: (.*)", out).group(1)[:60])
