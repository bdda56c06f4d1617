// -----------------------------------------------------------------------------
// File: dlq.h
// -----------------------------------------------------------------------------
//
// The dead-letter queue: where a record goes when it cannot be decoded or
// processed, so that the pipeline moves past it instead of stopping.
//
// A `DeadLetterRecord` keeps everything needed to inspect and replay the
// record: its original key and value bytes, the error (category, type, field,
// message), its source position (topic, partition, offset, timestamp), the
// pipeline's name and version and the time it failed. `ToJson` writes it as
// one line of JSON (bytes in base64, everything else as text) and
// `ParseDeadLetterJson` reads that line back into an equal record.
//
// A `DeadLetterQueue` is a destination: `FileDeadLetterQueue` appends JSON
// lines to a local file; `MemoryDeadLetterQueue` keeps records for tests. (The
// Kafka topic target lives with the Kafka source, in weir/kafka/.)
//
// A `DeadLetterRouter` is what the pipeline calls: it turns a failed record
// (the `RawRecord` and the failing status, see decode.h) into a
// `DeadLetterRecord` stamped with the pipeline's name and version and the
// time from its `Clock`, writes it, and counts records per category.
// `DecodeOrRoute` decodes one record with any `Decoder` and routes a failure.
//
// Delivery is at least once: a record is written again if the pipeline
// replays it after a crash, so readers de-duplicate on (topic, partition,
// offset). The pipeline flushes the queue before it checkpoints the source
// offset past the record, which is what makes the record's DLQ entry durable
// before its offset is.
//
// Threading: `FileDeadLetterQueue`, `MemoryDeadLetterQueue` and
// `DeadLetterRouter` are thread-safe. None of them starts threads. The
// JSON functions are pure.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto dlq, weir::FileDeadLetterQueue::Create(
//                                       {.path = "/var/lib/app/dlq.jsonl"}));
//   weir::DeadLetterRouterOptions options;
//   options.pipeline_name = "fraud_features";
//   options.pipeline_version = "3.1.2";
//   WEIR_ASSIGN_OR_RETURN(auto router,
//                         weir::DeadLetterRouter::Create(options, dlq.get()));
//   WEIR_ASSIGN_OR_RETURN(std::optional<weir::Event> event,
//                         weir::DecodeOrRoute(*decoder, raw, *router));
//   if (event.has_value()) WEIR_RETURN_IF_ERROR(op->Process(event->view()));
//   ...
//   WEIR_RETURN_IF_ERROR(router->Flush());  // before checkpointing offsets

#ifndef WEIR_DLQ_H_
#define WEIR_DLQ_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "weir/decode.h"
#include "weir/env.h"
#include "weir/record.h"
#include "weir/time.h"

namespace weir {
namespace internal {
class JsonlAppendFile;
}  // namespace internal

// One record that could not be decoded or processed.
struct DeadLetterRecord {
  // The record's original bytes, exactly as the source delivered them.
  std::string key;
  std::string value;

  DecodeErrorCategory category = DecodeErrorCategory::kProcessingError;
  // A short stable token, e.g. "wrong_type" (see DecodeError).
  std::string error_type;
  // The field at fault, or empty.
  std::string error_field;
  std::string error_message;

  // Where the record came from.
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<EventTime> timestamp;

  std::string pipeline_name;
  std::string pipeline_version;
  // When the record failed, by the pipeline's clock.
  absl::Time failed_at = absl::UnixEpoch();

  // One line of JSON, without the trailing newline:
  //   {"dlq_format":1,"error_category":"schema_mismatch",
  //    "error_type":"wrong_type","error_field":"amount",
  //    "error_message":"...","topic":"payments","partition":3,
  //    "offset":42,"timestamp_ms":1767225600123,"pipeline":"fraud_features",
  //    "pipeline_version":"3.1.2",
  //    "failed_at":"2026-01-01T00:00:00.5+00:00",
  //    "key_base64":"dTEyMw==","value_base64":"eyJ1c2VyX2lkIjoidTEyMyJ9"}
  // Text fields that are not valid UTF-8 are written with U+FFFD in place of
  // the bad bytes (so only they do not round-trip exactly); the key and value
  // always do.
  std::string ToJson() const;

  friend bool operator==(const DeadLetterRecord&,
                         const DeadLetterRecord&) = default;
};

// Reads one line written by DeadLetterRecord::ToJson (the trailing newline
// may be present). Members it does not know are ignored. Fails with
// kInvalidArgument on malformed input, naming what is wrong, and with
// kFailedPrecondition on a newer "dlq_format".
absl::StatusOr<DeadLetterRecord> ParseDeadLetterJson(std::string_view line);

// Standard base64 with padding, and its inverse (which fails with
// kInvalidArgument on anything that is not base64).
std::string Base64Encode(std::string_view bytes);
absl::StatusOr<std::string> Base64Decode(std::string_view text);

// A destination for dead-letter records.
class DeadLetterQueue {
 public:
  virtual ~DeadLetterQueue() = default;

  // Queues one record. It is durable only after a successful Flush.
  // kUnavailable / kResourceExhausted: the record was not taken; retry.
  virtual absl::Status Write(const DeadLetterRecord& record) = 0;

  // Makes every record written so far durable.
  virtual absl::Status Flush() = 0;
};

struct FileDeadLetterQueueOptions {
  // The JSON-lines file; created if missing, appended to otherwise.
  // REQUIRES: non-empty. Default: ""
  std::string path;

  // Lines are buffered in memory and written once this many bytes are
  // pending (and on Flush). Larger means fewer write calls; 0 writes every
  // record at once. Default: 64 KiB
  size_t buffer_bytes = size_t{64} << 10;

  // Whether Flush calls fsync. Without it Flush only hands lines to the
  // operating system, which survives a process crash but not a power loss.
  // Default: true
  bool fsync = true;

  // The file system the file is written through. Not owned; must outlive
  // the object. Default: Env::Default()
  Env* env = Env::Default();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Appends records to a local file, one JSON line each.
//
// On Create, a torn last line (one a crash cut short, without its newline)
// is cut off: its record was never flushed, so the pipeline replays it.
class FileDeadLetterQueue final : public DeadLetterQueue {
 public:
  // The Env's error if the file cannot be opened (kNotFound for a missing
  // folder, kPermissionDenied), kInvalidArgument on bad options.
  static absl::StatusOr<std::unique_ptr<FileDeadLetterQueue>> Create(
      FileDeadLetterQueueOptions options);

  // Writes pending lines (without fsync) and closes the file; errors are
  // dropped, as the records were never flushed.
  ~FileDeadLetterQueue() override;
  FileDeadLetterQueue(const FileDeadLetterQueue&) = delete;
  FileDeadLetterQueue& operator=(const FileDeadLetterQueue&) = delete;

  absl::Status Write(const DeadLetterRecord& record) override;
  absl::Status Flush() override;

  const std::string& path() const { return options_.path; }

 private:
  FileDeadLetterQueue(FileDeadLetterQueueOptions options,
                      std::unique_ptr<internal::JsonlAppendFile> file);

  const FileDeadLetterQueueOptions options_;
  absl::Mutex mu_;
  std::unique_ptr<internal::JsonlAppendFile> file_ ABSL_GUARDED_BY(mu_);
};

// Every record in a file FileDeadLetterQueue wrote, in order. A torn last
// line is skipped; any other bad line is kDataLoss naming its line number.
// kNotFound if the file does not exist.
absl::StatusOr<std::vector<DeadLetterRecord>> ReadDeadLetterFile(
    const std::string& path);

// Keeps records in memory; for tests and the testing harness.
class MemoryDeadLetterQueue final : public DeadLetterQueue {
 public:
  absl::Status Write(const DeadLetterRecord& record) override;
  absl::Status Flush() override;

  // Every record written so far.
  std::vector<DeadLetterRecord> records() const;

  // Makes every later Write fail with `status` until set back to OK; for
  // testing error paths.
  void FailWrites(absl::Status status);

 private:
  mutable absl::Mutex mu_;
  std::vector<DeadLetterRecord> records_ ABSL_GUARDED_BY(mu_);
  absl::Status write_status_ ABSL_GUARDED_BY(mu_);
};

struct DeadLetterRouterOptions {
  // Stamped on every record. REQUIRES: non-empty. Default: ""
  std::string pipeline_name;

  // Stamped on every record, e.g. a release or git version. Default: ""
  std::string pipeline_version;

  // Where `failed_at` comes from. REQUIRES: non-null.
  // Default: Clock::Real()
  Clock* clock = Clock::Real();

  // Error messages longer than this are cut (with "...") so that one huge
  // message cannot bloat the queue. Default: 4096
  size_t max_message_bytes = 4096;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Per-category counts of records a router wrote.
struct DeadLetterCounts {
  int64_t deserialization = 0;
  int64_t schema_mismatch = 0;
  int64_t processing_error = 0;
  // Route calls whose Write failed (the record was not taken).
  int64_t write_failures = 0;

  int64_t total() const {
    return deserialization + schema_mismatch + processing_error;
  }
};

// Builds dead-letter records for one pipeline, writes them and counts them.
class DeadLetterRouter {
 public:
  // `queue` must outlive the router.
  static absl::StatusOr<std::unique_ptr<DeadLetterRouter>> Create(
      DeadLetterRouterOptions options, DeadLetterQueue* queue);

  // The record for `raw` failing with `error`, classified by GetDecodeError.
  // REQUIRES: !error.ok().
  DeadLetterRecord MakeRecord(const RawRecord& raw,
                              const absl::Status& error) const;

  // MakeRecord, then Write, then count. Returns the queue's error if the
  // write failed (then the pipeline must not move past the record), and
  // kInvalidArgument if `error` is OK.
  absl::Status Route(const RawRecord& raw, const absl::Status& error);

  // Flushes the queue.
  absl::Status Flush();

  DeadLetterCounts counts() const;
  int64_t count(DecodeErrorCategory category) const;

 private:
  DeadLetterRouter(DeadLetterRouterOptions options, DeadLetterQueue* queue);

  const DeadLetterRouterOptions options_;
  DeadLetterQueue* const queue_;
  std::array<std::atomic<int64_t>, kNumDecodeErrorCategories> counts_{};
  std::atomic<int64_t> write_failures_{0};
};

// Decodes `raw`. On success returns the event; on a decode failure routes
// the record to the DLQ and returns std::nullopt (the pipeline moves on).
// Returns an error only when routing failed.
absl::StatusOr<std::optional<Event>> DecodeOrRoute(Decoder& decoder,
                                                   const RawRecord& raw,
                                                   DeadLetterRouter& router);

}  // namespace weir

#endif  // WEIR_DLQ_H_
