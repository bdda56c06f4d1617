// -----------------------------------------------------------------------------
// File: pipeline.h
// -----------------------------------------------------------------------------
//
// A `Pipeline` wires a source, a decoder, the keyed window operator, a sink,
// a dead-letter queue and checkpoints into one processing loop:
//
//   Source ─► Decoder ─► KeyedWindowOperator (one per partition) ─► Sink
//               │ bad bytes          │ late records
//               ▼                    ▼
//         dead-letter queue    LateRecordOutput (optional; always counted)
//
// Partitions. Each assigned input partition gets its own state backend and
// operator. When the source assigns a partition, the pipeline restores it
// from the newest checkpoint in the object store that verifies (or starts it
// empty, from offset 0, when there is none) and tells the source where to
// resume; when a partition is revoked its state is dropped. A partition's
// state thus follows it to its next owner through the object store.
//
// Checkpoints (docs/architecture.md): every `checkpoints.interval`, on the
// processing thread, the pipeline writes all pending updates to the sink and
// flushes it (PreCommit), flushes the dead-letter queue, flushes each
// operator and hard-links a checkpoint of each backend; the uploads happen on
// the upload threads (`checkpoint_upload_threads`, shared); once a partition's
// manifest is published its offsets are committed to the source, and when all
// are, the sink's Commit(n) is called. More consecutive failures than tolerated
// stop Run with an error.
//
// Backpressure. Updates wait in a bounded queue in front of the sink. When
// the sink refuses them (kUnavailable) or the queue is full, every assigned
// partition is paused until the queue drains; the time spent paused is
// reported in `PipelineStats::paused`.
//
// Threading: Run() is called on one thread (the processing thread), which
// also runs every callback into the parts (decoder, sink, source listener).
// Stop(), RequestCheckpoint(), RequestSavepoint() and stats() may be called
// from any thread. Threads started: `checkpoint_upload_threads` checkpoint
// upload threads ("weir-ckpt-upld", see checkpoint.h), shared by the
// assigned partitions.
//
// Example:
//   weir::PipelineOptions options;
//   options.name = "fraud_features";
//   options.features.features = {...};
//   options.state_dir = "/var/lib/fraud";
//   options.backend_factory = weir::RocksDbBackendFactory(resources);
//   weir::PipelineParts parts{source.get(), decoder.get(), sink.get(),
//                             store.get(), dlq.get()};
//   WEIR_ASSIGN_OR_RETURN(auto pipeline, weir::Pipeline::Create(options,
//   parts)); std::thread stopper([&] { WaitForSignal(); pipeline->Stop(); });
//   WEIR_RETURN_IF_ERROR(pipeline->Run());

#ifndef WEIR_PIPELINE_H_
#define WEIR_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
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
#include "weir/checkpointer.h"
#include "weir/decode.h"
#include "weir/dlq.h"
#include "weir/env.h"
#include "weir/heavy_hitters.h"
#include "weir/keyed_window_operator.h"
#include "weir/object_store.h"
#include "weir/sink.h"
#include "weir/source.h"
#include "weir/state.h"
#include "weir/time.h"

namespace weir {

// Where in its life a pipeline is, reported to
// `PipelineOptions::phase_listener` on every change (docs/operations.md,
// "Phases"). A pipeline moves forward through these, except that processing
// and checkpoint alternate, and a rebalance goes back to restore:
//
//   join ─► restore ─► processing ⇄ checkpoint ─► firing ─► final_checkpoint
//                                                               ─► stopped
enum class PipelinePhase {
  kJoin,             // Run started; no partition assigned yet
  kRestore,          // restoring assigned partitions from the store
  kProcessing,       // polling and processing records
  kCheckpoint,       // a checkpoint round is being taken and uploaded
  kFiring,           // a bounded input ended: every window fires
  kFinalCheckpoint,  // the last checkpoint, after the end or Stop()
  kStopped,          // Run is returning
};

// "join", "restore", "processing", "checkpoint", "firing",
// "final_checkpoint", "stopped".
const char* PipelinePhaseName(PipelinePhase phase);

// Creates the state backend of one partition in the directory `path`, which
// is either empty or holds a restored checkpoint.
using StateBackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<StateBackend>>(
        const std::string& path)>;

// Receives the records that arrived after their window's allowed lateness.
// Called on the processing thread; must not throw.
class LateRecordOutput {
 public:
  virtual ~LateRecordOutput() = default;
  virtual absl::Status Write(const LateRecord& late, const RawRecord& raw) = 0;
  // Called before each checkpoint.
  virtual absl::Status Flush() { return absl::OkStatus(); }
};

struct PipelineOptions {
  // ---- behaviour ----

  // Names the pipeline in checkpoint paths, dead-letter records and metrics.
  // REQUIRES: [a-z0-9_]+.
  std::string name;

  // Recorded in manifests and dead-letter records. Default: "0"
  std::string version = "0";

  // The features. `features.name` is replaced by `name`.
  KeyedWindowOptions features;

  // Local working directory: live state of each partition, and checkpoint
  // staging (hard links). Required; created if missing.
  std::string state_dir;

  // Makes each partition's backend. Required (see
  // RocksDbBackendFactory in weir/rocksdb/rocksdb_state_backend.h).
  StateBackendFactory backend_factory;

  // Interval, minimum pause, timeout, tolerated failures, retention.
  // `checkpoints.clock` is replaced by `clock`.
  CheckpointerOptions checkpoints;

  // Threads that upload checkpoints, shared by every assigned partition: a
  // round's partitions upload this many at a time. More: shorter rounds on
  // a store with high request latency (S3). REQUIRES: 1 to 64.
  // Default: 4
  int checkpoint_upload_threads = 4;

  // Take a final checkpoint when Run returns after Stop() or at the end of a
  // bounded input; if it fails, Run returns its error (a restart replays
  // from the previous checkpoint). Default: true
  bool checkpoint_on_stop = true;

  // Restore assigned partitions from this savepoint instead of the newest
  // checkpoint (a partition the savepoint does not have starts empty).
  // Default: unset
  std::optional<std::string> restore_savepoint;

  // Where a partition with no checkpoint starts: at offset 0, all of its log
  // whatever the group committed (true), or where the source starts a
  // partition it is given no offset for (false), e.g. at the offsets for a
  // time (KafkaSourceOptions::start_time, a replay's). Default: true
  bool start_unrestored_at_zero = true;

  // Processing-time source (checkpoint schedule, backpressure time, TTL).
  // Not owned. Default: Clock::Real()
  Clock* clock = Clock::Real();

  // Receives one line per assigned partition saying where its state came
  // from: "partition <topic>-<n>: restored checkpoint <id> at offset <o>"
  // or "partition <topic>-<n>: no checkpoint, starting empty at offset 0".
  // Called on the processing thread (inside the source's assignment
  // callback) with no lock held; must not throw or call into the pipeline.
  // Default: unset, which writes "weir pipeline: <line>" to stderr
  std::function<void(std::string_view line)> logger;

  // The file system of `state_dir` and of checkpoint uploads and restores
  // (the backends write their own files: RocksDB through its own Env). Not
  // owned; must be thread-safe (env.h). Default: Env::Default()
  Env* env = Env::Default();

  // Called on the processing thread (inside Run, or inside the source's Poll
  // for a restore) each time the phase changes; must be quick and must not
  // call into the pipeline. E.g. a service logs `weir phase=<name>`.
  // Default: none
  std::function<void(PipelinePhase)> phase_listener;

  // ---- performance ----

  // Records taken from the source per poll. Default: 1000
  size_t max_poll_records = 1000;

  // How long a poll waits for records. Default: absl::Milliseconds(100)
  absl::Duration poll_timeout = absl::Milliseconds(100);

  // Updates buffered in front of the sink; when full, partitions pause.
  // Larger: absorbs sink hiccups, more memory. Default: 50000
  size_t max_pending_updates = 50000;

  // Updates per Sink::Write. Default: 1000
  size_t sink_batch_size = 1000;

  // Keys tracked per partition by the hot-key sketch (Space-Saving): every
  // key with more than 1/capacity of a partition's records is reported.
  // 0 turns it off. Default: 64
  size_t hot_key_capacity = 64;

  // How often per-partition statistics (state size, hot keys) are
  // refreshed for partition_stats(). Default: absl::Seconds(1)
  absl::Duration partition_stats_interval = absl::Seconds(1);

  // How long to wait before retrying a sink that refused (kUnavailable),
  // while partitions are paused. Default: absl::Milliseconds(100)
  absl::Duration sink_retry_backoff = absl::Milliseconds(100);

  // kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// The outside parts. Not owned; all must outlive the pipeline.
struct PipelineParts {
  Source* source = nullptr;                  // required
  Decoder* decoder = nullptr;                // required
  Sink* sink = nullptr;                      // required
  ObjectStore* checkpoint_store = nullptr;   // required
  DeadLetterQueue* dead_letters = nullptr;   // required
  LateRecordOutput* late_records = nullptr;  // optional
};

struct PipelineStats {
  int64_t records_in = 0;
  int64_t records_processed = 0;  // folded (or late) into the operator
  int64_t dead_letters = 0;
  int64_t late_records = 0;
  int64_t updates_written = 0;  // accepted by Sink::Write
  int64_t pending_updates = 0;  // waiting in front of the sink
  int64_t checkpoints_completed = 0;
  int64_t checkpoints_failed = 0;
  int64_t checkpoint_bytes_uploaded = 0;
  std::optional<absl::Time> last_checkpoint;  // last success
  absl::Duration last_checkpoint_duration;
  absl::Duration paused;  // total time the partitions were paused
  int64_t partitions_assigned = 0;
  int64_t partitions_restored = 0;  // from a checkpoint
  // Checkpoints a restore skipped because a manifest or file was corrupt or
  // missing (the previous one was used).
  int64_t restore_fallbacks = 0;
  // Checkpoints put off because the sink could not take the pending
  // updates (kUnavailable): not failures, retried when the sink is back.
  int64_t checkpoints_postponed = 0;
};

// One assigned partition, as of the last refresh.
struct PartitionStats {
  TopicPartition partition;
  int64_t records = 0;      // processed since it was assigned here
  int64_t next_offset = 0;  // the next offset to process
  EventTime watermark = kMinEventTime;
  OperatorStats op;  // cache, late records, state reads/writes
  StateStats state;  // backend key counts and bytes (estimates)
  std::vector<HeavyHitter> hot_keys;  // hottest first
};

class Pipeline final {
 public:
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(
      const PipelineOptions& options, const PipelineParts& parts);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Processes until Stop() is called or a bounded source is exhausted (then
  // every window fires first, and a sink that refuses for now is waited for
  // until it takes the last updates or Stop() is called). Returns the error
  // that stopped processing: from the source, the state backend, the
  // dead-letter queue, more consecutive checkpoint failures than tolerated,
  // or a failed final checkpoint (`checkpoint_on_stop`). A refused record is
  // never an error: it goes to the dead-letter queue.
  absl::Status Run();

  // Asks Run to return (after a final checkpoint, if configured). Any thread.
  void Stop();

  // Asks for a checkpoint as soon as none is in flight. Any thread.
  void RequestCheckpoint();

  // Asks for a checkpoint that is also kept as savepoint `name` (never
  // collected by retention). Any thread.
  void RequestSavepoint(std::string name);

  PipelineStats stats() const;

  // Per assigned partition, refreshed every partition_stats_interval. Any
  // thread.
  std::vector<PartitionStats> partition_stats() const;

 private:
  class Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace weir

#endif  // WEIR_PIPELINE_H_
