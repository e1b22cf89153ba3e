"""test_hostile.py: hostile clients of the control socket while a job trains under the shim.
Slow-loris clients (dripping a request a byte at a time, or silent, more of them than the listen
backlog), a client that asks for a snapshot and never reads it, oversized, binary, NUL-carrying and
wrong-version requests: each gets an ERR line or is dropped, the job keeps stepping meanwhile,
`gactshim-report attach` still succeeds, and the job ends normally."""
import os
import socket
import subprocess
import threading
import time

import pytest

from rutil import JOB, PY, REPORT, TMP, check, env, need_torch

need_torch()


def sock_path(pid):
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(xdg, "gactshim") if xdg else "/tmp/gactshim-%d" % os.getuid()
    return os.path.join(base, "%d.sock" % pid)


class Job:
    def __init__(self):
        self.ready = os.path.join(TMP, "hostile.ready")
        self.p = subprocess.Popen([PY, JOB, "20000", "--pause", "0.01", "--ready", self.ready],
                                  env=env(GACTSHIM_QUIET=1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.steps = 0
        threading.Thread(target=self._count, daemon=True).start()
        deadline = time.time() + 120
        while not (os.path.exists(self.ready) and os.path.exists(sock_path(self.p.pid))):
            if time.time() > deadline or self.p.poll() is not None:
                break
            time.sleep(0.05)
        check(os.path.exists(sock_path(self.p.pid)), "the job starts and opens its socket")

    def _count(self):
        for line in self.p.stdout:
            self.steps += line.startswith("step ")

    def keeps_stepping(self, what, during):
        before = self.steps
        during()
        time.sleep(0.3)
        check(self.steps > before + 5, "%s: the job kept stepping (%d -> %d)" % (what, before, self.steps))


def connect(pid):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path(pid))  # blocking: a full backlog makes a Unix socket refuse a timed connect
    s.settimeout(10)
    return s


def ask(pid, payload):
    """Sends raw bytes; the first reply line, or '' if the server closed without one."""
    with connect(pid) as s:
        try:
            s.sendall(payload)
        except OSError:
            pass  # the server may answer and close before a long request is sent
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


def attach(pid):
    return subprocess.run([REPORT, "attach", str(pid)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def job():
    """One job for the whole module: the tests below run against it in order, the last one ends it."""
    j = Job()
    yield j
    if j.p.poll() is None:
        j.p.terminate()
        j.p.wait(timeout=60)


def test_slow_loris(job):
    pid = job.p.pid
    drip = connect(pid)

    def dripping():
        for b in b"GSCTL 1 SNAPSHOT\n":
            try:
                drip.send(bytes([b]))
            except OSError:
                return
            time.sleep(0.1)

    silent = [connect(pid) for _ in range(8)]  # twice the listen backlog, none says anything
    t = threading.Thread(target=dripping)
    t.start()
    job.keeps_stepping("8 silent clients and one dripping a byte every 100 ms", lambda: time.sleep(1.0))
    p = attach(pid)
    check(p.returncode == 0 and "live snapshot" in p.stdout, "attach succeeds while they hold on", p.stderr)
    t.join()
    answer = drip.recv(256).decode(errors="replace")
    check("ERR no request line" in answer, "the dripping client is answered 'no request line' (%s)" % answer.strip())
    for s in silent + [drip]:
        s.close()


def test_never_reads(job):
    pid = job.p.pid
    greedy = [connect(pid) for _ in range(3)]
    for s in greedy:
        s.sendall(b"GSCTL 1 SNAPSHOT\n")  # and never read the snapshot
    job.keeps_stepping("3 clients that never read their snapshot", lambda: time.sleep(1.0))
    check(attach(pid).returncode == 0, "attach still succeeds")
    for s in greedy:
        s.close()


def test_malformed(job):
    pid = job.p.pid
    cases = [
        ("oversized", b"A" * 4096 + b"\n", "ERR request longer than 128 bytes"),
        ("line of 128 bytes", b"GSCTL 1 PING" + b" " * 116 + b"\n", "ERR request longer than"),
        ("NUL inside", b"GSCTL 1 PING\x00junk\n", "ERR unknown request"),
        ("binary", bytes(range(1, 10)) + bytes(range(11, 256)) + b"\n", "ERR request longer than"),
        ("short binary", b"\xff\xfe\x00\x01\n", "ERR unknown request"),
        ("other version", b"GSCTL 7 SNAPSHOT\n", "ERR protocol version 1 not supported"),
        ("empty line", b"\n", "ERR unknown request"),
    ]
    for name, payload, want in cases:
        got = ask(pid, payload)
        check(want in got, "%s request: '%s'" % (name, got))
    check(ask(pid, b"GSCTL 1 PING\n") == "GSCTL 1 OK 0", "a well-formed PING still answers OK")


def test_job_survives_and_ends_by_sigterm(job):
    try:
        check(job.p.poll() is None, "the job is still running after all of it")
    finally:
        job.p.terminate()
    job.p.wait(timeout=60)
    check(job.p.returncode == -15, "the job ends as SIGTERM ends it (%d)" % job.p.returncode)
