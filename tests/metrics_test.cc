#include "weir/metrics.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

TEST(MetricsRegistryTest, RendersExactExpositionText) {
  MetricsRegistry registry;
  auto records_in = registry.AddCounter("weir_records_in_total",
                                        "Records read from the source.",
                                        {{"pipeline", "fraud"}});
  ASSERT_TRUE(records_in.ok()) << records_in.status();
  auto watermark_lag = registry.AddGauge(
      "weir_watermark_lag_seconds", "Processing time minus the watermark.");
  ASSERT_TRUE(watermark_lag.ok()) << watermark_lag.status();
  auto lag = registry.AddGaugeFamily("weir_consumer_lag_records",
                                     "Records behind the partition end.",
                                     {"partition"});
  ASSERT_TRUE(lag.ok()) << lag.status();
  auto latency = registry.AddHistogram("weir_sink_latency_seconds",
                                       "Sink write latency.", {0.01, 0.1, 1});
  ASSERT_TRUE(latency.ok()) << latency.status();

  (*records_in)->Increment(41);
  (*records_in)->Increment();
  (*watermark_lag)->Set(2.5);
  ASSERT_TRUE((*lag)->WithLabels({"3"}).ok());
  (*(*lag)->WithLabels({"3"}))->Set(1200);
  (*(*lag)->WithLabels({"10"}))->Set(7);
  (*latency)->Observe(0.005);
  (*latency)->Observe(0.01);  // on a bound: counts in le="0.01"
  (*latency)->Observe(0.5);
  (*latency)->Observe(absl::Seconds(3));

  const std::string expected =
      "# HELP weir_consumer_lag_records Records behind the partition end.\n"
      "# TYPE weir_consumer_lag_records gauge\n"
      "weir_consumer_lag_records{partition=\"10\"} 7\n"
      "weir_consumer_lag_records{partition=\"3\"} 1200\n"
      "# HELP weir_records_in_total Records read from the source.\n"
      "# TYPE weir_records_in_total counter\n"
      "weir_records_in_total{pipeline=\"fraud\"} 42\n"
      "# HELP weir_sink_latency_seconds Sink write latency.\n"
      "# TYPE weir_sink_latency_seconds histogram\n"
      "weir_sink_latency_seconds_bucket{le=\"0.01\"} 2\n"
      "weir_sink_latency_seconds_bucket{le=\"0.1\"} 2\n"
      "weir_sink_latency_seconds_bucket{le=\"1\"} 3\n"
      "weir_sink_latency_seconds_bucket{le=\"+Inf\"} 4\n"
      "weir_sink_latency_seconds_sum 3.515\n"
      "weir_sink_latency_seconds_count 4\n"
      "# HELP weir_watermark_lag_seconds Processing time minus the "
      "watermark.\n"
      "# TYPE weir_watermark_lag_seconds gauge\n"
      "weir_watermark_lag_seconds 2.5\n";
  EXPECT_EQ(registry.PrometheusText(), expected);
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  auto c = registry.AddCounter("weir_dlq_records_total",
                               "Dead letters.\nBack\\slash \"quoted\".",
                               {{"reason", "bad \"json\"\nat C:\\in"}});
  ASSERT_TRUE(c.ok()) << c.status();
  (*c)->Increment(2);
  EXPECT_EQ(registry.PrometheusText(),
            "# HELP weir_dlq_records_total Dead letters.\\nBack\\\\slash "
            "\"quoted\".\n"
            "# TYPE weir_dlq_records_total counter\n"
            "weir_dlq_records_total{reason=\"bad \\\"json\\\"\\nat "
            "C:\\\\in\"} 2\n");
}

TEST(MetricsRegistryTest, FormatsSpecialAndFractionalValues) {
  MetricsRegistry registry;
  auto g = registry.AddGaugeFamily("g", "h", {"k"});
  ASSERT_TRUE(g.ok());
  (*(*g)->WithLabels({"a_nan"}))->Set(std::nan(""));
  (*(*g)->WithLabels({"b_inf"}))->Set(std::numeric_limits<double>::infinity());
  (*(*g)->WithLabels({"c_neg"}))->Set(-std::numeric_limits<double>::infinity());
  (*(*g)->WithLabels({"d_frac"}))->Set(0.1);
  (*(*g)->WithLabels({"e_big"}))->Set(1e20);
  (*(*g)->WithLabels({"f_neg"}))->Set(-3);
  EXPECT_EQ(registry.PrometheusText(),
            "# HELP g h\n# TYPE g gauge\n"
            "g{k=\"a_nan\"} NaN\n"
            "g{k=\"b_inf\"} +Inf\n"
            "g{k=\"c_neg\"} -Inf\n"
            "g{k=\"d_frac\"} 0.1\n"
            "g{k=\"e_big\"} 1e+20\n"
            "g{k=\"f_neg\"} -3\n");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulative) {
  MetricsRegistry registry;
  auto h = registry.AddHistogram("weir_checkpoint_duration_seconds", "d",
                                 ExponentialBuckets(1, 2, 4));  // 1 2 4 8
  ASSERT_TRUE(h.ok()) << h.status();
  for (double v : {0.5, 1.5, 1.7, 3.0, 3.5, 3.9, 100.0}) (*h)->Observe(v);
  (*h)->Observe(std::nan(""));  // ignored

  std::vector<MetricSnapshot> snap = registry.Snapshot();
  const MetricSnapshot* m =
      FindMetric(snap, "weir_checkpoint_duration_seconds");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->type, MetricType::kHistogram);
  EXPECT_EQ(m->bucket_bounds, (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(m->cumulative_counts, (std::vector<uint64_t>{1, 3, 6, 6, 7}));
  EXPECT_EQ(m->count, 7u);
  EXPECT_DOUBLE_EQ(m->sum, 0.5 + 1.5 + 1.7 + 3.0 + 3.5 + 3.9 + 100.0);
  for (size_t i = 1; i < m->cumulative_counts.size(); ++i) {
    EXPECT_GE(m->cumulative_counts[i], m->cumulative_counts[i - 1]);
  }
  EXPECT_THAT(registry.PrometheusText(),
              HasSubstr("weir_checkpoint_duration_seconds_bucket{le=\"4\"} 6\n"
                        "weir_checkpoint_duration_seconds_bucket{le=\"8\"} 6\n"
                        "weir_checkpoint_duration_seconds_bucket{le=\"+Inf\"} "
                        "7\n"));
}

TEST(MetricsRegistryTest, HistogramFamilyAddsLeAfterLabels) {
  MetricsRegistry registry;
  auto h = registry.AddHistogramFamily("lat", "l", {"sink"}, {1, 2},
                                       {{"pipeline", "p"}});
  ASSERT_TRUE(h.ok()) << h.status();
  (*(*h)->WithLabels({"redis"}))->Observe(1.5);
  EXPECT_EQ(registry.PrometheusText(),
            "# HELP lat l\n# TYPE lat histogram\n"
            "lat_bucket{pipeline=\"p\",sink=\"redis\",le=\"1\"} 0\n"
            "lat_bucket{pipeline=\"p\",sink=\"redis\",le=\"2\"} 1\n"
            "lat_bucket{pipeline=\"p\",sink=\"redis\",le=\"+Inf\"} 1\n"
            "lat_sum{pipeline=\"p\",sink=\"redis\"} 1.5\n"
            "lat_count{pipeline=\"p\",sink=\"redis\"} 1\n");
}

TEST(MetricsRegistryTest, ConcurrentIncrementsSumExactly) {
  MetricsRegistry registry;
  auto c = registry.AddCounter("c_total", "c");
  auto g = registry.AddGauge("g", "g");
  auto h = registry.AddHistogram("h", "h", {0.5});
  auto fam = registry.AddCounterFamily("per_thread_total", "p", {"t"});
  ASSERT_TRUE(c.ok() && g.ok() && h.ok() && fam.ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250000;
  absl::Notification go;
  std::atomic<bool> stop_scraping{false};
  // A scraper reads while the writers write.
  std::thread scraper([&] {
    while (!stop_scraping.load()) registry.PrometheusText();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread looks up the shared series of its label itself.
      Counter* mine = *(*fam)->WithLabels({t % 2 == 0 ? "even" : "odd"});
      go.WaitForNotification();
      for (int i = 0; i < kPerThread; ++i) {
        (*c)->Increment();
        (*g)->Add(1);
        (*h)->Observe(i % 2 == 0 ? 0.25 : 1.0);
        mine->Increment();
      }
    });
  }
  go.Notify();
  for (auto& t : threads) t.join();
  stop_scraping = true;
  scraper.join();

  const double total = static_cast<double>(kThreads) * kPerThread;
  EXPECT_EQ((*c)->Value(), total);
  EXPECT_EQ((*g)->Value(), total);
  EXPECT_EQ((*h)->Count(), static_cast<uint64_t>(total));
  EXPECT_EQ((*h)->CumulativeCounts()[0], static_cast<uint64_t>(total / 2));
  EXPECT_DOUBLE_EQ((*h)->Sum(), total / 2 * 0.25 + total / 2 * 1.0);
  std::vector<MetricSnapshot> snap = registry.Snapshot();
  const MetricSnapshot* even =
      FindMetric(snap, "per_thread_total", {{"t", "even"}});
  ASSERT_NE(even, nullptr);
  EXPECT_EQ(even->value, total / 2);
}

TEST(MetricsRegistryTest, CounterAddsFractionsAndIgnoresNegative) {
  MetricsRegistry registry;
  auto c = registry.AddCounter("weir_backpressure_seconds_total", "paused");
  ASSERT_TRUE(c.ok());
  (*c)->Add(0.25);
  (*c)->Add(-5);
  (*c)->Add(std::nan(""));
  (*c)->Increment(2);
  EXPECT_DOUBLE_EQ((*c)->Value(), 2.25);
}

TEST(MetricsRegistryTest, CallbackGaugesAreEvaluatedAtScrapeTime) {
  MetricsRegistry registry;
  std::atomic<int64_t> state_bytes{100};
  int calls = 0;
  auto reg = registry.AddCallbackGauge(
      "weir_state_size_bytes", "State size.",
      [&] {
        ++calls;
        return static_cast<double>(state_bytes.load());
      },
      {{"partition", "0"}});
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(calls, 0);

  std::vector<MetricSnapshot> snap = registry.Snapshot();
  const MetricSnapshot* m =
      FindMetric(snap, "weir_state_size_bytes", {{"partition", "0"}});
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->value, 100);
  EXPECT_EQ(m->type, MetricType::kGauge);
  state_bytes = 4096;
  EXPECT_THAT(registry.PrometheusText(),
              HasSubstr("weir_state_size_bytes{partition=\"0\"} 4096\n"));
  EXPECT_EQ(calls, 2);

  // A second partition joins the same metric.
  auto reg1 =
      registry.AddCallbackGauge("weir_state_size_bytes", "State size.",
                                [] { return 7.0; }, {{"partition", "1"}});
  ASSERT_TRUE(reg1.ok()) << reg1.status();
  EXPECT_THAT(registry.PrometheusText(),
              HasSubstr("weir_state_size_bytes{partition=\"0\"} 4096\n"
                        "weir_state_size_bytes{partition=\"1\"} 7\n"));

  // Destroying the registration removes the series; the function is not
  // called again.
  *reg = CallbackRegistration();
  int calls_before = calls;
  snap = registry.Snapshot();
  EXPECT_EQ(FindMetric(snap, "weir_state_size_bytes", {{"partition", "0"}}),
            nullptr);
  EXPECT_NE(FindMetric(snap, "weir_state_size_bytes", {{"partition", "1"}}),
            nullptr);
  EXPECT_EQ(calls, calls_before);

  // The label set is free again.
  auto again =
      registry.AddCallbackGauge("weir_state_size_bytes", "State size.",
                                [] { return 1.0; }, {{"partition", "0"}});
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(MetricsRegistryTest, CallbackFamiliesReportSeriesThatComeAndGo) {
  MetricsRegistry registry;
  std::vector<CallbackSample> hot = {{{"1", "card-7"}, 900},
                                     {{"2", "card-\"x\""}, 40}};
  auto reg = registry.AddCallbackGaugeFamily(
      "weir_hot_key_count", "Estimated count of the hottest keys.",
      {"rank", "key"}, [&] { return hot; }, {{"operator", "spend"}});
  ASSERT_TRUE(reg.ok()) << reg.status();
  // A static family of the same metric with other constant labels renders
  // in label order with it.
  auto other = registry.AddGaugeFamily("weir_hot_key_count",
                                       "Estimated count of the hottest keys.",
                                       {"rank", "key"}, {{"operator", "a"}});
  ASSERT_TRUE(other.ok()) << other.status();
  (*(*other)->WithLabels({"1", "k"}))->Set(5);
  EXPECT_EQ(registry.PrometheusText(),
            "# HELP weir_hot_key_count Estimated count of the hottest keys.\n"
            "# TYPE weir_hot_key_count gauge\n"
            "weir_hot_key_count{operator=\"a\",rank=\"1\",key=\"k\"} 5\n"
            "weir_hot_key_count{operator=\"spend\",rank=\"1\",key=\"card-"
            "7\"} 900\n"
            "weir_hot_key_count{operator=\"spend\",rank=\"2\",key=\"card-"
            "\\\"x\\\"\"} 40\n");

  // The set changes; a sample with the wrong number of values is dropped.
  hot = {{{"1", "card-9"}, 1000}, {{"only-one-value"}, 3}};
  std::vector<MetricSnapshot> snap = registry.Snapshot();
  EXPECT_EQ(snap.size(), 2u);
  const MetricSnapshot* top =
      FindMetric(snap, "weir_hot_key_count",
                 {{"operator", "spend"}, {"rank", "1"}, {"key", "card-9"}});
  ASSERT_NE(top, nullptr);
  EXPECT_EQ(top->value, 1000);

  // Its constant labels are taken until the registration goes away.
  EXPECT_EQ(registry
                .AddGaugeFamily("weir_hot_key_count",
                                "Estimated count of the hottest keys.",
                                {"rank", "key"}, {{"operator", "spend"}})
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  reg->Reset();
  EXPECT_EQ(registry.Snapshot().size(), 1u);
  EXPECT_TRUE(registry
                  .AddGaugeFamily("weir_hot_key_count",
                                  "Estimated count of the hottest keys.",
                                  {"rank", "key"}, {{"operator", "spend"}})
                  .ok());
}

TEST(MetricsRegistryTest, CallbackMayRegisterMetrics) {
  MetricsRegistry registry;
  auto reg = registry.AddCallbackCounter("outer_total", "o", [&] {
    // Runs without the registry lock held.
    (void)registry.AddGauge("inner", "i");
    return 1.0;
  });
  ASSERT_TRUE(reg.ok());
  std::vector<MetricSnapshot> snap = registry.Snapshot();
  ASSERT_NE(FindMetric(snap, "outer_total"), nullptr);
  EXPECT_EQ(FindMetric(snap, "outer_total")->type, MetricType::kCounter);
  EXPECT_NE(FindMetric(registry.Snapshot(), "inner"), nullptr);
}

TEST(MetricsRegistryTest, RejectsInvalidNamesNamingTheMetric) {
  MetricsRegistry registry;
  for (const char* bad : {"", "9lives", "has-dash", "has space", "ünï"}) {
    auto c = registry.AddCounter(bad, "h");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()),
                HasSubstr(absl::StrCat("\"", bad, "\"")));
  }
  EXPECT_TRUE(registry.AddGauge("ok:name_1", "h").ok());
  EXPECT_TRUE(registry.AddGauge("_x", "h").ok());

  auto bad_label = registry.AddGauge("m1", "h", {{"bad-label", "v"}});
  EXPECT_EQ(bad_label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_label.status().message()), HasSubstr("\"m1\""));
  EXPECT_THAT(std::string(bad_label.status().message()),
              HasSubstr("bad-label"));
  EXPECT_EQ(registry.AddGauge("m2", "h", {{"__reserved", "v"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddGaugeFamily("m3", "h", {"a", "a"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddGaugeFamily("m4", "h", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      registry.AddHistogram("m5", "h", {1}, {{"le", "x"}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddHistogram("m6", "h", {2, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddHistogram("m7", "h", {1, std::nan("")}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddHistogram("m8", "h", ExponentialBuckets(1, 1, 3))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddCallbackGauge("m9", "h", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A trailing +Inf is accepted and dropped.
  auto h = registry.AddHistogram("m10", "h",
                                 {1, std::numeric_limits<double>::infinity()});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ((*h)->bounds(), std::vector<double>{1});
}

TEST(MetricsRegistryTest, SharedNamesMustAgree) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.AddCounter("records_total", "r", {{"op", "a"}}).ok());
  ASSERT_TRUE(registry.AddCounter("records_total", "r", {{"op", "b"}}).ok());
  // Same labels again.
  EXPECT_EQ(
      registry.AddCounter("records_total", "r", {{"op", "a"}}).status().code(),
      absl::StatusCode::kAlreadyExists);
  // Different type, help, label names.
  EXPECT_EQ(
      registry.AddGauge("records_total", "r", {{"op", "c"}}).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      registry.AddCounter("records_total", "x", {{"op", "c"}}).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddCounter("records_total", "r", {{"stage", "c"}})
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      registry.AddCounterFamily("records_total", "r", {"op"}).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddCounter("plain", "p").status().ok(), true);
  EXPECT_EQ(registry.AddCounter("plain", "p").status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.AddHistogram("h", "h", {1, 2}, {{"op", "a"}}).ok());
  EXPECT_EQ(
      registry.AddHistogram("h", "h", {1, 3}, {{"op", "b"}}).status().code(),
      absl::StatusCode::kAlreadyExists);

  // Two family handles with different constant labels share the metric.
  auto fa = registry.AddGaugeFamily("lag", "l", {"partition"}, {{"op", "a"}});
  auto fb = registry.AddGaugeFamily("lag", "l", {"partition"}, {{"op", "b"}});
  ASSERT_TRUE(fa.ok() && fb.ok());
  EXPECT_EQ(registry.AddGaugeFamily("lag", "l", {"partition"}, {{"op", "a"}})
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  Gauge* a0 = *(*fa)->WithLabels({"0"});
  Gauge* b0 = *(*fb)->WithLabels({"0"});
  EXPECT_NE(a0, b0);
  // WithLabels returns the same stable pointer each time.
  EXPECT_EQ(*(*fa)->WithLabels({"0"}), a0);
  EXPECT_EQ((*fa)->WithLabels({"0", "1"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryTest, EmptyRegistryAndEmptyFamiliesRenderNothing) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.PrometheusText(), "");
  ASSERT_TRUE(registry.AddGaugeFamily("unused", "u", {"p"}).ok());
  EXPECT_EQ(registry.PrometheusText(), "");
  EXPECT_TRUE(registry.Snapshot().empty());
}

TEST(MetricsRegistryTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(0.001, 10, 3),
            (std::vector<double>{0.001, 0.01, 0.1}));
  EXPECT_EQ(LinearBuckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  EXPECT_TRUE(ExponentialBuckets(1, 2, 0).empty());
  std::vector<double> d = DefaultLatencyBuckets();
  EXPECT_TRUE(std::is_sorted(d.begin(), d.end()));
  EXPECT_EQ(d.back(), 10);
}

}  // namespace
}  // namespace weir
