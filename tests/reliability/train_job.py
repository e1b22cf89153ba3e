"""train_job.py: a small deterministic training job for the reliability tests, run under the shim.
Usage: train_job.py STEPS [--ddp] [--pause S] [--ready FILE] [--own-sigterm]. Prints "step N" per step
and, at the end, one JSON line {"loss": last, "losses": [...], "rank": r, "sigterm": Python's view of
the SIGTERM handler}. --own-sigterm installs a handler (exit status 7) after the first step. With --ddp it joins the process group
from MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE (gloo) and trains DistributedDataParallel."""
import json
import os
import signal
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine"))
import gsutil  # noqa: E402

args = sys.argv[1:]
steps = int(args[0])
ddp = "--ddp" in args
pause = float(args[args.index("--pause") + 1]) if "--pause" in args else 0.0
ready = args[args.index("--ready") + 1] if "--ready" in args else None

torch.manual_seed(0)
torch.set_num_threads(1)
rank, world = 0, 1
if ddp:
    import torch.distributed as dist
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

model = torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 512),
                            torch.nn.Tanh(), torch.nn.Linear(512, 10))
if ddp:
    model = torch.nn.parallel.DistributedDataParallel(model)
opt = torch.optim.SGD(model.parameters(), lr=0.05)

def say(line):
    """One write() per line: print() writes the text and its newline apart when stdout is
    unbuffered (torchrun's children), so two ranks' lines on one pipe could run together."""
    os.write(1, (line + "\n").encode())


def batch(i):
    """Batch i of a fixed data set, made on demand; each rank takes its share, as DistributedSampler
    would."""
    g = torch.Generator().manual_seed(1000 + i)
    x, y = torch.randn(256, 128, generator=g), torch.randint(0, 10, (256,), generator=g)
    return x[rank::world], y[rank::world]


losses = []
for i in range(steps):
    x, y = batch(i)
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if ddp:  # the global loss, so every rank reports the same number
        t = loss.detach().clone()
        gsutil.all_reduce_settled(t)
        losses.append(t.item() / world)
    else:
        losses.append(loss.item())
    say("step %d" % i)
    if i == 0 and "--own-sigterm" in args:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    if ready and i == 0:
        open(ready, "w").close()
    if pause:
        time.sleep(pause)
say(json.dumps({"loss": losses[-1], "losses": losses, "rank": rank,
                "sigterm": str(signal.getsignal(signal.SIGTERM))}))
if ddp:
    dist.destroy_process_group()
