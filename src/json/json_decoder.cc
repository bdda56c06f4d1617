#include "weir/json/json_decoder.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "weir/internal/json_number.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

namespace od = simdjson::ondemand;

constexpr int32_t kMaxDecimalScale = 18;

using internal::Sv;

std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' ||
                        s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// A short, printable excerpt of untrusted text for an error message.
std::string Excerpt(std::string_view text) {
  constexpr size_t kMaxShown = 64;
  std::string out;
  for (char c : text.substr(0, kMaxShown)) {
    const unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (text.size() > kMaxShown) out.append("...");
  return out;
}

// Exact reading of JSON number text: weir/internal/json_number.h.
using internal::NumberText;
using internal::ParseNumberText;
using internal::ScaleNumber;
using internal::ScaleResult;

const char* JsonTypeOf(od::json_type t) {
  switch (t) {
    case od::json_type::array:
      return "array";
    case od::json_type::object:
      return "object";
    case od::json_type::number:
      return "number";
    case od::json_type::string:
      return "string";
    case od::json_type::boolean:
      return "bool";
    case od::json_type::null:
      return "null";
  }
  return "value";
}

// Where a top-level member goes.
struct Slot {
  int value_index = -1;  // into JsonSchema::fields, or -1
  bool is_key = false;
  bool is_time = false;
};

}  // namespace

const char* JsonTypeName(JsonType type) {
  switch (type) {
    case JsonType::kString:
      return "string";
    case JsonType::kInt64:
      return "int64";
    case JsonType::kDouble:
      return "double";
    case JsonType::kDecimal:
      return "decimal";
    case JsonType::kBool:
      return "bool";
    case JsonType::kTimestampMs:
      return "timestamp_ms";
    case JsonType::kTimestampS:
      return "timestamp_s";
  }
  return "unknown";
}

absl::Status JsonSchema::Validate() const {
  if (name.empty()) return absl::InvalidArgumentError("name: must be set");
  if (version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("version: must be >= 1, got ", version));
  }
  if (key_field.empty()) {
    return absl::InvalidArgumentError("key_field: must be set");
  }
  const bool time_from_field = event_time_source == EventTimeSource::kField;
  if (time_from_field) {
    if (event_time_field.empty()) {
      return absl::InvalidArgumentError(
          "event_time_field: must be set when event_time_source is kField");
    }
    if (event_time_field == key_field) {
      return absl::InvalidArgumentError(
          "event_time_field: must differ from key_field");
    }
    if (event_time_type != JsonType::kTimestampMs &&
        event_time_type != JsonType::kTimestampS) {
      return absl::InvalidArgumentError(
          absl::StrCat("event_time_type: must be timestamp_ms or timestamp_s, "
                       "got ",
                       JsonTypeName(event_time_type)));
    }
  }
  absl::flat_hash_map<std::string, size_t> seen;
  for (size_t i = 0; i < fields.size(); ++i) {
    const JsonField& f = fields[i];
    const std::string where = absl::StrCat("fields[", i, "]");
    if (f.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".name: empty"));
    }
    if (!seen.emplace(f.name, i).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".name: \"", f.name, "\" repeats fields[", seen[f.name], "]"));
    }
    if (f.type == JsonType::kDecimal) {
      if (f.scale < 0 || f.scale > kMaxDecimalScale) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".scale: ", f.scale, " is outside [0, ",
                         kMaxDecimalScale, "]"));
      }
    } else if (f.scale != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".scale: only decimal fields have a scale (\"",
                       f.name, "\" is ", JsonTypeName(f.type), ")"));
    }
    if (f.name == key_field && f.type != JsonType::kString) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".type: \"", f.name,
                       "\" is the key field, so must be string"));
    }
    if (time_from_field && f.name == event_time_field &&
        f.type != event_time_type) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".type: \"", f.name, "\" is the event-time field, so must be ",
          JsonTypeName(event_time_type)));
    }
    if (f.default_value.is_null()) continue;
    if (f.required) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".default_value: set on required field \"", f.name, "\""));
    }
    const Value::Type dt = f.default_value.type();
    bool fits = false;
    switch (f.type) {
      case JsonType::kString:
        fits = dt == Value::Type::kString;
        break;
      case JsonType::kInt64:
      case JsonType::kTimestampMs:
      case JsonType::kTimestampS:
        fits = dt == Value::Type::kInt64;
        break;
      case JsonType::kDouble:
        fits = dt == Value::Type::kDouble;
        break;
      case JsonType::kBool:
        fits = dt == Value::Type::kBool;
        break;
      case JsonType::kDecimal:
        fits = dt == Value::Type::kDecimal &&
               f.default_value.decimal_value().UnitsAt(f.scale).ok();
        break;
    }
    if (!fits) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".default_value: ", TypeName(dt), " ",
          f.default_value.ToString(), " does not fit ", JsonTypeName(f.type),
          f.type == JsonType::kDecimal ? absl::StrCat("(", f.scale, ")") : ""));
    }
  }
  return absl::OkStatus();
}

absl::Status JsonDecoderOptions::Validate() const {
  if (max_depth < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_depth: must be >= 1, got ", max_depth));
  }
  if (max_depth > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_depth: must be <= 1024, got ", max_depth));
  }
  if (max_record_bytes < 1) {
    return absl::InvalidArgumentError("max_record_bytes: must be >= 1");
  }
  return absl::OkStatus();
}

class JsonDecoder::Impl {
 public:
  Impl(JsonSchema schema, JsonDecoderOptions options)
      : schema_(std::move(schema)), options_(options) {
    prefix_ =
        absl::StrCat("schema ", schema_.name, " v", schema_.version, ": ");
    for (size_t i = 0; i < schema_.fields.size(); ++i) {
      slots_[schema_.fields[i].name].value_index = static_cast<int>(i);
      JsonField& f = schema_.fields[i];
      if (f.type == JsonType::kDecimal && !f.default_value.is_null()) {
        // Validate() checked this fits; store it at the field's scale.
        f.default_value = Value::Dec(
            *f.default_value.decimal_value().UnitsAt(f.scale), f.scale);
      }
    }
    slots_[schema_.key_field].is_key = true;
    if (schema_.event_time_source == EventTimeSource::kField) {
      slots_[schema_.event_time_field].is_time = true;
    }
    seen_.resize(schema_.fields.size());
  }

  const JsonSchema& schema() const { return schema_; }

  absl::Status DecodeInto(const RawRecord& record, Event* event);

 private:
  // ---- errors ----
  absl::Status Deserialization(std::string_view type,
                               std::string_view detail) const {
    return MakeDecodeError(DecodeErrorCategory::kDeserialization, type,
                           absl::StrCat(prefix_, Sv(detail)));
  }
  absl::Status InvalidJson(simdjson::error_code error) const {
    return Deserialization(
        "invalid_json",
        absl::StrCat("invalid JSON: ", simdjson::error_message(error)));
  }
  absl::Status InvalidJson(std::string_view what) const {
    return Deserialization("invalid_json",
                           absl::StrCat("invalid JSON: ", Sv(what)));
  }
  absl::Status Mismatch(std::string_view type, std::string_view field,
                        std::string_view detail) const {
    return MakeDecodeError(
        DecodeErrorCategory::kSchemaMismatch, type,
        absl::StrCat(prefix_, "field \"", Excerpt(field), "\": ", Sv(detail)),
        field);
  }
  absl::Status WrongType(std::string_view field, std::string_view expected,
                         od::json_type got, std::string_view raw) const {
    return Mismatch("wrong_type", field,
                    absl::StrCat("expected ", Sv(expected), ", got ",
                                 JsonTypeOf(got), " ", Excerpt(raw)));
  }

  // ---- reading values ----
  absl::Status CheckWellFormed(od::value value, int depth);
  absl::Status ReadNumberText(od::value& value, std::string_view* raw,
                              NumberText* number);
  absl::StatusOr<int64_t> ReadTimestamp(od::value& value, od::json_type t,
                                        JsonType type, std::string_view field);
  absl::StatusOr<Value> ReadField(od::value& value, od::json_type t,
                                  const JsonField& spec);
  std::string Expected(const JsonField& spec) const {
    if (spec.type == JsonType::kDecimal) {
      return absl::StrCat("decimal(", spec.scale, ")");
    }
    return JsonTypeName(spec.type);
  }

  JsonSchema schema_;
  JsonDecoderOptions options_;
  std::string prefix_;
  absl::flat_hash_map<std::string, Slot> slots_;
  std::vector<uint8_t> seen_;
  simdjson::ondemand::parser parser_;
  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_ = 0;
};

absl::Status JsonDecoder::Impl::CheckWellFormed(od::value value, int depth) {
  if (depth > options_.max_depth) {
    return Deserialization(
        "too_deep", absl::StrCat("nesting deeper than ", options_.max_depth));
  }
  od::json_type t;
  if (auto e = value.type().get(t)) return InvalidJson(e);
  switch (t) {
    case od::json_type::array: {
      od::array array;
      if (auto e = value.get_array().get(array)) return InvalidJson(e);
      for (auto element : array) {
        od::value v;
        if (auto e = std::move(element).get(v)) return InvalidJson(e);
        WEIR_RETURN_IF_ERROR(CheckWellFormed(v, depth + 1));
      }
      return absl::OkStatus();
    }
    case od::json_type::object: {
      od::object object;
      if (auto e = value.get_object().get(object)) return InvalidJson(e);
      for (auto member : object) {
        od::field field;
        if (auto e = std::move(member).get(field)) return InvalidJson(e);
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return InvalidJson(e);
        WEIR_RETURN_IF_ERROR(CheckWellFormed(field.value(), depth + 1));
      }
      return absl::OkStatus();
    }
    case od::json_type::number: {
      NumberText number;
      if (!ParseNumberText(TrimTrailingSpace(value.raw_json_token()),
                           &number)) {
        return InvalidJson("bad number");
      }
      return absl::OkStatus();
    }
    case od::json_type::string: {
      std::string_view s;
      if (auto e = value.get_string().get(s)) return InvalidJson(e);
      return absl::OkStatus();
    }
    case od::json_type::boolean: {
      const std::string_view raw = TrimTrailingSpace(value.raw_json_token());
      if (raw != "true" && raw != "false") return InvalidJson("bad literal");
      return absl::OkStatus();
    }
    case od::json_type::null: {
      if (TrimTrailingSpace(value.raw_json_token()) != "null") {
        return InvalidJson("bad literal");
      }
      return absl::OkStatus();
    }
  }
  return InvalidJson("unknown token");
}

absl::Status JsonDecoder::Impl::ReadNumberText(od::value& value,
                                               std::string_view* raw,
                                               NumberText* number) {
  *raw = TrimTrailingSpace(value.raw_json_token());
  if (!ParseNumberText(*raw, number)) {
    return InvalidJson(absl::StrCat("bad number ", Excerpt(*raw)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> JsonDecoder::Impl::ReadTimestamp(
    od::value& value, od::json_type t, JsonType type, std::string_view field) {
  if (t == od::json_type::number) {
    std::string_view raw;
    NumberText number;
    WEIR_RETURN_IF_ERROR(ReadNumberText(value, &raw, &number));
    int64_t ms;
    const int32_t scale = type == JsonType::kTimestampS ? 3 : 0;
    if (ScaleNumber(number, scale, /*floor=*/true, &ms) != ScaleResult::kOk) {
      return Mismatch("number_out_of_range", field,
                      absl::StrCat(JsonTypeName(type), " ", Excerpt(raw),
                                   " does not fit in int64 milliseconds"));
    }
    return ms;
  }
  if (t == od::json_type::string) {
    std::string_view text;
    if (auto e = value.get_string().get(text)) return InvalidJson(e);
    absl::Time time;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, Sv(text), &time, &error) ||
        time == absl::InfiniteFuture() || time == absl::InfinitePast()) {
      return Mismatch(
          "wrong_type", field,
          absl::StrCat("expected ", JsonTypeName(type),
                       " (a number or an RFC 3339 time), got string \"",
                       Excerpt(text), "\""));
    }
    return absl::ToUnixMillis(time);
  }
  return WrongType(field, JsonTypeName(type), t, value.raw_json_token());
}

absl::StatusOr<Value> JsonDecoder::Impl::ReadField(od::value& value,
                                                   od::json_type t,
                                                   const JsonField& spec) {
  const std::string& field = spec.name;
  switch (spec.type) {
    case JsonType::kString: {
      if (t != od::json_type::string) {
        return WrongType(field, "string", t, value.raw_json_token());
      }
      std::string_view s;
      if (auto e = value.get_string().get(s)) return InvalidJson(e);
      return Value::String(std::string(s));
    }
    case JsonType::kBool: {
      if (t != od::json_type::boolean) {
        return WrongType(field, "bool", t, value.raw_json_token());
      }
      const std::string_view raw = TrimTrailingSpace(value.raw_json_token());
      if (raw == "true") return Value::Bool(true);
      if (raw == "false") return Value::Bool(false);
      return InvalidJson(absl::StrCat("bad literal ", Excerpt(raw)));
    }
    case JsonType::kInt64: {
      if (t != od::json_type::number) {
        return WrongType(field, "int64", t, value.raw_json_token());
      }
      std::string_view raw;
      NumberText number;
      WEIR_RETURN_IF_ERROR(ReadNumberText(value, &raw, &number));
      int64_t v;
      switch (ScaleNumber(number, 0, /*floor=*/false, &v)) {
        case ScaleResult::kOk:
          return Value::Int64(v);
        case ScaleResult::kLossy:
          return Mismatch("lossy_number", field,
                          absl::StrCat("expected int64, got ", Excerpt(raw),
                                       ", which has a fractional part"));
        case ScaleResult::kOverflow:
          break;
      }
      return Mismatch("number_out_of_range", field,
                      absl::StrCat("expected int64, got ", Excerpt(raw),
                                   ", which is outside the int64 range"));
    }
    case JsonType::kDouble: {
      if (t != od::json_type::number) {
        return WrongType(field, "double", t, value.raw_json_token());
      }
      std::string_view raw;
      NumberText number;
      WEIR_RETURN_IF_ERROR(ReadNumberText(value, &raw, &number));
      double d;
      if (value.get_double().get(d)) {
        return Mismatch("number_out_of_range", field,
                        absl::StrCat("expected double, got ", Excerpt(raw),
                                     ", which is outside the double range"));
      }
      return Value::Double(d);
    }
    case JsonType::kDecimal: {
      std::string_view raw;
      NumberText number;
      if (t == od::json_type::number) {
        WEIR_RETURN_IF_ERROR(ReadNumberText(value, &raw, &number));
      } else if (t == od::json_type::string) {
        if (auto e = value.get_string().get(raw)) return InvalidJson(e);
        if (!ParseNumberText(raw, &number)) {
          return Mismatch(
              "wrong_type", field,
              absl::StrCat("expected ", Expected(spec),
                           " (a number or a string holding one), got string \"",
                           Excerpt(raw), "\""));
        }
      } else {
        return WrongType(field, Expected(spec), t, value.raw_json_token());
      }
      int64_t units;
      switch (ScaleNumber(number, spec.scale, /*floor=*/false, &units)) {
        case ScaleResult::kOk:
          return Value::Dec(units, spec.scale);
        case ScaleResult::kLossy:
          return Mismatch("lossy_number", field,
                          absl::StrCat("expected ", Expected(spec), ", got ",
                                       Excerpt(raw), ", which has more than ",
                                       spec.scale, " decimal places"));
        case ScaleResult::kOverflow:
          break;
      }
      return Mismatch("number_out_of_range", field,
                      absl::StrCat("expected ", Expected(spec), ", got ",
                                   Excerpt(raw), ", which does not fit"));
    }
    case JsonType::kTimestampMs:
    case JsonType::kTimestampS: {
      WEIR_ASSIGN_OR_RETURN(int64_t ms,
                            ReadTimestamp(value, t, spec.type, field));
      return Value::Int64(ms);
    }
  }
  return absl::InternalError("unknown field type");
}

absl::Status JsonDecoder::Impl::DecodeInto(const RawRecord& record,
                                           Event* event) {
  const size_t size = record.value.size();
  if (size > options_.max_record_bytes) {
    return Deserialization("too_large",
                           absl::StrCat("record of ", size, " bytes exceeds ",
                                        options_.max_record_bytes));
  }
  // simdjson reads up to SIMDJSON_PADDING bytes past the end of the input.
  const size_t needed = size + simdjson::SIMDJSON_PADDING;
  if (buffer_capacity_ < needed) {
    buffer_capacity_ = std::max(needed, 2 * buffer_capacity_);
    buffer_ = std::make_unique<char[]>(buffer_capacity_);
  }
  if (size > 0) std::memcpy(buffer_.get(), record.value.data(), size);
  std::memset(buffer_.get() + size, 0, simdjson::SIMDJSON_PADDING);

  od::document doc;
  if (auto e =
          parser_.iterate(buffer_.get(), size, buffer_capacity_).get(doc)) {
    return InvalidJson(e);
  }
  od::object object;
  if (auto e = doc.get_object().get(object)) {
    if (e == simdjson::INCORRECT_TYPE) {
      return Deserialization("not_an_object",
                             "the record is not a JSON object");
    }
    return InvalidJson(e);
  }

  std::fill(seen_.begin(), seen_.end(), 0);
  bool key_seen = false;
  bool time_seen = false;
  event->values.resize(schema_.fields.size());

  for (auto member : object) {
    od::field field;
    if (auto e = std::move(member).get(field)) return InvalidJson(e);
    std::string_view name;
    if (auto e = field.unescaped_key().get(name)) return InvalidJson(e);
    od::value& value = field.value();
    auto it = slots_.find(Sv(name));
    if (it == slots_.end()) {
      WEIR_RETURN_IF_ERROR(CheckWellFormed(value, 1));
      continue;
    }
    const Slot& slot = it->second;
    if ((slot.is_key && key_seen) || (slot.is_time && time_seen) ||
        (slot.value_index >= 0 && seen_[slot.value_index])) {
      return Mismatch("duplicate_field", name, "appears more than once");
    }
    od::json_type t;
    if (auto e = value.type().get(t)) return InvalidJson(e);
    if (t == od::json_type::null) {
      if (TrimTrailingSpace(value.raw_json_token()) != "null") {
        return InvalidJson("bad literal");
      }
      if (slot.is_key || slot.is_time) {
        return Mismatch("null_field", name,
                        slot.is_key ? "the key must not be null"
                                    : "the event time must not be null");
      }
      const JsonField& spec = schema_.fields[slot.value_index];
      if (spec.required) {
        return Mismatch("null_field", name,
                        absl::StrCat("required ", Expected(spec), " is null"));
      }
      event->values[slot.value_index] = spec.default_value;
      seen_[slot.value_index] = 1;
      continue;
    }
    if (slot.is_key) {
      if (t != od::json_type::string) {
        return WrongType(name, "string (the key)", t, value.raw_json_token());
      }
      std::string_view key;
      if (auto e = value.get_string().get(key)) return InvalidJson(e);
      if (key.empty()) return Mismatch("empty_key", name, "the key is empty");
      event->key.assign(key);
      key_seen = true;
      if (slot.value_index >= 0) {
        event->values[slot.value_index] = Value::String(event->key);
        seen_[slot.value_index] = 1;
      }
      continue;
    }
    if (slot.is_time) {
      WEIR_ASSIGN_OR_RETURN(
          event->event_time,
          ReadTimestamp(value, t, schema_.event_time_type, name));
      time_seen = true;
      if (slot.value_index >= 0) {
        event->values[slot.value_index] = Value::Int64(event->event_time);
        seen_[slot.value_index] = 1;
      }
      continue;
    }
    WEIR_ASSIGN_OR_RETURN(
        event->values[slot.value_index],
        ReadField(value, t, schema_.fields[slot.value_index]));
    seen_[slot.value_index] = 1;
  }
  // Anything after the object (a second document, a stray bracket) makes
  // the record ambiguous.
  if (!doc.current_location().error()) {
    return Deserialization("trailing_content",
                           "unexpected content after the JSON object");
  }

  if (!key_seen) {
    return Mismatch("missing_field", schema_.key_field,
                    "the key field is missing");
  }
  if (schema_.event_time_source == EventTimeSource::kField) {
    if (!time_seen) {
      return Mismatch("missing_field", schema_.event_time_field,
                      "the event-time field is missing");
    }
  } else if (record.timestamp.has_value()) {
    event->event_time = *record.timestamp;
  } else {
    return MakeDecodeError(
        DecodeErrorCategory::kSchemaMismatch, "missing_timestamp",
        absl::StrCat(prefix_,
                     "the source record has no timestamp to use as event "
                     "time"));
  }
  for (size_t i = 0; i < schema_.fields.size(); ++i) {
    if (seen_[i]) continue;
    const JsonField& spec = schema_.fields[i];
    if (spec.required) {
      return Mismatch("missing_field", spec.name,
                      absl::StrCat("required ", Expected(spec), " is missing"));
    }
    event->values[i] = spec.default_value;
  }
  event->partition = record.partition;
  event->offset = record.offset;
  return absl::OkStatus();
}

JsonDecoder::JsonDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonDecoder::~JsonDecoder() = default;

absl::StatusOr<std::unique_ptr<JsonDecoder>> JsonDecoder::Create(
    JsonSchema schema, JsonDecoderOptions options) {
  WEIR_RETURN_IF_ERROR(schema.Validate());
  WEIR_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<JsonDecoder>(new JsonDecoder(
      std::make_unique<Impl>(std::move(schema), std::move(options))));
}

absl::StatusOr<Event> JsonDecoder::Decode(const RawRecord& record) {
  Event event;
  WEIR_RETURN_IF_ERROR(impl_->DecodeInto(record, &event));
  return event;
}

absl::Status JsonDecoder::DecodeInto(const RawRecord& record, Event* event) {
  return impl_->DecodeInto(record, event);
}

const JsonSchema& JsonDecoder::schema() const { return impl_->schema(); }

}  // namespace weir
