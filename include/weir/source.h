// -----------------------------------------------------------------------------
// File: source.h
// -----------------------------------------------------------------------------
//
// Where records come from. A `Source` is a partitioned, offset-addressed log
// that the pipeline reads from its one processing thread: `Poll` returns a
// batch of `RawRecord`s (decode.h), and the pipeline pauses, resumes, seeks
// and commits partitions through the same object. Three sources exist:
//
//   KafkaSource    (weir/kafka/kafka_source.h) a consumer group member on
//                  librdkafka; partitions come and go with rebalances.
//   VectorSource   records held in memory, in any number of partitions; for
//                  tests. Rebalances can be simulated with SetAssignment.
//   FileSource     one JSON-lines file as one partition (offset = line
//                  number), for backfills; it reports the end of its input
//                  so a backfill pipeline can finish.
//
// Offsets. An offset is a record's position in its partition. The "next
// offset" of a partition is the offset of the first record not yet
// processed, the value a checkpoint stores and `CommitOffsets` takes, as in
// Kafka. Offsets are managed by weir: no source commits anything by itself.
//
// Rebalances. A `PartitionListener` is told when partitions are assigned to
// or revoked from the source. On assignment it returns where each partition
// starts (restoring state decides the start offset); a partition it does not
// name starts at the source's committed offset, or where the source's reset
// policy says when nothing was committed.
//
// Listener contract (as RocksDB's listener.h states it for its callbacks):
//   - Which thread: the thread inside `Poll` (or `Close`, or the source's
//     destructor, for the final revocation) — the pipeline's processing
//     thread. Never one of librdkafka's threads.
//   - Locks held: none. The listener may call the source's read-only
//     methods (Assignment, Positions) but must not call Poll, Seek, Pause,
//     Resume, CommitOffsets or Close from inside a callback.
//   - Exceptions must not escape. A source converts one that does into the
//     listener's failure (see below), but a listener should return a status.
//   - Failure: if OnAssigned fails, the source takes none of the partitions
//     it offered, and that Poll and every later one return the listener's
//     status; the only useful call left is Close.
//   - Duration: OnAssigned may take as long as restoring state takes, but a
//     Kafka consumer must be back in Poll within `max.poll.interval.ms`.
//   - Records: no record of a partition is returned after OnRevoked was
//     called for it, and none before OnAssigned returned for it; records of
//     a batch fetched before a revocation are dropped, not returned.
//
// Batches. The records `Poll` returns, and the bytes they view, stay valid
// until the next call to Poll, Close or the source's destructor.
//
// Threading: a source is not thread-safe; one thread (the processing thread)
// calls all of its methods, except `stats()`, which any thread may call.
// VectorSource and FileSource start no threads; KafkaSource's threads are
// librdkafka's own.
//
// Example:
//   class RestoreListener : public weir::PartitionListener {
//    public:
//     absl::StatusOr<weir::StartOffsets> OnAssigned(
//         absl::Span<const weir::TopicPartition> partitions) override {
//       weir::StartOffsets start;
//       for (const weir::TopicPartition& tp : partitions) {
//         WEIR_ASSIGN_OR_RETURN(int64_t next, RestoreState(tp));
//         start[tp] = next;  // state restored up to here
//       }
//       return start;
//     }
//     void OnRevoked(
//         absl::Span<const weir::TopicPartition> partitions) override {
//       for (const weir::TopicPartition& tp : partitions) DropState(tp);
//     }
//   };
//
//   RestoreListener listener;
//   source->SetPartitionListener(&listener);
//   while (running) {
//     WEIR_ASSIGN_OR_RETURN(absl::Span<const weir::RawRecord> batch,
//                           source->Poll(1000, absl::Milliseconds(100)));
//     for (const weir::RawRecord& record : batch) Process(record);
//     if (source->AtEnd()) break;  // bounded sources only
//   }

#ifndef WEIR_SOURCE_H_
#define WEIR_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "weir/decode.h"
#include "weir/env.h"
#include "weir/time.h"

namespace weir {

// One partition of one topic (for a FileSource, the topic is its name).
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  // "topic/partition", e.g. "payments/3".
  std::string ToString() const;

  friend bool operator==(const TopicPartition& a, const TopicPartition& b) {
    return a.partition == b.partition && a.topic == b.topic;
  }
  friend bool operator<(const TopicPartition& a, const TopicPartition& b) {
    return a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition;
  }
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
};

// Next offsets by partition: where to start reading, or what to commit.
using StartOffsets = std::map<TopicPartition, int64_t>;
using PartitionOffsets = std::map<TopicPartition, int64_t>;

// Where the source is in one assigned partition, for lag metrics.
struct PartitionPosition {
  TopicPartition partition;
  // The next offset Poll will deliver (last delivered + 1, or the start
  // offset before anything was delivered); unset while unknown (a Kafka
  // partition starting from its committed offset, before its first record).
  std::optional<int64_t> position;
  // The offset after the partition's last record, as last seen (for Kafka,
  // the high watermark of the latest fetch response); unset while unknown.
  std::optional<int64_t> log_end_offset;
  bool paused = false;

  // log_end_offset - position, never negative; unset unless both are known.
  std::optional<int64_t> lag() const;
};

// Counters of a source; any thread may read them through Source::stats().
struct SourceStats {
  // Records returned by Poll.
  int64_t records = 0;
  // Partitions assigned and revoked by rebalances (or SetAssignment).
  int64_t partitions_assigned = 0;
  int64_t partitions_revoked = 0;
  // Errors the source (librdkafka) retries by itself: broker connections
  // lost, coordinator moves, ... They are counted here, never returned.
  int64_t transient_errors = 0;
  // The latest of them, for a log line or a status page; empty if none.
  std::string last_transient_error;
};

// Told when partitions are assigned to or revoked from a source. See the
// listener contract in the file comment.
class PartitionListener {
 public:
  virtual ~PartitionListener() = default;

  // `partitions` are being assigned. Returns the offset each partition
  // starts at; a partition left out starts at its committed offset (or per
  // the source's reset policy if none). Naming a partition that is not in
  // `partitions`, or a negative offset, is an error.
  virtual absl::StatusOr<StartOffsets> OnAssigned(
      absl::Span<const TopicPartition> partitions) = 0;

  // `partitions` are being taken away: no record of theirs will be returned
  // any more. Called for every partition OnAssigned accepted, at the latest
  // when the source is closed.
  virtual void OnRevoked(absl::Span<const TopicPartition> partitions) = 0;
};

// A partitioned log read by one processing thread. See the file comment.
class Source {
 public:
  virtual ~Source() = default;

  // Sets the listener that rebalances are reported to; null for none (then
  // every partition starts at its committed offset). `listener` must outlive
  // the source, or the source must be closed first. REQUIRES: called before
  // the first Poll.
  virtual void SetPartitionListener(PartitionListener* listener) = 0;

  // Returns up to `max_records` records, waiting up to `timeout` for the
  // first one; an empty batch when none came. Rebalances are handled (and
  // the listener called) inside Poll. Records of one partition come in
  // offset order. The batch is valid until the next Poll, Close or the
  // destructor.
  //
  // Errors: the listener's status if OnAssigned failed;
  // kFailedPrecondition when the source is closed, or a partition has no
  // valid offset and the reset policy is "error" (the log no longer holds
  // the offset, or nothing was committed); kAborted when the source failed
  // beyond repair (a fatal librdkafka error): recreate it and restore from
  // the last checkpoint. Transient errors are retried inside and counted in
  // stats(), never returned.
  virtual absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) = 0;

  // True when a bounded source has returned every record of every
  // partition it has, and no more can come. Always false for Kafka.
  virtual bool AtEnd() const = 0;

  // Stops (resumes) returning records of `partitions` until Resume (Pause).
  // Pausing keeps the position: Resume continues with the first record not
  // yet returned. A rebalance clears the pause of the partitions it
  // reassigns. kInvalidArgument for a partition that is not assigned.
  virtual absl::Status Pause(absl::Span<const TopicPartition> partitions) = 0;
  virtual absl::Status Resume(absl::Span<const TopicPartition> partitions) = 0;

  // Makes `offset` the next offset of the assigned `partition`: Poll returns
  // no record fetched for the old position after Seek returns.
  // kInvalidArgument for an unassigned partition or a negative offset.
  virtual absl::Status Seek(const TopicPartition& partition,
                            int64_t offset) = 0;

  // Records `offsets` (next offsets, by partition) as the group's committed
  // offsets, synchronously. For Kafka this is for lag tooling and for
  // partitions no checkpoint covers; weir's checkpoints are the truth.
  // kUnavailable: not committed now, retry.
  virtual absl::Status CommitOffsets(const PartitionOffsets& offsets) = 0;

  // The partitions currently assigned, sorted.
  virtual std::vector<TopicPartition> Assignment() const = 0;

  // Position, log end and pause state of every assigned partition, sorted.
  // Cheap: it reads cached values and makes no network call.
  virtual absl::StatusOr<std::vector<PartitionPosition>> Positions() = 0;

  // A snapshot of the counters. Thread-safe.
  virtual SourceStats stats() const = 0;

  // Revokes every partition (calling OnRevoked) and releases the source's
  // resources; for Kafka, leaves the group. Later calls return OK and do
  // nothing; every other method then fails with kFailedPrecondition or
  // returns an empty result.
  virtual absl::Status Close() = 0;
};

// ---- ForwardingSource -------------------------------------------------------

// A Source that passes every call on to another one (not owned), for
// wrappers that change a few calls (end a bounded run, count records,
// inject a failure): they override those and inherit the rest.
class ForwardingSource : public Source {
 public:
  explicit ForwardingSource(Source* inner) : inner_(inner) {}

  void SetPartitionListener(PartitionListener* listener) override {
    inner_->SetPartitionListener(listener);
  }
  absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override {
    return inner_->Poll(max_records, timeout);
  }
  bool AtEnd() const override { return inner_->AtEnd(); }
  absl::Status Pause(absl::Span<const TopicPartition> partitions) override {
    return inner_->Pause(partitions);
  }
  absl::Status Resume(absl::Span<const TopicPartition> partitions) override {
    return inner_->Resume(partitions);
  }
  absl::Status Seek(const TopicPartition& partition, int64_t offset) override {
    return inner_->Seek(partition, offset);
  }
  absl::Status CommitOffsets(const PartitionOffsets& offsets) override {
    return inner_->CommitOffsets(offsets);
  }
  std::vector<TopicPartition> Assignment() const override {
    return inner_->Assignment();
  }
  absl::StatusOr<std::vector<PartitionPosition>> Positions() override {
    return inner_->Positions();
  }
  SourceStats stats() const override { return inner_->stats(); }
  absl::Status Close() override { return inner_->Close(); }

 protected:
  Source* inner() const { return inner_; }

 private:
  Source* const inner_;
};

// ---- VectorSource -----------------------------------------------------------

// One record given to a VectorSource.
struct VectorSourceRecord {
  int32_t partition = 0;
  std::string key;
  std::string value;
  std::optional<EventTime> timestamp;
};

struct VectorSourceOptions {
  // The topic every record carries. REQUIRES: non-empty. Default: "vector"
  std::string topic = "vector";

  // Number of partitions, 0 .. partitions-1, all assigned at the first Poll.
  // REQUIRES: >= 1. Default: 1
  int32_t partitions = 1;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Records held in memory. A partition's records get offsets 0, 1, 2, ... in
// the order they were given. Poll takes records from the unpaused assigned
// partitions in turn, one from each, so the interleaving is deterministic;
// it never waits (nothing can arrive while Poll runs). Committed offsets are
// kept in memory and used as start offsets on the next assignment.
class VectorSource final : public Source {
 public:
  // kInvalidArgument on bad options or a record whose partition is out of
  // range.
  static absl::StatusOr<std::unique_ptr<VectorSource>> Create(
      VectorSourceOptions options,
      std::vector<VectorSourceRecord> records = {});

  ~VectorSource() override;

  // Adds a record at the end of its partition; AtEnd becomes false until it
  // was returned. kInvalidArgument for a partition out of range.
  absl::Status Append(VectorSourceRecord record);

  // Simulates a rebalance: at the next Poll, partitions no longer in
  // `partitions` are revoked and new ones assigned (the listener is called
  // for both, in that order). kInvalidArgument for a partition out of range.
  absl::Status SetAssignment(std::vector<int32_t> partitions);

  // The number of records in `partition` (its log end offset).
  int64_t size(int32_t partition) const;

  void SetPartitionListener(PartitionListener* listener) override;
  absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override;
  bool AtEnd() const override;
  absl::Status Pause(absl::Span<const TopicPartition> partitions) override;
  absl::Status Resume(absl::Span<const TopicPartition> partitions) override;
  absl::Status Seek(const TopicPartition& partition, int64_t offset) override;
  absl::Status CommitOffsets(const PartitionOffsets& offsets) override;
  std::vector<TopicPartition> Assignment() const override;
  absl::StatusOr<std::vector<PartitionPosition>> Positions() override;
  SourceStats stats() const override;
  absl::Status Close() override;

  // The offsets committed so far.
  PartitionOffsets committed() const { return committed_; }

 private:
  struct Partition {
    std::vector<VectorSourceRecord> records;
    bool assigned = false;
    bool paused = false;
    int64_t next = 0;
  };

  explicit VectorSource(VectorSourceOptions options);
  absl::Status ApplyAssignment();
  absl::StatusOr<int32_t> AssignedPartition(const TopicPartition& tp) const;

  const VectorSourceOptions options_;
  std::vector<Partition> partitions_;
  PartitionListener* listener_ = nullptr;
  std::optional<std::vector<int32_t>> pending_assignment_;
  bool closed_ = false;
  absl::Status listener_error_;
  PartitionOffsets committed_;
  std::vector<RawRecord> batch_;
  int32_t next_partition_ = 0;  // where the round-robin starts

  mutable absl::Mutex stats_mu_;
  SourceStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

// ---- FileSource -------------------------------------------------------------

struct FileSourceOptions {
  // The JSON-lines file. REQUIRES: non-empty. Default: ""
  std::string path;

  // The topic its records carry and its partition is named by.
  // Default: unset (the path)
  std::optional<std::string> topic;

  // The partition number its records carry (several files can then be
  // the partitions of one topic). REQUIRES: >= 0. Default: 0
  int32_t partition = 0;

  // A line longer than this fails Poll with kDataLoss: the file is not what
  // a JSON-lines source expects. Default: 16 MiB
  size_t max_line_bytes = size_t{16} << 20;

  // The file system the file is read through. Not owned; must outlive the
  // source. Default: Env::Default()
  Env* env = Env::Default();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// One file as one partition (`partition`, 0 by default) of one topic. Offset n
// is the file's line n (counting from 0); the record's value is the line
// without its line break
// ("\n" or "\r\n"), its key is empty and it has no timestamp. Blank lines
// keep their number but are not returned. A last line without a line break
// is a record too: the file is taken to be complete. Poll never waits.
// Seeking backwards re-reads the file from its start.
class FileSource final : public Source {
 public:
  // kNotFound if the file does not exist, kFailedPrecondition if it is not
  // a regular file, the Env's error if it cannot be opened, kInvalidArgument
  // on bad options.
  static absl::StatusOr<std::unique_ptr<FileSource>> Create(
      FileSourceOptions options);

  ~FileSource() override;

  // The partition this source reads.
  const TopicPartition& partition() const { return tp_; }

  void SetPartitionListener(PartitionListener* listener) override;
  absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override;
  bool AtEnd() const override;
  absl::Status Pause(absl::Span<const TopicPartition> partitions) override;
  absl::Status Resume(absl::Span<const TopicPartition> partitions) override;
  absl::Status Seek(const TopicPartition& partition, int64_t offset) override;
  absl::Status CommitOffsets(const PartitionOffsets& offsets) override;
  std::vector<TopicPartition> Assignment() const override;
  absl::StatusOr<std::vector<PartitionPosition>> Positions() override;
  SourceStats stats() const override;
  absl::Status Close() override;

  // The offsets committed so far (kept in memory only).
  PartitionOffsets committed() const { return committed_; }

 private:
  FileSource(FileSourceOptions options, TopicPartition tp,
             std::unique_ptr<ReadableFile> file);
  absl::Status Assign();
  absl::Status CheckPartition(const TopicPartition& tp) const;
  // Positions the reader so that the next line read is line `offset`.
  absl::Status SeekTo(int64_t offset);
  // Reads the next line into `line_` (without its line break); false at the
  // end of the file.
  absl::StatusOr<bool> ReadLine();

  const FileSourceOptions options_;
  const TopicPartition tp_;
  std::unique_ptr<ReadableFile> file_;  // null once closed
  PartitionListener* listener_ = nullptr;
  bool assigned_ = false;
  bool closed_ = false;
  bool paused_ = false;
  bool eof_ = false;       // the reader reached the end of the file
  int64_t next_line_ = 0;  // number of the next line the reader returns
  std::optional<int64_t> line_count_;  // known once EOF was reached
  absl::Status listener_error_;
  PartitionOffsets committed_;
  std::string buf_;        // bytes read from the file, not yet returned
  size_t buf_pos_ = 0;     // where in buf_ the next line starts
  uint64_t file_pos_ = 0;  // the file offset of buf_'s end
  std::string_view line_;  // the last line read, in buf_
  std::string arena_;      // the bytes of the current batch
  std::vector<RawRecord> batch_;

  mutable absl::Mutex stats_mu_;
  SourceStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

namespace internal {

// Calls listener.OnAssigned, turning an escaping exception into kInternal,
// and checks the answer: every named partition is in `partitions`, every
// offset is >= 0. Used by every source.
absl::StatusOr<StartOffsets> CallOnAssigned(
    PartitionListener& listener, absl::Span<const TopicPartition> partitions);

// Calls listener.OnRevoked, swallowing an escaping exception.
void CallOnRevoked(PartitionListener& listener,
                   absl::Span<const TopicPartition> partitions);

}  // namespace internal

}  // namespace weir

#endif  // WEIR_SOURCE_H_
