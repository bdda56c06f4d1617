// libFuzzer target: the schema-driven JSON decoder on arbitrary bytes.
//
// Decodes every input with a W-PAY schema and with a schema that declares
// every field type, and checks what must hold whatever the input: no crash
// or sanitizer report, an event shaped as the schema says, or a classified
// error whose dead-letter record round-trips through its JSON line.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/decode.h"
#include "weir/dlq.h"
#include "weir/json/json_decoder.h"
#include "weir/record.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

std::unique_ptr<weir::JsonDecoder> MakePaymentDecoder() {
  weir::JsonSchema schema;
  schema.name = "payments";
  schema.version = 3;
  schema.key_field = "user_id";
  schema.event_time_field = "event_timestamp";
  schema.fields = {
      weir::JsonField::Required("merchant_id", weir::JsonType::kString),
      weir::JsonField::OptionalDecimal("amount", 2)};
  return *weir::JsonDecoder::Create(schema);
}

std::unique_ptr<weir::JsonDecoder> MakeAllTypesDecoder() {
  weir::JsonSchema schema;
  schema.name = "all_types";
  schema.key_field = "k";
  schema.event_time_source = weir::EventTimeSource::kRecordTimestamp;
  schema.fields = {
      weir::JsonField::Optional("i", weir::JsonType::kInt64),
      weir::JsonField::Optional("d", weir::JsonType::kDouble,
                                weir::Value::Double(0.5)),
      weir::JsonField::RequiredDecimal("m", 4),
      weir::JsonField::Optional("b", weir::JsonType::kBool),
      weir::JsonField::Optional("s", weir::JsonType::kString),
      weir::JsonField::Optional("ms", weir::JsonType::kTimestampMs),
      weir::JsonField::Optional("sec", weir::JsonType::kTimestampS)};
  weir::JsonDecoderOptions options;
  options.max_depth = 16;
  return *weir::JsonDecoder::Create(schema, options);
}

void DecodeAndCheck(weir::JsonDecoder& decoder, const weir::RawRecord& raw) {
  absl::StatusOr<weir::Event> event = decoder.Decode(raw);
  const weir::JsonSchema& schema = decoder.schema();
  if (event.ok()) {
    Check(!event->key.empty());
    Check(event->values.size() == schema.fields.size());
    Check(event->offset == raw.offset);
    for (size_t i = 0; i < schema.fields.size(); ++i) {
      const weir::Value& v = event->values[i];
      if (schema.fields[i].type == weir::JsonType::kDecimal && !v.is_null()) {
        Check(v.decimal_value().scale == schema.fields[i].scale);
      }
    }
    return;
  }
  Check(event.status().code() == absl::StatusCode::kInvalidArgument);
  const weir::DecodeError error = weir::GetDecodeError(event.status());
  Check(!error.type.empty());
  Check(error.category != weir::DecodeErrorCategory::kProcessingError);
  if (error.category == weir::DecodeErrorCategory::kSchemaMismatch &&
      error.type != "missing_timestamp") {
    Check(!error.field.empty());
  }

  weir::DeadLetterRecord record;
  record.key = std::string(raw.key);
  record.value = std::string(raw.value);
  record.category = error.category;
  record.error_type = error.type;
  record.error_message = error.message;
  record.offset = raw.offset;
  absl::StatusOr<weir::DeadLetterRecord> back =
      weir::ParseDeadLetterJson(record.ToJson());
  Check(back.ok());
  Check(back->value == record.value);
  Check(back->key == record.key);
  Check(back->category == record.category);
  Check(back->error_type == record.error_type);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static weir::JsonDecoder* payments = MakePaymentDecoder().release();
  static weir::JsonDecoder* all_types = MakeAllTypesDecoder().release();
  weir::RawRecord raw;
  raw.topic = "payments";
  raw.offset = static_cast<int64_t>(size);
  raw.timestamp = 1767225600123;
  raw.key = "k";
  raw.value = std::string_view(reinterpret_cast<const char*>(data), size);
  DecodeAndCheck(*payments, raw);
  DecodeAndCheck(*all_types, raw);
  return 0;
}
