// -----------------------------------------------------------------------------
// File: json/json_decoder.h
// -----------------------------------------------------------------------------
//
// A schema-driven JSON decoder (simdjson On-Demand). A `JsonSchema` names
// the field that holds the entity key, where the event time comes from, and
// the value fields in the order they take in `Event::values`; the decoder
// reads one JSON object per record into an `Event`.
//
// Rules (each failure is a status GetDecodeError classifies, see decode.h):
// - The record must be one well-formed JSON object; anything else that is
//   not JSON (broken syntax, bad UTF-8, bad escapes, trailing content, more
//   than `max_depth` levels of nesting, a top-level value that is not an
//   object) is a deserialization error ("invalid_json", "trailing_content",
//   "too_deep", "too_large", "not_an_object"). Unknown fields are ignored,
//   but they are still checked to be well-formed JSON.
// - The key field must be a non-empty JSON string ("wrong_type",
//   "empty_key"). The event-time field must be a timestamp (below).
// - string: a JSON string. bool: true or false.
// - int64: a JSON integer in int64 range. A number written with a fraction
//   or exponent is accepted when its value is an integer (5.0, 5e2) and is a
//   schema_mismatch "lossy_number" otherwise (5.5); out of range is
//   "number_out_of_range".
// - double: any JSON number; integers are widened to double. A number beyond
//   double range is "number_out_of_range".
// - decimal(scale): a JSON number or a string holding one, read exactly from
//   its text, never through binary floating point, and stored at the field's
//   scale: with scale 2, 12.34 -> {1234, 2}, 12.3 -> {1230, 2}, "7" ->
//   {700, 2}; 12.345 is "lossy_number".
// - timestamp_ms / timestamp_s: an integer count of milliseconds / seconds
//   since the epoch (seconds may carry a fraction; digits finer than a
//   millisecond are dropped toward negative infinity), or an RFC 3339 string
//   ("2026-01-01T00:00:00.123Z"). Stored as Value::Int64 milliseconds.
// - A required field that is missing is a schema_mismatch "missing_field";
//   null in a required field is "null_field". A missing or null optional
//   field takes its default (Value::Null() unless set).
// - A value of another JSON type is "wrong_type"; a declared field present
//   twice is "duplicate_field".
// Every schema_mismatch names the field (DecodeError::field and the message).
//
// Threading: a JsonDecoder is not thread-safe (it reuses its parser and
// buffers); give each pipeline thread its own. Starts no threads.
//
// Example:
//   weir::JsonSchema schema;
//   schema.name = "payments";
//   schema.version = 3;
//   schema.key_field = "user_id";
//   schema.event_time_field = "event_timestamp";
//   schema.event_time_type = weir::JsonType::kTimestampMs;
//   schema.fields = {
//       weir::JsonField::Required("merchant_id", weir::JsonType::kString),
//       weir::JsonField::OptionalDecimal("amount", 2)};
//   WEIR_ASSIGN_OR_RETURN(auto decoder, weir::JsonDecoder::Create(schema));
//   absl::StatusOr<weir::Event> event = decoder->Decode(raw);

#ifndef WEIR_JSON_JSON_DECODER_H_
#define WEIR_JSON_JSON_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/decode.h"
#include "weir/record.h"

namespace weir {

// The declared type of a JSON field.
enum class JsonType : uint8_t {
  kString,
  kInt64,
  kDouble,
  kDecimal,  // with JsonField::scale
  kBool,
  kTimestampMs,
  kTimestampS,
};

// "string", "int64", "double", "decimal", "bool", "timestamp_ms",
// "timestamp_s".
const char* JsonTypeName(JsonType type);

// One value field of a schema.
struct JsonField {
  // The JSON member name. REQUIRES: non-empty, unique within the schema.
  std::string name;

  // Default: JsonType::kString
  JsonType type = JsonType::kString;

  // Decimal places of a kDecimal field, in [0, 18]; must be 0 for others.
  // Default: 0
  int32_t scale = 0;

  // Whether a record without this field (or with null in it) is a
  // schema_mismatch. Default: true
  bool required = true;

  // The value of an optional field that is missing or null: Value::Null()
  // or a value of the field's type (Int64 milliseconds for timestamps; a
  // decimal representable at `scale`). Must be null for a required field.
  // Default: Value::Null()
  Value default_value;

  static JsonField Required(std::string name, JsonType type) {
    return JsonField{std::move(name), type, 0, true, Value::Null()};
  }
  static JsonField Optional(std::string name, JsonType type,
                            Value default_value = Value::Null()) {
    return JsonField{std::move(name), type, 0, false, std::move(default_value)};
  }
  static JsonField RequiredDecimal(std::string name, int32_t scale) {
    return JsonField{std::move(name), JsonType::kDecimal, scale, true,
                     Value::Null()};
  }
  static JsonField OptionalDecimal(std::string name, int32_t scale,
                                   Value default_value = Value::Null()) {
    return JsonField{std::move(name), JsonType::kDecimal, scale, false,
                     std::move(default_value)};
  }
};

// Where an event's time comes from.
enum class EventTimeSource : uint8_t {
  // The schema's `event_time_field`.
  kField,
  // The source record's own timestamp (RawRecord::timestamp); a record
  // without one is a schema_mismatch "missing_timestamp".
  kRecordTimestamp,
};

// The shape of the records a JsonDecoder reads.
struct JsonSchema {
  // Names the schema in messages and dead-letter records. REQUIRES:
  // non-empty. Default: ""
  std::string name;

  // The schema's version, for people and dead-letter tooling. REQUIRES:
  // >= 1. Default: 1
  int32_t version = 1;

  // The member holding the entity key, a JSON string. REQUIRES: non-empty.
  // It may also be listed in `fields`. Default: ""
  std::string key_field;

  // Default: EventTimeSource::kField
  EventTimeSource event_time_source = EventTimeSource::kField;

  // With kField: the member holding the event time. REQUIRES: non-empty
  // then. It may also be listed in `fields`. Default: ""
  std::string event_time_field;

  // With kField: how the event time is written, kTimestampMs or
  // kTimestampS. Default: JsonType::kTimestampMs
  JsonType event_time_type = JsonType::kTimestampMs;

  // The value fields, in the order they take in Event::values.
  // Default: none
  std::vector<JsonField> fields;

  // Returns kInvalidArgument naming the first bad field, e.g.
  // "fields[2].scale: 19 is outside [0, 18]".
  absl::Status Validate() const;
};

struct JsonDecoderOptions {
  // Objects and arrays nested deeper than this are a deserialization error
  // ("too_deep"); bounds the decoder's recursion on hostile input.
  // Default: 64
  int32_t max_depth = 64;

  // Records larger than this are a deserialization error ("too_large")
  // without being parsed. Default: 16 MiB
  size_t max_record_bytes = size_t{16} << 20;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

class JsonDecoder final : public Decoder {
 public:
  // Fails with kInvalidArgument if the schema or options are invalid.
  static absl::StatusOr<std::unique_ptr<JsonDecoder>> Create(
      JsonSchema schema, JsonDecoderOptions options = {});

  ~JsonDecoder() override;
  JsonDecoder(const JsonDecoder&) = delete;
  JsonDecoder& operator=(const JsonDecoder&) = delete;

  absl::StatusOr<Event> Decode(const RawRecord& record) override;
  absl::Status DecodeInto(const RawRecord& record, Event* event) override;

  const JsonSchema& schema() const;

 private:
  class Impl;
  explicit JsonDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir

#endif  // WEIR_JSON_JSON_DECODER_H_
