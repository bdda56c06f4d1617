#include "weir/record.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "weir/internal/pow10.h"

namespace weir {
namespace {

constexpr int32_t kMaxScale = internal::kMaxDecimalScale;
using internal::kPow10;

std::string Quoted(std::string_view text) {
  constexpr size_t kMaxShown = 40;
  std::string out = "\"";
  out.append(text.substr(0, kMaxShown));
  if (text.size() > kMaxShown) out.append("...");
  out.append("\"");
  return out;
}

// The shortest text that reads back as exactly `v`.
std::string DoubleToString(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "?";
  return std::string(buf, end);
}

}  // namespace

absl::StatusOr<Decimal> Decimal::Parse(std::string_view text) {
  size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) ++i;
  const size_t int_begin = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const size_t int_digits = i - int_begin;
  size_t frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t frac_begin = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    frac_digits = i - frac_begin;
    if (frac_digits == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a decimal number: ", Quoted(text),
                       " (no digit after the point)"));
    }
  }
  if (int_digits == 0 || i != text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a decimal number: ", Quoted(text)));
  }
  if (frac_digits > static_cast<size_t>(kMaxScale)) {
    return absl::OutOfRangeError(absl::StrCat("decimal ", Quoted(text),
                                              " has more than ", kMaxScale,
                                              " fractional digits"));
  }
  // Accumulate the magnitude as unsigned; INT64_MIN's magnitude is allowed
  // for negative numbers.
  const uint64_t limit =
      negative ? static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1
               : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t magnitude = 0;
  for (char c : text.substr(negative ? 1 : 0)) {
    if (c == '.') continue;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (magnitude > (limit - digit) / 10) {
      return absl::OutOfRangeError(absl::StrCat(
          "decimal ", Quoted(text), " does not fit in 64-bit units"));
    }
    magnitude = magnitude * 10 + digit;
  }
  Decimal d;
  d.scale = static_cast<int32_t>(frac_digits);
  d.units = negative ? static_cast<int64_t>(0 - magnitude)
                     : static_cast<int64_t>(magnitude);
  return d;
}

absl::StatusOr<int64_t> Decimal::UnitsAt(int32_t target_scale) const {
  if (target_scale < 0 || target_scale > kMaxScale || scale < 0 ||
      scale > kMaxScale) {
    return absl::InvalidArgumentError(
        absl::StrCat("decimal scale must be in [0, ", kMaxScale, "], got ",
                     scale, " -> ", target_scale));
  }
  if (target_scale >= scale) {
    int64_t out;
    if (__builtin_mul_overflow(units, kPow10[target_scale - scale], &out)) {
      return absl::OutOfRangeError(absl::StrCat(
          "decimal ", ToString(), " overflows at scale ", target_scale));
    }
    return out;
  }
  const int64_t divisor = kPow10[scale - target_scale];
  if (units % divisor != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("decimal ", ToString(), " has non-zero digits beyond ",
                     target_scale, " decimal places"));
  }
  return units / divisor;
}

double Decimal::ToDouble() const {
  if (scale < 0 || scale > kMaxScale) return std::nan("");
  constexpr int64_t kExact = int64_t{1} << 53;
  if (units >= -kExact && units <= kExact) {
    // Both operands are exact doubles and IEEE division rounds correctly.
    return static_cast<double>(units) / static_cast<double>(kPow10[scale]);
  }
  return std::strtod(ToString().c_str(), nullptr);
}

std::string Decimal::ToString() const {
  if (scale < 0 || scale > kMaxScale) {
    return absl::StrCat("<decimal ", units, " scale ", scale, ">");
  }
  const bool negative = units < 0;
  const uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(units)
                                      : static_cast<uint64_t>(units);
  std::string digits = std::to_string(magnitude);
  if (scale > 0) {
    if (digits.size() <= static_cast<size_t>(scale)) {
      digits.insert(0, static_cast<size_t>(scale) + 1 - digits.size(), '0');
    }
    digits.insert(digits.size() - static_cast<size_t>(scale), 1, '.');
  }
  if (negative) digits.insert(0, 1, '-');
  return digits;
}

absl::StatusOr<double> Value::AsDouble() const {
  switch (type()) {
    case Type::kBool:
      return bool_value() ? 1.0 : 0.0;
    case Type::kInt64:
      return static_cast<double>(int64_value());
    case Type::kDouble:
      return double_value();
    case Type::kDecimal:
      return decimal_value().ToDouble();
    case Type::kNull:
    case Type::kString:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("a ", TypeName(type()), " value has no numeric value"));
}

std::string Value::ToString() const {
  switch (type()) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return bool_value() ? "true" : "false";
    case Type::kInt64:
      return std::to_string(int64_value());
    case Type::kDouble:
      return DoubleToString(double_value());
    case Type::kDecimal:
      return decimal_value().ToString();
    case Type::kString:
      return string_value();
  }
  return "?";
}

const char* TypeName(Value::Type type) {
  switch (type) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return "bool";
    case Value::Type::kInt64:
      return "int64";
    case Value::Type::kDouble:
      return "double";
    case Value::Type::kDecimal:
      return "decimal";
    case Value::Type::kString:
      return "string";
  }
  return "unknown";
}

}  // namespace weir
