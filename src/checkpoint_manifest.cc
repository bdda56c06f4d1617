#include "weir/checkpoint_manifest.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "weir/internal/checkpoint_names.h"
#include "weir/internal/crc32c.h"
#include "weir/internal/json_reader.h"
#include "weir/internal/json_string.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

bool IsFileNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '-';
}

// A plain file name: [A-Za-z0-9._-]{1,255}, not "." or "..".
absl::Status ValidateFileName(std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return absl::InvalidArgumentError("file name must have 1 to 255 bytes");
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError("file name must not be . or ..");
  }
  for (char c : name) {
    if (!IsFileNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file name '", Sv(name), "' has a character outside [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

std::string Hex8(uint32_t v) { return absl::StrFormat("%08x", v); }

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace internal

namespace {

using internal::AllDigits;
using internal::Hex8;
using internal::IsFileNameChar;
using internal::Sv;
using internal::ValidateFileName;

constexpr char kManifestMagic[] = "weir-checkpoint-manifest";
constexpr size_t kMaxHeaderBytes = 128;
constexpr int kMaxJsonDepth = 8;

// Parses exactly 8 lowercase hex digits.
bool ParseHex8(std::string_view s, uint32_t* out) {
  if (s.size() != 8) return false;
  uint32_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}

// ---- JSON: the writer -------------------------------------------------------

// Manifests escape DEL too, so every byte below 0x80 in them is printable.
std::string JsonString(std::string_view s) {
  std::string out;
  internal::AppendJsonString(s, &out, {.escape_del = true});
  return out;
}

// ---- JSON: the reader ------------------------------------------------------
//
// Manifests are read strictly (internal/json_reader.h): integers only,
// nesting limited, duplicate object keys refused; every error is a kDataLoss
// naming what is wrong, so arbitrary input yields a clear error and never a
// crash.

using internal::JsonValue;

absl::StatusOr<JsonValue> ReadManifestBody(std::string_view body) {
  absl::StatusOr<JsonValue> root =
      internal::ReadJson(body, {.max_depth = kMaxJsonDepth,
                                .allow_duplicate_members = false,
                                .integers_only = true});
  if (!root.ok()) {
    return absl::DataLossError(
        absl::StrCat("manifest body: ", root.status().message()));
  }
  return root;
}

// ---- Reading manifest fields
// -------------------------------------------------

absl::Status FieldError(std::string_view field, std::string_view what) {
  return absl::DataLossError(
      absl::StrCat("manifest field \"", Sv(field), "\": ", Sv(what)));
}

absl::StatusOr<const JsonValue*> Member(const JsonValue& obj,
                                        std::string_view field) {
  const JsonValue* v = obj.Find(field);
  if (v == nullptr) return FieldError(field, "missing");
  return v;
}

absl::StatusOr<std::string> StringField(const JsonValue& obj,
                                        std::string_view field) {
  WEIR_ASSIGN_OR_RETURN(const JsonValue* v, Member(obj, field));
  if (v->type != JsonValue::Type::kString) {
    return FieldError(field, "not a string");
  }
  return v->text;
}

absl::StatusOr<int64_t> Int64Of(const JsonValue& v, std::string_view field) {
  int64_t out;
  if (v.type != JsonValue::Type::kNumber || !absl::SimpleAtoi(v.text, &out)) {
    return FieldError(field, "not a 64-bit integer");
  }
  return out;
}

absl::StatusOr<int64_t> Int64Field(const JsonValue& obj,
                                   std::string_view field) {
  WEIR_ASSIGN_OR_RETURN(const JsonValue* v, Member(obj, field));
  return Int64Of(*v, field);
}

absl::StatusOr<uint64_t> Uint64Field(const JsonValue& obj,
                                     std::string_view field) {
  WEIR_ASSIGN_OR_RETURN(const JsonValue* v, Member(obj, field));
  uint64_t out;
  if (v->type != JsonValue::Type::kNumber || v->text[0] == '-' ||
      !absl::SimpleAtoi(v->text, &out)) {
    return FieldError(field, "not an unsigned 64-bit integer");
  }
  return out;
}

absl::StatusOr<int32_t> Int32Field(const JsonValue& obj,
                                   std::string_view field) {
  WEIR_ASSIGN_OR_RETURN(int64_t v, Int64Field(obj, field));
  if (v < INT32_MIN || v > INT32_MAX) {
    return FieldError(field, "out of the 32-bit range");
  }
  return static_cast<int32_t>(v);
}

absl::StatusOr<CheckpointManifest> ManifestFromJson(const JsonValue& root) {
  if (root.type != JsonValue::Type::kObject) {
    return absl::DataLossError("manifest body is not a JSON object");
  }
  CheckpointManifest m;
  CheckpointMetadata& md = m.metadata;
  WEIR_ASSIGN_OR_RETURN(md.pipeline, StringField(root, "pipeline"));
  WEIR_ASSIGN_OR_RETURN(md.pipeline_version,
                        StringField(root, "pipeline_version"));
  WEIR_ASSIGN_OR_RETURN(md.operator_name, StringField(root, "operator"));
  WEIR_ASSIGN_OR_RETURN(md.partition, Int32Field(root, "partition"));
  WEIR_ASSIGN_OR_RETURN(md.checkpoint_id, Uint64Field(root, "checkpoint_id"));

  WEIR_ASSIGN_OR_RETURN(const JsonValue* savepoint, Member(root, "savepoint"));
  if (savepoint->type == JsonValue::Type::kString) {
    if (!ValidateSavepointName(savepoint->text).ok()) {
      return FieldError("savepoint", "not a valid savepoint name");
    }
    m.savepoint_name = savepoint->text;
  } else if (savepoint->type != JsonValue::Type::kNull) {
    return FieldError("savepoint", "not a string or null");
  }

  WEIR_ASSIGN_OR_RETURN(std::string created, StringField(root, "created"));
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, created, &m.created, &err) ||
      m.created == absl::InfinitePast() ||
      m.created == absl::InfiniteFuture()) {
    return FieldError("created", absl::StrCat("not an RFC 3339 time: ", err));
  }

  WEIR_ASSIGN_OR_RETURN(const JsonValue* watermark, Member(root, "watermark"));
  if (watermark->type != JsonValue::Type::kNull) {
    WEIR_ASSIGN_OR_RETURN(md.watermark, Int64Of(*watermark, "watermark"));
  }

  WEIR_ASSIGN_OR_RETURN(const JsonValue* offsets,
                        Member(root, "source_offsets"));
  if (offsets->type != JsonValue::Type::kArray) {
    return FieldError("source_offsets", "not an array");
  }
  for (const JsonValue& o : offsets->items) {
    if (o.type != JsonValue::Type::kObject) {
      return FieldError("source_offsets", "an entry is not an object");
    }
    SourceOffset so;
    WEIR_ASSIGN_OR_RETURN(so.topic, StringField(o, "topic"));
    WEIR_ASSIGN_OR_RETURN(so.partition, Int32Field(o, "partition"));
    WEIR_ASSIGN_OR_RETURN(so.offset, Int64Field(o, "offset"));
    md.source_offsets.push_back(std::move(so));
  }

  WEIR_ASSIGN_OR_RETURN(const JsonValue* user, Member(root, "user_metadata"));
  if (user->type != JsonValue::Type::kObject) {
    return FieldError("user_metadata", "not an object");
  }
  for (const auto& [k, v] : user->members) {
    if (v.type != JsonValue::Type::kString) {
      return FieldError("user_metadata", "a value is not a string");
    }
    md.user_metadata.emplace(k, v.text);
  }

  WEIR_ASSIGN_OR_RETURN(const JsonValue* files, Member(root, "files"));
  if (files->type != JsonValue::Type::kArray) {
    return FieldError("files", "not an array");
  }
  for (const JsonValue& f : files->items) {
    if (f.type != JsonValue::Type::kObject) {
      return FieldError("files", "an entry is not an object");
    }
    ManifestFile mf;
    WEIR_ASSIGN_OR_RETURN(mf.name, StringField(f, "name"));
    if (absl::Status s = ValidateFileName(mf.name); !s.ok()) {
      return FieldError("files", std::string(s.message()));
    }
    WEIR_ASSIGN_OR_RETURN(mf.object_key, StringField(f, "key"));
    WEIR_ASSIGN_OR_RETURN(mf.size, Uint64Field(f, "size"));
    WEIR_ASSIGN_OR_RETURN(std::string crc, StringField(f, "crc32c"));
    if (!ParseHex8(crc, &mf.crc32c)) {
      return FieldError("files", "crc32c is not 8 lowercase hex digits");
    }
    if (mf.object_key != FileObjectKey(mf.crc32c, mf.size, mf.name)) {
      return FieldError("files", absl::StrCat("key of ", mf.name,
                                              " is not its content address"));
    }
    m.files.push_back(std::move(mf));
  }
  std::sort(m.files.begin(), m.files.end(),
            [](const ManifestFile& a, const ManifestFile& b) {
              return a.name < b.name;
            });
  for (size_t i = 1; i < m.files.size(); ++i) {
    if (m.files[i].name == m.files[i - 1].name) {
      return FieldError("files",
                        absl::StrCat("duplicate file ", m.files[i].name));
    }
  }
  return m;
}

}  // namespace

// ---- Manifests --------------------------------------------------------------

uint64_t CheckpointManifest::total_bytes() const {
  uint64_t total = 0;
  for (const ManifestFile& f : files) total += f.size;
  return total;
}

std::string FileObjectKey(uint32_t crc32c, uint64_t size,
                          std::string_view name) {
  return absl::StrCat("files/", Hex8(crc32c), "-", size, "-", Sv(name));
}

absl::Status ValidateSavepointName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        "savepoint name must have 1 to 128 characters");
  }
  if (name[0] == '.') {
    return absl::InvalidArgumentError(
        absl::StrCat("savepoint name '", Sv(name), "' starts with '.'"));
  }
  for (char c : name) {
    if (!IsFileNameChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("savepoint name '", Sv(name),
                       "' has a character outside [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

std::string CheckpointPrefix(std::string_view pipeline, int32_t partition) {
  return absl::StrCat(Sv(pipeline), "/p", partition);
}

std::string SerializeManifest(const CheckpointManifest& m) {
  const CheckpointMetadata& md = m.metadata;
  std::string body = "{\n";
  absl::StrAppend(&body, "  \"pipeline\": ", JsonString(md.pipeline), ",\n");
  absl::StrAppend(&body,
                  "  \"pipeline_version\": ", JsonString(md.pipeline_version),
                  ",\n");
  absl::StrAppend(&body, "  \"operator\": ", JsonString(md.operator_name),
                  ",\n");
  absl::StrAppend(&body, "  \"partition\": ", md.partition, ",\n");
  absl::StrAppend(&body, "  \"checkpoint_id\": ", md.checkpoint_id, ",\n");
  absl::StrAppend(
      &body, "  \"savepoint\": ",
      m.savepoint_name.has_value() ? JsonString(*m.savepoint_name) : "null",
      ",\n");
  absl::StrAppend(
      &body, "  \"created\": \"",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", m.created, absl::UTCTimeZone()),
      "\",\n");
  absl::StrAppend(&body, "  \"watermark\": ",
                  md.watermark.has_value() ? absl::StrCat(*md.watermark)
                                           : std::string("null"),
                  ",\n");
  body += "  \"source_offsets\": [";
  for (size_t i = 0; i < md.source_offsets.size(); ++i) {
    const SourceOffset& o = md.source_offsets[i];
    absl::StrAppend(
        &body, i == 0 ? "\n" : ",\n", "    {\"topic\": ", JsonString(o.topic),
        ", \"partition\": ", o.partition, ", \"offset\": ", o.offset, "}");
  }
  body += md.source_offsets.empty() ? "],\n" : "\n  ],\n";
  body += "  \"files\": [";
  std::vector<const ManifestFile*> files;
  for (const ManifestFile& f : m.files) files.push_back(&f);
  std::sort(files.begin(), files.end(),
            [](const ManifestFile* a, const ManifestFile* b) {
              return a->name < b->name;
            });
  for (size_t i = 0; i < files.size(); ++i) {
    const ManifestFile& f = *files[i];
    absl::StrAppend(&body, i == 0 ? "\n" : ",\n",
                    "    {\"name\": ", JsonString(f.name),
                    ", \"size\": ", f.size, ", \"crc32c\": \"", Hex8(f.crc32c),
                    "\", \"key\": ", JsonString(f.object_key), "}");
  }
  body += files.empty() ? "],\n" : "\n  ],\n";
  body += "  \"user_metadata\": {";
  bool first = true;
  for (const auto& [k, v] : md.user_metadata) {
    absl::StrAppend(&body, first ? "\n" : ",\n", "    ", JsonString(k), ": ",
                    JsonString(v));
    first = false;
  }
  body += md.user_metadata.empty() ? "}\n" : "\n  }\n";
  body += "}\n";
  return absl::StrCat(kManifestMagic, " ", kManifestFormatVersion,
                      " size=", body.size(),
                      " crc32c=", Hex8(internal::Crc32c(body)), "\n", body);
}

absl::StatusOr<CheckpointManifest> ParseManifest(std::string_view bytes) {
  const size_t newline = bytes.substr(0, kMaxHeaderBytes).find('\n');
  if (newline == std::string_view::npos) {
    return absl::DataLossError(
        bytes.size() < kMaxHeaderBytes
            ? "manifest truncated: no complete header line"
            : "not a weir checkpoint manifest: no header line");
  }
  const std::string_view header = bytes.substr(0, newline);
  const std::string_view body = bytes.substr(newline + 1);
  // "weir-checkpoint-manifest <version> size=<n> crc32c=<8 hex>"
  std::vector<std::string_view> parts;
  for (size_t start = 0; start <= header.size();) {
    size_t space = header.find(' ', start);
    if (space == std::string_view::npos) space = header.size();
    parts.push_back(header.substr(start, space - start));
    start = space + 1;
  }
  if (parts.empty() || parts[0] != kManifestMagic) {
    return absl::DataLossError(
        "not a weir checkpoint manifest: bad header line");
  }
  int version = 0;
  if (parts.size() < 2 || !AllDigits(parts[1]) || parts[1].size() > 6 ||
      !absl::SimpleAtoi(Sv(parts[1]), &version)) {
    return absl::DataLossError("manifest header: bad format version");
  }
  if (version != kManifestFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("manifest format version ", version,
                     " is not supported (this weir "
                     "reads version ",
                     kManifestFormatVersion, ")"));
  }
  uint64_t size = 0;
  uint32_t crc = 0;
  if (parts.size() != 4 || !absl::StartsWith(Sv(parts[2]), "size=") ||
      !AllDigits(parts[2].substr(5)) || parts[2].size() > 25 ||
      !absl::SimpleAtoi(Sv(parts[2].substr(5)), &size) ||
      !absl::StartsWith(Sv(parts[3]), "crc32c=") ||
      !ParseHex8(parts[3].substr(7), &crc)) {
    return absl::DataLossError("manifest header: malformed size or crc32c");
  }
  if (body.size() < size) {
    return absl::DataLossError(absl::StrCat(
        "manifest truncated: body has ", body.size(), " of ", size, " bytes"));
  }
  if (body.size() > size) {
    return absl::DataLossError(absl::StrCat("manifest has ", body.size() - size,
                                            " bytes after its body"));
  }
  const uint32_t actual = internal::Crc32c(body);
  if (actual != crc) {
    return absl::DataLossError(
        absl::StrCat("manifest checksum mismatch: crc32c ", Hex8(actual),
                     ", header says ", Hex8(crc)));
  }
  WEIR_ASSIGN_OR_RETURN(const JsonValue root, ReadManifestBody(body));
  return ManifestFromJson(root);
}

}  // namespace weir
