#!/usr/bin/env bash
# Installs the built weir into a temporary prefix, checks what it holds
# (no internal/ headers; no testing module in weir::weir's link interface),
# then builds and runs a small consumer project that finds it with
# find_package(weir): once linking weir::weir_core + weir::weir_rocksdb
# only, once linking weir::weir.
#   install.test.sh SOURCE_DIR BINARY_DIR
set -euo pipefail
src=$1
bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$bin" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/weir/keyed_window_operator.h"
config_dir=$(dirname "$(find "$tmp/prefix" -name weirConfig.cmake | head -1)")
test -f "$config_dir/weirConfig.cmake"
internal=$(find "$tmp/prefix/include" -path '*internal*' | head -5)
if [ -n "$internal" ]; then
  echo "internal headers were installed:"; echo "$internal"; exit 1
fi
# The link interface of weir::weir, and of every module it links: none may
# name the testing module.
targets="$config_dir/weirTargets.cmake"
interface=$(awk '/^set_target_properties\(weir::/ {
    t = $1; sub(/^set_target_properties\(/, "", t) }
  /INTERFACE_LINK_LIBRARIES/ && t != "weir::weir_testing" { print t ": " $0 }' \
  "$targets")
if [ -z "$interface" ]; then
  echo "no INTERFACE_LINK_LIBRARIES in $targets"; exit 1
fi
if ! grep -q '^weir::weir: .*weir::weir_core' <<<"$interface"; then
  echo "weir::weir does not link weir::weir_core:"; echo "$interface"; exit 1
fi
if grep -q 'testing' <<<"$interface"; then
  echo "a testing module is in a production target's link interface:"
  grep 'testing' <<<"$interface"; exit 1
fi
cmake -S "$src/tests/install/consumer" -B "$tmp/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/build" >/dev/null
expected=$'u1 clicks_1m 0 2\nu1 clicks_1m 60000 1'
for consumer in consumer consumer_all; do
  out=$("$tmp/build/$consumer")
  if [ "$out" != "$expected" ]; then
    echo "$consumer printed:"; echo "$out"
    echo "expected:"; echo "$expected"
    exit 1
  fi
done
echo "installed weir found and used by a find_package(weir) project: ok"

# The second example, order-features (a service in under 100 lines), built
# alone against the installed package, then run briefly: a bounded run over
# 200 orders produced into the local broker of the build tree.
cmake -S "$src/examples/order_features" -B "$tmp/orders" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/orders" >/dev/null
if [ ! -x "$bin/weir-broker" ] || [ ! -x "$bin/weir-produce" ]; then
  echo "order-features built; not run (weir-broker or weir-produce not built)"
  exit 0
fi
coproc BROKER { exec "$bin/weir-broker" --topic=orders:2; }
broker_pid=$BROKER_PID
trap 'kill "$broker_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
read -r -t 30 line <&"${BROKER[0]}"
bootstrap=${line#bootstrap=}
for i in $(seq 1 200); do
  printf '{"customer_id":"c%d","store_id":"s%d","total":%d.50,"created_ms":%d}\n' \
    $((i % 10)) $((i % 3)) "$i" $((1767225600000 + i * 1000))
done >"$tmp/orders.jsonl"
"$bin/weir-produce" --bootstrap="$bootstrap" --topic=orders \
  <"$tmp/orders.jsonl" >/dev/null
out=$("$tmp/orders/order-features" --bootstrap="$bootstrap" --max_events=200 \
  --state_dir="$tmp/orders-state" --sink="file:$tmp/order-features.jsonl" \
  --dlq="file:$tmp/orders-dlq.jsonl" --metrics_port=-1 2>&1) || {
  echo "$out"; exit 1; }
if ! grep -q "order-features summary (read 200 records" <<<"$out" ||
  ! grep -q '"spend_1d"' "$tmp/order-features.jsonl"; then
  echo "order-features printed:"; echo "$out"; exit 1
fi
echo "order-features built against the installed weir and run: ok"
