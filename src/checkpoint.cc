#include "weir/checkpoint.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "weir/internal/crc32c.h"
#include "weir/internal/json_reader.h"
#include "weir/internal/json_string.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

constexpr char kManifestMagic[] = "weir-checkpoint-manifest";
constexpr char kManifestSuffix[] = ".manifest";
constexpr size_t kMaxHeaderBytes = 128;
constexpr int kMaxJsonDepth = 8;
constexpr size_t kReadChunk = size_t{1} << 20;

using internal::Sv;

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

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
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

// ---- Local files
// ---------------------------------------------------------------

struct SizeAndCrc {
  uint64_t size = 0;
  uint32_t crc = 0;
};

// Reads `path` once: its size and CRC-32C.
absl::StatusOr<SizeAndCrc> ChecksumFile(Env* env, const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> in,
                        env->NewReadableFile(path));
  std::string buf(kReadChunk, '\0');
  SizeAndCrc out;
  while (true) {
    WEIR_ASSIGN_OR_RETURN(const size_t n, in->Read(buf.data(), buf.size()));
    if (n == 0) return out;
    out.size += n;
    out.crc = internal::Crc32cExtend(out.crc, std::string_view(buf.data(), n));
  }
}

std::string ParentDir(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.parent_path().string();
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

// ---- PublishControl ---------------------------------------------------------

bool PublishControl::PastDeadline() const {
  return clock_ != nullptr && clock_->Now() >= deadline_;
}

bool PublishControl::Abandon() {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kCommitting) return false;
  state_ = State::kAbandoned;
  return true;
}

bool PublishControl::abandoned() {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kRunning && PastDeadline()) state_ = State::kAbandoned;
  return state_ == State::kAbandoned;
}

bool PublishControl::BeginCommit() {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kRunning && PastDeadline()) state_ = State::kAbandoned;
  if (state_ == State::kAbandoned) return false;
  state_ = State::kCommitting;
  return true;
}

bool PublishControl::committing() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kCommitting;
}

// ---- CheckpointStore
// ----------------------------------------------------------

absl::Status CheckpointStoreOptions::Validate() const {
  if (prefix.empty()) {
    return absl::InvalidArgumentError("CheckpointStoreOptions.prefix is unset");
  }
  if (absl::Status s = ValidateObjectKey(prefix); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CheckpointStoreOptions.prefix: ", s.message()));
  }
  if (scratch_dir.has_value() && scratch_dir->empty()) {
    return absl::InvalidArgumentError(
        "CheckpointStoreOptions.scratch_dir is set but empty");
  }
  if (env == nullptr) {
    return absl::InvalidArgumentError(
        "CheckpointStoreOptions.env must not be null");
  }
  return absl::OkStatus();
}

struct CheckpointStore::LocalFile {
  std::string name;
  std::string path;
  uint64_t size = 0;
  uint32_t crc = 0;
  bool sst = false;
};

CheckpointStore::CheckpointStore(ObjectStore* store,
                                 CheckpointStoreOptions options)
    : store_(store), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Create(
    ObjectStore* store, CheckpointStoreOptions options) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("CheckpointStore: store is null");
  }
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (!options.logger) {
    options.logger = [](std::string_view line) {
      std::fprintf(stderr, "weir checkpoint: %.*s\n",
                   static_cast<int>(line.size()), line.data());
    };
  }
  return std::unique_ptr<CheckpointStore>(
      new CheckpointStore(store, std::move(options)));
}

void CheckpointStore::Log(const std::string& line) const {
  options_.logger(line);
}

std::string CheckpointStore::CheckpointKey(uint64_t id) const {
  return absl::StrFormat("%s/checkpoints/%020u%s", options_.prefix, id,
                         kManifestSuffix);
}

std::string CheckpointStore::SavepointKey(std::string_view name) const {
  return absl::StrCat(options_.prefix, "/savepoints/", Sv(name),
                      kManifestSuffix);
}

std::string CheckpointStore::FileKey(const ManifestFile& file) const {
  return absl::StrCat(options_.prefix, "/", file.object_key);
}

CheckpointStoreStats CheckpointStore::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

absl::Status CheckpointStore::LoadKnownFilesLocked() {
  if (known_loaded_) return absl::OkStatus();
  const std::string list_prefix = absl::StrCat(options_.prefix, "/files/");
  WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                        store_->List(list_prefix));
  known_files_.clear();
  for (const ObjectInfo& o : objects) {
    // Count an object as held only if its size is the one its name says.
    std::string_view rest(o.key);
    rest.remove_prefix(list_prefix.size());
    if (rest.size() < 10 || rest[8] != '-') continue;
    rest.remove_prefix(9);
    const size_t dash = rest.find('-');
    uint64_t size;
    if (dash == std::string_view::npos ||
        !absl::SimpleAtoi(Sv(rest.substr(0, dash)), &size) || size != o.size) {
      continue;
    }
    known_files_[o.key.substr(options_.prefix.size() + 1)] = o.size;
  }
  known_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CheckpointStore::LocalFile>>
CheckpointStore::ScanLocalDir(const std::string& dir) {
  Env* const env = options_.env;
  WEIR_ASSIGN_OR_RETURN(const std::vector<std::string> names,
                        env->ListDirectory(dir));
  std::vector<LocalFile> files;
  absl::flat_hash_map<std::string, uint32_t> seen_crcs;
  for (const std::string& name : names) {
    LocalFile f;
    f.name = name;
    f.path = absl::StrCat(dir, "/", name);
    WEIR_ASSIGN_OR_RETURN(const FileStat st, env->Stat(f.path));
    if (st.type != FileType::kRegular) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint directory ", dir, " holds ", name,
                       ", which is not a regular file"));
    }
    if (absl::Status s = ValidateFileName(name); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint directory ", dir, ": ", s.message()));
    }
    f.sst = absl::EndsWith(name, ".sst");
    // SST files are immutable and hard-linked from one checkpoint to the
    // next: the same inode with the same size and mtime is the same bytes.
    const std::string identity =
        absl::StrCat(st.device, ":", st.inode, ":", st.size, ":",
                     absl::ToUnixNanos(st.modified), ":", name);
    auto cached = crc_cache_.find(identity);
    if (f.sst && cached != crc_cache_.end()) {
      f.size = st.size;
      f.crc = cached->second;
    } else {
      WEIR_ASSIGN_OR_RETURN(const SizeAndCrc sc, ChecksumFile(env, f.path));
      f.size = sc.size;
      f.crc = sc.crc;
    }
    if (f.sst && st.size == f.size) seen_crcs[identity] = f.crc;
    files.push_back(std::move(f));
  }
  crc_cache_ = std::move(seen_crcs);
  // SST files first (the bulk), then the small files, each by name.
  std::sort(files.begin(), files.end(),
            [](const LocalFile& a, const LocalFile& b) {
              if (a.sst != b.sst) return a.sst;
              return a.name < b.name;
            });
  return files;
}

absl::StatusOr<PublishResult> CheckpointStore::Publish(
    const std::string& local_dir, const CheckpointMetadata& metadata,
    PublishControl* control) {
  const uint64_t id = metadata.checkpoint_id;
  absl::MutexLock op_lock(&op_mu_);
  const absl::Time start = absl::Now();
  const std::string manifest_key = CheckpointKey(id);
  WEIR_ASSIGN_OR_RETURN(bool exists, store_->Exists(manifest_key));
  if (exists) {
    return absl::AlreadyExistsError(absl::StrCat(
        "checkpoint ", id, " is already published under ", options_.prefix));
  }
  WEIR_RETURN_IF_ERROR(LoadKnownFilesLocked());
  WEIR_ASSIGN_OR_RETURN(std::vector<LocalFile> files, ScanLocalDir(local_dir));
  PublishResult result;
  const absl::Time scanned = absl::Now();
  result.scan_time = scanned - start;

  options_.env->ReachedStep("before_upload");
  auto abandoned_error = [&] {
    return absl::CancelledError(absl::StrCat(
        "checkpoint ", id, " abandoned before its manifest was written"));
  };
  CheckpointManifest& manifest = result.manifest;
  manifest.metadata = metadata;
  for (const LocalFile& f : files) {
    if (control != nullptr && control->abandoned()) return abandoned_error();
    ManifestFile mf;
    mf.name = f.name;
    mf.size = f.size;
    mf.crc32c = f.crc;
    mf.object_key = FileObjectKey(f.crc, f.size, f.name);
    if (known_files_.contains(mf.object_key)) {
      ++result.files_reused;
      result.bytes_reused += f.size;
    } else {
      WEIR_RETURN_IF_ERROR(store_->PutFile(FileKey(mf), f.path));
      known_files_[mf.object_key] = f.size;
      ++result.files_uploaded;
      result.bytes_uploaded += f.size;
      if (result.files_uploaded == 1) options_.env->ReachedStep("mid_upload");
    }
    manifest.files.push_back(std::move(mf));
  }
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const ManifestFile& a, const ManifestFile& b) {
              return a.name < b.name;
            });
  const absl::Time uploaded = absl::Now();
  result.upload_time = uploaded - scanned;
  options_.env->ReachedStep("after_upload");

  if (control != nullptr && !control->BeginCommit()) return abandoned_error();
  manifest.created = absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
  WEIR_RETURN_IF_ERROR(store_->Put(manifest_key, SerializeManifest(manifest)));
  options_.env->ReachedStep("after_manifest");
  result.manifest_time = absl::Now() - uploaded;
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.checkpoints_published;
    stats_.files_uploaded += result.files_uploaded;
    stats_.bytes_uploaded += result.bytes_uploaded;
    stats_.files_reused += result.files_reused;
  }
  return result;
}

absl::StatusOr<std::vector<uint64_t>> CheckpointStore::ListCheckpoints() {
  const std::string list_prefix =
      absl::StrCat(options_.prefix, "/checkpoints/");
  WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                        store_->List(list_prefix));
  std::vector<uint64_t> ids;
  for (const ObjectInfo& o : objects) {
    std::string_view rest(o.key);
    rest.remove_prefix(list_prefix.size());
    uint64_t id;
    if (rest.size() != 20 + std::strlen(kManifestSuffix) ||
        !absl::EndsWith(Sv(rest), kManifestSuffix) ||
        !AllDigits(rest.substr(0, 20)) ||
        !absl::SimpleAtoi(Sv(rest.substr(0, 20)), &id)) {
      continue;
    }
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::StatusOr<std::vector<std::string>> CheckpointStore::ListSavepoints() {
  const std::string list_prefix = absl::StrCat(options_.prefix, "/savepoints/");
  WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                        store_->List(list_prefix));
  std::vector<std::string> names;
  for (const ObjectInfo& o : objects) {
    std::string_view rest(o.key);
    rest.remove_prefix(list_prefix.size());
    if (!absl::EndsWith(Sv(rest), kManifestSuffix)) continue;
    rest.remove_suffix(std::strlen(kManifestSuffix));
    if (!ValidateSavepointName(rest).ok()) continue;
    names.emplace_back(rest);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<uint64_t> CheckpointStore::NextCheckpointId() {
  WEIR_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ListCheckpoints());
  return ids.empty() ? 1 : ids.back() + 1;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::ReadManifestKey(
    const std::string& key) {
  WEIR_ASSIGN_OR_RETURN(std::string bytes, store_->Get(key));
  absl::StatusOr<CheckpointManifest> m = ParseManifest(bytes);
  if (!m.ok()) {
    return absl::Status(m.status().code(),
                        absl::StrCat(key, ": ", m.status().message()));
  }
  return m;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::ReadCheckpoint(
    uint64_t id) {
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        ReadManifestKey(CheckpointKey(id)));
  if (m.metadata.checkpoint_id != id) {
    return absl::DataLossError(absl::StrCat(CheckpointKey(id),
                                            ": manifest says checkpoint ",
                                            m.metadata.checkpoint_id));
  }
  return m;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::ReadSavepoint(
    std::string_view name) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        ReadManifestKey(SavepointKey(name)));
  if (m.savepoint_name != std::string(name)) {
    return absl::DataLossError(
        absl::StrCat(SavepointKey(name), ": manifest names another savepoint"));
  }
  return m;
}

absl::StatusOr<VerifyReport> CheckpointStore::Verify(
    const CheckpointManifest& manifest) {
  std::string base = options_.scratch_dir.value_or("");
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  Env* const env = options_.env;
  const std::string scratch =
      absl::StrCat(base, "/weir-verify-", getpid(), "-",
                   absl::Hex(absl::Uniform<uint64_t>(absl::BitGen())));
  WEIR_RETURN_IF_ERROR(env->CreateDirectory(scratch));
  VerifyReport report;
  absl::Status status;
  for (const ManifestFile& f : manifest.files) {
    const std::string local = absl::StrCat(scratch, "/", f.name);
    const std::string key = FileKey(f);
    absl::Status got = store_->GetFile(key, local);
    if (absl::IsNotFound(got)) {
      report.problems.push_back(
          {f.name, absl::NotFoundError(absl::StrCat(key, " is missing"))});
      continue;
    }
    if (!got.ok()) {
      status = got;
      break;
    }
    absl::StatusOr<SizeAndCrc> sc = ChecksumFile(env, local);
    RemoveTree(env, local).IgnoreError();
    if (!sc.ok()) {
      status = sc.status();
      break;
    }
    ++report.files_checked;
    report.bytes_checked += sc->size;
    if (sc->size != f.size) {
      report.problems.push_back(
          {f.name, absl::DataLossError(absl::StrCat(
                       key, " has ", sc->size, " bytes, expected ", f.size))});
    } else if (sc->crc != f.crc32c) {
      report.problems.push_back({f.name, absl::DataLossError(absl::StrCat(
                                             key, " has crc32c ", Hex8(sc->crc),
                                             ", expected ", Hex8(f.crc32c)))});
    }
  }
  RemoveTree(env, scratch).IgnoreError();
  WEIR_RETURN_IF_ERROR(status);
  return report;
}

absl::Status CheckpointStore::DownloadVerified(
    const CheckpointManifest& manifest, const std::string& dir) {
  Env* const env = options_.env;
  const std::string staging = absl::StrCat(dir, ".restoring");
  WEIR_RETURN_IF_ERROR(RemoveTree(env, staging));
  WEIR_RETURN_IF_ERROR(CreateDirectories(env, staging));
  auto fetch_all = [&]() -> absl::Status {
    for (const ManifestFile& f : manifest.files) {
      const std::string local = absl::StrCat(staging, "/", f.name);
      const std::string key = FileKey(f);
      absl::Status got = store_->GetFile(key, local);
      if (absl::IsNotFound(got)) {
        return absl::NotFoundError(
            absl::StrCat("file ", f.name, " (", key, ") is missing"));
      }
      WEIR_RETURN_IF_ERROR(got);
      WEIR_ASSIGN_OR_RETURN(SizeAndCrc sc, ChecksumFile(env, local));
      if (sc.size != f.size) {
        return absl::DataLossError(absl::StrCat("file ", f.name, " (", key,
                                                ") has ", sc.size,
                                                " bytes, expected ", f.size));
      }
      if (sc.crc != f.crc32c) {
        return absl::DataLossError(absl::StrCat("file ", f.name, " (", key,
                                                ") has crc32c ", Hex8(sc.crc),
                                                ", expected ", Hex8(f.crc32c)));
      }
    }
    return absl::OkStatus();
  };
  absl::Status status = fetch_all();
  if (status.ok()) status = env->Rename(staging, dir);
  if (!status.ok()) RemoveTree(env, staging).IgnoreError();
  return status;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreManifest(
    const std::string& what, const std::string& manifest_key,
    const std::string& local_dir) {
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m, ReadManifestKey(manifest_key));
  absl::Status s = DownloadVerified(m, local_dir);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  }
  return m;
}

namespace {

absl::Status CheckRestoreTarget(Env* env, const std::string& local_dir) {
  if (local_dir.empty()) {
    return absl::InvalidArgumentError("restore: empty local directory");
  }
  WEIR_ASSIGN_OR_RETURN(const bool exists, PathExists(env, local_dir));
  if (exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("restore target ", local_dir, " already exists"));
  }
  return CreateDirectories(env, ParentDir(local_dir));
}

}  // namespace

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreLatest(
    const std::string& local_dir) {
  WEIR_RETURN_IF_ERROR(CheckRestoreTarget(options_.env, local_dir));
  WEIR_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ListCheckpoints());
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    const uint64_t id = *it;
    absl::StatusOr<CheckpointManifest> m = RestoreManifest(
        absl::StrCat("checkpoint ", id), CheckpointKey(id), local_dir);
    if (m.ok() && m->metadata.checkpoint_id != id) {
      m = absl::DataLossError(absl::StrCat("checkpoint ", id,
                                           ": manifest says checkpoint ",
                                           m->metadata.checkpoint_id));
      RemoveTree(options_.env, local_dir).IgnoreError();
    }
    if (m.ok()) {
      absl::MutexLock lock(&stats_mu_);
      ++stats_.restores;
      return m;
    }
    if (!absl::IsDataLoss(m.status()) && !absl::IsNotFound(m.status())) {
      return m.status();
    }
    {
      absl::MutexLock lock(&stats_mu_);
      ++stats_.restore_fallbacks;
    }
    Log(absl::StrCat("restore of ", options_.prefix, ": skipping checkpoint ",
                     id, ": ", m.status().message()));
  }
  return absl::NotFoundError(absl::StrCat(
      "no valid checkpoint under ", options_.prefix, " in ", store_->uri()));
}

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreCheckpoint(
    uint64_t id, const std::string& local_dir) {
  WEIR_RETURN_IF_ERROR(CheckRestoreTarget(options_.env, local_dir));
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        RestoreManifest(absl::StrCat("checkpoint ", id),
                                        CheckpointKey(id), local_dir));
  absl::MutexLock lock(&stats_mu_);
  ++stats_.restores;
  return m;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreSavepoint(
    std::string_view name, const std::string& local_dir) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  WEIR_RETURN_IF_ERROR(CheckRestoreTarget(options_.env, local_dir));
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        RestoreManifest(absl::StrCat("savepoint ", Sv(name)),
                                        SavepointKey(name), local_dir));
  absl::MutexLock lock(&stats_mu_);
  ++stats_.restores;
  return m;
}

absl::Status CheckpointStore::Savepoint(std::string_view name,
                                        uint64_t checkpoint_id) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  absl::MutexLock op_lock(&op_mu_);
  const std::string key = SavepointKey(name);
  WEIR_ASSIGN_OR_RETURN(bool exists, store_->Exists(key));
  if (exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("savepoint ", Sv(name), " already exists"));
  }
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m, ReadCheckpoint(checkpoint_id));
  WEIR_ASSIGN_OR_RETURN(VerifyReport report, Verify(m));
  if (!report.ok()) {
    return absl::DataLossError(
        absl::StrCat("savepoint ", Sv(name), ": checkpoint ", checkpoint_id,
                     " does not verify: ", report.problems[0].error.message()));
  }
  m.savepoint_name = std::string(name);
  return store_->Put(key, SerializeManifest(m));
}

absl::Status CheckpointStore::DeleteSavepoint(std::string_view name) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  absl::MutexLock op_lock(&op_mu_);
  const std::string key = SavepointKey(name);
  WEIR_ASSIGN_OR_RETURN(bool exists, store_->Exists(key));
  if (!exists) {
    return absl::NotFoundError(absl::StrCat("no savepoint ", Sv(name)));
  }
  return store_->Delete(key);
}

absl::StatusOr<RetainResult> CheckpointStore::Retain(int n) {
  if (n < 1) {
    return absl::InvalidArgumentError("Retain: n must be at least 1");
  }
  absl::MutexLock op_lock(&op_mu_);
  RetainResult result;
  absl::flat_hash_set<std::string> referenced;
  // A manifest whose file list cannot be read (unknown version, corrupt
  // savepoint) makes collecting files unsafe.
  absl::Status collect_blocked;

  WEIR_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ListCheckpoints());
  std::vector<uint64_t> doomed;
  int valid = 0;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    if (valid >= n) {
      doomed.push_back(*it);
      continue;
    }
    absl::StatusOr<CheckpointManifest> m = ReadCheckpoint(*it);
    if (m.ok()) {
      ++valid;
      for (const ManifestFile& f : m->files) referenced.insert(f.object_key);
    } else if (absl::IsDataLoss(m.status())) {
      Log(absl::StrCat(
          "retain: checkpoint ", *it,
          " is corrupt and protects no files: ", m.status().message()));
    } else if (absl::IsFailedPrecondition(m.status())) {
      collect_blocked = m.status();
    } else if (!absl::IsNotFound(m.status())) {
      return m.status();
    }
  }
  WEIR_ASSIGN_OR_RETURN(std::vector<std::string> savepoints, ListSavepoints());
  for (const std::string& name : savepoints) {
    absl::StatusOr<CheckpointManifest> m = ReadSavepoint(name);
    if (m.ok()) {
      for (const ManifestFile& f : m->files) referenced.insert(f.object_key);
    } else if (absl::IsDataLoss(m.status()) ||
               absl::IsFailedPrecondition(m.status())) {
      collect_blocked = absl::Status(
          m.status().code(),
          absl::StrCat("savepoint ", name,
                       " cannot be read, so no files were collected: ",
                       m.status().message()));
    } else if (!absl::IsNotFound(m.status())) {
      return m.status();
    }
  }

  for (uint64_t id : doomed) {
    WEIR_RETURN_IF_ERROR(store_->Delete(CheckpointKey(id)));
    ++result.manifests_deleted;
  }
  if (collect_blocked.ok()) {
    const std::string files_prefix = absl::StrCat(options_.prefix, "/files/");
    WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                          store_->List(files_prefix));
    for (const ObjectInfo& o : objects) {
      const std::string rel = o.key.substr(options_.prefix.size() + 1);
      if (referenced.contains(rel)) continue;
      // Forget it first: if the delete fails half-way, the next Publish
      // uploads the file again instead of trusting it.
      known_files_.erase(rel);
      WEIR_RETURN_IF_ERROR(store_->Delete(o.key));
      ++result.files_deleted;
      result.bytes_deleted += o.size;
    }
  } else {
    Log(absl::StrCat("retain: ", collect_blocked.message()));
  }
  {
    absl::MutexLock lock(&stats_mu_);
    stats_.manifests_deleted += result.manifests_deleted;
    stats_.files_deleted += result.files_deleted;
  }
  WEIR_RETURN_IF_ERROR(collect_blocked);
  return result;
}

// ---- AsyncCheckpointer
// --------------------------------------------------------

absl::Status CheckpointerOptions::Validate() const {
  if (interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.interval must be positive");
  }
  if (min_pause < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.min_pause must not be negative");
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.timeout must be positive");
  }
  if (tolerated_failures < 0) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.tolerated_failures must not be negative");
  }
  if (retained < 1) {
    return absl::InvalidArgumentError(
        "CheckpointerOptions.retained must be at least 1");
  }
  if (clock == nullptr) {
    return absl::InvalidArgumentError("CheckpointerOptions.clock is null");
  }
  return absl::OkStatus();
}

// ---- UploadPool
// ---------------------------------------------------------------

UploadPool::UploadPool(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

UploadPool::~UploadPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void UploadPool::Enqueue(AsyncCheckpointer* c) {
  absl::MutexLock lock(&mu_);
  if (std::find(queue_.begin(), queue_.end(), c) == queue_.end()) {
    queue_.push_back(c);
  }
}

void UploadPool::Forget(AsyncCheckpointer* c) {
  absl::MutexLock lock(&mu_);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), c), queue_.end());
  auto not_running = [this, c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::find(running_.begin(), running_.end(), c) == running_.end();
  };
  mu_.Await(absl::Condition(&not_running));
}

void UploadPool::Run() {
  pthread_setname_np(pthread_self(), "weir-ckpt-upld");
  while (true) {
    AsyncCheckpointer* c;
    {
      absl::MutexLock lock(&mu_);
      // The first queued checkpointer no thread is running: its previous
      // job (retention included) may still run after its completion was
      // delivered, and one checkpointer's jobs never overlap.
      std::deque<AsyncCheckpointer*>::iterator next;
      auto ready = [this, &next]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stop_) return true;
        next = std::find_if(queue_.begin(), queue_.end(), [this](auto* q) {
          return std::find(running_.begin(), running_.end(), q) ==
                 running_.end();
        });
        return next != queue_.end();
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      c = *next;
      queue_.erase(next);
      running_.push_back(c);
    }
    c->RunPending();
    absl::MutexLock lock(&mu_);
    running_.erase(std::find(running_.begin(), running_.end(), c));
  }
}

// ---- AsyncCheckpointer
// --------------------------------------------------------

struct AsyncCheckpointer::Job {
  CheckpointRequest request;
  absl::Time submitted;
  std::shared_ptr<PublishControl> control;
  bool done = false;  // guarded by the checkpointer's mu_
  CheckpointCompletion completion;
};

AsyncCheckpointer::AsyncCheckpointer(CheckpointStore* store,
                                     const CheckpointerOptions& options)
    : store_(store), options_(options) {}

absl::StatusOr<std::unique_ptr<AsyncCheckpointer>> AsyncCheckpointer::Create(
    CheckpointStore* store, const CheckpointerOptions& options,
    UploadPool* pool) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("AsyncCheckpointer: store is null");
  }
  WEIR_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<AsyncCheckpointer> c(new AsyncCheckpointer(store, options));
  if (pool == nullptr) {
    c->own_pool_ = std::make_unique<UploadPool>();
    pool = c->own_pool_.get();
  }
  c->pool_ = pool;
  return c;
}

AsyncCheckpointer::~AsyncCheckpointer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (in_flight_ != nullptr) in_flight_->control->Abandon();
  }
  pool_->Forget(this);
  // The thread never reached the pending job.
  absl::MutexLock lock(&mu_);
  if (pending_ != nullptr && options_.remove_local_dir) {
    RemoveTree(store_->env(), pending_->request.local_dir).IgnoreError();
  }
}

absl::Status AsyncCheckpointer::Submit(CheckpointRequest request) {
  if (request.local_dir.empty()) {
    return absl::InvalidArgumentError("Submit: local_dir is empty");
  }
  if (request.savepoint_name.has_value()) {
    WEIR_RETURN_IF_ERROR(ValidateSavepointName(*request.savepoint_name));
  }
  auto job = std::make_shared<Job>();
  job->submitted = options_.clock->Now();
  job->control = std::make_shared<PublishControl>(
      options_.clock, job->submitted + options_.timeout);
  job->request = std::move(request);
  std::shared_ptr<Job> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return absl::FailedPreconditionError("checkpointer stopped");
    if (in_flight_ != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", in_flight_->request.metadata.checkpoint_id,
          " is still in flight; Poll() for its completion first"));
    }
    // A pending job the thread never reached was abandoned (it timed out
    // behind a stuck upload): drop it.
    dropped = std::move(pending_);
    in_flight_ = job;
    pending_ = job;
  }
  // A dropped job is still queued in the pool, which takes the new one in
  // its place.
  if (dropped == nullptr) pool_->Enqueue(this);
  if (dropped != nullptr && options_.remove_local_dir) {
    RemoveTree(store_->env(), dropped->request.local_dir).IgnoreError();
  }
  return absl::OkStatus();
}

std::optional<CheckpointCompletion> AsyncCheckpointer::Poll() {
  absl::MutexLock lock(&mu_);
  if (in_flight_ == nullptr) return std::nullopt;
  Job& job = *in_flight_;
  std::optional<CheckpointCompletion> out;
  if (job.done && !absl::IsCancelled(job.completion.status)) {
    out = std::move(job.completion);
  } else if (job.control->abandoned()) {
    CheckpointCompletion c;
    c.checkpoint_id = job.request.metadata.checkpoint_id;
    c.status = absl::DeadlineExceededError(absl::StrCat(
        "checkpoint ", c.checkpoint_id, " abandoned: not published within ",
        absl::FormatDuration(options_.timeout)));
    c.total_time = options_.clock->Now() - job.submitted;
    out = std::move(c);
  }
  if (out.has_value()) in_flight_ = nullptr;
  return out;
}

bool AsyncCheckpointer::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_ != nullptr;
}

bool AsyncCheckpointer::WaitForIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !busy_ && pending_ == nullptr;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

absl::Status AsyncCheckpointer::last_retain_status() const {
  absl::MutexLock lock(&mu_);
  return last_retain_status_;
}

void AsyncCheckpointer::RunPending() {
  std::shared_ptr<Job> job;
  {
    absl::MutexLock lock(&mu_);
    if (stop_ || pending_ == nullptr) return;
    job = std::move(pending_);
    busy_ = true;
  }
  RunJob(*job);
  absl::MutexLock lock(&mu_);
  busy_ = false;
}

void AsyncCheckpointer::RunJob(Job& job) {
  Clock* clock = options_.clock;
  CheckpointCompletion c;
  c.checkpoint_id = job.request.metadata.checkpoint_id;
  const absl::Time start = clock->Now();
  c.queue_time = start - job.submitted;
  absl::StatusOr<PublishResult> r =
      job.control->abandoned()
          ? absl::CancelledError("abandoned before its upload started")
          : store_->Publish(job.request.local_dir, job.request.metadata,
                            job.control.get());
  if (r.ok()) {
    c.files_uploaded = r->files_uploaded;
    c.bytes_uploaded = r->bytes_uploaded;
    c.files_reused = r->files_reused;
    c.bytes_reused = r->bytes_reused;
    c.scan_time = r->scan_time;
    c.upload_time = r->upload_time;
    c.manifest_time = r->manifest_time;
    c.manifest = std::move(r->manifest);
    if (job.request.savepoint_name.has_value()) {
      const absl::Time sp_start = absl::Now();
      c.status =
          store_->Savepoint(*job.request.savepoint_name, c.checkpoint_id);
      c.manifest_time += absl::Now() - sp_start;
    }
  } else {
    c.status = r.status();
  }
  if (options_.remove_local_dir) {
    RemoveTree(store_->env(), job.request.local_dir).IgnoreError();
  }
  c.total_time = clock->Now() - job.submitted;
  const bool published = c.manifest.has_value();
  {
    absl::MutexLock lock(&mu_);
    job.completion = std::move(c);
    job.done = true;
    if (stop_ || !published) return;
  }
  absl::Status retained = store_->Retain(options_.retained).status();
  absl::MutexLock lock(&mu_);
  last_retain_status_ = retained;
}

// ---- CheckpointScheduler
// ------------------------------------------------------

CheckpointScheduler::CheckpointScheduler(const CheckpointerOptions& options)
    : options_(options) {
  last_start_ = options_.clock->Now();
  next_due_ = last_start_ + options_.interval;
}

absl::StatusOr<CheckpointScheduler> CheckpointScheduler::Create(
    const CheckpointerOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  return CheckpointScheduler(options);
}

bool CheckpointScheduler::Due() const {
  return !in_flight_ && options_.clock->Now() >= next_due_;
}

absl::Time CheckpointScheduler::NextDue() const { return next_due_; }

void CheckpointScheduler::Started() {
  in_flight_ = true;
  last_start_ = options_.clock->Now();
}

absl::Status CheckpointScheduler::Completed(const absl::Status& status) {
  in_flight_ = false;
  const absl::Time now = options_.clock->Now();
  next_due_ =
      std::max(last_start_ + options_.interval, now + options_.min_pause);
  if (status.ok()) {
    consecutive_failures_ = 0;
    return absl::OkStatus();
  }
  ++consecutive_failures_;
  if (consecutive_failures_ <= options_.tolerated_failures) {
    return absl::OkStatus();
  }
  return absl::Status(
      status.code(),
      absl::StrCat("checkpoints failed ", consecutive_failures_,
                   " times in a row (tolerated: ", options_.tolerated_failures,
                   "); last error: ", status.message()));
}

}  // namespace weir
