// -----------------------------------------------------------------------------
// File: kafka/kafka_sink.h
// -----------------------------------------------------------------------------
//
// `KafkaSink` is a `Sink` (weir/sink.h) that produces every `FeatureUpdate`
// to a Kafka topic, one message each:
//
//   key     "<entity>|<feature>|<window start>", e.g. "u1|txn_count_1m|
//           1767225600000"; a '|' or '\' inside the entity or feature is
//           escaped with a '\', so distinct updates never share a key
//   value   the update as one JSON object, the line format of FileSink
//           (weir/sinks.h: FeatureUpdateToJson / ParseFeatureUpdateJson),
//           which carries the version (version_time, version_offset)
//   headers "weir.version_time" and "weir.version_offset", the version as
//           decimal text, so a consumer can compare versions without
//           parsing the value
//
// Messages are partitioned by key with Java's murmur2 partitioner, so all
// updates of one key land in one partition, in the order they were written.
//
// The guarantee, honestly: at least once. The producer is idempotent
// (acks=all, no duplicates or reordering from librdkafka's own retries),
// and Flush waits until the broker acknowledged everything written so far;
// but a replay after a crash produces the updates since the last
// checkpoint again. They come back with the same keys and the same
// versions, so:
//   - a consumer that keeps, per key, the update with the newest version
//     (FeatureUpdate::NewerThan) holds at every moment what one in-order
//     application would hold;
//   - a compacted topic, which keeps the last message per key, ends equal
//     to one application once the replay has passed the point of the crash
//     (in between, a key may briefly show an older version again).
// Kafka transactions are not used: weir's checkpoint, not Kafka, records
// the source offsets, and the local test broker (librdkafka's mock cluster)
// cannot test transactions faithfully (aborted data stays visible), so
// exactly-once delivery to the topic is not claimed.
//
// Errors: Write returns kUnavailable when librdkafka's queue stays full
// (the caller retries the same updates; any that were queued are produced
// twice, harmlessly by the contract above). Flush returns kUnavailable when
// messages are still in flight after `flush_timeout`, and kAborted once any
// delivery has failed: that update is lost from the topic, and only a
// replay from the last checkpoint produces it again.
//
// Threading: called from one thread (the pipeline's processing thread), as
// every Sink, though it is thread-safe. Delivery reports are handled inside
// Write and Flush; librdkafka runs its own threads, this class starts none.
//
// Example:
//   weir::KafkaSinkOptions options;
//   options.bootstrap_servers = "kafka-1:9092";
//   options.topic = "features";
//   options.properties = {{"compression.type", "lz4"}};
//   WEIR_ASSIGN_OR_RETURN(auto sink, weir::KafkaSink::Create(options));
//   WEIR_RETURN_IF_ERROR(sink->Write(updates));
//   WEIR_RETURN_IF_ERROR(sink->Flush());

#ifndef WEIR_KAFKA_KAFKA_SINK_H_
#define WEIR_KAFKA_KAFKA_SINK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "weir/sink.h"

namespace weir {

namespace internal {
class KafkaProducer;
}  // namespace internal

struct KafkaSinkOptions {
  // "host:port[,host:port...]". REQUIRES: non-empty. Default: ""
  std::string bootstrap_servers;

  // The topic updates go to; compaction (cleanup.policy=compact) suits it.
  // REQUIRES: a valid topic name. Default: ""
  std::string topic;

  // librdkafka producer properties passed through as-is (security,
  // compression, linger, batch sizes...), after weir's settings.
  // bootstrap.servers, acks, enable.idempotence, partitioner and
  // transactional.id are weir's. Default: none
  std::map<std::string, std::string> properties;

  // How long Write waits for room in librdkafka's queue before it returns
  // kUnavailable. Default: absl::Seconds(10)
  absl::Duration write_timeout = absl::Seconds(10);

  // How long Flush waits for acknowledgements before it returns
  // kUnavailable. Default: absl::Seconds(30)
  absl::Duration flush_timeout = absl::Seconds(30);

  // Returns kInvalidArgument naming the first bad field (or property).
  absl::Status Validate() const;
};

class KafkaSink final : public Sink {
 public:
  // kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<KafkaSink>> Create(
      KafkaSinkOptions options);

  // Updates not flushed are dropped.
  ~KafkaSink() override;

  absl::Status Write(absl::Span<const FeatureUpdate> updates) override;
  absl::Status Flush() override;

  // Messages the broker acknowledged so far.
  int64_t delivered() const;

  // The message key of `update` (see the file comment).
  static std::string KeyFor(const FeatureUpdate& update);

 private:
  KafkaSink(KafkaSinkOptions options,
            std::unique_ptr<internal::KafkaProducer> producer);

  const KafkaSinkOptions options_;
  std::unique_ptr<internal::KafkaProducer> producer_;
};

}  // namespace weir

#endif  // WEIR_KAFKA_KAFKA_SINK_H_
