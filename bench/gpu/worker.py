"""One measurement in a fresh process; prints exactly one JSON line on stdout.

Spawned by run.py (which sets LD_PRELOAD and GACTSHIM_* for the shim configs). The
config only changes this process for the two PyTorch baselines: 'checkpoint' wraps each
block in torch.utils.checkpoint, 'save_on_cpu' runs forward under
torch.autograd.graph.save_on_cpu. Measures:
  info        torch/device/package versions (no model)
  probe       train --steps steps at --batch; ok unless out of memory
  peak        one warm-up step, then --steps steps; peak memory of those steps
  throughput  --warmup steps, then --steps timed steps; median samples/s, plus peak memory
  converge    train a convergence task (digits-cnn, char-transformer) for --steps steps
Out of memory (CUDA, or host RSS over --mem-limit) prints {"ok": false, "oom": true, ...}
and exits 0; any other failure prints {"ok": false, "error": ...} and exits 1.
"""
import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

OOM_MARKERS = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED",
               "can't allocate memory", "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE")


class HostOOM(Exception):
    """The process went over --mem-limit bytes of resident memory."""


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def start_watchdog(limit):
    """Ends the process with an OOM record when RSS exceeds `limit` (host memory guard,
    and the stand-in for device memory in CPU dry runs). Sampled every 50 ms."""
    def watch():
        while True:
            if rss_bytes() > limit:
                emit({"ok": False, "oom": True, "host": True,
                      "error": "resident memory over the %d-byte limit" % limit})
                os._exit(0)  # the main thread is busy in torch; the shim's stats are lost
            time.sleep(0.05)
    threading.Thread(target=watch, daemon=True).start()


def check_host(limit):
    if limit and peak_rss_bytes() > limit:
        raise HostOOM("peak RSS %d over the %d-byte limit" % (peak_rss_bytes(), limit))


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def memory(device):
    out = {"peak_rss": peak_rss_bytes()}
    if device == "cuda":
        free, total = torch.cuda.mem_get_info()
        out.update(peak_alloc=torch.cuda.max_memory_allocated(), peak_reserved=torch.cuda.max_memory_reserved(),
                   base_alloc=torch.cuda.memory_allocated(), device_total=total)
    return out


def with_checkpoint(blocks):
    from torch.utils.checkpoint import checkpoint
    for blk in blocks:
        fwd = blk.forward

        def wrapped(*args, _fwd=fwd, **kwargs):
            return checkpoint(functools.partial(_fwd, **kwargs), *args, use_reentrant=False)
        blk.forward = wrapped


def forward_context(config, device):
    if config == "save_on_cpu":
        return torch.autograd.graph.save_on_cpu(pin_memory=(device == "cuda"))
    return contextlib.nullcontext()


def make_trainer(w, config, device):
    """A step() closure that trains one step and returns the loss tensor."""
    w.model.to(device).train()
    if config == "checkpoint":
        with_checkpoint(w.blocks)
    opt = w.optimizer(w.model.parameters())
    use_scaler = device == "cuda" and w.amp_dtype == torch.float16
    scaler = None
    if use_scaler:  # torch.amp.GradScaler("cuda") since 2.3; torch.cuda.amp's is deprecated there
        scaler = torch.amp.GradScaler("cuda") if hasattr(torch.amp, "GradScaler") else torch.cuda.amp.GradScaler()
    # CPU autocast only knows bf16: an fp16 AMP model runs bf16 autocast there.
    amp_dtype = w.amp_dtype if device == "cuda" or w.amp_dtype is None else torch.bfloat16

    def step(inputs):
        amp = torch.autocast(device, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with amp, forward_context(config, device):
            loss = w.loss(w.model, inputs)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        return loss
    return step


def bench(args):
    w = models.build(args.model, args.size)
    torch.manual_seed(0)
    step = make_trainer(w, args.config, args.device)
    inputs = w.make_batch(args.batch, args.device)
    res = {"ok": True, "impl": w.impl, "unit": w.unit, "batch": args.batch}
    if args.measure == "probe":
        for _ in range(args.steps):
            step(inputs)
        sync(args.device)
    else:
        warmup = args.warmup if args.measure == "throughput" else 1
        for _ in range(warmup):
            step(inputs)
        sync(args.device)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            loss = step(inputs)
            sync(args.device)
            times.append(time.perf_counter() - t0)
        res["loss"] = float(loss)
        if args.measure == "throughput":
            med = statistics.median(times)
            res.update(steps=len(times), step_s_median=med, samples_per_s=args.batch / med)
    check_host(args.mem_limit)
    res.update(memory(args.device))
    return res


def train_losses(opt, steps, step_loss):
    """Runs `steps` optimizer steps on step_loss() and returns the per-step losses."""
    losses = []
    for _ in range(steps):
        loss = step_loss()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
    return losses


def converge_digits(args):
    torch.manual_seed(args.seed)
    (xtr, ytr), (xte, yte) = models.digits_data(args.device)
    model = models.DigitsCNN().to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(args.seed)
    def step_loss():
        idx = torch.randint(0, len(ytr), (64,), generator=g).to(args.device)
        return F.cross_entropy(model(xtr[idx]), ytr[idx])

    losses = train_losses(opt, args.steps, step_loss)
    model.eval()
    with torch.no_grad():
        logits = model(xte)
        eval_loss = float(F.cross_entropy(logits, yte))
        acc = float((logits.argmax(1) == yte).float().mean())
    return {"ok": True, "impl": "DigitsCNN on sklearn load_digits (1500 train / 297 test)",
            "eval_loss": eval_loss, "eval_accuracy": acc, "train_loss_tail": tail_mean(losses)}


def converge_chars(args):
    torch.manual_seed(args.seed)
    tiny = args.size == "tiny"
    seq, d, layers, heads, batch = (64, 64, 2, 4, 16) if tiny else (256, 256, 4, 8, 64)
    text, root = models.stdlib_text(300_000 if tiny else 4_000_000)
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
    split = int(len(data) * 0.9)
    train, held = data[:split].to(args.device), data[split:].to(args.device)
    model = models.GPTShaped(256, seq, d, layers, heads, dropout=0.0).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(args.seed)

    def loss_at(src, starts):
        idx = starts.to(args.device)[:, None] + torch.arange(seq + 1, device=args.device)
        chunk = src[idx]
        logits = model(chunk[:, :-1])
        return F.cross_entropy(logits.reshape(-1, 256), chunk[:, 1:].reshape(-1))

    losses = train_losses(
        opt, args.steps, lambda: loss_at(train, torch.randint(0, len(train) - seq - 1, (batch,), generator=g)))
    model.eval()
    with torch.no_grad():
        starts = torch.linspace(0, len(held) - seq - 2, 32 if tiny else 256).long()
        eval_loss = float(loss_at(held, starts))
    return {"ok": True, "impl": "GPTShaped %d layers d=%d seq %d, bytes of %s (%d B)" % (layers, d, seq, root, len(text)),
            "eval_loss": eval_loss, "train_loss_tail": tail_mean(losses)}


def tail_mean(losses):
    """Mean of the last tenth of the training losses (at least one)."""
    k = max(1, len(losses) // 10)
    return sum(losses[-k:]) / k


def info(args):
    out = {"ok": True, "python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "host": platform.node(), "cpu_count": os.cpu_count(),
           "host_mem": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "packages": {}}
    for pkg in ("torchvision", "transformers", "torch_geometric", "sklearn"):
        try:
            out["packages"][pkg] = __import__(pkg).__version__
        except Exception as e:  # record why a fallback will be used
            out["packages"][pkg] = None
            out.setdefault("missing", {})[pkg] = "%s: %s" % (type(e).__name__, e)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda but torch.cuda.is_available() is False")
        props = torch.cuda.get_device_properties(0)
        out.update(device_name=props.name, device_total=props.total_memory)
    else:
        out["device_name"] = cpu_model()
    return out


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="")
    p.add_argument("--config", default="baseline")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--measure", required=True, choices=["info", "probe", "peak", "throughput", "converge"])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--size", default="full", choices=["full", "tiny"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mem-limit", type=int, default=0, help="host RSS bytes counted as out of memory (0: none)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mem_limit:
        start_watchdog(args.mem_limit)
    t0 = time.perf_counter()
    try:
        if args.measure == "info":
            res = info(args)
        elif args.measure == "converge":
            res = {"digits-cnn": converge_digits, "char-transformer": converge_chars}[args.model](args)
        else:
            res = bench(args)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        oom = isinstance(e, HostOOM) or any(m in str(e) for m in OOM_MARKERS)
        emit({"ok": False, "oom": oom, "error": "%s: %s" % (type(e).__name__, msg[:300])})
        sys.exit(0 if oom else 1)  # a normal exit: the shim writes its stats from a destructor
    res["worker_s"] = time.perf_counter() - t0
    emit(res)


if __name__ == "__main__":
    main()
