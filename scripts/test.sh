#!/usr/bin/env bash
# Installs what is missing (Debian packages, the npm test servers), builds
# weir once and runs every test. Usage: scripts/test.sh [ctest args...]
#   WEIR_BUILD_DIR    build folder                  (default: build)
#   WEIR_FUZZ_SECONDS time per libFuzzer target     (default: 20; 0 skips)
#   WEIR_SOAK_SCALE   size of soak and crash runs   (default: 1, the short
#                     form CI runs; larger runs longer)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
weir_install_deps
build_dir=${WEIR_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j "$(nproc)"
# The fuzzers build separately with clang (only the decoders' sources) and
# run first, so that the main test run's summary is the last thing printed.
fuzz_seconds=${WEIR_FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" != "0" ]; then
  WEIR_FUZZ_BUILD_DIR="$build_dir-fuzz" bash scripts/fuzz.sh "$fuzz_seconds"
fi
cd "$build_dir"
# A test that fails is run once more before it counts as failed, so that
# one unlucky scheduling on a loaded 2-core machine does not fail the run;
# a real failure fails twice.
ctest -j2 --output-on-failure --timeout 900 --repeat until-pass:2 "$@"
