"""CPU benchmark of issue 15's figures, each beside its target and the physical limit, in one run.

  codec GB/s on one core (fp32 and bf16 at 4 bits; each path of the CPU twin) beside memcpy on
  one core; pack/unpack microseconds per call; ns the shim adds per alloc+free pair; and
  examples/train.py under the shim vs without it (wall time ratio and peak RSS), in interleaved
  pairs. With --before OLD_LIB, the library-level figures of an older libgactshim.so are measured
  in the same run, interleaved with the current one.
Not a test: timings on a shared machine are noisy; medians are reported, with the load average.
Usage: .venv/bin/python bench/cpu/speed.py [--build build] [--before LIB] [--pairs 3] [--steps 60]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Pack/unpack per call (thread CPU time), in a child under LD_PRELOAD: the engine module's hooks,
# called directly as PyTorch would: kept tensors, duplicates, and 1 MiB fp32 tensors at 4 bits.
HOOKS = r"""
import gc, json, sys, time, torch
torch.set_num_threads(1)
m = sys.modules["_gactshim"]
def per_call(fn, items, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.thread_time()  # CPU time: a loaded shared machine inflates wall time
        out = [fn(x) for x in items]
        best = min(best, (time.thread_time() - t0) / len(items))
        del out
    return best * 1e6
# Activations, as autograd saves them: outputs of an op on a tensor that requires grad. (Leaves
# are skipped as parameters: plain torch.randn tensors would time the skip, not the codec.)
w_small, w_big = torch.randn(16, 16, requires_grad=True), torch.randn(512, 512, requires_grad=True)
small = [w_small * 1.0 for _ in range(2000)]
big = [w_big * 1.0 for _ in range(16)]
def counted(key, fn):
    before = m.stats()
    fn()
    after = m.stats()
    if key in after["skipped"]:
        return after["skipped"][key] - before["skipped"][key]
    return after[key] - before[key]
r = {}
n_small = counted("small", lambda: r.__setitem__("pack kept", per_call(m.pack, small)))
hs = [m.pack(t) for t in small]
r["pack duplicate"] = per_call(m.pack, small)
r["unpack kept"] = per_call(m.unpack, hs)
n_big = counted("compressed", lambda: r.__setitem__("pack 1 MiB @4 bits", per_call(m.pack, big)))
hb = [m.pack(t) for t in big]
# The unpacked tensor dies after .sum(), so every call decodes (a live one would be reused).
n_dec = counted("unpacked", lambda: r.__setitem__("unpack 1 MiB @4 bits", per_call(lambda h: m.unpack(h).sum(), hb)
                                                  - per_call(lambda t: t.sum(), big)))
if n_small != 5 * len(small) or n_big != 5 * len(big) or n_dec != 5 * len(big):
    sys.exit("hooks bench: the packs/unpacks did not take the measured path (kept as small %d, "
             "compressed %d, decoded %d; want %d, %d, %d)" % (n_small, n_big, n_dec, 5 * len(small),
             5 * len(big), 5 * len(big)))
print(json.dumps(r))
"""


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def codec(build, bits=4, group=256):
    out = subprocess.run([os.path.join(build, "bench/kernels/codec-cpu"), "64", str(bits), str(group)],
                         capture_output=True, text=True, check=True).stdout
    res, memcpy = {}, []
    for line in out.splitlines():
        m = re.match(r"codec (\S+) (\S+) bits=(\d) compress=([\d.]+) decompress=([\d.]+)", line)
        if m:
            res[(m[1], m[2])] = (float(m[4]), float(m[5]))
        m = re.match(r"memcpy GB/s=([\d.]+)", line)
        if m:
            memcpy.append(float(m[1]))
        m = re.match(r"meta ns/group=([\d.]+)", line)
        if m:
            res["meta"] = float(m[1])
    return res, memcpy


def hooks(python, lib):
    env = dict(os.environ, LD_PRELOAD=lib, GACTSHIM_QUIET="1")
    p = subprocess.run([python, "-c", HOOKS], env=env, capture_output=True, text=True, check=True)
    import json
    return json.loads(p.stdout.strip().splitlines()[-1])


def interpose(build, lib):
    out = subprocess.run([os.path.join(build, "bench/shim/bench_interpose"), lib,
                          os.path.join(build, "tests/standin")], capture_output=True, text=True,
                         check=True).stdout
    return {int(m[1]): float(m[2]) for m in re.finditer(r"threads=(\d) .*added=([-\d.]+) ns", out)}


def train(python, lib, steps):
    """(wall s, max RSS after exit MiB, peak RSS before exit MiB, CPU s) of one examples/train.py run.
    The first includes the interpreter's teardown (libtorch's destructors touch ~100 MiB of pages
    that training never used); the second is the job's own high-water mark, printed by train.py."""
    env = dict(os.environ, GACTSHIM_QUIET="1")
    if lib:
        env["LD_PRELOAD"] = lib
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([python, os.path.join(ROOT, "examples/train.py"), "--steps", str(steps),
                              "--log-every", str(steps)], env=env, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        if status != 0:
            sys.exit("train.py failed (%s): %s" % (status, err.read().decode()[-2000:]))
        m = re.search(rb"peak RSS before exit: ([\d.]+) MiB", out.read())
    return wall, ru.ru_maxrss / 1024.0, float(m[1]) if m else float("nan"), ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--before", help="an older libgactshim.so, measured interleaved with the build's")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--python", default=os.path.join(ROOT, ".venv/bin/python"))
    ap.add_argument("--parts", default="codec,hooks,interpose,train",
                    help="comma-separated subset of codec,hooks,interpose,train")
    ap.add_argument("--threads", type=int, default=1,
                    help="OMP_NUM_THREADS for every child (1: fairer on a loaded shared machine)")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    unknown = parts - {"codec", "hooks", "interpose", "train"}
    if unknown:
        sys.exit("--parts: unknown %s; accepted: codec,hooks,interpose,train" % ",".join(sorted(unknown)))
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    lib = os.path.abspath(os.path.join(a.build, "shim/libgactshim.so"))
    libs = {"now": lib}
    if a.before:
        libs = {"before": os.path.abspath(a.before), "now": lib}
    print("load average at start: %s" % load_average())

    if "codec" in parts:
        print_codec(a.build)
    if parts & {"hooks", "interpose"}:
        print_hooks(a, libs, parts)
    if "train" in parts:
        print_train(a, lib)
    print("\nload average at end: %s" % load_average())


def print_codec(build):
    res, memcpy = codec(build)
    lim = max(memcpy)
    print("\n## Codec, one core (thread CPU time; GB/s of the uncompressed tensor)")
    print("| figure | portable | AVX2 | target | limit: memcpy, one core |")
    print("|---|---|---|---|---|")
    for dt in ("f32", "bf16"):
        for k, name in ((0, "compress"), (1, "decompress")):
            tgt = (">= 4" if k == 0 else ">= 8") if dt == "f32" else "-"
            cells = ["%.2f" % res[(p, dt)][k] if (p, dt) in res else "n/a" for p in ("portable", "avx2")]
            print("| %s %s @4 bits | %s | %s | %s GB/s | %.2f GB/s (runs: %s) |"
                  % (dt, name, cells[0], cells[1], tgt, lim, ", ".join("%.2f" % m for m in memcpy)))
    print("scalar group metadata: %.1f ns per group of 256 (shared with the GPU, codec_core.h)" % res["meta"])
    # 8 bits encodes in groups of 32 (policy/model.c gs__group_at_bits): no target in the issue,
    # shown so that what the engine runs at 8 bits is measured too.
    res8, memcpy8 = codec(build, 8, 32)
    print("\n8 bits in groups of 32, as the engine encodes 8 bits (no target; memcpy runs: %s GB/s)"
          % ", ".join("%.2f" % m for m in memcpy8))
    print("| figure | portable | AVX2 |")
    print("|---|---|---|")
    for dt in ("f32", "bf16"):
        for k, name in ((0, "compress"), (1, "decompress")):
            cells = ["%.2f" % res8[(p, dt)][k] if (p, dt) in res8 else "n/a" for p in ("portable", "avx2")]
            print("| %s %s @8 bits, g32 | %s | %s |" % (dt, name, cells[0], cells[1]))



def print_hooks(a, libs, parts):
    hk = {k: [] for k in libs}
    ip = {k: [] for k in libs}
    for _ in range(a.pairs):
        for k, path in libs.items():
            if "hooks" in parts:
                hk[k].append(hooks(a.python, path))
            if "interpose" in parts:
                ip[k].append(interpose(a.build, path))
    if "hooks" in parts:
        print_hook_table(a, libs, hk)
    if "interpose" in parts:
        print_interpose_table(libs, ip)


def print_hook_table(a, libs, hk):
    print("\n## Pack/unpack per call (thread CPU µs, best of 5 in a run, median of %d runs per library, "
          "interleaved)" % a.pairs)
    print("| figure | %s | target |" % " | ".join(libs))
    print("|---|%s---|" % ("---|" * len(libs)))
    for f in hk["now"][0]:
        print("| %s | %s | lower than before |" % (f, " | ".join("%.2f" % median([r[f] for r in hk[k]]) for k in libs)))


def print_interpose_table(libs, ip):
    print("\n## Interposition: ns added per cuMemAlloc_v2+cuMemFree_v2 pair (stand-in driver)")
    print("| threads | %s | target |" % " | ".join(libs))
    print("|---|%s---|" % ("---|" * len(libs)))
    for t in (1, 4):
        print("| %d | %s | <= 100 ns |" % (t, " | ".join("%.1f" % median([r[t] for r in ip[k]]) for k in libs)))



def print_train(a, lib):
    runs = {"without": [], "shim": []}
    for _ in range(a.pairs):
        runs["without"].append(train(a.python, None, a.steps))
        runs["shim"].append(train(a.python, lib, a.steps))
    w = {k: median([r[0] for r in v]) for k, v in runs.items()}
    exit_rss = {k: max(r[1] for r in v) for k, v in runs.items()}
    rss = {k: max(r[2] for r in v) for k, v in runs.items()}
    cpu = {k: median([r[3] for r in v]) for k, v in runs.items()}
    print("\n## examples/train.py --steps %d, OMP_NUM_THREADS=%d, %d interleaved pairs (medians; peak RSS: max)"
          % (a.steps, a.threads, a.pairs))
    print("| figure | without | under the shim | ratio | target |")
    print("|---|---|---|---|---|")
    print("| wall time | %.2f s | %.2f s | %.2fx | <= 1.25x |" % (w["without"], w["shim"], w["shim"] / w["without"]))
    print("| CPU time | %.2f s | %.2f s | %.2fx | - |" % (cpu["without"], cpu["shim"], cpu["shim"] / cpu["without"]))
    print("| peak RSS before exit | %.1f MiB | %.1f MiB | %.3fx | no higher |" % (rss["without"], rss["shim"], rss["shim"] / rss["without"]))
    print("| max RSS incl. teardown | %.0f MiB | %.0f MiB | %.2fx | - |" % (exit_rss["without"], exit_rss["shim"], exit_rss["shim"] / exit_rss["without"]))
    for k in runs:
        print("%s: wall %s; peak RSS before exit %s" % (k, ["%.2f" % r[0] for r in runs[k]], ["%.1f" % r[2] for r in runs[k]]))

if __name__ == "__main__":
    main()
