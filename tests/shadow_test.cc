#include "weir/shadow.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/dlq.h"
#include "weir/late_records.h"
#include "weir/record.h"

namespace weir {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kDay = 86400000;
constexpr int64_t kT0 = 1767225600000;  // 2026-01-01T00:00:00Z

ShadowValue V(std::string entity, std::string feature, int64_t start,
              std::optional<std::string> value) {
  return {std::move(entity), std::move(feature), start, std::move(value)};
}

const ShadowFeatureReport& Feature(const ShadowReport& r,
                                   const std::string& name) {
  for (const ShadowFeatureReport& f : r.features) {
    if (f.feature == name) return f;
  }
  static const ShadowFeatureReport kNone;
  ADD_FAILURE() << "no report for " << name;
  return kNone;
}

TEST(ShadowTest, ExactComparesDecimalsByValueNotText) {
  const std::vector<ShadowValue> online = {
      V("u1", "sum", kT0, "1.50"), V("u2", "sum", kT0, "-0"),
      V("u3", "sum", kT0, "0012"), V("u4", "sum", kT0, "1000"),
      V("u5", "sum", kT0, std::nullopt)};
  const std::vector<ShadowValue> batch = {
      V("u1", "sum", kT0, "1.5"), V("u2", "sum", kT0, "0.000"),
      V("u3", "sum", kT0, "12"), V("u4", "sum", kT0, "1e3"),
      V("u5", "sum", kT0, std::nullopt)};
  const ShadowReport r = CompareShadow(online, batch, {});
  const ShadowFeatureReport& f = Feature(r, "sum");
  EXPECT_EQ(f.compared, 5);
  EXPECT_EQ(f.equal, 5);
  EXPECT_EQ(f.divergent, 0);
  EXPECT_FALSE(r.alert) << r.ToText();
}

TEST(ShadowTest, ExactDivergenceIsCountedSampledAndAlerts) {
  const std::vector<ShadowValue> online = {V("u1", "count", kT0, "3"),
                                           V("u2", "count", kT0, "7")};
  const std::vector<ShadowValue> batch = {V("u1", "count", kT0, "4"),
                                          V("u2", "count", kT0, "7")};
  const ShadowReport r = CompareShadow(online, batch, {});
  const ShadowFeatureReport& f = Feature(r, "count");
  EXPECT_EQ(f.compared, 2);
  EXPECT_EQ(f.divergent, 1);
  EXPECT_DOUBLE_EQ(f.max_abs_difference, 1);
  EXPECT_DOUBLE_EQ(f.max_rel_difference, 0.25);
  ASSERT_THAT(f.samples, SizeIs(1));
  EXPECT_EQ(f.samples[0].entity, "u1");
  EXPECT_EQ(f.samples[0].online, "3");
  EXPECT_EQ(f.samples[0].batch, "4");
  EXPECT_TRUE(r.alert);
  EXPECT_THAT(r.ToText(), HasSubstr("online=3 batch=4"));
}

TEST(ShadowTest, ToleranceSeparatesRoundingFromSkew) {
  ShadowOptions o;
  o.rules["mean"] = ShadowRule::Tolerance(1e-9);
  const std::vector<ShadowValue> online = {
      V("u1", "mean", kT0, "0.30000000000000004"), V("u2", "mean", kT0, "2.5")};
  const std::vector<ShadowValue> batch = {V("u1", "mean", kT0, "0.3"),
                                          V("u2", "mean", kT0, "2.4")};
  const ShadowReport r = CompareShadow(online, batch, o);
  const ShadowFeatureReport& f = Feature(r, "mean");
  EXPECT_EQ(f.within_tolerance, 1);
  EXPECT_EQ(f.divergent, 1);
  EXPECT_NEAR(f.max_rel_difference, 0.04, 1e-12);
}

TEST(ShadowTest, NewestWindowStoreMissesOnlyNewerOrAbsentWindows) {
  // The store keeps u1's newest window (day 2); the batch has days 1 to 3
  // for u1 and day 1 for u2.
  const std::vector<ShadowValue> online = {V("u1", "avg", kT0 + kDay, "5"),
                                           V("u9", "avg", kT0, "1")};
  const std::vector<ShadowValue> batch = {
      V("u1", "avg", kT0, "4"), V("u1", "avg", kT0 + kDay, "5"),
      V("u1", "avg", kT0 + 2 * kDay, "6"), V("u2", "avg", kT0, "3")};
  ShadowOptions o;
  o.online = OnlineHolds::kNewestWindow;
  const ShadowReport r = CompareShadow(online, batch, o);
  const ShadowFeatureReport& f = Feature(r, "avg");
  EXPECT_EQ(f.compared, 1);
  EXPECT_EQ(f.equal, 1);
  // Day 1 of u1 was overwritten, not lost; day 3 of u1 and u2 are missing.
  EXPECT_EQ(f.missing_online, 2);
  EXPECT_EQ(f.missing_batch, 1);  // u9
  EXPECT_DOUBLE_EQ(f.divergent_share(), 3.0 / 4.0);

  o.online = OnlineHolds::kEveryWindow;
  const ShadowReport every = CompareShadow(online, batch, o);
  EXPECT_EQ(Feature(every, "avg").missing_online, 3);
}

TEST(ShadowTest, NullAgainstAValueDiverges) {
  const ShadowReport r =
      CompareShadow({V("u1", "min", kT0, std::nullopt)},
                    {V("u1", "min", kT0, "0")}, ShadowOptions());
  EXPECT_EQ(Feature(r, "min").divergent, 1);
  EXPECT_TRUE(r.alert);
  EXPECT_THAT(r.ToText(), HasSubstr("online=null batch=0"));
}

TEST(ShadowTest, AlertThresholdsAreTheSeedsByDefault) {
  // 2000 values; a few differ by 0.5% (under the 1% magnitude threshold).
  auto run = [](int differing) {
    std::vector<ShadowValue> online;
    std::vector<ShadowValue> batch;
    for (int i = 0; i < 2000; ++i) {
      const std::string e = "u" + std::to_string(i);
      online.push_back(V(e, "f", kT0, "1000"));
      batch.push_back(V(e, "f", kT0, i < differing ? "1005" : "1000"));
    }
    return CompareShadow(online, batch, {});
  };
  EXPECT_FALSE(run(2).alert) << run(2).ToText();  // 0.1% exactly: not above
  const ShadowReport three = run(3);              // 0.15%
  EXPECT_TRUE(three.alert);
  ASSERT_THAT(three.reasons, SizeIs(1));
  EXPECT_THAT(three.reasons[0], HasSubstr("0.15%"));
  // One value off by 2% alerts by magnitude alone.
  const ShadowReport big =
      CompareShadow({V("u1", "f", kT0, "100")}, {V("u1", "f", kT0, "102")}, [] {
        ShadowOptions o;
        o.max_divergent_share = 1;
        return o;
      }());
  EXPECT_TRUE(big.alert);
  EXPECT_THAT(big.reasons[0], HasSubstr("differs by 1.961%"));
}

TEST(ShadowTest, RangeLimitsTheComparedWindows) {
  ShadowOptions o;
  o.from_ms = kT0 + kDay;
  o.to_ms = kT0 + 2 * kDay;
  const ShadowReport r =
      CompareShadow({V("u1", "c", kT0, "1"), V("u1", "c", kT0 + kDay, "2")},
                    {V("u1", "c", kT0, "9"), V("u1", "c", kT0 + kDay, "2"),
                     V("u1", "c", kT0 + 2 * kDay, "9")},
                    o);
  EXPECT_EQ(Feature(r, "c").compared, 1);
  EXPECT_EQ(Feature(r, "c").equal, 1);
  EXPECT_FALSE(r.alert);
}

TEST(ShadowTest, ReportsRenderAsJsonAndPrometheus) {
  ShadowOptions o;
  o.rules["m"] = ShadowRule::Tolerance(0.01);
  const ShadowReport r =
      CompareShadow({V("u\"1", "c", kT0, "1"), V("u1", "m", kT0, "1.0")},
                    {V("u\"1", "c", kT0, "2"), V("u1", "m", kT0, "1.001")}, o);
  const std::string json = r.ToJson();
  EXPECT_THAT(json, HasSubstr("\"alert\":true"));
  EXPECT_THAT(json, HasSubstr("\"feature\":\"c\",\"rule\":\"exact\""));
  EXPECT_THAT(json, HasSubstr("\"entity\":\"u\\\"1\""));
  EXPECT_THAT(json, HasSubstr("\"rule\":\"relative 0.01\""));
  const std::string prom = r.ToPrometheus();
  EXPECT_THAT(prom, HasSubstr("weir_shadow_divergent{feature=\"c\"} 1\n"));
  EXPECT_THAT(prom,
              HasSubstr("weir_shadow_divergence_ratio{feature=\"m\"} 0\n"));
  EXPECT_THAT(prom, HasSubstr("weir_shadow_alert 1\n"));
}

TEST(ShadowTest, CsvColumnsByHeaderQuotesTimesAndNulls) {
  absl::StatusOr<std::vector<ShadowValue>> v = ParseShadowCsv(
      "value,window_start,extra,entity,feature\r\n"
      "12.5,1767225600000,x,u1,sum\n"
      "\"3\",2026-01-02T00:00:00Z,,\"u,2\",count\n"
      "null,1767225600000,,u3,min\n"
      ",1767225600000,,u4,min\n");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_THAT(*v, SizeIs(4));
  EXPECT_EQ((*v)[0].entity, "u1");
  EXPECT_EQ((*v)[0].feature, "sum");
  EXPECT_EQ((*v)[0].window_start_ms, kT0);
  EXPECT_EQ((*v)[0].value, "12.5");
  EXPECT_EQ((*v)[1].entity, "u,2");
  EXPECT_EQ((*v)[1].window_start_ms, kT0 + kDay);
  EXPECT_EQ((*v)[2].value, std::nullopt);
  EXPECT_EQ((*v)[3].value, std::nullopt);
}

TEST(ShadowTest, BadCsvNamesTheLine) {
  EXPECT_THAT(ParseShadowCsv("entity,feature,value\n").status().message(),
              HasSubstr("no column \"window_start\""));
  EXPECT_THAT(ParseShadowCsv("entity,feature,window_start,value\n"
                             "u1,f,1,2\nu1,f,yesterday,2\n")
                  .status()
                  .message(),
              HasSubstr("line 3: window_start \"yesterday\""));
  EXPECT_THAT(ParseShadowCsv("entity,feature,window_start,value\nu1,f,1\n")
                  .status()
                  .message(),
              HasSubstr("line 2: 3 fields, the header has 4"));
  EXPECT_FALSE(ParseShadowCsv("").ok());
}

TEST(ShadowTest, FeatureFileGivesTheNewestVersionPerWindow) {
  auto update = [](int64_t start, int64_t value, int64_t offset) {
    FeatureUpdate u;
    u.key = "u1";
    u.feature = "c";
    u.window = {start, start + 60000};
    u.value = Value::Int64(value);
    u.version_time = start + 60000;
    u.version_offset = offset;
    return u;
  };
  const std::vector<FeatureUpdate> file = {
      update(kT0, 3, 10), update(kT0, 4, 12), update(kT0, 3, 10),  // a replay
      update(kT0 + 60000, 1, 20)};
  const std::vector<ShadowValue> v = ShadowValuesFromUpdates(file);
  ASSERT_THAT(v, SizeIs(2));
  EXPECT_EQ(v[0].value, "4");
  EXPECT_EQ(v[1].window_start_ms, kT0 + 60000);
}

// Late records explain the difference of the window they fall in, for the
// features they missed only; real skew next to them still alerts.
TEST(ShadowTest, LateRecordsExplainTheirWindowsApartFromSkew) {
  constexpr int64_t kMin = 60000;
  const std::vector<ShadowValue> online = {
      V("u1", "count", kT0, "3"),         // batch 4: a late record
      V("u1", "count", kT0 + kMin, "2"),  // batch 3: real skew
      V("u2", "count", kT0, "1"),         // batch 1
      V("u2", "sum", kT0, "10")};         // batch 12: late, not for sum
  const std::vector<ShadowValue> batch = {
      V("u1", "count", kT0, "4"), V("u1", "count", kT0 + kMin, "3"),
      V("u2", "count", kT0, "1"), V("u2", "sum", kT0, "12"),
      V("u3", "count", kT0 + kMin, "1")};  // only late records online
  const std::vector<ShadowLateRecord> late = {
      {"u1", kT0 + 59999, {"count"}},
      {"u2", kT0 + 5, {"count"}},  // u2's count agrees anyway
      {"u3", kT0 + kMin + 10, {"count"}},
      {"u4", kT0, {"count"}}};  // no batch window: ignored
  ShadowOptions options;
  options.online = OnlineHolds::kEveryWindow;
  const ShadowReport r = CompareShadow(online, batch, options, late);
  const ShadowFeatureReport& count = Feature(r, "count");
  EXPECT_EQ(count.compared, 3);
  EXPECT_EQ(count.divergent, 1);
  EXPECT_EQ(count.missing_online, 0);
  EXPECT_EQ(count.explained_by_late, 2);  // u1 at kT0, u3 missing online
  EXPECT_EQ(count.max_abs_difference, 1);
  ASSERT_THAT(count.samples, SizeIs(1));
  EXPECT_EQ(count.samples[0].window_start_ms, kT0 + kMin);
  EXPECT_EQ(Feature(r, "sum").divergent, 1);
  EXPECT_EQ(Feature(r, "sum").explained_by_late, 0);
  EXPECT_TRUE(r.alert);
  EXPECT_THAT(r.ToJson(), HasSubstr("\"explained_by_late\":2"));
  EXPECT_THAT(r.ToPrometheus(),
              HasSubstr("weir_shadow_explained_by_late{feature=\"count\"} 2"));

  // Without the skew, the late records' differences alone do not alert.
  std::vector<ShadowValue> fixed = online;
  fixed[1].value = "3";
  fixed[3].value = "12";
  const ShadowReport ok = CompareShadow(fixed, batch, options, late);
  EXPECT_FALSE(ok.alert) << ok.ToText();
  EXPECT_EQ(Feature(ok, "count").explained_by_late, 2);
  // Without the late records, they are divergent and missing.
  const ShadowReport bare = CompareShadow(fixed, batch, options);
  EXPECT_EQ(Feature(bare, "count").divergent, 1);
  EXPECT_EQ(Feature(bare, "count").missing_online, 1);
  EXPECT_TRUE(bare.alert);
}

// The Redis layout: a late record explains its window when that window is
// the entity's newest online (or newer); older windows are overwritten.
TEST(ShadowTest, LateRecordsExplainTheNewestWindowOfAStore) {
  constexpr int64_t kMin = 60000;
  const std::vector<ShadowValue> online = {
      V("u1", "count", kT0 + kMin, "2"),  // batch 3: a late record
      V("u2", "count", kT0 + kMin, "1")};
  const std::vector<ShadowValue> batch = {
      V("u1", "count", kT0, "9"),  // overwritten: neither compared nor late
      V("u1", "count", kT0 + kMin, "3"), V("u2", "count", kT0 + kMin, "1"),
      V("u3", "count", kT0, "1")};  // nothing online: missing, but late
  const std::vector<ShadowLateRecord> late = {{"u1", kT0 + 10, {"count"}},
                                              {"u1", kT0 + kMin, {"count"}},
                                              {"u3", kT0 + 7, {"count"}}};
  const ShadowReport r = CompareShadow(online, batch, {}, late);
  const ShadowFeatureReport& f = Feature(r, "count");
  EXPECT_EQ(f.compared, 2);
  EXPECT_EQ(f.equal, 1);
  EXPECT_EQ(f.divergent, 0);
  EXPECT_EQ(f.missing_online, 0);
  EXPECT_EQ(f.explained_by_late, 2);
  EXPECT_FALSE(r.alert) << r.ToText();
}

TEST(ShadowTest, OnlyTheChosenFeaturesAreCompared) {
  const std::vector<ShadowValue> online = {V("u1", "count", kT0, "3"),
                                           V("u1", "sketch", kT0, "9")};
  const std::vector<ShadowValue> batch = {V("u1", "count", kT0, "3")};
  ShadowOptions options;
  options.features = {"count"};
  const ShadowReport r = CompareShadow(online, batch, options);
  ASSERT_THAT(r.features, SizeIs(1));
  EXPECT_EQ(r.features[0].equal, 1);
  EXPECT_FALSE(r.alert);
}

// The service's late-record file: late dead letters once each (a replay
// writes them again), other dead letters skipped.
TEST(ShadowTest, ReadsLateRecordsFromTheLateOutputFile) {
  const std::string path = ::testing::TempDir() + "/shadow_late.jsonl";
  std::remove(path.c_str());
  auto queue = FileDeadLetterQueue::Create({.path = path});
  ASSERT_TRUE(queue.ok()) << queue.status();
  LateRecord l;
  l.key = "u7";
  l.event_time = kT0 + 42;
  l.partition = 3;
  l.offset = 17;
  l.watermark = kT0 + 300000;
  l.features = {"txn_count_1m", "amount_sum_1h"};
  RawRecord raw;
  raw.topic = "payments";
  raw.partition = 3;
  raw.offset = 17;
  raw.key = "u7";
  raw.value = "{}";
  DeadLetterLateRecordOutputOptions lo;
  lo.pipeline_name = "test";
  const DeadLetterRecord dead = LateRecordToDeadLetter(l, raw, lo);
  ASSERT_TRUE((*queue)->Write(dead).ok());
  ASSERT_TRUE((*queue)->Write(dead).ok());  // at least once
  DeadLetterRecord other = dead;
  other.error_type = "wrong_type";
  other.offset = 18;
  ASSERT_TRUE((*queue)->Write(other).ok());
  ASSERT_TRUE((*queue)->Flush().ok());
  auto late = ReadShadowLateRecords(path);
  ASSERT_TRUE(late.ok()) << late.status();
  ASSERT_THAT(*late, SizeIs(1));
  EXPECT_EQ((*late)[0].entity, "u7");
  EXPECT_EQ((*late)[0].event_time_ms, kT0 + 42);
  EXPECT_EQ((*late)[0].features,
            (std::vector<std::string>{"txn_count_1m", "amount_sum_1h"}));
  EXPECT_TRUE(
      absl::IsNotFound(ReadShadowLateRecords(path + ".missing").status()));
}

TEST(ShadowTest, ValidateNamesTheField) {
  ShadowOptions o;
  o.rules["mean"] = ShadowRule::Tolerance(-1);
  EXPECT_THAT(o.Validate().message(), HasSubstr("ShadowOptions.rules[mean]"));
  o.rules.clear();
  o.from_ms = 5;
  o.to_ms = 5;
  EXPECT_THAT(o.Validate().message(), HasSubstr("ShadowOptions.from_ms"));
  o.to_ms.reset();
  o.max_divergent_share = 2;
  EXPECT_THAT(o.Validate().message(),
              HasSubstr("ShadowOptions.max_divergent_share"));
  EXPECT_TRUE(ShadowOptions().Validate().ok());
  EXPECT_THAT(CompareShadow({}, {}, {}).features, IsEmpty());
}

}  // namespace
}  // namespace weir
