// -----------------------------------------------------------------------------
// File: internal/json_string.h
// -----------------------------------------------------------------------------
//
// Writing JSON strings for weir's own small JSON writers (checkpoint
// manifests, FileSink feature lines, dead-letter records): escaping a byte
// string into a JSON string literal. weir reads that JSON back with its one
// reader, internal/json_reader.h.
//
// Threading: pure functions, safe from any thread.
//
// Example:
//   std::string out;
//   weir::internal::AppendJsonString("a\"b\n", &out);  // "a\"b\n" escaped

#ifndef WEIR_INTERNAL_JSON_STRING_H_
#define WEIR_INTERNAL_JSON_STRING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weir {
namespace internal {

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

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_JSON_STRING_H_
