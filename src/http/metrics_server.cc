#include "weir/http/metrics_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace weir {
namespace {

// Runs each connection on the accepting thread itself, so the server adds
// no thread beyond its one listener (httplib's default is a pool).
class InlineTaskQueue : public httplib::TaskQueue {
 public:
  explicit InlineTaskQueue(absl::Notification* running) {
    // httplib creates the queue once it is running; Start() waits for this
    // so that Stop() can never miss a server that has not started yet.
    if (!running->HasBeenNotified()) running->Notify();
  }
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

bool IsLoopback(const std::string& address) {
  if (address == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

std::pair<time_t, time_t> SecondsAndMicros(absl::Duration d) {
  int64_t micros = absl::ToInt64Microseconds(d);
  return {static_cast<time_t>(micros / 1000000),
          static_cast<time_t>(micros % 1000000)};
}

}  // namespace

absl::Status MetricsServerOptions::Validate() const {
  if (address.empty()) {
    return absl::InvalidArgumentError(
        "MetricsServerOptions.address: must not be empty");
  }
  if (!allow_non_loopback && !IsLoopback(address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MetricsServerOptions.address: \"", address,
        "\" is not a loopback address; set allow_non_loopback to expose "
        "metrics beyond this host"));
  }
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MetricsServerOptions.port: ", port, " is not in [0, 65535]"));
  }
  if (io_timeout <= absl::ZeroDuration() ||
      io_timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "MetricsServerOptions.io_timeout: must be positive and finite");
  }
  return absl::OkStatus();
}

class MetricsServer::Impl {
 public:
  Impl(const MetricsRegistry* registry, MetricsServerOptions options)
      : registry_(registry), options_(std::move(options)) {}

  ~Impl() { Stop(); }

  absl::Status Start() {
    server_.new_task_queue = [this] { return new InlineTaskQueue(&running_); };
    server_.set_keep_alive_max_count(1);
    // httplib's default sets SO_REUSEPORT, which would let a second process
    // share a taken port silently; SO_REUSEADDR alone only allows rebinding
    // a port whose old connections linger in TIME_WAIT.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    auto [sec, usec] = SecondsAndMicros(options_.io_timeout);
    server_.set_read_timeout(sec, usec);
    server_.set_write_timeout(sec, usec);
    server_.Get("/metrics",
                [this](const httplib::Request&, httplib::Response& res) {
                  res.set_content(registry_->PrometheusText(),
                                  "text/plain; version=0.0.4; charset=utf-8");
                });
    auto answer = [](const std::function<absl::Status()>& check,
                     httplib::Response& res) {
      absl::Status s = check ? check() : absl::OkStatus();
      if (s.ok()) {
        res.set_content("ok\n", "text/plain; charset=utf-8");
      } else {
        res.status = 503;
        res.set_content(absl::StrCat(s.ToString(), "\n"),
                        "text/plain; charset=utf-8");
      }
    };
    server_.Get("/healthz", [this, answer](const httplib::Request&,
                                           httplib::Response& res) {
      answer(options_.health_check, res);
    });
    server_.Get("/readyz", [this, answer](const httplib::Request&,
                                          httplib::Response& res) {
      answer(options_.readiness_check, res);
    });

    if (options_.port == 0) {
      port_ = server_.bind_to_any_port(options_.address);
      if (port_ <= 0) {
        return absl::UnavailableError(absl::StrCat(
            "MetricsServer: cannot bind ", options_.address, " on any port"));
      }
    } else {
      if (!server_.bind_to_port(options_.address, options_.port)) {
        return absl::UnavailableError(
            absl::StrCat("MetricsServer: cannot bind ", options_.address, ":",
                         options_.port, " (in use?)"));
      }
      port_ = options_.port;
    }
    absl::MutexLock lock(&stop_mu_);
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "weir-metrics");
      server_.listen_after_bind();
      // If listening failed before the queue was made, release Start().
      if (!running_.HasBeenNotified()) running_.Notify();
    });
    running_.WaitForNotification();
    if (!server_.is_running()) {
      thread_.join();
      return absl::UnavailableError("MetricsServer: the listener failed");
    }
    return absl::OkStatus();
  }

  void Stop() {
    absl::MutexLock lock(&stop_mu_);
    if (!thread_.joinable()) return;
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  const std::string& address() const { return options_.address; }

 private:
  const MetricsRegistry* const registry_;
  const MetricsServerOptions options_;
  httplib::Server server_;
  absl::Notification running_;
  int port_ = 0;
  // Serializes Stop() calls from several threads.
  absl::Mutex stop_mu_;
  std::thread thread_ ABSL_GUARDED_BY(stop_mu_);
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const MetricsRegistry* registry, MetricsServerOptions options) {
  if (registry == nullptr) {
    return absl::InvalidArgumentError("MetricsServer: registry is null");
  }
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(registry, std::move(options));
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Stop() { impl_->Stop(); }

int MetricsServer::port() const { return impl_->port(); }

const std::string& MetricsServer::address() const { return impl_->address(); }

std::string MetricsServer::url() const {
  const std::string& address = impl_->address();
  if (address.find(':') != std::string::npos) {
    return absl::StrCat("http://[", address, "]:", port(), "/metrics");
  }
  return absl::StrCat("http://", address, ":", port(), "/metrics");
}

}  // namespace weir
