// -----------------------------------------------------------------------------
// File: avro/avro_decoder.h
// -----------------------------------------------------------------------------
//
// An `AvroDecoder` turns Avro records into `Event`s, the same events the JSON
// decoder makes: the key from a string field, the event time from a long
// (or timestamp-millis) field or the record's timestamp, and the value
// fields in the order the options list them.
//
// Records come in the Confluent wire format (a magic byte 0, the writer
// schema's id as a 4-byte big-endian integer, then the Avro binary body) or
// as a plain Avro body with one fixed writer schema. The writer schema is
// resolved against the pipeline's reader schema by Avro's rules
// (weir/avro/avro_schema.h): fields matched by name or alias, a reader field
// the writer lacks takes its default, int → long → float → double and
// string ↔ bytes promote, unions resolve by branch, enum symbols map by
// name. Decimals (the decimal logical type on bytes or fixed, up to 18
// digits) become exact `Value::Dec`s.
//
// Resolution is done here, not by Avro C: Avro C 1.11's resolvers refuse a
// reader field that the writer lacks instead of applying its default, which
// is the most common safe schema change.
//
// Failures go to the dead-letter queue like the JSON decoder's:
//   deserialization  "invalid_avro"      truncated or malformed bytes,
//                    "bad_magic_byte"    not the Confluent wire format
//   schema_mismatch  "schema_unknown"    the registry does not know the id
//                    "schema_incompatible" the writer schema cannot be read
//                                        with the reader's (field and rule
//                                        in the message)
//                    "missing_field", "wrong_type"  a null key or time
//   processing_error "schema_unavailable" the registry could not be asked
// A writer schema is fetched once per id and cached, the failure too for an
// unknown or incompatible id (a registry answer does not change); an
// unavailable registry is asked again on the next record.
//
// Threading: one thread uses a decoder (as every Decoder). The
// `SchemaLookup` is called on that thread.
//
// Example:
//   weir::AvroDecoderOptions o;
//   o.reader_schema = R"({"type":"record","name":"Payment","fields":[...]})";
//   o.key_field = "user_id";
//   o.event_time_field = "ts";
//   o.value_fields = {"merchant_id", "amount"};
//   o.writer_schemas = registry_client.get();  // a SchemaLookup
//   WEIR_ASSIGN_OR_RETURN(auto decoder, weir::AvroDecoder::Create(o));

#ifndef WEIR_AVRO_AVRO_DECODER_H_
#define WEIR_AVRO_AVRO_DECODER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "weir/decode.h"

namespace weir {

// Where writer schemas come from, by id (a schema registry client, or a
// fixed table in tests and tools).
class SchemaLookup {
 public:
  virtual ~SchemaLookup() = default;
  // The schema's JSON. kNotFound if the id is unknown; kUnavailable (or
  // another code) if it could not be asked.
  virtual absl::StatusOr<std::string> WriterSchema(int32_t id) = 0;
};

struct AvroDecoderOptions {
  // The reader schema (Avro JSON), a record. Required.
  std::string reader_schema;

  // The reader field holding the entity key: string, or a union of null and
  // string (a null key is a schema_mismatch). Required.
  std::string key_field;

  // The reader field holding the event time in ms since the epoch: long or
  // int (a timestamp-millis long, typically). Unset: the record's own
  // timestamp. Default: unset
  std::optional<std::string> event_time_field;

  // The reader fields that become Event::values, in order: null, boolean,
  // int, long, float, double, string, bytes, enum, a decimal, or a union of
  // null and one of those. Default: none
  std::vector<std::string> value_fields;

  // With a lookup, records are in the Confluent wire format and their
  // writer schema is looked up by id; without one, each record is a plain
  // Avro body written with `writer_schema`. Not owned; must outlive the
  // decoder. Default: none
  SchemaLookup* writer_schemas = nullptr;

  // The writer schema of plain records (no lookup). Unset: the reader
  // schema. Default: unset
  std::optional<std::string> writer_schema;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// A record in the Confluent wire format: the magic byte 0, `schema_id` as a
// 4-byte big-endian integer, then the Avro binary `body`.
std::string AvroWireFormat(int32_t schema_id, std::string_view body);

class AvroDecoder final : public Decoder {
 public:
  // kInvalidArgument if the options are invalid, the reader schema is not
  // valid Avro, a named field is not in it or has a type weir cannot hold,
  // or a fixed writer schema cannot be read with it.
  static absl::StatusOr<std::unique_ptr<AvroDecoder>> Create(
      AvroDecoderOptions options);

  ~AvroDecoder() override;
  AvroDecoder(const AvroDecoder&) = delete;
  AvroDecoder& operator=(const AvroDecoder&) = delete;

  absl::StatusOr<Event> Decode(const RawRecord& record) override;
  absl::Status DecodeInto(const RawRecord& record, Event* event) override;

 private:
  class Impl;
  explicit AvroDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir

#endif  // WEIR_AVRO_AVRO_DECODER_H_
