// Integration tests of KafkaSink against the local broker (weir-broker):
// keys, JSON values, version headers and partitioning of produced updates,
// replays that a newest-version reader absorbs, and failed deliveries
// surfacing as kAborted.

#include "weir/kafka/kafka_sink.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
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
#include "weir/record.h"
#include "weir/sinks.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

constexpr char kBrokerBinary[] = WEIR_BINARY_DIR "/weir-broker";
constexpr char kTopic[] = "features";
constexpr int kPartitions = 3;
constexpr int64_t kT = 1767225600000;

#define WEIR_ASSERT_OK(expr)               \
  do {                                     \
    const ::absl::Status weir_s_ = (expr); \
    ASSERT_TRUE(weir_s_.ok()) << weir_s_;  \
  } while (false)

struct Message {
  int32_t partition = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Reads `count` messages of `topic` from the beginning of every partition.
absl::StatusOr<std::vector<Message>> ReadTopic(const std::string& bootstrap,
                                               const std::string& topic,
                                               int partitions, size_t count) {
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
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<Message> out;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (out.size() < count && absl::Now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Message msg;
      msg.partition = m->partition;
      msg.key.assign(static_cast<const char*>(m->key), m->key_len);
      msg.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
             RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          msg.headers[name] =
              std::string(static_cast<const char*>(value), size);
        }
      }
      out.push_back(std::move(msg));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (out.size() < count) {
    return absl::DeadlineExceededError(
        absl::StrCat("read ", out.size(), " of ", count, " messages"));
  }
  return out;
}

FeatureUpdate Update(std::string key, std::string feature, int64_t start,
                     Value value, int64_t offset) {
  FeatureUpdate u;
  u.key = std::move(key);
  u.feature = std::move(feature);
  u.window = {start, start + 60000};
  u.value = std::move(value);
  u.version_time = start + 60000;
  u.version_offset = offset;
  return u;
}

class KafkaSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(
        testing::NeedExecutable(kBrokerBinary, "build the weir-broker target"));
    LocalBroker::Options options;
    options.binary_path = kBrokerBinary;
    options.topics = {{kTopic, kPartitions}};
    absl::StatusOr<std::unique_ptr<LocalBroker>> broker =
        LocalBroker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  KafkaSinkOptions Options() {
    KafkaSinkOptions options;
    options.bootstrap_servers = broker_->bootstrap();
    options.topic = kTopic;
    return options;
  }

  std::unique_ptr<LocalBroker> broker_;
};

TEST_F(KafkaSinkTest, UpdatesArriveWithStableKeysJsonAndVersionHeaders) {
  const std::vector<FeatureUpdate> updates = {
      Update("u1", "txn_count_1m", kT, Value::Int64(3), 42),
      Update("u1", "txn_count_1m", kT + 60000, Value::Int64(1), 57),
      Update("u1", "amount_sum_1m", kT, Value::Dec(1250, 2), 42),
      Update("a|b", "f\\g", kT, Value::Double(0.1), 7),
      Update("u2", "last_merchant", kT, Value::String("m\"45\n"), 9),
      Update("u3", "amount_mean_1m", kT, Value::Null(), 11),
  };
  absl::StatusOr<std::unique_ptr<KafkaSink>> sink =
      KafkaSink::Create(Options());
  ASSERT_TRUE(sink.ok()) << sink.status();
  WEIR_ASSERT_OK((*sink)->Write(updates));
  WEIR_ASSERT_OK((*sink)->Flush());
  EXPECT_EQ((*sink)->delivered(), static_cast<int64_t>(updates.size()));

  EXPECT_EQ(KafkaSink::KeyFor(updates[0]), "u1|txn_count_1m|1767225600000");
  EXPECT_EQ(KafkaSink::KeyFor(updates[3]), "a\\|b|f\\\\g|1767225600000");

  absl::StatusOr<std::vector<Message>> messages =
      ReadTopic(broker_->bootstrap(), kTopic, kPartitions, updates.size());
  ASSERT_TRUE(messages.ok()) << messages.status();
  std::map<std::string, Message> by_key;
  for (Message& m : *messages) {
    const std::string key = m.key;
    EXPECT_TRUE(by_key.emplace(key, std::move(m)).second) << "twice: " << key;
  }
  for (const FeatureUpdate& u : updates) {
    const std::string key = KafkaSink::KeyFor(u);
    auto it = by_key.find(key);
    ASSERT_NE(it, by_key.end()) << "missing " << key;
    const Message& m = it->second;
    absl::StatusOr<FeatureUpdate> parsed = ParseFeatureUpdateJson(m.value);
    ASSERT_TRUE(parsed.ok()) << parsed.status() << ": " << m.value;
    EXPECT_EQ(*parsed, u) << m.value;
    EXPECT_EQ(m.value, FeatureUpdateToJson(u));
    EXPECT_EQ(m.headers.at("weir.version_time"), absl::StrCat(u.version_time));
    EXPECT_EQ(m.headers.at("weir.version_offset"),
              absl::StrCat(u.version_offset));
    // Partitioned by key like a Java producer, so a key stays in one
    // partition and a compacted topic keeps its last update.
    EXPECT_EQ(m.partition,
              rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(),
                                               kPartitions, nullptr, nullptr))
        << key;
  }
}

TEST_F(KafkaSinkTest, AReplayIsAbsorbedByKeepingTheNewestVersionPerKey) {
  const std::vector<FeatureUpdate> first = {
      Update("u1", "txn_count_1m", kT, Value::Int64(2), 10),
      Update("u2", "txn_count_1m", kT, Value::Int64(5), 12),
  };
  // A late record re-emits u1's window with a newer version.
  const std::vector<FeatureUpdate> second = {
      Update("u1", "txn_count_1m", kT, Value::Int64(3), 15)};
  absl::StatusOr<std::unique_ptr<KafkaSink>> sink =
      KafkaSink::Create(Options());
  ASSERT_TRUE(sink.ok()) << sink.status();
  WEIR_ASSERT_OK((*sink)->Write(first));
  WEIR_ASSERT_OK((*sink)->Write(second));
  // The crash and replay: the same updates, in the same order, again.
  WEIR_ASSERT_OK((*sink)->Write(first));
  WEIR_ASSERT_OK((*sink)->Write(second));
  WEIR_ASSERT_OK((*sink)->Flush());

  absl::StatusOr<std::vector<Message>> messages =
      ReadTopic(broker_->bootstrap(), kTopic, kPartitions, 6);
  ASSERT_TRUE(messages.ok()) << messages.status();
  std::vector<FeatureUpdate> read;
  std::map<std::string, std::string> last_value_per_key;  // compaction
  for (const Message& m : *messages) {
    absl::StatusOr<FeatureUpdate> u = ParseFeatureUpdateJson(m.value);
    ASSERT_TRUE(u.ok()) << u.status();
    read.push_back(*u);
    last_value_per_key[m.key] = m.value;
  }
  const std::vector<FeatureUpdate> latest = LatestFeatureUpdates(read);
  ASSERT_EQ(latest.size(), 2u);
  EXPECT_EQ(latest[0], second[0]);
  EXPECT_EQ(latest[1], first[1]);
  // What compaction keeps (the last message per key, in partition order)
  // ends equal as well.
  EXPECT_EQ(last_value_per_key[KafkaSink::KeyFor(second[0])],
            FeatureUpdateToJson(second[0]));
  EXPECT_EQ(last_value_per_key[KafkaSink::KeyFor(first[1])],
            FeatureUpdateToJson(first[1]));
}

TEST_F(KafkaSinkTest, AFailedDeliveryMakesFlushAbort) {
  KafkaSinkOptions options = Options();
  options.properties = {{"message.timeout.ms", "1500"},
                        {"reconnect.backoff.ms", "20"}};
  absl::StatusOr<std::unique_ptr<KafkaSink>> sink = KafkaSink::Create(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  WEIR_ASSERT_OK(broker_->SetBrokerDown(-1));
  WEIR_ASSERT_OK(
      (*sink)->Write({Update("u1", "txn_count_1m", kT, Value::Int64(1), 1)}));
  absl::Status flushed = (*sink)->Flush();
  EXPECT_TRUE(absl::IsAborted(flushed)) << flushed;
  EXPECT_THAT(std::string(flushed.message()), HasSubstr(kTopic));
  // The update is lost from the topic for good: later calls keep saying so.
  WEIR_ASSERT_OK(broker_->SetBrokerUp(-1));
  EXPECT_TRUE(absl::IsAborted((*sink)->Flush()));
  EXPECT_TRUE(absl::IsAborted(
      (*sink)->Write({Update("u1", "txn_count_1m", kT, Value::Int64(1), 2)})));
}

TEST(KafkaSinkOptionsTest, BadOptionsAreNamed) {
  KafkaSinkOptions options;
  options.bootstrap_servers = "127.0.0.1:1";
  options.topic = "features";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  options.topic = "";
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("topic"));
  options.topic = "features";
  options.properties = {{"transactional.id", "x"}};
  EXPECT_THAT(std::string(options.Validate().message()),
              HasSubstr("transactional.id"));
  options.properties = {{"no.such.property", "x"}};
  absl::Status s = KafkaSink::Create(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("no.such.property"));
  options.properties = {{"compression.type", "lz4"}};
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  options.bootstrap_servers = "";
  EXPECT_THAT(std::string(options.Validate().message()),
              HasSubstr("bootstrap_servers"));
}

}  // namespace
}  // namespace weir
