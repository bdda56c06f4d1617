// -----------------------------------------------------------------------------
// File: testing/wpay_avro.h
// -----------------------------------------------------------------------------
//
// W-PAY payments (weir/testing/wpay.h) as Avro records in the Confluent wire
// format, the way a producer using a schema registry writes them: the
// writer registers its schema under the subject (getting the schema id),
// then each payment is the magic byte 0, the id (4 bytes, big-endian) and
// the Avro binary body.
//
// Each payment is its JSON line written with the writer schema
// (weir/avro/avro_encoder.h): user_id and merchant_id strings, the amount a
// decimal (or a union of null and one), event_timestamp a long. A field of
// the schema that W-PAY lacks, such as v2's currency_code, is written with
// its default, so a schema that adds a defaulted field writes records the
// same reader reads to the same events.
//
// Threading: a WPayAvroWriter is not thread-safe.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto writer, weir::testing::WPayAvroWriter::Create(
//       registry_url, "payments-value", kWPayAvroV2));
//   WEIR_ASSIGN_OR_RETURN(std::string value, writer->Encode(event));

#ifndef WEIR_TESTING_WPAY_AVRO_H_
#define WEIR_TESTING_WPAY_AVRO_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "weir/avro/avro_schema.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace testing {

class WPayAvroWriter {
 public:
  // Registers `writer_schema` under `subject` at the registry at
  // `registry_url`. kInvalidArgument if the schema is not a record W-PAY
  // can fill; the registry's refusal (kFailedPrecondition for an
  // incompatible schema) passes through.
  static absl::StatusOr<std::unique_ptr<WPayAvroWriter>> Create(
      const std::string& registry_url, const std::string& subject,
      const std::string& writer_schema);

  // A writer that registers nothing and writes `schema_id` in each record
  // (e.g. an id the registry never gave, to test the dead-letter path).
  static absl::StatusOr<std::unique_ptr<WPayAvroWriter>> WithId(
      int32_t schema_id, const std::string& writer_schema);

  // The schema id the records carry.
  int32_t schema_id() const { return schema_id_; }

  // The payment as one Kafka message value (wire format). Meant for
  // accepted() events (a malformed line does not fit the schema:
  // kInvalidArgument); needs the event's JSON (WPayOptions::build_json).
  absl::StatusOr<std::string> Encode(const WPayEvent& event) const;

 private:
  WPayAvroWriter(int32_t schema_id, AvroSchema schema)
      : schema_id_(schema_id), schema_(std::move(schema)) {}
  const int32_t schema_id_;
  const AvroSchema schema_;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_WPAY_AVRO_H_
