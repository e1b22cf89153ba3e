"""mp_job.py: a training process that starts children, for test_multiproc.py. Usage: mp_job.py CASE
CASE: dataloader-fork | dataloader-spawn (DataLoader workers that only make data), pool-fork |
pool-spawn (children that train and report how many saved tensors their own pass packed), exec (a
non-Python child via subprocess). Prints one JSON line with what it measured."""
import gc
import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading

import torch
import torch.nn.functional as F


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 10))


def shim_stats():
    mod = sys.modules.get("_gactshim")
    return mod.stats() if mod else None


def one_step(m, x, y):
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    return loss.item()


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 8 * 256

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.randn(128, generator=g), i % 10


def finalized_before_exit(fn, *args):
    """fn(*args), then every semaphore it made finalized before the interpreter exits.
    A named semaphore's finalizer unlinks it, then tells multiprocessing's resource tracker. It
    runs in whichever thread drops the last reference or starts a collection; for a Queue's locks
    that is often its daemon feeder thread, whose frame holds them. If the interpreter exits while
    that thread is between the two steps, the thread is stopped there, and the tracker warns at
    its own exit about a "leaked" semaphore that it then fails to unlink (docs/reliability.md):
    CPython's race, not the shim's. So the cyclic GC is paused (no collection starts in another
    thread), the feeder threads are waited for, and the garbage is collected in this thread."""
    gc.disable()
    try:
        return fn(*args)
    finally:
        for t in threading.enumerate():
            if t.name == "QueueFeederThread":
                t.join(60)
        gc.collect()
        gc.enable()


def dataloader(ctx):
    m = model()
    loader = torch.utils.data.DataLoader(Data(), batch_size=256, num_workers=2, multiprocessing_context=ctx)
    losses = [one_step(m, x, y) for x, y in loader]
    return {"steps": len(losses), "loss": losses[-1]}


def child_pass(_):
    """In a pool worker: one forward/backward; what this pass packed and compressed."""
    before = shim_stats()
    m = model()
    g = torch.Generator().manual_seed(7)
    loss = one_step(m, torch.randn(256, 128, generator=g), torch.randint(0, 10, (256,), generator=g))
    after = shim_stats()
    if before is None or after is None:
        return {"pid": os.getpid(), "loss": loss, "shim": False}
    return {"pid": os.getpid(), "loss": loss, "shim": True,
            "packed": after["packed"] - before["packed"], "compressed": after["compressed"] - before["compressed"]}


def pool(ctx):
    own = child_pass(0)  # the parent's pass first: forked children inherit a used shim
    with mp.get_context(ctx).Pool(2) as p:
        kids = p.map(child_pass, range(4))
    return {"parent": own, "children": kids}


def execs():
    out = subprocess.run(["/bin/sh", "-c", "echo child-ok; exit 3"], capture_output=True, text=True, timeout=60)
    ls = subprocess.run(["ls", "/"], capture_output=True, text=True, timeout=60)
    own = child_pass(0)
    return {"sh_out": out.stdout.strip(), "sh_rc": out.returncode, "ls_rc": ls.returncode,
            "ls_err": ls.stderr, "sh_err": out.stderr, "parent": own}


if __name__ == "__main__":
    case = sys.argv[1]
    if case.startswith("dataloader-"):
        res = finalized_before_exit(dataloader, case.split("-")[1])
    elif case.startswith("pool-"):
        res = finalized_before_exit(pool, case.split("-")[1])
    else:
        res = execs()
    print(json.dumps(res), flush=True)
