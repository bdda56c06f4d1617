// Tests of the `weir-dlq-replay` tool against the local broker: dead-letter
// records of every category, with keys and values that are not text (NUL,
// bytes that are not UTF-8, every byte value) and a duplicate position, are
// written to a file (FileDeadLetterQueue) or a topic (KafkaDeadLetterQueue);
// the tool replays them with filters, and the target topic is read back to
// its end: exactly the matching records arrive, once each, key, value and
// timestamp byte for byte.

#include <librdkafka/rdkafka.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/dlq.h"
#include "weir/kafka/kafka_dead_letter_queue.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

constexpr char kBrokerBinary[] = WEIR_BINARY_DIR "/weir-broker";
constexpr char kReplayBinary[] = WEIR_BINARY_DIR "/weir-dlq-replay";

// One message read back from a topic.
struct Message {
  std::optional<std::string> key;  // nullopt: a null key
  std::string value;
  int32_t partition = 0;
  int64_t timestamp = 0;

  friend bool operator==(const Message&, const Message&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Message& m) {
    return os << "{key="
              << (m.key.has_value() ? absl::CHexEscape(*m.key) : "null")
              << " value=" << absl::CHexEscape(m.value)
              << " partition=" << m.partition << " ts=" << m.timestamp << "}";
  }
};

// Every message of `topic` (all partitions), from the log start to the high
// watermark as of the call.
absl::StatusOr<std::vector<Message>> ReadTopic(const std::string& bootstrap,
                                               const std::string& topic,
                                               int partitions) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"bootstrap.servers", bootstrap},
           {"group.id", "replay-test-reader"},
           {"enable.auto.commit", "false"}}) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InternalError(errstr);
    }
  }
  rd_kafka_t* rk =
      rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) return absl::InternalError(errstr);
  rd_kafka_poll_set_consumer(rk);
  std::vector<int64_t> end(partitions);
  std::vector<int64_t> next(partitions);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(partitions);
  absl::Status status;
  for (int p = 0; p < partitions && status.ok(); ++p) {
    int64_t low = 0;
    const rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
        rk, topic.c_str(), p, &low, &end[p], 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = absl::UnavailableError(rd_kafka_err2str(e));
    }
    next[p] = low;
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = low;
  }
  if (status.ok()) rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<Message> out;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (status.ok()) {
    bool done = true;
    for (int p = 0; p < partitions; ++p) done = done && next[p] >= end[p];
    if (done) break;
    if (absl::Now() > deadline) {
      status = absl::DeadlineExceededError("topic not read to its end");
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Message msg;
      if (m->key != nullptr) {
        msg.key = std::string(static_cast<const char*>(m->key), m->key_len);
      }
      msg.value = std::string(static_cast<const char*>(m->payload), m->len);
      msg.partition = m->partition;
      msg.timestamp = rd_kafka_message_timestamp(m, nullptr);
      next[m->partition] = m->offset + 1;
      out.push_back(std::move(msg));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!status.ok()) return status;
  return out;
}

// The tool's output (stdout and stderr) and its exit code.
struct ToolRun {
  std::string output;
  int exit_code = -1;
};

ToolRun RunTool(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kReplayBinary};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::SubprocessOptions o;
  o.merge_stderr = true;
  ToolRun run;
  auto p = testing::Subprocess::Start(argv, o);
  if (!p.ok()) {
    run.output = p.status().ToString();
    return run;
  }
  auto out = (*p)->ReadAll(absl::Seconds(60));
  if (out.ok()) run.output = *out;
  auto status = (*p)->Wait(absl::Seconds(10));
  if (status.ok() && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  return run;
}

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01

DeadLetterRecord Record(std::string key, std::string value,
                        DecodeErrorCategory category, std::string type,
                        std::string topic, int32_t partition, int64_t offset,
                        absl::Duration failed_after) {
  DeadLetterRecord r;
  r.key = std::move(key);
  r.value = std::move(value);
  r.category = category;
  r.error_type = std::move(type);
  r.error_message = "test";
  r.topic = std::move(topic);
  r.partition = partition;
  r.offset = offset;
  r.timestamp = 1767225600000 + offset;
  r.pipeline_name = "fraud_features";
  r.pipeline_version = "1";
  r.failed_at = kT0 + failed_after;
  return r;
}

std::string EveryByte() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(255 - i));
  return s;
}

// The records every test replays, in the order they were dead-lettered.
// [4] repeats [1]'s position, as a replay of the pipeline writes it again.
std::vector<DeadLetterRecord> Records() {
  using C = DecodeErrorCategory;
  return {
      Record("u1", std::string("\x00\xff{broken", 9), C::kDeserialization,
             "invalid_json", "payments", 0, 10, absl::ZeroDuration()),
      Record(std::string("u\x00\x02", 3), R"({"amount":"x"})",
             C::kSchemaMismatch, "wrong_type", "payments", 1, 11,
             absl::Seconds(1)),
      Record("u3", R"({"amount":12.345})", C::kSchemaMismatch, "lossy_number",
             "payments", 2, 12, absl::Seconds(2)),
      Record("", EveryByte(), C::kProcessingError, "invalid_argument",
             "payments", 3, 13, absl::Seconds(3)),
      Record(std::string("u\x00\x02", 3), R"({"amount":"x"})",
             C::kSchemaMismatch, "wrong_type", "payments", 1, 11,
             absl::Seconds(10)),
      Record("o7", "\xc3\x28 not utf-8", C::kSchemaMismatch, "missing_field",
             "orders", 1, 5, absl::Seconds(4)),
      Record("u8", std::string(100000, 'x'), C::kDeserialization, "too_deep",
             "payments", 0, 20, absl::Seconds(5)),
  };
}

// What a replay of `r` must deliver (the partition is checked separately).
Message Expected(const DeadLetterRecord& r, int32_t partition) {
  Message m;
  if (!r.key.empty()) m.key = r.key;
  m.value = r.value;
  m.partition = partition;
  m.timestamp = *r.timestamp;
  return m;
}

// Drops the partitions, which the murmur2 partitioner chose.
std::vector<Message> WithoutPartitions(std::vector<Message> v) {
  for (Message& m : v) m.partition = 0;
  return v;
}

class DlqReplayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(kBrokerBinary, X_OK) != 0 || access(kReplayBinary, X_OK) != 0) {
      return;
    }
    LocalBroker::Options o;
    o.binary_path = kBrokerBinary;
    o.topics = {{"payments", 4}, {"orders", 2}, {"dead", 2}};
    auto broker = LocalBroker::Start(o);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    auto dir = testing::TempDir::Create("dlq-replay");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new testing::TempDir(std::move(*dir));
    auto dlq = FileDeadLetterQueue::Create({.path = DlqFile()});
    ASSERT_TRUE(dlq.ok()) << dlq.status();
    for (const DeadLetterRecord& r : Records()) {
      ASSERT_TRUE((*dlq)->Write(r).ok());
    }
    ASSERT_TRUE((*dlq)->Flush().ok());
  }

  static void TearDownTestSuite() {
    delete dir_;
    delete broker_;
    dir_ = nullptr;
    broker_ = nullptr;
  }

  void SetUp() override {
    WEIR_REQUIRE_PART(
        testing::NeedExecutable(kBrokerBinary, "build the weir-broker target"));
    WEIR_REQUIRE_PART(testing::NeedExecutable(
        kReplayBinary, "build the weir-dlq-replay target"));
    ASSERT_NE(broker_, nullptr);
  }

  static std::string DlqFile() { return dir_->path() + "/dlq.jsonl"; }
  static std::string Bootstrap() {
    return "--bootstrap=" + broker_->bootstrap();
  }

  // A fresh target topic.
  static std::string NewTopic(int partitions) {
    static int n = 0;
    const std::string name = absl::StrCat("replayed-", ++n);
    EXPECT_TRUE(broker_->CreateTopic(name, partitions).ok());
    return name;
  }

  static testing::TempDir* dir_;
  static LocalBroker* broker_;
};

testing::TempDir* DlqReplayTest::dir_ = nullptr;
LocalBroker* DlqReplayTest::broker_ = nullptr;

TEST_F(DlqReplayTest, FileReplayByCategoryDeliversExactlyTheMatchingRecords) {
  const std::string topic = NewTopic(4);
  const ToolRun run =
      RunTool({"--input=" + DlqFile(), Bootstrap(), "--topic=" + topic,
               "--category=schema_mismatch"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output,
              HasSubstr("read=7 matched=3 duplicates=1 published=3"));
  auto got = ReadTopic(broker_->bootstrap(), topic, 4);
  ASSERT_TRUE(got.ok()) << got.status();
  const std::vector<DeadLetterRecord> r = Records();
  EXPECT_THAT(WithoutPartitions(*got),
              UnorderedElementsAreArray(
                  {Expected(r[1], 0), Expected(r[2], 0), Expected(r[5], 0)}));
}

TEST_F(DlqReplayTest, CombinedFiltersAndLimit) {
  // wrong_type or invalid_json, from payments, failed in [T0+0.5s, T0+5s):
  // [1] only ([0] failed at T0, [4], which repeats [1], at T0+10s).
  {
    const std::string topic = NewTopic(1);
    const ToolRun run = RunTool(
        {"--input=" + DlqFile(), Bootstrap(), "--topic=" + topic,
         "--error_type=wrong_type,invalid_json", "--source_topic=payments",
         "--since=2026-01-01T00:00:00.5Z", "--until=2026-01-01T00:00:05Z"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_THAT(run.output,
                HasSubstr("read=7 matched=1 duplicates=0 published=1"));
    auto got = ReadTopic(broker_->bootstrap(), topic, 1);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_THAT(*got, UnorderedElementsAreArray({Expected(Records()[1], 0)}));
  }
  // Deserialization errors of partition 0, at most one: the first, [0].
  {
    const std::string topic = NewTopic(1);
    const ToolRun run =
        RunTool({"--input=" + DlqFile(), Bootstrap(), "--topic=" + topic,
                 "--category=deserialization", "--partition=0", "--limit=1"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_THAT(run.output, HasSubstr("matched=1 duplicates=0 published=1"));
    auto got = ReadTopic(broker_->bootstrap(), topic, 1);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_THAT(*got, UnorderedElementsAreArray({Expected(Records()[0], 0)}));
  }
}

TEST_F(DlqReplayTest, DefaultTargetIsTheSourceTopicAndPartitionCanBeKept) {
  // [5] came from orders/1; without --topic it goes back there, to the same
  // partition with --same_partition. [3] has an empty key: a null key.
  const ToolRun run =
      RunTool({"--input=" + DlqFile(), Bootstrap(), "--same_partition",
               "--error_type=missing_field,invalid_argument"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("matched=2 duplicates=0 published=2"));
  auto orders = ReadTopic(broker_->bootstrap(), "orders", 2);
  ASSERT_TRUE(orders.ok()) << orders.status();
  EXPECT_THAT(*orders, UnorderedElementsAreArray({Expected(Records()[5], 1)}));
  auto payments = ReadTopic(broker_->bootstrap(), "payments", 4);
  ASSERT_TRUE(payments.ok()) << payments.status();
  EXPECT_THAT(*payments,
              UnorderedElementsAreArray({Expected(Records()[3], 3)}));
  EXPECT_FALSE((*payments)[0].key.has_value());
}

TEST_F(DlqReplayTest, DryRunListsAndPublishesNothing) {
  const std::string topic = NewTopic(1);
  const ToolRun run =
      RunTool({"--input=" + DlqFile(), Bootstrap(), "--topic=" + topic,
               "--dry_run", "--category=schema_mismatch"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output,
              HasSubstr("read=7 matched=3 duplicates=1 published=0"));
  EXPECT_THAT(run.output,
              HasSubstr("would publish payments/1@11 -> " + topic +
                        " category=schema_mismatch error_type=wrong_type"));
  EXPECT_THAT(run.output, HasSubstr("would publish orders/1@5"));
  auto got = ReadTopic(broker_->bootstrap(), topic, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
}

TEST_F(DlqReplayTest, ReplaysFromAKafkaDlqTopic) {
  // The same records, written by KafkaDeadLetterQueue to a two-partition
  // topic, keyed by position.
  KafkaDeadLetterQueueOptions o;
  o.bootstrap_servers = broker_->bootstrap();
  o.topic = "dead";
  auto dlq = KafkaDeadLetterQueue::Create(o);
  ASSERT_TRUE(dlq.ok()) << dlq.status();
  for (const DeadLetterRecord& r : Records()) {
    ASSERT_TRUE((*dlq)->Write(r).ok());
  }
  ASSERT_TRUE((*dlq)->Flush().ok());

  const std::string topic = NewTopic(3);
  const ToolRun run =
      RunTool({"--dlq_topic=dead", Bootstrap(), "--topic=" + topic,
               "--category=deserialization,processing_error"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output,
              HasSubstr("read=7 matched=3 duplicates=0 published=3"));
  auto got = ReadTopic(broker_->bootstrap(), topic, 3);
  ASSERT_TRUE(got.ok()) << got.status();
  const std::vector<DeadLetterRecord> r = Records();
  EXPECT_THAT(WithoutPartitions(*got),
              UnorderedElementsAreArray(
                  {Expected(r[0], 0), Expected(r[3], 0), Expected(r[6], 0)}));

  // The duplicate position is dropped here too.
  const std::string topic2 = NewTopic(1);
  const ToolRun run2 =
      RunTool({"--dlq_topic=dead", Bootstrap(), "--topic=" + topic2,
               "--error_type=wrong_type"});
  ASSERT_EQ(run2.exit_code, 0) << run2.output;
  EXPECT_THAT(run2.output,
              HasSubstr("read=7 matched=1 duplicates=1 published=1"));
}

TEST_F(DlqReplayTest, FailuresExitNonZero) {
  // Bad usage: 2.
  EXPECT_EQ(RunTool({"--input=" + DlqFile()}).exit_code, 2);  // no bootstrap
  EXPECT_EQ(RunTool({Bootstrap()}).exit_code, 2);             // no source
  EXPECT_EQ(RunTool({"--input=" + DlqFile(), Bootstrap(), "--category=bogus"})
                .exit_code,
            2);
  EXPECT_EQ(RunTool({"--input=" + DlqFile(), Bootstrap(), "--since=yesterday"})
                .exit_code,
            2);
  // Unreadable input: 1.
  const ToolRun missing =
      RunTool({"--input=" + dir_->path() + "/nope.jsonl", Bootstrap()});
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  const std::string bad = dir_->path() + "/bad.jsonl";
  {
    auto dlq = FileDeadLetterQueue::Create({.path = bad});
    ASSERT_TRUE(dlq.ok());
    ASSERT_TRUE((*dlq)->Write(Records()[0]).ok());
    ASSERT_TRUE((*dlq)->Flush().ok());
  }
  FILE* f = std::fopen(bad.c_str(), "a");
  ASSERT_NE(f, nullptr);
  std::fputs("{\"not\":\"a record\"}\n", f);
  std::fclose(f);
  const ToolRun corrupt = RunTool({"--input=" + bad, Bootstrap()});
  EXPECT_EQ(corrupt.exit_code, 1) << corrupt.output;
  EXPECT_THAT(corrupt.output, HasSubstr("bad.jsonl:2:"));
  // A cluster that does not answer: 1, and nothing counted as published.
  auto port = testing::PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  const ToolRun undeliverable = RunTool(
      {"--input=" + DlqFile(), absl::StrCat("--bootstrap=127.0.0.1:", *port),
       "--timeout=2s", "--limit=1"});
  EXPECT_EQ(undeliverable.exit_code, 1) << undeliverable.output;
  EXPECT_THAT(undeliverable.output, HasSubstr("published=0"));
}

}  // namespace
}  // namespace weir
