#include "weir/testing/sqlite_oracle.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/shadow.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"
#include "weir/time.h"

namespace weir {
namespace testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

using Groups = std::map<std::pair<std::string, EventTime>, OracleGroup>;
using LateSet = std::set<std::pair<int32_t, int64_t>>;

OracleEvent Ev(int32_t p, int64_t o, std::string u, EventTime t,
               std::optional<int64_t> a) {
  return OracleEvent{p, o, std::move(u), t, a};
}

OracleGroup G(int64_t count, int64_t sum, int64_t nonnull) {
  return OracleGroup{count, sum, nonnull};
}

// Windows of 10 ms, out-of-orderness 2 ms, allowed lateness 3 ms: a record
// is late iff ws + 10 + 3 <= (largest earlier time of its partition) - 2.
TEST(SqliteOracleTest, HandComputedCase) {
  std::vector<OracleEvent> events = {
      // Partition 0.
      Ev(0, 0, "a", -15, 100),           // ws -20; first record: no watermark
      Ev(0, 1, "a", -10, std::nullopt),  // exactly at a boundary: ws -10;
                                         // W = -17, 0 + 3 > -17
      Ev(0, 2, "a", 25, 5),              // ws 20; W = -12
      Ev(0, 3, "b", 1, 7),               // ws 0, end 10; W = 23; 13 <= 23: late
      Ev(0, 4, "a", 10, 3),   // ws 10, end 20; 23 <= 23: late (equality)
      Ev(0, 5, "a", 20, 6),   // ws 20, end 30; 33 > 23: counts
      Ev(0, 6, "a", -20, 1),  // ws -20, end -10; -7 <= 23: late
      // Partition 1 has its own watermark.
      Ev(1, 0, "c", 100, 50),            // ws 100; first
      Ev(1, 1, "c", 95, std::nullopt),   // ws 90, end 100; 103 > 98
      Ev(1, 2, "c", 85, 1),              // ws 80, end 90; 93 <= 98: late
      Ev(1, 3, "c", 100, std::nullopt),  // ws 100
      // Partition 2: all before 1970.
      Ev(2, 0, "d", -1, 9),              // ws -10; first
      Ev(2, 1, "d", -10, 1),             // ws -10; W = -3; 3 > -3
      Ev(2, 2, "d", -11, std::nullopt),  // ws -20; -7 <= -3: late
  };
  // Order in the input must not matter: offsets decide.
  std::reverse(events.begin(), events.end());

  SqliteOracleOptions options;
  options.window_size = absl::Milliseconds(10);
  options.max_out_of_orderness = absl::Milliseconds(2);
  options.allowed_lateness = absl::Milliseconds(3);
  absl::StatusOr<OracleResult> result = RunSqliteOracle(events, options);
  WEIR_REQUIRE_PART(result.status());

  const Groups expected_groups = {
      {{"a", -20}, G(1, 100, 1)},
      {{"a", -10}, G(1, 0, 0)},  // only a null amount
      {{"a", 20}, G(2, 11, 2)},
      {{"c", 90}, G(1, 0, 0)},
      {{"c", 100}, G(2, 50, 1)},
      {{"d", -10}, G(2, 10, 2)},
  };
  EXPECT_EQ(result->groups, expected_groups);
  const LateSet expected_late = {{0, 3}, {0, 4}, {0, 6}, {1, 2}, {2, 2}};
  EXPECT_EQ(result->late, expected_late);
}

TEST(SqliteOracleTest, ZeroLatenessAndOrderednessMakeAnyOlderWindowLate) {
  // With no out-of-orderness and no allowed lateness, a record is late as
  // soon as an earlier record reached its window's end.
  const std::vector<OracleEvent> events = {
      Ev(0, 0, "k", 0, 1),     Ev(0, 1, "k", 59999, 2),  // same minute
      Ev(0, 2, "k", 60000, 3),  // next minute; W = 59999
      Ev(0, 3, "k", 59999, 4),  // end 60000 <= W = 60000: late
      Ev(0, 4, "k", 60000, 5),
  };
  SqliteOracleOptions options;  // 1 minute, 0, 0
  absl::StatusOr<OracleResult> result = RunSqliteOracle(events, options);
  WEIR_REQUIRE_PART(result.status());
  EXPECT_THAT(result->groups, ElementsAre(Pair(Pair("k", 0), G(2, 3, 2)),
                                          Pair(Pair("k", 60000), G(2, 8, 2))));
  EXPECT_THAT(result->late, ElementsAre(Pair(0, 3)));
}

TEST(SqliteOracleTest, WindowOffsetShiftsTheBoundaries) {
  // Windows of 10 ms starting at 3 + 10k.
  const std::vector<OracleEvent> events = {
      Ev(0, 0, "a", 2, 1), Ev(0, 1, "a", 3, 2), Ev(0, 2, "a", 12, 4),
      Ev(0, 3, "a", 13, 8), Ev(0, 4, "a", -8, 16)};
  SqliteOracleOptions options;
  options.window_size = absl::Milliseconds(10);
  options.window_offset = absl::Milliseconds(3);
  options.allowed_lateness = absl::Milliseconds(100);
  absl::StatusOr<OracleResult> result = RunSqliteOracle(events, options);
  WEIR_REQUIRE_PART(result.status());
  const Groups expected = {{{"a", -17}, G(1, 16, 1)},
                           {{"a", -7}, G(1, 1, 1)},
                           {{"a", 3}, G(2, 6, 2)},
                           {{"a", 13}, G(1, 8, 1)}};
  EXPECT_EQ(result->groups, expected);
  options.window_offset = absl::Milliseconds(10);
  EXPECT_THAT(options.Validate().message(), HasSubstr("window_offset"));
}

// The batch export counts every record (a batch job has no watermark), with
// each feature's windows, and prints values as weir's sinks do.
TEST(SqliteOracleTest, BatchExportComputesEveryFeatureOverEveryRecord) {
  const std::vector<OracleEvent> events = {
      Ev(0, 0, "a", 5, 150), Ev(0, 1, "a", 7, std::nullopt),
      Ev(0, 2, "a", 12, 25),
      Ev(0, 3, "a", 1, 100),  // late for weir with no lateness: counted here
      Ev(1, 0, "b,c", -3, std::nullopt)};
  SqliteBatchOptions options;
  using A = BatchFeature::Aggregate;
  options.features = {
      {"count", A::kCount, absl::Milliseconds(10), absl::ZeroDuration()},
      {"sum", A::kDecimalSum, absl::Milliseconds(10), absl::Milliseconds(2)},
      {"mean", A::kMean, absl::Milliseconds(20), absl::ZeroDuration()}};
  absl::StatusOr<weir::testing::TempDir> dir =
      weir::testing::TempDir::Create("batch-export-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/batch.csv";
  WEIR_REQUIRE_PART(RunSqliteBatchExport(events, options, path));
  absl::StatusOr<std::vector<ShadowValue>> rows = ReadShadowCsv(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::map<std::tuple<std::string, std::string, int64_t>, std::string> got;
  for (const ShadowValue& v : *rows) {
    got[{v.entity, v.feature, v.window_start_ms}] = v.value.value_or("null");
  }
  const std::map<std::tuple<std::string, std::string, int64_t>, std::string>
      want = {{{"a", "count", 0}, "3"},      {{"a", "count", 10}, "1"},
              {{"b,c", "count", -10}, "1"},  {{"a", "sum", -8}, "1.00"},
              {{"a", "sum", 2}, "1.50"},     {{"a", "sum", 12}, "0.25"},
              {{"b,c", "sum", -8}, "0.00"},  {{"a", "mean", 0}, "mean"},
              {{"b,c", "mean", -20}, "null"}};
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, value] : want) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << std::get<0>(key) << " " << std::get<1>(key)
                             << " " << std::get<2>(key);
    if (value == "mean") {
      double mean = 0;
      ASSERT_TRUE(absl::SimpleAtod(it->second, &mean)) << it->second;
      EXPECT_NEAR(mean, 2.75 / 3, 1e-15);
    } else {
      EXPECT_EQ(it->second, value) << std::get<1>(key);
    }
  }

  // No events: the header alone.
  WEIR_REQUIRE_PART(RunSqliteBatchExport({}, options, path));
  rows = ReadShadowCsv(path);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT(*rows, IsEmpty());
  options.features[1].window_offset = absl::Milliseconds(-10);
  EXPECT_THAT(options.Validate().message(),
              HasSubstr("features[sum].window_offset"));
}

TEST(SqliteOracleTest, UserIdsWithCsvSpecialCharactersRoundTrip) {
  const std::vector<std::string> users = {
      "a,b", "q\"uote", "new\nline", "", "  spaced ", "\xc3\xa9t\xc3\xa9"};
  std::vector<OracleEvent> events;
  for (size_t i = 0; i < users.size(); ++i) {
    events.push_back(Ev(static_cast<int32_t>(i), 0, users[i], 5, 7));
  }
  absl::StatusOr<OracleResult> result =
      RunSqliteOracle(events, SqliteOracleOptions());
  WEIR_REQUIRE_PART(result.status());
  ASSERT_EQ(result->groups.size(), users.size());
  for (const std::string& u : users) {
    auto it = result->groups.find({u, 0});
    ASSERT_NE(it, result->groups.end()) << u;
    EXPECT_EQ(it->second, G(1, 7, 1));
  }
}

TEST(SqliteOracleTest, EmptyInputGivesEmptyResult) {
  absl::StatusOr<OracleResult> result =
      RunSqliteOracle({}, SqliteOracleOptions());
  WEIR_REQUIRE_PART(result.status());
  EXPECT_THAT(result->groups, IsEmpty());
  EXPECT_THAT(result->late, IsEmpty());
}

TEST(SqliteOracleTest, RejectsBadInputAndOptions) {
  SqliteOracleOptions options;
  options.window_size = absl::ZeroDuration();
  absl::Status s = RunSqliteOracle({}, options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("window_size"));

  options = SqliteOracleOptions();
  options.allowed_lateness = absl::Microseconds(1500);
  s = RunSqliteOracle({}, options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("allowed_lateness"));

  options = SqliteOracleOptions();
  options.max_out_of_orderness = absl::Milliseconds(-1);
  s = RunSqliteOracle({}, options).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_out_of_orderness"));

  const std::vector<OracleEvent> duplicate = {Ev(0, 5, "a", 1, 1),
                                              Ev(0, 5, "b", 2, 2)};
  s = RunSqliteOracle(duplicate, SqliteOracleOptions()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("duplicate"));

  const std::vector<OracleEvent> nul = {Ev(0, 0, std::string("a\0b", 3), 1, 1)};
  EXPECT_EQ(RunSqliteOracle(nul, SqliteOracleOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SqliteOracleTest, MissingProgramIsAFailedPrecondition) {
  SqliteOracleOptions options;
  options.sqlite3_path = "/nonexistent/sqlite3";
  absl::Status s = RunSqliteOracle({Ev(0, 0, "a", 1, 1)}, options).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

// The same semantics written as a plain loop, to check the SQL on a large
// generated input.
OracleResult Reference(const std::vector<OracleEvent>& input, int64_t size,
                       int64_t ooo, int64_t lateness) {
  std::vector<OracleEvent> events = input;
  std::sort(events.begin(), events.end(),
            [](const OracleEvent& a, const OracleEvent& b) {
              return std::make_pair(a.partition, a.offset) <
                     std::make_pair(b.partition, b.offset);
            });
  OracleResult r;
  absl::flat_hash_map<int32_t, EventTime> max_seen;
  for (const OracleEvent& e : events) {
    const EventTime ws = FloorTo(e.event_time, size);
    auto it = max_seen.find(e.partition);
    const bool late =
        it != max_seen.end() && ws + size + lateness <= it->second - ooo;
    if (it == max_seen.end()) {
      max_seen[e.partition] = e.event_time;
    } else {
      it->second = std::max(it->second, e.event_time);
    }
    if (late) {
      r.late.emplace(e.partition, e.offset);
      continue;
    }
    OracleGroup& g = r.groups[{e.user_id, ws}];
    ++g.count;
    if (e.amount_cents.has_value()) {
      g.sum_cents += *e.amount_cents;
      ++g.nonnull_count;
    }
  }
  return r;
}

TEST(SqliteOracleTest, AgreesWithAPlainLoopOnWPay) {
  WPayOptions wpay;
  wpay.num_events = 100000;
  wpay.num_partitions = 4;
  wpay.build_json = false;
  absl::StatusOr<std::vector<WPayEvent>> generated =
      WPayGenerator::GenerateAll(wpay);
  ASSERT_TRUE(generated.ok()) << generated.status();
  const std::vector<OracleEvent> events = OracleEventsFrom(*generated);
  int64_t rejected = 0;
  for (const WPayEvent& e : *generated) rejected += !e.accepted();
  EXPECT_EQ(events.size() + rejected, generated->size());

  SqliteOracleOptions options;
  options.window_size = absl::Minutes(1);
  options.max_out_of_orderness = absl::Seconds(5);
  options.allowed_lateness = absl::Minutes(1);
  absl::StatusOr<OracleResult> result = RunSqliteOracle(events, options);
  WEIR_REQUIRE_PART(result.status());

  const OracleResult expected = Reference(events, 60000, 5000, 60000);
  EXPECT_EQ(result->late, expected.late);
  EXPECT_EQ(result->groups.size(), expected.groups.size());
  EXPECT_TRUE(result->groups == expected.groups);
  EXPECT_GT(result->late.size(), 0u);

  // Only the events moved 2-10 minutes back are late, and nearly all of
  // them are (wpay.h: all but those less than about 125 s back).
  absl::flat_hash_map<std::pair<int32_t, int64_t>, const WPayEvent*> by_pos;
  int64_t flagged = 0;
  for (const WPayEvent& e : *generated) {
    if (!e.accepted()) continue;
    by_pos[{e.partition, e.offset}] = &e;
    flagged += e.late;
  }
  for (const auto& pos : result->late) {
    ASSERT_TRUE(by_pos.contains(pos));
    EXPECT_TRUE(by_pos[pos]->late) << pos.first << "/" << pos.second;
  }
  EXPECT_GE(static_cast<double>(result->late.size()), 0.97 * flagged);
}

}  // namespace
}  // namespace testing
}  // namespace weir
