// The operator against an independent oracle: sqlite3 computes the same
// tumbling-window GROUP BY, with weir's lateness rule written in SQL, over
// the same generated W-PAY events with disorder and late records. Every
// (user, window) count and exact sum must be equal, and the records weir
// sent to the late output must be exactly those the oracle excludes.

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/keyed_window_operator.h"
#include "weir/testing/harness.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/sqlite_oracle.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

using testing::BackendKind;
using testing::HarnessOptions;
using testing::OperatorHarness;

constexpr int64_t kEvents = 200'000;

struct Timing {
  absl::Duration out_of_orderness;
  absl::Duration lateness;
};

KeyedWindowOptions FraudCore(size_t cache_entries,
                             Timing timing = {absl::Seconds(5),
                                              absl::Minutes(1)}) {
  KeyedWindowOptions op;
  op.name = "oracle";
  FeatureSpec count;
  count.name = "txn_count_1m";
  count.aggregate = AggregateKind::kCount;
  count.window = Tumbling(absl::Minutes(1));
  FeatureSpec nonnull = count;
  nonnull.name = "amount_count_1m";
  nonnull.field = testing::kWPayAmountField;
  FeatureSpec sum = count;
  sum.name = "amount_sum_1m";
  sum.aggregate = AggregateKind::kDecimalSum;
  sum.field = testing::kWPayAmountField;
  op.features = {count, nonnull, sum};
  op.max_out_of_orderness = timing.out_of_orderness;
  op.allowed_lateness = timing.lateness;
  op.cache_max_entries = cache_entries;
  return op;
}

// The setting (5 s out of orderness, 1 minute lateness: only the
// generator's 2-10 minute late records are late) and a tight one (1 s,
// 2 s: thousands of disordered records fall right at the lateness cut).
const Timing kTimings[] = {{absl::Seconds(5), absl::Minutes(1)},
                           {absl::Seconds(1), absl::Seconds(2)}};

class OracleTest
    : public ::testing::TestWithParam<std::tuple<BackendKind, int>> {};

TEST_P(OracleTest, WindowsAndLateRecordsEqualSqlite) {
  const auto [backend, timing_index] = GetParam();
  const Timing timing = kTimings[timing_index];
  testing::WPayOptions w;
  w.num_events = kEvents;
  w.num_users = 20'000;  // enough repeats per (user, minute) to matter
  w.num_partitions = 4;
  w.seed = 42;
  auto events = testing::WPayGenerator::GenerateAll(w);
  ASSERT_TRUE(events.ok()) << events.status();

  testing::SqliteOracleOptions so;
  so.window_size = absl::Minutes(1);
  so.max_out_of_orderness = timing.out_of_orderness;
  so.allowed_lateness = timing.lateness;
  auto oracle =
      testing::RunSqliteOracle(testing::OracleEventsFrom(*events), so);
  WEIR_REQUIRE_PART(oracle.status());
  ASSERT_GT(oracle->late.size(), 100u);

  // A small cache, so that RocksDB state is written and read back.
  HarnessOptions options;
  options.op = FraudCore(/*cache_entries=*/2000, timing);
  options.backend = backend;
  auto h = OperatorHarness::Create(options);
  ASSERT_TRUE(h.ok()) << h.status();
  int64_t fed = 0;
  for (const testing::WPayEvent& e : *events) {
    if (!e.accepted()) continue;  // the decoder's DLQ takes these
    ASSERT_TRUE((*h)->Process(e.ToEvent()).ok());
    ++fed;
  }
  ASSERT_TRUE((*h)->Finish().ok());
  EXPECT_TRUE((*h)->failures().empty());

  std::set<std::pair<int32_t, int64_t>> late;
  for (const LateRecord& l : (*h)->late()) late.emplace(l.partition, l.offset);
  EXPECT_EQ(late.size(), (*h)->late().size()) << "a record was late twice";
  EXPECT_EQ(late, oracle->late);

  const testing::FinalResults final = (*h)->Final();
  size_t groups = 0;
  int64_t folded = 0;
  for (const auto& [key, g] : oracle->groups) {
    const auto& [user, start] = key;
    auto count = final.find({user, "txn_count_1m", start});
    ASSERT_NE(count, final.end()) << user << " " << start;
    EXPECT_EQ(count->second.value, Value::Int64(g.count))
        << user << " " << start;
    EXPECT_EQ(final.at({user, "amount_count_1m", start}).value,
              Value::Int64(g.nonnull_count));
    EXPECT_EQ(final.at({user, "amount_sum_1m", start}).value,
              Value::Dec(g.sum_cents, 2))
        << user << " " << start;
    folded += g.count;
    ++groups;
  }
  EXPECT_EQ(final.size(), 3 * groups) << "weir emitted windows sqlite has not";
  EXPECT_EQ(folded + static_cast<int64_t>(late.size()), fed)
      << "every record is folded or late, never both or neither";
  if (backend == BackendKind::kRocksDb) {
    // Windows were spilled, and fired from the backend (by its scan of the
    // stored windows, which needs no point read).
    EXPECT_GT((*h)->op().stats().cache_evictions, 0u);
    EXPECT_GT((*h)->op().stats().state_writes, 0u);
  }
}

// The same input through both backends, and through a run that is
// snapshotted and restored in the middle, gives identical outputs.
TEST(BackendEquivalenceTest, MemoryRocksDbAndRestoredRunsAgree) {
  testing::WPayOptions w;
  w.num_events = 100'000;
  w.num_users = 5'000;
  w.seed = 7;
  auto events = testing::WPayGenerator::GenerateAll(w);
  ASSERT_TRUE(events.ok());
  std::vector<Event> input;
  for (const auto& e : *events) {
    if (e.accepted()) input.push_back(e.ToEvent());
  }
  auto run = [&](BackendKind backend, bool restore_midway) {
    HarnessOptions options;
    options.op = FraudCore(/*cache_entries=*/1000);
    options.backend = backend;
    auto h = OperatorHarness::Create(options);
    EXPECT_TRUE(h.ok());
    const size_t half = input.size() / 2;
    for (size_t i = 0; i < input.size(); ++i) {
      EXPECT_TRUE((*h)->Process(input[i]).ok());
      if (restore_midway && i == half) {
        auto snap = (*h)->Snapshot();
        EXPECT_TRUE(snap.ok());
        // Lost work: processed after the snapshot, gone with the crash.
        for (size_t j = i + 1; j < i + 500; ++j) {
          EXPECT_TRUE((*h)->Process(input[j]).ok());
        }
        EXPECT_TRUE((*h)->Restore(*snap).ok());
      }
    }
    EXPECT_TRUE((*h)->Finish().ok());
    return std::make_pair((*h)->Final(), (*h)->late().size());
  };
  const auto memory = run(BackendKind::kMemory, false);
  const auto rocksdb = run(BackendKind::kRocksDb, false);
  const auto restored_memory = run(BackendKind::kMemory, true);
  const auto restored_rocksdb = run(BackendKind::kRocksDb, true);
  EXPECT_GT(memory.first.size(), 10'000u);
  EXPECT_TRUE(memory.first == rocksdb.first);
  EXPECT_TRUE(memory.first == restored_memory.first);
  EXPECT_TRUE(memory.first == restored_rocksdb.first);
  EXPECT_EQ(memory.second, rocksdb.second);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, OracleTest,
    ::testing::Combine(::testing::Values(BackendKind::kMemory,
                                         BackendKind::kRocksDb),
                       ::testing::Values(0, 1)),
    [](const auto& info) {
      return absl::StrCat(
          testing::BackendName(std::get<0>(info.param)),
          std::get<1>(info.param) == 0 ? "_issue_timing" : "_tight_timing");
    });

}  // namespace
}  // namespace weir
