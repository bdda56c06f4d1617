#!/usr/bin/env bash
# The operations kit (ops/) matches docs/operations.md:
#   - promtool accepts ops/prometheus/weir_alerts.yml and its unit tests
#     (ops/prometheus/weir_alerts_test.yml) pass: every alert fires on its
#     incident's series and stays quiet on a healthy service's;
#   - the Grafana dashboard is valid JSON, charts every metric the page
#     lists, and neither it nor the rules name a metric the page does not.
# Usage: prometheus_rules.test.sh SOURCE_DIR [BINARY_DIR]. Exits 77 (skip)
# without promtool, unless CI is set.
set -euo pipefail
src=${1:?source dir}
if ! command -v promtool >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "promtool is not installed (Debian package prometheus); CI must have it" >&2
    exit 1
  fi
  echo "skipped: promtool is not installed (apt-get install prometheus)"
  exit 77
fi
cd "$src/ops/prometheus"
promtool check rules weir_alerts.yml
promtool test rules weir_alerts_test.yml

python3 - "$src" <<'PY'
import json, re, sys
src = sys.argv[1]
doc = open(f"{src}/docs/operations.md").read()
documented = set(re.findall(r"^\| `(weir_[a-z0-9_]+)` \|", doc, re.M))
assert len(documented) >= 25, f"too few metrics found in operations.md: {sorted(documented)}"
dash = json.load(open(f"{src}/ops/grafana/weir_dashboard.json"))
exprs = []
def walk(panels):
    for p in panels:
        exprs.extend(t["expr"] for t in p.get("targets", []))
        walk(p.get("panels", []))
walk(dash["panels"])
charted = set()
for e in exprs:
    for m in re.findall(r"\b(weir_[a-z0-9_]+)", e):
        charted.add(re.sub(r"_(bucket|count|sum)$", "", m))
rules = open(f"{src}/ops/prometheus/weir_alerts.yml").read()
alerted = {m for line in re.findall(r"^\s*expr: (.*)$", rules, re.M)
           for m in re.findall(r"\b(weir_[a-z0-9_]+)", line)}
errors = []
for m in sorted(documented - charted):
    errors.append(f"{m} is in docs/operations.md but not on the dashboard")
for m in sorted(charted - documented):
    errors.append(f"the dashboard charts {m}, which docs/operations.md does not list")
for m in sorted(alerted - documented):
    errors.append(f"an alert uses {m}, which docs/operations.md does not list")
alerts_doc = set(re.findall(r"^\| (\w+) \| `", doc, re.M))
alerts_rules = set(a.removeprefix("Weir") for a in re.findall(r"alert: (\w+)", rules))
for a in sorted(alerts_doc - alerts_rules):
    errors.append(f"alert {a} of docs/operations.md has no rule")
if errors:
    print("\n".join(errors)); sys.exit(1)
print(f"dashboard charts all {len(documented)} documented metrics; "
      f"{len(alerts_rules)} alert rules")
PY
