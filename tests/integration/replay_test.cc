// Replay without downtime (docs/operations.md, "Replay without downtime"):
// the fraud-features service runs live against the local broker and a real
// redis-server; once it has caught up, a second instance replays the topic
// from a time T as its own consumer group, with its own checkpoints, dead
// letters and Redis key prefix (the staging store), while the live one
// keeps running. The replay must
//   - report that it caught up (`weir caught_up ... lag=0`);
//   - write only windows starting at or after T (earlier windows are
//     computed for the warm-up and withheld; the summary counts them);
//   - equal the live store on every window starting at or after T: the
//     shadow comparison of staging against live finds no divergent and no
//     missing value.

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/redis/redis_reader.h"
#include "weir/shadow.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/redis_server.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;
using ::testing::HasSubstr;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 4;
// 240 s of event time at one event per ms: minute windows and 5-minute
// sliding counts fire during the run.
constexpr int64_t kEvents = 240'000;
constexpr int64_t kStart = 1767225600000;  // 2026-01-01T00:00:00Z
// The replay's start: two minutes into the stream.
constexpr int64_t kReplayFrom = kStart + 120'000;

testing::WPayOptions WPay() {
  testing::WPayOptions w;
  w.num_events = kEvents;
  w.num_users = 5'000;
  w.num_partitions = kPartitions;
  w.seed = 23;
  w.start = kStart;
  w.events_per_millisecond = 1;
  return w;
}

// Reads the service's output until a line holding `needle`, which it
// returns; fails if the service exits first or `timeout` passes.
absl::StatusOr<std::string> WaitForLine(fft::Service& s,
                                        const std::string& needle,
                                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<std::string> line =
        s.process->ReadLine(deadline - absl::Now());
    if (!line.ok()) {
      return absl::Status(
          line.status().code(),
          absl::StrCat("waiting for '", needle, "': ", line.status().message(),
                       "; output so far:\n", s.output));
    }
    absl::StrAppend(&s.output, *line, "\n");
    if (absl::StrContains(*line, needle)) return *line;
  }
}

// Stops the service with SIGTERM (a final checkpoint, no firing; what it
// fired is in Redis once it exits) and checks that it exited 0.
void Stop(fft::Service& s) {
  ASSERT_TRUE(s.process->Signal(SIGTERM).ok());
  absl::StatusOr<int> status = fft::FinishService(s, absl::Seconds(120));
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << s.output;
}

std::vector<ShadowValue> StoreValues(int port, const std::string& prefix) {
  RedisSinkOptions where;
  where.port = port;
  where.key_prefix = prefix;
  absl::StatusOr<std::vector<RedisFeatureValue>> stored =
      ReadRedisFeatures(where);
  EXPECT_TRUE(stored.ok()) << stored.status();
  std::vector<ShadowValue> out;
  if (!stored.ok()) return out;
  for (RedisFeatureValue& v : *stored) {
    out.push_back({std::move(v.entity), std::move(v.feature), v.window_start_ms,
                   std::move(v.value)});
  }
  return out;
}

TEST(ReplayTest, ReplayGroupRebuildsStagingEqualToLiveFromItsTime) {
  WEIR_REQUIRE_PART(fft::NeedBinaries());
  auto redis = testing::RedisServer::Start();
  WEIR_REQUIRE_PART(redis.status());
  auto root = testing::TempDir::Create("replay");
  ASSERT_TRUE(root.ok()) << root.status();
  auto broker = fft::StartBrokerWithWPay(kTopic, kPartitions, WPay());
  ASSERT_TRUE(broker.ok()) << broker.status();
  const int port = (*redis)->port();

  auto args = [&](const std::string& name, const std::string& prefix) {
    const std::string dir = absl::StrCat(root->path(), "/", name);
    std::filesystem::create_directories(dir);
    return std::vector<std::string>{
        "--bootstrap=" + (*broker)->bootstrap(),
        absl::StrCat("--topic=", kTopic),
        "--group=fraud-features-" + name,
        "--state_dir=" + dir + "/state",
        "--checkpoint_uri=file://" + dir + "/store",
        absl::StrCat("--sink=redis://127.0.0.1:", port),
        "--redis_key_prefix=" + prefix,
        "--dlq=file:" + dir + "/dlq.jsonl",
        "--checkpoint_interval=2s"};
  };

  // The live service, unbounded, until it has read everything.
  auto live = fft::StartService(args("live", "live:"));
  ASSERT_TRUE(live.ok()) << live.status();
  auto caught_up = WaitForLine(*live, "weir caught_up", absl::Minutes(5));
  ASSERT_TRUE(caught_up.ok()) << caught_up.status();
  EXPECT_THAT(*caught_up,
              HasSubstr(absl::StrCat("partitions=", kPartitions, " lag=0")));

  // The replay beside it, from T.
  const std::string from =
      absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(kReplayFrom),
                       absl::UTCTimeZone());
  std::vector<std::string> replay_args = args("replay", "staging:");
  replay_args.push_back("--replay_from=" + from);
  auto replay = fft::StartService(replay_args);
  ASSERT_TRUE(replay.ok()) << replay.status();
  auto replay_caught_up =
      WaitForLine(*replay, "weir caught_up", absl::Minutes(5));
  ASSERT_TRUE(replay_caught_up.ok()) << replay_caught_up.status();
  EXPECT_THAT(*replay_caught_up,
              HasSubstr(absl::StrCat("partitions=", kPartitions, " lag=0")));
  EXPECT_THAT(*replay_caught_up, HasSubstr("replay_from=" + from));

  // The live service kept running all along.
  EXPECT_FALSE(live->process->Wait(absl::ZeroDuration()).ok())
      << "the live service ended during the replay:\n"
      << live->output;
  Stop(*replay);
  Stop(*live);
  EXPECT_THAT(replay->output, HasSubstr("  replay            from " + from));
  EXPECT_THAT(replay->output, ::testing::Not(HasSubstr(" 0 updates of "
                                                       "earlier windows")));

  const std::vector<ShadowValue> staging = StoreValues(port, "staging:");
  const std::vector<ShadowValue> live_values = StoreValues(port, "live:");
  ASSERT_FALSE(staging.empty());
  ASSERT_FALSE(live_values.empty());
  // Staging holds no window from before T.
  int64_t earlier = 0;
  for (const ShadowValue& v : staging)
    earlier += v.window_start_ms < kReplayFrom;
  EXPECT_EQ(earlier, 0);
  // The live store does: the replay's windows are a strict part of it.
  int64_t live_earlier = 0;
  for (const ShadowValue& v : live_values) {
    live_earlier += v.window_start_ms < kReplayFrom;
  }
  EXPECT_GT(live_earlier, 0);

  ShadowOptions options;
  options.from_ms = kReplayFrom;
  options.online = OnlineHolds::kNewestWindow;
  const ShadowReport report = CompareShadow(staging, live_values, options);
  EXPECT_FALSE(report.alert) << report.ToText();
  int64_t compared = 0;
  for (const ShadowFeatureReport& f : report.features) {
    EXPECT_EQ(f.divergent, 0) << report.ToText();
    EXPECT_EQ(f.missing_online, 0) << report.ToText();
    EXPECT_EQ(f.missing_batch, 0) << report.ToText();
    if (f.feature == "txn_count_1m") EXPECT_GT(f.compared, 1000);
    compared += f.compared;
  }
  EXPECT_GT(compared, 1000) << report.ToText();

  // The same comparison with the tool, as the runbook runs it: exit 0.
  const std::string shadow = WEIR_BINARY_DIR "/weir-shadow";
  WEIR_REQUIRE_PART(testing::NeedExecutable(shadow, "build weir-shadow"));
  auto tool = testing::Subprocess::Start(
      {shadow, absl::StrCat("--online=redis://127.0.0.1:", port),
       "--redis_prefix=staging:",
       absl::StrCat("--batch=redis://127.0.0.1:", port),
       "--batch_redis_prefix=live:", "--from=" + from},
      {.merge_stderr = true});
  ASSERT_TRUE(tool.ok()) << tool.status();
  auto text = (*tool)->ReadAll(absl::Minutes(2));
  ASSERT_TRUE(text.ok()) << text.status();
  auto exit = (*tool)->Wait(absl::Minutes(1));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *text;
  EXPECT_THAT(*text, HasSubstr("txn_count_1m"));
  EXPECT_THAT(*text, ::testing::Not(HasSubstr("ALERT"))) << *text;
}

// The number of events a finished service's summary says it read
// ("  events            400 read, ..."), or -1.
int64_t EventsRead(const std::string& output) {
  const size_t at = output.find("  events ");
  if (at == std::string::npos) return -1;
  size_t p = output.find_first_not_of(' ', at + 9);
  int64_t n = -1;
  const size_t end = output.find(' ', p);
  if (!absl::SimpleAtoi(output.substr(p, end - p), &n)) return -1;
  return n;
}

// Runs weir-reset with `args`; returns its output and sets `exit_code`.
std::string RunReset(const std::vector<std::string>& args, int& exit_code) {
  std::vector<std::string> argv = {WEIR_BINARY_DIR "/weir-reset"};
  argv.insert(argv.end(), args.begin(), args.end());
  exit_code = -1;
  auto child = testing::Subprocess::Start(argv, {.merge_stderr = true});
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return "";
  auto out = (*child)->ReadAll(absl::Minutes(2));
  auto status = (*child)->Wait(absl::Minutes(1));
  if (status.ok() && WIFEXITED(*status)) exit_code = WEXITSTATUS(*status);
  return out.ok() ? *out : "";
}

// weir-reset moves where a stopped service's partitions start: a starting
// point (empty state, the chosen offset) becomes each partition's newest
// checkpoint, and the next run starts there.
TEST(ReplayTest, ResetToolMovesWhereAStoppedServiceStarts) {
  WEIR_REQUIRE_PART(fft::NeedBinaries());
  WEIR_REQUIRE_PART(testing::NeedExecutable(WEIR_BINARY_DIR "/weir-reset",
                                            "build weir-reset"));
  constexpr int64_t kSmall = 20'000;
  testing::WPayOptions w = WPay();
  w.num_events = kSmall;
  auto root = testing::TempDir::Create("reset");
  ASSERT_TRUE(root.ok()) << root.status();
  auto broker = fft::StartBrokerWithWPay(kTopic, kPartitions, w);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string store = "file://" + root->path() + "/store";
  const std::vector<std::string> service = {
      "--bootstrap=" + (*broker)->bootstrap(), absl::StrCat("--topic=", kTopic),
      "--group=fraud-features-reset", "--state_dir=" + root->path() + "/state",
      "--checkpoint_uri=" + store,
      "--sink=file:" + root->path() + "/features.jsonl",
      "--dlq=file:" + root->path() + "/dlq.jsonl", "--idle_exit=2",
      "--metrics_port=-1",
      // librdkafka 2.0.2's mock keeps a group its last member left in
      // "rebalancing", so the next run's join waits a session timeout less
      // a second (a real broker empties the group): keep it short.
      "--kafka_property=session.timeout.ms=6000"};
  const std::vector<std::string> reset = {
      "--bootstrap=" + (*broker)->bootstrap(), absl::StrCat("--topic=", kTopic),
      "--pipeline=fraud_features", "--checkpoint_uri=" + store};
  auto run = [&]() -> int64_t {
    absl::StatusOr<std::string> out =
        fft::RunServiceToEnd(service, absl::Minutes(3));
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? EventsRead(*out) : -1;
  };
  auto with = [&](const std::string& flag) {
    std::vector<std::string> args = reset;
    args.push_back(flag);
    return args;
  };

  ASSERT_EQ(run(), kSmall);
  // Nothing new: a restart reads nothing.
  ASSERT_EQ(run(), 0);

  int exit_code = -1;
  std::string out = RunReset(with("--shift_by=-100"), exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat(kTopic, "/0: checkpoint ")));
  EXPECT_EQ(run(), 100 * kPartitions);

  // A dry run writes nothing: the next run reads nothing.
  out = RunReset(with("--to_earliest"), exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  out = RunReset({"--dry_run"}, exit_code);
  EXPECT_EQ(exit_code, 2) << out;  // no target given
  std::vector<std::string> dry = with("--shift_by=-10");
  dry.push_back("--dry_run");
  out = RunReset(dry, exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("(dry run)"));
  EXPECT_EQ(run(), kSmall);  // --to_earliest, not the dry run's shift

  // The local broker cannot look times up (it answers "no record that
  // late"): weir-reset notices, from the last record's stamp, and refuses.
  out = RunReset(with("--to_time=2000-01-01T00:00:00Z"), exit_code);
  EXPECT_EQ(exit_code, 1) << out;
  EXPECT_THAT(out, HasSubstr("cannot look times up"));
  // Past the last record, "none" is right: the end of every partition.
  out = RunReset(with("--to_time=2100-01-01T00:00:00Z"), exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  EXPECT_EQ(run(), 0);

  std::vector<std::string> bad = with("--partitions=99");
  bad.push_back("--to_earliest");
  out = RunReset(bad, exit_code);
  EXPECT_EQ(exit_code, 2) << out;
}

}  // namespace
}  // namespace weir
