#include "weir/testing/http_fault_proxy.h"

#include <httplib.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace weir {
namespace testing {
namespace {

// Headers that describe one hop, not the message; httplib sets its own.
bool IsHopHeader(const std::string& name) {
  std::string lower = absl::AsciiStrToLower(name);
  return lower == "content-length" || lower == "transfer-encoding" ||
         lower == "connection" || lower == "keep-alive" || lower == "expect" ||
         lower == "remote_addr" || lower == "remote_port" ||
         lower == "local_addr" || lower == "local_port";
}

std::string ErrorCode(int status) {
  if (status == 503) return "ServiceUnavailable";
  if (status == 500) return "InternalError";
  return "SlowDown";
}

}  // namespace

class HttpFaultProxy::Impl {
 public:
  explicit Impl(int upstream_port) : upstream_port_(upstream_port) {}

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Start() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res);
    };
    server_.Get(".*", handler);
    server_.Put(".*", handler);
    server_.Post(".*", handler);
    server_.Delete(".*", handler);
    server_.Patch(".*", handler);
    server_.Options(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) {
      return absl::UnavailableError("HttpFaultProxy: cannot bind 127.0.0.1");
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return absl::OkStatus();
  }

  int port() const { return port_; }

  void FailNext(int n, int status) {
    absl::MutexLock lock(&mu_);
    fail_next_ += n;
    fail_status_ = status;
  }

  void DelayNext(int n, absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    delay_next_ += n;
    delay_ = delay;
  }

  void DropNext(int n) {
    absl::MutexLock lock(&mu_);
    drop_next_ += n;
  }

  void ClearFaults() {
    absl::MutexLock lock(&mu_);
    fail_next_ = 0;
    delay_next_ = 0;
    drop_next_ = 0;
    ++release_generation_;
  }

  std::vector<std::string> RequestLog() const {
    absl::MutexLock lock(&mu_);
    return log_;
  }
  int injected_failures() const {
    absl::MutexLock lock(&mu_);
    return injected_failures_;
  }
  int injected_delays() const {
    absl::MutexLock lock(&mu_);
    return injected_delays_;
  }
  int injected_drops() const {
    absl::MutexLock lock(&mu_);
    return injected_drops_;
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    int fail_status = 0;
    absl::Duration delay = absl::ZeroDuration();
    bool drop = false;
    int64_t generation = 0;
    {
      absl::MutexLock lock(&mu_);
      log_.push_back(absl::StrCat(req.method, " ", req.target));
      generation = release_generation_;
      if (fail_next_ > 0) {
        --fail_next_;
        ++injected_failures_;
        fail_status = fail_status_;
      } else if (delay_next_ > 0) {
        --delay_next_;
        ++injected_delays_;
        delay = delay_;
      } else if (drop_next_ > 0) {
        --drop_next_;
        ++injected_drops_;
        drop = true;
      }
    }
    if (fail_status != 0) {
      res.status = fail_status;
      res.set_content(
          absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
                       "<Code>",
                       ErrorCode(fail_status),
                       "</Code><Message>Injected by the test proxy</Message>"
                       "</Error>"),
          "application/xml");
      return;
    }
    Forward(req, res);
    if (delay > absl::ZeroDuration()) {
      // Hold the response; the destructor and ClearFaults cut the wait
      // short.
      absl::MutexLock lock(&mu_);
      auto released = [this, generation]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || release_generation_ != generation;
      };
      mu_.AwaitWithTimeout(absl::Condition(&released), delay);
    }
    if (drop) {
      // Announce a body and fail to produce it: httplib sends the status
      // line and headers, then closes the connection.
      const size_t length = std::max<size_t>(1, res.body.size());
      res.body.clear();
      res.set_content_provider(
          length, "application/octet-stream",
          [](size_t, size_t, httplib::DataSink&) { return false; });
    }
  }

  void Forward(const httplib::Request& req, httplib::Response& res) {
    httplib::Client client("127.0.0.1", upstream_port_);
    client.set_url_encode(false);
    client.set_decompress(false);
    client.set_keep_alive(false);
    client.set_read_timeout(60, 0);
    client.set_write_timeout(60, 0);
    httplib::Request up;
    up.method = req.method;
    up.path = req.target;
    for (const auto& [name, value] : req.headers) {
      if (!IsHopHeader(name)) up.headers.emplace(name, value);
    }
    up.body = req.body;
    httplib::Result result = client.send(up);
    if (!result) {
      res.status = 502;
      res.set_content(
          absl::StrCat("<Error><Code>BadGateway</Code><Message>upstream: ",
                       httplib::to_string(result.error()),
                       "</Message></Error>"),
          "application/xml");
      return;
    }
    res.status = result->status;
    std::string content_type;
    for (const auto& [name, value] : result->headers) {
      if (absl::AsciiStrToLower(name) == "content-type") {
        content_type = value;
        continue;
      }
      if (!IsHopHeader(name)) res.headers.emplace(name, value);
    }
    if (req.method == "HEAD") {
      // httplib derives Content-Length from the body, and a HEAD response
      // has none: announce the upstream's length through a provider that
      // is never asked for bytes.
      size_t length = 0;
      if (result->has_header("Content-Length")) {
        length = std::stoull(result->get_header_value("Content-Length"));
      }
      res.set_content_provider(
          length, content_type,
          [](size_t, size_t, httplib::DataSink&) { return false; });
      return;
    }
    res.body = std::move(result->body);
    if (!content_type.empty()) res.set_header("Content-Type", content_type);
  }

  const int upstream_port_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_status_ ABSL_GUARDED_BY(mu_) = 503;
  int delay_next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  int injected_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int injected_delays_ ABSL_GUARDED_BY(mu_) = 0;
  int drop_next_ ABSL_GUARDED_BY(mu_) = 0;
  int injected_drops_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by ClearFaults: held responses of earlier generations go out.
  int64_t release_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<HttpFaultProxy>> HttpFaultProxy::Start(
    int upstream_port) {
  auto impl = std::make_unique<Impl>(upstream_port);
  absl::Status status = impl->Start();
  if (!status.ok()) return status;
  return std::unique_ptr<HttpFaultProxy>(new HttpFaultProxy(std::move(impl)));
}

HttpFaultProxy::HttpFaultProxy(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
HttpFaultProxy::~HttpFaultProxy() = default;

int HttpFaultProxy::port() const { return impl_->port(); }
std::string HttpFaultProxy::endpoint() const {
  return absl::StrCat("http://127.0.0.1:", impl_->port());
}
void HttpFaultProxy::FailNext(int n, int status) { impl_->FailNext(n, status); }
void HttpFaultProxy::DelayNext(int n, absl::Duration delay) {
  impl_->DelayNext(n, delay);
}
std::vector<std::string> HttpFaultProxy::RequestLog() const {
  return impl_->RequestLog();
}
int HttpFaultProxy::injected_failures() const {
  return impl_->injected_failures();
}
int HttpFaultProxy::injected_delays() const { return impl_->injected_delays(); }
void HttpFaultProxy::DropNext(int n) { impl_->DropNext(n); }
void HttpFaultProxy::ClearFaults() { impl_->ClearFaults(); }
int HttpFaultProxy::injected_drops() const { return impl_->injected_drops(); }

}  // namespace testing
}  // namespace weir
