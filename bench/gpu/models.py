"""Benchmark workloads: models with random weights on synthetic inputs, and two small
convergence tasks on real data that ships with the machine (nothing is downloaded).

Each model prefers the library implementation the issue names (torchvision ResNet-50,
transformers GPT-2, torch_geometric GCN) and falls back to an equivalently shaped model
defined here when the package is missing; `Workload.impl` records which one ran.
`size` is "full" (the benchmark shapes) or "tiny" (CPU dry runs and smoke tests).
"""
import dataclasses
import math
import os
from typing import Callable, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass
class Workload:
    name: str
    impl: str                      # which implementation ran (library or harness fallback)
    model: nn.Module
    blocks: List[nn.Module]        # the units torch.utils.checkpoint wraps in 'checkpoint'
    make_batch: Callable           # (batch, device) -> inputs, built once per process
    loss: Callable                 # (model, inputs) -> scalar loss
    optimizer: Callable            # (params) -> torch.optim.Optimizer
    amp_dtype: Optional[torch.dtype]
    unit: str                      # what one "batch" element is: images, sequences, nodes


# (fixed batch, max-batch cap) per size: the fixed batch is the "same batch" of the memory
# and throughput targets; the cap bounds the max-batch search.
SPECS = {
    "resnet50": {"full": (256, 8192), "tiny": (4, 32)},
    "resnet50-amp": {"full": (256, 8192), "tiny": (4, 32)},
    "resnet50-bf16": {"full": (256, 8192), "tiny": (4, 32)},  # bf16 autocast (bench/gpu/check.sh)
    "gpt2": {"full": (16, 1024), "tiny": (2, 16)},
    "gcn": {"full": (262144, 1 << 25), "tiny": (512, 16384)},
}
BENCH_MODELS = list(SPECS)
CONVERGENCE_TASKS = ["digits-cnn", "char-transformer"]


def _has(module):
    try:
        __import__(module)
        return True
    except Exception:  # a broken install counts as missing: fall back
        return False


# ---------------------------------------------------------------- ResNet-50
class _Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet50Shaped(nn.Module):
    """ResNet-50 v1.5 layout (bottlenecks [3,4,6,3], stride in the 3x3), like torchvision's."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for width, n, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            for i in range(n):
                layers.append(_Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _resnet50(name, size):
    if _has("torchvision"):
        import torchvision
        model = torchvision.models.resnet50(weights=None)
        blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]
        impl = "torchvision.models.resnet50 (torchvision %s)" % torchvision.__version__
    else:
        model = ResNet50Shaped()
        blocks = list(model.layers)
        impl = "harness ResNet50Shaped (torchvision missing)"
    hw = 224 if size == "full" else 32

    def make_batch(batch, device):
        g = torch.Generator(device="cpu").manual_seed(0)
        x = torch.randn(batch, 3, hw, hw, generator=g).to(device)
        y = torch.randint(0, 1000, (batch,), generator=g).to(device)
        return x, y

    return Workload(name, impl + ", %dx%d" % (hw, hw), model, blocks, make_batch,
                    lambda m, b: F.cross_entropy(m(b[0]), b[1]),
                    lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
                    None, "images")


# ---------------------------------------------------------------- GPT-2-shaped transformer
class _Block(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if hasattr(F, "scaled_dot_product_attention"):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            a = s.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


class GPTShaped(nn.Module):
    """Pre-LayerNorm decoder like GPT-2: learned positions, GELU MLP, tied output embedding."""

    def __init__(self, vocab, seq, d, layers, heads, dropout=0.1):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(_Block(d, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases."""
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x) @ self.tok.weight.t()


def _gpt2(name, size):
    vocab, seq, d, layers, heads = (50257, 1024, 768, 12, 12) if size == "full" else (1024, 64, 128, 2, 4)
    if _has("transformers"):
        import transformers
        cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=seq, n_embd=d, n_layer=layers,
                                      n_head=heads, use_cache=False)
        model = transformers.GPT2LMHeadModel(cfg)
        blocks = list(model.transformer.h)
        impl = "transformers.GPT2LMHeadModel (transformers %s)" % transformers.__version__

        def loss(m, b):
            return m(input_ids=b, labels=b).loss
    else:
        model = GPTShaped(vocab, seq, d, layers, heads)
        blocks = list(model.blocks)
        impl = "harness GPTShaped (transformers missing)"

        def loss(m, b):
            logits = m(b)
            return F.cross_entropy(logits[:, :-1].reshape(-1, vocab).float(), b[:, 1:].reshape(-1))

    def make_batch(batch, device):
        g = torch.Generator(device="cpu").manual_seed(0)
        return torch.randint(0, vocab, (batch, seq), generator=g).to(device)

    return Workload(name, impl + ", %d layers, d=%d, seq %d" % (layers, d, seq), model, blocks,
                    make_batch, loss, lambda p: torch.optim.AdamW(p, lr=1e-4),
                    torch.bfloat16, "sequences")


# ---------------------------------------------------------------- GCN
class SparseGCN(nn.Module):
    """Two GCN layers, relu + dropout between, A_hat = D^-1/2 (A+I) D^-1/2 as a sparse matmul."""

    def __init__(self, cin, hidden, classes):
        super().__init__()
        self.lin1 = nn.Linear(cin, hidden)
        self.lin2 = nn.Linear(hidden, classes)
        # A plain list (not registered): checkpoint wrapping replaces these modules' forward.
        self.layers = [_Callable(self._layer1), _Callable(self._layer2)]

    def _layer1(self, x, adj):
        return F.dropout(F.relu(torch.sparse.mm(adj, self.lin1(x))), 0.5, self.training)

    def _layer2(self, x, adj):
        return torch.sparse.mm(adj, self.lin2(x))

    def forward(self, x, adj):
        for layer in self.layers:
            x = layer(x, adj)
        return x


class _PygGCN(nn.Module):
    def __init__(self, cin, hidden, classes):
        super().__init__()
        from torch_geometric.nn import GCNConv
        self.conv1 = GCNConv(cin, hidden)
        self.conv2 = GCNConv(hidden, classes)

    def forward(self, x, edge_index):
        x = F.dropout(F.relu(self.conv1(x, edge_index)), 0.5, self.training)
        return self.conv2(x, edge_index)


class _Callable(nn.Module):
    """Gives a plain function the forward() that checkpoint wrapping replaces."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _gcn(name, size):
    cin, hidden, classes, degree = (128, 256, 16, 16) if size == "full" else (32, 64, 8, 8)
    pyg = _has("torch_geometric")
    if pyg:
        import torch_geometric
        model = _PygGCN(cin, hidden, classes)
        blocks = [model.conv1, model.conv2]
        impl = "torch_geometric GCNConv x2 (torch_geometric %s)" % torch_geometric.__version__
    else:
        model = SparseGCN(cin, hidden, classes)
        blocks = model.layers
        impl = "harness SparseGCN x2 with torch.sparse.mm (torch_geometric missing)"

    def make_batch(batch, device):
        g = torch.Generator(device="cpu").manual_seed(0)
        src = torch.randint(0, batch, (batch * degree,), generator=g)
        dst = torch.randint(0, batch, (batch * degree,), generator=g)
        x = torch.randn(batch, cin, generator=g).to(device)
        y = torch.randint(0, classes, (batch,), generator=g).to(device)
        if pyg:
            return x, torch.stack([src, dst]).to(device), y
        loops = torch.arange(batch)
        row, col = torch.cat([src, loops]), torch.cat([dst, loops])
        deg = torch.zeros(batch).index_add_(0, row, torch.ones(row.numel()))
        val = deg[row].rsqrt() * deg[col].rsqrt()
        adj = torch.sparse_coo_tensor(torch.stack([row, col]), val, (batch, batch)).coalesce().to(device)
        return x, adj, y

    return Workload(name, impl + ", %d->%d->%d, avg degree %d" % (cin, hidden, classes, degree),
                    model, blocks, make_batch,
                    lambda m, b: F.cross_entropy(m(b[0], b[1]), b[2]),
                    lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), None, "nodes")


def build(name, size):
    """The benchmark workload `name` at `size` ("full" or "tiny")."""
    if name in ("resnet50", "resnet50-amp", "resnet50-bf16"):
        w = _resnet50(name, size)
        if name != "resnet50":
            w.amp_dtype = torch.float16 if name == "resnet50-amp" else torch.bfloat16
        return w
    if name == "gpt2":
        return _gpt2(name, size)
    if name == "gcn":
        return _gcn(name, size)
    raise ValueError("unknown model %r (known: %s)" % (name, ", ".join(BENCH_MODELS)))


# ---------------------------------------------------------------- convergence on real data
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.f1 = nn.Linear(64 * 4 * 4, 128)
        self.f2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        return self.f2(F.relu(self.f1(x.flatten(1))))


def digits_data(device):
    """sklearn's bundled 8x8 digits: 1500 train / 297 test, fixed shuffle."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm].to(device), y[perm].to(device)
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])


def stdlib_text(max_bytes):
    """Bytes of the running interpreter's standard library .py files, in sorted path order."""
    root = os.path.dirname(os.__file__)
    chunks, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "dist-packages", "test", "tests"))
        for f in sorted(filenames):
            if f.endswith(".py") and total < max_bytes:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    data = fh.read()
                chunks.append(data)
                total += len(data)
    return b"".join(chunks)[:max_bytes], root
