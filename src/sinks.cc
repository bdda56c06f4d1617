#include "weir/sinks.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "weir/internal/json_reader.h"
#include "weir/internal/json_string.h"
#include "weir/internal/jsonl_file.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

using internal::Sv;

bool Less(const FeatureUpdate& a, const FeatureUpdate& b) {
  return a.key != b.key ? a.key < b.key : a.feature < b.feature;
}

// ---- writing JSON -----------------------------------------------------------

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  out->append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
}

// Keys and strings are expected to be UTF-8: bytes of 0x80 and above are
// copied as they are (the default JsonEscapeOptions).
void AppendValue(const Value& value, std::string* out) {
  switch (value.type()) {
    case Value::Type::kNull:
      out->append("null");
      return;
    case Value::Type::kBool:
      out->append(value.bool_value() ? "true" : "false");
      return;
    case Value::Type::kInt64:
      AppendInt(value.int64_value(), out);
      return;
    case Value::Type::kDecimal:
      out->append(value.ToString());
      return;
    case Value::Type::kDouble:
      if (!std::isfinite(value.double_value())) {
        internal::AppendJsonString(value.ToString(),
                                   out);  // "nan", "inf", "-inf"
      } else {
        out->append(value.ToString());
      }
      return;
    case Value::Type::kString:
      internal::AppendJsonString(value.string_value(), out);
      return;
  }
}

// ---- reading JSON -----------------------------------------------------------

// One scalar member value of a flat JSON object: a string (unescaped), or
// the raw text of a number, true, false or null.
struct JsonScalar {
  bool is_string = false;
  std::string text;
};

// A member value of a feature line as a scalar; false for an array or an
// object.
bool ToScalar(const internal::JsonValue& v, JsonScalar* out) {
  switch (v.type) {
    case internal::JsonValue::Type::kNull:
      out->text = "null";
      return true;
    case internal::JsonValue::Type::kBool:
      out->text = v.boolean ? "true" : "false";
      return true;
    case internal::JsonValue::Type::kNumber:
      out->text = v.text;
      return true;
    case internal::JsonValue::Type::kString:
      out->is_string = true;
      out->text = v.text;
      return true;
    case internal::JsonValue::Type::kArray:
    case internal::JsonValue::Type::kObject:
      return false;
  }
  return false;
}

absl::StatusOr<int64_t> ParseInt64Member(const JsonScalar& v,
                                         std::string_view name) {
  int64_t out;
  if (v.is_string || !absl::SimpleAtoi(v.text, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a feature update line: \"", Sv(name), "\" is not an integer"));
  }
  return out;
}

absl::StatusOr<Value> ParseValue(std::string_view type, const JsonScalar& v) {
  const auto bad = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat("not a feature update line: value ", v.text,
                     " is not of type ", Sv(type)));
  };
  if (type == "null") {
    if (v.is_string || v.text != "null") return bad();
    return Value::Null();
  }
  if (type == "bool") {
    if (v.is_string || (v.text != "true" && v.text != "false")) return bad();
    return Value::Bool(v.text == "true");
  }
  if (type == "int64") {
    int64_t i;
    if (v.is_string || !absl::SimpleAtoi(v.text, &i)) return bad();
    return Value::Int64(i);
  }
  if (type == "decimal") {
    if (v.is_string) return bad();
    absl::StatusOr<Decimal> d = Decimal::Parse(v.text);
    if (!d.ok()) return bad();
    return Value::Dec(*d);
  }
  if (type == "double") {
    if (v.is_string) {
      if (v.text == "nan") return Value::Double(std::nan(""));
      if (v.text == "inf") return Value::Double(HUGE_VAL);
      if (v.text == "-inf") return Value::Double(-HUGE_VAL);
      return bad();
    }
    double d;
    const char* end = v.text.data() + v.text.size();
    auto [ptr, ec] = std::from_chars(v.text.data(), end, d);
    if (ec != std::errc() || ptr != end) return bad();
    return Value::Double(d);
  }
  if (type == "string") {
    if (!v.is_string) return bad();
    return Value::String(v.text);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "not a feature update line: unknown type \"", Sv(type), "\""));
}

}  // namespace

// ---- MemorySink -------------------------------------------------------------

absl::Status MemorySink::Write(absl::Span<const FeatureUpdate> updates) {
  absl::MutexLock lock(&mu_);
  if (!injected_.ok()) return injected_;
  for (const FeatureUpdate& u : updates) {
    auto [it, inserted] =
        updates_.try_emplace(std::make_pair(u.key, u.feature), u);
    if (inserted) {
      ++applied_;
    } else if (u.NewerThan(it->second)) {
      it->second = u;
      ++applied_;
    } else {
      ++skipped_;
    }
  }
  return absl::OkStatus();
}

absl::Status MemorySink::Flush() {
  absl::MutexLock lock(&mu_);
  return injected_;
}

std::optional<FeatureUpdate> MemorySink::Get(std::string_view key,
                                             std::string_view feature) const {
  absl::MutexLock lock(&mu_);
  auto it =
      updates_.find(std::make_pair(std::string(key), std::string(feature)));
  if (it == updates_.end()) return std::nullopt;
  return it->second;
}

std::vector<FeatureUpdate> MemorySink::Snapshot() const {
  std::vector<FeatureUpdate> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(updates_.size());
    for (const auto& [unused, u] : updates_) out.push_back(u);
  }
  std::sort(out.begin(), out.end(), Less);
  return out;
}

size_t MemorySink::size() const {
  absl::MutexLock lock(&mu_);
  return updates_.size();
}

int64_t MemorySink::applied() const {
  absl::MutexLock lock(&mu_);
  return applied_;
}

int64_t MemorySink::skipped() const {
  absl::MutexLock lock(&mu_);
  return skipped_;
}

void MemorySink::InjectError(absl::Status status) {
  absl::MutexLock lock(&mu_);
  injected_ = std::move(status);
}

void MemorySink::Clear() {
  absl::MutexLock lock(&mu_);
  updates_.clear();
  applied_ = 0;
  skipped_ = 0;
}

// ---- FileSink ---------------------------------------------------------------

absl::Status FileSinkOptions::Validate() const {
  if (path.empty()) {
    return absl::InvalidArgumentError("FileSinkOptions.path: must be set");
  }
  if (env == nullptr) {
    return absl::InvalidArgumentError("FileSinkOptions.env: must not be null");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileSink>> FileSink::Create(
    FileSinkOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  WEIR_ASSIGN_OR_RETURN(
      std::unique_ptr<internal::JsonlAppendFile> file,
      internal::JsonlAppendFile::Open(options.env, options.path));
  return std::unique_ptr<FileSink>(
      new FileSink(std::move(options), std::move(file)));
}

FileSink::FileSink(FileSinkOptions options,
                   std::unique_ptr<internal::JsonlAppendFile> file)
    : options_(std::move(options)), file_(std::move(file)) {}

FileSink::~FileSink() {
  absl::MutexLock lock(&mu_);
  file_->Close();
}

absl::Status FileSink::Write(absl::Span<const FeatureUpdate> updates) {
  std::string lines;
  lines.reserve(updates.size() * 200);
  for (const FeatureUpdate& u : updates) {
    AppendFeatureUpdateJson(u, &lines);
    lines.push_back('\n');
  }
  absl::MutexLock lock(&mu_);
  return file_->Append(lines, options_.buffer_bytes);
}

absl::Status FileSink::Flush() {
  absl::MutexLock lock(&mu_);
  return file_->Flush(options_.fsync);
}

// ---- the line format --------------------------------------------------------

void AppendFeatureUpdateJson(const FeatureUpdate& u, std::string* out) {
  out->append("{\"key\":");
  internal::AppendJsonString(u.key, out);
  out->append(",\"feature\":");
  internal::AppendJsonString(u.feature, out);
  out->append(",\"window_start\":");
  AppendInt(u.window.start, out);
  out->append(",\"window_end\":");
  AppendInt(u.window.end, out);
  out->append(",\"type\":\"");
  out->append(TypeName(u.value.type()));
  out->append("\",\"value\":");
  AppendValue(u.value, out);
  out->append(",\"version_time\":");
  AppendInt(u.version_time, out);
  out->append(",\"version_offset\":");
  AppendInt(u.version_offset, out);
  out->push_back('}');
}

std::string FeatureUpdateToJson(const FeatureUpdate& u) {
  std::string out;
  out.reserve(160 + u.key.size() + u.feature.size());
  AppendFeatureUpdateJson(u, &out);
  return out;
}

absl::StatusOr<FeatureUpdate> ParseFeatureUpdateJson(std::string_view line) {
  FeatureUpdate u;
  std::optional<std::string> type;
  std::optional<JsonScalar> value;
  int seen = 0;  // bit per required member
  // Files are read line by line: each thread keeps one reader (and its
  // simdjson buffers) for all of them.
  thread_local internal::JsonReader reader;
  absl::StatusOr<internal::JsonValue> root = reader.Read(line);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a feature update line: ", root.status().message()));
  }
  if (root->type != internal::JsonValue::Type::kObject) {
    return absl::InvalidArgumentError(
        "not a feature update line: not a JSON object");
  }
  for (const internal::JsonMember& member : root->members) {
    const std::string& name = member.key;
    JsonScalar v;
    if (!ToScalar(member.value, &v)) continue;  // nothing of ours nests
    if (name == "key" || name == "feature" || name == "type") {
      if (!v.is_string) {
        return absl::InvalidArgumentError(absl::StrCat(
            "not a feature update line: \"", name, "\" is not a string"));
      }
      if (name == "key") {
        u.key = v.text;
        seen |= 1;
      } else if (name == "feature") {
        u.feature = v.text;
        seen |= 2;
      } else {
        type = v.text;
      }
    } else if (name == "value") {
      value = v;
    } else if (name == "window_start") {
      WEIR_ASSIGN_OR_RETURN(u.window.start, ParseInt64Member(v, name));
      seen |= 4;
    } else if (name == "window_end") {
      WEIR_ASSIGN_OR_RETURN(u.window.end, ParseInt64Member(v, name));
      seen |= 8;
    } else if (name == "version_time") {
      WEIR_ASSIGN_OR_RETURN(u.version_time, ParseInt64Member(v, name));
      seen |= 16;
    } else if (name == "version_offset") {
      WEIR_ASSIGN_OR_RETURN(u.version_offset, ParseInt64Member(v, name));
      seen |= 32;
    }
    // Unknown members are ignored, so later versions may add some.
  }
  if (seen != 63 || !type.has_value() || !value.has_value()) {
    return absl::InvalidArgumentError(
        "not a feature update line: a member is missing (key, feature, "
        "window_start, window_end, type, value, version_time, "
        "version_offset)");
  }
  WEIR_ASSIGN_OR_RETURN(u.value, ParseValue(*type, *value));
  return u;
}

absl::StatusOr<std::vector<FeatureUpdate>> ReadFeatureFile(
    const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(const std::string data,
                        internal::ReadWholeFile(path, "feature"));
  std::vector<FeatureUpdate> updates;
  WEIR_RETURN_IF_ERROR(internal::ForEachCompleteLine(
      data, [&](int64_t line_number, std::string_view line) -> absl::Status {
        absl::StatusOr<FeatureUpdate> u = ParseFeatureUpdateJson(line);
        if (!u.ok()) {
          return absl::DataLossError(absl::StrCat(path, " line ", line_number,
                                                  ": ", u.status().message()));
        }
        updates.push_back(*std::move(u));
        return absl::OkStatus();
      }));
  return updates;
}

std::vector<FeatureUpdate> LatestFeatureUpdates(
    absl::Span<const FeatureUpdate> updates) {
  MemorySink sink;
  sink.Write(updates).IgnoreError();  // a MemorySink without injected errors
  return sink.Snapshot();
}

}  // namespace weir
