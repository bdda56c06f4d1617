#include "weir/internal/json_number.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>

namespace weir {
namespace internal {

bool ParseNumberText(std::string_view s, NumberText* out) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0;
  const size_t n = s.size();
  *out = NumberText();
  if (i < n && s[i] == '-') {
    out->negative = true;
    ++i;
  }
  if (i >= n || !is_digit(s[i])) return false;
  const size_t int_begin = i;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < n && is_digit(s[i])) ++i;
  }
  out->int_digits = s.substr(int_begin, i - int_begin);
  if (i < n && s[i] == '.') {
    ++i;
    const size_t frac_begin = i;
    while (i < n && is_digit(s[i])) ++i;
    if (i == frac_begin) return false;
    out->frac_digits = s.substr(frac_begin, i - frac_begin);
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
      exp_negative = s[i] == '-';
      ++i;
    }
    if (i >= n || !is_digit(s[i])) return false;
    // Exponents beyond this bound only ever mean "overflow" or "every digit
    // is dropped", so clamping keeps the arithmetic below in range.
    constexpr int64_t kExponentClamp = int64_t{1} << 40;
    int64_t exponent = 0;
    while (i < n && is_digit(s[i])) {
      exponent = std::min(kExponentClamp, exponent * 10 + (s[i] - '0'));
      ++i;
    }
    out->exponent = exp_negative ? -exponent : exponent;
  }
  return i == n;
}

ScaleResult ScaleNumber(const NumberText& n, int32_t scale, bool floor,
                        int64_t* out) {
  const int64_t int_len = static_cast<int64_t>(n.int_digits.size());
  const int64_t total = int_len + static_cast<int64_t>(n.frac_digits.size());
  auto digit = [&](int64_t i) -> int {
    return (i < int_len ? n.int_digits[i] : n.frac_digits[i - int_len]) - '0';
  };
  const int64_t shift =
      n.exponent - static_cast<int64_t>(n.frac_digits.size()) + scale;
  const int64_t kept = shift >= 0 ? total : std::max<int64_t>(0, total + shift);
  const uint64_t limit =
      n.negative
          ? static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1
          : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t magnitude = 0;
  for (int64_t i = 0; i < kept; ++i) {
    const uint64_t d = static_cast<uint64_t>(digit(i));
    if (magnitude > (limit - d) / 10) return ScaleResult::kOverflow;
    magnitude = magnitude * 10 + d;
  }
  bool dropped_nonzero = false;
  for (int64_t i = kept; i < total && !dropped_nonzero; ++i) {
    dropped_nonzero = digit(i) != 0;
  }
  if (shift > 0 && magnitude != 0) {
    for (int64_t i = 0; i < shift; ++i) {
      if (magnitude > limit / 10) return ScaleResult::kOverflow;
      magnitude *= 10;
    }
  }
  if (dropped_nonzero) {
    if (!floor) return ScaleResult::kLossy;
    if (n.negative) {
      if (magnitude >= limit) return ScaleResult::kOverflow;
      ++magnitude;
    }
  }
  *out = n.negative ? static_cast<int64_t>(0 - magnitude)
                    : static_cast<int64_t>(magnitude);
  return ScaleResult::kOk;
}

}  // namespace internal
}  // namespace weir
