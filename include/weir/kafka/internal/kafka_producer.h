// -----------------------------------------------------------------------------
// File: kafka/internal/kafka_producer.h
// -----------------------------------------------------------------------------
//
// The librdkafka producer that KafkaSink and KafkaDeadLetterQueue share:
// queue a message (waiting a bounded time for room), flush, and remember a
// failed delivery.
//
// A message whose delivery failed is gone: librdkafka already retried it as
// long as `delivery.timeout.ms` allows. So once one failed, every later Flush
// fails with kAborted: only a replay from the last checkpoint, which
// re-produces the message, repairs the output.
//
// Threading: thread-safe (librdkafka's producer is; the failure record has a
// mutex). Delivery reports run inside Produce and Flush, on the calling
// thread. librdkafka runs its own threads; this class starts none.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto producer,
//                         weir::internal::KafkaProducer::Create(
//                             "KafkaSinkOptions", settings, properties));
//   WEIR_RETURN_IF_ERROR(producer->Produce("features", key, value, {},
//                                          absl::Seconds(5)));
//   WEIR_RETURN_IF_ERROR(producer->Flush(absl::Seconds(30)));

#ifndef WEIR_KAFKA_INTERNAL_KAFKA_PRODUCER_H_
#define WEIR_KAFKA_INTERNAL_KAFKA_PRODUCER_H_

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace weir {
namespace internal {

class KafkaProducer {
 public:
  // A producer with `settings`, then the user's `properties` (see
  // NewKafkaConf). kInvalidArgument names a bad setting or property.
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(
      std::string_view owner,
      absl::Span<const std::pair<std::string, std::string>> settings,
      const std::map<std::string, std::string>& properties);

  // Messages not flushed yet are dropped.
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Queues one message (the bytes are copied). While librdkafka's queue is
  // full, serves delivery reports and retries for up to `timeout`, then
  // returns kUnavailable. kAborted once a delivery has failed.
  absl::Status Produce(
      std::string_view topic, std::string_view key, std::string_view value,
      absl::Span<const std::pair<std::string, std::string>> headers,
      absl::Duration timeout);

  // Waits until every queued message is delivered. kUnavailable if some are
  // still in flight after `timeout` (retry), kAborted if any delivery
  // failed since the producer was created.
  absl::Status Flush(absl::Duration timeout);

  // Messages delivered (acknowledged by the broker) so far.
  int64_t delivered() const;

  // librdkafka's instance name.
  std::string name() const { return rd_kafka_name(rk_); }

 private:
  explicit KafkaProducer(rd_kafka_t* rk) : rk_(rk) {}
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message,
                         void* opaque);
  absl::Status Failure() const;

  rd_kafka_t* rk_;
  mutable absl::Mutex mu_;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  int64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace internal
}  // namespace weir

#endif  // WEIR_KAFKA_INTERNAL_KAFKA_PRODUCER_H_
