"""gpu_job.py: the GPU reliability cases, run under the shim by test_gpu.py. Usage: gpu_job.py CASE
CASE: train (a few CUDA steps; prints the losses), graph (forward+backward captured in a CUDA graph
and replayed; prints the graph's and eager exact gradients' relative error), oom (asks for far more
memory than the GPU has; prints the exception's type and first line)."""
import json
import sys

import torch
import torch.nn.functional as F

dev = torch.device("cuda")
torch.manual_seed(0)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 10)).to(dev)


def data():
    g = torch.Generator(device=dev).manual_seed(1)
    return torch.randn(512, 1024, device=dev, generator=g), torch.randint(0, 10, (512,), device=dev, generator=g)


def train():
    m, (x, y) = model(), data()
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses}


def graph():
    m, (x, y) = model(), data()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        exact = torch.autograd.grad(F.cross_entropy(m(x), y), list(m.parameters()))
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up on a side stream, as torch.cuda.graph requires
        for _ in range(3):
            m.zero_grad(set_to_none=True)
            F.cross_entropy(m(x), y).backward()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    m.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        F.cross_entropy(m(x), y).backward()
    g.replay()
    torch.cuda.synchronize()
    got = [p.grad for p in m.parameters()]
    floor = 0.01 * torch.sqrt(sum((e * e).sum() for e in exact))
    err = max(float((a - b).norm() / max(b.norm(), floor)) for a, b in zip(got, exact))
    return {"error": err, "stats": sys.modules["_gactshim"].stats() if "_gactshim" in sys.modules else None}


def oom():
    try:
        torch.empty(1 << 50, dtype=torch.uint8, device=dev)
    except Exception as e:  # noqa: BLE001 - the type and message are the result
        return {"type": type(e).__name__, "first": str(e).splitlines()[0][:60]}
    return {"type": None}


print(json.dumps({"train": train, "graph": graph, "oom": oom}[sys.argv[1]]()), flush=True)
