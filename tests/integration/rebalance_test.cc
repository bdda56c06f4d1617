// Group churn (RELIABILITY.md, scenario 10): three fraud-features
// instances in one consumer group on one topic, sharing one checkpoint
// store; one is SIGKILLed mid-run, its partitions move to the survivors,
// which restore them from the store. The deduplicated output of all three
// equals an uninterrupted single instance's, key by key, as do the dead
// letters.

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/dlq.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 16;
constexpr int64_t kEvents = 200'000;

class RebalanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(fft::NeedBinaries());
    auto dir = testing::TempDir::Create("rebalance");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
    LocalBroker::Options bo;
    bo.binary_path = fft::BrokerBinary();
    bo.topics = {{kTopic, kPartitions}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
    testing::WPayOptions w;
    w.num_events = kEvents;
    w.num_users = 100'000;
    w.num_partitions = kPartitions;
    w.seed = 11;
    ASSERT_TRUE(fft::ProduceWPay(broker_->bootstrap(), kTopic, w).ok());
  }

  // Flags of instance `name` of `group`; all instances of a group share
  // the checkpoint store.
  std::vector<std::string> Args(const std::string& group,
                                const std::string& name) const {
    const std::string d = absl::StrCat(dir_->path(), "/", name);
    std::filesystem::create_directories(d);
    return {"--bootstrap=" + broker_->bootstrap(),
            absl::StrCat("--topic=", kTopic),
            "--group=" + group,
            "--state_dir=" + d + "/state",
            absl::StrCat("--checkpoint_uri=file://", dir_->path(), "/", group,
                         "-store"),
            "--sink=file:" + d + "/features.jsonl",
            "--dlq=file:" + d + "/dlq.jsonl",
            "--checkpoint_interval=1s",
            "--idle_exit=6",
            "--kafka_property=auto.offset.reset=error",
            "--kafka_property=session.timeout.ms=3000",
            "--kafka_property=heartbeat.interval.ms=300"};
  }

  // The final values and dead letters of the given instances together.
  void ReadOutputs(const std::vector<std::string>& names,
                   fft::FinalValues* final,
                   std::set<std::pair<int32_t, int64_t>>* dead) const {
    absl::Status s = fft::MergeOutputs(dir_->path(), names, final, dead);
    ASSERT_TRUE(s.ok()) << s;
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<LocalBroker> broker_;
};

TEST_F(RebalanceTest, KilledInstancesPartitionsMoveWithTheirState) {
  // Golden: one instance, uninterrupted.
  {
    std::vector<std::string> args = Args("golden", "golden");
    args.push_back(absl::StrCat("--max_events=", kEvents));
    auto service = fft::StartService(args);
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(120));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
  }
  fft::FinalValues golden;
  std::set<std::pair<int32_t, int64_t>> golden_dead;
  ReadOutputs({"golden"}, &golden, &golden_dead);
  ASSERT_FALSE(golden.empty());

  // Three instances in one group.
  std::vector<fft::Service> instances;
  for (const char* name : {"a", "b", "c"}) {
    auto s = fft::StartService(Args("churn", name));
    ASSERT_TRUE(s.ok()) << s.status();
    instances.push_back(std::move(*s));
  }
  // Kill "c" once it has done some of the work (it owns partitions then).
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  double read = 0;
  while (absl::Now() < deadline && read < 5'000) {
    auto v =
        fft::ScrapeMetric(instances[2].metrics_url, "weir_records_in_total");
    if (v.ok()) read = *v;
    absl::SleepFor(absl::Milliseconds(20));  // polling the endpoint
  }
  ASSERT_GE(read, 5'000) << "instance c never got partitions";
  instances[2].process->Kill();

  int64_t restored = 0;
  int64_t records = 0;
  for (int i = 0; i < 2; ++i) {
    auto status = fft::FinishService(instances[i], absl::Seconds(120));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "wait status " << *status << "\n"
        << instances[i].output;
    const std::string& out = instances[i].output;
    const size_t at = out.find(" partitions restored");
    if (at != std::string::npos) {
      size_t b = out.rfind(' ', at - 1);
      int64_t n = 0;
      if (absl::SimpleAtoi(out.substr(b + 1, at - b - 1), &n)) restored += n;
    }
    records += fft::SummaryNumber(out, "events");
  }
  EXPECT_GT(restored, 0) << "no partition moved through the store";
  EXPECT_GE(records + static_cast<int64_t>(read), kEvents);

  fft::FinalValues final;
  std::set<std::pair<int32_t, int64_t>> dead;
  ReadOutputs({"a", "b", "c"}, &final, &dead);
  EXPECT_EQ(final.size(), golden.size());
  EXPECT_EQ(fft::CompareFinal(golden, final), "");
  EXPECT_EQ(dead, golden_dead);

  // The broker dropped nothing, so no difference could hide there.
  auto low = fft::LogStartOffsets(broker_->bootstrap(), kTopic, kPartitions);
  ASSERT_TRUE(low.ok()) << low.status();
  for (int64_t l : *low) EXPECT_EQ(l, 0);
}

}  // namespace
}  // namespace weir
