// -----------------------------------------------------------------------------
// File: testing/redis_server.h
// -----------------------------------------------------------------------------
//
// A real `redis-server` for tests: started on a free port on 127.0.0.1 (and
// on a Unix socket) with its config, data and log in a fresh temporary
// directory, snapshots off, and an optional password and append-only file.
// `Start` returns once the server answers PING.
//
// `Stop` (SIGTERM, a clean shutdown) or `Kill` (SIGKILL) takes it down;
// `Restart` brings it back on the same port with the same directory, so
// with `appendonly` the data survives. `Pause` and `Resume` (SIGSTOP,
// SIGCONT) make a server that accepts connections but never answers, to
// test timeouts. The destructor kills the server and removes its directory.
//
// The password is written to the config file, never to a command line.
//
// Threading: one thread owns a RedisServer; the server is a separate
// process.
//
// Example:
//   weir::testing::RedisServerOptions options;
//   options.appendonly = true;
//   WEIR_ASSIGN_OR_RETURN(auto redis,
//                         weir::testing::RedisServer::Start(options));
//   weir::RedisSinkOptions sink;
//   sink.port = redis->port();
//   ...
//   WEIR_RETURN_IF_ERROR(redis->Stop());
//   WEIR_RETURN_IF_ERROR(redis->Restart());

#ifndef WEIR_TESTING_REDIS_SERVER_H_
#define WEIR_TESTING_REDIS_SERVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace testing {

struct RedisServerOptions {
  // The server executable (searched in PATH).
  // Default: "redis-server"
  std::string binary = "redis-server";

  // Keep an append-only file, so that data survives Stop/Kill and Restart
  // (written before the replies of each event-loop pass, unless a reply was
  // held back by a full socket; not fsynced, as a process kill does not
  // need it). Default: false
  bool appendonly = false;

  // requirepass: clients must AUTH with it. Default: unset (no password)
  std::optional<std::string> password;

  // More config lines, e.g. "maxmemory 10mb". Default: {}
  std::vector<std::string> extra_config;

  // How long to wait for the server to answer PING.
  // Default: absl::Seconds(20)
  absl::Duration startup_timeout = absl::Seconds(20);
};

class RedisServer {
 public:
  // kUnavailable if the server did not come up (its log is quoted),
  // kFailedPrecondition if redis-server is not installed.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      const RedisServerOptions& options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  // The Unix socket the server also listens on.
  std::string unix_socket() const;
  // Where the config, data and log live.
  const std::string& dir() const { return dir_.path(); }
  bool running() const { return child_ != nullptr && !child_->exited(); }

  // Clean shutdown (SIGTERM; SIGKILL after 10 s) and wait.
  absl::Status Stop();
  // SIGKILL and wait.
  void Kill();
  // Starts the server again, same port and directory. REQUIRES: stopped.
  absl::Status Restart();

  // SIGSTOP / SIGCONT: the port keeps accepting connections, nothing
  // answers until Resume.
  absl::Status Pause();
  absl::Status Resume();

 private:
  RedisServer(RedisServerOptions options, TempDir dir, int port)
      : options_(std::move(options)), dir_(std::move(dir)), port_(port) {}
  absl::Status Launch();

  RedisServerOptions options_;
  TempDir dir_;
  int port_;
  std::string host_ = "127.0.0.1";
  std::unique_ptr<Subprocess> child_;
};

// Sends PING to 127.0.0.1:`port` until the server answers +PONG (or
// -NOAUTH, which also means it serves), or `timeout` passes.
absl::Status WaitForRedis(int port, absl::Duration timeout);

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_REDIS_SERVER_H_
