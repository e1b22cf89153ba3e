#!/usr/bin/env python3
"""ptx_model.py: the codec kernels' bandwidth model, from the PTX that nvcc emits at build time.

Counts the instructions of the probe kernels in build/kernels/codec-probes.ptx (the straight-line
work of one whole aligned chunk of 8 elements, built from the kernels' own functions; see the end
of kernels/codec.cu) and turns them into instructions and bytes per element per kernel, and a
predicted fraction of device-to-device copy bandwidth on H100/H200.

  ptx_model.py PTX            print the table (markdown)
  ptx_model.py --check PTX    exit 1 if any instructions/element exceeds MODEL by more than 5 %
                              (the CI test kernels-ptx-model; no GPU needed)

Assumptions of the prediction (not measurements; no GPU has run these kernels):
- one PTX instruction ~ one SASS instruction issued per thread (ptxas may fuse or split a few);
- an SM issues at most 4 warp-instructions per clock (128 thread-instructions), of which a
  sustained ISSUE_EFF share is achievable in a memory-streaming kernel;
- H100 SXM / H200: 132 SMs at 1.755 GHz sustained; device-to-device copy reaches COPY_EFF of the
  HBM peak (3.35 TB/s H100, 4.8 TB/s H200), counting bytes read + written;
- the groups are the engine's (policy/model.c gs__group_at_bits): 256 elements at 2 and 4 bits,
  32 at 8 bits;
- compress holds 4 chunks (32 elements) per lane, so a lane pays its group's meta (the segment
  reduction over 8 lanes at G = 256, none at G = 32, + both candidate formats) once per 32
  elements; decompress decodes the meta word once per chunk (8 elements) and that cost is inside
  its probe;
- loop/index arithmetic (a few instructions per 32 elements) is not counted;
- a kernel runs at min(memory rate, issue rate): predicted % = min(1, issue rate x bytes/element
  / copy rate).
"""
import re
import sys

SMS, CLOCK = 132, 1.755e9
ISSUE_EFF, COPY_EFF = 0.7, 0.9
HBM = {"H100": 3.35e12, "H200": 4.8e12}
GROUP = {2: 256, 4: 256, 8: 32}  # elements per group at each width, as the engine encodes
CHUNKS_PER_LANE = 4
ESIZE = {"f32": 4, "f16": 2, "bf16": 2}

# The committed model: instructions per element, per kernel. The check fails when the PTX needs
# more than 5 % above these; lower the numbers here when the kernels get cheaper.
MODEL = {
    ("compress", "f32", 2): 39.0, ("compress", "f32", 4): 38.0, ("compress", "f32", 8): 37.5,
    ("compress", "f16", 2): 41.0, ("compress", "f16", 4): 40.0, ("compress", "f16", 8): 40.0,
    ("compress", "bf16", 2): 40.5, ("compress", "bf16", 4): 39.5, ("compress", "bf16", 8): 39.0,
    ("decompress", "f32", 2): 16.0, ("decompress", "f32", 4): 15.0, ("decompress", "f32", 8): 15.5,
    ("decompress", "f16", 2): 22.0, ("decompress", "f16", 4): 21.0, ("decompress", "f16", 8): 21.0,
    ("decompress", "bf16", 2): 22.0, ("decompress", "bf16", 4): 21.0, ("decompress", "bf16", 8): 21.0,
}


def entries(ptx):
    """{name: [instruction lines]} for every .entry of the PTX text."""
    out = {}
    for m in re.finditer(r"^\.visible \.entry (\w+)\((.*?)^\}", ptx, re.S | re.M):
        body = m.group(2).split("{", 1)[1] if "{" in m.group(2) else ""
        lines = []
        for raw in body.splitlines():
            line = raw.split("//")[0].strip()
            if not line or line.startswith(".") or line.endswith(":") or line in "{}":
                continue
            line = re.sub(r"^@!?%\w+\s+", "", line)  # a predicate guard is part of its instruction
            if line.startswith(("ld.param", "ret")):  # the probe's own parameters and exit
                continue
            lines.append(line)
        out[m.group(1)] = lines
    return out


def counts(ptx):
    """{(kernel, dtype, bits): instructions per element} from the probes."""
    e = entries(ptx)
    res = {}
    for (kernel, dt, bits) in MODEL:
        if kernel == "compress":
            chunk = len(e["gs_probe_compress_%s_b%d" % (dt, bits)])
            lanes = max(1, GROUP[bits] // (8 * CHUNKS_PER_LANE))
            meta = len(e["gs_probe_meta_b%d_l%d" % (bits, lanes)])
            res[(kernel, dt, bits)] = (chunk + meta / CHUNKS_PER_LANE) / 8
        else:
            res[(kernel, dt, bits)] = len(e["gs_probe_decompress_%s_b%d" % (dt, bits)]) / 8
    return res


def bytes_per_element(kernel, dt, bits):
    """Bytes read + written per element: the tensor, the packed levels, the metas (4 B/group)."""
    return ESIZE[dt] + bits / 8 + 4 / GROUP[bits]


def predicted(instr, nbytes, gpu):
    issue = SMS * CLOCK * 128 * ISSUE_EFF / instr  # elements per second
    copy = HBM[gpu] * COPY_EFF  # bytes per second
    return min(1.0, issue * nbytes / copy)


def table(res):
    rows = ["| kernel | dtype | bits | group | bytes/elem | instr/elem (PTX) | model | H100 % of copy | "
            "H200 % of copy |", "|---|---|---|---|---|---|---|---|---|"]
    for key in MODEL:
        kernel, dt, bits = key
        b = bytes_per_element(*key)
        rows.append("| %s | %s | %d | %d | %.3f | %.1f | %s | %.0f %% | %.0f %% |" % (
            kernel, dt, bits, GROUP[bits], b, res[key], MODEL[key] or "-", 100 * predicted(res[key], b, "H100"),
            100 * predicted(res[key], b, "H200")))
    return "\n".join(rows)


def main(argv):
    check = argv[1:2] == ["--check"]
    path = argv[2] if check else argv[1]
    with open(path) as f:
        res = counts(f.read())
    print(table(res))
    if not check:
        return 0
    bad = [(k, v) for k, v in res.items() if MODEL[k] and v > MODEL[k] * 1.05]
    unset = [k for k in MODEL if not MODEL[k]]
    for k, v in bad:
        print("REGRESSION %s %s %d bits: %.1f instructions/element, model %.1f" % (*k, v, MODEL[k]))
    for k in unset:
        print("NO MODEL for %s %s %d bits" % k)
    return 1 if bad or unset else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
