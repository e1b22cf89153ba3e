"""train_small.py: a small MLP trained on random data, for the timeline's integration tests.
Usage: train_small.py STEPS [SECONDS_PER_STEP] [--fork]. Prints "step N" after each step."""
import os
import sys
import time

import torch

steps = int(sys.argv[1])
pause = float(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else 0.0
torch.manual_seed(0)
torch.set_num_threads(1)
model = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 1024),
                            torch.nn.GELU(), torch.nn.Linear(1024, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01)


def step():
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


if "--fork" in sys.argv:
    pid = os.fork()
    if pid == 0:  # a child that trains too: it must not write into its parent's trace
        step()
        os._exit(0)
    os.waitpid(pid, 0)
for i in range(steps):
    step()
    print("step", i, flush=True)
    if pause:
        time.sleep(pause)
