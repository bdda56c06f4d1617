// -----------------------------------------------------------------------------
// File: late_records.h
// -----------------------------------------------------------------------------
//
// Where late records go. A record that arrives after its window's allowed
// lateness is not folded (keyed_window_operator.h); the pipeline hands it to
// a `LateRecordOutput` (pipeline.h). `DeadLetterLateRecordOutput` is the
// shipped one: it writes each late record as a dead letter of type
// "late_record" to any `DeadLetterQueue`, so the JSON-lines file
// (`FileDeadLetterQueue`) and the Kafka topic (`KafkaDeadLetterQueue` with
// `topic_suffix = ".late"`, weir/kafka/kafka_dead_letter_queue.h) are late
// outputs too, and weir-dlq-replay replays them like dead letters.
//
// A late dead letter keeps the record's original key and value bytes, its
// source position and timestamp, and says why it was late:
//   error_category  "processing_error"
//   error_type      "late_record"
//   error_field     the missed features, comma-separated
//   error_message   "late: event_time_ms=<t> watermark_ms=<w>
//                    features=<f1>,<f2>"
// `ParseLateRecord` reads the event time, watermark and features back.
//
// Delivery is at least once, as for dead letters: the pipeline flushes the
// output before each checkpoint, and a replay after a crash writes a late
// record again (readers de-duplicate on topic, partition and offset).
//
// Threading: `DeadLetterLateRecordOutput` is called on the pipeline's
// processing thread; it is as thread-safe as its queue. Starts no threads.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto file, weir::FileDeadLetterQueue::Create(
//                                        {.path = "/var/lib/app/late.jsonl"}));
//   WEIR_ASSIGN_OR_RETURN(
//       auto late, weir::DeadLetterLateRecordOutput::Create(
//                      {.pipeline_name = "fraud_features"}, std::move(file)));
//   parts.late_records = late.get();

#ifndef WEIR_LATE_RECORDS_H_
#define WEIR_LATE_RECORDS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/decode.h"
#include "weir/dlq.h"
#include "weir/keyed_window_operator.h"
#include "weir/pipeline.h"
#include "weir/time.h"

namespace weir {

// The error_type of a late record's dead letter.
inline constexpr char kLateRecordErrorType[] = "late_record";

struct DeadLetterLateRecordOutputOptions {
  // Stamped on each record. REQUIRES: non-empty. Default: ""
  std::string pipeline_name;
  // Default: "0"
  std::string pipeline_version = "0";
  // Stamps `failed_at`. Not owned. Default: Clock::Real()
  Clock* clock = Clock::Real();

  // kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// The dead letter `late` (with its record `raw`) becomes.
DeadLetterRecord LateRecordToDeadLetter(
    const LateRecord& late, const RawRecord& raw,
    const DeadLetterLateRecordOutputOptions& options);

// What a late dead letter says about its record.
struct LateRecordInfo {
  EventTime event_time = 0;
  EventTime watermark = 0;
  std::vector<std::string> features;
};

// Reads the event time, watermark and features of a record written by
// LateRecordToDeadLetter; kInvalidArgument if `record` is not one.
absl::StatusOr<LateRecordInfo> ParseLateRecord(const DeadLetterRecord& record);

// Writes late records as dead letters to a queue it owns.
class DeadLetterLateRecordOutput final : public LateRecordOutput {
 public:
  // kInvalidArgument for bad options or a null queue.
  static absl::StatusOr<std::unique_ptr<DeadLetterLateRecordOutput>> Create(
      DeadLetterLateRecordOutputOptions options,
      std::unique_ptr<DeadLetterQueue> queue);

  absl::Status Write(const LateRecord& late, const RawRecord& raw) override;
  absl::Status Flush() override { return queue_->Flush(); }

 private:
  DeadLetterLateRecordOutput(DeadLetterLateRecordOutputOptions options,
                             std::unique_ptr<DeadLetterQueue> queue)
      : options_(std::move(options)), queue_(std::move(queue)) {}

  const DeadLetterLateRecordOutputOptions options_;
  const std::unique_ptr<DeadLetterQueue> queue_;
};

}  // namespace weir

#endif  // WEIR_LATE_RECORDS_H_
