#include "weir/testing/wpay.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace weir {
namespace testing {
namespace {

using ::testing::HasSubstr;

std::vector<WPayEvent> Generate(const WPayOptions& options) {
  auto events = WPayGenerator::GenerateAll(options);
  EXPECT_TRUE(events.ok()) << events.status();
  return events.ok() ? *std::move(events) : std::vector<WPayEvent>{};
}

EventTime InOrderTime(const WPayOptions& o, const WPayEvent& e) {
  return o.start + e.seq / o.events_per_millisecond;
}

bool SameEvent(const WPayEvent& a, const WPayEvent& b) {
  return a.seq == b.seq && a.user_id == b.user_id &&
         a.merchant_id == b.merchant_id && a.amount_cents == b.amount_cents &&
         a.event_time == b.event_time && a.partition == b.partition &&
         a.offset == b.offset && a.late == b.late &&
         a.malformed == b.malformed && a.json == b.json;
}

// The line a well-formed event must produce, written independently of the
// generator.
std::string ExpectedJson(const WPayEvent& e) {
  std::string amount = "null";
  if (e.amount_cents.has_value()) {
    amount = absl::StrCat(*e.amount_cents / 100, ".",
                          *e.amount_cents % 100 < 10 ? "0" : "",
                          *e.amount_cents % 100);
  }
  return absl::StrCat("{\"user_id\":\"", e.user_id, "\",\"merchant_id\":\"",
                      e.merchant_id, "\",\"amount\":", amount,
                      ",\"event_timestamp\":", e.event_time, "}");
}

TEST(KafkaMurmur2Test, MatchesTheJavaClient) {
  // Kafka's UtilsTest.testMurmur2 vectors (signed in Java).
  EXPECT_EQ(static_cast<int32_t>(KafkaMurmur2("21")), -973932308);
  EXPECT_EQ(static_cast<int32_t>(KafkaMurmur2("foobar")), -790332482);
  EXPECT_EQ(static_cast<int32_t>(KafkaMurmur2("a-little-bit-long-string")),
            -985981536);
  EXPECT_EQ(static_cast<int32_t>(KafkaMurmur2("a-little-bit-longer-string")),
            -1486304829);
  EXPECT_EQ(static_cast<int32_t>(KafkaMurmur2(
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")),
            -58897971);
  EXPECT_EQ(static_cast<int32_t>(KafkaMurmur2("abc")), 479470107);
  // toPositive(-973932308) % 16.
  EXPECT_EQ(WPayPartitionFor("21", 16),
            static_cast<int32_t>(
                (static_cast<uint32_t>(-973932308) & 0x7fffffff) % 16));
  EXPECT_EQ(WPayPartitionFor("21", 1), 0);
}

TEST(WPayOptionsTest, DefaultsAreValid) {
  WPayOptions o;
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_EQ(o.num_users, 1000000);
  EXPECT_EQ(o.num_merchants, 50000);
  EXPECT_EQ(o.start, 1767225600000);
}

TEST(WPayOptionsTest, ValidateNamesTheFirstBadField) {
  struct Case {
    void (*mutate)(WPayOptions&);
    const char* field;
  };
  const Case cases[] = {
      {[](WPayOptions& o) { o.num_events = -1; }, "num_events"},
      {[](WPayOptions& o) { o.num_users = 0; }, "num_users"},
      {[](WPayOptions& o) { o.num_merchants = 0; }, "num_merchants"},
      {[](WPayOptions& o) { o.zipf_exponent = -1; }, "zipf_exponent"},
      {[](WPayOptions& o) { o.num_partitions = 0; }, "num_partitions"},
      {[](WPayOptions& o) { o.events_per_millisecond = 0; },
       "events_per_millisecond"},
      {[](WPayOptions& o) { o.disorder_fraction = 1.5; }, "disorder_fraction"},
      {[](WPayOptions& o) { o.max_disorder = absl::Microseconds(1500); },
       "max_disorder"},
      {[](WPayOptions& o) { o.late_fraction = -0.1; }, "late_fraction"},
      {[](WPayOptions& o) {
         o.late_fraction = 0.5;
         o.disorder_fraction = 0.6;
       },
       "late_fraction + disorder_fraction"},
      {[](WPayOptions& o) { o.min_lateness = absl::ZeroDuration(); },
       "min_lateness"},
      {[](WPayOptions& o) { o.max_lateness = absl::Minutes(1); },
       "max_lateness"},
      {[](WPayOptions& o) { o.null_amount_fraction = 2; },
       "null_amount_fraction"},
      {[](WPayOptions& o) { o.malformed_fraction = -1; }, "malformed_fraction"},
  };
  for (const Case& c : cases) {
    WPayOptions o;
    c.mutate(o);
    absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.field));
    EXPECT_FALSE(WPayGenerator::Create(o).ok()) << c.field;
  }
}

TEST(WPayGeneratorTest, SameSeedSameStreamOtherSeedOtherStream) {
  WPayOptions o;
  o.num_events = 20000;
  o.num_partitions = 8;
  o.seed = 42;
  std::vector<WPayEvent> a = Generate(o);
  std::vector<WPayEvent> b = Generate(o);
  ASSERT_EQ(a.size(), 20000u);
  ASSERT_EQ(b.size(), 20000u);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(SameEvent(a[i], b[i])) << "event " << i;
  }

  o.seed = 43;
  std::vector<WPayEvent> c = Generate(o);
  ASSERT_EQ(c.size(), a.size());
  int64_t same_user = 0;
  int64_t same_json = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    same_user += a[i].user_id == c[i].user_id;
    same_json += a[i].json == c[i].json;
  }
  // Only the hottest users can coincide by chance (u1 has P ~ 7%).
  EXPECT_LT(same_user, 2000);
  EXPECT_LT(same_json, 10);
}

TEST(WPayGeneratorTest, NextStopsAfterNumEventsAndCountsPosition) {
  WPayOptions o;
  o.num_events = 3;
  o.num_users = 10;
  auto gen = WPayGenerator::Create(o);
  ASSERT_TRUE(gen.ok()) << gen.status();
  WPayEvent e;
  EXPECT_TRUE((*gen)->Next(e));
  EXPECT_TRUE((*gen)->Next(e));
  EXPECT_TRUE((*gen)->Next(e));
  EXPECT_EQ(e.seq, 2);
  EXPECT_FALSE((*gen)->Next(e));
  EXPECT_EQ((*gen)->position(), 3);
}

TEST(WPayGeneratorTest, FractionsOn200kEventsAreWithinTolerance) {
  WPayOptions o;
  o.num_events = 200000;
  o.seed = 7;
  std::vector<WPayEvent> events = Generate(o);
  ASSERT_EQ(events.size(), 200000u);
  int64_t late = 0, disordered = 0, nulls = 0, malformed = 0;
  absl::flat_hash_map<MalformedKind, int64_t> kinds;
  for (const WPayEvent& e : events) {
    const EventTime in_order = InOrderTime(o, e);
    late += e.late;
    disordered += !e.late && e.event_time < in_order;
    nulls += !e.amount_cents.has_value();
    if (e.malformed != MalformedKind::kNone) {
      ++malformed;
      ++kinds[e.malformed];
    }
  }
  const double n = static_cast<double>(events.size());
  // Tolerances are about 4 standard deviations of a binomial count.
  EXPECT_NEAR(late / n, 0.005, 0.0007);
  EXPECT_NEAR(disordered / n, 0.10, 0.003);
  EXPECT_NEAR(nulls / n, 0.01, 0.001);
  EXPECT_NEAR(malformed / n, 0.002, 0.0004);
  for (MalformedKind k :
       {MalformedKind::kBrokenJson, MalformedKind::kAmountNotNumeric,
        MalformedKind::kMissingUserId, MalformedKind::kIntegerBecameFloat}) {
    EXPECT_NEAR(kinds[k], 100, 40) << MalformedKindName(k);
  }
}

TEST(WPayGeneratorTest, ZipfTopOnePercentOfUsersMakeMostEvents) {
  WPayOptions o;
  o.num_events = 200000;
  o.build_json = false;
  std::vector<WPayEvent> events = Generate(o);
  absl::flat_hash_map<std::string, int64_t> per_user;
  for (const WPayEvent& e : events) ++per_user[e.user_id];
  std::vector<int64_t> counts;
  std::string hottest;
  int64_t hottest_count = 0;
  for (const auto& [user, count] : per_user) {
    counts.push_back(count);
    if (count > hottest_count) {
      hottest = user;
      hottest_count = count;
    }
  }
  std::sort(counts.rbegin(), counts.rend());
  int64_t top = 0;
  for (size_t i = 0; i < counts.size() && i < 10000; ++i) top += counts[i];
  EXPECT_GT(static_cast<double>(top) / events.size(), 0.5);
  EXPECT_EQ(hottest, "u1");
  // P(u1) = 1 / H(1e6) ~ 0.0695.
  EXPECT_NEAR(static_cast<double>(hottest_count) / events.size(), 0.0695,
              0.004);
}

// The law's table keeps a running sum per block of 16 ranks and adds the
// rest per sample: every rank, on both sides of a block's edge and in the
// short last block, comes out as often as the law says.
TEST(WPayGeneratorTest, EveryRankFollowsTheZipfLaw) {
  for (const double s : {1.0, 0.5}) {
    WPayOptions o;
    o.num_users = 37;  // blocks of 16, 16 and 5 ranks
    o.zipf_exponent = s;
    o.num_events = 370000;
    o.build_json = false;
    std::vector<WPayEvent> events = Generate(o);
    std::vector<int64_t> count(o.num_users + 1, 0);
    for (const WPayEvent& e : events) {
      int64_t rank = 0;
      ASSERT_TRUE(
          absl::SimpleAtoi(absl::string_view(e.user_id).substr(1), &rank))
          << e.user_id;
      ASSERT_GE(rank, 1);
      ASSERT_LE(rank, o.num_users);
      ++count[rank];
    }
    double total = 0;
    for (int64_t k = 1; k <= o.num_users; ++k) total += std::pow(k, -s);
    for (int64_t k = 1; k <= o.num_users; ++k) {
      const double p = std::pow(k, -s) / total;
      const double n = static_cast<double>(o.num_events);
      // Five standard deviations of a binomial count.
      EXPECT_NEAR(static_cast<double>(count[k]), n * p,
                  5 * std::sqrt(n * p * (1 - p)))
          << "rank " << k << " s " << s;
    }
  }
}

TEST(WPayGeneratorTest, IdsAndAmountsStayInRange) {
  WPayOptions o;
  o.num_events = 50000;
  o.num_users = 3;
  o.num_merchants = 2;
  o.zipf_exponent = 0;  // uniform
  std::vector<WPayEvent> events = Generate(o);
  absl::flat_hash_map<std::string, int64_t> users, merchants;
  for (const WPayEvent& e : events) {
    ++users[e.user_id];
    ++merchants[e.merchant_id];
    if (e.amount_cents.has_value()) {
      EXPECT_GE(*e.amount_cents, 1);
      EXPECT_LE(*e.amount_cents, 100000);
    }
  }
  EXPECT_EQ(users.size(), 3u);
  EXPECT_EQ(merchants.size(), 2u);
  for (const char* u : {"u1", "u2", "u3"}) {
    EXPECT_NEAR(users[u], 50000 / 3, 800) << u;
  }
}

TEST(WPayGeneratorTest, JsonLinesAreValidAndMatchTheFields) {
  WPayOptions o;
  o.num_events = 100000;
  o.malformed_fraction = 0.02;  // more malformed lines to check
  std::vector<WPayEvent> events = Generate(o);
  simdjson::dom::parser parser;
  int64_t checked[5] = {0, 0, 0, 0, 0};
  for (const WPayEvent& e : events) {
    ++checked[static_cast<int>(e.malformed)];
    simdjson::dom::element doc;
    const auto error = parser.parse(e.json).get(doc);
    if (e.malformed == MalformedKind::kBrokenJson) {
      EXPECT_NE(error, simdjson::SUCCESS) << e.json;
      EXPECT_FALSE(e.json.empty());
      EXPECT_TRUE(absl::StartsWith(ExpectedJson(e), e.json)) << e.json;
      EXPECT_FALSE(e.accepted());
      continue;
    }
    ASSERT_EQ(error, simdjson::SUCCESS) << e.json;
    int64_t ts = 0;
    ASSERT_EQ(doc["event_timestamp"].get(ts), simdjson::SUCCESS) << e.json;
    EXPECT_EQ(ts, e.event_time);
    std::string_view merchant;
    ASSERT_EQ(doc["merchant_id"].get(merchant), simdjson::SUCCESS);
    EXPECT_EQ(merchant, e.merchant_id);
    std::string_view user;
    const auto user_error = doc["user_id"].get(user);
    const simdjson::dom::element amount = doc["amount"];
    switch (e.malformed) {
      case MalformedKind::kNone:
        EXPECT_EQ(e.json, ExpectedJson(e));
        EXPECT_EQ(user, e.user_id);
        if (e.amount_cents.has_value()) {
          ASSERT_TRUE(amount.is_double()) << e.json;
          EXPECT_EQ(std::llround(amount.get_double().value() * 100),
                    *e.amount_cents);
        } else {
          EXPECT_TRUE(amount.is_null()) << e.json;
        }
        EXPECT_TRUE(e.accepted());
        break;
      case MalformedKind::kAmountNotNumeric:
        EXPECT_TRUE(amount.is_string()) << e.json;
        EXPECT_FALSE(e.accepted());
        break;
      case MalformedKind::kMissingUserId:
        EXPECT_EQ(user_error, simdjson::NO_SUCH_FIELD) << e.json;
        EXPECT_FALSE(e.accepted());
        break;
      case MalformedKind::kIntegerBecameFloat:
        EXPECT_EQ(user, e.user_id);
        ASSERT_TRUE(e.amount_cents.has_value());
        EXPECT_THAT(e.json, HasSubstr(absl::StrCat(
                                "\"amount\":", *e.amount_cents, "e-2,")));
        ASSERT_TRUE(amount.is_double()) << e.json;
        EXPECT_EQ(std::llround(amount.get_double().value() * 100),
                  *e.amount_cents);
        EXPECT_TRUE(e.accepted());
        break;
      case MalformedKind::kBrokenJson:
        break;
    }
  }
  for (int k = 0; k < 5; ++k) EXPECT_GT(checked[k], 100) << k;
}

TEST(WPayGeneratorTest, EventTimesFollowTheSchedule) {
  WPayOptions o;
  o.num_events = 200000;
  o.build_json = false;
  std::vector<WPayEvent> events = Generate(o);
  int64_t late = 0;
  for (const WPayEvent& e : events) {
    const EventTime in_order = o.start + (e.seq >> 1);
    ASSERT_EQ(in_order, InOrderTime(o, e));
    const int64_t back = in_order - e.event_time;
    if (e.late) {
      ++late;
      EXPECT_GE(back, 2 * 60 * 1000) << e.seq;
      EXPECT_LE(back, 10 * 60 * 1000) << e.seq;
    } else {
      EXPECT_GE(back, 0) << e.seq;
      EXPECT_LE(back, 5000) << e.seq;
    }
  }
  EXPECT_GT(late, 0);
  EXPECT_EQ(events.back().seq, 199999);
}

TEST(WPayGeneratorTest, NegativeStartWritesNegativeTimestamps) {
  WPayOptions o;
  o.num_events = 1000;
  o.start = -10000;
  o.malformed_fraction = 0;
  for (const WPayEvent& e : Generate(o)) {
    EXPECT_LT(e.event_time, 0);
    EXPECT_EQ(e.json, ExpectedJson(e));
  }
}

TEST(WPayGeneratorTest, PartitionIsStablePerUserAndOffsetsAreDense) {
  WPayOptions o;
  o.num_events = 100000;
  o.num_partitions = 16;
  o.build_json = false;
  std::vector<WPayEvent> events = Generate(o);
  absl::flat_hash_map<std::string, int32_t> partition_of;
  std::vector<int64_t> next_offset(16, 0);
  for (const WPayEvent& e : events) {
    ASSERT_GE(e.partition, 0);
    ASSERT_LT(e.partition, 16);
    EXPECT_EQ(e.partition, WPayPartitionFor(e.user_id, 16));
    auto [it, inserted] = partition_of.emplace(e.user_id, e.partition);
    EXPECT_EQ(it->second, e.partition) << e.user_id;
    // Offsets count every event of the partition, malformed ones included.
    EXPECT_EQ(e.offset, next_offset[e.partition]++) << e.seq;
  }
  for (int p = 0; p < 16; ++p) EXPECT_GT(next_offset[p], 0) << p;
}

TEST(WPayGeneratorTest, SkippingJsonKeepsTheTypedFields) {
  WPayOptions o;
  o.num_events = 20000;
  o.num_partitions = 4;
  std::vector<WPayEvent> with_json = Generate(o);
  o.build_json = false;
  std::vector<WPayEvent> without = Generate(o);
  ASSERT_EQ(with_json.size(), without.size());
  for (size_t i = 0; i < without.size(); ++i) {
    EXPECT_TRUE(without[i].json.empty());
    without[i].json = with_json[i].json;
    ASSERT_TRUE(SameEvent(with_json[i], without[i])) << i;
  }
}

TEST(WPayGeneratorTest, FractionsOfOneAndZero) {
  WPayOptions o;
  o.num_events = 2000;
  o.late_fraction = 1.0;
  o.disorder_fraction = 0.0;
  o.null_amount_fraction = 1.0;
  o.malformed_fraction = 0.0;
  for (const WPayEvent& e : Generate(o)) {
    EXPECT_TRUE(e.late);
    EXPECT_FALSE(e.amount_cents.has_value());
    EXPECT_EQ(e.malformed, MalformedKind::kNone);
  }
}

TEST(WPayEventTest, ToEventUsesTheSchemaLayout) {
  WPayEvent e;
  e.user_id = "u12";
  e.merchant_id = "m7";
  e.amount_cents = 1234;
  e.event_time = 1767225600123;
  e.partition = 3;
  e.offset = 99;
  weir::Event ev = e.ToEvent();
  EXPECT_EQ(ev.key, "u12");
  EXPECT_EQ(ev.event_time, 1767225600123);
  EXPECT_EQ(ev.partition, 3);
  EXPECT_EQ(ev.offset, 99);
  ASSERT_EQ(ev.values.size(), 2u);
  EXPECT_EQ(ev.values[kWPayMerchantField], weir::Value::String("m7"));
  EXPECT_EQ(ev.values[kWPayAmountField], weir::Value::Dec(1234, 2));

  e.amount_cents.reset();
  EXPECT_TRUE(e.ToEvent().values[kWPayAmountField].is_null());
}

TEST(MalformedKindTest, DlqKinds) {
  EXPECT_FALSE(MustReachDlq(MalformedKind::kNone));
  EXPECT_TRUE(MustReachDlq(MalformedKind::kBrokenJson));
  EXPECT_TRUE(MustReachDlq(MalformedKind::kAmountNotNumeric));
  EXPECT_TRUE(MustReachDlq(MalformedKind::kMissingUserId));
  EXPECT_FALSE(MustReachDlq(MalformedKind::kIntegerBecameFloat));
  EXPECT_STREQ(MalformedKindName(MalformedKind::kIntegerBecameFloat),
               "integer_became_float");
}

}  // namespace
}  // namespace testing
}  // namespace weir
