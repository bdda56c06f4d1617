#include "weir/window.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/time.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr EventTime kMinute = 60'000;
constexpr EventTime kHour = 60 * kMinute;
constexpr EventTime kDay = 24 * kHour;
// 2026-01-01T00:00:00Z.
constexpr EventTime kNewYear2026 = 1767225600000;

std::vector<Window> WindowsOf(const WindowSpec& spec, EventTime t) {
  std::vector<Window> out;
  spec.ForEachWindow(t, [&](Window w) { out.push_back(w); });
  return out;
}

// ---- Window ----------------------------------------------------------------

TEST(WindowTest, ContainsIsHalfOpen) {
  const Window w{100, 200};
  EXPECT_FALSE(w.Contains(99));
  EXPECT_TRUE(w.Contains(100));
  EXPECT_TRUE(w.Contains(199));
  EXPECT_FALSE(w.Contains(200));
}

TEST(WindowTest, OrdersByStartThenEnd) {
  EXPECT_LT((Window{0, 10}), (Window{1, 2}));
  EXPECT_LT((Window{0, 10}), (Window{0, 11}));
  EXPECT_FALSE((Window{0, 10}) < (Window{0, 10}));
  EXPECT_EQ((Window{5, 6}), (Window{5, 6}));
  EXPECT_FALSE((Window{5, 6}) == (Window{5, 7}));
}

// ---- Tumbling --------------------------------------------------------------

TEST(TumblingTest, HeaderExample) {
  const WindowSpec minute = Tumbling(absl::Minutes(1));
  ASSERT_TRUE(minute.Validate().ok());
  EXPECT_EQ(minute.TumblingWindowFor(1767225600123),
            (Window{1767225600000, 1767225660000}));
}

TEST(TumblingTest, RecordAtBoundaryBelongsToNextWindow) {
  const WindowSpec minute = Tumbling(absl::Minutes(1));
  EXPECT_EQ(minute.TumblingWindowFor(kNewYear2026 - 1),
            (Window{kNewYear2026 - kMinute, kNewYear2026}));
  EXPECT_EQ(minute.TumblingWindowFor(kNewYear2026),
            (Window{kNewYear2026, kNewYear2026 + kMinute}));
  EXPECT_EQ(minute.TumblingWindowFor(kNewYear2026 + kMinute - 1),
            (Window{kNewYear2026, kNewYear2026 + kMinute}));
  EXPECT_EQ(minute.TumblingWindowFor(kNewYear2026 + kMinute),
            (Window{kNewYear2026 + kMinute, kNewYear2026 + 2 * kMinute}));
}

TEST(TumblingTest, EpochAndTimesBefore1970FloorTowardNegativeInfinity) {
  const WindowSpec minute = Tumbling(absl::Minutes(1));
  EXPECT_EQ(minute.TumblingWindowFor(0), (Window{0, kMinute}));
  EXPECT_EQ(minute.TumblingWindowFor(-1), (Window{-kMinute, 0}));
  EXPECT_EQ(minute.TumblingWindowFor(-kMinute), (Window{-kMinute, 0}));
  EXPECT_EQ(minute.TumblingWindowFor(-kMinute - 1),
            (Window{-2 * kMinute, -kMinute}));
  // 1969-07-20T20:17:40Z, the first Moon landing.
  const EventTime apollo = -14182940000;
  const Window w = minute.TumblingWindowFor(apollo);
  EXPECT_EQ(w.start, -14182980000);
  EXPECT_EQ(w.end, -14182920000);
  EXPECT_TRUE(w.Contains(apollo));
}

TEST(TumblingTest, EveryTimeFallsInExactlyItsWindow) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> times(-5 * 365 * kDay,
                                               60 * 365 * kDay);
  for (absl::Duration size :
       {absl::Milliseconds(1), absl::Milliseconds(7), absl::Seconds(1),
        absl::Minutes(1), absl::Minutes(5), absl::Hours(24)}) {
    const WindowSpec spec = Tumbling(size);
    const int64_t size_ms = ToMillis(size);
    for (int i = 0; i < 2000; ++i) {
      const EventTime t = times(rng);
      const Window w = spec.TumblingWindowFor(t);
      ASSERT_TRUE(w.Contains(t)) << spec.ToString() << " t=" << t;
      ASSERT_EQ(w.end - w.start, size_ms);
      // Boundaries are multiples of the size: aligned to the epoch.
      ASSERT_EQ(((w.start % size_ms) + size_ms) % size_ms, 0) << t;
    }
  }
}

TEST(TumblingTest, OffsetShiftsBoundaries) {
  const WindowSpec spec = Tumbling(absl::Minutes(1), absl::Seconds(10));
  ASSERT_TRUE(spec.Validate().ok());
  EXPECT_EQ(spec.TumblingWindowFor(10'000), (Window{10'000, 70'000}));
  EXPECT_EQ(spec.TumblingWindowFor(9'999), (Window{-50'000, 10'000}));
  EXPECT_EQ(spec.TumblingWindowFor(0), (Window{-50'000, 10'000}));
  EXPECT_EQ(spec.TumblingWindowFor(-50'001), (Window{-110'000, -50'000}));

  const WindowSpec negative = Tumbling(absl::Minutes(1), absl::Seconds(-10));
  ASSERT_TRUE(negative.Validate().ok());
  EXPECT_EQ(negative.TumblingWindowFor(0), (Window{-10'000, 50'000}));
  EXPECT_EQ(negative.TumblingWindowFor(50'000), (Window{50'000, 110'000}));
  EXPECT_EQ(negative.TumblingWindowFor(-10'001), (Window{-70'000, -10'000}));
}

TEST(TumblingTest, ForEachWindowCallsOnceWithTheTumblingWindow) {
  const WindowSpec spec = Tumbling(absl::Minutes(5));
  for (EventTime t : {EventTime{-1}, EventTime{0}, kNewYear2026 + 123}) {
    EXPECT_THAT(WindowsOf(spec, t), ElementsAre(spec.TumblingWindowFor(t)));
  }
}

// ---- Daily -----------------------------------------------------------------

TEST(DailyTest, AlignedToMidnightUtc) {
  const WindowSpec day = Daily();
  ASSERT_TRUE(day.Validate().ok());
  EXPECT_EQ(day.kind, WindowKind::kTumbling);
  EXPECT_EQ(day.size, absl::Hours(24));
  const Window new_year{kNewYear2026, kNewYear2026 + kDay};
  EXPECT_EQ(day.TumblingWindowFor(kNewYear2026), new_year);
  // 2026-01-01T23:59:59.999Z.
  EXPECT_EQ(day.TumblingWindowFor(kNewYear2026 + kDay - 1), new_year);
  EXPECT_EQ(day.TumblingWindowFor(kNewYear2026 + kDay),
            (Window{kNewYear2026 + kDay, kNewYear2026 + 2 * kDay}));
  // 2025-12-31T23:59:59.999Z.
  EXPECT_EQ(day.TumblingWindowFor(kNewYear2026 - 1),
            (Window{kNewYear2026 - kDay, kNewYear2026}));
  // The window start agrees with absl's civil-time midnight.
  const absl::Time midnight =
      absl::FromCivil(absl::CivilDay(2026, 1, 1), absl::UTCTimeZone());
  EXPECT_EQ(ToEventTime(midnight), kNewYear2026);
}

TEST(DailyTest, BeforeEpoch) {
  const WindowSpec day = Daily();
  EXPECT_EQ(day.TumblingWindowFor(-1), (Window{-kDay, 0}));
  // 1969-12-31T12:00:00Z.
  EXPECT_EQ(day.TumblingWindowFor(-12 * kHour), (Window{-kDay, 0}));
  EXPECT_EQ(day.TumblingWindowFor(-kDay), (Window{-kDay, 0}));
  EXPECT_EQ(day.TumblingWindowFor(-kDay - 1), (Window{-2 * kDay, -kDay}));
}

TEST(DailyTest, OffsetShiftsMidnight) {
  // Midnight in New York in winter (UTC-5) is 05:00Z.
  const WindowSpec ny = Daily(absl::Hours(5));
  ASSERT_TRUE(ny.Validate().ok());
  const EventTime five_am = kNewYear2026 + 5 * kHour;
  EXPECT_EQ(ny.TumblingWindowFor(five_am), (Window{five_am, five_am + kDay}));
  EXPECT_EQ(ny.TumblingWindowFor(five_am - 1),
            (Window{five_am - kDay, five_am}));
  EXPECT_EQ(ny.TumblingWindowFor(kNewYear2026),
            (Window{five_am - kDay, five_am}));

  // UTC+9 (Tokyo): midnight is 15:00Z the day before, an offset of -9h.
  const WindowSpec tokyo = Daily(absl::Hours(-9));
  ASSERT_TRUE(tokyo.Validate().ok());
  const EventTime tokyo_midnight = kNewYear2026 - 9 * kHour;
  EXPECT_EQ(tokyo.TumblingWindowFor(kNewYear2026),
            (Window{tokyo_midnight, tokyo_midnight + kDay}));
  EXPECT_EQ(tokyo.TumblingWindowFor(tokyo_midnight - 1),
            (Window{tokyo_midnight - kDay, tokyo_midnight}));

  // An offset of a whole day or more is refused.
  EXPECT_FALSE(Daily(absl::Hours(24)).Validate().ok());
  EXPECT_FALSE(Daily(absl::Hours(-24)).Validate().ok());
  EXPECT_TRUE(Daily(absl::Hours(24) - absl::Milliseconds(1)).Validate().ok());
}

// ---- Hopping ---------------------------------------------------------------

TEST(HoppingTest, EachRecordInSizeOverSlideWindowsEarliestFirst) {
  const WindowSpec spec = Hopping(absl::Minutes(5), absl::Minutes(1));
  ASSERT_TRUE(spec.Validate().ok());
  const EventTime t = kNewYear2026 + 2 * kMinute + 30'000;
  EXPECT_THAT(
      WindowsOf(spec, t),
      ElementsAre(
          Window{kNewYear2026 - 2 * kMinute, kNewYear2026 + 3 * kMinute},
          Window{kNewYear2026 - kMinute, kNewYear2026 + 4 * kMinute},
          Window{kNewYear2026, kNewYear2026 + 5 * kMinute},
          Window{kNewYear2026 + kMinute, kNewYear2026 + 6 * kMinute},
          Window{kNewYear2026 + 2 * kMinute, kNewYear2026 + 7 * kMinute}));
}

TEST(HoppingTest, RecordAtSlideBoundaryStartsANewWindow) {
  const WindowSpec spec = Hopping(absl::Minutes(2), absl::Minutes(1));
  EXPECT_THAT(
      WindowsOf(spec, kMinute),
      ElementsAre(Window{0, 2 * kMinute}, Window{kMinute, 3 * kMinute}));
  EXPECT_THAT(WindowsOf(spec, kMinute - 1),
              ElementsAre(Window{-kMinute, kMinute}, Window{0, 2 * kMinute}));
}

TEST(HoppingTest, NegativeTimes) {
  const WindowSpec spec = Hopping(absl::Minutes(3), absl::Minutes(1));
  EXPECT_THAT(WindowsOf(spec, -1), ElementsAre(Window{-3 * kMinute, 0},
                                               Window{-2 * kMinute, kMinute},
                                               Window{-kMinute, 2 * kMinute}));
  EXPECT_THAT(
      WindowsOf(spec, -kMinute),
      ElementsAre(Window{-3 * kMinute, 0}, Window{-2 * kMinute, kMinute},
                  Window{-kMinute, 2 * kMinute}));
  EXPECT_THAT(
      WindowsOf(spec, -kMinute - 1),
      ElementsAre(Window{-4 * kMinute, -kMinute}, Window{-3 * kMinute, 0},
                  Window{-2 * kMinute, kMinute}));
}

TEST(HoppingTest, RandomTimesAndSpecs) {
  struct Case {
    absl::Duration size, slide, offset;
  };
  const std::vector<Case> cases = {
      {absl::Minutes(5), absl::Minutes(1), absl::ZeroDuration()},
      {absl::Hours(1), absl::Minutes(15), absl::ZeroDuration()},
      {absl::Milliseconds(12), absl::Milliseconds(4), absl::Milliseconds(3)},
      {absl::Milliseconds(12), absl::Milliseconds(3), absl::Milliseconds(-7)},
      {absl::Hours(24), absl::Hours(1), absl::Minutes(30)},
      {absl::Minutes(1), absl::Minutes(1), absl::ZeroDuration()},
  };
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> times(-3 * 365 * kDay,
                                               60 * 365 * kDay);
  for (const Case& c : cases) {
    const WindowSpec spec = Hopping(c.size, c.slide, c.offset);
    ASSERT_TRUE(spec.Validate().ok()) << spec.ToString();
    const int64_t size_ms = ToMillis(c.size);
    const int64_t slide_ms = ToMillis(c.slide);
    const int64_t offset_ms = ToMillis(c.offset);
    for (int i = 0; i < 1000; ++i) {
      // Half the times land exactly on a boundary.
      EventTime t = times(rng);
      if (i % 2 == 0) t = FloorTo(t, slide_ms) + offset_ms;
      const std::vector<Window> ws = WindowsOf(spec, t);
      ASSERT_EQ(static_cast<int64_t>(ws.size()), size_ms / slide_ms)
          << spec.ToString() << " t=" << t;
      for (size_t j = 0; j < ws.size(); ++j) {
        ASSERT_TRUE(ws[j].Contains(t)) << spec.ToString() << " t=" << t;
        ASSERT_EQ(ws[j].end - ws[j].start, size_ms);
        ASSERT_EQ(FloorTo(ws[j].start - offset_ms, slide_ms),
                  ws[j].start - offset_ms);
        if (j > 0) ASSERT_EQ(ws[j].start - ws[j - 1].start, slide_ms);
      }
      // No window one slide earlier or later also holds t.
      ASSERT_FALSE(
          (Window{ws.front().start - slide_ms, ws.front().end - slide_ms})
              .Contains(t));
      ASSERT_FALSE(
          (Window{ws.back().start + slide_ms, ws.back().end + slide_ms})
              .Contains(t));
    }
  }
}

TEST(HoppingTest, SlideEqualToSizeIsTumbling) {
  const WindowSpec hop = Hopping(absl::Minutes(1), absl::Minutes(1));
  const WindowSpec tumble = Tumbling(absl::Minutes(1));
  for (EventTime t : {EventTime{-kMinute - 1}, EventTime{-1}, EventTime{0},
                      kNewYear2026 + 59'999}) {
    EXPECT_THAT(WindowsOf(hop, t), ElementsAre(tumble.TumblingWindowFor(t)));
  }
}

// ---- Session ---------------------------------------------------------------

TEST(SessionTest, ForEachWindowGivesTheRecordsOwnWindow) {
  const WindowSpec spec = Session(absl::Minutes(30));
  ASSERT_TRUE(spec.Validate().ok());
  EXPECT_EQ(spec.kind, WindowKind::kSession);
  EXPECT_THAT(WindowsOf(spec, kNewYear2026 + 123),
              ElementsAre(Window{kNewYear2026 + 123,
                                 kNewYear2026 + 123 + 30 * kMinute}));
  EXPECT_THAT(WindowsOf(spec, -5), ElementsAre(Window{-5, 30 * kMinute - 5}));
}

// ---- Validate --------------------------------------------------------------

void ExpectInvalid(const WindowSpec& spec, const std::string& field) {
  const absl::Status s = spec.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
      << spec.ToString() << ": " << s;
  EXPECT_THAT(std::string(s.message()), StartsWith(field + ":"))
      << spec.ToString() << ": " << s;
}

TEST(WindowSpecValidateTest, AcceptsGoodSpecs) {
  for (const WindowSpec& spec :
       {Tumbling(absl::Milliseconds(1)), Tumbling(absl::Minutes(1)),
        Tumbling(absl::Hours(24 * 366)), Daily(), Daily(absl::Hours(-23)),
        Hopping(absl::Minutes(10), absl::Minutes(5)),
        Hopping(absl::Minutes(10), absl::Minutes(10)),
        Hopping(absl::Minutes(10), absl::Minutes(1), absl::Minutes(-9)),
        Session(absl::Milliseconds(1)), Session(absl::Hours(1)),
        WindowSpec{}}) {
    EXPECT_TRUE(spec.Validate().ok())
        << spec.ToString() << ": " << spec.Validate();
  }
}

TEST(WindowSpecValidateTest, Size) {
  ExpectInvalid(Tumbling(absl::ZeroDuration()), "window.size");
  ExpectInvalid(Tumbling(absl::Minutes(-1)), "window.size");
  ExpectInvalid(Tumbling(absl::Microseconds(500)), "window.size");
  ExpectInvalid(Tumbling(absl::Microseconds(1500)), "window.size");
  ExpectInvalid(Tumbling(absl::InfiniteDuration()), "window.size");
  ExpectInvalid(Hopping(absl::ZeroDuration(), absl::Minutes(1)), "window.size");
  ExpectInvalid(Hopping(absl::Seconds(-10), absl::Seconds(5)), "window.size");
}

TEST(WindowSpecValidateTest, Slide) {
  ExpectInvalid(Hopping(absl::Minutes(10), absl::Minutes(3)), "window.slide");
  ExpectInvalid(Hopping(absl::Minutes(10), absl::Minutes(20)), "window.slide");
  ExpectInvalid(Hopping(absl::Minutes(10), absl::ZeroDuration()),
                "window.slide");
  ExpectInvalid(Hopping(absl::Minutes(10), absl::Minutes(-5)), "window.slide");
  ExpectInvalid(Hopping(absl::Milliseconds(10), absl::Microseconds(2500)),
                "window.slide");
}

TEST(WindowSpecValidateTest, Gap) {
  ExpectInvalid(Session(absl::ZeroDuration()), "window.gap");
  ExpectInvalid(Session(absl::Seconds(-1)), "window.gap");
  ExpectInvalid(Session(absl::Microseconds(10)), "window.gap");
  ExpectInvalid(Session(absl::Milliseconds(3) + absl::Microseconds(1)),
                "window.gap");
}

TEST(WindowSpecValidateTest, Offset) {
  ExpectInvalid(Tumbling(absl::Minutes(1), absl::Minutes(1)), "window.offset");
  ExpectInvalid(Tumbling(absl::Minutes(1), absl::Minutes(-1)), "window.offset");
  ExpectInvalid(Tumbling(absl::Minutes(1), absl::Minutes(2)), "window.offset");
  ExpectInvalid(Tumbling(absl::Minutes(1), absl::Microseconds(1)),
                "window.offset");
  ExpectInvalid(Tumbling(absl::Minutes(1), absl::Microseconds(-1)),
                "window.offset");
  ExpectInvalid(Hopping(absl::Minutes(10), absl::Minutes(5), absl::Minutes(10)),
                "window.offset");
  EXPECT_TRUE(Tumbling(absl::Minutes(1), absl::Seconds(59)).Validate().ok());
  EXPECT_TRUE(Tumbling(absl::Minutes(1), absl::Seconds(-59)).Validate().ok());
}

TEST(WindowSpecValidateTest, MessageNamesTheBadValue) {
  const absl::Status s =
      Hopping(absl::Minutes(10), absl::Minutes(3)).Validate();
  EXPECT_THAT(std::string(s.message()), HasSubstr("3m"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("10m"));
}

// ---- ToString and factories ------------------------------------------------

TEST(WindowSpecTest, ToString) {
  EXPECT_EQ(Tumbling(absl::Minutes(1)).ToString(), "tumbling(1m)");
  EXPECT_EQ(Hopping(absl::Minutes(5), absl::Minutes(1)).ToString(),
            "hopping(5m,1m)");
  EXPECT_EQ(Session(absl::Minutes(30)).ToString(), "session(30m)");
  EXPECT_EQ(Daily().ToString(), "tumbling(24h)");
  EXPECT_EQ(Daily(absl::Hours(5)).ToString(), "tumbling(24h)+5h");
  EXPECT_EQ(
      Hopping(absl::Hours(1), absl::Minutes(15), absl::Minutes(5)).ToString(),
      "hopping(1h,15m)+5m");
  EXPECT_EQ(Tumbling(absl::Milliseconds(250)).ToString(), "tumbling(250ms)");
  // Distinct specs print distinctly.
  EXPECT_NE(Daily(absl::Hours(5)).ToString(),
            Daily(absl::Hours(-5)).ToString());
}

TEST(WindowSpecTest, FactoriesAndEquality) {
  const WindowSpec t = Tumbling(absl::Minutes(2), absl::Seconds(5));
  EXPECT_EQ(t.kind, WindowKind::kTumbling);
  EXPECT_EQ(t.size, absl::Minutes(2));
  EXPECT_EQ(t.offset, absl::Seconds(5));

  const WindowSpec h = Hopping(absl::Minutes(4), absl::Minutes(2));
  EXPECT_EQ(h.kind, WindowKind::kHopping);
  EXPECT_EQ(h.size, absl::Minutes(4));
  EXPECT_EQ(h.slide, absl::Minutes(2));
  EXPECT_EQ(h.offset, absl::ZeroDuration());

  const WindowSpec s = Session(absl::Minutes(7));
  EXPECT_EQ(s.kind, WindowKind::kSession);
  EXPECT_EQ(s.gap, absl::Minutes(7));

  EXPECT_EQ(Daily(), Tumbling(absl::Hours(24)));
  EXPECT_EQ(Tumbling(absl::Minutes(1)), Tumbling(absl::Minutes(1)));
  EXPECT_FALSE(Tumbling(absl::Minutes(1)) == Tumbling(absl::Minutes(2)));
  EXPECT_FALSE(Tumbling(absl::Minutes(1)) ==
               Tumbling(absl::Minutes(1), absl::Seconds(1)));
  EXPECT_FALSE(Session(absl::Minutes(1)) == Session(absl::Minutes(2)));
}

}  // namespace
}  // namespace weir
