// Integration tests of KafkaSource against the local broker (weir-broker,
// librdkafka's mock cluster in its own process): every record once, start
// offsets from the listener, committed offsets, a two-member group, pause
// and resume, seek, lag and the pass-through of librdkafka properties.

#include "weir/kafka/kafka_source.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/source.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kBrokerBinary[] = WEIR_BINARY_DIR "/weir-broker";
constexpr char kTopic[] = "payments";
constexpr int kPartitions = 4;
constexpr int64_t kBaseTime = 1767225600000;
constexpr absl::Duration kWait = absl::Seconds(30);
// For the churned group to settle. On the local broker each rebalance waits
// session.timeout.ms - 1 s for members to join (5 s in the churn test), and
// a cooperative split takes two. A cooperative member closed while it
// rejoins stays in the group until its session lapses (docs/guarantees.md,
// "Rebalance"); led by it, a rebalance fails its sync after the session
// timeout and runs again: about 11 s more. Beside a CPU hog under ASan each
// step takes longer; the deadline bounds a hang, not the machine's speed.
constexpr absl::Duration kGroupWait = absl::Seconds(120);

#define WEIR_ASSERT_OK(expr)               \
  do {                                     \
    const ::absl::Status weir_s_ = (expr); \
    ASSERT_TRUE(weir_s_.ok()) << weir_s_;  \
  } while (false)

TopicPartition Tp(int32_t p) { return {kTopic, p}; }

// An owning copy of a RawRecord.
struct Got {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<EventTime> timestamp;
  std::string key;
  std::string value;
};

// The value of record `offset` of `partition`, as Produce writes it.
std::string ValueOf(int32_t partition, int64_t offset) {
  return absl::StrCat("{\"p\":", partition, ",\"i\":", offset, "}");
}

// Records listener calls; answers OnAssigned with `start`. Declared before
// the source it listens to, so that it outlives it.
class RecordingListener : public PartitionListener {
 public:
  absl::StatusOr<StartOffsets> OnAssigned(
      absl::Span<const TopicPartition> partitions) override {
    assigned.emplace_back(partitions.begin(), partitions.end());
    events.push_back("assigned");
    StartOffsets answer;
    for (const TopicPartition& tp : partitions) {
      if (auto it = start.find(tp); it != start.end()) answer[tp] = it->second;
    }
    return answer;
  }
  void OnRevoked(absl::Span<const TopicPartition> partitions) override {
    revoked.emplace_back(partitions.begin(), partitions.end());
    events.push_back("revoked");
  }

  StartOffsets start;
  std::vector<std::vector<TopicPartition>> assigned;
  std::vector<std::vector<TopicPartition>> revoked;
  std::vector<std::string> events;
};

class KafkaSourceTest : public ::testing::Test {
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

  KafkaSourceOptions Options(const std::string& group) {
    KafkaSourceOptions options;
    options.bootstrap_servers = broker_->bootstrap();
    options.group_id = group;
    options.topics = {kTopic};
    options.properties = {{"fetch.wait.max.ms", "20"},
                          {"reconnect.backoff.ms", "20"},
                          {"session.timeout.ms", "3000"},
                          {"heartbeat.interval.ms", "200"}};
    return options;
  }

  // Produces `count` records to every partition: record i of partition p
  // has key "k<p>", value ValueOf(p, first + i) and timestamp kBaseTime + i.
  void Produce(int count, int first = 0) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    ASSERT_EQ(
        rd_kafka_conf_set(conf, "bootstrap.servers",
                          broker_->bootstrap().c_str(), errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    ASSERT_EQ(rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)),
              RD_KAFKA_CONF_OK);
    rd_kafka_t* producer =
        rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ASSERT_NE(producer, nullptr) << errstr;
    for (int32_t p = 0; p < kPartitions; ++p) {
      const std::string key = absl::StrCat("k", p);
      for (int i = first; i < first + count; ++i) {
        const std::string value = ValueOf(p, i);
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(kTopic), RD_KAFKA_V_PARTITION(p),
            RD_KAFKA_V_KEY(key.data(), key.size()),
            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_TIMESTAMP(kBaseTime + i), RD_KAFKA_V_END);
        ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
      }
    }
    EXPECT_EQ(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(rd_kafka_outq_len(producer), 0);
    rd_kafka_destroy(producer);
  }

  // Polls until `count` records arrived; fails the test after kWait.
  // Polls until Poll fails (or kWait passes: OK then), expecting no record
  // meanwhile; returns the failure.
  static absl::Status PollUntilFailure(Source& source) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      absl::StatusOr<absl::Span<const RawRecord>> batch =
          source.Poll(10, absl::Milliseconds(100));
      if (!batch.ok()) return batch.status();
      EXPECT_THAT(*batch, IsEmpty()) << "a record without a start offset";
    }
    return absl::OkStatus();
  }

  static std::vector<Got> Read(Source& source, size_t count) {
    std::vector<Got> out;
    const absl::Time deadline = absl::Now() + kWait;
    while (out.size() < count && absl::Now() < deadline) {
      absl::StatusOr<absl::Span<const RawRecord>> batch =
          source.Poll(count - out.size(), absl::Milliseconds(100));
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok()) break;
      for (const RawRecord& r : *batch) {
        out.push_back({std::string(r.topic), r.partition, r.offset, r.timestamp,
                       std::string(r.key), std::string(r.value)});
      }
    }
    EXPECT_EQ(out.size(), count) << "records read before the deadline";
    return out;
  }

  // Polls for `d` (a window in which nothing is expected) and returns what
  // came.
  static std::vector<Got> ReadFor(Source& source, absl::Duration d) {
    std::vector<Got> out;
    const absl::Time end = absl::Now() + d;
    while (absl::Now() < end) {
      absl::StatusOr<absl::Span<const RawRecord>> batch =
          source.Poll(1000, absl::Milliseconds(50));
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok()) break;
      for (const RawRecord& r : *batch) {
        out.push_back({std::string(r.topic), r.partition, r.offset, r.timestamp,
                       std::string(r.key), std::string(r.value)});
      }
    }
    return out;
  }

  // Polls `sources` in turn until `done()` holds; false after `wait`.
  template <typename Done>
  static bool PollUntil(std::vector<Source*> sources, Done done,
                        absl::Duration wait = kWait) {
    const absl::Time deadline = absl::Now() + wait;
    while (!done()) {
      if (absl::Now() >= deadline) return false;
      for (Source* s : sources) {
        absl::StatusOr<absl::Span<const RawRecord>> batch =
            s->Poll(1000, absl::Milliseconds(20));
        EXPECT_TRUE(batch.ok()) << batch.status();
      }
    }
    return true;
  }

  std::unique_ptr<LocalBroker> broker_;
};

TEST_F(KafkaSourceTest, ReadsEveryRecordOnceThenLagIsZeroAndSeekRereads) {
  constexpr int kPerPartition = 25;
  Produce(kPerPartition);
  RecordingListener listener;
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(Options("every-record"));
  ASSERT_TRUE(source.ok()) << source.status();
  (*source)->SetPartitionListener(&listener);

  std::vector<Got> got = Read(**source, kPartitions * kPerPartition);
  std::set<std::pair<int32_t, int64_t>> seen;
  std::map<int32_t, int64_t> last;
  for (const Got& g : got) {
    EXPECT_EQ(g.topic, kTopic);
    EXPECT_TRUE(seen.insert({g.partition, g.offset}).second)
        << "duplicate " << g.partition << "/" << g.offset;
    EXPECT_EQ(g.value, ValueOf(g.partition, g.offset));
    EXPECT_EQ(g.key, absl::StrCat("k", g.partition));
    EXPECT_EQ(g.timestamp, kBaseTime + g.offset);
    auto [it, first] = last.try_emplace(g.partition, g.offset);
    if (!first) {
      EXPECT_EQ(g.offset, it->second + 1) << "offsets out of order";
      it->second = g.offset;
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kPartitions * kPerPartition));
  ASSERT_EQ(listener.assigned.size(), 1u);
  EXPECT_THAT(listener.assigned[0], ElementsAre(Tp(0), Tp(1), Tp(2), Tp(3)));
  EXPECT_THAT((*source)->Assignment(), ElementsAre(Tp(0), Tp(1), Tp(2), Tp(3)));

  // The log end is learnt from fetch responses; every lag reaches 0.
  bool caught_up = PollUntil({source->get()}, [&] {
    absl::StatusOr<std::vector<PartitionPosition>> positions =
        (*source)->Positions();
    if (!positions.ok() || positions->size() != kPartitions) return false;
    for (const PartitionPosition& pos : *positions) {
      if (pos.lag() != 0) return false;
    }
    return true;
  });
  ASSERT_TRUE(caught_up) << "lag never reached 0";
  absl::StatusOr<std::vector<PartitionPosition>> positions =
      (*source)->Positions();
  ASSERT_TRUE(positions.ok());
  for (const PartitionPosition& pos : *positions) {
    EXPECT_EQ(pos.position, kPerPartition);
    EXPECT_EQ(pos.log_end_offset, kPerPartition);
    EXPECT_FALSE(pos.paused);
  }

  // Seeking back re-delivers from there, in order, and nothing older.
  WEIR_ASSERT_OK((*source)->Seek(Tp(2), 10));
  std::vector<Got> again = Read(**source, kPerPartition - 10);
  ASSERT_FALSE(again.empty());
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].partition, 2);
    EXPECT_EQ(again[i].offset, static_cast<int64_t>(10 + i));
  }
  EXPECT_TRUE(absl::IsInvalidArgument((*source)->Seek({kTopic, 9}, 0)));

  WEIR_ASSERT_OK((*source)->Close());
  ASSERT_EQ(listener.revoked.size(), 1u);
  EXPECT_THAT(listener.revoked[0], ElementsAre(Tp(0), Tp(1), Tp(2), Tp(3)));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*source)->Poll(1, absl::ZeroDuration()).status()));
  EXPECT_EQ((*source)->stats().records,
            kPartitions * kPerPartition + kPerPartition - 10);
}

TEST_F(KafkaSourceTest, ListenerStartOffsetsAreHonoured) {
  Produce(30);
  RecordingListener listener;
  listener.start = {{Tp(0), 20}, {Tp(3), 7}};  // state restored up to here
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(Options("start-offsets"));
  ASSERT_TRUE(source.ok()) << source.status();
  (*source)->SetPartitionListener(&listener);

  std::vector<Got> got = Read(**source, 4 * 30 - 20 - 7);
  std::map<int32_t, int64_t> first;
  for (const Got& g : got) first.try_emplace(g.partition, g.offset);
  EXPECT_EQ(first[0], 20);
  EXPECT_EQ(first[1], 0);  // nothing committed: earliest
  EXPECT_EQ(first[2], 0);
  EXPECT_EQ(first[3], 7);
  EXPECT_THAT(ReadFor(**source, absl::Milliseconds(300)), IsEmpty());
}

TEST_F(KafkaSourceTest, NewMemberOfTheGroupResumesFromCommittedOffsets) {
  Produce(20);
  {
    absl::StatusOr<std::unique_ptr<KafkaSource>> first =
        KafkaSource::Create(Options("resume"));
    ASSERT_TRUE(first.ok()) << first.status();
    std::vector<Got> got = Read(**first, 4 * 20);
    ASSERT_EQ(got.size(), 80u);
    // As a checkpoint would: commit the next offsets it covers.
    WEIR_ASSERT_OK((*first)->CommitOffsets(
        {{Tp(0), 10}, {Tp(1), 11}, {Tp(2), 12}, {Tp(3), 20}}));
    absl::StatusOr<PartitionOffsets> committed =
        (*first)->Committed({Tp(0), Tp(1), Tp(2), Tp(3)}, absl::Seconds(10));
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_EQ((*committed)[Tp(0)], 10);
    EXPECT_EQ((*committed)[Tp(3)], 20);
    WEIR_ASSERT_OK((*first)->Close());
  }
  RecordingListener listener;  // names no offsets: committed ones are used
  absl::StatusOr<std::unique_ptr<KafkaSource>> second =
      KafkaSource::Create(Options("resume"));
  ASSERT_TRUE(second.ok()) << second.status();
  (*second)->SetPartitionListener(&listener);
  std::vector<Got> got = Read(**second, 10 + 9 + 8);
  std::map<int32_t, int64_t> first_offset;
  for (const Got& g : got) first_offset.try_emplace(g.partition, g.offset);
  EXPECT_EQ(first_offset[0], 10);
  EXPECT_EQ(first_offset[1], 11);
  EXPECT_EQ(first_offset[2], 12);
  EXPECT_EQ(first_offset.count(3), 0u);
  EXPECT_THAT(ReadFor(**second, absl::Milliseconds(300)), IsEmpty());
}

TEST_F(KafkaSourceTest, TwoMembersSplitThePartitionsAndOneTakesOverOnClose) {
  Produce(5);
  RecordingListener la;
  absl::StatusOr<std::unique_ptr<KafkaSource>> a =
      KafkaSource::Create(Options("pair"));
  ASSERT_TRUE(a.ok()) << a.status();
  (*a)->SetPartitionListener(&la);
  ASSERT_TRUE(PollUntil({a->get()}, [&] {
    return (*a)->Assignment().size() == kPartitions;
  })) << "the first member never got every partition";

  RecordingListener lb;
  absl::StatusOr<std::unique_ptr<KafkaSource>> b =
      KafkaSource::Create(Options("pair"));
  ASSERT_TRUE(b.ok()) << b.status();
  (*b)->SetPartitionListener(&lb);
  ASSERT_TRUE(PollUntil({a->get(), b->get()}, [&] {
    const std::vector<TopicPartition> pa = (*a)->Assignment();
    const std::vector<TopicPartition> pb = (*b)->Assignment();
    return !pa.empty() && !pb.empty() && pa.size() + pb.size() == kPartitions;
  })) << "the partitions were never split";
  std::set<TopicPartition> all;
  for (const TopicPartition& tp : (*a)->Assignment()) all.insert(tp);
  for (const TopicPartition& tp : (*b)->Assignment()) {
    EXPECT_TRUE(all.insert(tp).second) << tp.ToString() << " is in both";
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kPartitions));
  // Eager rebalance: the first member gave everything up, then got its share.
  ASSERT_GE(la.revoked.size(), 1u);
  EXPECT_EQ(la.revoked[0].size(), static_cast<size_t>(kPartitions));
  ASSERT_GE(lb.assigned.size(), 1u);

  const size_t a_revocations = la.revoked.size();
  const size_t a_assignments = la.assigned.size();
  WEIR_ASSERT_OK((*b)->Close());
  ASSERT_FALSE(lb.revoked.empty());
  ASSERT_TRUE(PollUntil({a->get()}, [&] {
    return (*a)->Assignment().size() == kPartitions;
  })) << "the remaining member never took the partitions over";
  EXPECT_GT(la.revoked.size(), a_revocations);
  EXPECT_GT(la.assigned.size(), a_assignments);
  EXPECT_EQ(la.events.back(), "assigned");
  const SourceStats stats = (*a)->stats();
  EXPECT_EQ(stats.partitions_assigned - stats.partitions_revoked, kPartitions);
}

TEST_F(KafkaSourceTest, CooperativeRebalanceRevokesOnlyMovedPartitions) {
  Produce(5);
  KafkaSourceOptions options = Options("cooperative");
  options.partition_assignment_strategy = "cooperative-sticky";
  RecordingListener la;
  absl::StatusOr<std::unique_ptr<KafkaSource>> a = KafkaSource::Create(options);
  ASSERT_TRUE(a.ok()) << a.status();
  (*a)->SetPartitionListener(&la);
  ASSERT_TRUE(PollUntil({a->get()}, [&] {
    return (*a)->Assignment().size() == kPartitions;
  })) << "the first member never got every partition";

  RecordingListener lb;
  absl::StatusOr<std::unique_ptr<KafkaSource>> b = KafkaSource::Create(options);
  ASSERT_TRUE(b.ok()) << b.status();
  (*b)->SetPartitionListener(&lb);
  ASSERT_TRUE(PollUntil({a->get(), b->get()}, [&] {
    return !(*b)->Assignment().empty() &&
           (*a)->Assignment().size() + (*b)->Assignment().size() == kPartitions;
  })) << "the partitions were never split";
  // Only what moved to the second member was revoked from the first.
  std::set<TopicPartition> revoked;
  for (const auto& r : la.revoked) revoked.insert(r.begin(), r.end());
  const std::vector<TopicPartition> moved = (*b)->Assignment();
  EXPECT_EQ(revoked, std::set<TopicPartition>(moved.begin(), moved.end()));
  for (const TopicPartition& tp : (*a)->Assignment()) {
    EXPECT_EQ(revoked.count(tp), 0u) << tp.ToString() << " was revoked";
  }
  EXPECT_EQ(la.assigned.size(), 1u);
  WEIR_ASSERT_OK((*b)->Close());
  WEIR_ASSERT_OK((*a)->Close());
}

// Busy-loops on every core until destroyed, so that the group's threads
// and the test's run late, as on a loaded machine.
class CpuHog {
 public:
  CpuHog() {
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        uint64_t x = 0;
        while (!stop_.load(std::memory_order_relaxed)) x = x * 31 + 7;
        sink_.fetch_add(x, std::memory_order_relaxed);
      });
    }
  }
  ~CpuHog() {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sink_{0};
  std::vector<std::thread> threads_;
};

// Members join, poll, pause, seek and leave a group in a loop, under both
// rebalance protocols, while every core is busy. Members also close before
// their first join and in the middle of a rebalance, when librdkafka cannot
// name the group's protocol. Every member's listener hears of every
// partition it was given being taken back, and the last member standing
// gets the whole topic.
class KafkaSourceChurnTest : public KafkaSourceTest,
                             public ::testing::WithParamInterface<const char*> {
};

TEST_P(KafkaSourceChurnTest, MembersJoinPollAndLeaveUnderLoad) {
  Produce(20);
  CpuHog hog;
  KafkaSourceOptions options =
      Options(absl::StrCat("churn-", GetParam()[0] == 'c' ? "coop" : "eager"));
  options.partition_assignment_strategy = GetParam();
  options.properties["session.timeout.ms"] = "6000";

  struct Member {
    std::unique_ptr<RecordingListener> listener;
    std::unique_ptr<KafkaSource> source;
  };
  // Closes a member and checks that its listener heard every partition
  // taken back, and its counters agree.
  auto leave = [](Member& m) {
    const absl::Status closed = m.source->Close();
    // Leaving may report that the group could not be told; never a crash.
    EXPECT_TRUE(closed.ok() || absl::IsUnavailable(closed)) << closed;
    std::multiset<TopicPartition> held;
    for (const auto& a : m.listener->assigned) held.insert(a.begin(), a.end());
    for (const auto& r : m.listener->revoked) {
      for (const TopicPartition& tp : r) {
        auto it = held.find(tp);
        ASSERT_NE(it, held.end()) << tp.ToString() << " revoked, not held";
        held.erase(it);
      }
    }
    EXPECT_THAT(held, IsEmpty()) << "partitions never revoked";
    const SourceStats stats = m.source->stats();
    EXPECT_EQ(stats.partitions_assigned, stats.partitions_revoked);
    EXPECT_THAT(m.source->Assignment(), IsEmpty());
  };

  std::vector<Member> members;
  // Leaves on its own thread while the main thread keeps polling the other
  // members, as their own processes would: a cooperative member waits in
  // Close for its first assignment, which may need the others to answer a
  // rebalance.
  auto leave_while_others_poll = [&](Member& m) {
    std::atomic<bool> done{false};
    std::thread closer([&] {
      leave(m);
      done.store(true);
    });
    bool others = false;
    for (Member& other : members) others = others || &other != &m;
    while (others && !done.load()) {
      for (Member& other : members) {
        if (&other == &m) continue;
        absl::StatusOr<absl::Span<const RawRecord>> batch =
            other.source->Poll(50, absl::Milliseconds(20));
        EXPECT_TRUE(batch.ok()) << batch.status();
      }
    }
    closer.join();
  };
  std::mt19937 rng(20261204);
  constexpr int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    Member joining;
    joining.listener = std::make_unique<RecordingListener>();
    absl::StatusOr<std::unique_ptr<KafkaSource>> created =
        KafkaSource::Create(options);
    ASSERT_TRUE(created.ok()) << created.status();
    joining.source = *std::move(created);
    joining.source->SetPartitionListener(joining.listener.get());
    if (round % 6 == 5) {
      // Leaves before it ever joined the group.
      leave_while_others_poll(joining);
      continue;
    }
    members.push_back(std::move(joining));
    // A few polls of every member; between them, each pauses, resumes or
    // seeks one of its partitions.
    const int polls = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < polls; ++i) {
      for (Member& m : members) {
        absl::StatusOr<absl::Span<const RawRecord>> batch = m.source->Poll(
            50, absl::Milliseconds(static_cast<int>(rng() % 40)));
        ASSERT_TRUE(batch.ok()) << batch.status();
        const std::vector<TopicPartition> mine = m.source->Assignment();
        if (mine.empty()) continue;
        const TopicPartition& tp = mine[rng() % mine.size()];
        switch (rng() % 3) {
          case 0:
            WEIR_ASSERT_OK(m.source->Pause({{tp}}));
            break;
          case 1:
            WEIR_ASSERT_OK(m.source->Resume({{tp}}));
            break;
          default: {
            // A seek can time out while the partition is being fetched
            // for the first time; it must never fail otherwise.
            const absl::Status s =
                m.source->Seek(tp, static_cast<int64_t>(rng() % 20));
            EXPECT_TRUE(s.ok() || absl::IsUnavailable(s)) << s;
          }
        }
      }
    }
    // Keep up to three members; one leaves, often in mid-rebalance.
    if (members.size() > 2 || (members.size() > 1 && rng() % 2 == 0)) {
      const size_t i = rng() % members.size();
      leave_while_others_poll(members[i]);
      members.erase(members.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  while (members.size() > 1) {
    leave_while_others_poll(members.front());
    members.erase(members.begin());
  }
  ASSERT_EQ(members.size(), 1u);
  KafkaSource& last = *members.front().source;
  for (const TopicPartition& tp : last.Assignment()) {
    WEIR_ASSERT_OK(last.Resume({{tp}}));
  }
  ASSERT_TRUE(PollUntil(
      {&last}, [&] { return last.Assignment().size() == kPartitions; },
      kGroupWait))
      << "the last member never got every partition";

  // A second member joins; both leave while the group's coordinator is
  // gone, so the group terminates without it.
  Member second;
  second.listener = std::make_unique<RecordingListener>();
  absl::StatusOr<std::unique_ptr<KafkaSource>> created =
      KafkaSource::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  second.source = *std::move(created);
  second.source->SetPartitionListener(second.listener.get());
  ASSERT_TRUE(PollUntil(
      {&last, second.source.get()},
      [&] {
        return !second.source->Assignment().empty() &&
               last.Assignment().size() + second.source->Assignment().size() ==
                   kPartitions;
      },
      kGroupWait))
      << "the partitions were never split";
  WEIR_ASSERT_OK(broker_->SetBrokerDown(-1));
  leave(second);
  leave(members.front());
  WEIR_ASSERT_OK(broker_->SetBrokerUp(-1));
}

INSTANTIATE_TEST_SUITE_P(Protocols, KafkaSourceChurnTest,
                         ::testing::Values("range", "cooperative-sticky"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(
                               info.param[0] == 'c' ? "Cooperative" : "Eager");
                         });

TEST_F(KafkaSourceTest, PauseStopsAPartitionAndResumeRestartsIt) {
  Produce(10);
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(Options("pause"));
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_EQ(Read(**source, 40).size(), 40u);

  WEIR_ASSERT_OK((*source)->Pause({{Tp(1)}}));
  Produce(10, /*first=*/10);
  std::vector<Got> got = Read(**source, 30);
  for (const Got& g : got) EXPECT_NE(g.partition, 1) << g.value;
  // Partition 1 stays quiet while paused.
  EXPECT_THAT(ReadFor(**source, absl::Milliseconds(500)), IsEmpty());
  absl::StatusOr<std::vector<PartitionPosition>> positions =
      (*source)->Positions();
  ASSERT_TRUE(positions.ok());
  EXPECT_TRUE((*positions)[1].paused);
  EXPECT_EQ((*positions)[1].position, 10);

  WEIR_ASSERT_OK((*source)->Resume({{Tp(1)}}));
  got = Read(**source, 10);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].partition, 1);
    EXPECT_EQ(got[i].offset, static_cast<int64_t>(10 + i));
  }
  EXPECT_THAT(ReadFor(**source, absl::Milliseconds(300)), IsEmpty());
  EXPECT_TRUE(absl::IsInvalidArgument((*source)->Pause({{"other", 0}})));
}

// A group that cannot answer (every broker response delayed past the close
// timeout) does not hold Close, and so a service's shutdown, forever: the
// partitions are still given back to the listener, and Close reports the
// deadline.
TEST_F(KafkaSourceTest, CloseIsBoundedWhenTheGroupCannotAnswer) {
  Produce(5);
  KafkaSourceOptions options = Options("stuck-close");
  options.close_timeout = absl::Seconds(1);
  RecordingListener listener;
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(options);
  ASSERT_TRUE(source.ok()) << source.status();
  (*source)->SetPartitionListener(&listener);
  ASSERT_EQ(Read(**source, 4 * 5).size(), 20u);

  WEIR_ASSERT_OK(broker_->Command("rtt all 120000"));
  const absl::Status closed = (*source)->Close();
  EXPECT_TRUE(absl::IsDeadlineExceeded(closed)) << closed;
  EXPECT_THAT(std::string(closed.message()), HasSubstr("close_timeout"));
  ASSERT_EQ(listener.revoked.size(), 1u);
  EXPECT_THAT(listener.revoked[0], ElementsAre(Tp(0), Tp(1), Tp(2), Tp(3)));
  EXPECT_THAT((*source)->Assignment(), IsEmpty());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*source)->Poll(1, absl::ZeroDuration()).status()));
  WEIR_ASSERT_OK(broker_->Command("rtt all 0"));
}

// start_time places the partitions the listener gives no offset (a
// replay's partitions without a checkpoint) by a time lookup, not by the
// group's committed offset or the reset policy: under kError, which would
// fail them, they are read. librdkafka 2.0.2's mock cluster answers every
// time lookup with -1 ("no record that late"), so they start at the
// beginning; a partition the listener places starts where it says.
TEST_F(KafkaSourceTest, StartTimePlacesPartitionsTheListenerLeavesOut) {
  Produce(5);
  KafkaSourceOptions options = Options("start-time");
  options.auto_offset_reset = OffsetReset::kError;
  options.start_time = absl::FromUnixMillis(1767225600000);
  RecordingListener listener;
  listener.start[Tp(0)] = 3;
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(options);
  ASSERT_TRUE(source.ok()) << source.status();
  (*source)->SetPartitionListener(&listener);
  const std::vector<Got> got = Read(**source, 2 + 3 * 5);
  ASSERT_EQ(got.size(), 17u);
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const Got& g : got) offsets[g.partition].push_back(g.offset);
  EXPECT_THAT(offsets[0], ElementsAre(3, 4));
  for (int32_t p : {1, 2, 3}) {
    EXPECT_THAT(offsets[p], ElementsAre(0, 1, 2, 3, 4)) << "partition " << p;
  }
  WEIR_ASSERT_OK((*source)->Close());
}

// A time lookup the brokers cannot answer fails Poll, naming start_time,
// instead of starting the partitions anywhere else.
TEST_F(KafkaSourceTest, StartTimeLookupFailureFailsPoll) {
  Produce(1);
  KafkaSourceOptions options = Options("start-time-error");
  options.start_time = absl::FromUnixMillis(1767225600000);
  options.start_time_timeout = absl::Seconds(2);
  WEIR_ASSERT_OK(
      broker_->Command("error ListOffsets UNKNOWN_TOPIC_OR_PART 1000"));
  RecordingListener listener;
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(options);
  ASSERT_TRUE(source.ok()) << source.status();
  (*source)->SetPartitionListener(&listener);
  const absl::Status failure = PollUntilFailure(**source);
  WEIR_ASSERT_OK(broker_->Command("clear ListOffsets"));
  EXPECT_FALSE(failure.ok());
  EXPECT_THAT(std::string(failure.message()), HasSubstr("start_time"));
  // The listener accepted the partitions, then got them back.
  ASSERT_EQ(listener.assigned.size(), 1u);
  ASSERT_EQ(listener.revoked.size(), 1u);
  (*source)->Close().IgnoreError();
}

TEST_F(KafkaSourceTest, NoCommittedOffsetUnderResetErrorFailsPoll) {
  Produce(1);
  KafkaSourceOptions options = Options("reset-error");
  options.auto_offset_reset = OffsetReset::kError;
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(options);
  ASSERT_TRUE(source.ok()) << source.status();
  const absl::Status failure = PollUntilFailure(**source);
  EXPECT_TRUE(absl::IsFailedPrecondition(failure)) << failure;
  EXPECT_THAT(std::string(failure.message()), HasSubstr(kTopic));
}

TEST_F(KafkaSourceTest, PropertiesPassThroughAndBadOnesAreNamed) {
  KafkaSourceOptions options = Options("properties");
  options.properties["client.id"] = "from-properties";
  // Security settings are accepted as they are.
  options.properties["sasl.mechanism"] = "SCRAM-SHA-512";
  options.properties["sasl.username"] = "weir";
  options.properties["sasl.password"] = "secret";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  options.properties.erase("sasl.mechanism");
  options.properties.erase("sasl.username");
  options.properties.erase("sasl.password");
  absl::StatusOr<std::unique_ptr<KafkaSource>> source =
      KafkaSource::Create(options);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_TRUE(absl::StartsWith((*source)->name(), "from-properties#consumer"))
      << (*source)->name();

  KafkaSourceOptions bad = Options("properties");
  bad.properties["no.such.property"] = "1";
  absl::Status s = KafkaSource::Create(bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("no.such.property"));

  bad = Options("properties");
  bad.properties["session.timeout.ms"] = "soon";
  s = bad.Validate();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("session.timeout.ms"));

  bad = Options("properties");
  bad.properties["enable.auto.commit"] = "true";
  s = bad.Validate();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("enable.auto.commit"));

  bad = Options("properties");
  bad.topics = {kTopic, "bad topic"};
  s = bad.Validate();
  EXPECT_THAT(std::string(s.message()), HasSubstr("topics[1]"));
  bad.topics = {};
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("topics"));
  bad = Options("properties");
  bad.group_id = "";
  EXPECT_THAT(std::string(bad.Validate().message()), HasSubstr("group_id"));
  bad = Options("properties");
  bad.close_timeout = absl::ZeroDuration();
  EXPECT_THAT(std::string(bad.Validate().message()),
              HasSubstr("close_timeout"));
}

}  // namespace
}  // namespace weir
