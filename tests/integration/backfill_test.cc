// Backfill equals stream (weir/backfill.h, docs/semantics.md "Backfill"):
// the fraud-features service run over a W-PAY topic of the local broker as
// a bounded streaming run, and the same binary run as a backfill over the
// same offsets — from Kafka, from JSON-lines files of the same records,
// killed with SIGKILL twice and restarted, and over a time range — write
// the same feature updates.
//
// How outputs are compared: a FileSink log's lines are sorted and compared
// byte for byte (the order of lines across partitions depends on how polls
// interleave; within a partition it is fixed). A run that was killed and
// restarted appends the updates it replays again, and its write-back
// caches flush at other moments, so there the distinct lines must be the
// same set, byte for byte for every feature: the mean sums its amounts
// exactly and the p99 is an order-free histogram, so merging partials at
// other moments changes no bit (include/weir/aggregate.h).

#include "weir/backfill.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../../examples/fraud_features/fraud_features.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/json/json_decoder.h"
#include "weir/keyed_window_operator.h"
#include "weir/service.h"
#include "weir/sinks.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"
#include "weir/window.h"

namespace weir {
namespace {

using fraud_features_testing::CompareFinal;
using fraud_features_testing::FinishService;
using fraud_features_testing::ReadFinalValues;
using fraud_features_testing::StartService;
using fraud_features_testing::SummaryNumber;
using ::testing::HasSubstr;

constexpr int kPartitions = 4;
constexpr int64_t kEvents = 150'000;
constexpr char kTopic[] = "payments";
// W-PAY's first event time, 2026-01-01T00:00:00Z; one event per ms.
constexpr EventTime kStart = 1767225600000;

testing::WPayOptions WPay() {
  testing::WPayOptions w;
  w.num_events = kEvents;
  w.num_users = 2'000;
  w.num_partitions = kPartitions;
  w.events_per_millisecond = 1;
  return w;
}

// Produces the W-PAY events in order, each to the partition the generator
// chose and stamped with its event time (as a producer stamps records at
// creation), so offsets-for-times finds them.
absl::Status ProduceStamped(const std::string& bootstrap,
                            const std::vector<testing::WPayEvent>& events) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"bootstrap.servers", bootstrap},
           {"compression.type", "lz4"},
           {"enable.idempotence", "true"},
           {"linger.ms", "20"},
           {"queue.buffering.max.messages", "500000"}}) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(err);
    }
  }
  static int failed = 0;
  failed = 0;
  rd_kafka_conf_set_dr_msg_cb(
      conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) ++failed;
      });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) return absl::InternalError(err);
  absl::Status status;
  for (const testing::WPayEvent& e : events) {
    while (true) {
      const rd_kafka_resp_err_t r = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(kTopic), RD_KAFKA_V_PARTITION(e.partition),
          RD_KAFKA_V_KEY(e.user_id.data(), e.user_id.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(e.json.data()), e.json.size()),
          RD_KAFKA_V_TIMESTAMP(e.event_time),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (r == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        status = absl::InternalError(rd_kafka_err2str(r));
        break;
      }
      rd_kafka_poll(rk, 100);  // waits for deliveries to make room
    }
    if (!status.ok()) break;
  }
  if (status.ok() &&
      rd_kafka_flush(rk, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::DeadlineExceededError("flush");
  }
  rd_kafka_destroy(rk);
  if (status.ok() && failed > 0) {
    status = absl::InternalError(absl::StrCat(failed, " deliveries failed"));
  }
  return status;
}

absl::StatusOr<std::vector<std::string>> SortedLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::set<std::string> DistinctLines(const std::vector<std::string>& in) {
  return std::set<std::string>(in.begin(), in.end());
}

// The first lines in which two sorted outputs differ.
std::string Diff(const std::vector<std::string>& want,
                 const std::vector<std::string>& got) {
  std::vector<std::string> missing;
  std::vector<std::string> extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                      std::back_inserter(extra));
  std::string out =
      absl::StrCat(want.size(), " lines wanted, ", got.size(), " got; ",
                   missing.size(), " missing, ", extra.size(), " extra\n");
  for (size_t i = 0; i < missing.size() && i < 5; ++i) {
    absl::StrAppend(&out, "missing ", missing[i], "\n");
  }
  for (size_t i = 0; i < extra.size() && i < 5; ++i) {
    absl::StrAppend(&out, "extra   ", extra[i], "\n");
  }
  return out;
}

class BackfillTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fraud_features_testing::NeedBinaries().ok()) return;
    auto dir = testing::TempDir::Create("backfill-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new testing::TempDir(std::move(*dir));
    LocalBroker::Options bo;
    bo.binary_path = fraud_features_testing::BrokerBinary();
    bo.topics = {{kTopic, kPartitions}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    auto events = testing::WPayGenerator::GenerateAll(WPay());
    ASSERT_TRUE(events.ok()) << events.status();
    events_ = new std::vector<testing::WPayEvent>(std::move(*events));
    ASSERT_TRUE(ProduceStamped(broker_->bootstrap(), *events_).ok());

    // The reference: a bounded streaming run over every offset.
    auto out = Run("stream", {"--max_events=" + absl::StrCat(kEvents)});
    ASSERT_TRUE(out.ok()) << out.status();
    stream_output_ = new std::string(*out);
    auto lines = SortedLines(Path("stream") + "/features.jsonl");
    ASSERT_TRUE(lines.ok()) << lines.status();
    stream_ = new std::vector<std::string>(std::move(*lines));
  }
  static void TearDownTestSuite() {
    delete stream_;
    delete stream_output_;
    delete events_;
    delete broker_;
    delete dir_;
  }
  void SetUp() override {
    WEIR_REQUIRE_PART(fraud_features_testing::NeedBinaries());
    ASSERT_NE(stream_, nullptr) << "the streaming reference run failed";
    ASSERT_FALSE(stream_->empty());
  }

  static std::string Path(const std::string& name) {
    return absl::StrCat(dir_->path(), "/", name);
  }

  // The flags every run shares: its own directory `name` holding the state,
  // features.jsonl and dlq.jsonl; checkpoints only at the end unless
  // `extra` says otherwise.
  static std::vector<std::string> Args(const std::string& name,
                                       const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        "--bootstrap=" + broker_->bootstrap(), "--topic=" + std::string(kTopic),
        "--group=" + name, "--state_dir=" + Path(name) + "/state",
        "--sink=file:" + Path(name) + "/features.jsonl",
        "--dlq=file:" + Path(name) + "/dlq.jsonl", "--checkpoint_interval=1h",
        // A restarted member is not kept waiting for its killed one.
        "--kafka_property=session.timeout.ms=3000",
        "--kafka_property=heartbeat.interval.ms=300"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Runs fraud-features to its end; its output, or an error with it.
  static absl::StatusOr<std::string> Run(
      const std::string& name, const std::vector<std::string>& extra) {
    return fraud_features_testing::RunServiceToEnd(Args(name, extra),
                                                   absl::Seconds(120));
  }

  // Writes the topic's records as JSON-lines files in the directory
  // `name`, one per partition, line n holding the record at offset n;
  // returns the directory.
  static absl::StatusOr<std::string> WritePartitionFiles(
      const std::string& name) {
    const std::string dir = Path(name);
    std::filesystem::create_directories(dir);
    std::vector<std::ofstream> files;
    for (int p = 0; p < kPartitions; ++p) {
      files.emplace_back(absl::StrCat(dir, "/payments-", p, ".jsonl"));
    }
    std::vector<int64_t> next(kPartitions, 0);
    for (const testing::WPayEvent& e : *events_) {
      if (e.offset != next[e.partition]++ ||
          e.json.find('\n') != std::string::npos) {
        return absl::InternalError(absl::StrCat("event ", e.seq));
      }
      files[e.partition] << e.json << "\n";
    }
    for (std::ofstream& f : files) {
      f.close();
      if (!f) return absl::InternalError("writing the files failed");
    }
    return dir;
  }

  static testing::TempDir* dir_;
  static LocalBroker* broker_;
  static std::vector<testing::WPayEvent>* events_;
  static std::string* stream_output_;
  static std::vector<std::string>* stream_;  // sorted lines
};

testing::TempDir* BackfillTest::dir_ = nullptr;
LocalBroker* BackfillTest::broker_ = nullptr;
std::vector<testing::WPayEvent>* BackfillTest::events_ = nullptr;
std::string* BackfillTest::stream_output_ = nullptr;
std::vector<std::string>* BackfillTest::stream_ = nullptr;

TEST_F(BackfillTest, KafkaOffsetsEqualStreamByteForByte) {
  auto out = Run("kafka", {"--backfill_from=kafka", "--backfill_start=0"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("backfill offsets-0-end: payments/0 [0, "));
  EXPECT_EQ(SummaryNumber(*out, "events"), kEvents) << *out;
  auto lines = SortedLines(Path("kafka") + "/features.jsonl");
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_TRUE(*lines == *stream_) << Diff(*stream_, *lines);
  // Its own group and checkpoint prefix, apart from the live service's.
  EXPECT_THAT(*out, HasSubstr("as group 'kafka-backfill'"));
  EXPECT_THAT(*out, HasSubstr("/checkpoints/backfill-kafka-offsets-0-end"));
}

TEST_F(BackfillTest, JsonLinesFilesEqualStreamByteForByte) {
  auto in = WritePartitionFiles("files-in");
  ASSERT_TRUE(in.ok()) << in.status();

  // No --bootstrap needed: the dead letters go to a file.
  std::vector<std::string> args =
      Args("files", {"--backfill_from=file:" + *in});
  args.erase(args.begin());
  auto out = fraud_features_testing::RunServiceToEnd(args, absl::Seconds(120));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("backfill all: 4 file(s)"));
  EXPECT_EQ(SummaryNumber(*out, "events"), kEvents) << *out;
  auto lines = SortedLines(Path("files") + "/features.jsonl");
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_TRUE(*lines == *stream_) << Diff(*stream_, *lines);
  // The same dead letters too.
  EXPECT_EQ(SummaryNumber(*out, "dead letters"),
            SummaryNumber(*stream_output_, "dead letters"));
}

// A part of each partition, [1000, 20000), read from Kafka and from the
// files of the same records: the same updates.
TEST_F(BackfillTest, OffsetRangeOfKafkaEqualsThatOfFiles) {
  auto in = WritePartitionFiles("part-in");
  ASSERT_TRUE(in.ok()) << in.status();
  const std::vector<std::string> range = {"--backfill_start=1000",
                                          "--backfill_end=20000"};
  std::vector<std::string> kafka_args = range;
  kafka_args.push_back("--backfill_from=kafka");
  auto kafka = Run("part-kafka", kafka_args);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  EXPECT_THAT(*kafka, HasSubstr("payments/1 [1000, 20000)"));
  std::vector<std::string> file_args = range;
  file_args.push_back("--backfill_from=file:" + *in);
  auto from_files = Run("part-files", file_args);
  ASSERT_TRUE(from_files.ok()) << from_files.status();
  EXPECT_THAT(*from_files, HasSubstr("lines [1000, 20000) of each"));
  // Every partition holds more than 20000 records.
  EXPECT_EQ(SummaryNumber(*kafka, "events"), kPartitions * 19000) << *kafka;
  EXPECT_EQ(SummaryNumber(*from_files, "events"), kPartitions * 19000);

  auto a = SortedLines(Path("part-kafka") + "/features.jsonl");
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = SortedLines(Path("part-files") + "/features.jsonl");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(a->empty());
  EXPECT_TRUE(*a == *b) << Diff(*a, *b);
}

// Killed by SIGKILL during a checkpoint and during the final firing, and
// started again each time with the same flags, the backfill resumes from
// its own checkpoints and ends with the unkilled output.
TEST_F(BackfillTest, KilledTwiceAndRestartedEqualsStream) {
  const std::vector<std::string> common = {"--backfill_from=kafka",
                                           "--checkpoint_interval=50ms",
                                           "--checkpoint_min_pause=0"};
  int kills = 0;
  int restored = 0;
  std::string outputs;
  for (const std::string& kill :
       {std::string("--fault_kill_in_phase=checkpoint:2"),
        std::string("--fault_kill_in_phase=firing:1"), std::string()}) {
    std::vector<std::string> extra = common;
    if (!kill.empty()) extra.push_back(kill);
    auto s = StartService(Args("killed", extra));
    ASSERT_TRUE(s.ok()) << s.status();
    auto status = FinishService(*s, absl::Seconds(120));
    ASSERT_TRUE(status.ok()) << status.status();
    absl::StrAppend(&outputs, s->output, "\n----\n");
    if (!kill.empty()) {
      ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
          << kill << " did not kill:\n"
          << s->output;
      ++kills;
    } else {
      ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << outputs;
    }
    if (absl::StrContains(s->output, "restored checkpoint")) ++restored;
  }
  EXPECT_EQ(kills, 2);
  EXPECT_EQ(restored, 2) << outputs;

  auto lines = SortedLines(Path("killed") + "/features.jsonl");
  ASSERT_TRUE(lines.ok()) << lines.status();
  const std::set<std::string> got = DistinctLines(*lines);
  const std::set<std::string> want = DistinctLines(*stream_);
  EXPECT_TRUE(got == want) << Diff({want.begin(), want.end()},
                                   {got.begin(), got.end()});
  auto final = ReadFinalValues(Path("killed") + "/features.jsonl");
  ASSERT_TRUE(final.ok()) << final.status();
  auto stream_final = ReadFinalValues(Path("stream") + "/features.jsonl");
  ASSERT_TRUE(stream_final.ok()) << stream_final.status();
  EXPECT_EQ(CompareFinal(*stream_final, *final), "");
}

// A time range writes the windows it covers completely, and exactly as the
// stream computed them; it reads from offsets-for-times of the warm-up
// start to that of the range end + lateness + out-of-orderness.
TEST_F(BackfillTest, TimeRangeWritesCoveredWindowsAsTheStream) {
  const absl::Time from = FromEventTime(kStart);
  const absl::Time to = from + absl::Minutes(1);
  const std::vector<std::string> range_flags = {
      "--backfill_start=" +
          absl::FormatTime(absl::RFC3339_full, from, absl::UTCTimeZone()),
      "--backfill_end=" +
          absl::FormatTime(absl::RFC3339_full, to, absl::UTCTimeZone())};
  std::vector<std::string> kafka_args = range_flags;
  kafka_args.push_back("--backfill_from=kafka");
  auto out = Run("range", kafka_args);
  ASSERT_TRUE(out.ok()) << out.status();
  // The range ends 1 min 5 s after its end, well before the 150 s of data.
  const int64_t read = SummaryNumber(*out, "events");
  EXPECT_GT(read, 0) << *out;
  EXPECT_LT(read, kEvents) << *out;

  // The stream's lines of the covered windows: line i of its log is
  // update i.
  BackfillOptions range;
  range.from = "kafka";
  range.start_time = from;
  range.end_time = to;
  auto updates = ReadFeatureFile(Path("stream") + "/features.jsonl");
  ASSERT_TRUE(updates.ok()) << updates.status();
  std::ifstream log(Path("stream") + "/features.jsonl");
  std::vector<std::string> want;
  std::set<std::string> features;
  size_t i = 0;
  for (std::string line; std::getline(log, line); ++i) {
    ASSERT_LT(i, updates->size());
    if (BackfillWritesWindow(range, (*updates)[i].window)) {
      want.push_back(line);
      features.insert((*updates)[i].feature);
    }
  }
  ASSERT_EQ(i, updates->size());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(features, std::set<std::string>{"txn_count_1m"});
  ASSERT_FALSE(want.empty());
  auto lines = SortedLines(Path("range") + "/features.jsonl");
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_TRUE(*lines == want) << Diff(want, *lines);

  // Files have no timestamps: read whole, they write the same windows.
  auto in = WritePartitionFiles("range-files-in");
  ASSERT_TRUE(in.ok()) << in.status();
  std::vector<std::string> file_args = range_flags;
  file_args.push_back("--backfill_from=file:" + *in);
  auto from_files = Run("range-files", file_args);
  ASSERT_TRUE(from_files.ok()) << from_files.status();
  EXPECT_EQ(SummaryNumber(*from_files, "events"), kEvents);
  auto file_lines = SortedLines(Path("range-files") + "/features.jsonl");
  ASSERT_TRUE(file_lines.ok()) << file_lines.status();
  EXPECT_TRUE(*file_lines == want) << Diff(want, *file_lines);
}

// With short windows the warm-up is short too: a time-range backfill of
// one-minute counts (lateness 10 s, out-of-orderness 5 s: warm-up 1 min
// 15 s) skips each partition's records up to the first one stamped at
// 00:00:45 and still writes what the stream wrote for the covered minute.
TEST_F(BackfillTest, WarmupSkipsTheLogBeforeTheRange) {
  KeyedWindowOptions features;
  features.features = {fraud::Feature("txn_count_1m", AggregateKind::kCount,
                                      Tumbling(absl::Minutes(1)), -1)};
  features.max_out_of_orderness = absl::Seconds(5);
  features.allowed_lateness = absl::Seconds(10);
  ASSERT_EQ(BackfillWarmup(features), absl::Seconds(75));
  auto decoder = JsonDecoder::Create(fraud::WPaySchema());
  ASSERT_TRUE(decoder.ok()) << decoder.status();

  auto options = [](const std::string& name) {
    ServiceOptions o;
    o.name = "warmup";
    o.bootstrap = broker_->bootstrap();
    o.topic = kTopic;
    o.group = name;
    o.state_dir = Path(name) + "/state";
    o.state_backend = "memory";
    o.sink = "file:" + Path(name) + "/features.jsonl";
    o.dlq = "file:" + Path(name) + "/dlq.jsonl";
    o.checkpoint_interval = absl::Hours(1);
    o.metrics_port = std::nullopt;
    o.handle_signals = false;
    return o;
  };
  ServiceOptions stream = options("warmup-stream");
  stream.max_events = kEvents;
  ASSERT_TRUE(RunService(stream, features, decoder->get()).ok());

  const absl::Time from = FromEventTime(kStart) + absl::Minutes(2);
  ServiceOptions backfill = options("warmup-range");
  backfill.backfill = BackfillOptions{
      .from = "kafka", .start_time = from, .end_time = from + absl::Minutes(1)};
  auto service = Service::Create(backfill, features, decoder->get());
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_TRUE((*service)->Run().ok());

  // Read: each partition from its first record stamped at or after
  // 00:00:45, to its end (the range's end + 15 s is past the data).
  const EventTime warm = ToEventTime(from - absl::Seconds(75));
  std::vector<bool> started(kPartitions, false);
  int64_t expected = 0;
  for (const testing::WPayEvent& e : *events_) {
    if (e.event_time >= warm) started[e.partition] = true;
    if (started[e.partition]) ++expected;
  }
  EXPECT_EQ((*service)->stats().records_in, expected);
  EXPECT_LT(expected, kEvents - 4 * 10'000);

  auto stream_updates = ReadFeatureFile(Path("warmup-stream/features.jsonl"));
  ASSERT_TRUE(stream_updates.ok()) << stream_updates.status();
  std::vector<FeatureUpdate> want;
  for (const FeatureUpdate& u : *stream_updates) {
    if (BackfillWritesWindow(*backfill.backfill, u.window)) want.push_back(u);
  }
  ASSERT_FALSE(want.empty());
  auto got = ReadFeatureFile(Path("warmup-range/features.jsonl"));
  ASSERT_TRUE(got.ok()) << got.status();
  auto key = [](const FeatureUpdate& u) {
    return std::make_tuple(u.key, u.feature, u.window.start, u.version_time,
                           u.version_offset, u.value.ToString());
  };
  std::vector<std::tuple<std::string, std::string, EventTime, EventTime,
                         int64_t, std::string>>
      a, b;
  for (const FeatureUpdate& u : want) a.push_back(key(u));
  for (const FeatureUpdate& u : *got) b.push_back(key(u));
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b);
}

TEST_F(BackfillTest, BadFlagsNameTheFlag) {
  for (const auto& [args, flag] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--backfill_from=s3://x"}, "--backfill_from"},
           {{"--backfill_from=kafka", "--backfill_start=yesterday"},
            "--backfill_start"},
           {{"--backfill_from=kafka", "--backfill_start=5", "--backfill_end=2"},
            "--backfill_end"},
           {{"--backfill_from=kafka", "--backfill_start=0",
             "--backfill_end=2026-01-01T00:00:00Z"},
            "--backfill_start"},
           {{"--backfill_from=kafka", "--backfill_start=2026-01-01T00:00:00Z"},
            "--backfill_end"},
           {{"--backfill_end=10"}, "--backfill_start / --backfill_end"},
           {{"--backfill_from=kafka", "--replay_from=2026-01-01T00:00:00Z"},
            "--replay_from"},
       }) {
    std::vector<std::string> argv = {fraud_features_testing::ServiceBinary(),
                                     "--bootstrap=127.0.0.1:1"};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::SubprocessOptions o;
    o.merge_stderr = true;
    auto p = testing::Subprocess::Start(argv, o);
    ASSERT_TRUE(p.ok()) << p.status();
    std::string output;
    while (true) {
      auto line = (*p)->ReadLine(absl::Seconds(30));
      if (!line.ok()) break;
      absl::StrAppend(&output, *line, "\n");
    }
    auto status = (*p)->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
        << absl::StrJoin(args, " ") << ":\n"
        << output;
    EXPECT_THAT(output, HasSubstr(flag + ":")) << absl::StrJoin(args, " ");
  }
}

// The rules the flags and docs/semantics.md state.
TEST(BackfillRulesTest, WarmupWindowsAndNames) {
  KeyedWindowOptions f;
  f.features.push_back({.name = "a", .window = Tumbling(absl::Hours(1))});
  f.features.push_back({.name = "b", .window = Session(absl::Minutes(90))});
  f.allowed_lateness = absl::Minutes(1);
  f.max_out_of_orderness = absl::Seconds(5);
  EXPECT_EQ(BackfillWarmup(f),
            absl::Minutes(90) + absl::Minutes(1) + absl::Seconds(5));

  BackfillOptions b;
  b.from = "kafka";
  EXPECT_TRUE(b.Validate().ok());
  EXPECT_EQ(b.RangeName(), "all");
  EXPECT_TRUE(BackfillWritesWindow(b, {0, 1}));
  ASSERT_TRUE(ParseBackfillBound("2026-01-01T00:01:00Z", true, b).ok());
  ASSERT_TRUE(ParseBackfillBound("2026-01-01T00:03:00Z", false, b).ok());
  EXPECT_TRUE(b.Validate().ok());
  EXPECT_EQ(b.RangeName(), "20260101T000100.000Z-20260101T000300.000Z");
  const EventTime m = 60'000;
  EXPECT_FALSE(BackfillWritesWindow(b, {kStart, kStart + m}));
  EXPECT_TRUE(BackfillWritesWindow(b, {kStart + m, kStart + 2 * m}));
  EXPECT_TRUE(BackfillWritesWindow(b, {kStart + 2 * m, kStart + 3 * m}));
  EXPECT_FALSE(BackfillWritesWindow(b, {kStart + 2 * m, kStart + 4 * m}));
  EXPECT_FALSE(ParseBackfillBound("-1", true, b).ok());
  EXPECT_FALSE(ParseBackfillBound("2026-01-01T00:01:00.0001Z", true, b).ok());
}

}  // namespace
}  // namespace weir
