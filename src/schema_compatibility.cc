// Implementation of weir/schema_compatibility.h.

#include "weir/schema_compatibility.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace weir {

namespace {

constexpr std::pair<SchemaCompatibility, const char*> kModes[] = {
    {SchemaCompatibility::kNone, "NONE"},
    {SchemaCompatibility::kBackward, "BACKWARD"},
    {SchemaCompatibility::kBackwardTransitive, "BACKWARD_TRANSITIVE"},
    {SchemaCompatibility::kForward, "FORWARD"},
    {SchemaCompatibility::kForwardTransitive, "FORWARD_TRANSITIVE"},
    {SchemaCompatibility::kFull, "FULL"},
    {SchemaCompatibility::kFullTransitive, "FULL_TRANSITIVE"},
};

}  // namespace

const char* SchemaCompatibilityName(SchemaCompatibility mode) {
  for (const auto& [m, name] : kModes) {
    if (m == mode) return name;
  }
  return "?";
}

absl::StatusOr<SchemaCompatibility> ParseSchemaCompatibility(
    std::string_view name) {
  for (const auto& [m, text] : kModes) {
    if (name == text) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown compatibility \"", absl::string_view(name.data(), name.size()),
      "\": one of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, "
      "FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"));
}

std::string CompatibilityResult::ToString() const {
  if (compatible) return "compatible";
  std::vector<std::string> lines;
  for (const CompatibilityIssue& i : issues) {
    lines.push_back(absl::StrCat(i.path, ": ", i.reason));
  }
  return absl::StrJoin(lines, "\n");
}

CompatibilityResult CheckCompatibilityModes(
    size_t previous_count, SchemaCompatibility mode,
    const std::function<CompatibilityResult(size_t i, bool candidate_reads)>&
        can_read) {
  CompatibilityResult out;
  if (previous_count == 0 || mode == SchemaCompatibility::kNone) return out;
  const bool transitive = mode == SchemaCompatibility::kBackwardTransitive ||
                          mode == SchemaCompatibility::kForwardTransitive ||
                          mode == SchemaCompatibility::kFullTransitive;
  const bool backward = mode != SchemaCompatibility::kForward &&
                        mode != SchemaCompatibility::kForwardTransitive;
  const bool forward = mode != SchemaCompatibility::kBackward &&
                       mode != SchemaCompatibility::kBackwardTransitive;
  for (size_t i = transitive ? 0 : previous_count - 1; i < previous_count;
       ++i) {
    const std::string version = i + 1 == previous_count
                                    ? "the latest version"
                                    : absl::StrCat("version ", i + 1);
    auto add = [&](CompatibilityResult r, const std::string& direction) {
      if (r.compatible) return;
      out.compatible = false;
      for (CompatibilityIssue& issue : r.issues) {
        issue.reason = absl::StrCat(issue.reason, " (", direction, ")");
        out.issues.push_back(std::move(issue));
      }
    };
    if (backward) {
      add(can_read(i, true),
          absl::StrCat("the new schema reading data of ", version));
    }
    if (forward) {
      add(can_read(i, false),
          absl::StrCat(version, " reading data of the new schema"));
    }
  }
  return out;
}

}  // namespace weir
