// -----------------------------------------------------------------------------
// File: kafka/kafka_dead_letter_queue.h
// -----------------------------------------------------------------------------
//
// `KafkaDeadLetterQueue` is the Kafka topic target of the dead-letter queue
// (weir/dlq.h): each `DeadLetterRecord` is produced as its JSON line
// (`DeadLetterRecord::ToJson`, read back with `ParseDeadLetterJson`) to
// "<source topic>.dlq", or to one configured topic, keyed by
// "<topic>/<partition>/<offset>" of the failed record, so that a reader (or
// a compacted topic) de-duplicates the copies a replay writes.
//
// Durability: acks=all with the idempotent producer; `Write` only queues,
// `Flush` waits until the broker has acknowledged every record written so
// far. The pipeline flushes before it checkpoints past a record. If a
// delivery fails (after librdkafka's own retries, `delivery.timeout.ms`),
// that and every later Flush return kAborted: the record is lost from the
// topic and only a replay from the last checkpoint writes it again.
//
// The topic must exist (or the cluster must create topics on first use):
// records for a missing topic wait for it and then fail their delivery.
//
// Threading: thread-safe. Delivery reports are handled inside Write and
// Flush, on the calling thread; librdkafka runs its own threads, this class
// starts none.
//
// Example:
//   weir::KafkaDeadLetterQueueOptions options;
//   options.bootstrap_servers = "kafka-1:9092";
//   WEIR_ASSIGN_OR_RETURN(auto dlq,
//                         weir::KafkaDeadLetterQueue::Create(options));
//   WEIR_ASSIGN_OR_RETURN(auto router,
//                         weir::DeadLetterRouter::Create(router_options,
//                                                        dlq.get()));
//   ...
//   WEIR_RETURN_IF_ERROR(router->Flush());  // before checkpointing offsets

#ifndef WEIR_KAFKA_KAFKA_DEAD_LETTER_QUEUE_H_
#define WEIR_KAFKA_KAFKA_DEAD_LETTER_QUEUE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/dlq.h"

namespace weir {

namespace internal {
class KafkaProducer;
}  // namespace internal

struct KafkaDeadLetterQueueOptions {
  // "host:port[,host:port...]". REQUIRES: non-empty. Default: ""
  std::string bootstrap_servers;

  // The topic every record goes to. Default: unset (the failed record's
  // topic followed by `topic_suffix`)
  std::optional<std::string> topic;

  // Appended to the source topic when `topic` is unset.
  // REQUIRES: the result is a valid topic name. Default: ".dlq"
  std::string topic_suffix = ".dlq";

  // librdkafka producer properties passed through as-is (security,
  // compression, linger, ...), after weir's settings. bootstrap.servers,
  // acks, enable.idempotence and transactional.id are weir's. Default: none
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

class KafkaDeadLetterQueue final : public DeadLetterQueue {
 public:
  // kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<KafkaDeadLetterQueue>> Create(
      KafkaDeadLetterQueueOptions options);

  // Records not flushed are dropped (they were never durable).
  ~KafkaDeadLetterQueue() override;

  // Queues `record` (see the file comment). kInvalidArgument if the topic
  // it would go to is not a valid name, kUnavailable when the queue stays
  // full, kAborted after a failed delivery.
  absl::Status Write(const DeadLetterRecord& record) override;

  // Waits for every record written so far to be acknowledged.
  absl::Status Flush() override;

  // The topic `record` goes to.
  std::string TopicFor(const DeadLetterRecord& record) const;

  // The message key of `record`: "<topic>/<partition>/<offset>".
  static std::string KeyFor(const DeadLetterRecord& record);

 private:
  KafkaDeadLetterQueue(KafkaDeadLetterQueueOptions options,
                       std::unique_ptr<internal::KafkaProducer> producer);

  const KafkaDeadLetterQueueOptions options_;
  std::unique_ptr<internal::KafkaProducer> producer_;
};

}  // namespace weir

#endif  // WEIR_KAFKA_KAFKA_DEAD_LETTER_QUEUE_H_
