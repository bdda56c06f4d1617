#include "weir/watermark.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/time.h"

namespace weir {
namespace {

using ::testing::StartsWith;

// 2026-01-01T00:00:00Z.
constexpr EventTime kT0 = 1767225600000;

// No out-of-orderness allowance and no idleness.
WatermarkOptions NoDelay() { return WatermarkOptions(); }

class WatermarkIdleTest : public ::testing::Test {
 protected:
  WatermarkOptions Options(absl::Duration idle,
                           absl::Duration ooo = absl::ZeroDuration()) {
    WatermarkOptions options;
    options.max_out_of_orderness = ooo;
    options.idle_timeout = idle;
    options.clock = &clock_;
    return options;
  }
  ManualClock clock_{absl::FromUnixMillis(kT0)};
};

// ---- Validate --------------------------------------------------------------

TEST(WatermarkOptionsTest, DefaultsAreValid) {
  EXPECT_TRUE(WatermarkOptions().Validate().ok());
  EXPECT_EQ(WatermarkOptions().clock, Clock::Real());
  EXPECT_FALSE(WatermarkOptions().idle_timeout.has_value());
}

TEST(WatermarkOptionsTest, ValidateNamesTheField) {
  auto expect_field = [](const WatermarkOptions& o, const std::string& field) {
    const absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), StartsWith(field)) << s;
  };
  WatermarkOptions o;
  o.max_out_of_orderness = absl::Milliseconds(-1);
  expect_field(o, "max_out_of_orderness");

  o = WatermarkOptions();
  o.idle_timeout = absl::ZeroDuration();
  expect_field(o, "idle_timeout");
  o.idle_timeout = absl::Seconds(-5);
  expect_field(o, "idle_timeout");
  o.idle_timeout = absl::Seconds(5);
  EXPECT_TRUE(o.Validate().ok());

  o = WatermarkOptions();
  o.clock = nullptr;
  expect_field(o, "clock");
}

// ---- One partition ---------------------------------------------------------

TEST(WatermarkTest, HeaderExample) {
  WatermarkOptions options;
  options.max_out_of_orderness = absl::Seconds(5);
  WatermarkTracker wm(options);
  wm.Observe(0, 1767225610000);
  EXPECT_EQ(wm.Combined(), 1767225605000);
  EXPECT_EQ(wm.PartitionWatermark(0), 1767225605000);
}

TEST(WatermarkTest, NoWatermarkBeforeTheFirstRecord) {
  WatermarkTracker wm(NoDelay());
  EXPECT_EQ(wm.Combined(), kMinEventTime);
  EXPECT_EQ(wm.PartitionWatermark(0), kMinEventTime);
  EXPECT_EQ(wm.PartitionWatermark(7), kMinEventTime);
  // Observe returns the watermark before the record: none yet.
  EXPECT_EQ(wm.Observe(0, kT0), kMinEventTime);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0);
  EXPECT_EQ(wm.PartitionWatermark(7), kMinEventTime);
}

TEST(WatermarkTest, MaxSeenMinusOutOfOrdernessAndMonotonic) {
  WatermarkOptions options = NoDelay();
  options.max_out_of_orderness = absl::Seconds(10);
  WatermarkTracker wm(options);
  EXPECT_EQ(wm.Observe(0, kT0 + 60'000), kMinEventTime);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0 + 50'000);
  // An older record (late or merely out of order) does not lower it, and
  // Observe reports the watermark it met.
  EXPECT_EQ(wm.Observe(0, kT0), kT0 + 50'000);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0 + 50'000);
  EXPECT_EQ(wm.Observe(0, kT0 + 55'000), kT0 + 50'000);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0 + 50'000);
  EXPECT_EQ(wm.Combined(), kT0 + 50'000);
  // A newer one raises it; the record sees the old value.
  EXPECT_EQ(wm.Observe(0, kT0 + 70'001), kT0 + 50'000);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0 + 60'001);
  EXPECT_EQ(wm.Combined(), kT0 + 60'001);
}

TEST(WatermarkTest, ObserveReturnsTheWatermarkBeforeTheRecord) {
  WatermarkTracker wm(NoDelay());
  EventTime previous = kMinEventTime;
  EventTime max_seen = kMinEventTime;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<EventTime> jitter(-5000, 5000);
  for (int i = 0; i < 1000; ++i) {
    const EventTime t = kT0 + i * 100 + jitter(rng);
    EXPECT_EQ(wm.Observe(0, t), previous) << i;
    max_seen = std::max(max_seen, t);
    previous = wm.PartitionWatermark(0);
    EXPECT_EQ(previous, max_seen) << i;
  }
}

TEST(WatermarkTest, NegativeEventTimes) {
  WatermarkOptions options = NoDelay();
  options.max_out_of_orderness = absl::Seconds(1);
  WatermarkTracker wm(options);
  wm.Observe(0, -500);
  EXPECT_EQ(wm.Combined(), -1500);
  wm.Observe(0, -10'000);
  EXPECT_EQ(wm.Combined(), -1500);
}

TEST(WatermarkTest, SaturatesNearTheMinimum) {
  WatermarkOptions options = NoDelay();
  options.max_out_of_orderness = absl::Hours(1);
  WatermarkTracker wm(options);
  wm.Observe(0, kMinEventTime + 5);
  EXPECT_EQ(wm.PartitionWatermark(0), kMinEventTime);
  wm.Observe(0, kMaxEventTime);
  EXPECT_EQ(wm.PartitionWatermark(0), kMaxEventTime - 3'600'000);
}

// ---- Several partitions ----------------------------------------------------

TEST(WatermarkTest, CombinedIsTheMinimumOverPartitions) {
  WatermarkTracker wm(NoDelay());
  wm.Observe(0, kT0 + 100);
  EXPECT_EQ(wm.Combined(), kT0 + 100);
  wm.Observe(1, kT0 + 50);
  EXPECT_EQ(wm.Combined(), kT0 + 100);  // never backward
  wm.Observe(0, kT0 + 300);
  EXPECT_EQ(wm.Combined(), kT0 + 100);  // partition 1 holds it at 50
  wm.Observe(1, kT0 + 200);
  EXPECT_EQ(wm.Combined(), kT0 + 200);
  wm.Observe(2, kT0 + 1000);
  EXPECT_EQ(wm.Combined(), kT0 + 200);
  wm.Observe(1, kT0 + 400);
  EXPECT_EQ(wm.Combined(), kT0 + 300);  // now partition 0 is the slowest
  EXPECT_EQ(wm.PartitionWatermark(0), kT0 + 300);
  EXPECT_EQ(wm.PartitionWatermark(1), kT0 + 400);
  EXPECT_EQ(wm.PartitionWatermark(2), kT0 + 1000);
}

TEST(WatermarkTest, NegativePartitionIdsAreOrdinary) {
  WatermarkTracker wm(NoDelay());
  wm.Observe(-3, 10);
  wm.Observe(5, 20);
  wm.Observe(-3, 30);
  EXPECT_EQ(wm.Combined(), 20);
  EXPECT_EQ(wm.PartitionWatermark(-3), 30);
}

TEST(WatermarkTest, MatchesAReferenceModel) {
  WatermarkOptions options = NoDelay();
  options.max_out_of_orderness = absl::Milliseconds(250);
  WatermarkTracker wm(options);
  std::map<int32_t, EventTime> max_seen;
  EventTime combined = kMinEventTime;
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int32_t> partition(0, 4);
  std::uniform_int_distribution<EventTime> step(-2000, 3000);
  std::map<int32_t, EventTime> cursor;
  for (int i = 0; i < 5000; ++i) {
    const int32_t p = partition(rng);
    EventTime& c = cursor.try_emplace(p, kT0).first->second;
    c += step(rng);
    auto it = max_seen.find(p);
    const EventTime before =
        it == max_seen.end() ? kMinEventTime : it->second - 250;
    ASSERT_EQ(wm.Observe(p, c), before) << i;
    max_seen[p] =
        std::max(it == max_seen.end() ? kMinEventTime : it->second, c);
    EventTime min_wm = kMaxEventTime;
    for (const auto& [id, m] : max_seen) min_wm = std::min(min_wm, m - 250);
    combined = std::max(combined, min_wm);
    ASSERT_EQ(wm.Combined(), combined) << i;
    ASSERT_EQ(wm.PartitionWatermark(p), max_seen[p] - 250) << i;
  }
}

// ---- Idleness --------------------------------------------------------------

TEST_F(WatermarkIdleTest, IdlePartitionStopsHoldingBackAndRejoins) {
  WatermarkTracker wm(Options(absl::Seconds(10)));
  wm.Observe(0, kT0 + 1000);
  wm.Observe(1, kT0 + 500);
  EXPECT_EQ(wm.Combined(), kT0 + 500);

  // Before the timeout partition 1 still holds the watermark back.
  clock_.Advance(absl::Seconds(9));
  wm.Observe(0, kT0 + 2000);
  EXPECT_EQ(wm.Combined(), kT0 + 500);

  // Past it (10.5 s after partition 1's last record), partition 1 is idle.
  clock_.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(wm.Combined(), kT0 + 2000);
  wm.Observe(0, kT0 + 3000);
  EXPECT_EQ(wm.Combined(), kT0 + 3000);

  // Partition 1 rejoins with its next record: the combined watermark does
  // not go back, but partition 1 holds it until it catches up.
  wm.Observe(1, kT0 + 600);
  EXPECT_EQ(wm.PartitionWatermark(1), kT0 + 600);
  EXPECT_EQ(wm.Combined(), kT0 + 3000);
  wm.Observe(0, kT0 + 9000);
  EXPECT_EQ(wm.Combined(), kT0 + 3000);
  wm.Observe(1, kT0 + 5000);
  EXPECT_EQ(wm.Combined(), kT0 + 5000);
  wm.Observe(1, kT0 + 20'000);
  EXPECT_EQ(wm.Combined(), kT0 + 9000);
}

TEST_F(WatermarkIdleTest, AllIdleGivesTheLargest) {
  WatermarkTracker wm(Options(absl::Seconds(10), absl::Seconds(1)));
  wm.Observe(0, kT0 + 10'000);
  wm.Observe(1, kT0 + 4000);
  wm.Observe(2, kT0 + 7000);
  EXPECT_EQ(wm.Combined(), kT0 + 3000);
  clock_.Advance(absl::Seconds(11));
  EXPECT_EQ(wm.Combined(), kT0 + 9000);
  // A record on one partition makes it the only active one.
  wm.Observe(2, kT0 + 9500);
  EXPECT_EQ(wm.Combined(), kT0 + 9000);
  wm.Observe(2, kT0 + 12'000);
  EXPECT_EQ(wm.Combined(), kT0 + 11'000);
}

TEST_F(WatermarkIdleTest, IdlenessIsMeasuredPerPartition) {
  WatermarkTracker wm(Options(absl::Seconds(10)));
  wm.Observe(0, kT0 + 100);
  EXPECT_EQ(wm.Combined(), kT0 + 100);
  clock_.Advance(absl::Seconds(6));
  wm.Observe(1, kT0 + 50);
  EXPECT_EQ(wm.Combined(), kT0 + 100);
  clock_.Advance(absl::Seconds(6));
  // Partition 0 idle for 12 s, partition 1 for 6 s: partition 1 rules.
  wm.Observe(1, kT0 + 400);
  EXPECT_EQ(wm.Combined(), kT0 + 400);
}

TEST(WatermarkTest, WithoutIdleTimeoutNothingIsEverIdle) {
  ManualClock clock(absl::FromUnixMillis(kT0));
  WatermarkOptions options;
  options.clock = &clock;
  WatermarkTracker wm(options);
  wm.Observe(0, kT0 + 1000);
  wm.Observe(1, kT0 + 500);
  clock.Advance(absl::Hours(24 * 365));
  wm.Observe(0, kT0 + 5000);
  EXPECT_EQ(wm.Combined(), kT0 + 500);
}

// ---- AdvanceTo -------------------------------------------------------------

TEST(WatermarkTest, AdvanceToRaisesEveryWatermark) {
  WatermarkTracker wm(NoDelay());
  wm.Observe(0, kT0 + 100);
  wm.Observe(1, kT0 + 5000);
  EXPECT_EQ(wm.Combined(), kT0 + 100);
  wm.AdvanceTo(kT0 + 1000);
  EXPECT_EQ(wm.Combined(), kT0 + 1000);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0 + 1000);
  EXPECT_EQ(wm.PartitionWatermark(1), kT0 + 5000);
  EXPECT_EQ(wm.PartitionWatermark(9), kT0 + 1000);  // never seen
  // A record below it does not lower anything and meets the raised value.
  EXPECT_EQ(wm.Observe(0, kT0 + 200), kT0 + 1000);
  EXPECT_EQ(wm.Observe(2, kT0 + 300), kT0 + 1000);
  EXPECT_EQ(wm.Combined(), kT0 + 1000);
  // Advancing to an earlier time is a no-op.
  wm.AdvanceTo(kT0);
  EXPECT_EQ(wm.Combined(), kT0 + 1000);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0 + 1000);
  // Past everything (end of a bounded input).
  wm.AdvanceTo(kMaxEventTime);
  EXPECT_EQ(wm.Combined(), kMaxEventTime);
  EXPECT_EQ(wm.PartitionWatermark(1), kMaxEventTime);
}

TEST(WatermarkTest, AdvanceToWithNoPartitions) {
  WatermarkTracker wm(NoDelay());
  wm.AdvanceTo(kT0);
  EXPECT_EQ(wm.Combined(), kT0);
  EXPECT_EQ(wm.PartitionWatermark(0), kT0);
  EXPECT_EQ(wm.Observe(0, kT0 - 5), kT0);
  EXPECT_EQ(wm.Combined(), kT0);
}

// ---- Encode / Decode -------------------------------------------------------

TEST(WatermarkEncodingTest, RoundTrip) {
  WatermarkOptions options = NoDelay();
  options.max_out_of_orderness = absl::Seconds(2);
  WatermarkTracker wm(options);
  wm.Observe(0, kT0 + 10'000);
  wm.Observe(3, kT0 + 4000);
  wm.Observe(-1, -77);
  wm.Observe(3, kT0 + 30'000);
  wm.AdvanceTo(kT0 - 1000);
  const EventTime combined = wm.Combined();
  EXPECT_EQ(combined, kT0 - 1000);
  const std::string bytes = wm.Encode();

  WatermarkTracker restored(options);
  ASSERT_TRUE(restored.Decode(bytes).ok());
  EXPECT_EQ(restored.Encode(), bytes);
  EXPECT_EQ(restored.Combined(), combined);
  for (int32_t p : {-1, 0, 3, 4}) {
    EXPECT_EQ(restored.PartitionWatermark(p), wm.PartitionWatermark(p)) << p;
  }
  // It goes on exactly like the original.
  for (WatermarkTracker* t : {&wm, &restored}) {
    EXPECT_EQ(t->Observe(-1, kT0 + 50'000), kT0 - 1000);
  }
  EXPECT_EQ(restored.Combined(), wm.Combined());
  EXPECT_EQ(restored.Combined(), kT0 + 8000);
  EXPECT_EQ(restored.Encode(), wm.Encode());
}

TEST(WatermarkEncodingTest, CombinedSurvivesEvenIfAPartitionIsBehind) {
  // The combined watermark is stored, not recomputed: a restore must not
  // move it backward.
  WatermarkTracker wm(NoDelay());
  wm.Observe(0, kT0 + 100);
  EXPECT_EQ(wm.Combined(), kT0 + 100);
  wm.Observe(1, kT0 + 10);
  WatermarkTracker restored(NoDelay());
  ASSERT_TRUE(restored.Decode(wm.Encode()).ok());
  EXPECT_EQ(restored.Combined(), kT0 + 100);
}

TEST(WatermarkEncodingTest, EmptyRoundTrip) {
  WatermarkTracker wm(NoDelay());
  WatermarkTracker restored(NoDelay());
  restored.Observe(4, kT0);  // replaced by what is decoded
  ASSERT_TRUE(restored.Decode(wm.Encode()).ok());
  EXPECT_EQ(restored.Combined(), kMinEventTime);
  EXPECT_EQ(restored.PartitionWatermark(4), kMinEventTime);
}

TEST(WatermarkEncodingTest, TruncatedIsDataLossAndChangesNothing) {
  WatermarkTracker wm(NoDelay());
  wm.Observe(0, kT0 + 100);
  wm.Observe(1, kT0 + 200);
  const std::string bytes = wm.Encode();

  WatermarkTracker other(NoDelay());
  other.Observe(7, 42);
  const std::string other_bytes = other.Encode();
  for (size_t len = 0; len < bytes.size(); ++len) {
    const absl::Status s = other.Decode(std::string_view(bytes.data(), len));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << len;
    EXPECT_EQ(other.Encode(), other_bytes) << len;
  }
}

TEST_F(WatermarkIdleTest, RestoredPartitionsAreNotIdleAtOnce) {
  // Idleness is processing time and is not stored. A restored tracker must
  // not treat every partition as idle the moment it starts: that would let
  // the combined watermark jump past a slow partition, making its records
  // late, before it had any chance to deliver.
  WatermarkTracker wm(Options(absl::Seconds(10)));
  wm.Observe(0, kT0 + 1000);
  wm.Observe(1, kT0 + 500);
  ASSERT_EQ(wm.Combined(), kT0 + 500);
  const std::string bytes = wm.Encode();

  WatermarkTracker restored(Options(absl::Seconds(10)));
  ASSERT_TRUE(restored.Decode(bytes).ok());
  EXPECT_EQ(restored.Combined(), kT0 + 500);
  restored.Observe(0, kT0 + 2000);
  EXPECT_EQ(restored.Combined(), kT0 + 500);
  // Silent for idle_timeout after the restore, partition 1 is idle.
  clock_.Advance(absl::Seconds(11));
  restored.Observe(0, kT0 + 3000);
  EXPECT_EQ(restored.Combined(), kT0 + 3000);
}

}  // namespace
}  // namespace weir
