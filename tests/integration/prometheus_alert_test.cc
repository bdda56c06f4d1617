// The shipped alert rules (ops/prometheus/weir_alerts.yml) against a real
// Prometheus server: it scrapes the fraud-features service on loopback
// while a slow sink (--sink_delay_ms) holds the input paused, evaluates the
// shipped WeirBackpressure rule, and the alert fires. The rule runs with
// its windows shortened (rate over 20 s instead of 5 min, pending for 2 s
// instead of 5 min) so that a run of seconds can show it; its expression
// and threshold are the shipped ones. promtool's unit tests
// (tests/ops/prometheus_rules.test.sh) check every rule at full length.

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fraud_features_testing.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 4;

// The path of `name` in PATH, or "".
std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The shipped rules with WeirBackpressure's windows shortened; fails the
// test if the shipped rule no longer reads as this test expects.
std::string ShortenedRules() {
  const std::string rules =
      ReadFile(WEIR_SOURCE_DIR "/ops/prometheus/weir_alerts.yml");
  const std::string expr = "rate(weir_paused_seconds_total[5m]) > 0.8";
  const size_t at = rules.find(expr);
  EXPECT_NE(at, std::string::npos) << "WeirBackpressure's expression changed";
  if (at == std::string::npos) return "";
  const size_t for_at = rules.find("for: 5m", at);
  EXPECT_NE(for_at, std::string::npos) << "WeirBackpressure's `for` changed";
  if (for_at == std::string::npos) return "";
  std::string out = rules;
  out.replace(for_at, 7, "for: 2s");
  out.replace(at, expr.size(), "rate(weir_paused_seconds_total[20s]) > 0.8");
  return out;
}

TEST(PrometheusAlertTest, BackpressureAlertFiresOnASlowSink) {
  const std::string prometheus = FindInPath("prometheus");
  if (prometheus.empty()) {
    if (std::getenv("CI") != nullptr) {
      FAIL() << "prometheus is not installed (Debian package prometheus)";
    }
    GTEST_SKIP() << "prometheus is not installed (apt-get install prometheus)";
  }
  if (!fft::BinariesBuilt()) {
    GTEST_SKIP() << "build fraud-features and weir-broker first";
  }
  auto dir = testing::TempDir::Create("prometheus-alert-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  LocalBroker::Options bo;
  bo.binary_path = fft::BrokerBinary();
  bo.topics = {{kTopic, kPartitions}};
  auto broker = LocalBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status();
  testing::WPayOptions wpay;
  wpay.num_events = 6000;
  wpay.num_users = 2000;
  wpay.num_partitions = kPartitions;
  wpay.seed = 11;
  ASSERT_TRUE(fft::ProduceWPay((*broker)->bootstrap(), kTopic, wpay).ok());

  // A sink that takes 1 s per batch of 50 updates (50 updates/s, far below
  // the processing rate even on a loaded machine). The pipeline pauses the
  // input at 4000 pending updates and resumes it at 2000, so each pause
  // lasts about 40 s and the refill between pauses a fraction of a second:
  // the input is paused well over 80% of the time however slowly the
  // service processes (at 1/20 of an idle machine's rate, too).
  const std::string d = dir->path();
  auto service = fft::StartService(
      {"--bootstrap=" + (*broker)->bootstrap(),
       std::string("--topic=") + kTopic, "--group=prometheus",
       "--state_dir=" + d + "/state", "--sink=file:" + d + "/features.jsonl",
       "--dlq=file:" + d + "/dlq.jsonl", "--checkpoint_interval=1s",
       "--idle_exit=2", "--max_seconds=180", "--metrics_port=0",
       "--max_pending_updates=4000", "--sink_batch_size=50",
       "--sink_delay_ms=1000"});
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_FALSE(service->metrics_url.empty()) << service->output;
  // "http://127.0.0.1:PORT/metrics" -> "127.0.0.1:PORT"
  std::string target = absl::StrReplaceAll(service->metrics_url,
                                           {{"http://", ""}, {"/metrics", ""}});

  const std::string rules = ShortenedRules();
  ASSERT_FALSE(rules.empty());
  {
    std::ofstream(d + "/weir_alerts.yml") << rules;
    std::ofstream(d + "/prometheus.yml") << "global:\n"
                                            "  scrape_interval: 1s\n"
                                            "  evaluation_interval: 1s\n"
                                            "rule_files: ['"
                                         << d
                                         << "/weir_alerts.yml']\n"
                                            "scrape_configs:\n"
                                            "  - job_name: weir\n"
                                            "    static_configs:\n"
                                            "      - targets: ['"
                                         << target << "']\n";
  }
  absl::StatusOr<int> port = testing::PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string listen = absl::StrCat("127.0.0.1:", *port);
  auto server = testing::Subprocess::Start(
      {prometheus, "--config.file=" + d + "/prometheus.yml",
       "--storage.tsdb.path=" + d + "/tsdb", "--web.listen-address=" + listen,
       "--log.level=warn"});
  ASSERT_TRUE(server.ok()) << server.status();

  httplib::Client client(absl::StrCat("http://", listen));
  client.set_connection_timeout(1);
  client.set_read_timeout(2);
  bool firing = false;
  std::string last_alerts;
  const absl::Time deadline = absl::Now() + absl::Seconds(150);
  while (!firing && absl::Now() < deadline) {
    if (auto res = client.Get("/api/v1/alerts"); res && res->status == 200) {
      last_alerts = res->body;
      firing =
          absl::StrContains(res->body, "\"alertname\":\"WeirBackpressure\"") &&
          absl::StrContains(res->body, "\"state\":\"firing\"");
    }
    // Paces the queries while collecting the service's output; ends early
    // if the service has finished.
    auto line = service->process->ReadLine(absl::Milliseconds(250));
    if (line.ok()) {
      absl::StrAppend(&service->output, *line, "\n");
    } else if (absl::IsOutOfRange(line.status())) {
      break;
    }
  }
  EXPECT_TRUE(firing) << "last /api/v1/alerts: " << last_alerts
                      << "\nservice output:\n"
                      << service->output;
  // What the service does after the alert is not this test's concern
  // (the slow sink would take half a minute to drain the queue).
  ASSERT_TRUE(service->process->Signal(SIGKILL).ok());
}

}  // namespace
}  // namespace weir
