// Implementation of weir/kafka/kafka_sink.h.

#include "weir/kafka/kafka_sink.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/kafka/internal/kafka_producer.h"
#include "weir/sinks.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

constexpr char kOwner[] = "KafkaSinkOptions";

std::vector<std::pair<std::string, std::string>> Settings(
    const KafkaSinkOptions& options) {
  return {
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", "weir-sink"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"partitioner", "murmur2_random"},
      {"linger.ms", "5"},
  };
}

// Appends `s` with '\' and '|' escaped by a '\'.
void AppendEscaped(std::string_view s, std::string* out) {
  for (char c : s) {
    if (c == '\\' || c == '|') out->push_back('\\');
    out->push_back(c);
  }
}

}  // namespace

absl::Status KafkaSinkOptions::Validate() const {
  if (bootstrap_servers.empty()) {
    return absl::InvalidArgumentError(
        "KafkaSinkOptions.bootstrap_servers is empty");
  }
  WEIR_RETURN_IF_ERROR(
      internal::ValidateTopicName("KafkaSinkOptions.topic", topic));
  if (write_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "KafkaSinkOptions.write_timeout is negative");
  }
  if (flush_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "KafkaSinkOptions.flush_timeout must be positive");
  }
  static constexpr std::pair<std::string_view, std::string_view> kReserved[] = {
      {"bootstrap.servers", "use KafkaSinkOptions.bootstrap_servers"},
      {"acks", "updates are written with acks=all"},
      {"enable.idempotence", "updates use the idempotent producer"},
      {"partitioner", "updates are partitioned by key with murmur2"},
      {"transactional.id", "KafkaSink does not use transactions"},
  };
  WEIR_RETURN_IF_ERROR(
      internal::CheckNoReservedProperties(kOwner, properties, kReserved));
  return internal::NewKafkaConf(kOwner, Settings(*this), properties).status();
}

absl::StatusOr<std::unique_ptr<KafkaSink>> KafkaSink::Create(
    KafkaSinkOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<internal::KafkaProducer> producer,
                        internal::KafkaProducer::Create(
                            kOwner, Settings(options), options.properties));
  return std::unique_ptr<KafkaSink>(
      new KafkaSink(std::move(options), std::move(producer)));
}

KafkaSink::KafkaSink(KafkaSinkOptions options,
                     std::unique_ptr<internal::KafkaProducer> producer)
    : options_(std::move(options)), producer_(std::move(producer)) {}

KafkaSink::~KafkaSink() = default;

std::string KafkaSink::KeyFor(const FeatureUpdate& update) {
  std::string key;
  key.reserve(update.key.size() + update.feature.size() + 24);
  AppendEscaped(update.key, &key);
  key.push_back('|');
  AppendEscaped(update.feature, &key);
  absl::StrAppend(&key, "|", update.window.start);
  return key;
}

absl::Status KafkaSink::Write(absl::Span<const FeatureUpdate> updates) {
  std::vector<std::pair<std::string, std::string>> headers(2);
  headers[0].first = "weir.version_time";
  headers[1].first = "weir.version_offset";
  for (const FeatureUpdate& update : updates) {
    headers[0].second = absl::StrCat(update.version_time);
    headers[1].second = absl::StrCat(update.version_offset);
    WEIR_RETURN_IF_ERROR(producer_->Produce(options_.topic, KeyFor(update),
                                            FeatureUpdateToJson(update),
                                            headers, options_.write_timeout));
  }
  return absl::OkStatus();
}

absl::Status KafkaSink::Flush() {
  return producer_->Flush(options_.flush_timeout);
}

int64_t KafkaSink::delivered() const { return producer_->delivered(); }

}  // namespace weir
