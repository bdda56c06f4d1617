#include "weir/late_records.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace weir {

absl::Status DeadLetterLateRecordOutputOptions::Validate() const {
  if (pipeline_name.empty()) {
    return absl::InvalidArgumentError("pipeline_name: empty");
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock: null");
  return absl::OkStatus();
}

DeadLetterRecord LateRecordToDeadLetter(
    const LateRecord& late, const RawRecord& raw,
    const DeadLetterLateRecordOutputOptions& options) {
  DeadLetterRecord r;
  r.key = std::string(raw.key);
  r.value = std::string(raw.value);
  r.category = DecodeErrorCategory::kProcessingError;
  r.error_type = kLateRecordErrorType;
  r.error_field = absl::StrJoin(late.features, ",");
  r.error_message = absl::StrCat("late: event_time_ms=", late.event_time,
                                 " watermark_ms=", late.watermark,
                                 " features=", r.error_field);
  r.topic = std::string(raw.topic);
  r.partition = raw.partition;
  r.offset = raw.offset;
  r.timestamp = raw.timestamp;
  r.pipeline_name = options.pipeline_name;
  r.pipeline_version = options.pipeline_version;
  r.failed_at = options.clock->Now();
  return r;
}

absl::StatusOr<LateRecordInfo> ParseLateRecord(const DeadLetterRecord& record) {
  if (record.error_type != kLateRecordErrorType) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a late record (error_type '", record.error_type, "')"));
  }
  absl::string_view text = record.error_message;
  LateRecordInfo info;
  bool have_time = false;
  bool have_watermark = false;
  if (!absl::ConsumePrefix(&text, "late: ")) {
    return absl::InvalidArgumentError("late record: bad error_message");
  }
  for (absl::string_view part : absl::StrSplit(text, ' ')) {
    if (absl::ConsumePrefix(&part, "event_time_ms=")) {
      have_time = absl::SimpleAtoi(part, &info.event_time);
    } else if (absl::ConsumePrefix(&part, "watermark_ms=")) {
      have_watermark = absl::SimpleAtoi(part, &info.watermark);
    } else if (absl::ConsumePrefix(&part, "features=")) {
      info.features = absl::StrSplit(part, ',', absl::SkipEmpty());
    }
  }
  if (!have_time || !have_watermark) {
    return absl::InvalidArgumentError(absl::StrCat(
        "late record: bad error_message '", record.error_message, "'"));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<DeadLetterLateRecordOutput>>
DeadLetterLateRecordOutput::Create(DeadLetterLateRecordOutputOptions options,
                                   std::unique_ptr<DeadLetterQueue> queue) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (queue == nullptr) return absl::InvalidArgumentError("queue: null");
  return std::unique_ptr<DeadLetterLateRecordOutput>(
      new DeadLetterLateRecordOutput(std::move(options), std::move(queue)));
}

absl::Status DeadLetterLateRecordOutput::Write(const LateRecord& late,
                                               const RawRecord& raw) {
  return queue_->Write(LateRecordToDeadLetter(late, raw, options_));
}

}  // namespace weir
