// Implementation of weir/kafka/kafka_dead_letter_queue.h.

#include "weir/kafka/kafka_dead_letter_queue.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/kafka/internal/kafka_producer.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

constexpr char kOwner[] = "KafkaDeadLetterQueueOptions";

std::vector<std::pair<std::string, std::string>> Settings(
    const KafkaDeadLetterQueueOptions& options) {
  return {
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", "weir-dlq"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
  };
}

}  // namespace

absl::Status KafkaDeadLetterQueueOptions::Validate() const {
  if (bootstrap_servers.empty()) {
    return absl::InvalidArgumentError(
        "KafkaDeadLetterQueueOptions.bootstrap_servers is empty");
  }
  if (topic.has_value()) {
    WEIR_RETURN_IF_ERROR(internal::ValidateTopicName(
        "KafkaDeadLetterQueueOptions.topic", *topic));
  } else if (topic_suffix.empty()) {
    return absl::InvalidArgumentError(
        "KafkaDeadLetterQueueOptions.topic_suffix is empty, so the DLQ topic "
        "would be the source topic");
  } else {
    WEIR_RETURN_IF_ERROR(internal::ValidateTopicName(
        "KafkaDeadLetterQueueOptions.topic_suffix", topic_suffix));
  }
  if (write_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "KafkaDeadLetterQueueOptions.write_timeout is negative");
  }
  if (flush_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "KafkaDeadLetterQueueOptions.flush_timeout must be positive");
  }
  static constexpr std::pair<std::string_view, std::string_view> kReserved[] = {
      {"bootstrap.servers",
       "use KafkaDeadLetterQueueOptions.bootstrap_servers"},
      {"acks", "dead letters are written with acks=all"},
      {"enable.idempotence", "dead letters use the idempotent producer"},
      {"transactional.id", "the dead-letter queue does not use transactions"},
  };
  WEIR_RETURN_IF_ERROR(
      internal::CheckNoReservedProperties(kOwner, properties, kReserved));
  return internal::NewKafkaConf(kOwner, Settings(*this), properties).status();
}

absl::StatusOr<std::unique_ptr<KafkaDeadLetterQueue>>
KafkaDeadLetterQueue::Create(KafkaDeadLetterQueueOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<internal::KafkaProducer> producer,
                        internal::KafkaProducer::Create(
                            kOwner, Settings(options), options.properties));
  return std::unique_ptr<KafkaDeadLetterQueue>(
      new KafkaDeadLetterQueue(std::move(options), std::move(producer)));
}

KafkaDeadLetterQueue::KafkaDeadLetterQueue(
    KafkaDeadLetterQueueOptions options,
    std::unique_ptr<internal::KafkaProducer> producer)
    : options_(std::move(options)), producer_(std::move(producer)) {}

KafkaDeadLetterQueue::~KafkaDeadLetterQueue() = default;

std::string KafkaDeadLetterQueue::TopicFor(
    const DeadLetterRecord& record) const {
  if (options_.topic.has_value()) return *options_.topic;
  return absl::StrCat(record.topic, options_.topic_suffix);
}

std::string KafkaDeadLetterQueue::KeyFor(const DeadLetterRecord& record) {
  return absl::StrCat(record.topic, "/", record.partition, "/", record.offset);
}

absl::Status KafkaDeadLetterQueue::Write(const DeadLetterRecord& record) {
  const std::string topic = TopicFor(record);
  WEIR_RETURN_IF_ERROR(internal::ValidateTopicName("dead-letter topic", topic));
  return producer_->Produce(topic, KeyFor(record), record.ToJson(), {},
                            options_.write_timeout);
}

absl::Status KafkaDeadLetterQueue::Flush() {
  return producer_->Flush(options_.flush_timeout);
}

}  // namespace weir
