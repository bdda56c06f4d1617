// -----------------------------------------------------------------------------
// File: internal/json_number.h
// -----------------------------------------------------------------------------
//
// Exact reading of a JSON number token (its text as written): split into
// sign, digits and exponent, and scaled to an integer number of units of
// 10^-scale without passing through a double. The JSON decoder reads
// decimals, integers and timestamps with it; the Avro encoder, decimals.
//
// Example:
//   weir::internal::NumberText n;
//   int64_t cents;
//   if (ParseNumberText("1234e-2", &n) &&
//       ScaleNumber(n, 2, /*floor=*/false, &cents) == ScaleResult::kOk) {
//     // cents == 1234
//   }

#ifndef WEIR_INTERNAL_JSON_NUMBER_H_
#define WEIR_INTERNAL_JSON_NUMBER_H_

#include <cstdint>
#include <string_view>

namespace weir {
namespace internal {

// A JSON number token split into its parts: the value is
// (-1 if negative) * <int_digits><frac_digits> * 10^(exponent - |frac|).
struct NumberText {
  bool negative = false;
  std::string_view int_digits;
  std::string_view frac_digits;
  int64_t exponent = 0;
};

// Parses `s` against the JSON number grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and nothing else.
bool ParseNumberText(std::string_view s, NumberText* out);

enum class ScaleResult { kOk, kLossy, kOverflow };

// The number times 10^scale as an int64. Non-zero digits that fall below the
// unit make the result kLossy, unless `floor`, which drops them rounding
// toward negative infinity.
ScaleResult ScaleNumber(const NumberText& n, int32_t scale, bool floor,
                        int64_t* out);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_JSON_NUMBER_H_
