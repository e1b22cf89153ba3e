"""CPU benchmark: the 8-bit gradient error of a zoo case per GACTSHIM_GROUP, worst parameters first.

Behind the codec-group rule (shim/engine/group.c, docs/policies.md): a group that straddles two
rows of different scale gives the small row the large row's rounding step. For each group size
given, fresh processes train the zoo case one step exact and at 8 bits (tests/zoo/zoo.py) and this
prints the four parameters whose gradients are furthest from exact (relative, the zoo's floor).
GACTSHIM_GROUP is the largest group; each tensor's group is aligned to its rows below it.
Usage: LD_PRELOAD=build/shim/libgactshim.so GS_SHIM=build/shim/libgactshim.so \\
       .venv/bin/python bench/cpu/group_align.py vit-tiny 256,192,64
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "zoo"))
import zoo  # noqa: E402  (it puts tests/engine on the path too)
import gsutil  # noqa: E402


def worst_params(exact, got, n=4):
    """The n largest per-parameter relative errors, with the zoo's floor (gsutil.rel_errors)."""
    names = sorted(exact)
    errs = gsutil.rel_errors([got[k] for k in names], [exact[k] for k in names])
    return sorted(zip(errs, names), reverse=True)[:n]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    case = sys.argv[1]
    for group in sys.argv[2].split(","):
        env = {"GACTSHIM_GROUP": group}
        exact = zoo.run_setting(case, "exact", 1, env)["grads"]
        bits8 = zoo.run_setting(case, "bits8", 1, env)["grads"]
        print("%s GACTSHIM_GROUP=%s: %s" % (case, group, ", ".join("%.4f %s" % e for e in worst_params(exact, bits8))),
              flush=True)


if __name__ == "__main__":
    main()
