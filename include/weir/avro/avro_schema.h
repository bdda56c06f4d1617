// -----------------------------------------------------------------------------
// File: avro/avro_schema.h
// -----------------------------------------------------------------------------
//
// Avro schemas and the compatibility rules a schema registry enforces when a
// new version of a subject's schema is registered.
//
// `AvroSchema::Parse` reads a schema in Avro's JSON form (primitives,
// records, enums, arrays, maps, fixed, unions, named-type references,
// namespaces and aliases; logical types are kept as annotations).
// `CanRead(reader, writer)` applies Avro's schema-resolution rules: can a
// consumer holding `reader` decode data written with `writer`? Fields are
// matched by name (or the reader field's aliases); a reader field the
// writer lacks needs a default; a writer field the reader lacks is skipped;
// int, long and float promote to wider numbers, string and bytes to each
// other; a writer union's every branch must be readable; a reader union
// reads a writer type if one of its branches does; enum symbols the writer
// may send must be known to the reader unless it has a default.
//
// `CheckCompatibility(candidate, previous, mode)` answers as a registry
// does for the modes BACKWARD (the candidate reads data written with the
// latest version: consumers can upgrade first), FORWARD (the latest reads
// data written with the candidate: producers can upgrade first), FULL
// (both), their _TRANSITIVE forms (against every previous version) and
// NONE. Every incompatibility names the field path and the rule, e.g.
// "Payment.amount: a reader of type int cannot read the writer's float".
//
// The rules in the common cases (the safe deployment order is registry,
// then consumers, then producers: docs/operations.md):
//   | change                            | BACKWARD | FORWARD | FULL |
//   | add a field with a default        | yes      | yes     | yes  |
//   | add a field without a default     | no       | yes     | no   |
//   | remove a field that had a default | yes      | yes     | yes  |
//   | remove a field without a default  | yes      | no      | no   |
//   | int to long / float / double      | yes      | no      | no   |
//   | rename a field                    | no       | no      | no   |
//   | rename it with the old name as an | yes      | no      | no   |
//   |   alias of the new field          |          |         |      |
//
// Threading: an AvroSchema is immutable after Parse; the functions are pure.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(weir::AvroSchema v1,
//   weir::AvroSchema::Parse(old_json)); WEIR_ASSIGN_OR_RETURN(weir::AvroSchema
//   v2, weir::AvroSchema::Parse(new_json)); weir::CompatibilityResult r =
//   weir::CheckCompatibility(
//       v2, {v1}, weir::SchemaCompatibility::kFull);
//   if (!r.compatible) return absl::FailedPreconditionError(r.ToString());

#ifndef WEIR_AVRO_AVRO_SCHEMA_H_
#define WEIR_AVRO_AVRO_SCHEMA_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "weir/schema_compatibility.h"

namespace weir {

// One node of a parsed schema. Named types are stored once and referenced
// by index, so recursive types are finite.
struct AvroNode {
  enum class Type {
    kNull,
    kBoolean,
    kInt,
    kLong,
    kFloat,
    kDouble,
    kBytes,
    kString,
    kRecord,
    kEnum,
    kArray,
    kMap,
    kFixed,
    kUnion,
  };
  struct Field {
    std::string name;
    int type = -1;  // node index
    bool has_default = false;
    std::string default_json;  // the default as JSON, when has_default
    std::vector<std::string> aliases;
  };

  Type type = Type::kNull;
  std::string full_name;             // records, enums, fixed
  std::vector<std::string> aliases;  // full names
  std::vector<Field> fields;         // records
  std::vector<std::string> symbols;  // enums
  bool has_enum_default = false;     // enums
  int items = -1;                    // arrays (items), maps (values)
  int64_t size = 0;                  // fixed
  std::vector<int> branches;         // unions
  std::string logical_type;          // e.g. "decimal", "timestamp-millis"
  int32_t scale = 0;                 // decimals
};

// "null", "boolean", ..., "record", "union".
const char* AvroTypeName(AvroNode::Type type);

// Whether a reader of type `reader` reads a value written as `writer` by
// promotion (int to long, float, double; long to float, double; float to
// double; string and bytes to each other). Equal types are not promotions.
bool AvroPromotes(AvroNode::Type writer, AvroNode::Type reader);

// The name part of a full name ("a.b.C" -> "C"): named types resolve by it.
std::string AvroShortName(const std::string& full_name);

class AvroSchema {
 public:
  // kInvalidArgument naming what is wrong (and where) for a schema that is
  // not valid Avro JSON.
  static absl::StatusOr<AvroSchema> Parse(std::string_view json);

  const AvroNode& node(int index) const { return nodes_[index]; }
  int root() const { return root_; }
  // The root's full name for named types, else its type name.
  std::string name() const;

 private:
  friend class AvroSchemaParser;
  std::vector<AvroNode> nodes_;
  int root_ = -1;
};

// Whether data written with `writer` can be read with `reader`.
CompatibilityResult CanRead(const AvroSchema& reader, const AvroSchema& writer);

// Whether `candidate` may be registered after `previous` (oldest first)
// under `mode`. Each issue's reason says which version and which direction
// failed. Compatible when `previous` is empty or the mode is kNone.
CompatibilityResult CheckCompatibility(const AvroSchema& candidate,
                                       absl::Span<const AvroSchema> previous,
                                       SchemaCompatibility mode);

}  // namespace weir

#endif  // WEIR_AVRO_AVRO_SCHEMA_H_
