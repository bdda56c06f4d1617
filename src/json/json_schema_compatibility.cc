// Implementation of weir/json/json_schema_compatibility.h.

#include "weir/json/json_schema_compatibility.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace weir {

namespace {

std::string TypeText(const JsonField& f) {
  if (f.type == JsonType::kDecimal) {
    return absl::StrCat("decimal(", f.scale, ")");
  }
  return JsonTypeName(f.type);
}

// Whether a reader field of `r`'s type decodes every value the writer's
// field `w` may hold.
bool TypeReads(const JsonField& r, const JsonField& w) {
  if (r.type == w.type) {
    return r.type != JsonType::kDecimal || w.scale <= r.scale;
  }
  switch (r.type) {
    case JsonType::kDouble:
      return w.type == JsonType::kInt64 || w.type == JsonType::kDecimal;
    case JsonType::kDecimal:
      return w.type == JsonType::kInt64;
    default:
      return false;
  }
}

}  // namespace

CompatibilityResult CanReadJson(const JsonSchema& reader,
                                const JsonSchema& writer) {
  CompatibilityResult out;
  auto fail = [&](std::string path, std::string reason) {
    out.compatible = false;
    out.issues.push_back({std::move(path), std::move(reason)});
  };
  const std::string& name = reader.name;
  if (reader.key_field != writer.key_field) {
    fail(absl::StrCat(name, ".", reader.key_field),
         absl::StrCat("the reader's key field is not the writer's (",
                      writer.key_field, ")"));
  }
  if (reader.event_time_source != writer.event_time_source ||
      reader.event_time_field != writer.event_time_field ||
      (reader.event_time_source == EventTimeSource::kField &&
       reader.event_time_type != writer.event_time_type)) {
    fail(absl::StrCat(name, ".", reader.event_time_field),
         "the reader takes the event time from another field, source or unit "
         "than the writer");
  }
  for (const JsonField& rf : reader.fields) {
    const std::string path = absl::StrCat(name, ".", rf.name);
    const JsonField* wf = nullptr;
    for (const JsonField& f : writer.fields) {
      if (f.name == rf.name) wf = &f;
    }
    if (wf == nullptr) {
      if (rf.required) {
        fail(path,
             "the reader requires the field and the writer does not write it");
      }
      continue;
    }
    if (rf.required && !wf->required) {
      fail(path, "the writer may leave the field out; the reader requires it");
    }
    if (!TypeReads(rf, *wf)) {
      fail(path, absl::StrCat("a reader of type ", TypeText(rf),
                              " cannot read the writer's ", TypeText(*wf)));
    }
  }
  return out;
}

CompatibilityResult CheckJsonSchemaCompatibility(
    const JsonSchema& candidate, absl::Span<const JsonSchema> previous,
    SchemaCompatibility mode) {
  return CheckCompatibilityModes(
      previous.size(), mode, [&](size_t i, bool candidate_reads) {
        return candidate_reads ? CanReadJson(candidate, previous[i])
                               : CanReadJson(previous[i], candidate);
      });
}

}  // namespace weir
