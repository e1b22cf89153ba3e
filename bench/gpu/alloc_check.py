"""alloc_check.py: one PyTorch allocator backend under the shim, compared with the driver's view.

Run under LD_PRELOAD=libgactshim.so with GACTSHIM_STATS=<file> and PYTORCH_CUDA_ALLOC_CONF set as
the check wants (default, expandable_segments:True, backend:cudaMallocAsync). It allocates and
frees a known pattern, and prints one JSON line: PyTorch's reserved-memory figures and the device
memory the driver reports used (cuMemGetInfo), measured before the shim's exit statistics are
written, so that bench/gpu/check.py can compare them with the shim's `devices` figures. A
tensor is 8 MiB or more, so the backends round it alike (no small-block pool).
"""
import json
import sys


def main():
    import torch
    if not torch.cuda.is_available():
        print(json.dumps({"ok": False, "skipped": "no CUDA device"}))
        return 77
    torch.cuda.init()
    free0, total = torch.cuda.mem_get_info()
    sizes = [8 << 20, 24 << 20, 64 << 20, 8 << 20, 200 << 20]
    keep = [torch.empty(n, dtype=torch.uint8, device="cuda") for n in sizes]
    torch.cuda.synchronize()
    free1, _ = torch.cuda.mem_get_info()
    del keep[1:3]  # freed to the allocator: reserved stays (cached, or pooled)
    torch.cuda.synchronize()
    out = {
        "ok": True,
        "backend": torch.cuda.get_allocator_backend(),
        "requested_bytes": sum(sizes),
        "max_allocated": torch.cuda.max_memory_allocated(),
        "max_reserved": torch.cuda.max_memory_reserved(),
        "reserved_now": torch.cuda.memory_reserved(),
        "driver_used_growth": free0 - free1,
        "device_total": total,
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
