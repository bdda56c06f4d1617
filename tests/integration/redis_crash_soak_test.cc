// The crash test of the checkpoint protocol (crash_soak_test.cc) with the
// Redis sink: the fraud-features service, run as a child process with
// --sink=redis:// against a redis-server that keeps an append-only file,
// is SIGKILLed at random moments (fixed seed) at least five times and
// restarted with the same state directory, group and checkpoint store, then
// run to the end. RedisSink's compare-and-set absorbs the updates each
// restart replays, so the final Redis content (HGETALL of every key) must
// equal an uninterrupted run's against a fresh redis-server, key by key
// and field by field (value, version and window).
//
// The golden Redis content is also checked against the golden file-sink
// run (whose windows crash_soak_test checks against the sqlite oracle):
// the newest update per (key, feature) of the FileSink log, in RedisSink's
// layout, is exactly what Redis holds.
//
// WEIR_SOAK_SCALE (default 1, the CI form) multiplies the events and the
// number of kills.

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "redis_features_testing.h"
#include "weir/sinks.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/redis_server.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;
namespace rft = redis_features_testing;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 16;
constexpr char kPrefix[] = "fraud:";

int Scale() {
  const char* s = std::getenv("WEIR_SOAK_SCALE");
  int v = 1;
  if (s != nullptr && absl::SimpleAtoi(s, &v) && v >= 1) return v;
  return 1;
}

int64_t NumEvents() { return 200'000 * static_cast<int64_t>(Scale()); }

testing::WPayOptions WPay() {
  testing::WPayOptions w;
  w.num_events = NumEvents();
  w.num_users = 100'000;
  w.num_partitions = kPartitions;
  w.seed = 7;
  return w;
}

class RedisCrashSoakTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fft::BinariesBuilt()) return;
    auto dir = testing::TempDir::Create("redis-crash-soak");
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = new testing::TempDir(std::move(*dir));
    LocalBroker::Options bo;
    bo.binary_path = fft::BrokerBinary();
    bo.topics = {{kTopic, kPartitions}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    absl::Status produced =
        fft::ProduceWPay(broker_->bootstrap(), kTopic, WPay());
    ASSERT_TRUE(produced.ok()) << produced;

    // The golden run: uninterrupted, fresh store, fresh redis-server.
    auto redis = testing::RedisServer::Start();
    if (!redis.ok()) {
      no_redis_ = new std::string(redis.status().ToString());
      return;
    }
    RunToEnd("golden", absl::StrCat("redis://127.0.0.1:", (*redis)->port()));
    if (::testing::Test::HasFailure()) return;
    auto dump = rft::DumpRedis((*redis)->port(), kPrefix);
    ASSERT_TRUE(dump.ok()) << dump.status();
    golden_ = new rft::RedisContent(std::move(*dump));
  }

  static void TearDownTestSuite() {
    delete golden_;
    delete no_redis_;
    delete broker_;
    delete root_;
    golden_ = nullptr;
    no_redis_ = nullptr;
    broker_ = nullptr;
    root_ = nullptr;
  }

  void SetUp() override {
    WEIR_REQUIRE_PART(fft::NeedBinaries());
    if (no_redis_ != nullptr) {
      WEIR_REQUIRE_PART(absl::FailedPreconditionError(*no_redis_));
    }
    ASSERT_NE(golden_, nullptr) << "the golden run failed";
  }

  // The service's flags for one run (or series of restarts) named `name`
  // over the whole topic, writing features to `sink`.
  static std::vector<std::string> Args(const std::string& name,
                                       const std::string& sink) {
    const std::string dir = absl::StrCat(root_->path(), "/", name);
    std::filesystem::create_directories(dir);
    return {"--bootstrap=" + broker_->bootstrap(),
            absl::StrCat("--topic=", kTopic),
            "--group=" + name,
            "--state_dir=" + dir + "/state",
            "--checkpoint_uri=file://" + dir + "/store",
            "--sink=" + sink,
            absl::StrCat("--redis_key_prefix=", kPrefix),
            "--dlq=file:" + dir + "/dlq.jsonl",
            "--checkpoint_interval=1s",
            absl::StrCat("--max_events=", NumEvents()),
            "--kafka_property=auto.offset.reset=error",
            "--kafka_property=session.timeout.ms=3000",
            "--kafka_property=heartbeat.interval.ms=300"};
  }

  // Runs until the process exits by itself; expects a clean exit.
  static void RunToEnd(const std::string& name, const std::string& sink,
                       std::string* output = nullptr) {
    auto service = fft::StartService(Args(name, sink));
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(180));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
    if (output != nullptr) *output = service->output;
  }

  // Starts a run and SIGKILLs it once it has read `records` records (by
  // its metrics) plus a random moment; with `after_checkpoint`, not before
  // it has also completed a checkpoint round. Returns false if it exited
  // first.
  static bool RunAndKill(const std::string& name, const std::string& sink,
                         double records, absl::Duration extra,
                         bool after_checkpoint) {
    auto service = fft::StartService(Args(name, sink));
    EXPECT_TRUE(service.ok()) << service.status();
    if (!service.ok()) return false;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    bool reached = false;
    while (!reached && absl::Now() < deadline) {
      auto wait = service->process->Wait(absl::ZeroDuration());
      if (wait.ok()) {
        EXPECT_TRUE(WIFEXITED(*wait) && WEXITSTATUS(*wait) == 0)
            << service->output;
        return false;  // finished before its kill moment
      }
      auto v = fft::ScrapeMetric(service->metrics_url, "weir_records_in_total");
      if (v.ok() && *v >= records) {
        reached = true;
        if (after_checkpoint) {
          auto rounds = fft::ScrapeMetric(service->metrics_url,
                                          "weir_checkpoints_completed_total");
          reached = rounds.ok() && *rounds >= 1;
        }
      }
      if (!reached) absl::SleepFor(absl::Milliseconds(20));  // polling
    }
    // A kill meant to follow a checkpoint round that never came would leave
    // the final run nothing to restore, and fail there with the wrong reason.
    if (!reached && after_checkpoint) {
      ADD_FAILURE() << "run " << name << " did not complete a checkpoint "
                    << "round within 60 s:\n"
                    << service->output;
    }
    absl::SleepFor(extra);  // the random moment itself
    service->process->Kill();
    return true;
  }

  static testing::TempDir* root_;
  static LocalBroker* broker_;
  static rft::RedisContent* golden_;
  static std::string* no_redis_;
};

testing::TempDir* RedisCrashSoakTest::root_ = nullptr;
LocalBroker* RedisCrashSoakTest::broker_ = nullptr;
rft::RedisContent* RedisCrashSoakTest::golden_ = nullptr;
std::string* RedisCrashSoakTest::no_redis_ = nullptr;

// What Redis holds after the golden run is the newest update per (key,
// feature) of the same run with a FileSink, in RedisSink's layout.
TEST_F(RedisCrashSoakTest, GoldenRedisEqualsNewestFileSinkUpdates) {
  const std::string path = root_->path() + "/golden-file.jsonl";
  RunToEnd("golden-file", "file:" + path);
  if (HasFailure()) return;
  auto updates = ReadFeatureFile(path);
  ASSERT_TRUE(updates.ok()) << updates.status();
  const rft::RedisContent want = rft::ExpectedRedisContent(*updates, kPrefix);
  EXPECT_EQ(want.size(), golden_->size());
  EXPECT_EQ(rft::CompareRedis(want, *golden_), "");
}

TEST_F(RedisCrashSoakTest, RandomKillsEqualGoldenKeyByKey) {
  testing::RedisServerOptions ro;
  ro.appendonly = true;
  auto redis = testing::RedisServer::Start(ro);
  ASSERT_TRUE(redis.ok()) << redis.status();
  const std::string sink = absl::StrCat("redis://127.0.0.1:", (*redis)->port());

  const int min_kills = 5 * Scale();
  std::mt19937_64 rng(20260102);
  std::uniform_real_distribution<double> records(2'000, 30'000);
  std::uniform_int_distribution<int> extra_ms(0, 400);
  int kills = 0;
  int attempts = 0;
  while (kills < min_kills && attempts < 4 * min_kills) {
    ++attempts;
    // The last kill comes after a completed round, so that the final run
    // has a checkpoint of every partition to restore however fast the
    // earlier runs were killed.
    if (RunAndKill("soak", sink, records(rng),
                   absl::Milliseconds(extra_ms(rng)),
                   /*after_checkpoint=*/kills + 1 == min_kills)) {
      ++kills;
    }
    if (HasFailure()) return;
  }
  EXPECT_GE(kills, min_kills);
  std::string output;
  RunToEnd("soak", sink, &output);
  if (HasFailure()) return;
  // The last run resumed every partition from a checkpoint.
  EXPECT_THAT(output, ::testing::HasSubstr(
                          absl::StrCat(kPartitions, " partitions restored")))
      << output;

  auto got = rft::DumpRedis((*redis)->port(), kPrefix);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), golden_->size());
  EXPECT_EQ(rft::CompareRedis(*golden_, *got), "");
}

}  // namespace
}  // namespace weir
