#!/usr/bin/env bash
# weir-shadow as a scheduler runs it: exit 0 when a feature file and a batch
# CSV agree (within the given tolerances), 1 with the divergent rows shown
# when they do not, 0 again when a late record (--late_output) explains the
# difference, 2 on bad input; the JSON and Prometheus reports are written. Usage: weir_shadow.test.sh SOURCE_DIR BINARY_DIR
set -euo pipefail
bin=${2:?binary dir}/weir-shadow
[ -x "$bin" ] || { echo "skipped: $bin is not built"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/features.jsonl" <<'JSONL'
{"key":"u1","feature":"txn_count_1m","window_start":1767225600000,"window_end":1767225660000,"type":"int64","value":3,"version_time":1767225660000,"version_offset":40}
{"key":"u1","feature":"txn_count_1m","window_start":1767225600000,"window_end":1767225660000,"type":"int64","value":4,"version_time":1767225660000,"version_offset":57}
{"key":"u1","feature":"amount_avg_1d","window_start":1767225600000,"window_end":1767312000000,"type":"double","value":12.5,"version_time":1767312000000,"version_offset":57}
JSONL
cat > "$dir/same.csv" <<'CSV'
entity,feature,window_start,value
u1,txn_count_1m,2026-01-01T00:00:00Z,4
u1,amount_avg_1d,1767225600000,12.5000000001
CSV
cat > "$dir/skew.csv" <<'CSV'
entity,feature,window_start,value
u1,txn_count_1m,2026-01-01T00:00:00Z,5
u1,amount_avg_1d,1767225600000,12.5000000001
CSV

"$bin" --online=file:"$dir/features.jsonl" --batch="$dir/same.csv" \
  --tolerance=amount_avg_1d=1e-9 --json_report="$dir/r.json" \
  --prometheus_report="$dir/r.prom" > "$dir/out.txt"
grep -q '^OK$' "$dir/out.txt"
grep -q '"alert":false' "$dir/r.json"
grep -q '^weir_shadow_alert 0$' "$dir/r.prom"

# u1's record at 00:00:00.500 was late for txn_count_1m: the batch counted
# it, the stream did not.
cat > "$dir/late.jsonl" <<'JSONL'
{"dlq_format":1,"error_category":"processing_error","error_type":"late_record","error_field":"txn_count_1m","error_message":"late: event_time_ms=1767225600500 watermark_ms=1767225725000 features=txn_count_1m","topic":"payments","partition":0,"offset":58,"timestamp_ms":null,"pipeline":"ff","pipeline_version":"1","failed_at":"2026-01-01T00:02:05Z","key_base64":"dTE=","value_base64":"e30="}
JSONL
"$bin" --online=file:"$dir/features.jsonl" --batch="$dir/skew.csv" \
  --tolerance=amount_avg_1d=1e-9 --late_output=file:"$dir/late.jsonl" \
  --prometheus_report="$dir/late.prom" > "$dir/out.txt"
grep -q '^OK$' "$dir/out.txt"
grep -q '^weir_shadow_explained_by_late{feature="txn_count_1m"} 1$' "$dir/late.prom"
grep -q '^weir_shadow_divergent{feature="txn_count_1m"} 0$' "$dir/late.prom"

set +e
"$bin" --online=file:"$dir/features.jsonl" --batch="$dir/skew.csv" \
  --tolerance=amount_avg_1d=1e-9 > "$dir/out.txt"
rc=$?
"$bin" --online=file:"$dir/features.jsonl" --batch="$dir/missing.csv" \
  2> "$dir/err.txt"
rc_bad=$?
set -e
[ "$rc" -eq 1 ] || { echo "skew: exit $rc, want 1"; cat "$dir/out.txt"; exit 1; }
grep -q 'online=4 batch=5' "$dir/out.txt"
[ "$rc_bad" -eq 2 ] || { echo "missing batch file: exit $rc_bad, want 2"; exit 1; }
grep -q 'missing.csv' "$dir/err.txt"
echo "weir-shadow: agreement 0, skew 1, skew explained by late records 0, bad input 2"
