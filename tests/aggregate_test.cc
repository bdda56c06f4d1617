#include "weir/aggregate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/internal/accumulators.h"
#include "weir/record.h"
#include "weir/sketch.h"

namespace weir {

// Readable parameter values in test output.
static void PrintTo(AggregateKind kind, std::ostream* os) {
  *os << AggregateKindName(kind);
}

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr AggregateKind kAllKinds[] = {
    AggregateKind::kCount,      AggregateKind::kSum,
    AggregateKind::kDecimalSum, AggregateKind::kMin,
    AggregateKind::kMax,        AggregateKind::kMean,
    AggregateKind::kVariance,   AggregateKind::kStddev,
    AggregateKind::kFirst,      AggregateKind::kLast,
};

// One accumulator in 8-byte-aligned storage, as the operator keeps them.
class Acc {
 public:
  explicit Acc(const Aggregator& agg)
      : agg_(&agg), buf_((agg.state_size() + 7) / 8) {
    agg.Init(data());
  }
  char* data() { return reinterpret_cast<char*>(buf_.data()); }
  const char* data() const {
    return reinterpret_cast<const char*>(buf_.data());
  }
  std::string bytes() const { return std::string(data(), agg_->state_size()); }
  absl::Status Add(const Value& v, EventTime t = 0, int64_t offset = 0) {
    return agg_->Add(data(), v, t, offset);
  }
  void Merge(const Acc& other) { agg_->Merge(data(), other.data()); }
  Value Result() const { return agg_->Result(data()); }
  std::string Encode() const {
    std::string out;
    agg_->Encode(data(), &out);
    return out;
  }

 private:
  const Aggregator* agg_;
  std::vector<uint64_t> buf_;
};

Aggregator Make(AggregateKind kind, AggregatorOptions options = {}) {
  absl::StatusOr<Aggregator> agg = Aggregator::Create(kind, options);
  EXPECT_TRUE(agg.ok()) << agg.status();
  return *std::move(agg);
}

double AsDouble(const Value& v) {
  EXPECT_EQ(v.type(), Value::Type::kDouble) << v.ToString();
  return v.type() == Value::Type::kDouble ? v.double_value() : NAN;
}

bool IsExactKind(AggregateKind kind) {
  switch (kind) {
    case AggregateKind::kSum:
    case AggregateKind::kMean:
    case AggregateKind::kVariance:
    case AggregateKind::kStddev:
      return false;
    default:
      return true;
  }
}

// |a - b| <= 1e-9 relative to the larger magnitude; `floor` is an absolute
// tolerance for results that are (close to) zero.
void ExpectClose(const Value& a, const Value& b, double floor,
                 const std::string& what) {
  ASSERT_EQ(a.type(), b.type())
      << what << ": " << a.ToString() << " vs " << b.ToString();
  if (a.type() != Value::Type::kDouble) {
    EXPECT_EQ(a, b) << what;
    return;
  }
  const double x = a.double_value(), y = b.double_value();
  const double tol = 1e-9 * std::max(std::fabs(x), std::fabs(y)) + floor;
  EXPECT_LE(std::fabs(x - y), tol) << what << ": " << x << " vs " << y;
}

// ---- Create, options, names, sizes -----------------------------------------

TEST(AggregatorOptionsTest, ValidateNamesDecimalScale) {
  AggregatorOptions options;
  EXPECT_TRUE(options.Validate().ok());
  for (int32_t scale : {0, 2, 18}) {
    options.decimal_scale = scale;
    EXPECT_TRUE(options.Validate().ok()) << scale;
  }
  for (int32_t scale : {-1, 19, 100}) {
    options.decimal_scale = scale;
    const absl::Status s = options.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << scale;
    EXPECT_THAT(std::string(s.message()), StartsWith("decimal_scale")) << s;
    EXPECT_EQ(
        Aggregator::Create(AggregateKind::kDecimalSum, options).status().code(),
        absl::StatusCode::kInvalidArgument);
  }
}

TEST(AggregatorOptionsTest, ValidateNamesQuantileRelativeError) {
  AggregatorOptions options;
  for (double error : {0.0, 1e-5, 0.5, std::nan("")}) {
    options.quantile_relative_error = error;
    const absl::Status s = options.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << error;
    EXPECT_THAT(std::string(s.message()),
                StartsWith("quantile_relative_error"));
  }
  options.quantile_relative_error = 0.001;
  EXPECT_TRUE(options.Validate().ok());
}

TEST(AggregatorTest, CreateRejectsUnknownKind) {
  for (int k : {0, 13, 255}) {
    EXPECT_EQ(
        Aggregator::Create(static_cast<AggregateKind>(k), {}).status().code(),
        absl::StatusCode::kInvalidArgument)
        << k;
  }
}

TEST(AggregatorTest, NamesAndSizes) {
  const char* names[] = {"count", "sum",      "decimal_sum", "min",   "max",
                         "mean",  "variance", "stddev",      "first", "last"};
  int i = 0;
  for (AggregateKind kind : kAllKinds) {
    EXPECT_STREQ(AggregateKindName(kind), names[i++]);
    const Aggregator agg = Make(kind);
    EXPECT_EQ(agg.kind(), kind);
    EXPECT_GT(agg.state_size(), 0u);
    EXPECT_EQ(agg.state_size() % 8, 0u) << names[i - 1];
  }
}

// ---- Results on known inputs -----------------------------------------------

TEST(AggregatorTest, EmptyResults) {
  EXPECT_EQ(Acc(Make(AggregateKind::kCount)).Result(), Value::Int64(0));
  EXPECT_EQ(Acc(Make(AggregateKind::kSum)).Result(), Value::Double(0));
  EXPECT_EQ(Acc(Make(AggregateKind::kDecimalSum)).Result(), Value::Dec(0, 2));
  for (AggregateKind kind :
       {AggregateKind::kMin, AggregateKind::kMax, AggregateKind::kMean,
        AggregateKind::kVariance, AggregateKind::kStddev, AggregateKind::kFirst,
        AggregateKind::kLast}) {
    const Aggregator agg = Make(kind);
    EXPECT_TRUE(Acc(agg).Result().is_null()) << AggregateKindName(kind);
  }
}

TEST(AggregatorTest, KnownInputs) {
  const std::vector<double> xs = {3, 1, 4, 1, 5, 9, 2, 6};
  auto fold = [&](AggregateKind kind) {
    const Aggregator agg = Make(kind);
    Acc acc(agg);
    for (size_t i = 0; i < xs.size(); ++i) {
      EXPECT_TRUE(acc.Add(Value::Double(xs[i]), 1000 + i, i).ok());
    }
    return acc.Result();
  };
  EXPECT_EQ(fold(AggregateKind::kCount), Value::Int64(8));
  EXPECT_EQ(fold(AggregateKind::kSum), Value::Double(31));
  EXPECT_EQ(fold(AggregateKind::kMin), Value::Double(1));
  EXPECT_EQ(fold(AggregateKind::kMax), Value::Double(9));
  EXPECT_DOUBLE_EQ(AsDouble(fold(AggregateKind::kMean)), 3.875);
  // Population variance: sum of squared deviations 52.875 over 8.
  EXPECT_DOUBLE_EQ(AsDouble(fold(AggregateKind::kVariance)), 6.609375);
  EXPECT_DOUBLE_EQ(AsDouble(fold(AggregateKind::kStddev)), std::sqrt(6.609375));
  EXPECT_EQ(fold(AggregateKind::kFirst), Value::Double(3));
  EXPECT_EQ(fold(AggregateKind::kLast), Value::Double(6));
}

TEST(AggregatorTest, SingleValueVarianceIsZero) {
  for (AggregateKind kind :
       {AggregateKind::kVariance, AggregateKind::kStddev}) {
    const Aggregator agg = Make(kind);
    Acc acc(agg);
    ASSERT_TRUE(acc.Add(Value::Double(1e9 + 0.5)).ok());
    EXPECT_EQ(acc.Result(), Value::Double(0));
  }
}

TEST(AggregatorTest, VarianceOfLargeOffsetIsStable) {
  // Welford keeps precision where the naive sum-of-squares formula does not.
  const Aggregator agg = Make(AggregateKind::kVariance);
  Acc acc(agg);
  for (double x : {1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16}) {
    ASSERT_TRUE(acc.Add(Value::Double(x)).ok());
  }
  EXPECT_NEAR(AsDouble(acc.Result()), 22.5, 1e-6);
}

TEST(AggregatorTest, NumericTypesFoldAsDoubles) {
  const Aggregator agg = Make(AggregateKind::kSum);
  Acc acc(agg);
  ASSERT_TRUE(acc.Add(Value::Int64(10)).ok());
  ASSERT_TRUE(acc.Add(Value::Dec(1234, 2)).ok());
  ASSERT_TRUE(acc.Add(Value::Bool(true)).ok());
  ASSERT_TRUE(acc.Add(Value::Bool(false)).ok());
  ASSERT_TRUE(acc.Add(Value::Double(0.5)).ok());
  EXPECT_DOUBLE_EQ(AsDouble(acc.Result()), 23.84);
}

TEST(AggregatorTest, MinMaxOfNegativesAndMixedTypes) {
  const Aggregator min = Make(AggregateKind::kMin);
  const Aggregator max = Make(AggregateKind::kMax);
  Acc lo(min), hi(max);
  for (const Value& v : {Value::Double(-3.5), Value::Int64(-7),
                         Value::Dec(-650, 2), Value::Double(-1)}) {
    ASSERT_TRUE(lo.Add(v).ok());
    ASSERT_TRUE(hi.Add(v).ok());
  }
  EXPECT_EQ(lo.Result(), Value::Double(-7));
  EXPECT_EQ(hi.Result(), Value::Double(-1));
}

TEST(AggregatorTest, MinMaxMergeIntoEmptyTakesTheOther) {
  // An empty accumulator holds a placeholder, not a value: merging into it
  // must take the other side even when 0 would compare better.
  const Aggregator min = Make(AggregateKind::kMin);
  const Aggregator max = Make(AggregateKind::kMax);
  Acc lo(min), hi(max);
  ASSERT_TRUE(lo.Add(Value::Double(5)).ok());
  ASSERT_TRUE(lo.Add(Value::Double(3)).ok());
  ASSERT_TRUE(hi.Add(Value::Double(-5)).ok());
  ASSERT_TRUE(hi.Add(Value::Double(-3)).ok());
  Acc lo_total(min), hi_total(max);
  lo_total.Merge(lo);
  hi_total.Merge(hi);
  EXPECT_EQ(lo_total.Result(), Value::Double(3));
  EXPECT_EQ(hi_total.Result(), Value::Double(-3));
  // And merging an empty one in changes nothing.
  lo_total.Merge(Acc(min));
  hi_total.Merge(Acc(max));
  EXPECT_EQ(lo_total.Result(), Value::Double(3));
  EXPECT_EQ(hi_total.Result(), Value::Double(-3));
}

TEST(AggregatorTest, CountAcceptsAnyValue) {
  const Aggregator agg = Make(AggregateKind::kCount);
  Acc acc(agg);
  for (const Value& v :
       {Value::String("x"), Value::Bool(false), Value::Int64(1),
        Value::Double(2), Value::Dec(3, 1), Value::String("")}) {
    ASSERT_TRUE(acc.Add(v).ok()) << v.ToString();
  }
  EXPECT_EQ(acc.Result(), Value::Int64(6));
}

// ---- Decimal sum -----------------------------------------------------------

TEST(DecimalSumTest, HeaderExample) {
  const Aggregator sum = Make(AggregateKind::kDecimalSum);
  Acc a(sum), b(sum);
  ASSERT_TRUE(a.Add(Value::Dec(1234, 2), 5, 0).ok());
  ASSERT_TRUE(b.Add(Value::Dec(1, 2), 5, 1).ok());
  a.Merge(b);
  EXPECT_EQ(a.Result(), Value::Dec(1235, 2));
}

TEST(DecimalSumTest, RescalesToTheAggregatorScale) {
  const Aggregator sum = Make(AggregateKind::kDecimalSum);  // scale 2
  Acc acc(sum);
  ASSERT_TRUE(acc.Add(Value::Dec(7, 0)).ok());      // 7
  ASSERT_TRUE(acc.Add(Value::Dec(5, 1)).ok());      // 0.5
  ASSERT_TRUE(acc.Add(Value::Dec(-25, 2)).ok());    // -0.25
  ASSERT_TRUE(acc.Add(Value::Dec(1230, 3)).ok());   // 1.230: last digit 0
  ASSERT_TRUE(acc.Add(Value::Dec(-4000, 5)).ok());  // -0.04000
  ASSERT_TRUE(acc.Add(Value::Int64(3)).ok());       // 3
  EXPECT_EQ(acc.Result(), Value::Dec(1144, 2));     // 11.44
}

TEST(DecimalSumTest, ScaleZeroAndEighteen) {
  AggregatorOptions options;
  options.decimal_scale = 0;
  const Aggregator whole = Make(AggregateKind::kDecimalSum, options);
  Acc a(whole);
  ASSERT_TRUE(a.Add(Value::Dec(500, 2)).ok());
  ASSERT_TRUE(a.Add(Value::Int64(-2)).ok());
  EXPECT_EQ(a.Result(), Value::Dec(3, 0));
  EXPECT_EQ(a.Add(Value::Dec(1, 1)).code(), absl::StatusCode::kInvalidArgument);

  options.decimal_scale = 18;
  const Aggregator fine = Make(AggregateKind::kDecimalSum, options);
  Acc b(fine);
  ASSERT_TRUE(b.Add(Value::Dec(1, 18)).ok());
  ASSERT_TRUE(b.Add(Value::Int64(2)).ok());
  EXPECT_EQ(b.Result(), Value::Dec(2'000'000'000'000'000'001, 18));
}

TEST(DecimalSumTest, BeyondInt64UnitsIsADouble) {
  AggregatorOptions options;
  options.decimal_scale = 0;
  const Aggregator sum = Make(AggregateKind::kDecimalSum, options);
  Acc acc(sum);
  const int64_t big = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(acc.Add(Value::Int64(big)).ok());
  ASSERT_TRUE(acc.Add(Value::Int64(big)).ok());
  EXPECT_DOUBLE_EQ(AsDouble(acc.Result()), 2.0 * static_cast<double>(big));
  // Back within range the exact decimal returns, nothing was lost.
  ASSERT_TRUE(acc.Add(Value::Int64(-big)).ok());
  ASSERT_TRUE(acc.Add(Value::Int64(-big)).ok());
  ASSERT_TRUE(acc.Add(Value::Int64(1)).ok());
  EXPECT_EQ(acc.Result(), Value::Dec(1, 0));
}

TEST(DecimalSumTest, OrderIndependentAndExact) {
  std::mt19937_64 rng(2026);
  std::uniform_int_distribution<int64_t> units(-1'000'000'000, 1'000'000'000);
  std::uniform_int_distribution<int> scales(0, 2);
  std::vector<Value> values;
  int64_t expected_cents = 0;  // computed independently of the aggregator
  for (int i = 0; i < 10'000; ++i) {
    const int64_t u = units(rng);
    const int scale = scales(rng);
    values.push_back(Value::Dec(u, scale));
    expected_cents += u * (scale == 0 ? 100 : scale == 1 ? 10 : 1);
  }
  const Aggregator sum = Make(AggregateKind::kDecimalSum);
  std::string first_encoding;
  for (int round = 0; round < 5; ++round) {
    std::shuffle(values.begin(), values.end(), rng);
    Acc acc(sum);
    for (const Value& v : values) ASSERT_TRUE(acc.Add(v).ok());
    EXPECT_EQ(acc.Result(), Value::Dec(expected_cents, 2)) << round;
    if (round == 0) {
      first_encoding = acc.Encode();
    } else {
      EXPECT_EQ(acc.Encode(), first_encoding) << round;
    }
  }
}

// ---- Compensated sum -------------------------------------------------------

TEST(SumTest, CompensatedSumBeatsNaive) {
  std::vector<double> xs;
  for (int i = 0; i < 1000; ++i) {
    xs.push_back(1e16);
    xs.push_back(1);
    xs.push_back(-1e16);
  }
  double naive = 0;
  for (double x : xs) naive += x;
  ASSERT_NE(naive, 1000.0);  // the sequence defeats a plain loop

  const Aggregator sum = Make(AggregateKind::kSum);
  const Aggregator mean = Make(AggregateKind::kMean);
  Acc s(sum), m(mean);
  for (double x : xs) {
    ASSERT_TRUE(s.Add(Value::Double(x)).ok());
    ASSERT_TRUE(m.Add(Value::Double(x)).ok());
  }
  EXPECT_EQ(s.Result(), Value::Double(1000));
  EXPECT_DOUBLE_EQ(AsDouble(m.Result()), 1000.0 / 3000.0);

  // Split into contiguous chunks, each partial carries its own compensation,
  // and merging must keep it.
  for (size_t chunk : {2, 4, 5, 7, 100, 1001}) {
    std::vector<Acc> parts;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i % chunk == 0) parts.emplace_back(sum);
      ASSERT_TRUE(parts.back().Add(Value::Double(xs[i])).ok());
    }
    Acc merged(sum);
    for (const Acc& p : parts) merged.Merge(p);
    EXPECT_EQ(merged.Result(), Value::Double(1000)) << chunk;
    Acc reversed(sum);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it)
      reversed.Merge(*it);
    EXPECT_EQ(reversed.Result(), Value::Double(1000)) << chunk;
  }
}

TEST(SumTest, SmallValuesAfterALargeOne) {
  const Aggregator sum = Make(AggregateKind::kSum);
  Acc acc(sum);
  ASSERT_TRUE(acc.Add(Value::Double(1.0)).ok());
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_TRUE(acc.Add(Value::Double(1e-16)).ok());
  }
  EXPECT_DOUBLE_EQ(AsDouble(acc.Result()), 1.0 + 1e-12);
}

// Integers and decimals the scale holds are summed exactly, so a sum or a
// mean of amounts is the same double however the values were ordered,
// split into partials and merged: a restored or spilled run's value equals
// the uninterrupted run's, bit for bit.
TEST(SumTest, AmountsAreExactWhateverTheMergePoints) {
  std::mt19937_64 rng(2027);
  std::uniform_int_distribution<int64_t> units(-100'000'000, 100'000'000);
  std::vector<Value> values;
  __int128 cents = 0;  // computed independently of the aggregator
  for (int i = 0; i < 5'000; ++i) {
    const int64_t u = units(rng);
    switch (i % 3) {
      case 0:
        values.push_back(Value::Dec(u, 2));
        cents += u;
        break;
      case 1:
        values.push_back(Value::Dec(u, 1));
        cents += static_cast<__int128>(u) * 10;
        break;
      default:
        values.push_back(Value::Int64(u / 1000));
        cents += static_cast<__int128>(u / 1000) * 100;
    }
  }
  const double expected_sum = static_cast<double>(cents) / 100.0;
  const double expected_mean =
      expected_sum / static_cast<double>(values.size());
  for (AggregateKind kind : {AggregateKind::kSum, AggregateKind::kMean}) {
    const Aggregator agg = Make(kind);
    const Value expected = Value::Double(
        kind == AggregateKind::kSum ? expected_sum : expected_mean);
    for (int round = 0; round < 20; ++round) {
      std::shuffle(values.begin(), values.end(), rng);
      std::vector<Acc> parts;
      for (size_t i = 0; i < values.size(); ++i) {
        if (i == 0 || rng() % 50 == 0) parts.emplace_back(agg);
        ASSERT_TRUE(parts.back().Add(values[i]).ok());
      }
      std::shuffle(parts.begin(), parts.end(), rng);
      Acc merged(agg);
      for (const Acc& p : parts) merged.Merge(p);
      EXPECT_EQ(merged.Result(), expected)
          << AggregateKindName(kind) << " round " << round;
    }
  }
}

TEST(SumTest, DecimalsBeyondTheScaleFallBackToTheDoubleSum) {
  const Aggregator mean = Make(AggregateKind::kMean);  // decimal_scale 2
  Acc acc(mean);
  ASSERT_TRUE(acc.Add(Value::Dec(12345, 3)).ok());  // 12.345
  ASSERT_TRUE(acc.Add(Value::Dec(1, 0)).ok());
  ASSERT_TRUE(acc.Add(Value::Double(0.25)).ok());
  EXPECT_DOUBLE_EQ(AsDouble(acc.Result()), (12.345 + 1 + 0.25) / 3);
}

// ---- First / last ----------------------------------------------------------

TEST(PickTest, EarliestAndLatestByEventTime) {
  const Aggregator first = Make(AggregateKind::kFirst);
  const Aggregator last = Make(AggregateKind::kLast);
  Acc f(first), l(last);
  // Arrival order differs from event-time order.
  const struct {
    double v;
    EventTime t;
    int64_t offset;
  } records[] = {{5, 300, 0}, {1, 100, 1}, {9, 500, 2}, {4, 200, 3}};
  for (const auto& r : records) {
    ASSERT_TRUE(f.Add(Value::Double(r.v), r.t, r.offset).ok());
    ASSERT_TRUE(l.Add(Value::Double(r.v), r.t, r.offset).ok());
  }
  EXPECT_EQ(f.Result(), Value::Double(1));
  EXPECT_EQ(l.Result(), Value::Double(9));
}

TEST(PickTest, EqualEventTimesBreakTiesByOffset) {
  const Aggregator first = Make(AggregateKind::kFirst);
  const Aggregator last = Make(AggregateKind::kLast);
  Acc f(first), l(last);
  // All at t=100; offsets out of order.
  for (const auto& [v, offset] : std::vector<std::pair<double, int64_t>>{
           {1, 5}, {2, 3}, {3, 7}, {4, 4}}) {
    ASSERT_TRUE(f.Add(Value::Double(v), 100, offset).ok());
    ASSERT_TRUE(l.Add(Value::Double(v), 100, offset).ok());
  }
  EXPECT_EQ(f.Result(), Value::Double(2));  // offset 3
  EXPECT_EQ(l.Result(), Value::Double(3));  // offset 7
  // Event time outranks offset.
  ASSERT_TRUE(f.Add(Value::Double(9), 99, 1000).ok());
  ASSERT_TRUE(l.Add(Value::Double(8), 101, 0).ok());
  EXPECT_EQ(f.Result(), Value::Double(9));
  EXPECT_EQ(l.Result(), Value::Double(8));
}

TEST(PickTest, MergeRespectsTieBreak) {
  for (AggregateKind kind : {AggregateKind::kFirst, AggregateKind::kLast}) {
    const Aggregator agg = Make(kind);
    // Part a holds offset 3 and 9, part b offset 5; all at the same time.
    auto part_a = [&] {
      Acc a(agg);
      EXPECT_TRUE(a.Add(Value::Double(30), 100, 3).ok());
      EXPECT_TRUE(a.Add(Value::Double(90), 100, 9).ok());
      return a;
    };
    auto part_b = [&] {
      Acc b(agg);
      EXPECT_TRUE(b.Add(Value::Double(50), 100, 5).ok());
      return b;
    };
    const Value want = Value::Double(kind == AggregateKind::kFirst ? 30 : 90);
    Acc ab = part_a();
    ab.Merge(part_b());
    EXPECT_EQ(ab.Result(), want) << AggregateKindName(kind);
    Acc ba = part_b();
    ba.Merge(part_a());
    EXPECT_EQ(ba.Result(), want) << AggregateKindName(kind);
    // Merging an empty accumulator changes nothing, either way round.
    Acc empty(agg);
    ab.Merge(empty);
    EXPECT_EQ(ab.Result(), want);
    empty.Merge(ab);
    EXPECT_EQ(empty.Result(), want);
  }
}

TEST(PickTest, NegativeEventTimes) {
  const Aggregator first = Make(AggregateKind::kFirst);
  Acc f(first);
  ASSERT_TRUE(f.Add(Value::Double(1), -5, 0).ok());
  ASSERT_TRUE(f.Add(Value::Double(2), -10, 1).ok());
  ASSERT_TRUE(f.Add(Value::Double(3), 0, 2).ok());
  EXPECT_EQ(f.Result(), Value::Double(2));
}

// ---- Null policy -----------------------------------------------------------

TEST(NullPolicyTest, SkipIgnoresNulls) {
  const std::vector<Value> values = {Value::Null(), Value::Double(4),
                                     Value::Null(), Value::Double(2)};
  auto fold = [&](AggregateKind kind) {
    const Aggregator agg = Make(kind);
    Acc acc(agg);
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_TRUE(acc.Add(values[i], static_cast<EventTime>(i), i).ok());
    }
    return acc.Result();
  };
  EXPECT_EQ(fold(AggregateKind::kCount), Value::Int64(2));
  EXPECT_EQ(fold(AggregateKind::kSum), Value::Double(6));
  EXPECT_EQ(fold(AggregateKind::kMean), Value::Double(3));
  EXPECT_EQ(fold(AggregateKind::kMin), Value::Double(2));
  EXPECT_EQ(fold(AggregateKind::kMax), Value::Double(4));
  EXPECT_EQ(fold(AggregateKind::kVariance), Value::Double(1));
  EXPECT_EQ(fold(AggregateKind::kFirst), Value::Double(4));
  EXPECT_EQ(fold(AggregateKind::kLast), Value::Double(2));

  // Only nulls: as if empty.
  const Aggregator mean = Make(AggregateKind::kMean);
  Acc m(mean);
  ASSERT_TRUE(m.Add(Value::Null()).ok());
  EXPECT_TRUE(m.Result().is_null());
  const Aggregator count = Make(AggregateKind::kCount);
  Acc c(count);
  ASSERT_TRUE(c.Add(Value::Null()).ok());
  EXPECT_EQ(c.Result(), Value::Int64(0));
}

TEST(NullPolicyTest, ZeroFoldsNullAsZero) {
  AggregatorOptions options;
  options.null_policy = NullPolicy::kZero;
  const std::vector<Value> values = {Value::Null(), Value::Double(4),
                                     Value::Null(), Value::Double(2)};
  auto fold = [&](AggregateKind kind) {
    const Aggregator agg = Make(kind, options);
    Acc acc(agg);
    for (size_t i = 0; i < values.size(); ++i) {
      EXPECT_TRUE(acc.Add(values[i], static_cast<EventTime>(i), i).ok());
    }
    return acc.Result();
  };
  EXPECT_EQ(fold(AggregateKind::kCount), Value::Int64(4));
  EXPECT_EQ(fold(AggregateKind::kSum), Value::Double(6));
  EXPECT_EQ(fold(AggregateKind::kMean), Value::Double(1.5));
  EXPECT_EQ(fold(AggregateKind::kMin), Value::Double(0));
  EXPECT_EQ(fold(AggregateKind::kMax), Value::Double(4));
  // {0, 4, 0, 2}: mean 1.5, squared deviations 2.25+6.25+2.25+0.25 = 11.
  EXPECT_DOUBLE_EQ(AsDouble(fold(AggregateKind::kVariance)), 2.75);
  EXPECT_EQ(fold(AggregateKind::kFirst), Value::Double(0));
  EXPECT_EQ(fold(AggregateKind::kLast), Value::Double(2));

  const Aggregator dec = Make(AggregateKind::kDecimalSum, options);
  Acc d(dec);
  ASSERT_TRUE(d.Add(Value::Null()).ok());
  ASSERT_TRUE(d.Add(Value::Dec(150, 2)).ok());
  EXPECT_EQ(d.Result(), Value::Dec(150, 2));
}

// ---- Wrong types -----------------------------------------------------------

void ExpectRefusedAndUnchanged(AggregateKind kind,
                               const AggregatorOptions& options,
                               const Value& bad) {
  const Aggregator agg = Make(kind, options);
  Acc acc(agg);
  ASSERT_TRUE(acc.Add(Value::Int64(7), 10, 1).ok());
  const std::string before = acc.bytes();
  const Value result_before = acc.Result();
  const absl::Status s = acc.Add(bad, 5, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
      << AggregateKindName(kind) << " " << bad.ToString();
  EXPECT_EQ(acc.bytes(), before)
      << AggregateKindName(kind) << " " << bad.ToString();
  EXPECT_EQ(acc.Result(), result_before);
}

TEST(WrongTypeTest, StringIntoNumericKinds) {
  for (AggregateKind kind : kAllKinds) {
    if (kind == AggregateKind::kCount) continue;
    ExpectRefusedAndUnchanged(kind, {}, Value::String("12.5"));
  }
}

TEST(WrongTypeTest, NonFiniteDoubles) {
  for (AggregateKind kind :
       {AggregateKind::kSum, AggregateKind::kMin, AggregateKind::kMax,
        AggregateKind::kMean, AggregateKind::kVariance, AggregateKind::kStddev,
        AggregateKind::kFirst, AggregateKind::kLast}) {
    ExpectRefusedAndUnchanged(
        kind, {}, Value::Double(std::numeric_limits<double>::quiet_NaN()));
    ExpectRefusedAndUnchanged(
        kind, {}, Value::Double(std::numeric_limits<double>::infinity()));
  }
}

TEST(WrongTypeTest, DecimalSumRefusesInexactInput) {
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {}, Value::Double(1.5));
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {}, Value::Double(2.0));
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {}, Value::Bool(true));
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {},
                            Value::String("1.23"));
  // 1.234 has a non-zero third place; the scale-2 sum never rounds it.
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {},
                            Value::Dec(1234, 3));
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {}, Value::Dec(-1, 3));
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {},
                            Value::Dec(1'000'000'001, 9));
  // A scale outside 0..18 is refused, not misread.
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {}, Value::Dec(1, 19));
  ExpectRefusedAndUnchanged(AggregateKind::kDecimalSum, {}, Value::Dec(1, -1));

  const Aggregator sum = Make(AggregateKind::kDecimalSum);
  Acc acc(sum);
  EXPECT_TRUE(acc.Add(Value::Dec(1230, 3)).ok());     // 1.230 is 1.23
  EXPECT_TRUE(acc.Add(Value::Dec(-50'000, 5)).ok());  // -0.50000
  EXPECT_EQ(acc.Result(), Value::Dec(73, 2));
  const absl::Status s = acc.Add(Value::Dec(1234, 3));
  EXPECT_THAT(std::string(s.message()), HasSubstr("3 places"));
}

// ---- The merge law ---------------------------------------------------------

struct Input {
  Value v;
  EventTime t;
  int64_t offset;
};

// Random inputs of the types `kind` accepts, nulls included. Event times
// repeat often so that first/last exercise the offset tie-break; offsets are
// unique, as they are within one partition's log.
std::vector<Input> RandomInputs(AggregateKind kind, size_t n,
                                std::mt19937_64& rng) {
  std::uniform_int_distribution<int> type(0, 9);
  std::uniform_real_distribution<double> real(-1000, 1000);
  std::uniform_int_distribution<int64_t> integer(-100'000, 100'000);
  std::uniform_int_distribution<int> scale(0, 2);
  std::uniform_int_distribution<EventTime> time(-20, 20);
  std::vector<int64_t> offsets(n);
  std::iota(offsets.begin(), offsets.end(), 0);
  std::shuffle(offsets.begin(), offsets.end(), rng);
  std::vector<Input> out;
  for (size_t i = 0; i < n; ++i) {
    Value v;
    const int k = type(rng);
    if (k == 0) {
      v = Value::Null();
    } else if (kind == AggregateKind::kDecimalSum) {
      v = k == 1 ? Value::Int64(integer(rng))
                 : Value::Dec(integer(rng) * 1'000'000, scale(rng));
    } else if (k <= 6) {
      v = Value::Double(real(rng));
    } else if (k == 7) {
      v = Value::Int64(integer(rng));
    } else if (k == 8) {
      v = Value::Dec(integer(rng), scale(rng));
    } else {
      v = Value::Bool(integer(rng) % 2 == 0);
    }
    out.push_back(Input{std::move(v), time(rng), offsets[i]});
  }
  return out;
}

void CheckMergeLaw(AggregateKind kind, const AggregatorOptions& options,
                   uint64_t seed) {
  const Aggregator agg = Make(kind, options);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> sizes(0, 300);
  for (int trial = 0; trial < 200; ++trial) {
    const std::vector<Input> inputs = RandomInputs(kind, sizes(rng), rng);
    Acc whole(agg);
    double magnitude = 0;
    for (const Input& in : inputs) {
      ASSERT_TRUE(whole.Add(in.v, in.t, in.offset).ok());
      const absl::StatusOr<double> d = in.v.AsDouble();
      if (d.ok()) magnitude += std::fabs(*d);
    }
    for (int k = 1; k <= 8; ++k) {
      std::vector<Acc> parts;
      for (int p = 0; p < k; ++p) parts.emplace_back(agg);
      std::uniform_int_distribution<int> pick(0, k - 1);
      for (const Input& in : inputs) {
        ASSERT_TRUE(parts[pick(rng)].Add(in.v, in.t, in.offset).ok());
      }
      std::vector<int> order(k);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      // Merge into a fresh accumulator half the time, into the first part
      // otherwise.
      Acc merged(agg);
      size_t start = 0;
      if (trial % 2 == 1) {
        merged = parts[order[0]];
        start = 1;
      }
      for (size_t i = start; i < order.size(); ++i)
        merged.Merge(parts[order[i]]);

      const std::string what =
          absl::StrCat(AggregateKindName(kind), " trial ", trial, " k ", k,
                       " n ", inputs.size());
      if (IsExactKind(kind)) {
        ASSERT_EQ(merged.Result(), whole.Result())
            << what << ": " << merged.Result().ToString() << " vs "
            << whole.Result().ToString();
      } else {
        ExpectClose(merged.Result(), whole.Result(), 1e-12 * magnitude, what);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

class MergeLawTest : public ::testing::TestWithParam<AggregateKind> {};

TEST_P(MergeLawTest, SkipNulls) {
  CheckMergeLaw(GetParam(), {}, 1000 + static_cast<int>(GetParam()));
}

TEST_P(MergeLawTest, ZeroNulls) {
  AggregatorOptions options;
  options.null_policy = NullPolicy::kZero;
  CheckMergeLaw(GetParam(), options, 2000 + static_cast<int>(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, MergeLawTest, ::testing::ValuesIn(kAllKinds),
    [](const ::testing::TestParamInfo<AggregateKind>& info) {
      return std::string(AggregateKindName(info.param));
    });

TEST(MergeTest, DecimalSumMergeIsExactAcrossManyParts) {
  const Aggregator sum = Make(AggregateKind::kDecimalSum);
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int64_t> cents(-1'000'000'000'000,
                                               1'000'000'000'000);
  std::vector<Acc> parts;
  int64_t expected = 0;
  for (int p = 0; p < 64; ++p) {
    parts.emplace_back(sum);
    for (int i = 0; i < 100; ++i) {
      const int64_t c = cents(rng);
      expected += c;
      ASSERT_TRUE(parts.back().Add(Value::Dec(c, 2)).ok());
    }
  }
  std::shuffle(parts.begin(), parts.end(), rng);
  Acc total(sum);
  for (const Acc& p : parts) total.Merge(p);
  EXPECT_EQ(total.Result(), Value::Dec(expected, 2));
}

// ---- Encode / Decode -------------------------------------------------------

TEST(EncodingTest, RoundTripEveryKind) {
  std::mt19937_64 rng(5);
  for (AggregateKind kind : kAllKinds) {
    const Aggregator agg = Make(kind);
    Acc a(agg), b(agg);
    for (const Input& in : RandomInputs(kind, 50, rng)) {
      ASSERT_TRUE(a.Add(in.v, in.t, in.offset).ok());
    }
    for (const Input& in : RandomInputs(kind, 3, rng)) {
      ASSERT_TRUE(b.Add(in.v, in.t, in.offset).ok());
    }
    // Two accumulators back to back, plus trailing bytes that stay unread.
    std::string bytes;
    agg.Encode(a.data(), &bytes);
    const size_t one = bytes.size();
    EXPECT_EQ(one, 2 + agg.state_size());
    EXPECT_EQ(static_cast<uint8_t>(bytes[0]), static_cast<uint8_t>(kind));
    EXPECT_EQ(static_cast<uint8_t>(bytes[1]), Aggregator::kEncodingVersion);
    agg.Encode(b.data(), &bytes);
    bytes += "tail";

    std::string_view in = bytes;
    Acc a2(agg), b2(agg);
    ASSERT_TRUE(agg.Decode(&in, a2.data()).ok()) << AggregateKindName(kind);
    EXPECT_EQ(in.size(), bytes.size() - one);
    ASSERT_TRUE(agg.Decode(&in, b2.data()).ok()) << AggregateKindName(kind);
    EXPECT_EQ(in, "tail");
    EXPECT_EQ(a2.Result(), a.Result()) << AggregateKindName(kind);
    EXPECT_EQ(b2.Result(), b.Result()) << AggregateKindName(kind);
    EXPECT_EQ(a2.Encode(), a.Encode());
    EXPECT_EQ(b2.Encode(), b.Encode());

    // A decoded accumulator keeps folding and merging like the original.
    a.Merge(b);
    a2.Merge(b2);
    EXPECT_EQ(a2.Encode(), a.Encode()) << AggregateKindName(kind);

    // Empty accumulators round-trip too.
    Acc empty(agg), empty2(agg);
    const std::string e = empty.Encode();
    std::string_view ev = e;
    ASSERT_TRUE(agg.Decode(&ev, empty2.data()).ok());
    EXPECT_TRUE(ev.empty());
    EXPECT_EQ(empty2.Result(), empty.Result());
  }
}

TEST(EncodingTest, AnotherKindIsAFailedPrecondition) {
  for (AggregateKind writer : kAllKinds) {
    for (AggregateKind reader : kAllKinds) {
      if (writer == reader) continue;
      const Aggregator w = Make(writer);
      const Aggregator r = Make(reader);
      Acc acc(w);
      ASSERT_TRUE(acc.Add(Value::Int64(3), 1, 1).ok());
      const std::string bytes = acc.Encode();
      std::string_view in = bytes;
      Acc out(r);
      const std::string out_before = out.bytes();
      const absl::Status s = r.Decode(&in, out.data());
      EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition)
          << AggregateKindName(writer) << " read as "
          << AggregateKindName(reader) << ": " << s;
      EXPECT_THAT(std::string(s.message()),
                  HasSubstr(absl::StrCat("'", AggregateKindName(writer), "'")));
      EXPECT_THAT(std::string(s.message()),
                  HasSubstr(absl::StrCat("'", AggregateKindName(reader), "'")));
      EXPECT_EQ(out.bytes(), out_before);
    }
  }
}

TEST(EncodingTest, UnknownVersionIsAFailedPrecondition) {
  for (AggregateKind kind : kAllKinds) {
    const Aggregator agg = Make(kind);
    Acc acc(agg);
    std::string bytes = acc.Encode();
    for (uint8_t version : {uint8_t{0}, uint8_t{3}, uint8_t{255}}) {
      bytes[1] = static_cast<char>(version);
      std::string_view in = bytes;
      Acc out(agg);
      const absl::Status s = agg.Decode(&in, out.data());
      EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition)
          << AggregateKindName(kind) << " v" << int{version};
      EXPECT_THAT(std::string(s.message()),
                  HasSubstr(absl::StrCat("version ", version)));
    }
  }
}

// Version 1 (before the exact part) kept n, sum and compensation.
TEST(EncodingTest, VersionOneSumAndMeanRestore) {
  for (AggregateKind kind : {AggregateKind::kSum, AggregateKind::kMean}) {
    const Aggregator agg = Make(kind);
    std::string bytes = {static_cast<char>(kind), 1};
    const int64_t n = 4;
    const double sum = 10.5, comp = 0;
    bytes.append(reinterpret_cast<const char*>(&n), 8);
    bytes.append(reinterpret_cast<const char*>(&sum), 8);
    bytes.append(reinterpret_cast<const char*>(&comp), 8);
    std::string_view in = bytes;
    Acc acc(agg);
    ASSERT_TRUE(agg.Decode(&in, acc.data()).ok()) << AggregateKindName(kind);
    EXPECT_TRUE(in.empty());
    ASSERT_TRUE(acc.Add(Value::Dec(150, 2)).ok());
    EXPECT_EQ(acc.Result(),
              Value::Double(kind == AggregateKind::kSum ? 12.0 : 12.0 / 5));
    // And what it writes now is version 2.
    EXPECT_EQ(acc.Encode()[1], 2);
  }
}

// A version 1 quantile holds a KLL sketch, which this weir does not merge
// into its histograms: refused, never misread.
TEST(EncodingTest, VersionOneQuantileIsRefused) {
  const Aggregator agg = Make(AggregateKind::kQuantile);
  Acc acc(agg);
  ASSERT_TRUE(acc.Add(Value::Double(3)).ok());
  std::string bytes = acc.Encode();
  bytes[1] = 1;
  std::string_view in = bytes;
  Acc out(agg);
  const absl::Status s = agg.Decode(&in, out.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("KLL"));
  agg.Destroy(acc.data());
}

// The quantile's state is the same bytes however values were split and
// merged.
TEST(EncodingTest, QuantileBytesAreOrderFree) {
  AggregatorOptions options;
  options.quantile = 0.99;
  const Aggregator agg = Make(AggregateKind::kQuantile, options);
  std::mt19937_64 rng(11);
  std::vector<Value> values;
  for (int i = 0; i < 2000; ++i) {
    values.push_back(Value::Dec(static_cast<int64_t>(rng() % 1'000'000), 2));
  }
  std::string expected;
  for (int round = 0; round < 10; ++round) {
    std::shuffle(values.begin(), values.end(), rng);
    std::vector<Acc> parts;
    for (size_t i = 0; i < values.size(); ++i) {
      if (i == 0 || rng() % 40 == 0) parts.emplace_back(agg);
      ASSERT_TRUE(parts.back().Add(values[i]).ok());
    }
    Acc merged(agg);
    for (Acc& p : parts) {
      merged.Merge(p);
      agg.Destroy(p.data());
    }
    if (round == 0) {
      expected = merged.Encode();
    } else {
      EXPECT_EQ(merged.Encode(), expected) << round;
    }
    agg.Destroy(merged.data());
  }
}

// ---- Sketch accumulators ---------------------------------------------------

// A sketch accumulator's encoding as EncodeAcc writes it around `sketch`.
std::string SketchAccBytes(AggregateKind kind, uint64_t n,
                           const std::string& sketch) {
  std::string out = {static_cast<char>(kind),
                     static_cast<char>(Aggregator::kEncodingVersion)};
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  const auto len = static_cast<uint32_t>(sketch.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(len >> (8 * i)));
  return out + sketch;
}

// One value (most windows of a distinct count or a p99 see one) is held
// inside the accumulator without a heap sketch; its result and its bytes
// are those of the sketch holding that value, and it restores as one.
TEST(SketchAccTest, OneValueLivesInlineAndReadsAsItsSketch) {
  const Value amount = Value::Dec(1234, 2);
  HyperLogLog hll;
  hll.AddHash(internal::DistinctHash(amount));
  QuantileHistogram histogram;
  histogram.Add(12.34);
  std::string hll_bytes, histogram_bytes;
  hll.Serialize(&hll_bytes);
  histogram.Serialize(&histogram_bytes);
  struct Case {
    AggregateKind kind;
    int adds;
    std::string sketch;
    Value result;
  };
  const Case cases[] = {
      {AggregateKind::kDistinctCount, 1, hll_bytes, Value::Int64(1)},
      // The same value again: still one hash, still inline.
      {AggregateKind::kDistinctCount, 3, hll_bytes, Value::Int64(1)},
      {AggregateKind::kQuantile, 1, histogram_bytes, Value::Double(12.34)},
  };
  for (const Case& c : cases) {
    const Aggregator agg = Make(c.kind);
    Acc acc(agg);
    for (int i = 0; i < c.adds; ++i) ASSERT_TRUE(acc.Add(amount).ok());
    const auto* raw = reinterpret_cast<const internal::SketchAcc*>(acc.data());
    EXPECT_TRUE(raw->is_inline()) << AggregateKindName(c.kind);
    EXPECT_EQ(raw->sketch(), nullptr);
    EXPECT_EQ(acc.Result(), c.result) << AggregateKindName(c.kind);
    const std::string bytes = acc.Encode();
    EXPECT_EQ(bytes, SketchAccBytes(c.kind, c.adds, c.sketch));
    std::string_view in = bytes;
    Acc restored(agg);
    ASSERT_TRUE(agg.Decode(&in, restored.data()).ok());
    EXPECT_EQ(restored.Result(), c.result);
    EXPECT_EQ(restored.Encode(), bytes);
    agg.Destroy(restored.data());
    agg.Destroy(acc.data());
  }
}

// Inline, heap and restored accumulators merge in any combination and order
// into the bytes one accumulator folding every value writes.
TEST(SketchAccTest, InlineHeapAndRestoredPartsMergeToTheSameBytes) {
  std::mt19937_64 rng(31);
  for (AggregateKind kind :
       {AggregateKind::kDistinctCount, AggregateKind::kQuantile}) {
    AggregatorOptions options;
    options.quantile = 0.9;
    const Aggregator agg = Make(kind, options);
    for (int trial = 0; trial < 200; ++trial) {
      // Few distinct values, so duplicates and one-value parts are common.
      std::vector<Value> values;
      const int n = 1 + static_cast<int>(rng() % 60);
      for (int i = 0; i < n; ++i) {
        values.push_back(Value::Dec(static_cast<int64_t>(rng() % 5) * 125, 2));
      }
      Acc whole(agg);
      for (const Value& v : values) ASSERT_TRUE(whole.Add(v).ok());
      std::vector<std::unique_ptr<Acc>> parts;
      for (size_t i = 0; i < values.size();) {
        const size_t len = std::min<size_t>(1 + rng() % 4, values.size() - i);
        parts.push_back(std::make_unique<Acc>(agg));
        for (size_t j = i; j < i + len; ++j) {
          ASSERT_TRUE(parts.back()->Add(values[j]).ok());
        }
        i += len;
        if (rng() % 3 == 0) {  // this part comes back from its encoding
          const std::string bytes = parts.back()->Encode();
          std::string_view in = bytes;
          auto restored = std::make_unique<Acc>(agg);
          ASSERT_TRUE(agg.Decode(&in, restored->data()).ok());
          agg.Destroy(parts.back()->data());
          parts.back() = std::move(restored);
        }
      }
      std::shuffle(parts.begin(), parts.end(), rng);
      Acc merged(agg);
      for (auto& p : parts) {
        merged.Merge(*p);
        agg.Destroy(p->data());
      }
      EXPECT_EQ(merged.Encode(), whole.Encode())
          << AggregateKindName(kind) << " trial " << trial;
      EXPECT_EQ(merged.Result(), whole.Result());
      agg.Destroy(merged.data());
      agg.Destroy(whole.data());
    }
  }
}

TEST(EncodingTest, TruncatedIsDataLoss) {
  for (AggregateKind kind : kAllKinds) {
    const Aggregator agg = Make(kind);
    Acc acc(agg);
    ASSERT_TRUE(acc.Add(Value::Int64(3), 1, 1).ok());
    const std::string bytes = acc.Encode();
    for (size_t len = 0; len < bytes.size(); ++len) {
      std::string_view in(bytes.data(), len);
      Acc out(agg);
      EXPECT_EQ(agg.Decode(&in, out.data()).code(), absl::StatusCode::kDataLoss)
          << AggregateKindName(kind) << " len " << len;
    }
  }
}

}  // namespace
}  // namespace weir
