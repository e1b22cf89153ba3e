#!/usr/bin/env bash
# dev.sh: one entry point for people and CI — install what is missing, build, run the example or the tests.
#
#   tools/dev.sh example   build, then train examples/train.py under LD_PRELOAD=libgactshim.so
#   tools/dev.sh test      build, then run the whole suite: normal, ASan+UBSan, TSan
#   tools/dev.sh build     build only (into build/)
#
# Debian packages (bookworm names) plus .venv/ for PyTorch 2.x; nvcc is taken from PATH when present.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

packages=(meson ninja-build pkg-config gcc check libunwind-dev python3 python3-venv
          chromium clang libclang-rt-14-dev)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev.sh: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The tests' and the example's interpreter: .venv/ with PyTorch 2.x and the libraries people train
# with (tools/requirements.txt). Remade when that file changes; torch and torchvision go in first, in
# their own pip call, so the libraries after them cannot pull a different build.
venv=$top/.venv
ensure_venv() {
  local req=$top/tools/requirements.txt stamp=$top/.venv/.requirements
  if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp"; then return 0; fi
  local base
  base=$(command -v python3.11 || command -v python3)
  echo "dev.sh: making .venv/ with $base ($("$base" --version))"
  "$base" -m venv "$venv"
  venv_pip $(grep -E '^torch(vision)?==' "$req")
  venv_pip -r "$req"
  "$venv/bin/python" -c 'import torch, torchvision' || { echo "dev.sh: .venv/ has no working torch" >&2; return 1; }
  cp "$req" "$stamp"
}

# pip install into .venv/, quiet unless it fails (then its output, less the index's noise).
venv_pip() {
  local log rc=0
  log=$(mktemp)
  "$venv/bin/pip" install -q "$@" >"$log" 2>&1 || rc=$?
  [ $rc -eq 0 ] || grep -v 'is ignored' "$log" >&2
  rm -f "$log"
  return $rc
}

# Configures (once) and builds a build directory: build_dir DIR [meson options...]
build_dir() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    # --werror: a warning in our code fails the build, here and in CI.
    meson setup "$dir" --werror "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir"
}

# Runs meson test in DIR and appends its totals to the grand total.
passed=0 failed=0 skipped=0
run_suite() {
  local dir=$1; shift
  local rc=0
  meson test -C "$dir" --print-errorlogs "$@" || rc=$?
  local json="$dir/meson-logs/testlog.json"
  if [ -f "$json" ]; then
    passed=$((passed + $(grep -c '"result": "OK"' "$json" || true)))
    failed=$((failed + $(grep -Ec '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$json" || true)))
    skipped=$((skipped + $(grep -c '"result": "SKIP"' "$json" || true)))
  fi
  return $rc
}

cmd=${1:-}
case "$cmd" in
  build)
    install_packages
    ensure_venv
    build_dir build
    ;;
  example)
    install_packages
    ensure_venv
    build_dir build
    exec env LD_PRELOAD="$top/build/shim/libgactshim.so" "$venv/bin/python" examples/train.py "${@:2}"
    ;;
  test)
    install_packages
    ensure_venv
    status=0
    build_dir build
    run_suite build || status=1
    # Sanitizers: the C suite under ASan+UBSan (the Python training tests stay in the plain build:
    # the venv's interpreter and PyTorch are not instrumented), the threaded and forking tests
    # under TSan.
    build_dir build-asan -Db_sanitize=address,undefined -Db_lundef=false
    run_suite build-asan --no-suite python || status=1
    build_dir build-tsan -Db_sanitize=thread -Db_lundef=false
    run_suite build-tsan --suite concurrent || status=1
    echo
    echo "tests: $passed passed, $failed failed, $skipped skipped"
    exit $status
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
