// Integration tests of the local broker: the weir-broker tool driven
// through LocalBroker, fed by the weir-produce tool, read back with a plain
// librdkafka consumer. Needs the weir-broker and weir-produce targets built
// next to this test.

#include "weir/testing/local_broker.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

constexpr char kBrokerBinary[] = WEIR_BINARY_DIR "/weir-broker";
constexpr char kProduceBinary[] = WEIR_BINARY_DIR "/weir-produce";
constexpr char kTopic[] = "payments";
constexpr int kPartitions = 4;

// Environment of the consumer child process (see RunConsumerChildIfAsked).
constexpr char kChildBootstrapEnv[] = "WEIR_LOCAL_BROKER_TEST_CHILD_BOOTSTRAP";
constexpr char kChildTopicEnv[] = "WEIR_LOCAL_BROKER_TEST_CHILD_TOPIC";

#define WEIR_ASSERT_OK(expr)               \
  do {                                     \
    const ::absl::Status weir_s_ = (expr); \
    ASSERT_TRUE(weir_s_.ok()) << weir_s_;  \
  } while (false)

// ---- Input -----------------------------------------------------------------

// One input line and the key weir-produce must give it.
struct Line {
  std::string text;
  std::optional<std::string> key;
};

// W-PAY-shaped lines, each unique by its "seq", with the malformed and
// awkward shapes the key scan must survive mixed in.
std::vector<Line> MakeLines(int count, int first_seq = 0) {
  std::vector<Line> lines;
  lines.reserve(static_cast<size_t>(count));
  for (int seq = first_seq; seq < first_seq + count; ++seq) {
    const std::string user = absl::StrCat("u", seq % 97);
    Line line;
    switch (seq % 500) {
      case 7:  // Missing user_id: a null key, still produced.
        line.text = absl::StrCat(R"({"merchant_id":"m1","amount":1.00,"seq":)",
                                 seq, "}");
        break;
      case 99:  // Not JSON at all.
        line.text = absl::StrCat("not json, seq ", seq);
        break;
      case 150:  // Truncated after the key: keeps its key.
        line.text = absl::StrCat(R"({"seq":)", seq, R"(,"user_id":")", user,
                                 R"(","amount":12.)");
        line.key = user;
        break;
      case 250:  // The field name inside a string value, and escapes.
        line.text = absl::StrCat(
            R"({"seq":)", seq, R"(,"note":"\"user_id\":\"fake\"",)",
            R"("user_id":"\u00e9\/\ud83d\ude00)", user, R"("})");
        line.key = absl::StrCat("\xC3\xA9/\xF0\x9F\x98\x80", user);
        break;
      case 300:  // The field name in a nested object comes first.
        line.text =
            absl::StrCat(R"({"meta":{"user_id":"nested","l":[1,"}"]},)",
                         R"("user_id":")", user, R"(","seq":)", seq, "}");
        line.key = user;
        break;
      case 400:  // A non-string user_id: a null key.
        line.text = absl::StrCat(R"({"user_id":12,"seq":)", seq, "}");
        break;
      default:
        line.text =
            absl::StrCat(R"({"user_id":")", user, R"(","merchant_id":"m)",
                         seq % 50, R"(","amount":12.34,"event_timestamp":)",
                         1767225600000LL + seq / 2, R"(,"seq":)", seq, "}");
        line.key = user;
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string JoinLines(const std::vector<Line>& lines) {
  std::string all;
  for (const Line& line : lines) absl::StrAppend(&all, line.text, "\n");
  return all;
}

// The partition Java's default partitioner (and weir-produce's
// murmur2_random) picks for a non-null key.
int32_t Murmur2Partition(const std::string& key, int32_t partitions) {
  return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(),
                                          partitions, nullptr, nullptr);
}

// ---- Tools -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<LocalBroker>> StartBroker(int brokers) {
  LocalBroker::Options options;
  options.binary_path = kBrokerBinary;
  options.brokers = brokers;
  options.topics = {{kTopic, kPartitions}};
  return LocalBroker::Start(options);
}

// Starts weir-produce for `kTopic`, feeding it `input` on stdin.
absl::StatusOr<std::unique_ptr<testing::Subprocess>> StartProduce(
    const std::string& bootstrap, const std::string& input,
    std::vector<std::string> extra_args = {}) {
  std::vector<std::string> argv = {kProduceBinary,
                                   absl::StrCat("--bootstrap=", bootstrap),
                                   absl::StrCat("--topic=", kTopic)};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  testing::SubprocessOptions options;
  options.pipe_stdin = true;
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> produce =
      testing::Subprocess::Start(argv, options);
  if (!produce.ok()) return produce.status();
  // weir-produce reads while it sends and prints only at the end, so
  // writing all of the input before reading its output cannot deadlock.
  if (absl::Status s = (*produce)->WriteStdin(input); !s.ok()) return s;
  (*produce)->CloseStdin();
  return produce;
}

// Waits for a started weir-produce to finish; returns its produced=N.
absl::StatusOr<int64_t> FinishProduce(testing::Subprocess& produce,
                                      absl::Duration timeout) {
  absl::StatusOr<std::string> line =
      produce.ReadLineMatching("produced=", timeout);
  if (!line.ok()) return line.status();
  absl::StatusOr<int> status = produce.Wait(timeout);
  if (!status.ok()) return status.status();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(
        absl::StrCat("weir-produce failed, wait status ", *status));
  }
  absl::string_view count = *line;
  int64_t n = 0;
  if (!absl::ConsumePrefix(&count, "produced=") ||
      !absl::SimpleAtoi(count, &n)) {
    return absl::InternalError(absl::StrCat("bad output: ", *line));
  }
  return n;
}

absl::StatusOr<int64_t> Produce(const std::string& bootstrap,
                                const std::vector<Line>& lines) {
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> produce =
      StartProduce(bootstrap, JoinLines(lines));
  if (!produce.ok()) return produce.status();
  return FinishProduce(**produce, absl::Seconds(30));
}

// ---- Consumer --------------------------------------------------------------

struct Consumed {
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::string value;
};

absl::Status SetConf(rd_kafka_conf_t* conf, const char* key,
                     const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key, value.c_str(), errstr, sizeof(errstr)) !=
      RD_KAFKA_CONF_OK) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": ", errstr));
  }
  return absl::OkStatus();
}

// A librdkafka consumer on rd_kafka_consumer_poll: either assigned every
// partition of a topic from the beginning, or subscribed in a group.
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(
      const std::string& bootstrap, const std::string& group_id) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (const auto& [key, value] :
         std::vector<std::pair<const char*, std::string>>{
             {"bootstrap.servers", bootstrap},
             {"group.id", group_id},
             {"enable.auto.commit", "false"},
             {"auto.offset.reset", "earliest"},
             {"reconnect.backoff.ms", "20"},
             {"reconnect.backoff.max.ms", "500"},
             {"fetch.wait.max.ms", "50"},
         }) {
      if (absl::Status s = SetConf(conf, key, value); !s.ok()) {
        rd_kafka_conf_destroy(conf);
        return s;
      }
    }
    char errstr[512];
    rd_kafka_t* rk =
        rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == nullptr) {
      rd_kafka_conf_destroy(conf);
      return absl::InternalError(errstr);
    }
    rd_kafka_poll_set_consumer(rk);
    return std::unique_ptr<Consumer>(new Consumer(rk));
  }

  ~Consumer() {
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  rd_kafka_t* handle() { return rk_; }

  absl::Status AssignFromBeginning(const std::string& topic, int partitions) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(rd_kafka_err2str(err));
    }
    return absl::OkStatus();
  }

  absl::Status Subscribe(const std::string& topic) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(),
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(rd_kafka_err2str(err));
    }
    return absl::OkStatus();
  }

  // Polls until `count` messages arrived; kDeadlineExceeded with how many
  // did after `timeout`.
  absl::StatusOr<std::vector<Consumed>> ReadUntil(size_t count,
                                                  absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::vector<Consumed> out;
    while (out.size() < count) {
      absl::StatusOr<std::optional<Consumed>> next = Poll(deadline);
      if (!next.ok()) return next.status();
      if (!next->has_value()) {
        return absl::DeadlineExceededError(
            absl::StrCat("read ", out.size(), " of ", count, " messages in ",
                         absl::FormatDuration(timeout)));
      }
      out.push_back(**std::move(next));
    }
    return out;
  }

  // The next message, or nullopt at `deadline`. Transient consumer errors
  // (a broker that is reconnecting) are skipped; librdkafka retries them.
  absl::StatusOr<std::optional<Consumed>> Poll(absl::Time deadline) {
    while (absl::Now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 100);
      if (m == nullptr) continue;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const rd_kafka_resp_err_t err = m->err;
        rd_kafka_message_destroy(m);
        if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
            err == RD_KAFKA_RESP_ERR__TRANSPORT ||
            err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
          continue;
        }
        return absl::InternalError(absl::StrCat(
            "consumer: ", rd_kafka_err2name(err), ": ", rd_kafka_err2str(err)));
      }
      Consumed c;
      c.partition = m->partition;
      c.offset = m->offset;
      if (m->key != nullptr) {
        c.key.emplace(static_cast<const char*>(m->key), m->key_len);
      }
      c.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_message_destroy(m);
      return std::optional<Consumed>(std::move(c));
    }
    return std::optional<Consumed>();
  }

 private:
  explicit Consumer(rd_kafka_t* rk) : rk_(rk) {}
  rd_kafka_t* rk_;
};

absl::StatusOr<std::vector<Consumed>> ReadAll(const std::string& bootstrap,
                                              size_t count) {
  absl::StatusOr<std::unique_ptr<Consumer>> consumer =
      Consumer::Create(bootstrap, "weir-local-broker-test-reader");
  if (!consumer.ok()) return consumer.status();
  if (absl::Status s = (*consumer)->AssignFromBeginning(kTopic, kPartitions);
      !s.ok()) {
    return s;
  }
  return (*consumer)->ReadUntil(count, absl::Seconds(30));
}

// Partition leaders by topic, as a fresh client sees them in metadata.
absl::StatusOr<std::map<std::string, std::vector<int32_t>>> Leaders(
    const std::string& bootstrap) {
  absl::StatusOr<std::unique_ptr<Consumer>> client =
      Consumer::Create(bootstrap, "weir-local-broker-test-metadata");
  if (!client.ok()) return client.status();
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(
      (*client)->handle(), /*all_topics=*/1, nullptr, &metadata, 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(rd_kafka_err2str(err));
  }
  std::map<std::string, std::vector<int32_t>> leaders;
  for (int t = 0; t < metadata->topic_cnt; ++t) {
    const rd_kafka_metadata_topic_t& topic = metadata->topics[t];
    std::vector<int32_t>& l = leaders[topic.topic];
    l.resize(static_cast<size_t>(topic.partition_cnt), -2);
    for (int p = 0; p < topic.partition_cnt; ++p) {
      l[static_cast<size_t>(topic.partitions[p].id)] =
          topic.partitions[p].leader;
    }
  }
  rd_kafka_metadata_destroy(metadata);
  return leaders;
}

// ---- The consumer child process -------------------------------------------
//
// BrokerOutlivesAKilledConsumerProcess needs a consumer in another process
// to kill. This test binary is that process when the environment names a
// broker: before main, it joins a consumer group on the topic, prints
// `consumed=N` after every message and never returns; the test SIGKILLs it.

[[noreturn]] void RunConsumerChild(const char* bootstrap, const char* topic) {
  // Never outlive the test that started this process.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  absl::StatusOr<std::unique_ptr<Consumer>> consumer =
      Consumer::Create(bootstrap, "weir-local-broker-test-killed");
  if (!consumer.ok() || !(*consumer)->Subscribe(topic).ok()) _exit(3);
  int64_t consumed = 0;
  const absl::Time give_up = absl::Now() + absl::Minutes(2);
  while (absl::Now() < give_up) {
    absl::StatusOr<std::optional<Consumed>> next =
        (*consumer)->Poll(absl::Now() + absl::Milliseconds(200));
    if (!next.ok()) _exit(4);
    if (next->has_value()) {
      std::printf("consumed=%lld\n", static_cast<long long>(++consumed));
      std::fflush(stdout);
    }
  }
  _exit(5);
}

bool RunConsumerChildIfAsked() {
  const char* bootstrap = std::getenv(kChildBootstrapEnv);
  const char* topic = std::getenv(kChildTopicEnv);
  if (bootstrap == nullptr || topic == nullptr) return false;
  RunConsumerChild(bootstrap, topic);
}

[[maybe_unused]] const bool kIsConsumerChild = RunConsumerChildIfAsked();

// ---- Tests -----------------------------------------------------------------

class LocalBrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // A child that dies early must fail a test, not kill it with SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
  }
};

TEST_F(LocalBrokerTest, ProducedLinesReadBackKeyedAndIntact) {
  constexpr int kMessages = 10000;
  absl::StatusOr<std::unique_ptr<LocalBroker>> broker = StartBroker(3);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string bootstrap = (*broker)->bootstrap();
  EXPECT_THAT(bootstrap, ::testing::MatchesRegex(
                             "127\\.0\\.0\\.1:[0-9]+,127\\.0\\.0\\.1:[0-9]+,"
                             "127\\.0\\.0\\.1:[0-9]+"));

  const std::vector<Line> lines = MakeLines(kMessages);
  absl::StatusOr<int64_t> produced = Produce(bootstrap, lines);
  ASSERT_TRUE(produced.ok()) << produced.status();
  EXPECT_EQ(*produced, kMessages);

  absl::StatusOr<std::vector<Consumed>> consumed =
      ReadAll(bootstrap, kMessages);
  ASSERT_TRUE(consumed.ok()) << consumed.status();

  // Nothing more than was produced, and nothing lost to retention.
  {
    absl::StatusOr<std::unique_ptr<Consumer>> probe =
        Consumer::Create(bootstrap, "weir-local-broker-test-probe");
    ASSERT_TRUE(probe.ok()) << probe.status();
    int64_t total = 0;
    for (int p = 0; p < kPartitions; ++p) {
      int64_t low = -1;
      int64_t high = -1;
      ASSERT_EQ(rd_kafka_query_watermark_offsets((*probe)->handle(), kTopic, p,
                                                 &low, &high, 10000),
                RD_KAFKA_RESP_ERR_NO_ERROR);
      EXPECT_EQ(low, 0) << "partition " << p;
      EXPECT_GT(high, 0) << "partition " << p << " got no messages";
      total += high - low;
    }
    EXPECT_EQ(total, kMessages);
  }

  absl::flat_hash_map<std::string, size_t> index_of;
  for (size_t i = 0; i < lines.size(); ++i) index_of[lines[i].text] = i;
  std::vector<bool> seen(lines.size(), false);
  // Per key: its partition, and the input index of its last message read.
  std::map<std::string, std::pair<int32_t, size_t>> last_by_key;
  std::map<int32_t, int64_t> last_offset;
  int null_keys = 0;
  for (const Consumed& c : *consumed) {
    auto it = index_of.find(c.value);
    ASSERT_NE(it, index_of.end()) << "unexpected message: " << c.value;
    const size_t i = it->second;
    EXPECT_FALSE(seen[i]) << "duplicate: " << c.value;
    seen[i] = true;
    EXPECT_EQ(c.key, lines[i].key) << c.value;
    auto [offset_it, first] = last_offset.try_emplace(c.partition, c.offset);
    if (!first) {
      EXPECT_GT(c.offset, offset_it->second);
      offset_it->second = c.offset;
    }
    if (!c.key.has_value()) {
      ++null_keys;
      continue;
    }
    EXPECT_EQ(c.partition, Murmur2Partition(*c.key, kPartitions)) << *c.key;
    auto [key_it, new_key] =
        last_by_key.try_emplace(*c.key, std::make_pair(c.partition, i));
    if (!new_key) {
      EXPECT_EQ(key_it->second.first, c.partition) << *c.key;
      EXPECT_LT(key_it->second.second, i) << "out of order for " << *c.key;
      key_it->second.second = i;
    }
  }
  EXPECT_EQ(null_keys, 3 * kMessages / 500);
  EXPECT_GE(last_by_key.size(), 97u);
}

TEST_F(LocalBrokerTest, ProduceDuringDowntimeIsDeliveredAfterUp) {
  absl::StatusOr<std::unique_ptr<LocalBroker>> broker = StartBroker(1);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string bootstrap = (*broker)->bootstrap();
  WEIR_ASSERT_OK((*broker)->SetBrokerDown(1));

  const std::vector<Line> lines = MakeLines(1, /*first_seq=*/42);
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> produce = StartProduce(
      bootstrap, JoinLines(lines),
      {"--delivery_timeout_ms=60000", "-X", "reconnect.backoff.ms=20", "-X",
       "reconnect.backoff.max.ms=200"});
  ASSERT_TRUE(produce.ok()) << produce.status();
  // While the only broker is down nothing can be delivered, so the tool,
  // which exits only once every message is accounted for, keeps running.
  absl::StatusOr<int> early = (*produce)->Wait(absl::Seconds(1));
  EXPECT_TRUE(absl::IsDeadlineExceeded(early.status()))
      << "weir-produce finished while the broker was down";

  WEIR_ASSERT_OK((*broker)->SetBrokerUp(1));
  absl::StatusOr<int64_t> produced =
      FinishProduce(**produce, absl::Seconds(30));
  ASSERT_TRUE(produced.ok()) << produced.status();
  EXPECT_EQ(*produced, 1);

  absl::StatusOr<std::vector<Consumed>> consumed = ReadAll(bootstrap, 1);
  ASSERT_TRUE(consumed.ok()) << consumed.status();
  EXPECT_EQ((*consumed)[0].value, lines[0].text);
  EXPECT_EQ((*consumed)[0].key, lines[0].key);
}

TEST_F(LocalBrokerTest, FaultCommandsTakeEffectOrAreRejected) {
  absl::StatusOr<std::unique_ptr<LocalBroker>> broker = StartBroker(3);
  ASSERT_TRUE(broker.ok()) << broker.status();
  LocalBroker& b = **broker;

  WEIR_ASSERT_OK(b.SetLeader(kTopic, 0, 2));
  WEIR_ASSERT_OK(b.SetLeader(kTopic, 1, 3));
  WEIR_ASSERT_OK(b.SetRtt(1, absl::Milliseconds(5)));
  WEIR_ASSERT_OK(b.SetRtt(-1, absl::ZeroDuration()));
  WEIR_ASSERT_OK(b.SetBrokerDown(3));
  WEIR_ASSERT_OK(b.SetBrokerUp(3));
  WEIR_ASSERT_OK(b.PushRequestErrors("Produce", "NOT_ENOUGH_REPLICAS", 2));
  WEIR_ASSERT_OK(b.PushRequestErrors("1", "_TRANSPORT"));
  WEIR_ASSERT_OK(b.ClearRequestErrors("Produce"));
  WEIR_ASSERT_OK(b.ClearRequestErrors("Fetch"));
  WEIR_ASSERT_OK(b.CreateTopic("dlq", 2));

  // The leader moves are visible to any client once `ok` came back.
  absl::StatusOr<std::map<std::string, std::vector<int32_t>>> leader_map =
      Leaders(b.bootstrap());
  ASSERT_TRUE(leader_map.ok()) << leader_map.status();
  std::map<std::string, std::vector<int32_t>>& leaders = *leader_map;
  ASSERT_EQ(leaders[kTopic].size(), static_cast<size_t>(kPartitions));
  EXPECT_EQ(leaders[kTopic][0], 2);
  EXPECT_EQ(leaders[kTopic][1], 3);
  EXPECT_EQ(leaders["dlq"].size(), 2u);

  // Bad commands are answered with an error and change nothing.
  EXPECT_TRUE(absl::IsInvalidArgument(b.SetLeader(kTopic, kPartitions, 1)));
  EXPECT_TRUE(absl::IsInvalidArgument(b.SetLeader("no-such-topic", 0, 1)));
  EXPECT_TRUE(absl::IsInvalidArgument(b.SetBrokerDown(4)));
  EXPECT_TRUE(absl::IsInvalidArgument(b.SetBrokerUp(0)));
  EXPECT_TRUE(absl::IsInvalidArgument(b.PushRequestErrors("Bogus", "6")));
  EXPECT_TRUE(
      absl::IsInvalidArgument(b.PushRequestErrors("Fetch", "NO_SUCH_ERROR")));
  EXPECT_TRUE(absl::IsInvalidArgument(b.CreateTopic("dlq", 2)));
  EXPECT_TRUE(absl::IsInvalidArgument(b.CreateTopic("bad name", 2)));
  EXPECT_TRUE(absl::IsInvalidArgument(b.Command("frobnicate 1")));
  EXPECT_TRUE(absl::IsInvalidArgument(b.Command("down 1\nup 1")));

  WEIR_ASSERT_OK(b.Stop());
  EXPECT_TRUE(absl::IsFailedPrecondition(b.SetBrokerUp(1)));
}

TEST_F(LocalBrokerTest, ConsumerReadsEverythingDespiteFetchErrors) {
  constexpr int kMessages = 2000;
  absl::StatusOr<std::unique_ptr<LocalBroker>> broker = StartBroker(1);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::vector<Line> lines = MakeLines(kMessages);
  absl::StatusOr<int64_t> produced = Produce((*broker)->bootstrap(), lines);
  ASSERT_TRUE(produced.ok()) << produced.status();
  ASSERT_EQ(*produced, kMessages);

  WEIR_ASSERT_OK(
      (*broker)->PushRequestErrors("Fetch", "NOT_LEADER_FOR_PARTITION", 5));
  WEIR_ASSERT_OK((*broker)->PushRequestErrors("Fetch", "_TRANSPORT", 2));
  absl::StatusOr<std::vector<Consumed>> consumed =
      ReadAll((*broker)->bootstrap(), kMessages);
  ASSERT_TRUE(consumed.ok()) << consumed.status();
  std::set<std::string> values;
  for (const Consumed& c : *consumed) values.insert(c.value);
  EXPECT_EQ(values.size(), static_cast<size_t>(kMessages));
}

TEST_F(LocalBrokerTest, BrokerOutlivesAKilledConsumerProcess) {
  constexpr int kMessages = 1000;
  absl::StatusOr<std::unique_ptr<LocalBroker>> broker = StartBroker(1);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string bootstrap = (*broker)->bootstrap();
  const std::vector<Line> lines = MakeLines(kMessages);
  absl::StatusOr<int64_t> produced = Produce(bootstrap, lines);
  ASSERT_TRUE(produced.ok()) << produced.status();
  ASSERT_EQ(*produced, kMessages);

  // A consumer process in a group, killed without warning mid-stream.
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  testing::SubprocessOptions child_options;
  child_options.env = {absl::StrCat(kChildBootstrapEnv, "=", bootstrap),
                       absl::StrCat(kChildTopicEnv, "=", kTopic)};
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> child =
      testing::Subprocess::Start({self}, child_options);
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<std::string> progress =
      (*child)->ReadLineMatching("consumed=", absl::Seconds(30));
  ASSERT_TRUE(progress.ok()) << progress.status();
  WEIR_ASSERT_OK((*child)->Signal(SIGKILL));
  absl::StatusOr<int> child_status = (*child)->Wait(absl::Seconds(10));
  ASSERT_TRUE(child_status.ok()) << child_status.status();
  EXPECT_TRUE(WIFSIGNALED(*child_status));

  // The broker still runs, answers commands, and serves the whole log to a
  // second consumer.
  EXPECT_EQ(kill((*broker)->pid(), 0), 0);
  WEIR_ASSERT_OK((*broker)->SetRtt(-1, absl::ZeroDuration()));
  absl::StatusOr<std::vector<Consumed>> consumed =
      ReadAll(bootstrap, kMessages);
  ASSERT_TRUE(consumed.ok()) << consumed.status();
  std::set<std::string> values;
  for (const Consumed& c : *consumed) values.insert(c.value);
  EXPECT_EQ(values.size(), static_cast<size_t>(kMessages));
}

TEST_F(LocalBrokerTest, StartRejectsBadOptionsAndMissingBinary) {
  LocalBroker::Options options;
  EXPECT_TRUE(absl::IsInvalidArgument(LocalBroker::Start(options).status()));
  options.binary_path = kBrokerBinary;
  options.brokers = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(LocalBroker::Start(options).status()));
  options.brokers = 1;
  options.topics = {{"ok", 1}, {"has space", 1}};
  absl::Status bad_topic = LocalBroker::Start(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad_topic));
  EXPECT_THAT(std::string(bad_topic.message()),
              ::testing::HasSubstr("topics[1].name"));
  options.topics = {{"ok", 0}};
  EXPECT_TRUE(absl::IsInvalidArgument(LocalBroker::Start(options).status()));
  options.topics = {};
  options.binary_path = WEIR_BINARY_DIR "/no-such-weir-broker";
  EXPECT_TRUE(absl::IsNotFound(LocalBroker::Start(options).status()));
  // The tool itself refuses a fixed port: it cannot honour one.
  options.binary_path = kBrokerBinary;
  options.extra_args = {"--port=9092"};
  EXPECT_TRUE(absl::IsFailedPrecondition(LocalBroker::Start(options).status()));
}

}  // namespace
}  // namespace weir
