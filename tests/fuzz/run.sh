#!/usr/bin/env bash
# run.sh: build the libFuzzer targets with clang (ASan+UBSan) and run each for a number of inputs.
#
#   tests/fuzz/run.sh [runs] [workdir]   runs: executions per target (default 1000000)
#
# Targets: config (GACTSHIM_* parser), trace (trace decoder + report loader), control (control
# socket request parser). Seeds come from tests/fuzz/corpus/<target>/ (never written to); new
# inputs go to <workdir>/corpus-<target>. Exit 77 (skip) when clang with libFuzzer is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
runs=${1:-1000000}
work=${2:-$top/build-fuzz}
mkdir -p "$work"

clang=${CLANG:-clang}
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE
       -ffp-contract=off -I"$top/include" -I"$top/shim/base" -I"$top/shim/format" -I"$top/tools")
if ! command -v "$clang" >/dev/null ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}' |
     "$clang" "${flags[@]}" -x c - -o "$work/probe" 2>/dev/null; then
  echo "SKIP: clang with libFuzzer not found (Debian packages clang and libclang-rt-14-dev)"
  exit 77
fi

declare -A sources=(
  [config]="$here/fuzz_config.c $top/shim/base/config.c"
  [trace]="$here/fuzz_trace.c $top/shim/format/records.c $top/shim/format/codec.c $top/shim/base/process.c $top/tools/report_load.c"
  [control]="$here/fuzz_control.c $top/shim/format/control_proto.c"
)

status=0
for target in config trace control; do
  # shellcheck disable=SC2086 # the source lists are space-separated on purpose
  "$clang" "${flags[@]}" ${sources[$target]} -o "$work/fuzz-$target"
  mkdir -p "$work/corpus-$target"
  log="$work/fuzz-$target.log"
  if ASAN_OPTIONS=detect_leaks=1 "$work/fuzz-$target" -runs="$runs" -seed=1 -max_len=8192 \
       -artifact_prefix="$work/crash-$target-" "$work/corpus-$target" "$here/corpus/$target" \
       >"$log" 2>&1; then
    execs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo "?")
    echo "fuzz-$target: $execs executions, no crash ($(grep -Eo 'cov: [0-9]+' "$log" | tail -1))"
  else
    echo "fuzz-$target: FAILED, see $log and $work/crash-$target-*"
    tail -40 "$log"
    status=1
  fi
done
exit $status
