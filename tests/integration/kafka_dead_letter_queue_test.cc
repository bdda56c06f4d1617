// Integration tests of KafkaDeadLetterQueue against the local broker
// (weir-broker): records reach "<topic>.dlq" (or the configured topic)
// keyed by their source position, and read back through ParseDeadLetterJson
// equal to what was written, bytes exact.

#include "weir/kafka/kafka_dead_letter_queue.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/dlq.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

constexpr char kBrokerBinary[] = WEIR_BINARY_DIR "/weir-broker";

#define WEIR_ASSERT_OK(expr)               \
  do {                                     \
    const ::absl::Status weir_s_ = (expr); \
    ASSERT_TRUE(weir_s_.ok()) << weir_s_;  \
  } while (false)

struct Message {
  std::string key;
  std::string value;
};

// Reads `count` messages of partition 0 of `topic` from its beginning.
absl::StatusOr<std::vector<Message>> ReadTopic(const std::string& bootstrap,
                                               const std::string& topic,
                                               size_t count) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr,
                        sizeof(errstr)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "group.id", "reader", errstr, sizeof(errstr)) !=
          RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(errstr);
  }
  rd_kafka_t* rk =
      rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) return absl::InternalError(errstr);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), 0)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<Message> out;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (out.size() < count && absl::Now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.push_back(
          {std::string(static_cast<const char*>(m->key), m->key_len),
           std::string(static_cast<const char*>(m->payload), m->len)});
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_destroy(rk);
  if (out.size() < count) {
    return absl::DeadlineExceededError(
        absl::StrCat("read ", out.size(), " of ", count, " messages"));
  }
  return out;
}

DeadLetterRecord Record(std::string topic, int32_t partition, int64_t offset) {
  DeadLetterRecord r;
  // Bytes that are neither text nor JSON, a NUL included.
  r.key = std::string("u1\0\xff", 4);
  r.value = std::string("{\"amount\":\"12.\xc3\x28\"}\n\0tail", 25);
  r.category = DecodeErrorCategory::kSchemaMismatch;
  r.error_type = "wrong_type";
  r.error_field = "amount";
  r.error_message = "expected a number, found \"a string\"";
  r.topic = std::move(topic);
  r.partition = partition;
  r.offset = offset;
  r.timestamp = 1767225600123;
  r.pipeline_name = "fraud_features";
  r.pipeline_version = "3.1.2";
  r.failed_at = absl::FromUnixMillis(1767225601500);
  return r;
}

class KafkaDeadLetterQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(
        testing::NeedExecutable(kBrokerBinary, "build the weir-broker target"));
    LocalBroker::Options options;
    options.binary_path = kBrokerBinary;
    options.topics = {{"payments", 4}, {"payments.dlq", 1}, {"dead", 1}};
    absl::StatusOr<std::unique_ptr<LocalBroker>> broker =
        LocalBroker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  std::unique_ptr<LocalBroker> broker_;
};

TEST_F(KafkaDeadLetterQueueTest, RecordsRoundTripToTheDlqTopicBytesExact) {
  KafkaDeadLetterQueueOptions options;
  options.bootstrap_servers = broker_->bootstrap();
  absl::StatusOr<std::unique_ptr<KafkaDeadLetterQueue>> dlq =
      KafkaDeadLetterQueue::Create(options);
  ASSERT_TRUE(dlq.ok()) << dlq.status();
  const std::vector<DeadLetterRecord> records = {Record("payments", 3, 42),
                                                 Record("payments", 0, 7)};
  EXPECT_EQ((*dlq)->TopicFor(records[0]), "payments.dlq");
  for (const DeadLetterRecord& r : records) WEIR_ASSERT_OK((*dlq)->Write(r));
  WEIR_ASSERT_OK((*dlq)->Flush());

  absl::StatusOr<std::vector<Message>> messages =
      ReadTopic(broker_->bootstrap(), "payments.dlq", records.size());
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 2u);
  EXPECT_EQ((*messages)[0].key, "payments/3/42");
  EXPECT_EQ((*messages)[1].key, "payments/0/7");
  for (size_t i = 0; i < records.size(); ++i) {
    absl::StatusOr<DeadLetterRecord> parsed =
        ParseDeadLetterJson((*messages)[i].value);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, records[i]);
    EXPECT_EQ(parsed->key, records[i].key);
    EXPECT_EQ(parsed->value, records[i].value);
  }
}

TEST_F(KafkaDeadLetterQueueTest, AConfiguredTopicTakesEveryRecord) {
  KafkaDeadLetterQueueOptions options;
  options.bootstrap_servers = broker_->bootstrap();
  options.topic = "dead";
  absl::StatusOr<std::unique_ptr<KafkaDeadLetterQueue>> dlq =
      KafkaDeadLetterQueue::Create(options);
  ASSERT_TRUE(dlq.ok()) << dlq.status();
  const DeadLetterRecord record = Record("payments", 1, 5);
  WEIR_ASSERT_OK((*dlq)->Write(record));
  WEIR_ASSERT_OK((*dlq)->Flush());
  absl::StatusOr<std::vector<Message>> messages =
      ReadTopic(broker_->bootstrap(), "dead", 1);
  ASSERT_TRUE(messages.ok()) << messages.status();
  EXPECT_EQ((*messages)[0].key, "payments/1/5");
  absl::StatusOr<DeadLetterRecord> parsed =
      ParseDeadLetterJson((*messages)[0].value);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, record);
}

TEST(KafkaDeadLetterQueueOptionsTest, BadOptionsAreNamed) {
  KafkaDeadLetterQueueOptions options;
  EXPECT_THAT(std::string(options.Validate().message()),
              HasSubstr("bootstrap_servers"));
  options.bootstrap_servers = "127.0.0.1:1";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  options.topic_suffix = "";
  EXPECT_THAT(std::string(options.Validate().message()),
              HasSubstr("topic_suffix"));
  options.topic = "bad topic";
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("topic"));
  options.topic = "dead";
  options.properties = {{"acks", "1"}};
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("acks"));
  options.properties = {{"no.such.property", "1"}};
  absl::Status s = KafkaDeadLetterQueue::Create(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("no.such.property"));
}

}  // namespace
}  // namespace weir
