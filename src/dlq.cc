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
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "weir/internal/json_string.h"
#include "weir/internal/jsonl_file.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

constexpr int kDlqFormat = 1;

absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

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

// A strict reader for the flat objects ToJson writes, able to skip any
// other JSON value.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' ||
                              s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool Consume(char c) {
    SkipSpace();
    if (!Peek(c)) return false;
    ++i_;
    return true;
  }
  absl::Status Expect(char c) {
    if (Consume(c)) return absl::OkStatus();
    return Error(absl::StrCat("expected '", std::string(1, c), "'"));
  }
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("dead-letter JSON: ", ToAbsl(what), " at byte ", i_));
  }

  absl::StatusOr<std::string> ReadString() {
    SkipSpace();
    if (!Peek('"')) return Error("expected a string");
    std::string out;
    const internal::JsonStringError error = internal::ReadJsonString(
        s_, &i_, /*allow_control_characters=*/false, &out);
    if (error != internal::JsonStringError::kOk) {
      return Error(internal::JsonStringErrorMessage(error));
    }
    return out;
  }

  absl::StatusOr<int64_t> ReadInt() {
    SkipSpace();
    const bool negative = Peek('-');
    if (negative) ++i_;
    const size_t begin = i_;
    const uint64_t limit =
        negative
            ? static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1
            : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t magnitude = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      const uint64_t d = static_cast<uint64_t>(s_[i_] - '0');
      if (magnitude > (limit - d) / 10) return Error("integer out of range");
      magnitude = magnitude * 10 + d;
      ++i_;
    }
    if (i_ == begin) return Error("expected an integer");
    if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) {
      return Error("expected an integer");
    }
    return negative ? static_cast<int64_t>(0 - magnitude)
                    : static_cast<int64_t>(magnitude);
  }

  bool ConsumeLiteral(std::string_view word) {
    SkipSpace();
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  absl::Status SkipValue(int depth) {
    if (depth > 64) return Error("nesting too deep");
    SkipSpace();
    if (AtEnd()) return Error("expected a value");
    const char c = s_[i_];
    if (c == '"') return ReadString().status();
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      if (Consume(close)) return absl::OkStatus();
      do {
        if (c == '{') {
          WEIR_RETURN_IF_ERROR(ReadString().status());
          WEIR_RETURN_IF_ERROR(Expect(':'));
        }
        WEIR_RETURN_IF_ERROR(SkipValue(depth + 1));
      } while (Consume(','));
      return Expect(close);
    }
    if (ConsumeLiteral("true") || ConsumeLiteral("false") ||
        ConsumeLiteral("null")) {
      return absl::OkStatus();
    }
    const size_t begin = i_;
    while (i_ < s_.size() && std::string_view("+-0123456789.eE").find(s_[i_]) !=
                                 std::string_view::npos) {
      ++i_;
    }
    if (i_ == begin) return Error("expected a value");
    return absl::OkStatus();
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

// ---- DeadLetterRecord -----------------------------------------------------

std::string Base64Encode(std::string_view bytes) {
  return absl::Base64Escape(ToAbsl(bytes));
}

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  std::string out;
  if (!absl::Base64Unescape(ToAbsl(text), &out)) {
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
  JsonReader in(line);
  DeadLetterRecord r;
  std::optional<int64_t> format;
  // Members that must be present, as bits.
  enum : uint32_t {
    kCategory = 1 << 0,
    kType = 1 << 1,
    kMessage = 1 << 2,
    kTopic = 1 << 3,
    kPartition = 1 << 4,
    kOffset = 1 << 5,
    kPipeline = 1 << 6,
    kVersion = 1 << 7,
    kFailedAt = 1 << 8,
    kKey = 1 << 9,
    kValue = 1 << 10,
    kAll = (1 << 11) - 1,
  };
  static constexpr const char* kNames[] = {
      "error_category", "error_type", "error_message", "topic",
      "partition",      "offset",     "pipeline",      "pipeline_version",
      "failed_at",      "key_base64", "value_base64"};
  uint32_t present = 0;
  WEIR_RETURN_IF_ERROR(in.Expect('{'));
  if (!in.Consume('}')) {
    do {
      WEIR_ASSIGN_OR_RETURN(std::string name, in.ReadString());
      WEIR_RETURN_IF_ERROR(in.Expect(':'));
      if (name == "dlq_format") {
        WEIR_ASSIGN_OR_RETURN(format, in.ReadInt());
      } else if (name == "error_category") {
        WEIR_ASSIGN_OR_RETURN(std::string text, in.ReadString());
        std::optional<DecodeErrorCategory> c = ParseDecodeErrorCategory(text);
        if (!c.has_value()) {
          return in.Error(
              absl::StrCat("unknown error_category \"", text, "\""));
        }
        r.category = *c;
        present |= kCategory;
      } else if (name == "error_type") {
        WEIR_ASSIGN_OR_RETURN(r.error_type, in.ReadString());
        present |= kType;
      } else if (name == "error_field") {
        WEIR_ASSIGN_OR_RETURN(r.error_field, in.ReadString());
      } else if (name == "error_message") {
        WEIR_ASSIGN_OR_RETURN(r.error_message, in.ReadString());
        present |= kMessage;
      } else if (name == "topic") {
        WEIR_ASSIGN_OR_RETURN(r.topic, in.ReadString());
        present |= kTopic;
      } else if (name == "partition") {
        WEIR_ASSIGN_OR_RETURN(int64_t p, in.ReadInt());
        if (p < std::numeric_limits<int32_t>::min() ||
            p > std::numeric_limits<int32_t>::max()) {
          return in.Error("partition out of range");
        }
        r.partition = static_cast<int32_t>(p);
        present |= kPartition;
      } else if (name == "offset") {
        WEIR_ASSIGN_OR_RETURN(r.offset, in.ReadInt());
        present |= kOffset;
      } else if (name == "timestamp_ms") {
        if (in.ConsumeLiteral("null")) {
          r.timestamp.reset();
        } else {
          WEIR_ASSIGN_OR_RETURN(r.timestamp, in.ReadInt());
        }
      } else if (name == "pipeline") {
        WEIR_ASSIGN_OR_RETURN(r.pipeline_name, in.ReadString());
        present |= kPipeline;
      } else if (name == "pipeline_version") {
        WEIR_ASSIGN_OR_RETURN(r.pipeline_version, in.ReadString());
        present |= kVersion;
      } else if (name == "failed_at") {
        WEIR_ASSIGN_OR_RETURN(std::string text, in.ReadString());
        std::string error;
        if (!absl::ParseTime(absl::RFC3339_full, text, &r.failed_at, &error)) {
          return in.Error(absl::StrCat("bad failed_at: ", error));
        }
        present |= kFailedAt;
      } else if (name == "key_base64" || name == "value_base64") {
        WEIR_ASSIGN_OR_RETURN(std::string text, in.ReadString());
        absl::StatusOr<std::string> bytes = Base64Decode(text);
        if (!bytes.ok()) return in.Error(absl::StrCat("bad ", name));
        if (name == "key_base64") {
          r.key = *std::move(bytes);
          present |= kKey;
        } else {
          r.value = *std::move(bytes);
          present |= kValue;
        }
      } else {
        WEIR_RETURN_IF_ERROR(in.SkipValue(0));
      }
    } while (in.Consume(','));
    WEIR_RETURN_IF_ERROR(in.Expect('}'));
  }
  in.SkipSpace();
  if (!in.AtEnd()) return in.Error("content after the object");
  if (!format.has_value()) return in.Error("missing \"dlq_format\"");
  if (*format > kDlqFormat || *format < 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("dead-letter JSON: dlq_format ", *format,
                     " is not supported (this build reads ", kDlqFormat, ")"));
  }
  if (present != kAll) {
    for (int bit = 0; bit < 11; ++bit) {
      if ((present & (1u << bit)) == 0) {
        return in.Error(absl::StrCat("missing \"", kNames[bit], "\""));
      }
    }
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
