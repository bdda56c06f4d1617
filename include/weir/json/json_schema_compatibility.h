// -----------------------------------------------------------------------------
// File: json/json_schema_compatibility.h
// -----------------------------------------------------------------------------
//
// The schema registry's compatibility rules (weir/schema_compatibility.h)
// for weir's JSON schemas, so that teams on JSON topics get the same check
// before they change a producer or a consumer.
//
// `CanReadJson(reader, writer)` says whether a JsonDecoder with `reader`
// decodes every record a producer following `writer` may write without a
// schema_mismatch: the key field and the event time are the same; a value
// field the reader requires is always written (required by the writer); a
// field the writer lacks is optional in the reader (its default applies);
// types read as the decoder reads them: a double reads any number, a
// decimal reads integers and decimals of no more places, an int64 only
// int64, a string only strings; seconds and milliseconds are different
// timestamps. Fields the reader does not list are ignored.
//
// Threading: pure functions.
//
// Example:
//   weir::CompatibilityResult r = weir::CheckJsonSchemaCompatibility(
//       payments_v2, {payments_v1}, weir::SchemaCompatibility::kFull);
//   if (!r.compatible) std::cerr << r.ToString();

#ifndef WEIR_JSON_JSON_SCHEMA_COMPATIBILITY_H_
#define WEIR_JSON_JSON_SCHEMA_COMPATIBILITY_H_

#include "absl/types/span.h"
#include "weir/json/json_decoder.h"
#include "weir/schema_compatibility.h"

namespace weir {

CompatibilityResult CanReadJson(const JsonSchema& reader,
                                const JsonSchema& writer);

CompatibilityResult CheckJsonSchemaCompatibility(
    const JsonSchema& candidate, absl::Span<const JsonSchema> previous,
    SchemaCompatibility mode);

}  // namespace weir

#endif  // WEIR_JSON_JSON_SCHEMA_COMPATIBILITY_H_
