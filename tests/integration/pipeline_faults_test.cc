// Faults at the pipeline level (RELIABILITY.md scenarios 3, 4, 6 and 10):
// the fraud-features service runs as child processes against the local
// broker tool (its own process), with file sinks and a checkpoint store
// that is a directory, or s3rver behind the HTTP fault proxy. Each test
// injects its faults into the running service and ends with output equal to
// an uninterrupted (golden) run's, key by key, and to the sqlite3 oracle's
// counts and exact sums:
//
//   - BrokerOutageLeaderMovesAndRequestErrors: every broker down for 10 s
//     and back, every partition's leader moved twice, Fetch and
//     OffsetCommit requests failed; the consumer lag of all 16 partitions
//     returns to 0.
//   - ObjectStoreFaultsFailCheckpointsThenTheyRecover: S3 answering 503,
//     holding responses past the request time-out, and cutting connections
//     mid-response during checkpoint uploads: `checkpoints_failed` rises,
//     then checkpoints succeed again; with the store failing for good, the
//     service stops with an error naming the tolerated count, and a restart
//     loses nothing.
//   - CorruptNewestCheckpointFallsBack: between kills, a byte of each
//     partition's newest checkpoint's SST flipped, then (after the next
//     kill) a byte of each newest manifest: each restart restores the
//     checkpoint the store says it must (the previous one),
//     `weir_restore_fallbacks_total` counts the skipped ones.
//   - GroupChurnMovesEveryPartitionThroughTheStore: three instances; in
//     each round one is stopped with SIGTERM and one SIGKILLed once it has
//     published a checkpoint, both restarted; after every round each
//     partition's new owner reports that it restored it from the store.
//
// Every wait is on a condition (a metric, a log line, a file) with a
// deadline. WEIR_SOAK_SCALE (default 1) multiplies the events and the
// churn rounds.

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/checkpoint.h"
#include "weir/dlq.h"
#include "weir/object_store.h"
#include "weir/testing/http_fault_proxy.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/s3rver.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 16;
// A fault test that waits longer than this for a condition fails.
constexpr absl::Duration kWait = absl::Seconds(120);

int Scale() {
  const char* s = std::getenv("WEIR_SOAK_SCALE");
  int v = 1;
  if (s != nullptr && absl::SimpleAtoi(s, &v) && v >= 1) return v;
  return 1;
}

int64_t NumEvents() { return 100'000 * static_cast<int64_t>(Scale()); }

testing::WPayOptions WPay() {
  testing::WPayOptions w;
  w.num_events = NumEvents();
  w.num_users = 50'000;
  w.num_partitions = kPartitions;
  w.seed = 23;
  return w;
}

// One assignment line of the pipeline's log (PipelineOptions::logger):
// partition -> the checkpoint it was restored from (nullopt: none).
struct Assignment {
  int partition = -1;
  std::optional<uint64_t> checkpoint;
};
std::optional<Assignment> ParseAssignment(absl::string_view line) {
  const std::string tag = absl::StrCat("partition ", kTopic, "-");
  const size_t at = line.find(tag);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = line.substr(at + tag.size());
  const size_t colon = rest.find(':');
  Assignment a;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, colon), &a.partition)) {
    return std::nullopt;
  }
  rest = rest.substr(colon);
  if (absl::StartsWith(rest, ": no checkpoint")) return a;
  if (!absl::ConsumePrefix(&rest, ": restored checkpoint ")) {
    return std::nullopt;
  }
  uint64_t id = 0;
  if (!absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &id)) {
    return std::nullopt;
  }
  a.checkpoint = id;
  return a;
}

class PipelineFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fft::BinariesBuilt()) {
      GTEST_SKIP() << "build fraud-features and weir-broker first";
    }
    auto dir = testing::TempDir::Create("pipeline-faults");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
  }

  // Starts a broker of `brokers` brokers, produces the input and runs the
  // golden instance over it (uninterrupted, its own store).
  void StartBrokerAndRunGolden(int brokers) {
    StartBroker(brokers);
    if (HasFatalFailure()) return;
    absl::Status produced =
        fft::ProduceWPay(broker_->bootstrap(), kTopic, WPay());
    ASSERT_TRUE(produced.ok()) << produced;
    RunGolden();
  }

  void StartBroker(int brokers) {
    LocalBroker::Options bo;
    bo.binary_path = fft::BrokerBinary();
    bo.brokers = brokers;
    bo.topics = {{kTopic, kPartitions}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }

  // Produces the first half of the input, or the second: a test that
  // needs work left after a fault, whatever the machine's speed, holds the
  // second half back until then.
  void ProduceHalf(bool second) {
    const int64_t half = NumEvents() / 2;
    absl::Status produced =
        second
            ? fft::ProduceWPay(broker_->bootstrap(), kTopic, WPay(), half)
            : fft::ProduceWPay(broker_->bootstrap(), kTopic, WPay(), 0, half);
    ASSERT_TRUE(produced.ok()) << produced;
  }

  // Runs the golden instance over the whole input.
  void RunGolden() {
    RunToEnd(Args("golden", "golden", FileStore("golden")));
    if (HasFatalFailure()) return;
    ReadOutputs({"golden"}, &golden_, &golden_dead_);
    ASSERT_FALSE(golden_.empty());
  }

  std::string FileStore(const std::string& name) const {
    return absl::StrCat("file://", dir_->path(), "/", name, "-store");
  }
  std::string StoreDir(const std::string& name) const {
    return absl::StrCat(dir_->path(), "/", name, "-store");
  }

  // Flags of instance `name` (its own state directory, sink and DLQ file)
  // in `group`, checkpointing to `store_uri`. Unbounded: it runs until a
  // signal; RunToEnd adds --max_events.
  std::vector<std::string> Args(const std::string& name,
                                const std::string& group,
                                const std::string& store_uri) const {
    const std::string d = absl::StrCat(dir_->path(), "/", name);
    std::filesystem::create_directories(d);
    return {"--bootstrap=" + broker_->bootstrap(),
            absl::StrCat("--topic=", kTopic),
            "--group=" + group,
            "--state_dir=" + d + "/state",
            "--checkpoint_uri=" + store_uri,
            "--sink=file:" + d + "/features.jsonl",
            "--dlq=file:" + d + "/dlq.jsonl",
            "--checkpoint_interval=1s",
            "--checkpoint_min_pause=1s",
            "--kafka_property=auto.offset.reset=error",
            "--kafka_property=session.timeout.ms=3000",
            "--kafka_property=heartbeat.interval.ms=300"};
  }

  // Runs a bounded instance over the whole topic; expects a clean exit and
  // returns its output.
  std::string RunToEnd(std::vector<std::string> args,
                       const std::vector<std::string>& env = {}) {
    args.push_back(absl::StrCat("--max_events=", NumEvents()));
    auto service = fft::StartService(args, env);
    EXPECT_TRUE(service.ok()) << service.status();
    if (!service.ok()) return "";
    auto status = fft::FinishService(*service, absl::Seconds(180));
    EXPECT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(status.ok() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
    return service->output;
  }

  // Waits until `probe` holds, polling the service every 20 ms, while the
  // service runs. Fails (and says why) on the deadline or an early exit.
  ::testing::AssertionResult WaitUntil(fft::Service& s, const std::string& what,
                                       const std::function<bool()>& probe,
                                       absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (probe()) return ::testing::AssertionSuccess();
      if (s.process->Wait(absl::ZeroDuration()).ok()) {
        auto rest = s.process->ReadAll(absl::Seconds(1));
        if (rest.ok()) s.output += *rest;
        return ::testing::AssertionFailure()
               << "the service exited while waiting for " << what << ":\n"
               << s.output;
      }
      absl::SleepFor(absl::Milliseconds(20));  // polling the endpoint
    }
    return ::testing::AssertionFailure()
           << "no " << what << " within " << absl::FormatDuration(timeout);
  }

  // The value of metric `name`, -1 if the endpoint does not answer.
  static double Metric(const fft::Service& s, const std::string& name) {
    auto v = fft::ScrapeMetric(s.metrics_url, name);
    return v.ok() ? *v : -1;
  }

  // The value of metric `name` once the endpoint answers: a single scrape
  // may time out on a loaded machine, and a baseline read as -1 would
  // weaken or fail what is compared with it. -1, and a test failure, if
  // the service never answers.
  double AnsweredMetric(fft::Service& s, const std::string& name) {
    double v = -1;
    ::testing::AssertionResult answered =
        WaitUntil(s, absl::StrCat("an answer for ", name), [&] {
          v = Metric(s, name);
          return v >= 0;
        });
    if (!answered) ADD_FAILURE() << answered.message();
    return v;
  }

  ::testing::AssertionResult WaitMetricAtLeast(fft::Service& s,
                                               const std::string& name,
                                               double value) {
    return WaitUntil(s, absl::StrCat(name, " >= ", value),
                     [&] { return Metric(s, name) >= value; });
  }

  // Waits until the service has every partition assigned and no lag.
  ::testing::AssertionResult WaitNoLag(fft::Service& s) {
    return WaitUntil(s, "consumer lag 0 on every partition", [&] {
      auto lag = fft::ScrapeSeries(s.metrics_url, "weir_consumer_lag");
      if (!lag.ok() || lag->size() != kPartitions) return false;
      for (const auto& [labels, v] : *lag) {
        if (v != 0) return false;
      }
      return true;
    });
  }

  // Reads the lines the service printed so far (without waiting) and
  // returns its assignment lines among them.
  static std::vector<Assignment> TakeAssignments(fft::Service& s) {
    std::vector<Assignment> out;
    while (true) {
      auto line = s.process->ReadLine(absl::Milliseconds(1));
      if (!line.ok()) break;
      absl::StrAppend(&s.output, *line, "\n");
      if (auto a = ParseAssignment(*line)) out.push_back(*a);
    }
    return out;
  }

  // Reads the service's output until it has reported the assignment of
  // every partition once; returns partition -> restored checkpoint.
  static std::map<int, std::optional<uint64_t>> ReadFullAssignment(
      fft::Service& s) {
    std::map<int, std::optional<uint64_t>> out;
    // Lines printed before "consuming" are in s.output already.
    for (absl::string_view line : absl::StrSplit(s.output, '\n')) {
      if (auto a = ParseAssignment(line)) out[a->partition] = a->checkpoint;
    }
    const absl::Time deadline = absl::Now() + kWait;
    while (out.size() < kPartitions && absl::Now() < deadline) {
      auto line = s.process->ReadLine(deadline - absl::Now());
      if (!line.ok()) break;
      absl::StrAppend(&s.output, *line, "\n");
      if (auto a = ParseAssignment(*line)) out[a->partition] = a->checkpoint;
    }
    return out;
  }

  // Stops a service with SIGTERM; expects a clean exit.
  static void Terminate(fft::Service& s) {
    ASSERT_TRUE(s.process->Signal(SIGTERM).ok());
    auto status = fft::FinishService(s, absl::Seconds(120));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "wait status " << *status << "\n"
        << s.output;
  }

  // The final values and dead letters of the given instances together.
  void ReadOutputs(const std::vector<std::string>& names,
                   fft::FinalValues* final,
                   std::set<std::pair<int32_t, int64_t>>* dead) const {
    absl::Status s = fft::MergeOutputs(dir_->path(), names, final, dead);
    ASSERT_TRUE(s.ok()) << s;
  }

  // Runs instance `args` to the end (it must restore every partition from
  // the store), then expects the output of `names` to equal golden.
  void RunToEndAndExpectGolden(const std::vector<std::string>& args,
                               const std::vector<std::string>& env,
                               const std::vector<std::string>& names) {
    const std::string out = RunToEnd(args, env);
    EXPECT_THAT(out, ::testing::HasSubstr(
                         absl::StrCat(kPartitions, " partitions restored")));
    ExpectGoldenAndOracle(names);
  }

  // The merged output of `names` equals golden and the sqlite oracle, and
  // the broker dropped nothing that could hide a difference.
  void ExpectGoldenAndOracle(const std::vector<std::string>& names) {
    fft::FinalValues final;
    std::set<std::pair<int32_t, int64_t>> dead;
    ReadOutputs(names, &final, &dead);
    EXPECT_EQ(final.size(), golden_.size());
    EXPECT_EQ(fft::CompareFinal(golden_, final), "");
    EXPECT_EQ(dead, golden_dead_) << "dead letters differ";
    auto oracle = fft::CompareWithOracle(final, WPay());
    ASSERT_TRUE(oracle.ok()) << oracle.status();
    EXPECT_EQ(*oracle, "");
    auto low = fft::LogStartOffsets(broker_->bootstrap(), kTopic, kPartitions);
    ASSERT_TRUE(low.ok()) << low.status();
    for (int64_t l : *low) EXPECT_EQ(l, 0);
  }

  // The checkpoint store of partition `p` in a file:// store.
  std::unique_ptr<CheckpointStore> PartitionStore(ObjectStore* store,
                                                  int p) const {
    CheckpointStoreOptions so;
    so.prefix = CheckpointPrefix(absl::StrCat("fraud_features/", kTopic), p);
    auto cs = CheckpointStore::Create(store, so);
    EXPECT_TRUE(cs.ok()) << cs.status();
    return cs.ok() ? std::move(*cs) : nullptr;
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<LocalBroker> broker_;
  fft::FinalValues golden_;
  std::set<std::pair<int32_t, int64_t>> golden_dead_;
};

// Flips one byte in the middle of a file.
void FlipByte(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  ASSERT_GT(size, 0) << path;
  const std::streamoff at = size / 2;
  char c = 0;
  f.seekg(at);
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(at);
  f.write(&c, 1);
  ASSERT_TRUE(f.good()) << path;
}

// Changes one byte of a manifest so that it still parses but says
// something else: the first digit below 9 of the source offset goes up by
// one. Only the manifest's checksum can tell.
void RaiseManifestOffset(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  std::string text((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  const std::string tag = "\"offset\": ";
  size_t at = text.find(tag);
  ASSERT_NE(at, std::string::npos) << path;
  at += tag.size();
  while (at < text.size() && text[at] == '9') ++at;
  ASSERT_TRUE(at < text.size() && text[at] >= '0' && text[at] < '9') << path;
  f.clear();
  f.seekp(static_cast<std::streamoff>(at));
  const char c = static_cast<char>(text[at] + 1);
  f.write(&c, 1);
  ASSERT_TRUE(f.good()) << path;
}

TEST_F(PipelineFaultsTest, BrokerOutageLeaderMovesAndRequestErrors) {
  // The first half of the input, then the service; the second half comes
  // after the outage, so the service has work left whatever its speed.
  StartBroker(/*brokers=*/3);
  if (HasFatalFailure()) return;
  ProduceHalf(/*second=*/false);
  if (HasFatalFailure()) return;
  const std::string store = FileStore("broker");
  auto s = fft::StartService(Args("broker", "broker", store));
  ASSERT_TRUE(s.ok()) << s.status();

  // All brokers down for 10 s (the fault's length; nothing waits on it).
  ASSERT_TRUE(WaitMetricAtLeast(*s, "weir_records_in_total", NumEvents() / 10));
  ASSERT_TRUE(broker_->SetBrokerDown(-1).ok());
  absl::SleepFor(absl::Seconds(10));
  ASSERT_TRUE(broker_->SetBrokerUp(-1).ok());
  ProduceHalf(/*second=*/true);
  if (HasFatalFailure()) return;

  // Leaders move (twice, through every broker), and requests fail.
  for (int p = 0; p < kPartitions; ++p) {
    ASSERT_TRUE(broker_->SetLeader(kTopic, p, 1 + p % 3).ok());
  }
  ASSERT_TRUE(
      broker_->PushRequestErrors("Fetch", "NOT_LEADER_FOR_PARTITION", 5).ok());
  ASSERT_TRUE(broker_->PushRequestErrors("Fetch", "_TRANSPORT", 3).ok());
  ASSERT_TRUE(
      broker_->PushRequestErrors("OffsetCommit", "NOT_COORDINATOR", 3).ok());
  ASSERT_TRUE(
      broker_->PushRequestErrors("OffsetCommit", "REQUEST_TIMED_OUT", 3).ok());
  const double completed =
      AnsweredMetric(*s, "weir_checkpoints_completed_total");
  ASSERT_TRUE(
      WaitMetricAtLeast(*s, "weir_checkpoints_completed_total", completed + 2));
  for (int p = 0; p < kPartitions; ++p) {
    ASSERT_TRUE(broker_->SetLeader(kTopic, p, 1 + (p + 1) % 3).ok());
  }
  ASSERT_TRUE(broker_->PushRequestErrors("Fetch", "_TRANSPORT", 2).ok());

  // The consumer reads everything and catches up on every partition, and
  // checkpoints go on.
  ASSERT_TRUE(WaitMetricAtLeast(*s, "weir_records_in_total", NumEvents()));
  ASSERT_TRUE(WaitNoLag(*s));
  const double caught_up =
      AnsweredMetric(*s, "weir_checkpoints_completed_total");
  ASSERT_TRUE(
      WaitMetricAtLeast(*s, "weir_checkpoints_completed_total", caught_up + 2));
  EXPECT_EQ(AnsweredMetric(*s, "weir_checkpoints_failed_total"), 0);
  Terminate(*s);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(broker_->ClearRequestErrors("Fetch").ok());
  ASSERT_TRUE(broker_->ClearRequestErrors("OffsetCommit").ok());

  // The golden run, now that the whole input is there; then a bounded
  // restart fires the windows left open at the end of input.
  RunGolden();
  if (HasFatalFailure()) return;
  RunToEndAndExpectGolden(Args("broker", "broker", store), {}, {"broker"});
}

TEST_F(PipelineFaultsTest, ObjectStoreFaultsFailCheckpointsThenTheyRecover) {
  testing::S3rverOptions so;
  so.node_modules_dir = WEIR_SOURCE_DIR "/node_modules";
  auto s3 = testing::S3rver::Start(so);
  if (!s3.ok()) {
    if (std::getenv("CI") != nullptr) FAIL() << "no s3rver: " << s3.status();
    GTEST_SKIP() << "no s3rver: " << s3.status();
  }
  auto proxy = testing::HttpFaultProxy::Start((*s3)->port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  StartBrokerAndRunGolden(/*brokers=*/1);
  if (HasFatalFailure()) return;

  const std::vector<std::string> env = {
      "AWS_ACCESS_KEY_ID=" + (*s3)->access_key_id(),
      "AWS_SECRET_ACCESS_KEY=" + (*s3)->secret_access_key()};
  std::vector<std::string> args =
      Args("s3", "s3", "s3://weir-test/pipeline-faults");
  args.push_back("--s3_endpoint=" + (*proxy)->endpoint());
  args.push_back("--s3_request_timeout=2s");
  args.push_back("--checkpoint_tolerated_failures=2");
  args.push_back("--s3_max_attempts=2");
  auto s = fft::StartService(args, env);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(WaitMetricAtLeast(*s, "weir_checkpoints_completed_total", 1));

  // Each fault fails a checkpoint (every request fails until the failure
  // is counted), then, with the fault gone, the next one is published.
  constexpr int kAll = 1'000'000;
  const std::vector<std::pair<std::string, std::function<void()>>> faults = {
      {"503", [&] { (*proxy)->FailNext(kAll, 503); }},
      {"time-out", [&] { (*proxy)->DelayNext(kAll, absl::Seconds(60)); }},
      {"cut connection", [&] { (*proxy)->DropNext(kAll); }},
  };
  for (const auto& [what, inject] : faults) {
    SCOPED_TRACE(what);
    const double failed = AnsweredMetric(*s, "weir_checkpoints_failed_total");
    ASSERT_GE(failed, 0);
    inject();
    ASSERT_TRUE(
        WaitMetricAtLeast(*s, "weir_checkpoints_failed_total", failed + 1));
    const double completed =
        AnsweredMetric(*s, "weir_checkpoints_completed_total");
    (*proxy)->ClearFaults();  // also releases held responses
    ASSERT_TRUE(WaitMetricAtLeast(*s, "weir_checkpoints_completed_total",
                                  completed + 1));
  }
  EXPECT_GT((*proxy)->injected_failures(), 0);
  EXPECT_GT((*proxy)->injected_delays(), 0);
  EXPECT_GT((*proxy)->injected_drops(), 0);

  // A store that stays down: past the tolerated failures the service stops
  // with an error that says so.
  (*proxy)->FailNext(kAll, 503);
  auto status = fft::FinishService(*s, kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
      << "wait status " << *status << "\n"
      << s->output;
  EXPECT_THAT(s->output,
              ::testing::HasSubstr(
                  "checkpoints failed 3 times in a row (tolerated: 2)"));
  (*proxy)->ClearFaults();

  // Nothing is lost: a restart resumes from the published checkpoints.
  RunToEndAndExpectGolden(args, env, {"s3"});
}

TEST_F(PipelineFaultsTest, CorruptNewestCheckpointFallsBack) {
  StartBroker(/*brokers=*/1);
  if (HasFatalFailure()) return;
  ProduceHalf(/*second=*/false);
  if (HasFatalFailure()) return;
  const int64_t half = NumEvents() / 2;
  const std::string uri = FileStore("corrupt");
  auto store = OpenObjectStore(uri, {});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string prefix_dir =
      absl::StrCat(StoreDir("corrupt"), "/fraud_features/", kTopic);
  // Every checkpoint is kept, so that an older checkpoint without the
  // newest one's files is always there to fall back to.
  std::vector<std::string> args = Args("corrupt", "corrupt", uri);
  args.push_back("--checkpoint_retained=1000");

  // Starts a run; once it has restored its partitions and skipped at least
  // `fallbacks` checkpoints, and read at least `records` records with no
  // lag left, and then published two more checkpoints (the second started
  // after everything read was processed), SIGKILLs it. Returns its
  // partitions' restore report.
  auto run_and_kill = [&](double fallbacks, double records) {
    std::map<int, std::optional<uint64_t>> restored;
    auto s = fft::StartService(args);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return restored;
    restored = ReadFullAssignment(*s);
    EXPECT_EQ(restored.size(), kPartitions) << s->output;
    EXPECT_TRUE(
        WaitMetricAtLeast(*s, "weir_restore_fallbacks_total", fallbacks));
    EXPECT_TRUE(WaitMetricAtLeast(*s, "weir_records_in_total", records));
    EXPECT_TRUE(WaitNoLag(*s));
    const double done = AnsweredMetric(*s, "weir_checkpoints_completed_total");
    EXPECT_TRUE(
        WaitMetricAtLeast(*s, "weir_checkpoints_completed_total", done + 2));
    s->process->Kill();
    return restored;
  };

  // 1. The first half, checkpointed, and a kill; then the second half,
  // which adds to every partition's state, checkpointed, and a kill.
  run_and_kill(0, half);
  if (HasFailure()) return;
  ProduceHalf(/*second=*/true);
  if (HasFatalFailure()) return;
  run_and_kill(0, NumEvents() - half);
  if (HasFailure()) return;

  // 2. A byte of each partition's newest SST flipped: the SST the fewest
  // older checkpoints hold (one made from the second half, so none of the
  // first run's). The restart must restore, per partition, the newest
  // checkpoint that does not hold the damaged file: most often the
  // previous one.
  std::map<int, std::optional<uint64_t>> expected;
  int to_previous = 0;
  for (int p = 0; p < kPartitions; ++p) {
    auto cs = PartitionStore(store->get(), p);
    ASSERT_NE(cs, nullptr);
    auto ids = cs->ListCheckpoints();
    ASSERT_TRUE(ids.ok()) << ids.status();
    ASSERT_GE(ids->size(), 2u) << "partition " << p;
    std::vector<CheckpointManifest> manifests;  // newest first
    for (auto it = ids->rbegin(); it != ids->rend(); ++it) {
      auto m = cs->ReadCheckpoint(*it);
      ASSERT_TRUE(m.ok()) << m.status();
      manifests.push_back(*m);
    }
    auto holds = [](const CheckpointManifest& m, const std::string& key) {
      for (const ManifestFile& f : m.files) {
        if (f.object_key == key) return true;
      }
      return false;
    };
    // The SST of the newest checkpoint that the fewest older ones hold.
    std::string victim;
    size_t best = manifests.size();
    for (const ManifestFile& f : manifests[0].files) {
      if (!absl::EndsWith(f.name, ".sst")) continue;
      size_t shared = 0;
      while (shared + 1 < manifests.size() &&
             holds(manifests[shared + 1], f.object_key)) {
        ++shared;
      }
      if (shared < best) {
        best = shared;
        victim = f.object_key;
      }
    }
    ASSERT_FALSE(victim.empty()) << "partition " << p << " has no SST";
    FlipByte(absl::StrCat(prefix_dir, "/p", p, "/", victim));
    expected[p] = best + 1 < manifests.size()
                      ? std::optional<uint64_t>(
                            manifests[best + 1].metadata.checkpoint_id)
                      : std::nullopt;
    ASSERT_TRUE(expected[p].has_value())
        << "partition " << p << ": every checkpoint holds " << victim;
    if (best == 0) ++to_previous;
  }
  std::cout << to_previous << " of " << kPartitions
            << " partitions must restore the previous checkpoint, the others "
               "an older one\n";
  // It publishes two checkpoints, so that for step 3 the newest one's
  // predecessor is sound too.
  auto restored = run_and_kill(kPartitions, 0);
  EXPECT_EQ(restored, expected);
  if (HasFailure()) return;

  // 3. A byte of each newest manifest changed (a digit of its offset, so
  // that it still parses): the previous checkpoint is restored.
  expected.clear();
  for (int p = 0; p < kPartitions; ++p) {
    auto cs = PartitionStore(store->get(), p);
    ASSERT_NE(cs, nullptr);
    auto ids = cs->ListCheckpoints();
    ASSERT_TRUE(ids.ok()) << ids.status();
    ASSERT_GE(ids->size(), 2u) << "partition " << p;
    expected[p] = (*ids)[ids->size() - 2];
    RaiseManifestOffset(absl::StrFormat("%s/p%d/checkpoints/%020u.manifest",
                                        prefix_dir, p, ids->back()));
  }
  restored = run_and_kill(kPartitions, 0);
  EXPECT_EQ(restored, expected);
  if (HasFailure()) return;

  // 4. To the end: equal to golden.
  RunGolden();
  if (HasFatalFailure()) return;
  RunToEndAndExpectGolden(Args("corrupt", "corrupt", uri), {}, {"corrupt"});
}

TEST_F(PipelineFaultsTest, GroupChurnMovesEveryPartitionThroughTheStore) {
  StartBrokerAndRunGolden(/*brokers=*/1);
  if (HasFatalFailure()) return;
  const std::string uri = FileStore("churn");
  auto store = OpenObjectStore(uri, {});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<std::string> names = {"a", "b", "c"};
  std::vector<fft::Service> instances;
  for (const std::string& name : names) {
    auto s = fft::StartService(Args(name, "churn", uri));
    ASSERT_TRUE(s.ok()) << s.status();
    instances.push_back(std::move(*s));
  }
  auto every_partition_checkpointed = [&] {
    for (int p = 0; p < kPartitions; ++p) {
      auto cs = PartitionStore(store->get(), p);
      if (cs == nullptr) return false;
      auto ids = cs->ListCheckpoints();
      if (!ids.ok() || ids->empty()) return false;
    }
    return true;
  };

  const int rounds = 3 * Scale();
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const size_t stopped = round % 3;
    const size_t killed = (round + 1) % 3;
    // The one to kill has published a checkpoint, and every partition has
    // one: from now on every assignment must restore from the store.
    ASSERT_TRUE(WaitMetricAtLeast(instances[killed],
                                  "weir_checkpoints_completed_total", 1));
    ASSERT_TRUE(WaitUntil(instances[killed], "a checkpoint of every partition",
                          every_partition_checkpointed));
    for (fft::Service& s : instances) TakeAssignments(s);

    Terminate(instances[stopped]);
    if (HasFatalFailure()) return;
    instances[killed].process->Kill();
    for (size_t i : {stopped, killed}) {
      auto s = fft::StartService(Args(names[i], "churn", uri));
      ASSERT_TRUE(s.ok()) << s.status();
      instances[i] = std::move(*s);
    }

    // Until the group has settled (all 16 assigned over the three), every
    // assignment is a restore, and every partition is restored.
    std::set<int> moved;
    auto settled = [&] {
      double assigned = 0;
      for (fft::Service& s : instances) {
        for (const Assignment& a : TakeAssignments(s)) {
          EXPECT_TRUE(a.checkpoint.has_value())
              << "partition " << a.partition << " started empty";
          moved.insert(a.partition);
        }
        const double v = Metric(s, "weir_partitions_assigned");
        if (v <= 0) return false;
        assigned += v;
      }
      return assigned == kPartitions && moved.size() == kPartitions;
    };
    ASSERT_TRUE(WaitUntil(instances[stopped], "the group to settle", settled));
  }

  // Stop all three; one bounded instance in the group fires the windows
  // left open at the end of input.
  for (fft::Service& s : instances) {
    Terminate(s);
    if (HasFatalFailure()) return;
  }
  RunToEndAndExpectGolden(Args("final", "churn", uri), {},
                          {"a", "b", "c", "final"});
}

}  // namespace
}  // namespace weir
