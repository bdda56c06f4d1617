// -----------------------------------------------------------------------------
// File: testing/http_fault_proxy.h
// -----------------------------------------------------------------------------
//
// An HTTP proxy for tests that puts faults between a client and a server on
// loopback: it forwards each request to the upstream server unchanged (the
// Host header included, so SigV4 signatures still verify) and sends back the
// upstream's answer, except when told to
//   - answer the next N requests itself with an error status (503 by
//     default) and an S3-style XML error body, without forwarding them; or
//   - hold back the next N responses for a while (past the client's
//     time-out), after forwarding the requests; or
//   - forward the next N requests, then cut each connection in the middle
//     of the response (status line and headers sent, body not): the
//     request took effect upstream, but the client sees a broken
//     connection.
//
// Bodies are buffered whole, so it suits test-sized objects (tens of MiB).
//
// Threading: thread-safe. It runs an HTTP server on its own threads (a
// listener and a small worker pool), stopped by the destructor, which also
// releases held responses at once.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto proxy,
//                         weir::testing::HttpFaultProxy::Start(s3rver->port()));
//   options.endpoint = proxy->endpoint();
//   proxy->FailNext(2);  // two 503s, then requests go through
//   proxy->DelayNext(1, absl::Seconds(5));

#ifndef WEIR_TESTING_HTTP_FAULT_PROXY_H_
#define WEIR_TESTING_HTTP_FAULT_PROXY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace weir {
namespace testing {

class HttpFaultProxy {
 public:
  // Starts a proxy on 127.0.0.1 (a free port) in front of
  // 127.0.0.1:`upstream_port`.
  static absl::StatusOr<std::unique_ptr<HttpFaultProxy>> Start(
      int upstream_port);
  ~HttpFaultProxy();

  int port() const;
  // "http://127.0.0.1:<port>"
  std::string endpoint() const;

  // Answers the next `n` requests with `status` and an XML error body whose
  // code is ServiceUnavailable (503), InternalError (500) or SlowDown
  // (other statuses). Adds to any failures still pending.
  void FailNext(int n, int status = 503);

  // Forwards the next `n` requests but holds each response for `delay`
  // (or until the proxy is destroyed) before sending it.
  void DelayNext(int n, absl::Duration delay);

  // Forwards the next `n` requests, then closes each connection after the
  // response's headers, before its body.
  void DropNext(int n);

  // Drops every fault still pending and releases the responses held now.
  void ClearFaults();

  // "METHOD target" of every request received so far, in arrival order,
  // including the ones answered with an injected fault.
  std::vector<std::string> RequestLog() const;

  // Number of requests answered with an injected status, and delayed.
  int injected_failures() const;
  int injected_delays() const;
  int injected_drops() const;

  class Impl;

 private:
  explicit HttpFaultProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_HTTP_FAULT_PROXY_H_
