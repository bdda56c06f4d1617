#!/usr/bin/env bash
# Installs what is missing, builds the fraud-features service and runs its
# embedded default: it starts the local Kafka-protocol broker, produces a
# generated W-PAY payment stream into it, computes the fraud features from
# Kafka with checkpoints to a local directory, writes them to a file (or to
# Redis when one answers on 127.0.0.1:6379), and prints a summary. Extra
# arguments go to the service (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
weir_install_deps
build_dir=${WEIR_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target fraud-features
exec "$build_dir/examples/fraud_features/fraud-features" "$@"
