#include "weir/keyed_window_operator.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/internal/coding.h"
#include "weir/internal/state_keys.h"
#include "weir/testing/harness.h"
#include "weir/testing/sanitizers.h"

namespace weir {

void PrintTo(const FeatureUpdate& u, std::ostream* os) {
  *os << u.key << "/" << u.feature << "[" << u.window.start << ","
      << u.window.end << ")=" << u.value.ToString() << " v(" << u.version_time
      << "," << u.version_offset << ")";
}

namespace {

using testing::BackendKind;
using ::testing::ElementsAre;
using testing::HarnessOptions;
using ::testing::HasSubstr;
using testing::OperatorHarness;

constexpr EventTime kMin = 60'000;

FeatureSpec Count(std::string name, WindowSpec w) {
  FeatureSpec f;
  f.name = std::move(name);
  f.aggregate = AggregateKind::kCount;
  f.window = w;
  return f;
}

FeatureSpec Agg(std::string name, AggregateKind kind, WindowSpec w, int field) {
  FeatureSpec f = Count(std::move(name), w);
  f.aggregate = kind;
  f.field = field;
  return f;
}

class KeyedWindowOperatorTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  std::unique_ptr<OperatorHarness> Make(
      KeyedWindowOptions op, std::optional<absl::Duration> ttl = {}) {
    HarnessOptions options;
    options.op = std::move(op);
    if (options.op.name.empty()) options.op.name = "test";
    options.backend = GetParam();
    options.state_ttl = ttl;
    auto h = OperatorHarness::Create(options);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? std::move(*h) : nullptr;
  }

  // An operator with `op` that ran `events` to the end of the input.
  std::unique_ptr<OperatorHarness> RunAll(const KeyedWindowOptions& op,
                                          const std::vector<Event>& events) {
    auto h = Make(op);
    if (h == nullptr) return nullptr;
    for (const Event& e : events) EXPECT_TRUE(h->Process(e).ok());
    EXPECT_TRUE(h->Finish().ok());
    return h;
  }

  // The body of CheckpointBetweenFiringStepsLosesNothing.
  void CheckpointBetweenFiringSteps(absl::Duration lateness, int steps);

  // Runs `events` to the end of the input through an operator with `op`'s
  // cache (big) and one with `tiny_cache` entries (tiny).
  void RunWithTwoCaches(KeyedWindowOptions op, size_t tiny_cache,
                        const std::vector<Event>& events,
                        std::unique_ptr<OperatorHarness>* big,
                        std::unique_ptr<OperatorHarness>* tiny) {
    *big = Make(op);
    op.cache_max_entries = tiny_cache;
    *tiny = Make(op);
    ASSERT_NE(*big, nullptr);
    ASSERT_NE(*tiny, nullptr);
    for (const Event& e : events) {
      ASSERT_TRUE((*big)->Process(e).ok());
      ASSERT_TRUE((*tiny)->Process(e).ok());
    }
    ASSERT_TRUE((*big)->Finish().ok());
    ASSERT_TRUE((*tiny)->Finish().ok());
  }

  // Runs `events`, without the end of the input, through an operator with
  // `op` (big) and one whose cache is bounded to `bound` bytes (bounded),
  // checking after every record that the bounded cache holds less than
  // its bound. `*big_peak`, if given, gets the most the big cache held.
  void RunBesideByteBound(KeyedWindowOptions op, size_t bound,
                          const std::vector<Event>& events,
                          std::unique_ptr<OperatorHarness>* big,
                          std::unique_ptr<OperatorHarness>* bounded,
                          uint64_t* big_peak = nullptr) {
    *big = Make(op);
    op.cache_max_bytes = bound;
    *bounded = Make(op);
    ASSERT_NE(*big, nullptr);
    ASSERT_NE(*bounded, nullptr);
    for (const Event& e : events) {
      ASSERT_TRUE((*big)->Process(e).ok());
      ASSERT_TRUE((*bounded)->Process(e).ok());
      if (big_peak != nullptr) {
        *big_peak = std::max(*big_peak, (*big)->op().stats().cache_bytes);
      }
      ASSERT_LT((*bounded)->op().stats().cache_bytes, bound) << e.offset;
    }
  }
};

int64_t CountOf(const FeatureUpdate& u) { return u.value.int64_value(); }

// Both runs ended with the same latest update for every (key, feature,
// window).
void ExpectSameFinal(const OperatorHarness& want, const OperatorHarness& got) {
  const auto a = want.Final();
  const auto b = got.Final();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, u] : a) {
    ASSERT_TRUE(b.count(k)) << std::get<0>(k) << " " << std::get<1>(k);
    EXPECT_EQ(u, b.at(k));
  }
}

// `n` records in event-time order, one every `step_ms`, of `keys` random
// keys, each with a random amount (a decimal of 2 places below 10).
std::vector<Event> InOrder(uint64_t seed, int n, int keys, int64_t step_ms) {
  std::mt19937_64 rng(seed);
  std::vector<Event> events;
  for (int i = 0; i < n; ++i) {
    Event e;
    e.key = absl::StrCat("k", rng() % keys);
    e.event_time = i * step_ms;
    e.offset = i;
    e.values = {Value::Dec(static_cast<int64_t>(rng() % 1000), 2)};
    events.push_back(e);
  }
  return events;
}

// Exact number of live keys in a column (RocksDB's Stats are estimates).
size_t Keys(StateBackend& backend, Column column) {
  size_t n = 0;
  for (auto it = backend.Scan(column, "", ""); it->Valid(); it->Next()) ++n;
  return n;
}

TEST_P(KeyedWindowOperatorTest, FiresOnceWatermarkPassesWindowEnd) {
  KeyedWindowOptions op;
  op.features = {Count("n", Tumbling(absl::Minutes(1)))};
  auto h = Make(op);
  ASSERT_TRUE(h->Add("u1", 1000).ok());
  ASSERT_TRUE(h->Add("u1", 59'999).ok());
  ASSERT_TRUE(h->Add("u2", 30'000).ok());
  EXPECT_TRUE(h->updates().empty());
  // A record exactly at the boundary belongs to the next window, and its
  // event time moves the watermark to 60000: the first window fires.
  ASSERT_TRUE(h->Add("u1", kMin).ok());
  auto final = h->Final();
  ASSERT_EQ(final.size(), 2u);
  const FeatureUpdate& u1 = final.at({"u1", "n", 0});
  EXPECT_EQ(CountOf(u1), 2);
  EXPECT_EQ(u1.window, (Window{0, kMin}));
  EXPECT_EQ(u1.version_time, kMin);
  EXPECT_EQ(u1.version_offset, 1);
  EXPECT_EQ(CountOf(final.at({"u2", "n", 0})), 1);
  ASSERT_TRUE(h->Finish().ok());
  EXPECT_EQ(CountOf(h->Final().at({"u1", "n", kMin})), 1);
}

TEST_P(KeyedWindowOperatorTest, LatenessOnTimeWithinAndBeyond) {
  KeyedWindowOptions op;
  op.features = {Count("n", Tumbling(absl::Minutes(1)))};
  op.allowed_lateness = absl::Minutes(1);
  auto h = Make(op);
  ASSERT_TRUE(h->Add("u", 10'000).ok());
  ASSERT_TRUE(h->Add("u", 70'000).ok());  // watermark 70000: [0,60000) fires
  ASSERT_EQ(h->updates().size(), 1u);
  EXPECT_EQ(CountOf(h->updates()[0]), 1);
  // Within lateness: folded, re-emitted with a higher version.
  ASSERT_TRUE(h->Add("u", 20'000).ok());
  ASSERT_EQ(h->updates().size(), 2u);
  EXPECT_EQ(CountOf(h->updates()[1]), 2);
  EXPECT_TRUE(h->updates()[1].NewerThan(h->updates()[0]));
  EXPECT_TRUE(h->late().empty());
  // The watermark reaches 120000 = end + lateness: the window is gone.
  ASSERT_TRUE(h->Add("u", 120'000).ok());
  ASSERT_TRUE(h->Add("u", 30'000).ok());
  ASSERT_EQ(h->late().size(), 1u);
  EXPECT_EQ(h->late()[0].event_time, 30'000);
  EXPECT_EQ(h->late()[0].offset, 4);
  EXPECT_EQ(h->late()[0].watermark, 120'000);
  EXPECT_THAT(h->late()[0].features, ElementsAre("n"));
  EXPECT_EQ(h->op().stats().records_late, 1u);
  EXPECT_EQ(CountOf(h->Final().at({"u", "n", 0})), 2);
}

TEST_P(KeyedWindowOperatorTest, OutOfOrderWithinBoundEqualsSorted) {
  KeyedWindowOptions op;
  op.features = {
      Count("n", Tumbling(absl::Seconds(10))),
      Agg("s", AggregateKind::kDecimalSum, Tumbling(absl::Seconds(10)), 0)};
  op.max_out_of_orderness = absl::Seconds(5);
  std::vector<Event> events;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 5000; ++i) {
    Event e;
    e.key = absl::StrCat("k", rng() % 50);
    e.event_time = i * 10;
    e.values = {Value::Dec(static_cast<int64_t>(rng() % 100000), 2)};
    events.push_back(e);
  }
  auto sorted = Make(op);
  for (const Event& e : events) ASSERT_TRUE(sorted->Process(e).ok());
  ASSERT_TRUE(sorted->Finish().ok());
  // Shuffle within 4 s windows of position: never beyond the bound.
  std::vector<Event> shuffled = events;
  for (size_t i = 0; i < shuffled.size(); i += 400) {
    std::shuffle(shuffled.begin() + i,
                 shuffled.begin() + std::min(shuffled.size(), i + 400), rng);
  }
  auto mixed = Make(op);
  for (Event e : shuffled) {
    e.offset = -1;
    ASSERT_TRUE(mixed->Process(e).ok());
  }
  ASSERT_TRUE(mixed->Finish().ok());
  EXPECT_TRUE(mixed->late().empty());
  auto a = sorted->Final();
  auto b = mixed->Final();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, u] : a) EXPECT_EQ(u.value, b.at(k).value);
}

TEST_P(KeyedWindowOperatorTest, SessionsMergeAcrossGaps) {
  KeyedWindowOptions op;
  op.features = {
      Count("n", Session(absl::Seconds(30))),
      Agg("first", AggregateKind::kFirst, Session(absl::Seconds(30)), 0)};
  op.max_out_of_orderness = absl::Minutes(1);
  auto h = Make(op);
  auto add = [&](EventTime t, double v) {
    ASSERT_TRUE(h->Add("u", t, {Value::Double(v)}).ok());
  };
  add(0, 1);
  add(20'000, 2);   // [0, 50000)
  add(100'000, 3);  // a second session [100000, 130000)
  add(45'000, 4);   // extends the first to [0, 75000)
  add(75'000, 5);   // touches both: [0, 130000)
  ASSERT_TRUE(h->Finish().ok());
  auto final = h->Final();
  ASSERT_EQ(final.size(), 2u);
  const FeatureUpdate& n = final.at({"u", "n", 0});
  EXPECT_EQ(n.window, (Window{0, 130'000}));
  EXPECT_EQ(CountOf(n), 5);
  EXPECT_EQ(final.at({"u", "first", 0}).value, Value::Double(1));
}

TEST_P(KeyedWindowOperatorTest, HoppingWindowsEachCountTheRecord) {
  KeyedWindowOptions op;
  op.features = {Count("n", Hopping(absl::Minutes(3), absl::Minutes(1)))};
  auto h = Make(op);
  ASSERT_TRUE(h->Add("u", 150'000).ok());  // minute 2
  ASSERT_TRUE(h->Finish().ok());
  auto final = h->Final();
  ASSERT_EQ(final.size(), 3u);
  for (EventTime start : {0L, 60'000L, 120'000L}) {
    EXPECT_EQ(CountOf(final.at({"u", "n", start})), 1) << start;
  }
}

TEST_P(KeyedWindowOperatorTest, FeaturesShareOneEntryAndNullPolicies) {
  KeyedWindowOptions op;
  FeatureSpec skip =
      Agg("cnt_skip", AggregateKind::kCount, Tumbling(absl::Minutes(1)), 0);
  FeatureSpec zero =
      Agg("mean_zero", AggregateKind::kMean, Tumbling(absl::Minutes(1)), 0);
  zero.aggregator.null_policy = NullPolicy::kZero;
  op.features = {
      Count("records", Tumbling(absl::Minutes(1))), skip, zero,
      Agg("sum", AggregateKind::kDecimalSum, Tumbling(absl::Minutes(1)), 0)};
  auto h = Make(op);
  ASSERT_TRUE(h->Add("u", 1, {Value::Dec(1000, 2)}).ok());
  ASSERT_TRUE(h->Add("u", 2, {Value::Null()}).ok());
  ASSERT_TRUE(h->Add("u", 3, {Value::Dec(505, 2)}).ok());
  ASSERT_TRUE(h->Finish().ok());
  auto f = h->Final();
  EXPECT_EQ(CountOf(f.at({"u", "records", 0})), 3);
  EXPECT_EQ(CountOf(f.at({"u", "cnt_skip", 0})), 2);
  EXPECT_DOUBLE_EQ(f.at({"u", "mean_zero", 0}).value.double_value(),
                   (10.00 + 0 + 5.05) / 3);
  EXPECT_EQ(f.at({"u", "sum", 0}).value, Value::Dec(1505, 2));
  EXPECT_EQ(h->op().stats().windows_fired, 1u);  // one entry for four features
}

TEST_P(KeyedWindowOperatorTest, BadValueIsRefusedAndChangesNothing) {
  KeyedWindowOptions op;
  op.features = {
      Count("n", Tumbling(absl::Minutes(1))),
      Agg("sum", AggregateKind::kDecimalSum, Tumbling(absl::Minutes(1)), 0)};
  auto h = Make(op);
  ASSERT_TRUE(h->Add("u", 1, {Value::Dec(100, 2)}).ok());
  ASSERT_TRUE(h->Add("u", 2, {Value::String("abc")}).ok());
  ASSERT_TRUE(h->Add("u", 3, {}).ok());  // missing field
  ASSERT_TRUE(h->Finish().ok());
  ASSERT_EQ(h->failures().size(), 2u);
  EXPECT_THAT(h->failures()[0].second.message(), HasSubstr("'sum'"));
  EXPECT_THAT(h->failures()[1].second.message(), HasSubstr("has 0 values"));
  EXPECT_EQ(CountOf(h->Final().at({"u", "n", 0})), 1);
}

// Results never depend on how much the cache holds: a cache of 8 entries
// spills and re-reads constantly and must agree with one that never spills.
// Every sliding-window update equals a brute-force recount over the records
// seen so far, and the newest update per key is the key's latest window —
// also with disorder, late records and a cache that spills.
TEST_P(KeyedWindowOperatorTest, SlidingWindowsEqualBruteForce) {
  const int64_t kTile = 60'000, kSize = 5 * kTile, kOoo = 20'000,
                kLate = 30'000;
  // With the sum, the tiles keep no memo of the tiles before them (no room
  // in the entry); with the count alone they do.
  for (const bool with_sum : {true, false}) {
    for (size_t cache : {size_t{1} << 16, size_t{16}}) {
      SCOPED_TRACE(absl::StrCat("with_sum=", with_sum, " cache=", cache));
      KeyedWindowOptions op;
      op.features = {Count("n5m", Sliding(absl::Minutes(5), absl::Minutes(1)))};
      if (with_sum) {
        op.features.push_back(Agg("sum5m", AggregateKind::kDecimalSum,
                                  Sliding(absl::Minutes(5), absl::Minutes(1)),
                                  0));
      }
      op.max_out_of_orderness = absl::Milliseconds(kOoo);
      op.allowed_lateness = absl::Milliseconds(kLate);
      op.cache_max_entries = cache;
      auto h = Make(op);
      std::mt19937_64 rng(17);
      struct Seen {
        EventTime t;
        int64_t offset;
        int64_t cents;
      };
      std::map<std::string, std::vector<Seen>> folded;  // non-late, per key
      EventTime max_time = kMinEventTime;
      size_t checked = 0;
      for (int i = 0; i < 6000; ++i) {
        const std::string key = absl::StrCat("k", rng() % 20);
        EventTime t = i * 500 - static_cast<int64_t>(rng() % 15'000);
        if (rng() % 50 == 0) t -= 120'000;  // some beyond lateness
        const int64_t cents = static_cast<int64_t>(rng() % 10'000);
        const size_t before = h->updates().size();
        ASSERT_TRUE(h->Add(key, t, {Value::Dec(cents, 2)}).ok());
        const EventTime tile_end = FloorTo(t, kTile) + kTile;
        const bool late =
            max_time != kMinEventTime && tile_end + kLate <= max_time - kOoo;
        max_time = std::max(max_time, t);
        if (!late) folded[key].push_back({t, i, cents});
        EXPECT_EQ(h->updates().size() == before, late) << i;
        for (size_t u = before; u < h->updates().size(); ++u) {
          const FeatureUpdate& up = h->updates()[u];
          ASSERT_EQ(up.window.end - up.window.start, kSize);
          int64_t n = 0, sum = 0;
          for (const Seen& s : folded[up.key]) {
            if (s.t >= up.window.start && s.t < up.window.end) {
              ++n;
              sum += s.cents;
            }
          }
          if (up.feature == "n5m") {
            EXPECT_EQ(up.value, Value::Int64(n)) << i;
          } else {
            EXPECT_EQ(up.value, Value::Dec(sum, 2)) << i;
          }
          ++checked;
        }
      }
      EXPECT_GT(checked, with_sum ? 10'000u : 5'000u);
      // What an idempotent sink keeps: the newest update of each key is its
      // latest window.
      std::map<std::string, FeatureUpdate> newest;
      for (const FeatureUpdate& u : h->updates()) {
        if (u.feature != "n5m") continue;
        auto [it, inserted] = newest.try_emplace(u.key, u);
        if (!inserted && u.NewerThan(it->second)) it->second = u;
      }
      for (const auto& [key, u] : newest) {
        EventTime latest_end = kMinEventTime;
        for (const Seen& s : folded[key]) {
          latest_end = std::max(latest_end, FloorTo(s.t, kTile) + kTile);
        }
        EXPECT_EQ(u.window.end, latest_end) << key;
        int64_t n = 0;
        for (const Seen& s : folded[key]) {
          n += (s.t >= latest_end - kSize && s.t < latest_end) ? 1 : 0;
        }
        EXPECT_EQ(u.value, Value::Int64(n)) << key;
      }
      if (cache == 16) EXPECT_GT(h->op().stats().cache_evictions, 100u);
    }
  }
}

// A record that lands in an earlier tile than the key's latest also changes
// the latest window: both are emitted, and the newest version (what an
// idempotent sink keeps) counts the record.
TEST_P(KeyedWindowOperatorTest, SlidingOutOfOrderRecordUpdatesLatestWindow) {
  KeyedWindowOptions op;
  op.features = {Count("n5m", Sliding(absl::Minutes(5), absl::Minutes(1)))};
  op.max_out_of_orderness = absl::Minutes(1);
  auto h = Make(op);
  ASSERT_TRUE(h->Add("u", 130'000).ok());  // tile [120000, 180000)
  ASSERT_TRUE(h->Add("u", 100'000).ok());  // tile [60000, 120000)
  ASSERT_EQ(h->updates().size(), 3u);
  EXPECT_EQ(h->updates()[0].window, (Window{-120'000, 180'000}));
  EXPECT_EQ(CountOf(h->updates()[0]), 1);
  EXPECT_EQ(h->updates()[1].window, (Window{-180'000, 120'000}));
  EXPECT_EQ(CountOf(h->updates()[1]), 1);
  const FeatureUpdate& latest = h->updates()[2];
  EXPECT_EQ(latest.window, (Window{-120'000, 180'000}));
  EXPECT_EQ(CountOf(latest), 2);
  EXPECT_TRUE(latest.NewerThan(h->updates()[0]));
}

// Distinct merchants (field 0) and the p99 amount (field 1) per hour.
std::vector<FeatureSpec> HourlySketches() {
  FeatureSpec distinct = Agg("merchants_1h", AggregateKind::kDistinctCount,
                             Tumbling(absl::Hours(1)), 0);
  FeatureSpec p99 = Agg("amount_p99_1h", AggregateKind::kQuantile,
                        Tumbling(absl::Hours(1)), 1);
  p99.aggregator.quantile = 0.99;
  return {distinct, p99};
}

// `n` payments of `users` users, one every `step_ms`: a merchant of
// `merchants` and an amount below `max_cents` cents.
std::vector<Event> Payments(uint64_t seed, int n, int users, int64_t step_ms,
                            int merchants, int64_t max_cents) {
  std::mt19937_64 rng(seed);
  std::vector<Event> events;
  for (int i = 0; i < n; ++i) {
    Event e;
    e.key = absl::StrCat("u", rng() % users);
    e.event_time = i * step_ms;
    e.offset = i;
    const std::string m = absl::StrCat("m", rng() % merchants);
    const int64_t cents = static_cast<int64_t>(rng() % max_cents);
    e.values = {Value::String(m), Value::Dec(cents, 2)};
    events.push_back(e);
  }
  return events;
}

// Sketch features (HyperLogLog distinct count, quantile histogram) through
// the whole engine: spills, reloads, restore. Both sketches are order-free
// (register max; bucket counts), so spilled and unspilled runs agree
// exactly; the quantile is within 1% of the exact one.
TEST_P(KeyedWindowOperatorTest, SketchFeaturesSurviveSpillsAndRestore) {
  KeyedWindowOptions op;
  op.features = HourlySketches();
  // All in the first hour.
  const std::vector<Event> events = Payments(23, 20000, 10, 100, 3000, 100000);
  std::map<std::string, std::set<std::string>> merchants;
  std::map<std::string, std::vector<double>> amounts;
  for (const Event& e : events) {
    merchants[e.key].insert(e.values[0].string_value());
    amounts[e.key].push_back(
        static_cast<double>(e.values[1].decimal_value().units) / 100);
  }
  auto big = Make(op);
  op.cache_max_entries = 4;
  auto tiny = Make(op);
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_TRUE(big->Process(events[i]).ok());
    ASSERT_TRUE(tiny->Process(events[i]).ok());
    if (i == events.size() / 2) {
      auto snap = tiny->Snapshot();
      ASSERT_TRUE(snap.ok()) << snap.status();
      ASSERT_TRUE(tiny->Restore(*snap).ok());
    }
  }
  ASSERT_TRUE(big->Finish().ok());
  ASSERT_TRUE(tiny->Finish().ok());
  auto a = big->Final();
  auto b = tiny->Final();
  ASSERT_EQ(a.size(), 20u);
  for (const auto& [user, set] : merchants) {
    const int64_t est = a.at({user, "merchants_1h", 0}).value.int64_value();
    EXPECT_NEAR(est, static_cast<int64_t>(set.size()), 0.03 * set.size())
        << user;
    EXPECT_EQ(b.at({user, "merchants_1h", 0}).value, Value::Int64(est));
    std::vector<double> v = amounts[user];
    std::sort(v.begin(), v.end());
    // x_i for the smallest i with i / n >= 0.99.
    size_t i = 1;
    while (i < v.size() && static_cast<double>(i) / v.size() < 0.99) ++i;
    const double want = v[i - 1];
    const Value q = a.at({user, "amount_p99_1h", 0}).value;
    EXPECT_LE(std::abs(q.double_value() - want), 0.01 * want) << user;
    EXPECT_EQ(b.at({user, "amount_p99_1h", 0}).value, q) << user;
  }
}

// Bounded in bytes, the cache stays within its bound while its sketches
// grow (a HyperLogLog's sparse list, a histogram's buckets) without taking
// new entries, and emits what an unbounded cache emits. Once every window
// has fired, it holds no sketch.
TEST_P(KeyedWindowOperatorTest, ByteBoundHoldsWhileSketchesGrow) {
  KeyedWindowOptions op;
  op.features = HourlySketches();
  op.features.insert(op.features.begin(),
                     Count("n_1m", Tumbling(absl::Minutes(1))));
  // A bit over three hours.
  const std::vector<Event> events =
      Payments(29, 60000, 100, 200, 100000, 10000000);
  constexpr size_t kBound = 128 << 10;
  std::unique_ptr<OperatorHarness> big, bounded;
  uint64_t big_peak = 0;
  ASSERT_NO_FATAL_FAILURE(
      RunBesideByteBound(op, kBound, events, &big, &bounded, &big_peak));
  // The bound was binding: unbounded, the cache held far more.
  EXPECT_GT(big_peak, 2 * kBound);
  EXPECT_EQ(big->op().stats().cache_evictions, 0u);
  EXPECT_GT(bounded->op().stats().cache_evictions, 1000u);
  // The slots that growing sketches freed were given back, not kept.
  EXPECT_GT(bounded->op().stats().cache_chunks_given_back, 0u);
  EXPECT_EQ(big->op().stats().cache_chunks_given_back, 0u);
  ASSERT_TRUE(big->Finish().ok());
  ASSERT_TRUE(bounded->Finish().ok());
  ExpectSameFinal(*big, *bounded);
  // Nothing is cached any more, no sketch is left counted, and what the
  // bounded cache holds (its slabs, which keep their size) is in bound.
  for (auto* h : {big.get(), bounded.get()}) {
    EXPECT_EQ(h->op().stats().cache_entries, 0u);
    EXPECT_EQ(h->op().stats().cache_sketch_bytes, 0u);
  }
  EXPECT_LT(bounded->op().stats().cache_bytes, kBound);
}

// At its byte bound, a cache whose entries do not grow (no sketches)
// evicts a batch and fills the slots it freed with the next windows: it
// gives back no chunk, where giving back every chunk an eviction freed
// and committing it again for the next windows cost a page fault per 32
// entries. It stays within its bound and emits what an unbounded cache
// emits.
TEST_P(KeyedWindowOperatorTest, AtItsByteBoundEvictionReusesTheFreedSlots) {
  KeyedWindowOptions op;
  op.features = {
      Count("n_1m", Tumbling(absl::Minutes(1))),
      Agg("sum_1h", AggregateKind::kDecimalSum, Tumbling(absl::Hours(1)), 0)};
  // 20,000 keys, a record every 100 ms: each key's windows outlive many
  // evictions.
  const std::vector<Event> events = InOrder(37, 60000, 20000, 100);
  constexpr size_t kBound = 512 << 10;
  std::unique_ptr<OperatorHarness> big, bounded;
  ASSERT_NO_FATAL_FAILURE(
      RunBesideByteBound(op, kBound, events, &big, &bounded));
  const OperatorStats stats = bounded->op().stats();
  EXPECT_GT(stats.cache_evictions, 10000u);
  EXPECT_EQ(stats.cache_chunks_given_back, 0u)
      << stats.cache_evictions << " evictions";
  ASSERT_TRUE(big->Finish().ok());
  ASSERT_TRUE(bounded->Finish().ok());
  ExpectSameFinal(*big, *bounded);
}

// A cache at the smallest byte bound gives back the chunks of the slots
// that firing and eviction free, moving entries and nodes out of the last
// chunks as it goes, while windows of every kind (sessions too) wait for
// their timers among disordered and late records: every window still
// fires, and late records re-emit, as in a cache that never spills.
TEST_P(KeyedWindowOperatorTest, GivingBackChunksLosesNoWindow) {
  KeyedWindowOptions op;
  op.features = {Count("n_1m", Tumbling(absl::Minutes(1))),
                 Agg("sum_10m", AggregateKind::kDecimalSum,
                     Hopping(absl::Minutes(10), absl::Minutes(5)), 0),
                 Count("n_5m", Sliding(absl::Minutes(5), absl::Minutes(1))),
                 Count("visits", Session(absl::Minutes(2)))};
  op.max_out_of_orderness = absl::Seconds(20);
  op.allowed_lateness = absl::Seconds(90);
  std::vector<Event> events = InOrder(31, 20000, 2000, 30);
  std::mt19937_64 rng(31);
  for (Event& e : events) {
    if (rng() % 10 == 0) e.event_time -= static_cast<int64_t>(rng() % 60'000);
    if (rng() % 100 == 0) e.event_time -= 200'000;  // beyond lateness
  }
  constexpr size_t kBound = KeyedWindowOptions::kMinCacheBytes;
  std::unique_ptr<OperatorHarness> big, bounded;
  ASSERT_NO_FATAL_FAILURE(
      RunBesideByteBound(op, kBound, events, &big, &bounded));
  EXPECT_GT(bounded->op().stats().cache_chunks_given_back, 10u);
  EXPECT_GT(bounded->op().stats().cache_evictions, 1000u);
  ASSERT_TRUE(big->Finish().ok());
  ASSERT_TRUE(bounded->Finish().ok());
  EXPECT_EQ(big->updates().size(), bounded->updates().size());
  ExpectSameFinal(*big, *bounded);
}

// With max_fire_updates, the hour's windows of 2,000 keys (and each
// minute's) fire in steps of at most 50 updates, and what the steps emit,
// in order, is what one unbounded call emits: whether the caller finishes
// the steps (firing_pending) or goes on with its next record, which fires
// the rest first. The cache spills, so steps also end and resume in the
// backend's timers.
TEST_P(KeyedWindowOperatorTest, FiringInStepsEmitsTheSameUpdatesInOrder) {
  KeyedWindowOptions op;
  op.features = {
      Count("n_1m", Tumbling(absl::Minutes(1))),
      Agg("sum_1h", AggregateKind::kDecimalSum, Tumbling(absl::Hours(1)), 1)};
  op.cache_max_entries = 500;
  // 100 minutes.
  const std::vector<Event> events = Payments(31, 30000, 2000, 200, 10, 10000);
  constexpr size_t kStep = 50;
  auto whole = Make(op);
  op.max_fire_updates = kStep;
  auto stepped = Make(op);
  auto ignored = Make(op);  // never asks firing_pending before Process
  ASSERT_NE(whole, nullptr);
  ASSERT_NE(stepped, nullptr);
  ASSERT_NE(ignored, nullptr);
  std::vector<FeatureUpdate> want, got_stepped, got_ignored;
  size_t steps = 0, largest_step = 0;
  auto take = [](OperatorOutput& out, std::vector<FeatureUpdate>* to) {
    to->insert(to->end(), out.updates.begin(), out.updates.end());
    const size_t n = out.updates.size();
    out.Clear();
    return n;
  };
  // Feeds `e` (or the end of the input) to each operator.
  auto feed = [&](const Event* e) {
    OperatorOutput out;
    auto call = [&](OperatorHarness& h) {
      return e != nullptr ? h.op().Process(e->view(), &out)
                          : h.op().AdvanceWatermark(kMaxEventTime, &out);
    };
    ASSERT_TRUE(call(*whole).ok());
    take(out, &want);
    EXPECT_FALSE(whole->op().firing_pending());
    ASSERT_TRUE(call(*stepped).ok());
    largest_step = std::max(largest_step, take(out, &got_stepped));
    while (stepped->op().firing_pending()) {
      ++steps;
      ASSERT_TRUE(
          stepped->op().AdvanceWatermark(stepped->op().watermark(), &out).ok());
      largest_step = std::max(largest_step, take(out, &got_stepped));
    }
    ASSERT_TRUE(call(*ignored).ok());
    take(out, &got_ignored);
  };
  for (const Event& e : events) {
    feed(&e);
    if (HasFatalFailure()) return;
  }
  feed(nullptr);
  if (HasFatalFailure()) return;
  // The last call left steps behind: finish them.
  OperatorOutput out;
  while (ignored->op().firing_pending()) {
    ASSERT_TRUE(
        ignored->op().AdvanceWatermark(ignored->op().watermark(), &out).ok());
    take(out, &got_ignored);
  }
  // 100 minutes of 2,000 keys: both groups' windows, many steps.
  EXPECT_GT(want.size(), 20000u);
  EXPECT_GT(steps, want.size() / kStep / 2);
  EXPECT_LE(largest_step, kStep);
  EXPECT_GT(stepped->op().stats().cache_evictions, 1000u);
  ASSERT_EQ(got_stepped.size(), want.size());
  ASSERT_EQ(got_ignored.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got_stepped[i], want[i]) << i;
    ASSERT_EQ(got_ignored[i], want[i]) << i;
  }
  // Each step deleted the timers it went through, and only those.
  for (OperatorHarness* h : {whole.get(), stepped.get(), ignored.get()}) {
    EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
  }
}

// A checkpoint taken between two firing steps holds the windows still due
// as due: restored, they fire before the next record, and nothing is lost
// or fired twice against an uninterrupted, unbounded run. With allowed
// lateness, windows that fired from the cache stay cached, so the
// checkpoint holds them as state too: restored, they must not fire again.
TEST_P(KeyedWindowOperatorTest, CheckpointBetweenFiringStepsLosesNothing) {
  for (absl::Duration lateness : {absl::ZeroDuration(), absl::Minutes(30)}) {
    // At the first step (the cache's windows fire first) and at the sixth
    // (in the scan of the spilled ones).
    for (int steps : {0, 5}) {
      SCOPED_TRACE(absl::StrCat(absl::FormatDuration(lateness), " ", steps));
      CheckpointBetweenFiringSteps(lateness, steps);
      if (HasFatalFailure()) return;
    }
  }
}

void KeyedWindowOperatorTest::CheckpointBetweenFiringSteps(
    absl::Duration lateness, int steps) {
  KeyedWindowOptions op;
  op.features = {
      Agg("sum_1h", AggregateKind::kDecimalSum, Tumbling(absl::Hours(1)), 1)};
  op.allowed_lateness = lateness;
  op.cache_max_entries = 300;
  const std::vector<Event> events = Payments(37, 30000, 2000, 200, 10, 10000);
  auto whole = Make(op);
  op.max_fire_updates = 100;
  auto stepped = Make(op);
  ASSERT_NE(whole, nullptr);
  ASSERT_NE(stepped, nullptr);
  std::vector<FeatureUpdate> direct;  // what `stepped` emitted before
  OperatorOutput out;
  size_t i = 0;
  for (; i < events.size(); ++i) {
    ASSERT_TRUE(whole->Process(events[i]).ok());
    ASSERT_TRUE(stepped->op().Process(events[i].view(), &out).ok());
    direct.insert(direct.end(), out.updates.begin(), out.updates.end());
    out.Clear();
    if (stepped->op().firing_pending()) break;  // the first hour is due
  }
  ASSERT_LT(i, events.size());
  for (int step = 0; step < steps; ++step) {
    ASSERT_TRUE(stepped->op().firing_pending());
    ASSERT_TRUE(
        stepped->op().AdvanceWatermark(stepped->op().watermark(), &out).ok());
    direct.insert(direct.end(), out.updates.begin(), out.updates.end());
    out.Clear();
  }
  ASSERT_GT(direct.size(), 0u);
  auto snap = stepped->Snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_TRUE(stepped->Restore(*snap).ok());
  EXPECT_TRUE(stepped->op().firing_pending());
  for (++i; i < events.size(); ++i) {
    ASSERT_TRUE(whole->Process(events[i]).ok());
    ASSERT_TRUE(stepped->Process(events[i]).ok());
  }
  ASSERT_TRUE(whole->Finish().ok());
  ASSERT_TRUE(stepped->Finish().ok());
  direct.insert(direct.end(), stepped->updates().begin(),
                stepped->updates().end());
  const auto want = whole->Final();
  const auto got = testing::Latest(direct);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [k, u] : want) {
    ASSERT_TRUE(got.count(k)) << std::get<0>(k) << " " << std::get<2>(k);
    EXPECT_EQ(got.at(k), u);
  }
  // Each first-hour window fired once: its update, and no second one.
  std::map<std::tuple<std::string, std::string, EventTime>, int> fired;
  for (const FeatureUpdate& u : direct) {
    ++fired[{u.key, u.feature, u.window.start}];
  }
  for (const auto& [k, n] : fired) EXPECT_EQ(n, 1) << std::get<0>(k);
}

// A watermark past the hour and past every key's last session makes every
// key's hourly window and session due at once, in the cache and spilled: a
// firing of many steps through the cache's windows, the scan of the stored
// hourly windows (kept for allowed lateness) and the scan of the sessions'
// timers. A checkpoint after any number of its steps, restored, fires the
// rest: every window once, with its value.
TEST_P(KeyedWindowOperatorTest, CheckpointAtAnyFiringStepFiresEachWindowOnce) {
  KeyedWindowOptions op;
  op.features = {
      Agg("sum_1h", AggregateKind::kDecimalSum, Tumbling(absl::Hours(1)), 1),
      Count("sessions", Session(absl::Minutes(4)))};
  op.allowed_lateness = absl::Minutes(10);
  op.cache_max_entries = 300;
  // 55 minutes of 1,500 keys.
  const std::vector<Event> events = Payments(41, 16500, 1500, 200, 10, 10000);
  auto whole = RunAll(op, events);
  ASSERT_NE(whole, nullptr);
  const auto want = whole->Final();
  op.max_fire_updates = 100;
  size_t hourly = 0;
  for (const auto& [k, u] : want) hourly += u.feature == "sum_1h";
  // The steps of the firing.
  int total = 0;
  {
    auto h = Make(op);
    ASSERT_NE(h, nullptr);
    for (const Event& e : events) ASSERT_TRUE(h->Process(e).ok());
    OperatorOutput out;
    ASSERT_TRUE(h->op().AdvanceWatermark(61 * kMin, &out).ok());
    for (; h->op().firing_pending(); ++total) {
      ASSERT_TRUE(h->op().AdvanceWatermark(h->op().watermark(), &out).ok());
    }
  }
  ASSERT_GT(total, 20);
  for (int steps : {0, 2, total / 3, 2 * total / 3, total - 1}) {
    SCOPED_TRACE(steps);
    auto h = Make(op);
    ASSERT_NE(h, nullptr);
    for (const Event& e : events) ASSERT_TRUE(h->Process(e).ok());
    std::vector<FeatureUpdate> direct;
    OperatorOutput out;
    ASSERT_TRUE(h->op().AdvanceWatermark(61 * kMin, &out).ok());
    for (int step = 0; step < steps; ++step) {
      ASSERT_TRUE(h->op().firing_pending());
      direct.insert(direct.end(), out.updates.begin(), out.updates.end());
      out.Clear();
      ASSERT_TRUE(h->op().AdvanceWatermark(h->op().watermark(), &out).ok());
    }
    direct.insert(direct.end(), out.updates.begin(), out.updates.end());
    ASSERT_TRUE(h->op().firing_pending());
    auto snap = h->Snapshot();
    ASSERT_TRUE(snap.ok()) << snap.status();
    ASSERT_TRUE(h->Restore(*snap).ok());
    ASSERT_TRUE(h->Finish().ok());
    std::vector<FeatureUpdate> all = h->updates();
    all.insert(all.end(), direct.begin(), direct.end());
    std::map<std::tuple<std::string, std::string, EventTime>, int> fired;
    for (const FeatureUpdate& u : all) {
      ++fired[{u.key, u.feature, u.window.start}];
    }
    ASSERT_EQ(fired.size(), want.size());
    for (const auto& [k, n] : fired) {
      ASSERT_EQ(n, 1) << std::get<0>(k) << " " << std::get<1>(k);
    }
    const auto got = testing::Latest(all);
    for (const auto& [k, u] : want) EXPECT_EQ(got.at(k), u);
    EXPECT_EQ(Keys(h->backend(), Column::kWindows), 0u);
    EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
    if (steps == total - 1) {
      // This checkpoint came in the sessions' scan: every hourly window
      // had fired.
      size_t hourly_before = 0;
      for (const FeatureUpdate& u : direct) {
        hourly_before += u.feature == "sum_1h";
      }
      EXPECT_EQ(hourly_before, hourly);
      EXPECT_EQ(direct.back().feature, "sessions");
    }
  }
}

TEST_P(KeyedWindowOperatorTest, TinyCacheGivesIdenticalResults) {
  KeyedWindowOptions op;
  op.features = {
      Count("n", Tumbling(absl::Seconds(10))),
      Agg("sum", AggregateKind::kDecimalSum, Tumbling(absl::Seconds(10)), 0),
      Agg("max", AggregateKind::kMax, Tumbling(absl::Minutes(1)), 0),
      Count("sess", Session(absl::Seconds(3)))};
  op.allowed_lateness = absl::Seconds(20);
  op.max_out_of_orderness = absl::Seconds(2);
  std::mt19937_64 rng(11);
  std::vector<Event> events;
  for (int i = 0; i < 20000; ++i) {
    Event e;
    e.key = absl::StrCat("k", rng() % 300);
    e.event_time = i * 5 - static_cast<int64_t>(rng() % 30000);
    e.offset = i;
    e.values = {Value::Dec(static_cast<int64_t>(rng() % 1000), 2)};
    events.push_back(e);
  }
  std::unique_ptr<OperatorHarness> big, tiny;
  RunWithTwoCaches(op, 8, events, &big, &tiny);
  if (HasFatalFailure()) return;
  EXPECT_GT(tiny->op().stats().cache_evictions, 1000u);
  EXPECT_EQ(big->op().stats().cache_evictions, 0u);
  EXPECT_EQ(big->late().size(), tiny->late().size());
  EXPECT_GT(big->late().size(), 0u);
  ExpectSameFinal(*big, *tiny);
  // Everything fired was deleted.
  EXPECT_EQ(Keys(tiny->backend(), Column::kWindows), 0u);
  EXPECT_EQ(Keys(tiny->backend(), Column::kTimers), 0u);
}

// One record opens windows in four groups (the cache's per-key node lists
// them all); with room for fewer entries than that, the record's own
// windows are evicted while it folds, and its sliding tiles are read back.
// Every update equals what a cache that never spills emits.
TEST_P(KeyedWindowOperatorTest, AKeysWindowsOfEveryGroupSpillMidRecord) {
  KeyedWindowOptions op;
  op.features = {
      Count("n1m", Tumbling(absl::Minutes(1))),
      Agg("sum1h", AggregateKind::kDecimalSum, Tumbling(absl::Hours(1)), 0),
      Agg("distinct1h", AggregateKind::kDistinctCount, Tumbling(absl::Hours(1)),
          1),
      Count("n5m", Sliding(absl::Minutes(5), absl::Minutes(1))),
      // Tiles with heap sketches, read back into the cache.
      Agg("distinct5m", AggregateKind::kDistinctCount,
          Sliding(absl::Minutes(5), absl::Minutes(1)), 1),
      Agg("mean1d", AggregateKind::kMean, Tumbling(absl::Hours(24)), 0)};
  op.allowed_lateness = absl::Minutes(1);
  op.max_out_of_orderness = absl::Seconds(5);
  std::mt19937_64 rng(23);
  std::vector<Event> events;
  for (int i = 0; i < 6000; ++i) {
    Event e;
    e.key = absl::StrCat("user-", rng() % 40);
    // Some records 1.5 to 3.5 minutes behind: re-emissions, and late.
    e.event_time =
        i * 1'500 - static_cast<int64_t>(rng() % 8'000) -
        (i % 50 == 0 ? 90'000 + static_cast<int64_t>(rng() % 120'000) : 0);
    e.offset = i;
    e.values = {Value::Dec(static_cast<int64_t>(rng() % 10'000), 2),
                Value::String(absl::StrCat("m", rng() % 7))};
    events.push_back(e);
  }
  std::unique_ptr<OperatorHarness> big, tiny;
  RunWithTwoCaches(op, 3, events, &big, &tiny);
  if (HasFatalFailure()) return;
  EXPECT_EQ(big->op().stats().cache_evictions, 0u);
  EXPECT_GT(tiny->op().stats().cache_evictions, 5000u);
  EXPECT_GT(tiny->op().stats().state_reads, 1000u);
  EXPECT_GT(big->late().size(), 0u);
  EXPECT_EQ(big->late().size(), tiny->late().size());
  // Windows fired from the cache and from the backend come out in different
  // orders within one watermark step: compare the updates as sets.
  auto sorted = [](std::vector<FeatureUpdate> v) {
    std::sort(v.begin(), v.end(),
              [](const FeatureUpdate& a, const FeatureUpdate& b) {
                return std::tie(a.key, a.feature, a.window.start,
                                a.version_time, a.version_offset) <
                       std::tie(b.key, b.feature, b.window.start,
                                b.version_time, b.version_offset);
              });
    return v;
  };
  const std::vector<FeatureUpdate> a = sorted(big->updates());
  const std::vector<FeatureUpdate> b = sorted(tiny->updates());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i], b[i]) << "update " << i;
  }
  EXPECT_EQ(Keys(tiny->backend(), Column::kWindows), 0u);
  EXPECT_EQ(Keys(tiny->backend(), Column::kTimers), 0u);
}

TEST_P(KeyedWindowOperatorTest, SpillsWriteBlindAndReadOnlyWhenWindowsFire) {
  // Keys come back to an hourly window after being evicted, so the backend
  // holds parts of a window that the cache folds into again. Spills (and
  // Flush, which keeps the entries cached) add the parts as merge operands
  // without reading, and without a timer; snapshots carry the operands.
  // When the hour fires, the scan of the stored windows reads them with no
  // point read, and a window still cached adds its part to the stored ones
  // blind, for the scan to fire: no window is read at all.
  KeyedWindowOptions op;
  op.features = {
      Count("n", Tumbling(absl::Hours(1))),
      Agg("sum", AggregateKind::kDecimalSum, Tumbling(absl::Hours(1)), 0),
      Agg("top", AggregateKind::kMax, Tumbling(absl::Hours(1)), 0),
      Agg("last", AggregateKind::kLast, Tumbling(absl::Hours(1)), 0)};
  // One hour, in order.
  const std::vector<Event> events = InOrder(5, 6000, 200, 100);
  auto whole = RunAll(op, events);
  ASSERT_NE(whole, nullptr);

  op.cache_max_entries = 16;
  auto h = Make(op);
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  ASSERT_TRUE(h->op().Flush().ok());
  for (int i = 3000; i < 4000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  auto snap = h->Snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_TRUE(h->Restore(*snap).ok());
  for (int i = 4000; i < 6000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  EXPECT_GT(h->op().stats().cache_evictions, 1000u);
  EXPECT_EQ(h->op().stats().state_reads, 0u);
  EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
  ASSERT_TRUE(h->Finish().ok());
  EXPECT_EQ(h->op().stats().state_reads, 0u);

  ASSERT_EQ(whole->Final().size(), 800u);
  ExpectSameFinal(*whole, *h);
  EXPECT_EQ(Keys(h->backend(), Column::kWindows), 0u);
  EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
}

TEST_P(KeyedWindowOperatorTest, ASlidingTileReadBackStaysCached) {
  // A key's tiles of minutes 0 to 3 are evicted by other keys; its first
  // record of minute 4 reads them back to merge them, and keeps them: its
  // next record reads nothing.
  // Two merchants a tile: the tiles' sketches are on the heap.
  KeyedWindowOptions op;
  op.features = {Count("n5m", Sliding(absl::Minutes(5), absl::Minutes(1))),
                 Agg("merchants5m", AggregateKind::kDistinctCount,
                     Sliding(absl::Minutes(5), absl::Minutes(1)), 0)};
  op.cache_max_entries = 8;
  std::vector<Event> events;
  auto add = [&](std::string key, EventTime t) {
    Event e;
    e.key = std::move(key);
    e.event_time = t;
    e.offset = static_cast<int64_t>(events.size());
    e.values = {Value::String(absl::StrCat("m", events.size()))};
    events.push_back(e);
  };
  for (int m = 0; m < 4; ++m) {
    add("hot", m * kMin);
    add("hot", m * kMin + 1);
  }
  for (int i = 0; i < 100; ++i) add(absl::StrCat("k", i), 3 * kMin + i * 100);
  add("hot", 4 * kMin);
  add("hot", 4 * kMin + 1);
  auto whole = Make(KeyedWindowOptions{.features = op.features});
  for (const Event& e : events) ASSERT_TRUE(whole->Process(e).ok());
  ASSERT_TRUE(whole->Finish().ok());

  auto h = Make(op);
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    ASSERT_TRUE(h->Process(events[i]).ok());
  }
  const uint64_t reads = h->op().stats().state_reads;
  ASSERT_TRUE(h->Process(events[events.size() - 2]).ok());
  EXPECT_EQ(h->op().stats().state_reads, reads + 4);
  ASSERT_TRUE(h->Process(events.back()).ok());
  EXPECT_EQ(h->op().stats().state_reads, reads + 4);
  ASSERT_TRUE(h->Finish().ok());
  ExpectSameFinal(*whole, *h);
  EXPECT_EQ(Keys(h->backend(), Column::kWindows), 0u);
  EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
}

TEST_P(KeyedWindowOperatorTest, ATileWhoseKeyNeverSpilledIsReadFromNowhere) {
  // Other keys' tiles of this minute are spilled, so the group's spill
  // horizon passes it; a key whose tile of the minute was never spilled
  // makes it complete (the tile start's filter does not hold the key), so
  // merging it reads nothing.
  KeyedWindowOptions op;
  op.features = {Count("n5m", Sliding(absl::Minutes(5), absl::Minutes(1)))};
  op.cache_max_entries = 8;
  auto h = Make(op);
  int64_t offset = 0;
  auto add = [&](std::string key, EventTime t) {
    Event e;
    e.key = std::move(key);
    e.event_time = t;
    e.offset = offset++;
    return h->Process(e);
  };
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(add(absl::StrCat("k", i), kMin + i * 100).ok());
  }
  EXPECT_GT(h->op().stats().cache_evictions, 0u);
  const uint64_t reads = h->op().stats().state_reads;
  ASSERT_TRUE(add("new", kMin + 20'000).ok());
  ASSERT_TRUE(add("new", kMin + 20'001).ok());
  EXPECT_EQ(h->op().stats().state_reads, reads);
  ASSERT_TRUE(h->Finish().ok());
  EXPECT_EQ(Keys(h->backend(), Column::kWindows), 0u);
}

TEST_P(KeyedWindowOperatorTest, CleanupOfAFixedWindowReadsNothing) {
  // Spilled hourly windows fire from the scan of the stored windows and
  // are kept for allowed lateness; spilled sliding tiles never fire. When
  // their cleanup comes, one range delete per group removes them without
  // reading, and leaves nothing behind.
  KeyedWindowOptions op;
  op.features = {Count("n", Tumbling(absl::Hours(1))),
                 Count("n5m", Sliding(absl::Minutes(5), absl::Minutes(1)))};
  op.allowed_lateness = absl::Minutes(10);
  op.cache_max_entries = 16;
  auto h = Make(op);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 6000; ++i) {
    Event e;
    e.key = absl::StrCat("k", rng() % 200);
    e.event_time = i * 500;  // 50 minutes, in order
    e.offset = i;
    ASSERT_TRUE(h->Process(e).ok());
  }
  EXPECT_GT(h->op().stats().cache_evictions, 1000u);
  // Every tile's cleanup but the last few minutes' has passed; the hour
  // has not ended.
  const uint64_t reads_before = h->op().stats().state_reads;
  ASSERT_TRUE(h->AdvanceWatermark(50 * kMin).ok());
  EXPECT_EQ(h->op().stats().state_reads, reads_before);
  // The hour fires without a read.
  ASSERT_TRUE(h->AdvanceWatermark(60 * kMin).ok());
  const uint64_t reads_fired = h->op().stats().state_reads;
  EXPECT_EQ(reads_fired, reads_before);
  EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
  // Lateness passes: the hour and the last tiles go without a read.
  ASSERT_TRUE(h->Finish().ok());
  EXPECT_EQ(h->op().stats().state_reads, reads_fired);
  EXPECT_EQ(Keys(h->backend(), Column::kWindows), 0u);
  EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
}

TEST_P(KeyedWindowOperatorTest, SnapshotRestoreInTheMiddleEqualsUninterrupted) {
  KeyedWindowOptions op;
  op.features = {
      Count("n", Tumbling(absl::Seconds(10))),
      Agg("sum", AggregateKind::kDecimalSum, Tumbling(absl::Minutes(1)), 0),
      Count("sess", Session(absl::Seconds(2))),
      Count("n20s", Sliding(absl::Seconds(20), absl::Seconds(5)))};
  op.allowed_lateness = absl::Seconds(5);
  op.max_out_of_orderness = absl::Seconds(1);
  op.cache_max_entries = 64;
  std::mt19937_64 rng(3);
  std::vector<Event> events;
  for (int i = 0; i < 10000; ++i) {
    Event e;
    e.key = absl::StrCat("k", rng() % 100);
    e.event_time = i * 7 - static_cast<int64_t>(rng() % 8000);
    e.offset = i;
    e.values = {Value::Dec(static_cast<int64_t>(rng() % 1000), 2)};
    events.push_back(e);
  }
  auto whole = Make(op);
  for (const Event& e : events) ASSERT_TRUE(whole->Process(e).ok());
  ASSERT_TRUE(whole->Finish().ok());

  auto h = Make(op);
  for (int i = 0; i < 6000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  auto snap = h->Snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  // Records after the snapshot are processed, then lost in a "crash".
  for (int i = 6000; i < 7000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  ASSERT_TRUE(h->Restore(*snap).ok());
  for (int i = 6000; i < 10000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  ASSERT_TRUE(h->Finish().ok());

  ExpectSameFinal(*whole, *h);
}

// A restored operator knows nothing of which keys' sliding tiles were
// spilled before its checkpoint: it reads them all back, and a key's later
// windows include them.
TEST_P(KeyedWindowOperatorTest, SlidingTilesSpilledBeforeRestoreAreMerged) {
  KeyedWindowOptions op;
  op.features = {Count("n20s", Sliding(absl::Seconds(20), absl::Seconds(5)))};
  op.cache_max_entries = 8;
  std::vector<Event> events;
  for (int i = 0; i < 4000; ++i) {
    Event e;
    e.key = absl::StrCat("k", i % 40);
    e.event_time = i * 10;
    e.offset = i;
    events.push_back(e);
  }
  auto whole = Make(op);
  for (const Event& e : events) ASSERT_TRUE(whole->Process(e).ok());
  ASSERT_TRUE(whole->Finish().ok());
  auto h = Make(op);
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  auto snap = h->Snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_TRUE(h->Restore(*snap).ok());
  for (int i = 2000; i < 4000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  ASSERT_TRUE(h->Finish().ok());
  EXPECT_GT(h->op().stats().state_reads, 0u);
  ExpectSameFinal(*whole, *h);
  // Each key has a record every 400 ms: a full window counts 50.
  EXPECT_EQ(CountOf(h->Final().at({"k0", "n20s", 20'000 - 20'000})), 50);
}

// Rewrites an operator's state the way weir stored it before fixed-length
// windows were kept in time order (operator metadata version 1): every
// window under its entity, with a fire timer if it has not fired, else a
// cleanup timer. `keep_ms` is per window group.
void ToEntityOrder(StateBackend& backend, const std::vector<int64_t>& keep_ms,
                   int64_t lateness_ms) {
  StateWriteBatch batch;
  std::string meta;
  ASSERT_TRUE(backend.Get(Column::kMeta, "op/test", &meta).ok());
  std::string_view in = meta;
  in.remove_prefix(1);
  uint32_t sig_len, groups;
  ASSERT_TRUE(internal::GetFixed32(&in, &sig_len));
  in.remove_prefix(sig_len);
  ASSERT_TRUE(internal::GetFixed32(&in, &groups));
  in.remove_prefix(8 * groups + 8);  // horizons, watermark
  uint64_t fired_through;
  const size_t fired_at = meta.size() - in.size();
  ASSERT_TRUE(internal::GetFixed64(&in, &fired_through));
  std::string old_meta = meta;
  old_meta[0] = 1;
  old_meta.erase(fired_at, 8);
  batch.Put(Column::kMeta, "op/test", old_meta);
  std::string key;
  for (auto it = backend.Scan(Column::kWindows, "", ""); it->Valid();
       it->Next()) {
    internal::DecodedWindowKey w;
    ASSERT_TRUE(internal::DecodeWindowKey(it->key(), &w));
    if (!w.fixed) continue;
    internal::WindowKey(w.key, w.group, w.start, &key);
    batch.Put(Column::kWindows, key, it->value());
    batch.Delete(Column::kWindows, it->key());
    std::string_view payload = it->value();
    payload.remove_prefix(1);
    uint64_t end;
    ASSERT_TRUE(internal::GetFixed64(&payload, &end));
    const bool fired =
        static_cast<EventTime>(end) <= static_cast<EventTime>(fired_through) ||
        keep_ms[w.group] != 0;  // a tile never fires
    internal::TimerKey(
        fired ? static_cast<EventTime>(end) + keep_ms[w.group] + lateness_ms
              : static_cast<EventTime>(end),
        fired ? internal::kCleanupTimer : internal::kFireTimer, w.group,
        w.start, w.key, &key);
    batch.Put(Column::kTimers, key, "");
  }
  ASSERT_TRUE(backend.Write(batch).ok());
}

// State checkpointed by a weir that stored every window under its entity,
// with timers, restores: its fixed-length windows move into time order,
// their timers go, and the run goes on as if uninterrupted.
TEST_P(KeyedWindowOperatorTest, StateStoredByEntityMovesToTimeOrder) {
  KeyedWindowOptions op;
  op.features = {
      Count("n10m", Tumbling(absl::Minutes(10))),
      Agg("sum10m", AggregateKind::kDecimalSum, Tumbling(absl::Minutes(10)), 0),
      Count("n5m", Sliding(absl::Minutes(5), absl::Minutes(1))),
      Count("sess", Session(absl::Seconds(30)))};
  op.allowed_lateness = absl::Minutes(3);
  // 50 minutes, in order.
  const std::vector<Event> events = InOrder(17, 6000, 200, 500);
  auto whole = RunAll(op, events);
  ASSERT_NE(whole, nullptr);

  op.cache_max_entries = 16;
  auto h = Make(op);
  // 22 minutes: two 10-minute windows fired, one kept for lateness, one
  // open.
  for (int i = 0; i < 2640; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  auto snap = h->Snapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_TRUE(h->Restore(*snap).ok());
  ToEntityOrder(h->backend(), {0, 4 * kMin, 0}, 3 * kMin);
  if (HasFatalFailure()) return;
  ASSERT_GT(Keys(h->backend(), Column::kTimers), 100u);
  ASSERT_TRUE(h->Reopen().ok());
  // Moved: only sessions are stored by entity, and only they have timers.
  size_t fixed = 0;
  for (auto it = h->backend().Scan(Column::kWindows, "", ""); it->Valid();
       it->Next()) {
    internal::DecodedWindowKey w;
    ASSERT_TRUE(internal::DecodeWindowKey(it->key(), &w));
    EXPECT_EQ(w.fixed, w.group != 2);
    fixed += w.fixed;
  }
  EXPECT_GT(fixed, 100u);
  for (auto it = h->backend().Scan(Column::kTimers, "", ""); it->Valid();
       it->Next()) {
    internal::DecodedTimer t;
    ASSERT_TRUE(internal::DecodeTimerKey(it->key(), &t));
    EXPECT_EQ(t.group, 2);
  }
  for (int i = 2640; i < 6000; ++i) ASSERT_TRUE(h->Process(events[i]).ok());
  ASSERT_TRUE(h->Finish().ok());
  ExpectSameFinal(*whole, *h);
  EXPECT_EQ(Keys(h->backend(), Column::kWindows), 0u);
  EXPECT_EQ(Keys(h->backend(), Column::kTimers), 0u);
}

TEST_P(KeyedWindowOperatorTest, RestoreWithOtherFeaturesIsRefused) {
  KeyedWindowOptions op;
  op.features = {Count("n", Tumbling(absl::Minutes(1)))};
  HarnessOptions options;
  options.op = op;
  options.op.name = "ops";
  options.backend = GetParam();
  auto h = OperatorHarness::Create(options);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE((*h)->Add("u", 1).ok());
  ASSERT_TRUE((*h)->op().Flush().ok());
  KeyedWindowOptions other = options.op;
  other.features[0].aggregate = AggregateKind::kMax;
  other.features[0].field = 0;
  auto s = KeyedWindowOperator::Create(other, &(*h)->backend());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("n:max"));
}

// A sketch merges only with sketches of its own parameter, so state written
// with another precision or relative error is refused, never half-merged.
TEST_P(KeyedWindowOperatorTest, RestoreWithOtherSketchParametersIsRefused) {
  KeyedWindowOptions op;
  op.features = {
      Agg("merchants", AggregateKind::kDistinctCount, Tumbling(absl::Hours(1)),
          0),
      Agg("p99", AggregateKind::kQuantile, Tumbling(absl::Hours(1)), 0)};
  HarnessOptions options;
  options.op = op;
  options.op.name = "ops";
  options.backend = GetParam();
  auto h = OperatorHarness::Create(options);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE((*h)->Add("u", 1, {Value::Int64(7)}).ok());
  ASSERT_TRUE((*h)->op().Flush().ok());
  // The same parameters restore.
  auto same = KeyedWindowOperator::Create(options.op, &(*h)->backend());
  EXPECT_TRUE(same.ok()) << same.status();
  KeyedWindowOptions precision = options.op;
  precision.features[0].aggregator.hll_precision = 12;
  auto s = KeyedWindowOperator::Create(precision, &(*h)->backend());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("merchants:distinct_count"));
  KeyedWindowOptions error = options.op;
  error.features[1].aggregator.quantile_relative_error = 0.001;
  s = KeyedWindowOperator::Create(error, &(*h)->backend());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("p99:quantile:2:0:m500"));
}

TEST_P(KeyedWindowOperatorTest, TtlExpiresSpilledStateAfterCompaction) {
  KeyedWindowOptions op;
  op.features = {Count("n", Tumbling(absl::Hours(24)))};
  op.cache_max_entries = 4;
  auto h = Make(op, absl::Hours(1));
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(h->Add(absl::StrCat("old", i), 1000).ok());
  }
  ASSERT_TRUE(h->op().Flush().ok());
  ASSERT_TRUE(h->backend().Flush().ok());
  EXPECT_EQ(Keys(h->backend(), Column::kWindows), 100u);
  h->clock().Advance(absl::Hours(2));
  // Expired entries are hidden at once, and gone from disk after compaction.
  EXPECT_EQ(Keys(h->backend(), Column::kWindows), 0u);
  ASSERT_TRUE(h->Compact().ok());
  EXPECT_LT(h->backend().Stats().windows_keys, 10u);
  ASSERT_TRUE(h->Add("new", 2000).ok());
  ASSERT_TRUE(h->Finish().ok());
  // Expired state is never returned: only the fresh key is emitted.
  auto final = h->Final();
  ASSERT_EQ(final.size(), 1u);
  EXPECT_EQ(CountOf(final.at({"new", "n", 0})), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, KeyedWindowOperatorTest,
                         ::testing::Values(BackendKind::kMemory,
                                           BackendKind::kRocksDb),
                         [](const auto& info) {
                           return std::string(testing::BackendName(info.param));
                         });

TEST(KeyedWindowOptionsTest, ValidateNamesTheBadField) {
  KeyedWindowOptions op;
  op.name = "ok";
  EXPECT_THAT(op.Validate().message(), HasSubstr("features"));
  op.features = {Count("n", Tumbling(absl::Minutes(1)))};
  EXPECT_TRUE(op.Validate().ok());
  op.name = "Bad Name";
  EXPECT_THAT(op.Validate().message(), HasSubstr("name"));
  op.name = "ok";
  op.features.push_back(Count("m", Tumbling(absl::ZeroDuration())));
  EXPECT_THAT(op.Validate().message(), HasSubstr("features[1].window.size"));
  op.features[1] =
      Agg("m", AggregateKind::kSum, Tumbling(absl::Minutes(1)), -1);
  EXPECT_THAT(op.Validate().message(), HasSubstr("features[1].field"));
  op.features[1] = Count("n", Tumbling(absl::Minutes(1)));
  EXPECT_THAT(op.Validate().message(), HasSubstr("used twice"));
  op.features.pop_back();
  op.allowed_lateness = absl::Milliseconds(-1);
  EXPECT_THAT(op.Validate().message(), HasSubstr("allowed_lateness"));
  op.allowed_lateness = absl::ZeroDuration();
  op.cache_max_entries = 0;
  EXPECT_THAT(op.Validate().message(), HasSubstr("cache_max_entries"));
  EXPECT_EQ(op.Validate().code(), absl::StatusCode::kInvalidArgument);
  op.cache_max_entries = 1;
  op.cache_max_bytes = KeyedWindowOptions::kMinCacheBytes - 1;
  EXPECT_THAT(op.Validate().message(), HasSubstr("cache_max_bytes"));
  op.cache_max_bytes = KeyedWindowOptions::kMinCacheBytes;
  EXPECT_TRUE(op.Validate().ok());
}

// The cache reserves address space for its bound when the operator is
// made. In a process whose address space is limited below that, Create
// says so; it does not crash later. Run in a child process (the limit
// would hold for the rest of the tests); exits 0 if Create failed as it
// should.
[[noreturn]] void CreateUnderAnAddressSpaceLimit() {
  auto backend = MemoryStateBackend::Create({});
  if (!backend.ok()) std::_Exit(2);
  KeyedWindowOptions op;
  op.name = "limited";
  op.features = {Count("n", Tumbling(absl::Minutes(1)))};
  // 2^28 entries: twice that, 288 bytes each, is 150 GiB to reserve,
  // under a limit of 1 GiB more than the process holds.
  op.cache_max_entries = size_t{1} << 28;
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0;
  statm >> pages;
  const rlim_t limit =
      static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + (rlim_t{1} << 30);
  const rlimit rl = {limit, limit};
  if (setrlimit(RLIMIT_AS, &rl) != 0) std::_Exit(3);
  auto made = KeyedWindowOperator::Create(op, backend->get());
  std::_Exit(absl::IsResourceExhausted(made.status()) &&
                     absl::StrContains(made.status().message(), "address space")
                 ? 0
                 : 1);
}

// Not under the sanitizers, which map shadow memory as they go.
TEST(KeyedWindowOperatorCacheTest, AnAddressSpaceLimitFailsCreate) {
  if (testing::kSanitizedBuild) GTEST_SKIP() << "sanitizers map memory";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(CreateUnderAnAddressSpaceLimit(), ::testing::ExitedWithCode(0),
              "");
}

}  // namespace
}  // namespace weir
