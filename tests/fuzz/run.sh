#!/usr/bin/env bash
# run.sh: build the libFuzzer targets (a clang meson build with ASan+UBSan) and run each briefly.
#
#   tests/fuzz/run.sh [runs] [workdir]   runs: executions per target (default 1000000)
#
# Targets: config (GACTSHIM_* parser), trace (trace decoder + report loader), control (control
# socket request parser), defined by tests/fuzz/meson.build in a build configured with
# -Dfuzzers=true, here <workdir>/build. Seeds come from tests/fuzz/corpus/<target>/ (never
# written to); new inputs go to <workdir>/corpus-<target>. Exit 77 (skip) when clang with
# libFuzzer, meson or ninja is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
runs=${1:-1000000}
work=${2:-$top/build-fuzz}
mkdir -p "$work"
work=$(cd "$work" && pwd)
build=$work/build
targets=(config trace control)

clang=${CLANG:-clang}
if ! command -v "$clang" >/dev/null ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}' |
     "$clang" -fsanitize=fuzzer,address,undefined -x c - -o "$work/probe" 2>/dev/null; then
  echo "SKIP: clang with libFuzzer not found (Debian packages clang and libclang-rt-14-dev)"
  exit 77
fi
for tool in meson ninja; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not found"; exit 77; }
done

# Configured once; ninja re-runs meson itself when a meson.build changed.
if [ ! -f "$build/build.ninja" ]; then
  if ! CC="$clang" meson setup "$build" "$top" -Dfuzzers=true -Db_sanitize=address,undefined \
       -Db_lundef=false -Dtests=disabled -Dcuda=disabled >"$work/setup.log" 2>&1; then
    echo "fuzz: meson setup failed, see $work/setup.log"
    tail -20 "$work/setup.log"
    exit 1
  fi
fi
if ! ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}" >"$work/build.log" 2>&1; then
  echo "fuzz: build failed, see $work/build.log"
  tail -40 "$work/build.log"
  exit 1
fi

status=0
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus-$target"
  log="$work/fuzz-$target.log"
  if ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz/fuzz-$target" -runs="$runs" -seed=1 -max_len=8192 \
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
