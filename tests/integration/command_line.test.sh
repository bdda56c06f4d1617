#!/usr/bin/env bash
# Every tool, example and benchmark parses its command line the same way
# (tools/common/command_line.h): --help lists the program's own flags and
# shows no path of the machine that built it; a mistyped flag, a value that
# does not parse and a stray argument are errors with exit status 2.
# Usage: command_line.test.sh SOURCE_DIR BINARY_DIR
set -euo pipefail
src=$(cd "${1:?source dir}" && pwd)
bin=${2:?binary dir}
# Each program and one of its flags that --help must list.
programs=(
  "weir-broker brokers" "weir-checkpoint endpoint" "weir-dlq-replay dlq_topic"
  "weir-gen events_per_ms" "weir-plan target_rate" "weir-produce key_field"
  "weir-reset to_earliest" "weir-schema candidate" "weir-shadow tolerance" "wpay-features backend"
  "b1_operator_throughput events" "b2_fraud_features cache_entries"
  "b3_end_to_end partitions" "b4_checkpoint state_mb" "b5_redis_sink entities"
  "b6_memory budget_mb" "b7_spill check_events")
checked=0
for entry in "${programs[@]}"; do
  read -r name flag <<<"$entry"
  exe=""
  for candidate in "$bin/$name" "$bin"/examples/*/"$name"; do
    if [ -x "$candidate" ]; then exe=$candidate; break; fi
  done
  [ -n "$exe" ] || continue
  checked=$((checked + 1))
  help=$("$exe" --help 2>&1 || true)
  if ! grep -q -- "--$flag" <<<"$help"; then
    echo "$name --help does not list --$flag:"; echo "$help"; exit 1
  fi
  for path in "$src" "$(cd "$bin" && pwd)" "/tools/" "/bench/" "/examples/"; do
    if grep -qF -- "$path" <<<"$help"; then
      echo "$name --help shows a build path ($path):"; echo "$help"; exit 1
    fi
  done
  for bad in --no_such_flag=1 --help-me stray; do
    rc=0
    "$exe" "$bad" >/dev/null 2>&1 </dev/null || rc=$?
    if [ "$rc" -ne 2 ]; then
      echo "$name $bad: exit $rc, want 2"; exit 1
    fi
  done
done
[ "$checked" -gt 0 ] || { echo "skipped: no program is built"; exit 77; }
echo "$checked programs: --help without build paths, bad arguments exit 2"
