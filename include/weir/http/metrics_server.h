// -----------------------------------------------------------------------------
// File: http/metrics_server.h
// -----------------------------------------------------------------------------
//
// `MetricsServer` serves a `MetricsRegistry` over HTTP for Prometheus:
//   GET /metrics   200, Content-Type "text/plain; version=0.0.4;
//                  charset=utf-8", the registry's `PrometheusText()`.
//   GET /healthz   200 "ok\n", or 503 with the message of a failing
//                  `health_check`.
//   GET /readyz    the same for `readiness_check`.
//   anything else  404.
// It listens on 127.0.0.1 by default and refuses an address that is not a
// loopback address unless `allow_non_loopback` is set: metrics can reveal
// key names (the hottest keys), so exposing them is an explicit decision.
//
// It lives in its own module (weir_http, on cpp-httplib) so that weir_core
// stays free of an HTTP dependency.
//
// Threading: thread-safe. `Start` starts exactly one thread, named
// "weir-metrics", which accepts connections and answers requests one at a
// time (a scrape is small and fast; a client that stalls holds the thread
// for at most `io_timeout`). Each connection serves one request and is
// closed. `/metrics` calls the registry's callback gauges on that thread.
// `Stop()` (or the destructor) closes the socket and joins the thread. The
// registry must outlive the server.
//
// Example:
//   weir::MetricsRegistry registry;
//   WEIR_ASSIGN_OR_RETURN(auto server,
//                         weir::MetricsServer::Start(&registry, {}));
//   std::string url = server->url();  // "http://127.0.0.1:41234/metrics"
//   ...
//   server->Stop();

#ifndef WEIR_HTTP_METRICS_SERVER_H_
#define WEIR_HTTP_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/metrics.h"

namespace weir {

struct MetricsServerOptions {
  // Address to listen on: an IP literal ("127.0.0.1", "::1") or
  // "localhost". Only loopback addresses are accepted unless
  // `allow_non_loopback` is set.
  // Default: "127.0.0.1"
  std::string address = "127.0.0.1";

  // TCP port; 0 picks a free one (read it back with `port()`).
  // Default: 0
  int port = 0;

  // Permit a non-loopback `address` (e.g. "0.0.0.0" inside a container
  // whose port is published). Any host name is then accepted.
  // Default: false
  bool allow_non_loopback = false;

  // Longest a client may take to send its request or read the response;
  // bounds how long one stalled client blocks the others. Must be > 0.
  // Default: absl::Seconds(5)
  absl::Duration io_timeout = absl::Seconds(5);

  // Answers /healthz: OK gives 200 "ok", an error 503 with its message.
  // Called on the server thread, so it must be thread-safe and must not
  // throw. Default: unset, always healthy.
  std::function<absl::Status()> health_check;

  // Answers /readyz, as `health_check` answers /healthz (e.g. 503 while a
  // service has no partitions or is restoring them). Default: unset, always
  // ready.
  std::function<absl::Status()> readiness_check;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

class MetricsServer {
 public:
  // Binds `options.address`:`options.port` and starts the server thread.
  // kInvalidArgument for bad options (a non-loopback address without
  // `allow_non_loopback` included) or a null registry; kUnavailable if the
  // address cannot be bound (the port is taken).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const MetricsRegistry* registry, MetricsServerOptions options = {});

  // Stops, as Stop().
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Closes the listening socket, lets a request in progress finish, and
  // joins the server thread. Idempotent.
  void Stop();

  // The bound port (the picked one when options.port was 0).
  int port() const;
  // The listen address as given in the options.
  const std::string& address() const;
  // "http://<address>:<port>/metrics", the IPv6 address in brackets.
  std::string url() const;

  class Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir

#endif  // WEIR_HTTP_METRICS_SERVER_H_
