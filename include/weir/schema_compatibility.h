// -----------------------------------------------------------------------------
// File: schema_compatibility.h
// -----------------------------------------------------------------------------
//
// The compatibility modes a schema registry enforces when a subject gets a
// new schema version, and the result of a check, shared by weir's Avro
// schemas (weir/avro/avro_schema.h) and JSON schemas
// (weir/json/json_schema_compatibility.h).
//
// BACKWARD: the new schema reads data written with the latest registered
// one (consumers may upgrade first). FORWARD: the latest reads data written
// with the new one (producers may upgrade first). FULL: both. The
// _TRANSITIVE forms check every registered version, not only the latest.
// NONE checks nothing.
//
// Threading: pure functions and plain values.

#ifndef WEIR_SCHEMA_COMPATIBILITY_H_
#define WEIR_SCHEMA_COMPATIBILITY_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace weir {

enum class SchemaCompatibility {
  kNone,
  kBackward,
  kBackwardTransitive,
  kForward,
  kForwardTransitive,
  kFull,
  kFullTransitive,
};

// "NONE", "BACKWARD", ..., "FULL_TRANSITIVE" (as registries spell them).
const char* SchemaCompatibilityName(SchemaCompatibility mode);
absl::StatusOr<SchemaCompatibility> ParseSchemaCompatibility(
    std::string_view name);

struct CompatibilityIssue {
  std::string path;    // e.g. "Payment.amount", "Payment.tags[]"
  std::string reason;  // the rule that fails
};

struct CompatibilityResult {
  bool compatible = true;
  std::vector<CompatibilityIssue> issues;
  // "compatible", or one line per issue: "<path>: <reason>".
  std::string ToString() const;
};

// Applies `mode` to a candidate and `previous_count` registered versions
// (oldest first): `can_read(i, candidate_reads)` checks whether the
// candidate reads version i's data (candidate_reads) or version i reads the
// candidate's. Each issue's reason is suffixed with the version and the
// direction that failed. Compatible when there is no previous version.
CompatibilityResult CheckCompatibilityModes(
    size_t previous_count, SchemaCompatibility mode,
    const std::function<CompatibilityResult(size_t i, bool candidate_reads)>&
        can_read);

}  // namespace weir

#endif  // WEIR_SCHEMA_COMPATIBILITY_H_
