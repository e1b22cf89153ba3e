#!/bin/sh
# check.sh: the one prepared GPU check of issue 14, in under 8 minutes on an H100/H200 — GPU and
# driver, the codec bit-exact test and its bandwidth, the cold-thread repro and the allocator
# backends, ResNet-50 fp32/bf16 and GPT-2 (baseline / default shim / checkpoint), a 200-step
# convergence run. Nothing is built here: build/ must come from `meson setup build && ninja -C
# build` on the CPU machine (carry it). Each part is bounded by `timeout` (bench/gpu/check.py).
#   bench/gpu/check.sh OUTDIR                  # on the GPU machine
#   bench/gpu/check.sh OUTDIR --device cpu     # the dry run CI uses (tiny shapes, GPU parts skip)
#   bench/gpu/check.sh OUTDIR --parts gpt2     # rerun one part into the same folder
# PYTHON picks the interpreter with PyTorch (default python3).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [--device cpu] [--parts a,b]" >&2; exit 2; }
case $1 in /*) out=$1 ;; *) out=$PWD/$1 ;; esac
shift
cd "$(dirname "$0")/../.."
# GS_BUILD_DIR: meson's build folder (default build/; the meson test passes its own).
[ -e "${GS_BUILD_DIR:-build}/shim/libgactshim.so" ] || { echo "check.sh: ${GS_BUILD_DIR:-build}/shim/libgactshim.so missing: build on the CPU machine and carry build/" >&2; exit 2; }
exec "${PYTHON:-python3}" bench/gpu/check.py "$out" --python "${PYTHON:-python3}" "$@"
