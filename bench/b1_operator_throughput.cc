// B1 of BENCHMARKS.md: operator throughput on one thread, W-PAY core
// (count + exact sum per user per 1-minute tumbling window, ordered input),
// for the memory and RocksDB backends, against a hand-written loop over
// absl::flat_hash_map doing the same aggregation in the same run.
//
//   b1_operator_throughput [--events=N] [--users=N] [--repeat=N]
//
// Prints one line per backend:
//   B1 memory events_per_s=... ref_events_per_s=... ratio=...

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tools/common/command_line.h"
#include "weir/keyed_window_operator.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/state.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(int64_t, events, 3'000'000, "Events to process.");
ABSL_FLAG(int64_t, users, 1'000'000, "Distinct users.");
ABSL_FLAG(int32_t, repeat, 3, "Runs per backend; the best is reported.");

namespace {

struct Input {
  std::vector<std::string> keys;
  std::vector<weir::EventTime> times;
  std::vector<weir::Value> amounts;  // Dec(cents, 2)
};

Input Generate(int64_t events, int64_t users) {
  weir::testing::WPayOptions o;
  o.num_events = events;
  o.num_users = users;
  o.disorder_fraction = 0;
  o.late_fraction = 0;
  o.null_amount_fraction = 0;
  o.malformed_fraction = 0;
  o.build_json = false;
  auto gen = weir::testing::WPayGenerator::Create(o);
  if (!gen.ok()) {
    std::fprintf(stderr, "%s\n", gen.status().ToString().c_str());
    std::exit(1);
  }
  Input in;
  in.keys.reserve(events);
  in.times.reserve(events);
  in.amounts.reserve(events);
  weir::testing::WPayEvent e;
  while ((*gen)->Next(e)) {
    in.keys.push_back(e.user_id);
    in.times.push_back(e.event_time);
    in.amounts.push_back(weir::Value::Dec(e.amount_cents.value_or(0), 2));
  }
  return in;
}

// The reference: what a careful engineer writes by hand for this one
// aggregation. Fires a window's results when the (ordered) input leaves it.
double RunReference(const Input& in, int64_t* checksum) {
  struct Agg {
    int64_t count = 0;
    int64_t sum_cents = 0;
  };
  absl::flat_hash_map<std::pair<std::string, int64_t>, Agg> map;
  const int64_t window = 60'000;
  int64_t current = weir::FloorTo(in.times[0], window);
  int64_t sum = 0;
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < in.keys.size(); ++i) {
    const int64_t w = weir::FloorTo(in.times[i], window);
    if (w != current) {
      for (const auto& [k, a] : map) sum += a.count + a.sum_cents;
      map.clear();
      current = w;
    }
    Agg& a = map[{in.keys[i], w}];
    a.count++;
    a.sum_cents += in.amounts[i].decimal_value().units;
  }
  for (const auto& [k, a] : map) sum += a.count + a.sum_cents;
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  *checksum = sum;
  return static_cast<double>(in.keys.size()) / secs;
}

double RunWeir(const Input& in, weir::StateBackend* backend,
               int64_t* checksum) {
  weir::KeyedWindowOptions options;
  options.name = "b1";
  weir::FeatureSpec count;
  count.name = "txn_count_1m";
  count.aggregate = weir::AggregateKind::kCount;
  count.window = weir::Tumbling(absl::Minutes(1));
  weir::FeatureSpec sum = count;
  sum.name = "amount_sum_1m";
  sum.aggregate = weir::AggregateKind::kDecimalSum;
  sum.field = 0;
  options.features = {count, sum};
  auto op = weir::KeyedWindowOperator::Create(options, backend);
  if (!op.ok()) {
    std::fprintf(stderr, "%s\n", op.status().ToString().c_str());
    std::exit(1);
  }
  weir::OperatorOutput out;
  int64_t total = 0;
  auto drain = [&] {
    for (const weir::FeatureUpdate& u : out.updates) {
      total += u.value.type() == weir::Value::Type::kInt64
                   ? u.value.int64_value()
                   : u.value.decimal_value().units;
    }
    out.Clear();
  };
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < in.keys.size(); ++i) {
    weir::Record r;
    r.key = in.keys[i];
    r.event_time = in.times[i];
    r.offset = static_cast<int64_t>(i);
    r.values = absl::Span<const weir::Value>(&in.amounts[i], 1);
    absl::Status s = (*op)->Process(r, &out);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::exit(1);
    }
    if (out.updates.size() >= 4096) drain();
  }
  absl::Status s = (*op)->AdvanceWatermark(weir::kMaxEventTime, &out);
  if (!s.ok()) std::exit(1);
  drain();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  *checksum = total;
  return static_cast<double>(in.keys.size()) / secs;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv, {.usage = "b1_operator_throughput: see docs/benchmarks.md"});
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t users = absl::GetFlag(FLAGS_users);
  const int repeat = static_cast<int>(absl::GetFlag(FLAGS_repeat));
  std::fprintf(stderr, "B1: generating %lld W-PAY events over %lld users\n",
               static_cast<long long>(events), static_cast<long long>(users));
  const Input in = Generate(events, users);

  auto tmp = weir::testing::TempDir::Create("weir-b1");
  auto resources = weir::RocksDbResources::Create({});
  if (!tmp.ok() || !resources.ok()) return 1;

  std::vector<double> ref, mem, rocks;
  int64_t ref_sum = 0;
  for (int r = 0; r < repeat; ++r) {
    ref.push_back(RunReference(in, &ref_sum));
    int64_t sum = 0;
    auto mb = weir::MemoryStateBackend::Create({});
    mem.push_back(RunWeir(in, mb->get(), &sum));
    if (sum != ref_sum) {
      std::fprintf(stderr, "memory checksum %lld != reference %lld\n",
                   static_cast<long long>(sum),
                   static_cast<long long>(ref_sum));
      return 1;
    }
    weir::RocksDbStateBackendOptions ro;
    ro.path = absl::StrCat(tmp->path(), "/db", r);
    ro.resources = *resources;
    auto rb = weir::RocksDbStateBackend::Create(ro);
    if (!rb.ok()) {
      std::fprintf(stderr, "%s\n", rb.status().ToString().c_str());
      return 1;
    }
    rocks.push_back(RunWeir(in, rb->get(), &sum));
    if (sum != ref_sum) {
      std::fprintf(stderr, "rocksdb checksum mismatch\n");
      return 1;
    }
  }
  const double r = Median(ref);
  std::printf("B1 memory events_per_s=%.3g ref_events_per_s=%.3g ratio=%.2f\n",
              Median(mem), r, Median(mem) / r);
  std::printf("B1 rocksdb events_per_s=%.3g ref_events_per_s=%.3g ratio=%.2f\n",
              Median(rocks), r, Median(rocks) / r);
  return 0;
}
