// Implementation of weir/kafka/internal/kafka_producer.h.

#include "weir/kafka/internal/kafka_producer.h"

#include <algorithm>
#include <climits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

namespace {

int TimeoutMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  const int64_t ms =
      absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    std::string_view owner,
    absl::Span<const std::pair<std::string, std::string>> settings,
    const std::map<std::string, std::string>& properties) {
  WEIR_ASSIGN_OR_RETURN(KafkaConfPtr conf,
                        NewKafkaConf(owner, settings, properties));
  // Each message carries the producer as its opaque (see Produce).
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaProducer::OnDelivery);
  char errstr[512];
  rd_kafka_t* rk =
      rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(owner), ": cannot create the Kafka producer: ", errstr));
  }
  conf.release();  // rd_kafka_new took it
  return std::unique_ptr<KafkaProducer>(new KafkaProducer(rk));
}

KafkaProducer::~KafkaProducer() { rd_kafka_destroy(rk_); }

void KafkaProducer::OnDelivery(rd_kafka_t* rk,
                               const rd_kafka_message_t* message,
                               void* opaque) {
  // The per-message opaque is the producer (see Produce).
  auto* self = static_cast<KafkaProducer*>(message->_private);
  if (self == nullptr) return;
  absl::MutexLock lock(&self->mu_);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++self->delivered_;
  } else if (self->failure_.ok()) {
    self->failure_ = absl::AbortedError(absl::StrCat(
        "a Kafka delivery to ", rd_kafka_topic_name(message->rkt),
        " failed, so output since the last checkpoint is incomplete: ",
        KafkaErrorText(message->err, "delivery")));
  }
}

absl::Status KafkaProducer::Failure() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

absl::Status KafkaProducer::Produce(
    std::string_view topic, std::string_view key, std::string_view value,
    absl::Span<const std::pair<std::string, std::string>> headers,
    absl::Duration timeout) {
  WEIR_RETURN_IF_ERROR(Failure());
  const std::string topic_name(topic);
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = rd_kafka_headers_new(headers.size());
      for (const auto& [name, text] : headers) {
        rd_kafka_header_add(hdrs, name.data(),
                            static_cast<ssize_t>(name.size()), text.data(),
                            static_cast<ssize_t>(text.size()));
      }
    }
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic_name.c_str()),
        RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(this), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;  // the headers are owned
    if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::InvalidArgumentError(
          KafkaErrorText(err, absl::StrCat("producing to ", topic_name)));
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::UnavailableError(
          absl::StrCat("the Kafka producer queue stayed full for ",
                       absl::FormatDuration(timeout), "; retry later"));
    }
    rd_kafka_poll(rk_, std::min(TimeoutMs(left), 100));
  }
  rd_kafka_poll(rk_, 0);  // serve delivery reports
  return absl::OkStatus();
}

absl::Status KafkaProducer::Flush(absl::Duration timeout) {
  const rd_kafka_resp_err_t err = rd_kafka_flush(rk_, TimeoutMs(timeout));
  WEIR_RETURN_IF_ERROR(Failure());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        rd_kafka_outq_len(rk_), " Kafka messages still in flight after ",
        absl::FormatDuration(timeout), ": ", KafkaErrorText(err, "flush")));
  }
  return absl::OkStatus();
}

int64_t KafkaProducer::delivered() const {
  absl::MutexLock lock(&mu_);
  return delivered_;
}

}  // namespace internal
}  // namespace weir
