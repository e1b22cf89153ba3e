#!/bin/sh
# The whole GPU benchmark on one H100 in about 25 minutes: builds the shim if it is missing,
# then runs each part as its own run.py invocation with its own time budget (seconds), all
# merging into bench/results/<date>-<device>.{md,json}. Name parts to run only those (each
# part stays under 10 minutes, so one part fits one command on a time-limited machine):
#   bench/gpu/run-all.sh                 # everything
#   bench/gpu/run-all.sh resnet50 gpt2   # a slice
# PYTHON picks the interpreter (default python3); BENCH_ARGS adds run.py options.
set -eu
cd "$(dirname "$0")/../.."
[ -e build/shim/libgactshim.so ] || { [ -d build ] || meson setup build; ninja -C build; }
budget() {
  case "$1" in
    kernels) echo 60 ;; resnet50) echo 420 ;; resnet50-amp) echo 300 ;; gpt2) echo 360 ;;
    gcn) echo 180 ;; digits-cnn) echo 60 ;; char-transformer) echo 120 ;;
    *) echo "run-all.sh: unknown part '$1'" >&2; exit 2 ;;
  esac
}
[ $# -gt 0 ] || set -- kernels resnet50 resnet50-amp gpt2 gcn digits-cnn char-transformer
for part in "$@"; do budget "$part" >/dev/null || exit 2; done
for part in "$@"; do
  "${PYTHON:-python3}" bench/gpu/run.py --device cuda --models "$part" --time-budget "$(budget "$part")" ${BENCH_ARGS:-}
done
