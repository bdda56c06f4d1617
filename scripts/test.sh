#!/usr/bin/env bash
# Installs what is missing (Debian packages, the npm test servers), builds
# weir once and runs every test. Usage: scripts/test.sh [ctest args...]
#   WEIR_BUILD_DIR   build folder            (default: build)
#   WEIR_SOAK_SCALE  size of soak/crash runs (default: 1 = the short CI form)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
weir_install_deps
build_dir=${WEIR_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j "$(nproc)"
cd "$build_dir"
ctest -j2 --output-on-failure --timeout 900 "$@"
