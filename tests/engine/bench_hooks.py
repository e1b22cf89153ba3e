# bench_hooks.py: cost per call of the C pack/unpack hooks (the per-tensor hot path), printed and
# checked against a generous bound: kept tensors (small, parameter), duplicates, and 1 MiB tensors
# compressed at 4 bits (codec included).
import time

import gsutil


def per_call(fn, items, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = [fn(x) for x in items]
        best = min(best, (time.perf_counter() - t0) / len(items))
        del out
    return best * 1e6


def test_hook_cost():
    import torch
    shim = gsutil.shim()
    torch.set_num_threads(1)
    # Activations (a grad_fn each): a tensor without one is kept as a parameter before any other read.
    leaf = torch.randn(16, 16, requires_grad=True)
    small = [leaf * 1 for _ in range(2000)]
    params = [torch.randn(16, 16, requires_grad=True) for _ in range(2000)]
    views = [p.t() for p in params]  # what Linear saves of its weight
    big = [torch.randn(512, 512, requires_grad=True) * 1 for _ in range(32)]  # 1 MiB each
    ident = lambda t: t  # noqa: E731
    res = {}
    res["python identity hook"] = per_call(ident, small)
    res["pack small (kept)"] = per_call(shim.pack, small)
    res["pack parameter (kept)"] = per_call(shim.pack, params)
    res["pack W.t() (kept)"] = per_call(shim.pack, views)
    hs = [shim.pack(t) for t in small]
    res["pack duplicate"] = per_call(shim.pack, small)
    res["unpack kept"] = per_call(shim.unpack, hs)
    res["pack 1 MiB @4 bits"] = per_call(shim.pack, big)
    hb = [shim.pack(t) for t in big]
    res["unpack 1 MiB @4 bits"] = per_call(lambda h: shim.unpack(h).sum(), hb) - per_call(lambda t: t.sum(), big)
    for k, v in res.items():
        print("%-24s %9.2f us/call" % (k, v))
    gsutil.check(res["pack small (kept)"] < 50, "pack of a kept tensor costs %.1f us (< 50)" % res["pack small (kept)"])
    gsutil.check(res["pack duplicate"] < 20, "pack of a duplicate costs %.1f us (< 20)" % res["pack duplicate"])
    gsutil.check(res["unpack kept"] < 20, "unpack of a kept tensor costs %.1f us (< 20)" % res["unpack kept"])
    gsutil.check(res["pack 1 MiB @4 bits"] < 20000, "pack of 1 MiB at 4 bits: %.0f us" % res["pack 1 MiB @4 bits"])
