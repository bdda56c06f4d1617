#include "weir/testing/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace testing {
namespace {

constexpr int kPortAttempts = 5;

// One PING on a fresh connection: the first reply line, or an error.
absl::StatusOr<std::string> PingOnce(int port, absl::Duration timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("connect failed");
  }
  constexpr char kPing[] = "PING\r\n";
  if (send(fd, kPing, sizeof(kPing) - 1, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof(kPing) - 1)) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string reply;
  char buf[256];
  while (reply.find("\r\n") == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError("no reply");
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

std::string ReadLog(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  constexpr size_t kTail = 2000;
  if (log.size() > kTail) log = log.substr(log.size() - kTail);
  return log;
}

bool InPath(const std::string& binary) {
  if (binary.find('/') != std::string::npos) {
    return access(binary.c_str(), X_OK) == 0;
  }
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (access(absl::StrCat(dir, "/", binary).c_str(), X_OK) == 0) return true;
  }
  return false;
}

}  // namespace

absl::Status WaitForRedis(int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(5);
  std::string last = "nothing";
  while (true) {
    absl::StatusOr<std::string> reply = PingOnce(port, absl::Seconds(1));
    if (reply.ok()) {
      if (*reply == "+PONG" || absl::StartsWith(*reply, "-NOAUTH")) {
        return absl::OkStatus();
      }
      last = *reply;  // e.g. -LOADING
    } else {
      last = std::string(reply.status().message());
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("redis on 127.0.0.1:", port, " did not answer PING in ",
                       absl::FormatDuration(timeout), " (last: ", last, ")"));
    }
    // Readiness of another process: poll with backoff until the deadline.
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(100));
  }
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    const RedisServerOptions& options) {
  if (!InPath(options.binary)) {
    return absl::FailedPreconditionError(absl::StrCat(
        options.binary,
        " is not installed (Debian: apt-get install redis-server)"));
  }
  absl::Status last;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    WEIR_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("weir-redis"));
    WEIR_ASSIGN_OR_RETURN(int port, PickFreePort());
    std::unique_ptr<RedisServer> server(
        new RedisServer(options, std::move(dir), port));
    last = server->Launch();
    if (last.ok()) return server;
    // Most likely another process took the port first: try another.
  }
  return last;
}

RedisServer::~RedisServer() { Kill(); }

std::string RedisServer::unix_socket() const {
  return dir_.path() + "/redis.sock";
}

absl::Status RedisServer::Launch() {
  const std::string conf = dir_.path() + "/redis.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << "port " << port_ << "\n"
        << "bind 127.0.0.1\n"
        << "protected-mode no\n"
        << "daemonize no\n"
        << "dir " << dir_.path() << "\n"
        << "logfile " << dir_.path() << "/redis.log\n"
        << "unixsocket " << unix_socket() << "\n"
        << "unixsocketperm 700\n"
        << "save \"\"\n"
        << "appendonly " << (options_.appendonly ? "yes" : "no")
        << "\n"
        // Redis writes the append-only file before it sends the replies of
        // that event-loop pass (only a reply held back earlier by a full
        // socket can go out first), so the small replies the tests get are
        // in the file and survive Kill. fsync would matter only if the
        // machine crashed, and fsync on every write makes replies wait for
        // the disk, past a client's command timeout when parallel tests
        // load it.
        << "appendfsync no\n";
    if (options_.password.has_value()) {
      out << "requirepass \"" << *options_.password << "\"\n";
    }
    for (const std::string& line : options_.extra_config) out << line << "\n";
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("cannot write ", conf));
    }
  }
  WEIR_ASSIGN_OR_RETURN(child_, Subprocess::Start({options_.binary, conf}));
  absl::Status ready = WaitForRedis(port_, options_.startup_timeout);
  if (!ready.ok() || child_->exited()) {
    Kill();
    return absl::UnavailableError(absl::StrCat(
        "redis-server did not start on port ", port_, ": ", ready.message(),
        "; log:\n", ReadLog(dir_.path() + "/redis.log")));
  }
  return absl::OkStatus();
}

absl::Status RedisServer::Stop() {
  if (!running()) return absl::OkStatus();
  child_->Signal(SIGCONT).IgnoreError();  // a paused server cannot exit
  WEIR_RETURN_IF_ERROR(child_->Signal(SIGTERM));
  if (!child_->Wait(absl::Seconds(10)).ok()) child_->Kill();
  child_.reset();
  return absl::OkStatus();
}

void RedisServer::Kill() {
  if (child_ != nullptr) child_->Kill();
  child_.reset();
}

absl::Status RedisServer::Restart() {
  if (running()) {
    return absl::FailedPreconditionError("redis-server is still running");
  }
  return Launch();
}

absl::Status RedisServer::Pause() {
  if (!running()) return absl::FailedPreconditionError("not running");
  return child_->Signal(SIGSTOP);
}

absl::Status RedisServer::Resume() {
  if (!running()) return absl::FailedPreconditionError("not running");
  return child_->Signal(SIGCONT);
}

}  // namespace testing
}  // namespace weir
