// -----------------------------------------------------------------------------
// File: internal/json_string.h
// -----------------------------------------------------------------------------
//
// JSON strings for weir's own small JSON writers and readers (checkpoint
// manifests, FileSink feature lines, dead-letter records, weir-produce's key
// scanner): escaping a byte string into a JSON string literal, and decoding
// one literal back, escapes and surrogate pairs included.
//
// Only the string literal is shared. The readers around it keep their own
// grammar on purpose: the manifest parser is strict (integers only, no
// duplicate members, kDataLoss), the dead-letter reader skips any value,
// the feature-line reader takes only flat scalar objects, and weir-produce
// scans leniently for one member. Each maps a `JsonStringError` to its own
// message.
//
// Threading: pure functions, safe from any thread.
//
// Example:
//   std::string out;
//   weir::internal::AppendJsonString("a\"b\n", &out);  // "a\"b\n" escaped
//   size_t pos = 0;
//   std::string back;
//   if (weir::internal::ReadJsonString(out, &pos, /*allow_control=*/false,
//                                      &back) ==
//       weir::internal::JsonStringError::kOk) {
//     // back == "a\"b\n", pos == out.size()
//   }

#ifndef WEIR_INTERNAL_JSON_STRING_H_
#define WEIR_INTERNAL_JSON_STRING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weir {
namespace internal {

// ---- writing ----------------------------------------------------------------

struct JsonEscapeOptions {
  // Whether DEL (0x7f) is written as \u007f rather than as itself.
  // Default: false
  bool escape_del = false;

  // Whether a byte that does not begin a valid UTF-8 sequence is written as
  // U+FFFD, so the output is valid UTF-8 whatever the input. When false,
  // bytes of 0x80 and above are copied as they are.
  // Default: false
  bool replace_invalid_utf8 = false;
};

// Appends `s` to `out` as a JSON string literal, quotes included: `"` and
// `\` are escaped, \n \r \t by name, other bytes below 0x20 as \u00xx
// (lowercase hex), the rest as `options` says.
void AppendJsonString(std::string_view s, std::string* out,
                      JsonEscapeOptions options = {});

// The length (2 to 4) of the valid, shortest-form UTF-8 sequence of a
// scalar value starting at s[i], or 0 if there is none there.
size_t Utf8SequenceLength(std::string_view s, size_t i);

// Appends the UTF-8 encoding of `code_point` (<= 0x10FFFF) to `out`.
void AppendUtf8(uint32_t code_point, std::string* out);

// ---- reading ----------------------------------------------------------------

enum class JsonStringError {
  kOk,
  kUnterminated,        // the input ends before the closing quote
  kControlCharacter,    // a raw byte below 0x20 (if not allowed)
  kUnterminatedEscape,  // the input ends right after a backslash
  kBadEscape,           // a backslash before an unknown letter
  kShortUnicodeEscape,  // fewer than 4 bytes after \u
  kBadUnicodeEscape,    // a non-hex digit in the 4 after \u
  kLoneLowSurrogate,    // \uDC00..\uDFFF without a high one before it
  kLoneHighSurrogate,   // \uD800..\uDBFF not followed by \u
  kBadLowSurrogate,     // \uD800..\uDBFF followed by \u not DC00..DFFF
};

// Decodes the JSON string literal whose opening quote is at s[*pos]
// (REQUIRES: *pos < s.size() and s[*pos] == '"'), appending its bytes to
// `out` (nothing if `out` is null, to skip it). On kOk `*pos` is just past
// the closing quote. On an error `*pos` is just past the byte that showed
// it (past the 4 hex digits for a surrogate error, just past the 'u' for a
// short \u escape), so callers can name the offset.
// `allow_control_characters` accepts raw bytes below 0x20 in the literal.
JsonStringError ReadJsonString(std::string_view s, size_t* pos,
                               bool allow_control_characters, std::string* out);

// A short description of `error` for messages: "unterminated string",
// "control character in string", "unterminated escape", "bad escape",
// "short \\u escape", "bad \\u escape", "lone surrogate" (all three
// surrogate errors), "" for kOk.
std::string_view JsonStringErrorMessage(JsonStringError error);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_JSON_STRING_H_
