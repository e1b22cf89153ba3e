"""test_report.py: gactshim-report end to end on traces from the stand-in training loop (trace-demo):
text peak and the peak without gactshim, the layer table, the what-if replay, Perfetto JSON, HTML
(and, in headless Chromium through the DevTools protocol: test_html_in_chromium, a meson test of its
own, skipped without Chromium: rendered, hovered, zoomed, sorted), several ranks, --vs, broken traces.
GS_DEMO names trace-demo, GS_REPORT gactshim-report (meson sets both)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import cdp
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
    for word in ("activation", "compressed", "other", "ratio", "per-iteration peak", "forward_layer"):
        assert word in out, (word, out)
    # The curve without gactshim: the demo's own count of live bytes had nothing been compressed.
    m = re.search(r"^without gactshim: .* \((\d+) bytes\): ([\d.]+)x lower", out, re.M)
    assert m and int(m.group(1)) == demo.without[path], (demo.without[path], out)
    assert "rank -1" not in out, out
    print("text report: peak %d bytes and %d without gactshim match the run" % (peak, demo.without[path]))


def layer_rows(out):
    """The text report's layer table: {layer: (saved bytes text, bits, count, node, where)}."""
    rows = {}
    for l in out.split("saved tensors by layer")[1].split("what-if")[0].splitlines()[2:]:
        m = re.match(r"\s+(\S+ \S+)\s+(\S+ \S+)\s+(\S+)\s+(\S+ \S+)\s+([\d.]+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(.*)$", l)
        if m:
            rows[m.group(7)] = m.groups()
    return rows


def test_layers(trace):
    # trace-demo's layer l saves (l+1)*64 KiB per iteration (odd layers compressed from 4x that,
    # unpacked by GeluBackward0, others kept, unpacked by AddmmBackward0), named model.layers.<l>
    # in demo/model.py at line 10+l; layers 16..19 run in 4, 3, 2, 1 iterations of every 5.
    out = run(REPORT, trace[0]).stdout
    rows = layer_rows(out)
    assert len(rows) == 10, out
    top = rows["model.layers.15"]  # the most bytes saved: 16*64 KiB*4 in all 200 iterations
    assert list(rows)[0] == "model.layers.15" and top[0] == "800.00 MiB" and top[1] == "200.00 MiB", top
    assert top[2] == "4" and top[5] == "200" and top[7] == "GeluBackward0", top
    assert top[8] == "demo/model.py:25 Layer.forward", top
    assert rows["model.layers.19"][5] == "40" and rows["model.layers.17"][5] == "120", rows
    kept = rows["model.layers.14"]
    assert kept[2] == "full" and kept[7] == "AddmmBackward0" and kept[0] == kept[1], kept
    print("layers: %d rows, the largest model.layers.15 (%s -> %s) saved by %s at %s"
          % (len(rows), top[0], top[1], top[7], top[8]))


def test_whatif(trace):
    out = run(REPORT, trace[0]).stdout
    m = re.search(r"measured peak ([\d.]+ \w+)\)", out)
    rec = re.search(r"as recorded \(replay check\)\s+([\d.]+ \w+)", out)
    assert m and rec and m.group(1) == rec.group(1), out  # the replay reproduces the measured peak
    rows = dict(re.findall(r"^  (\d bits, (?:all|lifetime))\s+([\d.]+ \w+)", out, re.M))
    assert set(rows) == {"%d bits, %s" % (b, s) for b in (8, 4, 2) for s in ("all", "lifetime")}, out
    assert "smallest GACTSHIM_BUDGET" in out and "how: Replays" in out
    print("what-if: replay check %s = measured; %s" % (rec.group(1), rows))


def test_perfetto(trace):
    out = os.path.join(TMP, "t.json")
    run(REPORT, "--perfetto", out, trace[0])
    ev = json.load(open(out))["traceEvents"]
    counters = [e for e in ev if e["ph"] == "C" and e["name"] == "memory cuda:0"]
    assert counters and all(set(COLOURS) <= set(e["args"]) for e in counters)
    without = [e["args"]["bytes"] for e in ev if e["ph"] == "C" and e["name"] == "without gactshim cuda:0"]
    assert without and max(without) == demo.without[trace[0]], (max(without or [0]), demo.without)
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
    # One self-contained file: nothing fetched (no src=, no link, no URL but the SVG namespace).
    bare = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://|\bsrc=|<link|@import|url\(", bare), re.search(r"https?://|\bsrc=|<link|@import|url\(", bare)
    assert 0 < npoints <= 2000, npoints
    assert '<path class="without"' in text and "without gactshim" in text
    assert 'class="wide sortable layers"' in text and "model.layers.19" in text and 'class="whatif"' in text
    print("html: %d series + the curve without gactshim, %d points, layer and what-if tables" % (len(series), npoints))


def test_outputs_without_stdout(trace):
    # --html/--perfetto write their files and keep stdout quiet unless --text asks for the report.
    out = os.path.join(TMP, "quiet.html")
    p = run(REPORT, "--html", out, "--perfetto", out + ".json", trace[0])
    assert p.stdout == "" and os.path.getsize(out) > 1000 and os.path.getsize(out + ".json") > 1000, p.stdout[:200]
    p = run(REPORT, "--html", out, "--text", trace[0])
    assert p.stdout.startswith("== "), p.stdout[:200]
    print("--html/--perfetto: files only; --text adds the report")


def test_html_in_chromium(html):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (tools/dev.sh installs it): the HTML report was not rendered")
    _, series, npoints = html_series(html)
    png = os.environ.get("GS_REPORT_PNG") or os.path.join(TMP, "t.png")
    page = cdp.Page(chromium, os.path.join(TMP, "chrome"))
    try:
        page.open("file://" + html)
        tip = hover_band(page)
        view0, band, view1 = zoom_widest_band(page)
        order = sort_layers(page)
        page.eval("document.querySelector('button.reset').click()")
        page.screenshot(png)
    finally:
        page.close()
    total = pngcount.non_white(png)
    assert total > 20000, total
    for cat, rgb in dict(COLOURS, without=(0x4e, 0x79, 0xa7)).items():
        n = pngcount.non_white(png, rgb)
        assert n > 200, (cat, n)
    print("html: %d series, %d points; hover: %r; band %s zooms %s -> %s; layers sorted by count: %s; "
          "rendered %s with %d non-white pixels" % (len(series), npoints, tip, band, view0, view1, order, png, total))


def svg_box(page):
    return page.eval("(function(){var r=document.querySelector('svg.timeline').getBoundingClientRect();"
                     "return [r.left, r.top, r.width, r.height];})()")


# The widest iteration band (narrow ones can be a fraction of a pixel) as `r`.
WIDEST = ("var rs=document.querySelectorAll('rect.iteration'),r=rs[0];"
          "rs.forEach(function(q){if(+q.getAttribute('width')>+r.getAttribute('width'))r=q;});")


def hover_band(page):
    # A real mouse move (Input.dispatchMouseEvent) into the middle of the widest iteration band: the
    # tooltip names the time, that iteration, the bytes by category and the bytes without gactshim.
    left, top, w, h = svg_box(page)
    x, n = page.eval("(function(){" + WIDEST + "return [+r.getAttribute('x')+ +r.getAttribute('width')/2, "
                     "r.getAttribute('data-n')];})()")
    page.mouse("mouseMoved", left + x * w / 1200, top + 0.5 * h)
    tip = page.eval("(function(){var t=document.querySelector('.tip');return t.hidden?null:t.textContent;})()")
    assert tip, "no tooltip after hovering the chart"
    for word in ("ms", "iteration %s\n" % n, "total", "activation", "compressed", "other", "without gactshim"):
        assert word in tip, (word, tip)
    assert re.search(r"total [\d.]+ MiB", tip) and page.eval(
        "document.querySelector('line.cursor').getAttribute('visibility')") == "visible", tip
    return tip.replace("\n", " | ")


def zoom_widest_band(page):
    # Clicking an iteration band zooms the chart into that iteration (its x labels follow).
    labels = "Array.prototype.map.call(document.querySelectorAll('svg.timeline text.xlabel'),function(t){return t.textContent;})"
    before = page.eval(labels)
    left, top, w, h = svg_box(page)
    x, t0, t1 = page.eval("(function(){" + WIDEST +
                          "return [+r.getAttribute('x')+ +r.getAttribute('width')/2, r.getAttribute('data-t0'), r.getAttribute('data-t1')];})()")
    page.click(left + x * w / 1200, top + 0.2 * h)
    view = page.eval("document.querySelector('svg.timeline').getAttribute('data-view')")
    v0, v1 = map(float, view.split(","))
    assert float(t0) - 0.01 < v0 < float(t0) and float(t1) < v1 < float(t1) + 0.01, (view, t0, t1)
    after = page.eval(labels)
    assert after != before, (before, after)
    return before[:2], "%s-%s s" % (t0, t1), after[:2]


def sort_layers(page):
    # A click on the "count" header sorts the layer table by count.
    counts = ("Array.prototype.map.call(document.querySelectorAll('table.layers tbody tr'),"
              "function(r){return +r.cells[7].getAttribute('data-v');})")
    left, top = page.eval("(function(){var th=document.querySelectorAll('table.layers th')[7];th.scrollIntoView();"
                          "var r=th.getBoundingClientRect();return [r.left+r.width/2, r.top+r.height/2];})()")
    page.click(left, top)
    got = page.eval(counts)
    assert got == sorted(got, reverse=True) and got != page.eval(counts)[::-1], got
    return got[:4]


def test_ranks():
    a, pa = demo("r0.trace", 20, rank=0)
    b, pb = demo("r1.trace", 30, rank=1)
    out = run(REPORT, a, b).stdout
    rows = [l for l in out.splitlines() if re.match(r"^[01]\s+\d+\s", l)]
    assert len(rows) == 2 and out.startswith("rank"), out
    print("ranks: one row per rank")


def test_vs():
    # Two runs of two ranks each: rank r of A faces rank r of B, whatever the order given.
    a = [demo("a%d.trace" % r, 20 + 10 * r, rank=r)[0] for r in (0, 1)]
    b = [demo("b%d.trace" % r, 40, rank=r)[0] for r in (1, 0)]
    out = run(REPORT, a[0], a[1], "--vs", b[0], b[1]).stdout
    rows = {l.split()[0]: l for l in out.splitlines() if re.match(r"^[01]\s+\d", l)}
    assert set(rows) == {"0", "1"}, out
    assert rows["0"].endswith("a0.trace | %s" % b[1]) and rows["1"].endswith("a1.trace | %s" % b[0]), rows
    assert re.search(r"^\s+\S+ \S+ ->\s+\S+ \S+ \|\s+\S+ \S+ ->\s+\S+ \S+\s+model\.layers\.\d+$", out, re.M), out
    html = os.path.join(TMP, "vs.html")
    run(REPORT, "--html", html, a[0], a[1], "--vs", b[0], b[1])
    text = open(html).read()
    assert text.count('<svg class="vs"') == 2 and 'class="vs-a"' in text and 'class="vs-b"' in text
    p = run(REPORT, a[0], "--vs", check=False)
    assert p.returncode == 2 and "usage" in p.stderr
    print("--vs: ranks paired 0-0 and 1-1, layers side by side, both curves on one chart per rank")


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
