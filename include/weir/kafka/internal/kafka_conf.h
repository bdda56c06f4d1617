// -----------------------------------------------------------------------------
// File: kafka/internal/kafka_conf.h
// -----------------------------------------------------------------------------
//
// Private helpers shared by weir's librdkafka clients (KafkaSource,
// KafkaSink, KafkaDeadLetterQueue): building an `rd_kafka_conf_t` from
// weir's settings plus the user's pass-through properties with errors that
// name the bad entry, and turning librdkafka error codes into statuses.
//
// Threading: the functions are thread-safe.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(
//       weir::internal::KafkaConfPtr conf,
//       weir::internal::NewKafkaConf("KafkaSinkOptions",
//                                    {{"bootstrap.servers", servers}},
//                                    options.properties));

#ifndef WEIR_KAFKA_INTERNAL_KAFKA_CONF_H_
#define WEIR_KAFKA_INTERNAL_KAFKA_CONF_H_

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace weir {
namespace internal {

struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using KafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;

// A configuration with `settings` applied in order, then `properties`
// (which may override settings). A property librdkafka refuses is
// kInvalidArgument "<owner>.properties[\"name\"]: <librdkafka's reason>"; a
// refused setting names the setting.
absl::StatusOr<KafkaConfPtr> NewKafkaConf(
    std::string_view owner,
    absl::Span<const std::pair<std::string, std::string>> settings,
    const std::map<std::string, std::string>& properties);

// kInvalidArgument naming the first of `reserved` present in `properties`,
// with `why` (say, "weir manages offsets") as the reason.
absl::Status CheckNoReservedProperties(
    std::string_view owner,
    const std::map<std::string, std::string>& properties,
    absl::Span<const std::pair<std::string_view, std::string_view>> reserved);

// kInvalidArgument unless `name` is a Kafka topic name: 1 to 249 of
// [a-zA-Z0-9._-], not "." or "..".
absl::Status ValidateTopicName(std::string_view field, std::string_view name);

// "<context>: <NAME>: <description>", e.g. "commit: _TRANSPORT: Local:
// Broker transport failure".
std::string KafkaErrorText(rd_kafka_resp_err_t err, std::string_view context);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_KAFKA_INTERNAL_KAFKA_CONF_H_
