#!/usr/bin/env bash
# Builds weir's libFuzzer targets with clang (only the sources they exercise,
# instrumented with ASan) and runs each for a while. A crash, a sanitizer
# report or a failed invariant fails the run; the input that caused it is
# left in the build folder (crash-*).
# Usage: scripts/fuzz.sh [seconds per fuzzer, default 20]
#   WEIR_FUZZ_BUILD_DIR  build folder (default: build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
build_dir=${WEIR_FUZZ_BUILD_DIR:-build-fuzz}
CXX=${CXX:-clang++} cmake -S fuzz -B "$build_dir" -G Ninja \
  -DCMAKE_CXX_COMPILER="${CXX:-clang++}" -DWEIR_FUZZ_SECONDS="$seconds"
cmake --build "$build_dir" -j "$(nproc)"
cd "$build_dir"
ctest -L fuzz -j2 --output-on-failure
