// -----------------------------------------------------------------------------
// File: kafka/kafka_source.h
// -----------------------------------------------------------------------------
//
// `KafkaSource` is a `Source` (weir/source.h) on a librdkafka consumer that
// is a member of a consumer group. weir manages its offsets: auto commit and
// the automatic offset store are off, and offsets are committed only by
// `CommitOffsets`. On every rebalance the source calls the
// `PartitionListener` and then assigns the partitions at the offsets the
// listener returned, so restoring a partition's state decides where reading
// starts; a partition the listener leaves out starts at the group's
// committed offset, or per `auto_offset_reset` when there is none.
//
// Any librdkafka property can be passed through `properties` as-is (SASL,
// SSL, fetch sizes, timeouts...); they are applied after weir's own
// settings, so they override weir's defaults, except for the few that weir
// must own (see KafkaSourceOptions::properties).
//
// Rebalance protocol: eager by default ("range"); the whole assignment is
// revoked and reassigned on every rebalance. With
// partition.assignment.strategy=cooperative-sticky the source uses
// incremental assignment and only moved partitions are revoked.
//
// Errors. Broker connections lost, coordinator moves and other errors that
// librdkafka retries by itself are counted in stats() (transient_errors and
// the last one's text), never returned: a broker that is down only stops
// the flow of records. Poll fails with kFailedPrecondition when a partition
// has no valid offset under auto_offset_reset=kError (crash tests use it, so
// that records dropped by retention are never silently skipped), and with
// kAborted on a fatal librdkafka error, after which the source is unusable:
// recreate it and restore from the last checkpoint.
//
// Batches hold the librdkafka messages themselves (no copy) until the next
// Poll. The rd_kafka_consumer_poll API is used, never the batch consume
// API, which librdkafka 2.0 cannot combine safely with seek, pause or
// rebalance.
//
// Threading: not thread-safe, like every Source: one thread calls Poll and
// the rest, and the listener is called on it (inside Poll or Close).
// librdkafka runs its own threads (one main thread and one per broker);
// weir starts none. stats() may be called from any thread.
//
// Example:
//   weir::KafkaSourceOptions options;
//   options.bootstrap_servers = "kafka-1:9092,kafka-2:9092";
//   options.group_id = "fraud-features";
//   options.topics = {"payments"};
//   options.properties = {{"security.protocol", "SASL_SSL"},
//                         {"sasl.mechanism", "SCRAM-SHA-512"},
//                         {"sasl.username", user},
//                         {"sasl.password", password}};
//   WEIR_ASSIGN_OR_RETURN(auto source, weir::KafkaSource::Create(options));
//   source->SetPartitionListener(&restore_listener);
//   WEIR_ASSIGN_OR_RETURN(absl::Span<const weir::RawRecord> batch,
//                         source->Poll(1000, absl::Milliseconds(100)));

#ifndef WEIR_KAFKA_KAFKA_SOURCE_H_
#define WEIR_KAFKA_KAFKA_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "weir/decode.h"
#include "weir/source.h"

// librdkafka's handle types, so that this header does not include rdkafka.h.
typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_message_s rd_kafka_message_t;
typedef struct rd_kafka_topic_partition_list_s rd_kafka_topic_partition_list_t;

namespace weir {

// Where a partition without a committed offset (or whose offset the log no
// longer holds) starts.
enum class OffsetReset : uint8_t {
  kEarliest,  // the oldest record the log still has
  kLatest,    // the next record produced
  kError,     // nowhere: Poll fails with kFailedPrecondition
};

struct KafkaSourceOptions {
  // ---- Behaviour ----

  // "host:port[,host:port...]". REQUIRES: non-empty. Default: ""
  std::string bootstrap_servers;

  // The consumer group. REQUIRES: non-empty. Default: ""
  std::string group_id;

  // Topics to subscribe to; a name starting with '^' is a regular
  // expression, as in librdkafka. REQUIRES: non-empty, no duplicates.
  // Default: none
  std::vector<std::string> topics;

  // See OffsetReset. Default: OffsetReset::kEarliest
  OffsetReset auto_offset_reset = OffsetReset::kEarliest;

  // Set: a partition the listener gives no start offset starts at its first
  // record whose timestamp is at or after this time (librdkafka's offsets
  // for times; the beginning of the log when the broker finds none or
  // cannot look times up, as librdkafka's mock cluster), not at the group's
  // committed offset or per auto_offset_reset. A replay group uses it
  // (docs/operations.md, "Replay"); a partition restored from a checkpoint
  // still starts where the checkpoint says. Default: unset
  std::optional<absl::Time> start_time;

  // librdkafka's partition.assignment.strategy: "range" and "roundrobin"
  // are eager, "cooperative-sticky" is incremental. Default: "range"
  std::string partition_assignment_strategy = "range";

  // librdkafka's client.id, seen in broker logs and quotas. Default: "weir"
  std::string client_id = "weir";

  // librdkafka properties passed through as-is, after weir's settings (so
  // they win). An unknown name or a bad value makes Validate and Create
  // fail with kInvalidArgument naming it. The fields above and what weir
  // owns cannot be set here: bootstrap.servers, group.id,
  // enable.auto.commit, enable.auto.offset.store, auto.offset.reset and
  // partition.assignment.strategy. weir's own default differs from
  // librdkafka's in one: queued.min.messages is 10,000,000 (librdkafka's
  // 100,000 makes librdkafka before 2.1 stop fetching for a second whenever
  // that many records wait, which starves a consumer reading faster than
  // that); prefetching stays bounded by queued.max.messages.kbytes (64 MiB
  // by default). Default: none
  std::map<std::string, std::string> properties;

  // ---- Performance ----

  // Largest wait for rd_kafka_seek_partitions to confirm a Seek. Seeking is
  // local to the client, so this only bounds a stuck client.
  // Default: absl::Seconds(10)
  absl::Duration seek_timeout = absl::Seconds(10);

  // Largest time Close spends leaving the group (librdkafka's close). A close
  // that takes longer (a group stuck in a rebalance) returns kDeadlineExceeded
  // instead of blocking the process's shutdown. REQUIRES: positive. Default:
  // absl::Seconds(30)
  absl::Duration close_timeout = absl::Seconds(30);

  // Largest wait for the partition leaders' answer to a `start_time`
  // lookup; past it Poll fails with kDeadlineExceeded. REQUIRES: positive.
  // Default: absl::Seconds(30)
  absl::Duration start_time_timeout = absl::Seconds(30);

  // Returns kInvalidArgument naming the first bad field (or property).
  absl::Status Validate() const;
};

class KafkaSource final : public Source {
 public:
  // Creates the consumer and subscribes; the group is joined during the
  // first Polls. kInvalidArgument for bad options (librdkafka's own checks
  // included), kInternal if librdkafka cannot create the client.
  static absl::StatusOr<std::unique_ptr<KafkaSource>> Create(
      KafkaSourceOptions options);

  // Closes the source (see Close), so the listener is called one last time
  // unless Close was called before.
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // librdkafka's instance name, "<client.id>#consumer-<n>".
  std::string name() const;

  // The group's committed next offsets of `partitions`, asked of the
  // coordinator; partitions with no committed offset are left out.
  // kUnavailable when the coordinator did not answer within `timeout`.
  absl::StatusOr<PartitionOffsets> Committed(
      absl::Span<const TopicPartition> partitions, absl::Duration timeout);

  void SetPartitionListener(PartitionListener* listener) override;
  absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override;
  bool AtEnd() const override { return false; }
  absl::Status Pause(absl::Span<const TopicPartition> partitions) override;
  absl::Status Resume(absl::Span<const TopicPartition> partitions) override;
  absl::Status Seek(const TopicPartition& partition, int64_t offset) override;
  absl::Status CommitOffsets(const PartitionOffsets& offsets) override;
  std::vector<TopicPartition> Assignment() const override;
  absl::StatusOr<std::vector<PartitionPosition>> Positions() override;
  SourceStats stats() const override;
  // Leaves the group, giving the assignment back (the listener hears of
  // it), and closes the consumer, within close_timeout. A member whose join
  // is in flight first lets the group answer (up to 10 s), so that it
  // leaves rather than stays in the group until its session lapses
  // (docs/guarantees.md, "Rebalance"). kDeadlineExceeded if
  // librdkafka did not finish in time (the consumer is then abandoned, not
  // destroyed), kUnavailable if it could not start closing. Polling after
  // Close fails with kFailedPrecondition.
  absl::Status Close() override;

 private:
  explicit KafkaSource(KafkaSourceOptions options);

  // The librdkafka callbacks (in kafka_source.cc) call the methods below.
  friend struct KafkaSourceCallbacks;
  void OnAssign(rd_kafka_topic_partition_list_t* partitions, bool cooperative);
  // Whether neither librdkafka nor this source holds a partition.
  bool LibrdkafkaAssignmentEmpty();
  // Adds to `start` the offsets for options_.start_time of the partitions
  // of `offered` it lacks.
  absl::Status AddStartTimeOffsets(const std::vector<TopicPartition>& offered,
                                   StartOffsets* start);
  void OnRevoke(rd_kafka_topic_partition_list_t* partitions, bool cooperative);
  void OnError(int err, const char* reason);
  void CountTransient(std::string text);
  // Drops the whole assignment (eager protocol); a failure is counted.
  void Unassign();
  // Whether destroying the consumer now would hit librdkafka < 2.3's abort
  // for a cooperative member never given an assignment.
  bool MustAwaitFirstAssignment() const;
  // Whether Close first lets the group answer a join in flight (see Close).
  bool AwaitsAssignment() const;

  void ReleaseBatch();
  absl::Status CheckAssigned(absl::Span<const TopicPartition> partitions) const;
  // Returns a message with an error to the caller as a status, or counts it
  // and returns OK. Takes ownership of `message`.
  absl::Status HandleMessageError(rd_kafka_message_t* message);

  const KafkaSourceOptions options_;
  // Whether the group's rebalance protocol is cooperative (incremental
  // assign/unassign) or eager. librdkafka refuses assignors of mixed
  // protocols, so the configured ones decide it; rd_kafka_rebalance_protocol
  // is never asked: inside a closing consumer's rebalance callback it can
  // return NULL or block forever (librdkafka issue 4041).
  const bool cooperative_;
  rd_kafka_t* rk_ = nullptr;
  // Whether the group ever gave this member an assignment (possibly empty).
  bool ever_assigned_ = false;
  // Eager protocol: set from the subscription and from each revocation
  // (the member then joins again) until the group's assignment arrives.
  bool join_in_flight_ = true;
  // Set during Close: an assignment arriving then is taken silently, only
  // so that librdkafka can revoke it.
  bool closing_ = false;
  // Set when librdkafka's close did not finish within close_timeout.
  bool close_unfinished_ = false;
  PartitionListener* listener_ = nullptr;
  bool closed_ = false;
  // Set by a failed OnAssigned or a fatal error; returned by every Poll.
  absl::Status sticky_error_;

  std::set<TopicPartition> assignment_;
  std::set<TopicPartition> paused_;
  // Next offset per partition, as far as this source knows it.
  std::map<TopicPartition, int64_t> next_offset_;

  std::vector<rd_kafka_message_t*> held_;  // the messages of the batch
  std::vector<RawRecord> batch_;

  mutable absl::Mutex stats_mu_;
  SourceStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace weir

#endif  // WEIR_KAFKA_KAFKA_SOURCE_H_
