// Tests of the fraud-features service's operational surface, run as a child
// process against the local broker:
//   - its Prometheus endpoint, scraped all through a run, moves as it should:
//     the consumer lag falls to 0 once it has caught up, the dead-letter
//     count equals the generator's malformed records, the late count equals
//     the sqlite oracle's, checkpoints succeed, the per-partition, hot-key
//     and sink series are there;
//   - a slow sink (--sink_delay_ms=50, a testing/chaos option) drives the
//     backpressure ratio above 0.5 while the peak RSS stays bounded and does
//     not grow with the number of events.

#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/sanitizers.h"
#include "weir/testing/sqlite_oracle.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;

constexpr int kPartitions = 4;
constexpr char kTopic[] = "payments";

// One scrape of /metrics: metric name -> the sum over its series, and the
// raw lines.
struct Scrape {
  std::map<std::string, double> sum;
  std::vector<std::string> lines;

  double Get(const std::string& name) const {
    auto it = sum.find(name);
    return it == sum.end() ? -1 : it->second;
  }
  bool Has(const std::string& name) const { return sum.count(name) > 0; }
};

absl::StatusOr<Scrape> ScrapeAll(const std::string& url) {
  const std::string base = url.substr(0, url.rfind('/'));
  httplib::Client client(base);
  client.set_connection_timeout(1);
  client.set_read_timeout(2);
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) {
    return absl::UnavailableError("metrics endpoint did not answer");
  }
  Scrape s;
  for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    const size_t space = line.rfind(' ');
    if (name_end == absl::string_view::npos) continue;
    double v = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &v)) continue;
    s.sum[std::string(line.substr(0, name_end))] += v;
    s.lines.emplace_back(line);
  }
  return s;
}

// What the service's counters must come to for a W-PAY stream.
struct Expected {
  int64_t events = 0;
  int64_t dead_letters = 0;  // events that are not accepted()
  int64_t late = 0;          // late by weir's rule, from the sqlite oracle
};

class FraudFeaturesMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(fft::NeedBinaries());
    auto dir = testing::TempDir::Create("ff-metrics-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
    LocalBroker::Options bo;
    bo.binary_path = fft::BrokerBinary();
    bo.topics = {
        {kTopic, kPartitions}, {"small", kPartitions}, {"large", kPartitions}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }

  static testing::WPayOptions WPay(int64_t events, int64_t users = 20000) {
    testing::WPayOptions w;
    w.num_events = events;
    w.num_users = users;
    w.num_partitions = kPartitions;
    w.seed = 7;
    return w;
  }

  // The arguments of one run reading `topic` until idle, in `name`'s
  // directory.
  std::vector<std::string> Args(const std::string& name,
                                const std::string& topic) {
    const std::string d = absl::StrCat(dir_->path(), "/", name);
    return {"--bootstrap=" + broker_->bootstrap(),
            "--topic=" + topic,
            "--group=" + name,
            "--state_dir=" + d + "/state",
            "--sink=file:" + d + "/features.jsonl",
            "--dlq=file:" + d + "/dlq.jsonl",
            "--checkpoint_interval=1s",
            "--idle_exit=2",
            "--max_seconds=120",
            "--metrics_port=0"};
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<LocalBroker> broker_;
};

// Scrapes the endpoint every 100 ms during a whole run and checks that the
// numbers move as an operator would expect them to.
TEST_F(FraudFeaturesMetricsTest, MetricsMoveAsExpectedDuringARun) {
  const testing::WPayOptions wpay = WPay(60000);
  ASSERT_TRUE(fft::ProduceWPay(broker_->bootstrap(), kTopic, wpay).ok());

  // The expected counts, independently of weir. The generator's `late` flag
  // only says it moved an event back by minutes: whether weir counts the
  // event as late depends on the watermark at that moment (the largest
  // event time of the partition so far minus the out-of-orderness) and the
  // window's end plus the allowed lateness. The sqlite oracle applies
  // exactly that rule with the service's settings (5 s out-of-orderness,
  // 1 min lateness); a record is late for the service iff it is late for
  // its 1-minute window, the strictest of F-FRAUD (the sliding feature's
  // tiles are 1 minute too, the others are longer).
  auto events = testing::WPayGenerator::GenerateAll(wpay);
  ASSERT_TRUE(events.ok()) << events.status();
  Expected want;
  want.events = wpay.num_events;
  for (const testing::WPayEvent& e : *events) {
    if (!e.accepted()) ++want.dead_letters;
  }
  testing::SqliteOracleOptions oo;
  oo.window_size = absl::Minutes(1);
  oo.max_out_of_orderness = absl::Seconds(5);
  oo.allowed_lateness = absl::Minutes(1);
  auto oracle =
      testing::RunSqliteOracle(testing::OracleEventsFrom(*events), oo);
  WEIR_REQUIRE_PART(oracle.status());
  want.late = static_cast<int64_t>(oracle->late.size());
  ASSERT_GT(want.dead_letters, 0);
  ASSERT_GT(want.late, 0);

  auto service = fft::StartService(Args("run", kTopic));
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_FALSE(service->metrics_url.empty()) << service->output;

  std::vector<Scrape> scrapes;
  double max_lag = 0;
  bool caught_up_with_zero_lag = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    absl::StatusOr<Scrape> s = ScrapeAll(service->metrics_url);
    if (!s.ok()) {
      // The run ended and the server stopped; a scrape that fails while the
      // service still runs (a slow answer on a loaded machine) is retried.
      if (!scrapes.empty() &&
          service->process->Wait(absl::ZeroDuration()).ok()) {
        break;
      }
    } else {
      const double lag = s->Get("weir_consumer_lag");
      max_lag = std::max(max_lag, lag);
      if (s->Has("weir_consumer_lag") && lag == 0 &&
          s->Get("weir_records_in_total") == want.events) {
        caught_up_with_zero_lag = true;
      }
      scrapes.push_back(std::move(*s));
    }
    // Paces the scrapes while collecting the output.
    auto line = service->process->ReadLine(absl::Milliseconds(100));
    if (line.ok()) absl::StrAppend(&service->output, *line, "\n");
  }
  auto status = fft::FinishService(*service, absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << service->output;
  ASSERT_GE(scrapes.size(), 3u) << service->output;

  // Counters never go back; the last scrape holds the final figures.
  for (size_t i = 1; i < scrapes.size(); ++i) {
    for (const char* name :
         {"weir_records_in_total", "weir_dead_letters_total",
          "weir_late_records_total", "weir_checkpoints_completed_total"}) {
      EXPECT_GE(scrapes[i].Get(name), scrapes[i - 1].Get(name)) << name;
    }
  }
  const Scrape& last = scrapes.back();
  EXPECT_GT(max_lag, 0) << "the lag was never seen above 0";
  EXPECT_TRUE(caught_up_with_zero_lag)
      << "never saw all records read with a lag of 0";
  EXPECT_EQ(last.Get("weir_records_in_total"), want.events);
  EXPECT_EQ(last.Get("weir_dead_letters_total"), want.dead_letters);
  EXPECT_EQ(last.Get("weir_late_records_total"), want.late);
  EXPECT_GE(last.Get("weir_checkpoints_completed_total"), 1);
  EXPECT_EQ(last.Get("weir_checkpoints_failed_total"), 0);
  EXPECT_GT(last.Get("weir_last_checkpoint_duration_seconds"), 0);
  EXPECT_LT(last.Get("weir_last_checkpoint_age_seconds"), 10);
  EXPECT_GT(last.Get("weir_updates_written_total"), 0);
  // The summary agrees with the endpoint.
  EXPECT_EQ(fft::SummaryNumber(service->output, "dead letters"),
            want.dead_letters);
  EXPECT_EQ(fft::SummaryNumber(service->output, "late records"), want.late);

  // Per partition: every partition processed records, has a watermark and
  // state; the hot keys are W-PAY's Zipf head (u1 the hottest); the sink
  // was timed.
  auto count_series = [&](const std::string& prefix) {
    return std::count_if(
        last.lines.begin(), last.lines.end(),
        [&](const std::string& l) { return l.rfind(prefix + "{", 0) == 0; });
  };
  EXPECT_EQ(count_series("weir_partition_records"), kPartitions);
  EXPECT_EQ(count_series("weir_partition_watermark_seconds"), kPartitions);
  EXPECT_EQ(count_series("weir_state_keys"), kPartitions);
  // Every record read counts, dead letters included.
  EXPECT_EQ(last.Get("weir_partition_records"), want.events);
  EXPECT_GT(last.Get("weir_state_bytes"), 0);
  EXPECT_GE(last.Get("weir_partition_skew_ratio"), 1);
  EXPECT_THAT(last.lines, ::testing::Contains(::testing::HasSubstr(
                              "weir_hot_key_records{pipeline=\"fraud_features\""
                              ",rank=\"1\",key=\"u1\"")));
  EXPECT_GT(last.Get("weir_sink_write_seconds_count"), 0);
  EXPECT_EQ(last.Get("weir_sink_errors_total"), 0);
}

// What one run to the end showed: its peak RSS (the summary's VmHWM of
// /proc/self/status, read by the service just before it exits), the
// largest backpressure ratio scraped during the run, and its output.
struct RunFigures {
  int64_t peak_rss_kib = -1;
  double max_backpressure_ratio = -1;
  std::string ratios;  // every scraped ratio, for failure messages
  std::string output;
};

RunFigures RunToEnd(const std::vector<std::string>& args) {
  RunFigures f;
  auto service = fft::StartService(args);
  EXPECT_TRUE(service.ok()) << service.status();
  if (!service.ok()) return f;
  const absl::Time deadline = absl::Now() + absl::Seconds(180);
  bool answered = false;
  while (absl::Now() < deadline) {
    absl::StatusOr<Scrape> s = ScrapeAll(service->metrics_url);
    if (!s.ok()) {
      // As above: only a stopped service ends the scraping.
      if (answered && service->process->Wait(absl::ZeroDuration()).ok()) break;
    } else {
      answered = true;
      const double r = s->Get("weir_backpressure_ratio");
      f.max_backpressure_ratio = std::max(f.max_backpressure_ratio, r);
      absl::StrAppend(&f.ratios, r, " ");
    }
    auto line = service->process->ReadLine(absl::Milliseconds(200));
    if (line.ok()) absl::StrAppend(&service->output, *line, "\n");
  }
  auto status = fft::FinishService(*service, absl::Seconds(120));
  EXPECT_TRUE(status.ok()) << status.status();
  f.output = service->output;
  EXPECT_TRUE(status.ok() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << f.output;
  f.peak_rss_kib = fft::SummaryNumber(f.output, "peak RSS");
  return f;
}

// A sink that takes 50 ms per batch (and refuses writes meanwhile): the
// pipeline queues at most --max_pending_updates updates (5000 here, and
// batches of 250, so that the sink is well below the processing rate in
// runs this short), pauses the input, and the backpressure ratio goes above
// 0.5. Memory stays bounded: the peak RSS of a slow run is within a margin
// of a fast run over the same events, and does not grow from one size of
// input to one twice as large. 2000 users over 10 to 20 s of event time
// keep the state itself small and about the same size in both runs, so
// that what would grow is only what the input pushes in front of the sink.
TEST_F(FraudFeaturesMetricsTest, SlowSinkDrivesBackpressureAndBoundsMemory) {
  const int64_t small = 20000;
  const int64_t large = 40000;
  ASSERT_TRUE(
      fft::ProduceWPay(broker_->bootstrap(), "small", WPay(small, 2000)).ok());
  ASSERT_TRUE(
      fft::ProduceWPay(broker_->bootstrap(), "large", WPay(large, 2000)).ok());

  auto args = [&](const std::string& name, const std::string& topic,
                  bool slow) {
    std::vector<std::string> a = Args(name, topic);
    a.push_back("--max_pending_updates=5000");
    a.push_back("--sink_batch_size=250");
    if (slow) a.push_back("--sink_delay_ms=50");
    return a;
  };
  const RunFigures fast = RunToEnd(args("fast", "large", false));
  const RunFigures slow_small = RunToEnd(args("slow_small", "small", true));
  const RunFigures slow_large = RunToEnd(args("slow_large", "large", true));

  ASSERT_GT(fast.peak_rss_kib, 0) << fast.output;
  ASSERT_GT(slow_small.peak_rss_kib, 0) << slow_small.output;
  ASSERT_GT(slow_large.peak_rss_kib, 0) << slow_large.output;
  EXPECT_LT(fast.max_backpressure_ratio, 0.1) << fast.ratios;
  EXPECT_GT(slow_small.max_backpressure_ratio, 0.5) << slow_small.ratios;
  EXPECT_GT(slow_large.max_backpressure_ratio, 0.5) << slow_large.ratios;
  // The bound: the fast run's peak plus what max_pending_updates (50000
  // updates of well under 1 KiB each) can hold, rounded up to 64 MiB.
  const int64_t bound_kib = fast.peak_rss_kib + 64 * 1024;
  if (!testing::kSanitizedBuild) {
    EXPECT_LT(slow_small.peak_rss_kib, bound_kib) << slow_small.output;
    EXPECT_LT(slow_large.peak_rss_kib, bound_kib) << slow_large.output;
    // Twice the events may not cost much more memory: the queue in front of
    // the sink is bounded, not the input. 16 MiB covers RocksDB's and the
    // allocator's own growth with the state of twice the keys.
    EXPECT_LT(slow_large.peak_rss_kib, slow_small.peak_rss_kib + 16 * 1024)
        << "small:\n"
        << slow_small.output << "\nlarge:\n"
        << slow_large.output;
  }
  // The slow run still wrote every feature: same final values as the fast
  // run over the same events.
  auto want = fft::ReadFinalValues(dir_->path() + "/fast/features.jsonl");
  auto got = fft::ReadFinalValues(dir_->path() + "/slow_large/features.jsonl");
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(fft::CompareFinal(*want, *got), "");
}

}  // namespace
}  // namespace weir
