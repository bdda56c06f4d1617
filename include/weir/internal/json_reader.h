// -----------------------------------------------------------------------------
// File: internal/json_reader.h
// -----------------------------------------------------------------------------
//
// weir's one JSON reader, on simdjson, for the JSON weir writes itself:
// checkpoint manifests, dead-letter records, FileSink feature lines, and the
// tools' inputs (weir-produce's keys). The writers stay in
// internal/json_string.h. The schema-driven event decoder
// (json/json_decoder.h) is a different thing: it reads users' events
// straight into records without a tree.
//
// `JsonReader::Read` parses one whole document strictly (RFC 8259: UTF-8,
// no control characters in strings, one value and nothing after it but
// whitespace) into a small tree of `JsonValue`s. A number keeps the text it
// was written with, so exact decimals and 64-bit integers are read without
// passing through a double. Nesting deeper than `max_depth` and, when asked,
// an object naming a member twice or a number that is not an integer are
// refused. Every error is a
// kInvalidArgument naming what is wrong and, where simdjson knows it, the
// byte offset; callers add their context and code (a manifest's is
// kDataLoss).
//
// `JsonReader::FindTopLevelString` is the lenient lookup weir-produce needs:
// the first top-level member of an object with a given name and a string
// value, found even in a record that is malformed after it.
//
// Threading: a JsonReader is used by one thread at a time (it keeps
// simdjson's parser and buffers between calls); `ReadJson` makes one per
// call and is safe from any thread.
//
// Example:
//   weir::internal::JsonReader reader({.max_depth = 8});
//   absl::StatusOr<weir::internal::JsonValue> doc =
//       reader.Read(R"({"id": 12345678901234567890, "name": "x"})");
//   if (doc.ok()) {
//     const weir::internal::JsonValue* id = doc->Find("id");
//     // id->type == kNumber, id->text == "12345678901234567890"
//   }

#ifndef WEIR_INTERNAL_JSON_READER_H_
#define WEIR_INTERNAL_JSON_READER_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace weir {
namespace internal {

struct JsonMember;

// One JSON value of a document read by `JsonReader::Read`.
struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  // A string's bytes (unescaped), or a number's text as written (valid JSON
  // number syntax, e.g. "-12", "0.50", "1e3").
  std::string text;
  std::vector<JsonValue> items;  // an array's elements
  // An object's members, in document order. (A vector of a type completed
  // below: std::pair<std::string, JsonValue> would need JsonValue complete
  // here.)
  std::vector<JsonMember> members;

  // An object's member named `key` (the last one, if named twice), or null.
  const JsonValue* Find(std::string_view key) const;

  // Whether this is a number written without fraction or exponent.
  bool is_integer() const;
};

struct JsonMember {
  std::string key;
  JsonValue value;
};

struct JsonReadOptions {
  // Arrays and objects may nest this deep (the root's members are at depth
  // 1); deeper input is refused.
  // Default: 64
  int max_depth = 64;

  // Whether an object may name a member twice (then `Find` returns the
  // last). When false such an object is refused.
  // Default: true
  bool allow_duplicate_members = true;

  // Whether a number with a fraction or an exponent is refused.
  // Default: false
  bool integers_only = false;
};

class JsonReader {
 public:
  explicit JsonReader(JsonReadOptions options = {});
  ~JsonReader();
  JsonReader(const JsonReader&) = delete;
  JsonReader& operator=(const JsonReader&) = delete;

  // Parses `text` as one JSON document.
  absl::StatusOr<JsonValue> Read(std::string_view text);

  // The decoded value of the first top-level member of the object in `text`
  // named `name` whose value is a string. Members before it are skipped
  // (nested ones included); a syntax error after it does not matter, so a
  // truncated record keeps its key. Nothing when `text` is not an object,
  // has no such member, or is malformed before it.
  std::optional<std::string> FindTopLevelString(std::string_view text,
                                                std::string_view name);

 private:
  struct Impl;
  JsonReadOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Parses `text` with a JsonReader of its own.
absl::StatusOr<JsonValue> ReadJson(std::string_view text,
                                   JsonReadOptions options = {});

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_JSON_READER_H_
