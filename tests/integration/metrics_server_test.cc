#include "weir/http/metrics_server.h"

#include <dirent.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/metrics.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

httplib::Result Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  return client.Get(path.c_str());
}

// This process's threads by id, each with its name, from
// /proc/self/task/*/comm.
std::map<pid_t, std::string> Threads() {
  std::map<pid_t, std::string> threads;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return threads;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(
        absl::StrCat("/proc/self/task/", entry->d_name, "/comm"));
    std::string name;
    if (!std::getline(comm, name)) continue;  // It exited meanwhile.
    threads[static_cast<pid_t>(std::stol(entry->d_name))] = name;
  }
  closedir(dir);
  return threads;
}

// Waits until thread `tid` has left /proc/self/task. A joined thread stays
// listed for a moment: pthread_join returns once the kernel clears the
// thread's id, a little before the kernel removes the task. False if it is
// still listed after `timeout`.
bool WaitUntilGone(pid_t tid, absl::Duration timeout) {
  const std::string path = absl::StrCat("/proc/self/task/", tid);
  const absl::Time deadline = absl::Now() + timeout;
  while (access(path.c_str(), F_OK) == 0) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(MetricsServerTest, StartsExactlyOneNamedThread) {
  // A first thread may start helper threads of a sanitizer runtime; start
  // and join one so they do not count against the server, and wait for it
  // to leave the list.
  pid_t first = 0;
  std::thread([&first] { first = gettid(); }).join();
  ASSERT_TRUE(WaitUntilGone(first, absl::Seconds(30)));
  std::map<pid_t, std::string> before = Threads();
  if (before.empty()) GTEST_SKIP() << "/proc/self/task is not readable";

  MetricsRegistry registry;
  auto server = MetricsServer::Start(&registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(Get((*server)->port(), "/metrics"));
  std::vector<std::pair<pid_t, std::string>> started;
  for (const auto& thread : Threads()) {
    if (!before.contains(thread.first)) started.push_back(thread);
  }
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].second, "weir-metrics");

  (*server)->Stop();
  EXPECT_TRUE(WaitUntilGone(started[0].first, absl::Seconds(30)));
  for (const auto& [tid, name] : Threads()) {
    EXPECT_TRUE(before.contains(tid))
        << "thread " << tid << " (" << name << ") outlived Stop";
  }
}

TEST(MetricsServerTest, ServesMetricsOnAPickedPort) {
  MetricsRegistry registry;
  auto records = registry.AddCounter("weir_records_in_total", "Records in.");
  ASSERT_TRUE(records.ok());
  auto lag = registry.AddGaugeFamily("weir_consumer_lag_records", "Lag.",
                                     {"partition"});
  ASSERT_TRUE(lag.ok());
  (*records)->Increment(5);
  (*(*lag)->WithLabels({"3"}))->Set(12);

  auto server = MetricsServer::Start(&registry);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ((*server)->url(),
            absl::StrCat("http://127.0.0.1:", port, "/metrics"));

  httplib::Result res = Get(port, "/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res->body, registry.PrometheusText());
  EXPECT_THAT(res->body, HasSubstr("weir_records_in_total 5\n"));
  EXPECT_THAT(res->body,
              HasSubstr("weir_consumer_lag_records{partition=\"3\"} 12\n"));

  // Values move after updates.
  (*records)->Increment(37);
  (*(*lag)->WithLabels({"3"}))->Set(0);
  res = Get(port, "/metrics");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("weir_records_in_total 42\n"));
  EXPECT_THAT(res->body,
              HasSubstr("weir_consumer_lag_records{partition=\"3\"} 0\n"));

  // Callback gauges run at scrape time.
  int scrapes = 0;
  auto reg = registry.AddCallbackGauge("weir_scrapes", "Scrapes seen.", [&] {
    return static_cast<double>(++scrapes);
  });
  ASSERT_TRUE(reg.ok());
  res = Get(port, "/metrics");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("weir_scrapes 1\n"));
  res = Get(port, "/metrics");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("weir_scrapes 2\n"));

  res = Get(port, "/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST(MetricsServerTest, HealthzReportsTheHealthCheck) {
  MetricsRegistry registry;
  auto server = MetricsServer::Start(&registry);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Result res = Get((*server)->port(), "/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");

  std::atomic<bool> healthy{true};
  MetricsServerOptions options;
  options.health_check = [&]() -> absl::Status {
    if (healthy) return absl::OkStatus();
    return absl::UnavailableError("last checkpoint is 10m old");
  };
  auto checked = MetricsServer::Start(&registry, options);
  ASSERT_TRUE(checked.ok()) << checked.status();
  res = Get((*checked)->port(), "/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  healthy = false;
  res = Get((*checked)->port(), "/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_THAT(res->body, HasSubstr("last checkpoint is 10m old"));
}

TEST(MetricsServerTest, ReadyzReportsTheReadinessCheck) {
  MetricsRegistry registry;
  std::atomic<bool> ready{false};
  MetricsServerOptions options;
  options.readiness_check = [&]() -> absl::Status {
    if (ready) return absl::OkStatus();
    return absl::UnavailableError("phase restore");
  };
  auto server = MetricsServer::Start(&registry, options);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Result res = Get((*server)->port(), "/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_THAT(res->body, HasSubstr("phase restore"));
  // Health and readiness are separate answers.
  res = Get((*server)->port(), "/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  ready = true;
  res = Get((*server)->port(), "/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");
}

TEST(MetricsServerTest, StopJoinsAndClosesThePort) {
  MetricsRegistry registry;
  auto server = MetricsServer::Start(&registry);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  ASSERT_TRUE(Get(port, "/healthz"));
  (*server)->Stop();
  // After Stop() returns the thread is gone and nothing accepts.
  httplib::Result res = Get(port, "/healthz");
  EXPECT_FALSE(res);
  (*server)->Stop();  // idempotent
  server->reset();    // destructor after Stop
}

TEST(MetricsServerTest, StopRightAfterStart) {
  MetricsRegistry registry;
  for (int i = 0; i < 20; ++i) {
    auto server = MetricsServer::Start(&registry);
    ASSERT_TRUE(server.ok()) << server.status();
    (*server)->Stop();
  }
}

TEST(MetricsServerTest, UsesAGivenPort) {
  MetricsRegistry registry;
  absl::StatusOr<int> free_port = testing::PickFreePort();
  ASSERT_TRUE(free_port.ok());
  MetricsServerOptions options;
  options.port = *free_port;
  auto server = MetricsServer::Start(&registry, options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->port(), *free_port);
  EXPECT_TRUE(Get(*free_port, "/healthz"));

  // The port is taken now.
  auto second = MetricsServer::Start(&registry, options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(MetricsServerTest, RefusesNonLoopbackUnlessAllowed) {
  MetricsRegistry registry;
  MetricsServerOptions options;
  for (const char* address : {"0.0.0.0", "10.1.2.3", "::", "example.com"}) {
    options.address = address;
    auto server = MetricsServer::Start(&registry, options);
    ASSERT_FALSE(server.ok()) << address;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(server.status().message()), HasSubstr("address"));
  }
  for (const char* address : {"127.0.0.1", "127.0.0.2", "localhost"}) {
    options.address = address;
    EXPECT_TRUE(options.Validate().ok()) << address;
  }
  options.address = "::1";
  EXPECT_TRUE(options.Validate().ok());

  options.address = "0.0.0.0";
  options.allow_non_loopback = true;
  EXPECT_TRUE(options.Validate().ok());

  options = MetricsServerOptions();
  options.port = 70000;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("port"));
  options = MetricsServerOptions();
  options.io_timeout = absl::ZeroDuration();
  EXPECT_THAT(std::string(options.Validate().message()),
              HasSubstr("io_timeout"));
  EXPECT_EQ(MetricsServer::Start(nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace weir
