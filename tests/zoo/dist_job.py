# dist_job.py: a tiny Llama-style causal LM trained by 2 ranks (torchrun, gloo on the CPU) with
# DistributedDataParallel or FSDP2's fully_shard. Usage: dist_job.py ddp|fsdp2 STEPS.
# Each rank prints one JSON line: the global loss of each step.
import json
import os
import sys

import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "engine")]
import gsutil  # noqa: E402
import zoo_cases  # noqa: E402


def wrap(mode, model):
    if mode == "ddp":
        return torch.nn.parallel.DistributedDataParallel(model)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def main(mode, steps):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    model = wrap(mode, zoo_cases.llama())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for batch in zoo_cases.text_batches(steps, batch=4 * world):
        loss = model(**{k: v[rank::world] for k, v in batch.items()}).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t = loss.detach().clone()
        gsutil.all_reduce_settled(t)
        losses.append(t.item() / world)
    shim = sys.modules.get("_gactshim")
    # One write() per line: both ranks share torchrun's stdout pipe, and print() writes the text
    # and its newline apart, so two ranks' lines could run together (seen once in CI).
    line = json.dumps({"rank": rank, "losses": losses,
                       "compressed": shim.stats()["compressed"] if shim else None}) + "\n"
    os.write(1, line.encode())
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
