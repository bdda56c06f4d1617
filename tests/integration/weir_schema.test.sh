#!/usr/bin/env bash
# weir-schema as a release pipeline runs it before registering a schema:
# exit 0 for a compatible change, 1 naming the field and rule for an
# incompatible one, 2 for a schema that is not valid Avro.
# Usage: weir_schema.test.sh SOURCE_DIR BINARY_DIR
set -euo pipefail
bin=${2:?binary dir}/weir-schema
[ -x "$bin" ] || { echo "skipped: $bin is not built"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/v1.avsc" <<'AVSC'
{"type":"record","name":"Payment","namespace":"wpay","fields":[
  {"name":"user_id","type":"string"},{"name":"amount","type":"int"}]}
AVSC
cat > "$dir/v2.avsc" <<'AVSC'
{"type":"record","name":"Payment","namespace":"wpay","fields":[
  {"name":"user_id","type":"string"},{"name":"amount","type":"int"},
  {"name":"currency_code","type":"string","default":"USD"}]}
AVSC
cat > "$dir/v3.avsc" <<'AVSC'
{"type":"record","name":"Payment","namespace":"wpay","fields":[
  {"name":"user_id","type":"string"},{"name":"amount","type":"float"},
  {"name":"currency_code","type":"string","default":"USD"}]}
AVSC
echo '{"type":"record","name":"Payment"' > "$dir/broken.avsc"

"$bin" --mode=FULL_TRANSITIVE --previous="$dir/v1.avsc" --candidate="$dir/v2.avsc" | grep -qx compatible
set +e
"$bin" --mode=FULL --previous="$dir/v1.avsc,$dir/v2.avsc" --candidate="$dir/v3.avsc" > "$dir/out.txt"
rc=$?
"$bin" --mode=FULL --previous="$dir/v1.avsc" --candidate="$dir/broken.avsc" 2> "$dir/err.txt"
rc_bad=$?
set -e
[ "$rc" -eq 1 ] || { echo "v3: exit $rc, want 1"; cat "$dir/out.txt"; exit 1; }
grep -q "wpay.Payment.amount\|Payment.amount: a reader of type int cannot read the writer's float" "$dir/out.txt"
[ "$rc_bad" -eq 2 ] || { echo "broken schema: exit $rc_bad, want 2"; exit 1; }
grep -q "broken.avsc" "$dir/err.txt"
"$bin" --mode=BACKWARD --previous="$dir/v2.avsc" --candidate="$dir/v3.avsc" | grep -qx compatible
echo "weir-schema: compatible 0, incompatible 1, broken 2"
