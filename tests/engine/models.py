# models.py: small but real models for the tests and the example (MLP, CNN, transformer, char LM).
import glob
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    def __init__(self, d_in=512, width=512, depth=3, d_out=10):
        super().__init__()
        dims = [d_in] + [width] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.head = nn.Linear(width, d_out)

    def forward(self, x):
        for layer in self.layers:
            x = F.relu(layer(x))
        return self.head(x)


class CNN(nn.Module):
    def __init__(self, c=16, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * c)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(2 * c * 8 * 8, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(self.drop(x.flatten(1)))


class Block(nn.Module):
    """Pre-norm transformer block: causal multi-head attention and a GELU MLP."""

    def __init__(self, d=128, heads=4):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def attention(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class CharLM(nn.Module):
    def __init__(self, vocab=128, d=128, blocks=2, ctx=64):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(ctx, d))
        self.blocks = nn.ModuleList(Block(d) for _ in range(blocks))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


def stdlib_text(max_bytes=2_000_000):
    """ASCII text of the Python standard library's own sources (a fixed, sorted subset)."""
    files = sorted(glob.glob("/usr/lib/python3*/*.py"))
    out, n = [], 0
    for path in files:
        with open(path, "rb") as f:
            data = bytes(c for c in f.read() if c < 128)
        out.append(data)
        n += len(data)
        if n >= max_bytes:
            break
    return torch.tensor(list(b"".join(out)[:max_bytes]), dtype=torch.long)


def char_batches(data, steps, batch, ctx, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ix = torch.randint(0, len(data) - ctx - 1, (batch,), generator=g)
        x = torch.stack([data[i:i + ctx] for i in ix])
        y = torch.stack([data[i + 1:i + ctx + 1] for i in ix])
        yield x, y


def fit(model, batches, lr=3e-3, device="cpu", after_step=None):
    """AdamW on next-character cross-entropy over (x, y) batches; returns the losses.
    after_step(step, losses) runs after each optimizer step."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step, (x, y) in enumerate(batches):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if after_step:
            after_step(step, losses)
    return losses


def train_char(steps=300, batch=32, ctx=64, seed=0, device="cpu", log_every=0, lr=3e-3):
    """Trains CharLM on stdlib text; returns the mean loss of the last 20 steps."""
    torch.manual_seed(seed)
    data = stdlib_text()
    model = CharLM(ctx=ctx).to(device)

    def log(step, losses):
        if log_every and (step + 1) % log_every == 0:
            print("step %4d  loss %.4f" % (step + 1, sum(losses[-log_every:]) / log_every), flush=True)
    losses = fit(model, char_batches(data, steps, batch, ctx, seed), lr=lr, device=device, after_step=log)
    tail = losses[-20:]
    return sum(tail) / len(tail)


class CheckpointedCharLM(CharLM):
    """CharLM with activation checkpointing per block (reentrant, as torch 1.13 defaults): the
    blocks' activations are recomputed and saved again in backward, one block at a time."""

    def forward(self, idx):
        from torch.utils.checkpoint import checkpoint
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        for blk in self.blocks:
            x = checkpoint(blk, x, use_reentrant=True)
        return self.head(self.ln(x))
