#include "weir/record.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weir {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

Decimal Dec(int64_t units, int32_t scale) { return Decimal{units, scale}; }

TEST(DecimalParseTest, ParsesExactly) {
  EXPECT_EQ(*Decimal::Parse("12.34"), Dec(1234, 2));
  EXPECT_EQ(*Decimal::Parse("-0.5"), Dec(-5, 1));
  EXPECT_EQ(*Decimal::Parse("7"), Dec(7, 0));
  EXPECT_EQ(*Decimal::Parse("0"), Dec(0, 0));
  EXPECT_EQ(*Decimal::Parse("-0"), Dec(0, 0));
  EXPECT_EQ(*Decimal::Parse("0.10"), Dec(10, 2));  // keeps the written scale
  EXPECT_EQ(*Decimal::Parse("0.000000000000000001"), Dec(1, 18));
  // 0.1 + 0.2 style values stay exact: no binary floating point inside.
  EXPECT_EQ(*Decimal::Parse("0.3"), Dec(3, 1));
}

TEST(DecimalParseTest, AcceptsTheInt64Limits) {
  EXPECT_EQ(*Decimal::Parse("9223372036854775807"), Dec(kMax, 0));
  EXPECT_EQ(*Decimal::Parse("-9223372036854775808"), Dec(kMin, 0));
  EXPECT_EQ(*Decimal::Parse("-92233720368547758.08"), Dec(kMin, 2));
}

TEST(DecimalParseTest, RejectsOverflow) {
  EXPECT_EQ(Decimal::Parse("9223372036854775808").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Decimal::Parse("-9223372036854775809").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Decimal::Parse("92233720368547758.08").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Decimal::Parse("99999999999999999999999").status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(DecimalParseTest, RejectsTooManyFractionalDigits) {
  absl::StatusOr<Decimal> d = Decimal::Parse("0.0000000000000000001");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(d.status().message(), testing::HasSubstr("18"));
}

TEST(DecimalParseTest, RejectsAnythingElse) {
  for (const char* text : {"", "-", ".5", "5.", "1.2.3", "1e3", "+1", " 1",
                           "1 ", "abc", "12,34", "0x10", "--1", "1-"}) {
    absl::StatusOr<Decimal> d = Decimal::Parse(text);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument)
        << "\"" << text << "\"";
  }
}

TEST(DecimalTest, UnitsAtRescalesExactly) {
  EXPECT_EQ(*Dec(1234, 2).UnitsAt(2), 1234);
  EXPECT_EQ(*Dec(1234, 2).UnitsAt(4), 123400);
  EXPECT_EQ(*Dec(1230, 2).UnitsAt(1), 123);
  EXPECT_EQ(*Dec(-1200, 2).UnitsAt(0), -12);
  EXPECT_EQ(*Dec(5, 0).UnitsAt(18), 5000000000000000000);
}

TEST(DecimalTest, UnitsAtFailsOnLostDigitsAndOverflow) {
  EXPECT_EQ(Dec(1234, 2).UnitsAt(1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dec(-1, 18).UnitsAt(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dec(10, 0).UnitsAt(18).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Dec(kMin, 0).UnitsAt(1).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Dec(1, 2).UnitsAt(19).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dec(1, 2).UnitsAt(-1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DecimalTest, ToStringKeepsScale) {
  EXPECT_EQ(Dec(1234, 2).ToString(), "12.34");
  EXPECT_EQ(Dec(-5, 1).ToString(), "-0.5");
  EXPECT_EQ(Dec(-5, 3).ToString(), "-0.005");
  EXPECT_EQ(Dec(1230, 2).ToString(), "12.30");
  EXPECT_EQ(Dec(7, 0).ToString(), "7");
  EXPECT_EQ(Dec(0, 2).ToString(), "0.00");
  EXPECT_EQ(Dec(kMin, 0).ToString(), "-9223372036854775808");
  EXPECT_EQ(Dec(kMin, 18).ToString(), "-9.223372036854775808");
  EXPECT_EQ(Dec(kMax, 18).ToString(), "9.223372036854775807");
}

TEST(DecimalTest, ToStringRoundTripsThroughParse) {
  for (const Decimal d : {Dec(1234, 2), Dec(-5, 3), Dec(kMin, 7), Dec(kMax, 18),
                          Dec(0, 0), Dec(100, 2)}) {
    EXPECT_EQ(*Decimal::Parse(d.ToString()), d) << d.ToString();
  }
}

TEST(DecimalTest, ToDoubleIsCorrectlyRounded) {
  EXPECT_EQ(Dec(1234, 2).ToDouble(), 12.34);
  EXPECT_EQ(Dec(-5, 1).ToDouble(), -0.5);
  EXPECT_EQ(Dec(1, 1).ToDouble(), 0.1);
  EXPECT_EQ(Dec(7, 0).ToDouble(), 7.0);
  // Beyond 2^53 units the value is rounded once, from its decimal text.
  EXPECT_EQ(Dec(kMax, 0).ToDouble(), 9223372036854775807.0);
  EXPECT_EQ(Dec(1234567890123456789, 18).ToDouble(), 1.234567890123456789);
}

TEST(ValueTest, AsDouble) {
  EXPECT_EQ(*Value::Bool(true).AsDouble(), 1.0);
  EXPECT_EQ(*Value::Bool(false).AsDouble(), 0.0);
  EXPECT_EQ(*Value::Int64(-3).AsDouble(), -3.0);
  EXPECT_EQ(*Value::Double(1.5).AsDouble(), 1.5);
  EXPECT_EQ(*Value::Dec(1234, 2).AsDouble(), 12.34);
  EXPECT_EQ(Value::Null().AsDouble().status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Value::String("1").AsDouble().status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValueTest, ToString) {
  EXPECT_EQ(Value::Null().ToString(), "null");
  EXPECT_EQ(Value::Bool(true).ToString(), "true");
  EXPECT_EQ(Value::Bool(false).ToString(), "false");
  EXPECT_EQ(Value::Int64(42).ToString(), "42");
  EXPECT_EQ(Value::Double(1.5).ToString(), "1.5");
  EXPECT_EQ(Value::Double(0.1).ToString(), "0.1");
  EXPECT_EQ(Value::Double(std::numeric_limits<double>::infinity()).ToString(),
            "inf");
  EXPECT_EQ(Value::Dec(1234, 2).ToString(), "12.34");
  EXPECT_EQ(Value::String("abc").ToString(), "abc");
}

TEST(ValueTest, TypeName) {
  EXPECT_STREQ(TypeName(Value::Type::kNull), "null");
  EXPECT_STREQ(TypeName(Value::Type::kBool), "bool");
  EXPECT_STREQ(TypeName(Value::Type::kInt64), "int64");
  EXPECT_STREQ(TypeName(Value::Type::kDouble), "double");
  EXPECT_STREQ(TypeName(Value::Type::kDecimal), "decimal");
  EXPECT_STREQ(TypeName(Value::Type::kString), "string");
  EXPECT_STREQ(TypeName(Value::Dec(1, 0).type()), "decimal");
}

}  // namespace
}  // namespace weir
