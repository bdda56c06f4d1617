// Crash tests of the checkpoint protocol (RELIABILITY.md, scenarios 1 and
// 2), on the fraud-features service run as a child process against the
// local broker (its own process, so the log survives every kill):
//
//   - Golden: an uninterrupted run over N W-PAY events; its windowed counts
//     and exact sums equal the sqlite3 oracle's, key by key.
//   - Crash soak: the same input, SIGKILLed at random moments (fixed seed)
//     at least five times and restarted with the same state directory,
//     group and checkpoint store, then run to the end; the deduplicated
//     sink content equals the golden run's, as do the dead letters. Once
//     with a file:// store and once with an s3:// store (s3rver).
//   - Kill points: a run killed inside the checkpoint protocol
//     (WEIR_CHECKPOINT_KILL_AT, checkpoint.h) after an earlier checkpoint
//     was published; the restart restores a published checkpoint, and the
//     final output equals golden.
// Every test checks that the broker's log start offsets are at or below
// the checkpointed offsets, so that data the broker dropped can never pass
// for a weir bug.
//
// WEIR_SOAK_SCALE (default 1, the CI form) multiplies the events and the
// number of kills.

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/checkpoint.h"
#include "weir/dlq.h"
#include "weir/kafka/local_broker.h"
#include "weir/object_store.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/s3rver.h"
#include "weir/testing/sqlite_oracle.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 16;

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

// Where one instance (or one series of restarts) keeps its things.
struct RunDirs {
  std::string state;
  std::string store_uri;
  std::string sink;
  std::string dlq;
};

RunDirs MakeDirs(const std::string& root, const std::string& name) {
  RunDirs d;
  d.state = absl::StrCat(root, "/", name, "/state");
  d.store_uri = absl::StrCat("file://", root, "/", name, "/store");
  d.sink = absl::StrCat(root, "/", name, "/features.jsonl");
  d.dlq = absl::StrCat(root, "/", name, "/dlq.jsonl");
  std::filesystem::create_directories(absl::StrCat(root, "/", name));
  return d;
}

// Dead letters, deduplicated by source position (replays write them again).
absl::StatusOr<std::set<std::pair<int32_t, int64_t>>> DeadLetters(
    const std::string& path) {
  absl::StatusOr<std::vector<DeadLetterRecord>> all = ReadDeadLetterFile(path);
  if (absl::IsNotFound(all.status())) {
    return std::set<std::pair<int32_t, int64_t>>();
  }
  if (!all.ok()) return all.status();
  std::set<std::pair<int32_t, int64_t>> out;
  for (const DeadLetterRecord& r : *all) out.emplace(r.partition, r.offset);
  return out;
}

class CrashSoakTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fft::BinariesBuilt()) return;
    auto dir = testing::TempDir::Create("crash-soak");
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

    // The golden run: uninterrupted, fresh store.
    golden_dirs_ = new RunDirs(MakeDirs(root_->path(), "golden"));
    auto service = fft::StartService(Args(*golden_dirs_, "golden"));
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(180));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
    auto golden = fft::ReadFinalValues(golden_dirs_->sink);
    ASSERT_TRUE(golden.ok()) << golden.status();
    golden_ = new fft::FinalValues(std::move(*golden));
    auto dead = DeadLetters(golden_dirs_->dlq);
    ASSERT_TRUE(dead.ok()) << dead.status();
    golden_dead_ = new std::set<std::pair<int32_t, int64_t>>(*dead);
  }

  static void TearDownTestSuite() {
    delete golden_dead_;
    delete golden_;
    delete golden_dirs_;
    delete broker_;
    delete root_;
    golden_dead_ = nullptr;
    golden_ = nullptr;
    golden_dirs_ = nullptr;
    broker_ = nullptr;
    root_ = nullptr;
  }

  void SetUp() override {
    WEIR_REQUIRE_PART(fft::NeedBinaries());
    ASSERT_NE(golden_, nullptr) << "the golden run failed";
  }

  // The service's flags for one run over the whole topic.
  static std::vector<std::string> Args(const RunDirs& d,
                                       const std::string& group) {
    return {"--bootstrap=" + broker_->bootstrap(),
            absl::StrCat("--topic=", kTopic),
            "--group=" + group,
            "--state_dir=" + d.state,
            "--checkpoint_uri=" + d.store_uri,
            "--sink=file:" + d.sink,
            "--dlq=file:" + d.dlq,
            "--checkpoint_interval=1s",
            absl::StrCat("--max_events=", NumEvents()),
            "--kafka_property=auto.offset.reset=error",
            "--kafka_property=session.timeout.ms=3000",
            "--kafka_property=heartbeat.interval.ms=300",
            "--s3_endpoint=" + s3_endpoint_};
  }

  // Runs until the process exits by itself; expects a clean exit.
  static void RunToEnd(const RunDirs& d, const std::string& group,
                       const std::vector<std::string>& env,
                       std::string* output = nullptr) {
    auto service = fft::StartService(Args(d, group), env);
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(180));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
    if (output != nullptr) *output = service->output;
  }

  // Starts a run and SIGKILLs it once it has read `records` records (by
  // its metrics) plus a random moment; returns false if it exited first.
  static bool RunAndKill(const RunDirs& d, const std::string& group,
                         const std::vector<std::string>& env, double records,
                         absl::Duration extra) {
    auto service = fft::StartService(Args(d, group), env);
    EXPECT_TRUE(service.ok()) << service.status();
    if (!service.ok()) return false;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      auto wait = service->process->Wait(absl::ZeroDuration());
      if (wait.ok()) {
        EXPECT_TRUE(WIFEXITED(*wait) && WEXITSTATUS(*wait) == 0)
            << service->output;
        return false;  // finished before its kill moment
      }
      auto v = fft::ScrapeMetric(service->metrics_url, "weir_records_in_total");
      if (v.ok() && *v >= records) break;
      absl::SleepFor(absl::Milliseconds(20));  // polling the endpoint
    }
    absl::SleepFor(extra);  // the random moment itself
    service->process->Kill();
    return true;
  }

  // Checks the run's output and store against golden (see the file
  // comment).
  static void ExpectGolden(const RunDirs& d, const std::string& uri,
                           const ObjectStoreOptions& store_options) {
    auto final = fft::ReadFinalValues(d.sink);
    ASSERT_TRUE(final.ok()) << final.status();
    EXPECT_EQ(final->size(), golden_->size());
    EXPECT_EQ(fft::CompareFinal(*golden_, *final), "");
    auto dead = DeadLetters(d.dlq);
    ASSERT_TRUE(dead.ok()) << dead.status();
    EXPECT_EQ(*dead, *golden_dead_) << "dead letters differ";
    ExpectLogStartAtOrBelowCheckpoints(uri, store_options);
  }

  // RELIABILITY.md: data the broker dropped must never pass for a weir
  // bug, so the log must still hold every record from each retained
  // checkpoint's offset on; and the newest checkpoints cover the whole log.
  static void ExpectLogStartAtOrBelowCheckpoints(
      const std::string& uri, const ObjectStoreOptions& store_options) {
    auto low = fft::LogStartOffsets(broker_->bootstrap(), kTopic, kPartitions);
    ASSERT_TRUE(low.ok()) << low.status();
    auto store = OpenObjectStore(uri, store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    int64_t newest_total = 0;
    for (int p = 0; p < kPartitions; ++p) {
      CheckpointStoreOptions so;
      so.prefix = CheckpointPrefix(absl::StrCat("fraud_features/", kTopic), p);
      auto cs = CheckpointStore::Create(store->get(), so);
      ASSERT_TRUE(cs.ok()) << cs.status();
      auto ids = (*cs)->ListCheckpoints();
      ASSERT_TRUE(ids.ok()) << ids.status();
      ASSERT_FALSE(ids->empty()) << "partition " << p << " has no checkpoint";
      for (uint64_t id : *ids) {
        auto m = (*cs)->ReadCheckpoint(id);
        ASSERT_TRUE(m.ok()) << m.status();
        ASSERT_EQ(m->metadata.source_offsets.size(), 1u);
        EXPECT_LE((*low)[p], m->metadata.source_offsets[0].offset)
            << "partition " << p << ": the broker dropped records a "
            << "checkpoint still needs";
        if (id == ids->back()) {
          newest_total += m->metadata.source_offsets[0].offset;
        }
      }
    }
    EXPECT_EQ(newest_total, NumEvents());
  }

  // SIGKILLs at random moments, at least `min_kills` times, then runs to
  // the end; expects golden.
  static void Soak(const RunDirs& d, const std::string& group,
                   const std::vector<std::string>& env, int min_kills,
                   const ObjectStoreOptions& store_options) {
    std::mt19937_64 rng(20260101);
    std::uniform_real_distribution<double> records(2'000, 30'000);
    std::uniform_int_distribution<int> extra_ms(0, 400);
    int kills = 0;
    int attempts = 0;
    while (kills < min_kills && attempts < 4 * min_kills) {
      ++attempts;
      if (RunAndKill(d, group, env, records(rng),
                     absl::Milliseconds(extra_ms(rng)))) {
        ++kills;
      }
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_GE(kills, min_kills);
    std::string output;
    RunToEnd(d, group, env, &output);
    if (::testing::Test::HasFailure()) return;
    // The last run resumed every partition from a checkpoint.
    EXPECT_THAT(output, ::testing::HasSubstr(
                            absl::StrCat(kPartitions, " partitions restored")))
        << output;
    ExpectGolden(d, d.store_uri, store_options);
  }

  static testing::TempDir* root_;
  static LocalBroker* broker_;
  static RunDirs* golden_dirs_;
  static fft::FinalValues* golden_;
  static std::set<std::pair<int32_t, int64_t>>* golden_dead_;
  static std::string s3_endpoint_;  // for s3:// stores; empty otherwise

  // A first run publishes a checkpoint and is killed; the second dies
  // inside the protocol at `step`; the third restores a published
  // checkpoint and runs to the end.
  static void KillPoint(const std::string& step);
};

testing::TempDir* CrashSoakTest::root_ = nullptr;
LocalBroker* CrashSoakTest::broker_ = nullptr;
RunDirs* CrashSoakTest::golden_dirs_ = nullptr;
fft::FinalValues* CrashSoakTest::golden_ = nullptr;
std::set<std::pair<int32_t, int64_t>>* CrashSoakTest::golden_dead_ = nullptr;
std::string CrashSoakTest::s3_endpoint_;

// The golden run itself, against the independent oracle: windowed counts
// (1 minute) and exact sums (1 hour), key by key, and the dead letters.
TEST_F(CrashSoakTest, GoldenRunEqualsSqliteOracle) {
  auto events = testing::WPayGenerator::GenerateAll(WPay());
  ASSERT_TRUE(events.ok()) << events.status();
  std::set<std::pair<int32_t, int64_t>> must_dlq;
  for (const testing::WPayEvent& e : *events) {
    if (testing::MustReachDlq(e.malformed)) {
      must_dlq.emplace(e.partition, e.offset);
    }
  }
  EXPECT_EQ(*golden_dead_, must_dlq);
  const std::vector<testing::OracleEvent> oracle_events =
      testing::OracleEventsFrom(*events);

  struct Check {
    const char* feature;
    absl::Duration window;
  };
  for (const Check& check : {Check{"txn_count_1m", absl::Minutes(1)},
                             Check{"amount_sum_1h", absl::Hours(1)}}) {
    testing::SqliteOracleOptions o;
    o.window_size = check.window;
    o.max_out_of_orderness = absl::Seconds(5);
    o.allowed_lateness = absl::Minutes(1);
    auto oracle = testing::RunSqliteOracle(oracle_events, o);
    WEIR_REQUIRE_PART(oracle.status());
    size_t weir_windows = 0;
    for (const auto& [k, u] : *golden_) {
      if (std::get<1>(k) == check.feature) ++weir_windows;
    }
    EXPECT_EQ(weir_windows, oracle->groups.size()) << check.feature;
    int mismatches = 0;
    for (const auto& [key, g] : oracle->groups) {
      auto it = golden_->find({key.first, check.feature, key.second});
      const Value want = std::string(check.feature) == "txn_count_1m"
                             ? Value::Int64(g.count)
                             : Value::Dec(g.sum_cents, 2);
      if (it == golden_->end() || !(it->second.value == want)) {
        if (++mismatches <= 5) {
          ADD_FAILURE() << check.feature << " " << key.first << " "
                        << key.second << ": oracle " << want.ToString()
                        << ", weir "
                        << (it == golden_->end() ? "none"
                                                 : it->second.value.ToString());
        }
      }
    }
    EXPECT_EQ(mismatches, 0) << check.feature;
  }
  ExpectLogStartAtOrBelowCheckpoints(golden_dirs_->store_uri, {});
}

TEST_F(CrashSoakTest, RandomKillsWithFileStoreEqualGolden) {
  const RunDirs d = MakeDirs(root_->path(), "soak-file");
  Soak(d, "soak-file", {}, 5 * Scale(), {});
}

TEST_F(CrashSoakTest, RandomKillsWithS3StoreEqualGolden) {
  testing::S3rverOptions so;
  so.node_modules_dir = WEIR_SOURCE_DIR "/node_modules";
  auto s3 = testing::S3rver::Start(so);
  WEIR_REQUIRE_PART(s3.status());
  RunDirs d = MakeDirs(root_->path(), "soak-s3");
  d.store_uri = "s3://weir-test/soak";
  const std::vector<std::string> env = {
      "AWS_ACCESS_KEY_ID=" + (*s3)->access_key_id(),
      "AWS_SECRET_ACCESS_KEY=" + (*s3)->secret_access_key()};
  ObjectStoreOptions store_options;
  store_options.s3.endpoint = (*s3)->endpoint();
  store_options.s3.access_key_id = (*s3)->access_key_id();
  store_options.s3.secret_access_key = (*s3)->secret_access_key();
  s3_endpoint_ = (*s3)->endpoint();
  Soak(d, "soak-s3", env, 5 * Scale(), store_options);
  s3_endpoint_.clear();
}

void CrashSoakTest::KillPoint(const std::string& step) {
  const std::string name = "kill-" + step;
  const RunDirs d = MakeDirs(root_->path(), name);

  {
    auto service = fft::StartService(Args(d, name));
    ASSERT_TRUE(service.ok()) << service.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    double done = 0;
    while (absl::Now() < deadline && done < 1) {
      auto v = fft::ScrapeMetric(service->metrics_url,
                                 "weir_checkpoints_completed_total");
      if (v.ok()) done = *v;
      absl::SleepFor(absl::Milliseconds(20));  // polling the endpoint
    }
    ASSERT_GE(done, 1) << "no checkpoint was published";
    service->process->Kill();
  }
  {
    auto service =
        fft::StartService(Args(d, name), {"WEIR_CHECKPOINT_KILL_AT=" + step});
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(90));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << "did not die at " << step << ":\n"
        << service->output;
  }
  std::string output;
  RunToEnd(d, name, {}, &output);
  EXPECT_GT(fft::SummaryNumber(output, "checkpoints"), 0) << output;
  EXPECT_THAT(output, ::testing::HasSubstr(
                          absl::StrCat(kPartitions, " partitions restored")))
      << output;
  ExpectGolden(d, d.store_uri, {});
}

TEST_F(CrashSoakTest, KillBeforeUploadRestoresPublishedCheckpoint) {
  KillPoint("before_upload");
}

TEST_F(CrashSoakTest, KillMidUploadRestoresPublishedCheckpoint) {
  KillPoint("mid_upload");
}

TEST_F(CrashSoakTest, KillAfterUploadRestoresPublishedCheckpoint) {
  KillPoint("after_upload");
}

// Between the manifest and the offset commit.
TEST_F(CrashSoakTest, KillAfterManifestRestoresPublishedCheckpoint) {
  KillPoint("after_manifest");
}

}  // namespace
}  // namespace weir
