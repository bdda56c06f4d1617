#include "weir/dlq.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "weir/internal/json_reader.h"
#include "weir/internal/json_string.h"
#include "weir/internal/jsonl_file.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

constexpr int kDlqFormat = 1;

using internal::Sv;

// ---- writing JSON ---------------------------------------------------------

// Dead-letter records carry arbitrary bytes in their messages: the output
// stays valid UTF-8 whatever they hold.
constexpr internal::JsonEscapeOptions kEscape{.replace_invalid_utf8 = true};

void AppendJsonString(std::string_view s, std::string* out) {
  internal::AppendJsonString(s, out, kEscape);
}

void AppendMember(std::string_view name, std::string_view value,
                  std::string* out) {
  out->push_back(',');
  AppendJsonString(name, out);
  out->push_back(':');
  AppendJsonString(value, out);
}

void AppendIntMember(std::string_view name, int64_t value, std::string* out) {
  out->push_back(',');
  AppendJsonString(name, out);
  out->push_back(':');
  out->append(std::to_string(value));
}

// ---- reading JSON ---------------------------------------------------------

absl::Status JsonError(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("dead-letter JSON: ", Sv(what)));
}

absl::StatusOr<std::string> StringMember(const internal::JsonValue& object,
                                         std::string_view name) {
  const internal::JsonValue* v = object.Find(name);
  if (v == nullptr)
    return JsonError(absl::StrCat("missing \"", Sv(name), "\""));
  if (v->type != internal::JsonValue::Type::kString) {
    return JsonError(absl::StrCat("\"", Sv(name), "\" is not a string"));
  }
  return v->text;
}

absl::StatusOr<int64_t> IntOf(const internal::JsonValue& v,
                              std::string_view name) {
  int64_t out;
  if (!v.is_integer() || !absl::SimpleAtoi(v.text, &out)) {
    return JsonError(
        absl::StrCat("\"", Sv(name), "\" is not a 64-bit integer"));
  }
  return out;
}

absl::StatusOr<int64_t> IntMember(const internal::JsonValue& object,
                                  std::string_view name) {
  const internal::JsonValue* v = object.Find(name);
  if (v == nullptr)
    return JsonError(absl::StrCat("missing \"", Sv(name), "\""));
  return IntOf(*v, name);
}

}  // namespace

// ---- DeadLetterRecord -----------------------------------------------------

std::string Base64Encode(std::string_view bytes) {
  return absl::Base64Escape(Sv(bytes));
}

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  std::string out;
  if (!absl::Base64Unescape(Sv(text), &out)) {
    return absl::InvalidArgumentError("not valid base64");
  }
  return out;
}

std::string DeadLetterRecord::ToJson() const {
  std::string out;
  out.reserve(256 + error_message.size() + 4 * (key.size() + value.size()) / 3);
  out.append("{\"dlq_format\":");
  out.append(std::to_string(kDlqFormat));
  AppendMember("error_category", DecodeErrorCategoryName(category), &out);
  AppendMember("error_type", error_type, &out);
  AppendMember("error_field", error_field, &out);
  AppendMember("error_message", error_message, &out);
  AppendMember("topic", topic, &out);
  AppendIntMember("partition", partition, &out);
  AppendIntMember("offset", offset, &out);
  if (timestamp.has_value()) {
    AppendIntMember("timestamp_ms", *timestamp, &out);
  } else {
    out.append(",\"timestamp_ms\":null");
  }
  AppendMember("pipeline", pipeline_name, &out);
  AppendMember("pipeline_version", pipeline_version, &out);
  AppendMember(
      "failed_at",
      absl::FormatTime(absl::RFC3339_full, failed_at, absl::UTCTimeZone()),
      &out);
  AppendMember("key_base64", Base64Encode(key), &out);
  AppendMember("value_base64", Base64Encode(value), &out);
  out.push_back('}');
  return out;
}

absl::StatusOr<DeadLetterRecord> ParseDeadLetterJson(std::string_view line) {
  // Files are read line by line: each thread keeps one reader (and its
  // simdjson buffers) for all of them.
  thread_local internal::JsonReader reader;
  absl::StatusOr<internal::JsonValue> root = reader.Read(line);
  if (!root.ok()) return JsonError(std::string(root.status().message()));
  if (root->type != internal::JsonValue::Type::kObject) {
    return JsonError("not an object");
  }
  const internal::JsonValue* format = root->Find("dlq_format");
  if (format == nullptr) return JsonError("missing \"dlq_format\"");
  WEIR_ASSIGN_OR_RETURN(const int64_t version, IntOf(*format, "dlq_format"));
  if (version > kDlqFormat || version < 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("dead-letter JSON: dlq_format ", version,
                     " is not supported (this build reads ", kDlqFormat, ")"));
  }

  DeadLetterRecord r;
  WEIR_ASSIGN_OR_RETURN(const std::string category,
                        StringMember(*root, "error_category"));
  std::optional<DecodeErrorCategory> c = ParseDecodeErrorCategory(category);
  if (!c.has_value()) {
    return JsonError(absl::StrCat("unknown error_category \"", category, "\""));
  }
  r.category = *c;
  WEIR_ASSIGN_OR_RETURN(r.error_type, StringMember(*root, "error_type"));
  if (root->Find("error_field") != nullptr) {
    WEIR_ASSIGN_OR_RETURN(r.error_field, StringMember(*root, "error_field"));
  }
  WEIR_ASSIGN_OR_RETURN(r.error_message, StringMember(*root, "error_message"));
  WEIR_ASSIGN_OR_RETURN(r.topic, StringMember(*root, "topic"));
  WEIR_ASSIGN_OR_RETURN(const int64_t partition, IntMember(*root, "partition"));
  if (partition < std::numeric_limits<int32_t>::min() ||
      partition > std::numeric_limits<int32_t>::max()) {
    return JsonError("partition out of range");
  }
  r.partition = static_cast<int32_t>(partition);
  WEIR_ASSIGN_OR_RETURN(r.offset, IntMember(*root, "offset"));
  const internal::JsonValue* timestamp = root->Find("timestamp_ms");
  if (timestamp != nullptr &&
      timestamp->type != internal::JsonValue::Type::kNull) {
    WEIR_ASSIGN_OR_RETURN(r.timestamp, IntOf(*timestamp, "timestamp_ms"));
  }
  WEIR_ASSIGN_OR_RETURN(r.pipeline_name, StringMember(*root, "pipeline"));
  WEIR_ASSIGN_OR_RETURN(r.pipeline_version,
                        StringMember(*root, "pipeline_version"));
  WEIR_ASSIGN_OR_RETURN(const std::string failed_at,
                        StringMember(*root, "failed_at"));
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, failed_at, &r.failed_at, &error)) {
    return JsonError(absl::StrCat("bad failed_at: ", error));
  }
  for (const char* name : {"key_base64", "value_base64"}) {
    WEIR_ASSIGN_OR_RETURN(const std::string text, StringMember(*root, name));
    absl::StatusOr<std::string> bytes = Base64Decode(text);
    if (!bytes.ok()) return JsonError(absl::StrCat("bad ", name));
    (name == std::string_view("key_base64") ? r.key : r.value) =
        *std::move(bytes);
  }
  return r;
}

// ---- FileDeadLetterQueue ------------------------------------------------

absl::Status FileDeadLetterQueueOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("path: must be set");
  if (env == nullptr)
    return absl::InvalidArgumentError("env: must not be null");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileDeadLetterQueue>>
FileDeadLetterQueue::Create(FileDeadLetterQueueOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  WEIR_ASSIGN_OR_RETURN(
      std::unique_ptr<internal::JsonlAppendFile> file,
      internal::JsonlAppendFile::Open(options.env, options.path));
  return std::unique_ptr<FileDeadLetterQueue>(
      new FileDeadLetterQueue(std::move(options), std::move(file)));
}

FileDeadLetterQueue::FileDeadLetterQueue(
    FileDeadLetterQueueOptions options,
    std::unique_ptr<internal::JsonlAppendFile> file)
    : options_(std::move(options)), file_(std::move(file)) {}

FileDeadLetterQueue::~FileDeadLetterQueue() {
  absl::MutexLock lock(&mu_);
  file_->Close();
}

absl::Status FileDeadLetterQueue::Write(const DeadLetterRecord& record) {
  std::string line = record.ToJson();
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  return file_->Append(line, options_.buffer_bytes);
}

absl::Status FileDeadLetterQueue::Flush() {
  absl::MutexLock lock(&mu_);
  return file_->Flush(options_.fsync);
}

absl::StatusOr<std::vector<DeadLetterRecord>> ReadDeadLetterFile(
    const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(const std::string data,
                        internal::ReadWholeFile(path, "dead-letter"));
  std::vector<DeadLetterRecord> records;
  WEIR_RETURN_IF_ERROR(internal::ForEachCompleteLine(
      data, [&](int64_t line_number, std::string_view line) -> absl::Status {
        if (line.empty()) return absl::OkStatus();
        absl::StatusOr<DeadLetterRecord> record = ParseDeadLetterJson(line);
        if (!record.ok()) {
          return absl::DataLossError(absl::StrCat(path, ":", line_number, ": ",
                                                  record.status().message()));
        }
        records.push_back(*std::move(record));
        return absl::OkStatus();
      }));
  return records;
}

// ---- MemoryDeadLetterQueue ------------------------------------------------

absl::Status MemoryDeadLetterQueue::Write(const DeadLetterRecord& record) {
  absl::MutexLock lock(&mu_);
  WEIR_RETURN_IF_ERROR(write_status_);
  records_.push_back(record);
  return absl::OkStatus();
}

absl::Status MemoryDeadLetterQueue::Flush() { return absl::OkStatus(); }

std::vector<DeadLetterRecord> MemoryDeadLetterQueue::records() const {
  absl::MutexLock lock(&mu_);
  return records_;
}

void MemoryDeadLetterQueue::FailWrites(absl::Status status) {
  absl::MutexLock lock(&mu_);
  write_status_ = std::move(status);
}

// ---- DeadLetterRouter -----------------------------------------------------

absl::Status DeadLetterRouterOptions::Validate() const {
  if (pipeline_name.empty()) {
    return absl::InvalidArgumentError("pipeline_name: must be set");
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock: null");
  if (max_message_bytes < 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_message_bytes: must be >= 16, got ", max_message_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DeadLetterRouter>> DeadLetterRouter::Create(
    DeadLetterRouterOptions options, DeadLetterQueue* queue) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (queue == nullptr) return absl::InvalidArgumentError("queue: null");
  return std::unique_ptr<DeadLetterRouter>(
      new DeadLetterRouter(std::move(options), queue));
}

DeadLetterRouter::DeadLetterRouter(DeadLetterRouterOptions options,
                                   DeadLetterQueue* queue)
    : options_(std::move(options)), queue_(queue) {}

DeadLetterRecord DeadLetterRouter::MakeRecord(const RawRecord& raw,
                                              const absl::Status& error) const {
  DecodeError e = GetDecodeError(error);
  DeadLetterRecord r;
  r.key = std::string(raw.key);
  r.value = std::string(raw.value);
  r.category = e.category;
  r.error_type = std::move(e.type);
  r.error_field = std::move(e.field);
  r.error_message = std::move(e.message);
  if (r.error_message.size() > options_.max_message_bytes) {
    size_t cut = options_.max_message_bytes - 3;
    // Do not split a UTF-8 sequence.
    while (cut > 0 &&
           (static_cast<unsigned char>(r.error_message[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    r.error_message.resize(cut);
    r.error_message.append("...");
  }
  r.topic = std::string(raw.topic);
  r.partition = raw.partition;
  r.offset = raw.offset;
  r.timestamp = raw.timestamp;
  r.pipeline_name = options_.pipeline_name;
  r.pipeline_version = options_.pipeline_version;
  r.failed_at = options_.clock->Now();
  return r;
}

absl::Status DeadLetterRouter::Route(const RawRecord& raw,
                                     const absl::Status& error) {
  if (error.ok()) {
    return absl::InvalidArgumentError(
        "DeadLetterRouter::Route: the record did not fail");
  }
  const DeadLetterRecord record = MakeRecord(raw, error);
  absl::Status written = queue_->Write(record);
  if (!written.ok()) {
    write_failures_.fetch_add(1, std::memory_order_relaxed);
    return written;
  }
  counts_[static_cast<size_t>(record.category)].fetch_add(
      1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status DeadLetterRouter::Flush() { return queue_->Flush(); }

int64_t DeadLetterRouter::count(DecodeErrorCategory category) const {
  return counts_[static_cast<size_t>(category)].load(std::memory_order_relaxed);
}

DeadLetterCounts DeadLetterRouter::counts() const {
  DeadLetterCounts c;
  c.deserialization = count(DecodeErrorCategory::kDeserialization);
  c.schema_mismatch = count(DecodeErrorCategory::kSchemaMismatch);
  c.processing_error = count(DecodeErrorCategory::kProcessingError);
  c.write_failures = write_failures_.load(std::memory_order_relaxed);
  return c;
}

absl::StatusOr<std::optional<Event>> DecodeOrRoute(Decoder& decoder,
                                                   const RawRecord& raw,
                                                   DeadLetterRouter& router) {
  absl::StatusOr<Event> event = decoder.Decode(raw);
  if (event.ok()) return std::optional<Event>(*std::move(event));
  WEIR_RETURN_IF_ERROR(router.Route(raw, event.status()));
  return std::optional<Event>();
}

}  // namespace weir
