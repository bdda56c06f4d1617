// B2 of BENCHMARKS.md: the whole F-FRAUD feature set on one thread, RocksDB
// backend, W-PAY with disorder and late records, against B1's hand-written
// flat_hash_map loop (count + sum per user per minute) in the same run.
//
//   b2_fraud_features [--events=N] [--users=N] [--repeat=N]
//
// Prints:
//   B2 rocksdb events_per_s=... ref_events_per_s=... ratio=...

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tools/common/command_line.h"
#include "weir/keyed_window_operator.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(int64_t, events, 2'000'000, "Events to process.");
ABSL_FLAG(int64_t, users, 1'000'000, "Distinct users.");
ABSL_FLAG(int32_t, repeat, 3, "Runs; the best is reported.");
ABSL_FLAG(int64_t, cache_entries, 4'000'000,
          "The operator's cache size in entries.");

namespace {

weir::FeatureSpec Feature(std::string name, weir::AggregateKind kind,
                          weir::WindowSpec window, int field) {
  weir::FeatureSpec f;
  f.name = std::move(name);
  f.aggregate = kind;
  f.window = window;
  f.field = field;
  return f;
}

// F-FRAUD, on the W-PAY schema layout (values[0] merchant, values[1] amount).
weir::KeyedWindowOptions FraudFeatures(size_t cache_entries) {
  using weir::AggregateKind;
  weir::KeyedWindowOptions o;
  o.name = "b2";
  weir::FeatureSpec p99 = Feature("amount_p99_1h", AggregateKind::kQuantile,
                                  weir::Tumbling(absl::Hours(1)), 1);
  p99.aggregator.quantile = 0.99;
  o.features = {
      Feature("txn_count_1m", AggregateKind::kCount,
              weir::Tumbling(absl::Minutes(1)), -1),
      Feature("amount_sum_1h", AggregateKind::kDecimalSum,
              weir::Tumbling(absl::Hours(1)), 1),
      Feature("amount_avg_1d", AggregateKind::kMean, weir::Daily(), 1),
      Feature("txn_count_5m_sliding", AggregateKind::kCount,
              weir::Sliding(absl::Minutes(5), absl::Minutes(1)), -1),
      Feature("distinct_merchants_1h", AggregateKind::kDistinctCount,
              weir::Tumbling(absl::Hours(1)), 0),
      p99,
  };
  o.max_out_of_orderness = absl::Seconds(5);
  o.allowed_lateness = absl::Minutes(1);
  o.cache_max_entries = cache_entries;
  return o;
}

double RunReference(const std::vector<weir::Event>& in) {
  struct Agg {
    int64_t count = 0;
    int64_t sum_cents = 0;
  };
  absl::flat_hash_map<std::pair<std::string, int64_t>, Agg> map;
  int64_t sum = 0;
  const absl::Time start = absl::Now();
  int64_t current = weir::FloorTo(in[0].event_time, 60'000);
  for (const weir::Event& e : in) {
    const int64_t w = weir::FloorTo(e.event_time, 60'000);
    if (w > current + 120'000) {  // keep two minutes open for disorder
      for (auto it = map.begin(); it != map.end();) {
        if (it->first.second < w - 120'000) {
          sum += it->second.count + it->second.sum_cents;
          map.erase(it++);
        } else {
          ++it;
        }
      }
      current = w;
    }
    Agg& a = map[{e.key, w}];
    a.count++;
    if (!e.values[1].is_null())
      a.sum_cents += e.values[1].decimal_value().units;
  }
  for (const auto& [k, a] : map) sum += a.count + a.sum_cents;
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  if (sum == 42) std::printf("\n");  // keep the work
  return static_cast<double>(in.size()) / secs;
}

double RunWeir(const std::vector<weir::Event>& in, weir::StateBackend* backend,
               size_t cache_entries, uint64_t* updates) {
  auto op =
      weir::KeyedWindowOperator::Create(FraudFeatures(cache_entries), backend);
  if (!op.ok()) {
    std::fprintf(stderr, "%s\n", op.status().ToString().c_str());
    std::exit(1);
  }
  weir::OperatorOutput out;
  const absl::Time start = absl::Now();
  for (const weir::Event& e : in) {
    absl::Status s = (*op)->Process(e.view(), &out);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::exit(1);
    }
    if (out.updates.size() >= 4096) {
      *updates += out.updates.size();
      out.Clear();
    }
    out.late.clear();
  }
  if (!(*op)->AdvanceWatermark(weir::kMaxEventTime, &out).ok()) std::exit(1);
  *updates += out.updates.size();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  return static_cast<double>(in.size()) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv, {.usage = "b2_fraud_features: see docs/benchmarks.md"});
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t users = absl::GetFlag(FLAGS_users);
  const int repeat = static_cast<int>(absl::GetFlag(FLAGS_repeat));
  const size_t cache = static_cast<size_t>(absl::GetFlag(FLAGS_cache_entries));
  weir::testing::WPayOptions w;
  w.num_events = events;
  w.num_users = users;
  w.malformed_fraction = 0;  // B2 measures the operator, not the decoder
  w.build_json = false;
  auto gen = weir::testing::WPayGenerator::Create(w);
  if (!gen.ok()) return 1;
  std::vector<weir::Event> in;
  in.reserve(events);
  weir::testing::WPayEvent e;
  while ((*gen)->Next(e)) in.push_back(e.ToEvent());

  auto tmp = weir::testing::TempDir::Create("weir-b2");
  auto resources = weir::RocksDbResources::Create({});
  if (!tmp.ok() || !resources.ok()) return 1;
  std::vector<double> ref, rocks;
  uint64_t updates = 0;
  for (int r = 0; r < repeat; ++r) {
    ref.push_back(RunReference(in));
    weir::RocksDbStateBackendOptions ro;
    ro.path = absl::StrCat(tmp->path(), "/db", r);
    ro.resources = *resources;
    auto backend = weir::RocksDbStateBackend::Create(ro);
    if (!backend.ok()) return 1;
    updates = 0;
    rocks.push_back(RunWeir(in, backend->get(), cache, &updates));
  }
  std::sort(ref.begin(), ref.end());
  std::sort(rocks.begin(), rocks.end());
  const double r = ref[ref.size() / 2];
  const double x = rocks[rocks.size() / 2];
  std::printf(
      "B2 rocksdb events_per_s=%.3g ref_events_per_s=%.3g ratio=%.2f "
      "features=6 updates=%llu\n",
      x, r, x / r, static_cast<unsigned long long>(updates));
  return 0;
}
