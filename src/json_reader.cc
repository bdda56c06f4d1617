#include "weir/internal/json_reader.h"

#include <simdjson.h>

#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

namespace od = simdjson::ondemand;

const JsonValue* JsonValue::Find(std::string_view key) const {
  const JsonValue* found = nullptr;
  for (const JsonMember& m : members) {
    if (m.key == key) found = &m.value;
  }
  return found;
}

bool JsonValue::is_integer() const {
  return type == Type::kNumber &&
         text.find_first_of(".eE") == std::string::npos;
}

struct JsonReader::Impl {
  od::parser parser;
  std::unique_ptr<char[]> buffer;
  size_t capacity = 0;
  const char* begin = nullptr;  // the text being read, in `buffer`

  // `text` and `suffix` copied into `buffer` with the zeroed padding
  // simdjson reads past the end.
  simdjson::padded_string_view Pad(std::string_view text,
                                   std::string_view suffix = {}) {
    const size_t size = text.size() + suffix.size();
    const size_t needed = size + simdjson::SIMDJSON_PADDING;
    if (needed > capacity) {
      buffer = std::make_unique<char[]>(needed);
      capacity = needed;
    }
    if (!text.empty()) std::memcpy(buffer.get(), text.data(), text.size());
    if (!suffix.empty()) {
      std::memcpy(buffer.get() + text.size(), suffix.data(), suffix.size());
    }
    std::memset(buffer.get() + size, 0, simdjson::SIMDJSON_PADDING);
    begin = buffer.get();
    return simdjson::padded_string_view(buffer.get(), size, needed);
  }
};

namespace {

// The text of the number token at `source`, up to the next token.
simdjson::simdjson_result<std::string_view> RawToken(od::document& source) {
  return source.raw_json_token();
}
simdjson::simdjson_result<std::string_view> RawToken(od::value& source) {
  return source.raw_json_token();
}

// Reads one document into a JsonValue tree.
class TreeBuilder {
 public:
  TreeBuilder(const JsonReadOptions& options, const char* begin)
      : options_(options), begin_(begin) {}

  absl::Status ReadDocument(od::document& doc, JsonValue* out) {
    WEIR_RETURN_IF_ERROR(Read(doc, 0, doc, out));
    // At the end of the input there is no current location.
    const char* at = nullptr;
    if (doc.current_location().get(at) != simdjson::OUT_OF_BOUNDS) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected bytes after the value", Where(doc)));
    }
    return absl::OkStatus();
  }

 private:
  // Reads the value at `source`: the document's root or a value in it.
  template <typename Source>
  absl::Status Read(Source& source, int depth, od::document& doc,
                    JsonValue* out) {
    if (depth > options_.max_depth) {
      return absl::InvalidArgumentError(
          absl::StrCat("nesting deeper than ", options_.max_depth, Where(doc)));
    }
    od::json_type type;
    if (auto e = source.type().get(type)) return Error(e, doc);
    switch (type) {
      case od::json_type::object: {
        od::object object;
        if (auto e = source.get_object().get(object)) return Error(e, doc);
        return ReadObject(object, depth, doc, out);
      }
      case od::json_type::array: {
        od::array array;
        if (auto e = source.get_array().get(array)) return Error(e, doc);
        return ReadArray(array, depth, doc, out);
      }
      case od::json_type::string: {
        std::string_view s;
        if (auto e = source.get_string().get(s)) return Error(e, doc);
        out->type = JsonValue::Type::kString;
        out->text = std::string(s);
        return absl::OkStatus();
      }
      case od::json_type::number: {
        std::string_view raw;
        if (auto e = RawToken(source).get(raw)) return Error(e, doc);
        double unused;  // validates the number's syntax
        if (auto e = source.get_double().get(unused)) return Error(e, doc);
        return SetNumber(raw, doc, out);
      }
      case od::json_type::boolean: {
        bool b;
        if (auto e = source.get_bool().get(b)) return Error(e, doc);
        out->type = JsonValue::Type::kBool;
        out->boolean = b;
        return absl::OkStatus();
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto e = source.is_null().get(is_null)) return Error(e, doc);
        if (!is_null) return Error(simdjson::N_ATOM_ERROR, doc);
        out->type = JsonValue::Type::kNull;
        return absl::OkStatus();
      }
    }
    return Error(simdjson::TAPE_ERROR, doc);
  }

  absl::Status ReadObject(od::object& object, int depth, od::document& doc,
                          JsonValue* out) {
    out->type = JsonValue::Type::kObject;
    absl::flat_hash_set<std::string> seen;
    for (auto member : object) {
      od::field field;
      if (auto e = std::move(member).get(field)) return Error(e, doc);
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return Error(e, doc);
      if (!options_.allow_duplicate_members &&
          !seen.insert(std::string(key)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("duplicate member \"", Sv(key), "\"", Where(doc)));
      }
      JsonMember m;
      m.key = std::string(key);
      od::value value = field.value();
      WEIR_RETURN_IF_ERROR(Read(value, depth + 1, doc, &m.value));
      out->members.push_back(std::move(m));
    }
    return absl::OkStatus();
  }

  absl::Status ReadArray(od::array& array, int depth, od::document& doc,
                         JsonValue* out) {
    out->type = JsonValue::Type::kArray;
    for (auto item : array) {
      od::value value;
      if (auto e = std::move(item).get(value)) return Error(e, doc);
      JsonValue v;
      WEIR_RETURN_IF_ERROR(Read(value, depth + 1, doc, &v));
      out->items.push_back(std::move(v));
    }
    return absl::OkStatus();
  }

  // A number token runs up to the next token: trailing spaces dropped.
  absl::Status SetNumber(std::string_view raw, od::document& doc,
                         JsonValue* out) {
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' ||
                            raw.back() == '\n' || raw.back() == '\r')) {
      raw.remove_suffix(1);
    }
    out->type = JsonValue::Type::kNumber;
    out->text = std::string(raw);
    if (options_.integers_only && !out->is_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("only integers are allowed", Where(doc)));
    }
    return absl::OkStatus();
  }

  // " at byte N" where simdjson knows the position, else "".
  std::string Where(od::document& doc) const {
    const char* at = nullptr;
    if (doc.current_location().get(at) != simdjson::SUCCESS) return "";
    return absl::StrCat(" at byte ", at - begin_);
  }

  absl::Status Error(simdjson::error_code e, od::document& doc) const {
    return absl::InvalidArgumentError(
        absl::StrCat(simdjson::error_message(e), Where(doc)));
  }

  const JsonReadOptions& options_;
  const char* begin_;
};

// The decoded value of the first member of `object` named `name` with a
// string value; nothing at the first error, or if that string ends past
// `input_end` (its closing quote was added to close a cut record).
std::optional<std::string> FindIn(od::object& object, std::string_view name,
                                  const char* input_end) {
  for (auto member : object) {
    od::field field;
    if (std::move(member).get(field)) return std::nullopt;
    std::string_view key;
    if (field.unescaped_key().get(key)) return std::nullopt;
    if (key != name) continue;  // the iteration skips the value
    od::value value = field.value();
    od::json_type type;
    if (value.type().get(type)) return std::nullopt;
    if (type != od::json_type::string) continue;
    const std::string_view raw = value.raw_json_token();
    if (raw.data() + raw.size() > input_end) return std::nullopt;
    std::string_view s;
    if (value.get_string().get(s)) return std::nullopt;
    return std::string(s);
  }
  return std::nullopt;
}

}  // namespace

JsonReader::JsonReader(JsonReadOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {}

JsonReader::~JsonReader() = default;

absl::StatusOr<JsonValue> JsonReader::Read(std::string_view text) {
  od::document doc;
  if (auto e = impl_->parser.iterate(impl_->Pad(text)).get(doc)) {
    return absl::InvalidArgumentError(simdjson::error_message(e));
  }
  JsonValue root;
  WEIR_RETURN_IF_ERROR(
      TreeBuilder(options_, impl_->begin).ReadDocument(doc, &root));
  return root;
}

std::optional<std::string> JsonReader::FindTopLevelString(
    std::string_view text, std::string_view name) {
  // simdjson refuses an object whose input does not end with its '}' before
  // reading any member, so a record cut short is closed first: with '}', or
  // with '"}' when it ends inside a string. Members after the cut are lost
  // either way; those before it are found.
  for (std::string_view suffix : {"", "}", "\"}"}) {
    od::document doc;
    od::object object;
    const simdjson::error_code e =
        impl_->parser.iterate(impl_->Pad(text, suffix)).get(doc);
    if (e == simdjson::UNCLOSED_STRING) continue;
    if (e != simdjson::SUCCESS) return std::nullopt;
    const simdjson::error_code opened = doc.get_object().get(object);
    if (opened == simdjson::INCOMPLETE_ARRAY_OR_OBJECT) continue;
    if (opened != simdjson::SUCCESS) return std::nullopt;
    return FindIn(object, name, impl_->begin + text.size());
  }
  return std::nullopt;
}

absl::StatusOr<JsonValue> ReadJson(std::string_view text,
                                   JsonReadOptions options) {
  return JsonReader(options).Read(text);
}

}  // namespace internal
}  // namespace weir
