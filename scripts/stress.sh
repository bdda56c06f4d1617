#!/usr/bin/env bash
# Runs the integration tests N times under `ctest -j2` while a CPU hog runs
# (one busy loop per core, started and stopped by this script), then prints
# each test's pass rate. A test that does not pass every time is a bug to
# find: scripts/test.sh runs each test once and does not retry.
# Usage: scripts/stress.sh [N, default 5] [ctest args...]
#   WEIR_BUILD_DIR     a built build folder       (default: build)
#   WEIR_STRESS_LABEL  the ctest label to run     (default: integration)
#   WEIR_STRESS_HOGS   busy loops                 (default: nproc)
# Each repetition's ctest output and JUnit report are kept in
# $WEIR_BUILD_DIR/stress/. Exits non-zero if any test passed less than
# every time.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
build_dir=$(cd "${WEIR_BUILD_DIR:-build}" && pwd)
label=${WEIR_STRESS_LABEL:-integration}
hogs=${WEIR_STRESS_HOGS:-$(nproc)}
out=$build_dir/stress
rm -rf "$out"
mkdir -p "$out"

hog_pids=()
stop_hogs() {
  local pid
  for pid in "${hog_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hog_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  hog_pids=()
}
trap stop_hogs EXIT
for ((i = 0; i < hogs; i++)); do
  bash -c 'while :; do :; done' &
  hog_pids+=($!)
done
echo "stress: $runs runs of -L $label under ctest -j2 with $hogs busy loops"

for ((r = 1; r <= runs; r++)); do
  start=$SECONDS
  set +e
  (cd "$build_dir" && ctest -L "$label" -j2 --timeout 900 \
    --output-on-failure --output-junit "$out/run$r.xml" "$@") \
    >"$out/run$r.log" 2>&1
  set -e
  echo "run $r: $(grep -E 'tests passed|tests failed' "$out/run$r.log" |
    tail -1) ($((SECONDS - start)) s)"
  grep -E '^\s+[0-9]+ - .* \((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception|Child aborted)' \
    "$out/run$r.log" | sed 's/^/  failed: /' || true
done
stop_hogs

python3 - "$out" "$runs" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
out, runs = sys.argv[1], int(sys.argv[2])
stats = {}  # name -> [passed, failed, skipped]
for path in sorted(glob.glob(f"{out}/run*.xml")):
    for case in ET.parse(path).getroot().iter("testcase"):
        s = stats.setdefault(case.get("name"), [0, 0, 0])
        status = case.get("status")
        if case.find("failure") is not None or status == "fail":
            s[1] += 1
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            s[2] += 1
        else:
            s[0] += 1
print(f"\npass rate per test ({runs} runs):")
below = 0
for name, (p, f, k) in sorted(stats.items(), key=lambda kv: (kv[1][0] / max(1, kv[1][0] + kv[1][1]), kv[0])):
    ran = p + f
    rate = 100.0 * p / ran if ran else 0.0
    note = f"  ({k} skipped)" if k else ""
    print(f"  {rate:6.1f}%  {p}/{ran}  {name}{note}")
    if ran == 0 or f:
        below += 1
print(f"\n{len(stats)} tests; {len(stats) - below} passed every run, {below} did not")
sys.exit(1 if below else 0)
PY
