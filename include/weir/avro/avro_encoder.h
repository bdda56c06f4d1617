// -----------------------------------------------------------------------------
// File: avro/avro_encoder.h
// -----------------------------------------------------------------------------
//
// Writes a JSON object as the Avro binary body of a record of a given
// schema: what a producer of Avro needs when its records come as JSON lines
// (weir-produce --format=avro, the W-PAY test writer).
//
// Values map as a JavaScript Avro encoder takes them, with W-PAY's JSON in
// mind: null, booleans, numbers (integers for int and long, any number for
// float and double, exact number text for a decimal on bytes or fixed, e.g.
// 12.34 or 1234e-2 at scale 2; a number with more places than the scale is
// refused), strings (also for bytes, their UTF-8, and for enum symbols),
// arrays, objects for records and maps. A union takes null for its null
// branch, an object of one member naming a branch ({"string": "x"}, Avro's
// JSON encoding), or else the first branch that takes the value. A record
// field missing from the object is written with its default (an error if
// it has none); members the schema does not name are ignored.
//
// Threading: the function is pure.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(weir::AvroSchema schema,
//                         weir::AvroSchema::Parse(schema_json));
//   WEIR_ASSIGN_OR_RETURN(std::string body,
//                         weir::EncodeAvroFromJson(schema, line));
//   producer.Produce(topic, key, weir::AvroWireFormat(id, body));

#ifndef WEIR_AVRO_AVRO_ENCODER_H_
#define WEIR_AVRO_AVRO_ENCODER_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "weir/avro/avro_schema.h"

namespace weir {

// The Avro binary encoding of `json` under `schema`. kInvalidArgument
// naming the field path and what is wrong when `json` is not valid JSON or
// does not fit the schema.
absl::StatusOr<std::string> EncodeAvroFromJson(const AvroSchema& schema,
                                               std::string_view json);

}  // namespace weir

#endif  // WEIR_AVRO_AVRO_ENCODER_H_
