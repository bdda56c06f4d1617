// B2 of BENCHMARKS.md: the whole F-FRAUD feature set on one thread, RocksDB
// backend, W-PAY with disorder and late records, against B1's hand-written
// flat_hash_map loop (count + sum per user per minute) in the same run.
//
//   b2_fraud_features [--events=N] [--users=N] [--repeat=N] [--fire_step=N]
//
// The operator is driven as a pipeline drives it (and as B7 does): the
// updates of each record are handed on (counted and dropped) before the
// next, and windows fire in steps of --fire_step updates.
//
// Prints:
//   B2 rocksdb events_per_s=... ref_events_per_s=... ratio=...
//   (exits 1 if the operator's cache evicted or read state: B2 measures a
//   cache that never spills, the run B7's check compares against)
//   B2 vs_handwritten events_per_s=... ref_events_per_s=... ratio=...
//   (the second reference: F-FRAUD written by hand for this feature set,
//   RunHandWritten)
//   B2 state bytes_per_active_user=... active_users=... (every window still
//   open at the end of the input, flushed to RocksDB, in a separate untimed
//   run: keys, values and the backend's value headers)
//   B2 memory heap_bytes_per_active_user=... (the operator's heap, cache and
//   sketches, at the end of the input in that run)

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "../examples/fraud_features/fraud_features.h"
#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_state.h"
#include "tools/common/command_line.h"
#include "weir/keyed_window_operator.h"
#include "weir/record.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/sink.h"
#include "weir/sketch.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(int64_t, events, 2'000'000, "Events to process.");
ABSL_FLAG(int64_t, users, 1'000'000, "Distinct users.");
ABSL_FLAG(int32_t, repeat, 3, "Runs; the median is reported.");
ABSL_FLAG(int64_t, cache_entries, 4'000'000,
          "The operator's cache size in entries.");
ABSL_FLAG(int64_t, fire_step, 16'384,
          "Most updates one call emits from firing (max_fire_updates), as "
          "B7; 0: no bound.");

namespace {

// F-FRAUD (examples/fraud_features/fraud_features.h), on the W-PAY schema
// layout (values[0] merchant, values[1] amount).
weir::KeyedWindowOptions FraudFeatures(size_t cache_entries) {
  weir::KeyedWindowOptions o = fraud::FraudFeatures();
  o.name = "b2";
  o.cache_max_entries = cache_entries;
  o.max_fire_updates = static_cast<size_t>(absl::GetFlag(FLAGS_fire_step));
  return o;
}

// Hands the updates of the last call and of the steps it left pending on
// (counts and drops them), as a pipeline does after every record.
void TakeUpdates(weir::KeyedWindowOperator& op, weir::OperatorOutput& out,
                 uint64_t* updates) {
  const absl::Status s =
      weir::bench::FinishSteps(op, out, [&](weir::OperatorOutput& o) {
        *updates += o.updates.size();
        o.Clear();
      });
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  }
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

// F-FRAUD written by hand for this one feature set, as a careful engineer
// would: one hash map from user to a struct holding each window's
// accumulators inline (the same HyperLogLog and quantile histogram as the
// operator's), the 5-minute count as a ring of five 1-minute tiles, and a
// user's window fired when the user's next record falls in a later window,
// or at the end of the input. Its updates are built as FeatureUpdates and
// handed on after each record, as B2's are. It does less than the
// operator: no firing of idle users' windows as the watermark passes, no
// allowed lateness (a record older than its user's window is folded into
// it), nothing on disk. What it reaches bounds what any design of the
// operator could reach on this machine. Returns events/s.
double RunHandWritten(const std::vector<weir::Event>& in, uint64_t* updates) {
  constexpr int64_t kMinute = 60'000;
  constexpr int64_t kHour = 60 * kMinute;
  constexpr int64_t kDay = 24 * kHour;
  constexpr int kTiles = 5;
  const weir::HyperLogLog empty_hll = *weir::HyperLogLog::Create(14);
  const weir::QuantileHistogram empty_histogram =
      *weir::QuantileHistogram::Create(0.01);
  struct User {
    int64_t minute = weir::kMinEventTime;
    int64_t minute_count = 0;
    int64_t hour = weir::kMinEventTime;
    int64_t hour_cents = 0;
    weir::HyperLogLog merchants;
    weir::QuantileHistogram amounts;
    int64_t day = weir::kMinEventTime;
    int64_t day_cents = 0;
    int64_t day_amounts = 0;
    int64_t tile[kTiles];
    int64_t tile_count[kTiles] = {};
  };
  absl::flat_hash_map<std::string, User> users;
  std::vector<weir::FeatureUpdate> out;
  const std::string minute_name = "txn_count_1m", sum_name = "amount_sum_1h",
                    mean_name = "amount_avg_1d",
                    sliding_name = "txn_count_5m_sliding",
                    distinct_name = "distinct_merchants_1h",
                    p99_name = "amount_p99_1h";
  auto emit = [&](const std::string& key, const std::string& name,
                  int64_t start, int64_t end, weir::Value v, int64_t offset) {
    out.push_back(weir::FeatureUpdate{key, name, weir::Window{start, end},
                                      std::move(v), end, offset});
  };
  auto fire_minute = [&](const std::string& key, const User& u) {
    emit(key, minute_name, u.minute, u.minute + kMinute,
         weir::Value::Int64(u.minute_count), 0);
  };
  auto fire_hour = [&](const std::string& key, const User& u) {
    emit(key, sum_name, u.hour, u.hour + kHour,
         weir::Value::Dec(u.hour_cents, 2), 0);
    emit(key, distinct_name, u.hour, u.hour + kHour,
         weir::Value::Double(u.merchants.Estimate()), 0);
    absl::StatusOr<double> p99 = u.amounts.Quantile(0.99);
    emit(key, p99_name, u.hour, u.hour + kHour,
         p99.ok() ? weir::Value::Double(*p99) : weir::Value::Null(), 0);
  };
  auto fire_day = [&](const std::string& key, const User& u) {
    emit(key, mean_name, u.day, u.day + kDay,
         u.day_amounts == 0
             ? weir::Value::Null()
             : weir::Value::Double(static_cast<double>(u.day_cents) / 100 /
                                   static_cast<double>(u.day_amounts)),
         0);
  };
  const absl::Time start = absl::Now();
  for (const weir::Event& e : in) {
    auto [it, added] = users.try_emplace(e.key);
    User& u = it->second;
    const std::string& key = it->first;
    // A new user's sketches are set when its first hour starts, below.
    if (added) {
      std::fill(std::begin(u.tile), std::end(u.tile), weir::kMinEventTime);
    }
    const int64_t t = e.event_time;
    const int64_t minute = weir::FloorTo(t, kMinute);
    const int64_t hour = weir::FloorTo(t, kHour);
    const int64_t day = weir::FloorTo(t, kDay);
    if (minute > u.minute) {
      if (u.minute != weir::kMinEventTime) fire_minute(key, u);
      u.minute = minute;
      u.minute_count = 0;
    }
    ++u.minute_count;
    if (hour > u.hour) {
      if (u.hour != weir::kMinEventTime) fire_hour(key, u);
      u.hour = hour;
      u.hour_cents = 0;
      u.merchants = empty_hll;
      u.amounts = empty_histogram;
    }
    if (day > u.day) {
      if (u.day != weir::kMinEventTime) fire_day(key, u);
      u.day = day;
      u.day_cents = 0;
      u.day_amounts = 0;
    }
    u.merchants.Add(e.values[0].string_value());
    if (!e.values[1].is_null()) {
      const int64_t cents = e.values[1].decimal_value().units;
      u.hour_cents += cents;
      u.amounts.Add(static_cast<double>(cents) / 100);
      u.day_cents += cents;
      ++u.day_amounts;
    }
    // The record's tile, then the window of the five tiles up to its end.
    const int i = static_cast<int>((minute / kMinute) % kTiles);
    if (u.tile[i] < minute) {
      u.tile[i] = minute;
      u.tile_count[i] = 0;
    }
    if (u.tile[i] == minute) ++u.tile_count[i];  // else: older than the ring
    int64_t count = 0;
    for (int j = 0; j < kTiles; ++j) {
      if (u.tile[j] > minute - kTiles * kMinute && u.tile[j] <= minute) {
        count += u.tile_count[j];
      }
    }
    emit(key, sliding_name, minute + kMinute - kTiles * kMinute,
         minute + kMinute, weir::Value::Int64(count), e.offset);
    *updates += out.size();
    out.clear();
  }
  for (const auto& [key, u] : users) {
    fire_minute(key, u);
    fire_hour(key, u);
    fire_day(key, u);
    *updates += out.size();
    out.clear();
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  return static_cast<double>(in.size()) / secs;
}

// With `state` set, measures the state instead of firing the last windows.
double RunWeir(const std::vector<weir::Event>& in, weir::StateBackend* backend,
               size_t cache_entries, uint64_t* updates,
               weir::bench::StateFootprint* state = nullptr,
               double* heap_bytes = nullptr) {
  auto op =
      weir::KeyedWindowOperator::Create(FraudFeatures(cache_entries), backend);
  if (!op.ok()) {
    std::fprintf(stderr, "%s\n", op.status().ToString().c_str());
    std::exit(1);
  }
  weir::OperatorOutput out;
  const double heap_before = weir::bench::HeapBytesInUse();
  const absl::Time start = absl::Now();
  for (const weir::Event& e : in) {
    absl::Status s = (*op)->Process(e.view(), &out);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::exit(1);
    }
    TakeUpdates(**op, out, updates);
  }
  if (state != nullptr) {
    out.Clear();
    *heap_bytes = weir::bench::HeapBytesInUse() - heap_before;
    if (!(*op)->Flush().ok()) std::exit(1);
    *state = weir::bench::MeasureState(backend);
    return 0;
  }
  if (!(*op)->AdvanceWatermark(weir::kMaxEventTime, &out).ok()) std::exit(1);
  TakeUpdates(**op, out, updates);
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  // B2 is the run whose cache never spills (B7 checks a spilling operator
  // against one): an eviction or a state read would make it another bench.
  const weir::OperatorStats stats = (*op)->stats();
  if (stats.cache_evictions != 0 || stats.state_reads != 0) {
    std::fprintf(stderr,
                 "B2's cache spilled (%llu evictions, %llu state reads): "
                 "raise --cache_entries\n",
                 static_cast<unsigned long long>(stats.cache_evictions),
                 static_cast<unsigned long long>(stats.state_reads));
    std::exit(1);
  }
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
  std::vector<double> ref, rocks, hand;
  uint64_t updates = 0;
  uint64_t hand_updates = 0;
  for (int r = 0; r < repeat; ++r) {
    ref.push_back(RunReference(in));
    hand_updates = 0;
    hand.push_back(RunHandWritten(in, &hand_updates));
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
  std::sort(hand.begin(), hand.end());
  const double h = hand[hand.size() / 2];
  std::printf(
      "B2 vs_handwritten events_per_s=%.3g ref_events_per_s=%.3g ratio=%.2f "
      "ref_updates=%llu\n",
      x, h, x / h, static_cast<unsigned long long>(hand_updates));

  weir::RocksDbStateBackendOptions so;
  so.path = absl::StrCat(tmp->path(), "/state");
  so.resources = *resources;
  auto backend = weir::RocksDbStateBackend::Create(so);
  if (!backend.ok()) return 1;
  weir::bench::StateFootprint state;
  double heap_bytes = 0;
  RunWeir(in, backend->get(), cache, &updates, &state, &heap_bytes);
  if (!state.ok) return 1;
  std::printf(
      "B2 state bytes_per_active_user=%.0f active_users=%llu "
      "window_entries=%llu state_mb=%.1f\n",
      state.BytesPerEntity(), static_cast<unsigned long long>(state.entities),
      static_cast<unsigned long long>(state.window_entries),
      static_cast<double>(state.window_bytes + state.timer_bytes) / (1 << 20));
  std::printf("B2 memory heap_bytes_per_active_user=%.0f heap_mb=%.1f\n",
              heap_bytes / static_cast<double>(state.entities),
              heap_bytes / (1 << 20));
  return 0;
}
