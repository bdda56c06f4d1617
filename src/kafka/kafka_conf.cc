// Implementation of weir/kafka/internal/kafka_conf.h.

#include "weir/kafka/internal/kafka_conf.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace weir {
namespace internal {

absl::StatusOr<KafkaConfPtr> NewKafkaConf(
    std::string_view owner,
    absl::Span<const std::pair<std::string, std::string>> settings,
    const std::map<std::string, std::string>& properties) {
  KafkaConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(owner), ": librdkafka refused ", name, "=",
                       value, ": ", errstr));
    }
  }
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(owner), ".properties[\"", name, "\"]: ", errstr));
    }
  }
  return conf;
}

absl::Status CheckNoReservedProperties(
    std::string_view owner,
    const std::map<std::string, std::string>& properties,
    absl::Span<const std::pair<std::string_view, std::string_view>> reserved) {
  for (const auto& [name, why] : reserved) {
    if (properties.count(std::string(name)) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(owner), ".properties[\"", std::string(name),
                       "\"] cannot be set: ", std::string(why)));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTopicName(std::string_view field, std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), " \"", std::string(name),
                     "\" is not a Kafka topic name (1 to 249 characters)"));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(field), " \"", std::string(name),
          "\" is not a Kafka topic name (only [a-zA-Z0-9._-] allowed)"));
    }
  }
  return absl::OkStatus();
}

std::string KafkaErrorText(rd_kafka_resp_err_t err, std::string_view context) {
  return absl::StrCat(std::string(context), ": ", rd_kafka_err2name(err), ": ",
                      rd_kafka_err2str(err));
}

}  // namespace internal
}  // namespace weir
