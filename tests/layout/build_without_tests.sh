#!/usr/bin/env bash
# build_without_tests.sh: `meson setup -Dtests=disabled` builds the library and the report tool
# without looking for Check (a packager's build). Usage: build_without_tests.sh SOURCE_ROOT WORKDIR
set -euo pipefail
src=$1
work=$2
rm -rf "$work"
# -Dcuda=disabled: the kernels' build is not what this checks, and nvcc would double the time.
meson setup "$work" "$src" --werror -Dtests=disabled -Dcuda=disabled >"$work.log" 2>&1 ||
  { cat "$work.log"; echo "FAIL: meson setup -Dtests=disabled"; exit 1; }
if ! grep -q "Dependency check skipped: feature tests disabled" "$work.log"; then
  cat "$work.log"
  echo "FAIL: -Dtests=disabled still looked for Check"
  exit 1
fi
ninja -C "$work" >>"$work.log" 2>&1 || { tail -40 "$work.log"; echo "FAIL: the build"; exit 1; }
for f in shim/libgactshim.so tools/gactshim-report shim/gactshim-python/sitecustomize.py; do
  [ -e "$work/$f" ] || { echo "FAIL: $f was not built"; exit 1; }
done
if [ -e "$work/tests" ]; then
  echo "FAIL: a tests/ build folder exists with tests disabled"
  exit 1
fi
echo "ok: library, report tool and bootstrap built with -Dtests=disabled, Check not looked up"
