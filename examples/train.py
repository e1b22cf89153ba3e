#!/usr/bin/env python3
# train.py: a real small training job to run under the shim, unchanged:
#     LD_PRELOAD=<build>/shim/libgactshim.so python3 examples/train.py [--steps N]
# A 2-block character-level transformer learns the Python standard library's own source text (read
# from this machine; nothing is downloaded). Runs on CUDA when present, else on the CPU.
import argparse
import glob
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(causal, float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class CharModel(nn.Module):
    def __init__(self, vocab=128, d=128, blocks=2, ctx=64, heads=4):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(ctx, d))
        self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(blocks)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        return self.head(self.ln(self.blocks(self.tok(idx) + self.pos[: idx.shape[1]])))


def stdlib_text(limit=2_000_000):
    chunks, n = [], 0
    for path in sorted(glob.glob("/usr/lib/python3*/*.py")) or sorted(glob.glob(sys.prefix + "/lib/python3*/*.py")):
        with open(path, "rb") as f:
            data = bytes(c for c in f.read() if c < 128)
        chunks.append(data)
        n += len(data)
        if n >= limit:
            break
    return torch.tensor(list(b"".join(chunks)[:limit]), dtype=torch.long)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--log-every", type=int, default=25)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    data = stdlib_text()
    model = CharModel(ctx=args.ctx).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    print("device %s, %d chars of stdlib source, %d parameters" % (dev, len(data), sum(p.numel() for p in model.parameters())))
    t0, recent = time.time(), []
    for step in range(1, args.steps + 1):
        ix = torch.randint(0, len(data) - args.ctx - 1, (args.batch,), generator=g)
        x = torch.stack([data[i:i + args.ctx] for i in ix]).to(dev)
        y = torch.stack([data[i + 1:i + args.ctx + 1] for i in ix]).to(dev)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent.append(loss.item())
        if step % args.log_every == 0:
            print("step %5d  loss %.4f  (%.1f s)" % (step, sum(recent) / len(recent), time.time() - t0), flush=True)
            recent = []
    shim = sys.modules.get("_gactshim")
    if shim is None:
        print("gactshim not loaded (run with LD_PRELOAD=.../libgactshim.so)")
    else:
        s = shim.stats()
        ratio = s["bytes_original"] / s["bytes_compressed"] if s["bytes_compressed"] else 0.0
        print("gactshim: %d saved tensors, %d compressed (%.1f MiB -> %.1f MiB, %.1fx), %d decompressed, skipped %s"
              % (s["packed"], s["compressed"], s["bytes_original"] / 2**20, s["bytes_compressed"] / 2**20, ratio,
                 s["unpacked"], {k: v for k, v in s["skipped"].items() if v}))
    if dev.type == "cuda":
        print("torch.cuda.max_memory_allocated: %.1f MiB" % (torch.cuda.max_memory_allocated() / 2**20))
    hwm = peak_rss_kib()
    if hwm is not None:
        print("peak RSS before exit: %.1f MiB" % (hwm / 1024))


def peak_rss_kib():
    """The process's resident high-water mark so far (Linux), read before the interpreter exits:
    tearing down libtorch touches ~100 MiB of its never-used pages, so the maximum RSS a parent
    sees after exit measures the teardown, not the training."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


if __name__ == "__main__":
    main()
