#!/usr/bin/env python3
"""test_readme.py: every command on the README's front page runs, exits 0 and prints what the README
says it prints.

Usage: test_readme.py SOURCE_ROOT BUILD_ROOT LIBGACTSHIM GACTSHIM_REPORT   (meson passes all four)
Exit status: 0 pass, 1 fail, 77 skip (the interpreter running this test has no torch).

What counts as a command: every line of a fenced ```sh or ```bash block, and every `$ ` line of a
```console block (the lines after it, up to the next `$ `, are what it prints; `…` stands for lines
or text left out, numbers and byte units may differ). Any other kind of code block (indented, or
fenced without one of these languages, `text` aside) fails the test, and so does a command no
runner below knows: the README cannot gain an untested command.

How each command is run, and the choices made (all in a scratch directory that links every entry
of the source tree, with `build` linked to the build tree meson gave, so that `build/...` and
`tools/dev.sh` mean this build whatever its directory):
  - `tools/dev.sh test` is not run: it IS the test suite. The test checks that CI (.ci/run) calls
    it and that it prints the `tests: N passed, N failed, N skipped` line the README promises.
  - `tools/dev.sh build|example`: run as written. Their package step calls apt-get only for
    packages that are missing; here `apt-get` and `sudo` on PATH are wrappers, so that `install`
    runs as `apt-get --simulate install` (a dry run: it must resolve, it installs nothing) and
    `update` is skipped — a test must not change the machine.
  - `examples/train.py` (directly or through `tools/dev.sh example`) without `--steps` gets
    `--steps 25` (one logged step), the bounded variant of the same run.
  - `meson install` gets `--destdir` a scratch directory (a real install, into it); the files the
    README names must be there, and the installed library must hook torch by itself.
  - `gactshim-report attach PID`: PID is a training job the test starts under the shim.
  - `.venv/bin/python` is the interpreter running this test (meson's torch_py, the venv
    tools/dev.sh makes): the scratch tree's `.venv` links to its prefix. CUDA is hidden
    (CUDA_VISIBLE_DEVICES=) so that the README's CPU samples apply; no GACTSHIM_* variable or
    LD_PRELOAD is inherited from the test's own environment.
Files a command says it writes (--html, --perfetto, GACTSHIM_STATS, GACTSHIM_TRACE) are checked too.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC, BUILD = (os.path.abspath(a) for a in sys.argv[1:3])
LIB, REPORT = (os.path.normpath(os.path.join(BUILD, a)) for a in sys.argv[3:5])  # absolute, or in BUILD
README = os.path.join(SRC, "README.md")
TIMEOUT = 600
DEFAULT_STEPS = "25"
CONSOLE, SCRIPT, QUIET = ("console",), ("sh", "bash", "shell"), ("text",)
# The README's interpreter, as it writes it, and the one that runs it here: this test's own.
PY_WORD, PY = ".venv/bin/python", sys.executable

failures = []


def fail(what):
    failures.append(what)
    print("FAIL: " + what, flush=True)


# ---------------------------------------------------------------- reading the README


class Command:
    def __init__(self, line_no, text):
        self.line_no, self.text, self.expect = line_no, text, []

    def __repr__(self):
        return "README:%d: %s" % (self.line_no, self.text)


def strip_comment(text):
    """The command without a trailing shell comment (a # that starts a word, outside quotes)."""
    quote, prev = None, " "
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and prev.isspace():
            return text[:i].rstrip()
        prev = c
    return text.rstrip()


def read_commands(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    commands, i, prev_blank = [], 0, True
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)(```+|~~~+)\s*(\S*)", line)
        if not fence:
            if prev_blank and re.match(r"^( {4}|\t)\S", line):
                fail("README:%d: an indented code block; use a fenced ```console block, which this test runs"
                     % (i + 1))
            if re.match(r"^\s*\$ ", line):
                fail("README:%d: a `$ ` command outside a ```console block" % (i + 1))
            prev_blank = not line.strip()
            i += 1
            continue
        marker, lang = fence.group(2), fence.group(3).lower()
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(marker):
            body.append(lines[i])
            i += 1
        i += 1
        prev_blank = True
        if lang in CONSOLE:
            current = None
            for k, b in enumerate(body):
                if current is not None and current.text.endswith("\\"):
                    current.text = current.text[:-1] + " " + re.sub(r"^>\s?", "", b).strip()
                elif b.startswith("$ "):
                    current = Command(start + k + 1, b[2:].strip())
                    commands.append(current)
                elif current is not None:
                    current.expect.append(b)
                elif b.strip():
                    fail("README:%d: output before any `$ ` command in a console block" % (start + k + 1))
        elif lang in SCRIPT:
            pending = None
            for k, b in enumerate(body):
                t = b.strip()
                if pending is not None:
                    pending.text = pending.text[:-1] + " " + t
                elif t and not t.startswith("#"):
                    pending = Command(start + k + 1, t)
                    commands.append(pending)
                if pending is not None and not pending.text.endswith("\\"):
                    pending = None
        elif lang in QUIET:
            for k, b in enumerate(body):
                if re.match(r"^\s*(\$ |tools/|build/|LD_PRELOAD=|GACTSHIM_\w+=|meson |python3? |\.venv/)", b):
                    fail("README:%d: a command in a ```text block; put it in a ```console block" % (start + k + 1))
        else:
            fail("README:%d: a code block fenced as %r; the front page's blocks are console, sh or bash "
                 "(run by this test) or text (no commands)" % (start, lang or "(no language)"))
    return commands


# ---------------------------------------------------------------- matching printed output

UNITS = r"(?:B|KiB|MiB|GiB|TiB)"


def line_pattern(sample):
    """A regex for one sample output line: numbers and byte units may differ, … is anything."""
    out = []
    for tok in re.findall(r"\d+(?:\.\d+)?|…|\s+|[^\d\s…]+", sample.strip()):
        if tok == "…":
            out.append(".*")
        elif tok[0].isdigit():
            out.append(r"\d+(?:\.\d+)?")
        elif tok.isspace():
            out.append(r"\s+")
        else:
            out.append(re.sub(r"\b(?:[KMGT]i)?B\b", UNITS, re.escape(tok)))
    return re.compile("".join(out))


def check_expected(cmd, output):
    """The sample lines must appear, in order, as whole lines of the output."""
    got = [l.strip() for l in output.splitlines()]
    pos = 0
    for sample in cmd.expect:
        if not sample.strip() or sample.strip() in ("…", "..."):
            continue
        pat = line_pattern(sample)
        while pos < len(got) and not pat.fullmatch(got[pos]):
            pos += 1
        if pos == len(got):
            fail("%r: the README says it prints\n    %s\nbut it printed (last 40 lines):\n%s"
                 % (cmd, sample.strip(), "\n".join("    " + l for l in got[-40:])))
            return False
        pos += 1
    return True


# ---------------------------------------------------------------- the scratch tree and environment


def scratch_tree():
    root = tempfile.mkdtemp(prefix="gs-readme-")
    work = os.path.join(root, "tree")
    os.mkdir(work)
    for name in os.listdir(SRC):
        if name not in ("build", ".venv"):
            os.symlink(os.path.join(SRC, name), os.path.join(work, name))
    os.symlink(BUILD, os.path.join(work, "build"))
    os.symlink(venv_prefix(root), os.path.join(work, ".venv"))
    # apt-get and sudo for tools/dev.sh's package step: a dry run, never a change to the machine.
    bindir = os.path.join(root, "bin")
    os.mkdir(bindir)
    real_apt = shutil.which("apt-get") or "/usr/bin/apt-get"
    with open(os.path.join(bindir, "apt-get"), "w") as f:
        f.write("#!/bin/sh\n# test_readme.py: apt-get as a dry run (install is simulated, update skipped).\n"
                "case \" $* \" in\n"
                "  *\" update \"*) echo \"test_readme: apt-get update skipped\"; exit 0 ;;\n"
                "  *\" install \"*) echo \"test_readme: apt-get --simulate $*\"; exec %s --simulate \"$@\" ;;\n"
                "esac\nexec %s \"$@\"\n" % (real_apt, real_apt))
    with open(os.path.join(bindir, "sudo"), "w") as f:
        f.write("#!/bin/sh\n# test_readme.py: no privilege is needed for a dry run.\nexec \"$@\"\n")
    for n in ("apt-get", "sudo"):
        os.chmod(os.path.join(bindir, n), 0o755)
    return root, work, bindir


def venv_prefix(root):
    """What the README's `.venv` stands for: this interpreter's venv, or (an interpreter given with
    -Dpython= outside any venv) a directory whose bin/python is that interpreter."""
    if sys.prefix != sys.base_prefix:
        return sys.prefix
    fake = os.path.join(root, "venv")
    os.makedirs(os.path.join(fake, "bin"))
    os.symlink(sys.executable, os.path.join(fake, "bin", "python"))
    return fake


def base_env(bindir):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("GACTSHIM_") or k.startswith("_GACTSHIM_") or k == "LD_PRELOAD"
                   or k == "MALLOC_PERTURB_")}
    env["PATH"] = bindir + ":/usr/bin:/bin:" + env.get("PATH", "")
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["OMP_NUM_THREADS"] = "2"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_shell(text, work, env, timeout=TIMEOUT):
    t0 = time.time()
    try:
        p = subprocess.run(["bash", "-c", text], cwd=work, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return p.returncode, p.stdout, time.time() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out + "\n(timed out after %d s)" % timeout, time.time() - t0


# ---------------------------------------------------------------- runners


def words(cmd):
    """(assignments, argv) of a command, comments removed."""
    toks = shlex.split(strip_comment(cmd.text))
    env = {}
    while toks and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", toks[0]):
        k, v = toks.pop(0).split("=", 1)
        env[k] = v
    return env, toks


def check_build_paths(cmd, work):
    """Every build/... path a command names is the build's real output (meson's, for the two targets)."""
    for m in re.finditer(r"(?:\$PWD/|\$\{PWD\}/)?(build/[\w./+-]+)", strip_comment(cmd.text)):
        path = os.path.join(work, m.group(1))
        if not os.path.exists(path):
            fail("%r: %s does not exist in the build tree" % (cmd, m.group(1)))
            continue
        for target in (LIB, REPORT):
            if os.path.basename(path) == os.path.basename(target) and not os.path.samefile(path, target):
                fail("%r: %s is not meson's %s" % (cmd, m.group(1), target))


def ci_runs_dev_test(cmd):
    ci = os.path.join(SRC, ".ci", "run")
    text = open(ci).read() if os.path.exists(ci) else ""
    calls = [l.strip() for l in text.splitlines()
             if not l.strip().startswith("#") and re.search(r"(^|\s)tools/dev\.sh\s+test(\s|$)", l)]
    if not calls:
        fail("%r: not run here (it is the test suite), but .ci/run does not call it either" % cmd)
        return
    dev = open(os.path.join(SRC, "tools", "dev.sh")).read()
    if 'echo "tests: $passed passed, $failed failed, $skipped skipped"' not in dev:
        fail("%r: tools/dev.sh no longer prints the 'tests: N passed, N failed, N skipped' line" % cmd)
    print("run by CI, not here (it is the test suite): %r — .ci/run: %s" % (cmd, calls[0]), flush=True)


def check_written_files(cmd, env_words, argv, work):
    def at(p):
        return os.path.join(work, p)
    if "--html" in argv:
        p = at(argv[argv.index("--html") + 1])
        head = open(p, errors="replace").read(4096) if os.path.exists(p) else ""
        if not head.lower().startswith("<!doctype html") or "<svg" not in open(p, errors="replace").read():
            fail("%r: %s is not an HTML page with the timeline" % (cmd, p))
    if "--perfetto" in argv:
        p = at(argv[argv.index("--perfetto") + 1])
        try:
            events = json.load(open(p))["traceEvents"]
            assert any(e.get("ph") == "C" for e in events), "no counter track"
        except Exception as e:  # noqa: BLE001 - any failure to read it is the finding
            fail("%r: %s is not Perfetto JSON with counter tracks (%s)" % (cmd, p, e))
    if "GACTSHIM_STATS" in env_words:
        p = at(env_words["GACTSHIM_STATS"])
        try:
            s = json.load(open(p))
            missing = [k for k in ("packed", "compressed", "bytes_original", "bytes_compressed",
                                   "live_bytes_peak", "skipped", "failed") if k not in s]
            assert not missing, "missing keys %s" % missing
        except Exception as e:  # noqa: BLE001
            fail("%r: %s is not the stats JSON (%s)" % (cmd, p, e))
    if "GACTSHIM_TRACE" in env_words:
        p = at(env_words["GACTSHIM_TRACE"])
        if not os.path.exists(p) or open(p, "rb").read(8) != b"GSTRACE\n":
            fail("%r: %s is not a trace file" % (cmd, p))


def bounded(text, argv):
    """examples/train.py without --steps: the same run, 25 steps."""
    trains = "examples/train.py" in argv or argv[:2] == ["tools/dev.sh", "example"]
    if trains and "--steps" not in argv:
        return strip_comment(text) + " --steps " + DEFAULT_STEPS, ", bounded: --steps %s" % DEFAULT_STEPS
    return strip_comment(text), ""


def run_meson_install(cmd, argv, work, env, root):
    dest = os.path.join(root, "destdir")
    rc, out, dt = run_shell(strip_comment(cmd.text) + " --destdir " + shlex.quote(dest), work, env)
    if rc != 0:
        fail("%r exited %d:\n%s" % (cmd, rc, out[-3000:]))
        return
    check_expected(cmd, out.replace(dest, ""))
    found = {}
    for d, _, files in os.walk(dest):
        for f in files:
            found.setdefault(f, os.path.join(d, f))
    for name in ("libgactshim.so", "gactshim-report", "sitecustomize.py", "gactshim.pc", "gactshim.h"):
        if name not in found:
            fail("%r: %s was not installed (installed: %s)" % (cmd, name, sorted(found)))
    lib = found.get("libgactshim.so")
    if lib and not os.path.exists(os.path.join(os.path.dirname(lib), "gactshim-python", "sitecustomize.py")):
        fail("%r: the Python bootstrap is not installed beside the library" % cmd)
    if lib:
        probe = dict(env, LD_PRELOAD=lib, GACTSHIM_QUIET="1")
        p = subprocess.run([PY, "-c", "import sys, torch; print('_gactshim' in sys.modules)"],
                           cwd=root, env=probe, capture_output=True, text=True, timeout=300)
        if p.returncode != 0 or p.stdout.strip() != "True":
            fail("%r: the installed library does not hook torch: %s %s" % (cmd, p.stdout, p.stderr))
    print("ok (%.1f s, --destdir scratch): %r" % (dt, cmd), flush=True)


def run_attach(cmd, text, work, env):
    job = subprocess.Popen([PY, "examples/train.py", "--steps", "400", "--log-every", "1000"],
                           cwd=work, env=dict(env, LD_PRELOAD=LIB, GACTSHIM_QUIET="1"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        live = re.sub(r"\bPID\b", str(job.pid), text)
        # The socket appears at the job's first tracked allocation, and the first memory sample a
        # moment later: ask until the live report has a peak (or the job ended, or 3 minutes).
        deadline, rc, out = time.time() + 180, 1, ""
        while time.time() < deadline and job.poll() is None:
            rc, out, _ = run_shell(live, work, env, timeout=60)
            if rc == 0 and "peak:" in out:
                break
            time.sleep(0.5)
        if rc != 0:
            fail("%r (PID = a training job under the shim) never succeeded: %s" % (cmd, out[-2000:]))
            return None
        if "pid %d (live)" % job.pid not in out or "peak:" not in out:
            fail("%r: no live report with a peak of pid %d:\n%s" % (cmd, job.pid, out[-2000:]))
            return None
        return out
    finally:
        if job.poll() is None:
            job.send_signal(signal.SIGTERM)
        try:
            job.wait(timeout=60)
        except subprocess.TimeoutExpired:
            job.kill()
            job.wait()


def run_one(cmd, work, env, root):
    try:
        env_words, argv = words(cmd)
    except ValueError as e:
        fail("%r: cannot be parsed as a shell command (%s)" % (cmd, e))
        return
    if not argv:
        fail("%r: no program to run" % cmd)
        return
    head = argv[0]
    if argv[:2] == ["tools/dev.sh", "test"]:
        if cmd.expect and any(l.strip() and l.strip() != "…" for l in cmd.expect):
            fail("%r: the README shows output for the one command this test cannot run" % cmd)
        ci_runs_dev_test(cmd)
        return
    known = (head == "tools/dev.sh" and argv[1:2] in (["build"], ["example"])) or \
            (head == PY_WORD and (argv[1:2] == ["-c"] or (argv[1:] and argv[1] == "examples/train.py"))) or \
            head == "build/tools/gactshim-report" or argv[:2] == ["meson", "install"]
    if not known:
        fail("%r: no runner for this command in tests/docs/test_readme.py — teach it how to run it" % cmd)
        return
    check_build_paths(cmd, work)
    if "LD_PRELOAD" in env_words:
        lib = env_words["LD_PRELOAD"].replace("$PWD", work).replace("${PWD}", work)
        if not os.path.exists(lib) or not os.path.samefile(lib, LIB):
            fail("%r: LD_PRELOAD names %s, not the library meson built (%s)" % (cmd, lib, LIB))
    if argv[:2] == ["meson", "install"]:
        run_meson_install(cmd, argv, work, env, root)
        return
    text, note = bounded(cmd.text, argv)
    if head == "build/tools/gactshim-report" and "attach" in argv:
        out = run_attach(cmd, text, work, env)
        if out is not None and check_expected(cmd, out):
            print("ok (PID = a training job it started): %r" % cmd, flush=True)
        return
    rc, out, dt = run_shell(text, work, env)
    if rc != 0:
        fail("%r exited %d (%s):\n%s" % (cmd, rc, note.lstrip(", ") or "as written", out[-3000:]))
        return
    check_written_files(cmd, env_words, argv, work)
    if check_expected(cmd, out):
        print("ok (%.1f s%s): %r" % (dt, note, cmd), flush=True)


def main():
    if subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode != 0:
        print("SKIP: %s has no torch (the README's commands train with it; tools/dev.sh makes .venv/)" % PY)
        return 77
    commands = read_commands(README)
    if not commands:
        fail("no command found in README.md")
    first = [c.text.split("#")[0].split() for c in commands[:2]]
    if first != [["tools/dev.sh", "example"], ["tools/dev.sh", "test"]]:
        fail("the README's first commands must be `tools/dev.sh example` and `tools/dev.sh test` (got %s)" % first)
    root, work, bindir = scratch_tree()
    env = base_env(bindir)
    print("%d commands from README.md, run in %s (build -> %s)" % (len(commands), work, BUILD), flush=True)
    try:
        for cmd in commands:
            run_one(cmd, work, env, root)
    finally:
        if not failures:
            shutil.rmtree(root, ignore_errors=True)
    if failures:
        print("\n%d failure(s); scratch tree kept in %s" % (len(failures), root))
        return 1
    print("all %d README commands ran as the README says" % len(commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
