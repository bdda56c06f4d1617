#!/usr/bin/env bash
# Installs what is missing, builds the example and runs the main job: feature
# computation over a generated W-PAY payment stream, printing its summary.
# Extra arguments go to the example (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
weir_install_deps
build_dir=${WEIR_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target wpay-features
exec "$build_dir/examples/wpay_features/wpay-features" "$@"
