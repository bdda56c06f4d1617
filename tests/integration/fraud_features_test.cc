// Tests of the fraud-features service (examples/fraud_features) as a user
// runs it: the embedded default end to end, a graceful stop by SIGTERM with
// its final checkpoint, and refusal of bad flags.

#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

using fraud_features_testing::BinariesBuilt;
using fraud_features_testing::FinishService;
using fraud_features_testing::ReadFinalValues;
using fraud_features_testing::ScrapeMetric;
using fraud_features_testing::ServiceBinary;
using fraud_features_testing::StartService;
using fraud_features_testing::SummaryNumber;
using ::testing::HasSubstr;

class FraudFeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(fraud_features_testing::NeedBinaries());
    auto dir = testing::TempDir::Create("fraud-features-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
  }
  std::unique_ptr<testing::TempDir> dir_;
};

// The README's first command: no broker given, so the service starts one,
// produces the W-PAY stream, consumes all of it and prints the summary.
TEST_F(FraudFeaturesTest, EmbeddedDefaultRunsToCompletionWithSummary) {
  const std::string sink = dir_->path() + "/features.jsonl";
  auto service = StartService(
      {"--state_dir=" + dir_->path() + "/state", "--sink=file:" + sink});
  ASSERT_TRUE(service.ok()) << service.status();
  auto status = FinishService(*service, absl::Seconds(120));
  ASSERT_TRUE(status.ok()) << status.status();
  const std::string& out = service->output;
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << out;

  EXPECT_THAT(out, HasSubstr("fraud-features summary (read 200000 records"));
  EXPECT_EQ(SummaryNumber(out, "events"), 200000) << out;
  EXPECT_GT(SummaryNumber(out, "features written"), 0) << out;
  EXPECT_GT(SummaryNumber(out, "late records"), 0) << out;
  EXPECT_GT(SummaryNumber(out, "dead letters"), 0) << out;
  EXPECT_GE(SummaryNumber(out, "checkpoints"), 1) << out;
  // W-PAY's hottest user, read back from the sink.
  EXPECT_THAT(out, HasSubstr("u1        txn_count_1m["));

  // The sink holds every feature; the 1-hour and daily windows fired at the
  // end of the bounded run.
  auto final = ReadFinalValues(sink);
  ASSERT_TRUE(final.ok()) << final.status();
  std::set<std::string> features;
  for (const auto& [k, u] : *final) features.insert(std::get<1>(k));
  EXPECT_EQ(features,
            (std::set<std::string>{"txn_count_1m", "amount_sum_1h",
                                   "amount_avg_1d", "txn_count_5m_sliding",
                                   "distinct_merchants_1h", "amount_p99_1h"}));
}

// SIGTERM stops a run that has no bound: the service takes a final
// checkpoint, prints its summary and exits 0; its metrics were served.
TEST_F(FraudFeaturesTest, SigtermStopsGracefullyWithFinalCheckpoint) {
  LocalBroker::Options bo;
  bo.binary_path = fraud_features_testing::BrokerBinary();
  bo.topics = {{"payments", 4}};
  auto broker = LocalBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status();
  testing::WPayOptions w;
  w.num_events = 20'000;
  w.num_users = 2'000;
  w.num_partitions = 4;
  ASSERT_TRUE(
      fraud_features_testing::ProduceWPay((*broker)->bootstrap(), "payments", w)
          .ok());

  auto service =
      StartService({"--bootstrap=" + (*broker)->bootstrap(),
                    "--state_dir=" + dir_->path() + "/state",
                    "--sink=file:" + dir_->path() + "/features.jsonl",
                    "--dlq=file:" + dir_->path() + "/dlq.jsonl",
                    "--checkpoint_interval=1h"});
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_FALSE(service->metrics_url.empty()) << service->output;
  // Wait until everything was read, as the metrics say.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  double records = 0;
  while (absl::Now() < deadline) {
    auto v = ScrapeMetric(service->metrics_url, "weir_records_in_total");
    if (v.ok()) records = *v;
    if (records >= 20'000) break;
    absl::SleepFor(absl::Milliseconds(100));  // polling the endpoint
  }
  ASSERT_EQ(records, 20'000);
  auto lag = ScrapeMetric(service->metrics_url, "weir_consumer_lag");
  EXPECT_TRUE(lag.ok()) << lag.status();
  // Having read everything, the unbounded service makes no progress: the
  // tests' wait for a service's end gives up on it after the stall time
  // instead of waiting for ever.
  auto stalled = FinishService(*service, absl::Seconds(3));
  EXPECT_TRUE(absl::IsDeadlineExceeded(stalled.status())) << stalled.status();

  ASSERT_TRUE(service->process->Signal(SIGTERM).ok());
  auto status = FinishService(*service, absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << status.status();
  const std::string& out = service->output;
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << out;
  EXPECT_THAT(out, HasSubstr("stopped by"));
  // The interval is an hour: the one checkpoint is the final one.
  EXPECT_EQ(SummaryNumber(out, "checkpoints"), 1) << out;
  EXPECT_GT(SummaryNumber(out, "dead letters"), 0) << out;
}

TEST_F(FraudFeaturesTest, RefusesBadFlags) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--sink=ftp://x"},
           {"--dlq=nowhere"},
           {"--kafka_property=novalue"},
           {"--bootstrap=127.0.0.1:1", "--max_events=-1"},
           {"--bootstrap=127.0.0.1:1", "--daily_offset=-24h"}}) {
    std::vector<std::string> argv = {ServiceBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::SubprocessOptions o;
    o.merge_stderr = true;
    auto p = testing::Subprocess::Start(argv, o);
    ASSERT_TRUE(p.ok());
    auto out = (*p)->ReadAll(absl::Seconds(10));
    auto status = (*p)->Wait(absl::Seconds(10));
    ASSERT_TRUE(status.ok());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
        << args[0] << ": " << *out;
  }
}

}  // namespace
}  // namespace weir
