#!/usr/bin/env bash
# Installs the built weir into a temporary prefix, then builds and runs a
# small consumer project that finds it with find_package(weir).
#   install.test.sh SOURCE_DIR BINARY_DIR
set -euo pipefail
src=$1
bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$bin" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/weir/keyed_window_operator.h"
test -f "$tmp/prefix/lib/cmake/weir/weirConfig.cmake" ||
  test -f "$tmp/prefix/lib/x86_64-linux-gnu/cmake/weir/weirConfig.cmake"
cmake -S "$src/tests/install/consumer" -B "$tmp/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/build" >/dev/null
out=$("$tmp/build/consumer")
expected=$'u1 clicks_1m 0 2\nu1 clicks_1m 60000 1'
if [ "$out" != "$expected" ]; then
  echo "consumer printed:"; echo "$out"
  echo "expected:"; echo "$expected"
  exit 1
fi
echo "installed weir found and used by a find_package(weir) project: ok"
