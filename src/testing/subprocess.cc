#include "weir/testing/subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace weir {
namespace testing {
namespace {

absl::Status Errno(std::string_view what) {
  return absl::InternalError(
      absl::StrCat(std::string(what), ": ", std::strerror(errno)));
}

int RemainingMs(absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const SubprocessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("argv: empty");
  int out_pipe[2];
  int in_pipe[2] = {-1, -1};
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Errno("pipe");
  if (options.pipe_stdin && pipe2(in_pipe, O_CLOEXEC) != 0)
    return Errno("pipe");

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const std::string& e : options.env) env_storage.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_argv;
  for (std::string& a : args) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    // Dies with the test: a test process that ends abnormally (a crash, a
    // sanitizer report) runs no destructor, and a server left running
    // would keep ctest's output pipe open until ctest's timeout.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
      _exit(127);
    }
    dup2(out_pipe[1], STDOUT_FILENO);
    if (options.merge_stderr) dup2(out_pipe[1], STDERR_FILENO);
    if (options.pipe_stdin) {
      dup2(in_pipe[0], STDIN_FILENO);
    } else {
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    }
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(127);
    environ = envp.data();
    execvp(c_argv[0], c_argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  if (options.pipe_stdin) close(in_pipe[0]);
  return std::unique_ptr<Subprocess>(
      new Subprocess(pid, out_pipe[0], options.pipe_stdin ? in_pipe[1] : -1));
}

Subprocess::~Subprocess() {
  Kill();
  if (out_fd_ >= 0) close(out_fd_);
  CloseStdin();
}

absl::StatusOr<std::string> Subprocess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (eof_) {
      if (!buffer_.empty()) {
        std::string line = std::move(buffer_);
        buffer_.clear();
        return line;
      }
      return absl::OutOfRangeError("child closed its output");
    }
    pollfd p{out_fd_, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r < 0 && errno != EINTR) return Errno("poll");
    if (r == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no complete line from pid ", pid_, " within ",
                       absl::FormatDuration(timeout)));
    }
    if (r > 0) {
      char buf[4096];
      ssize_t n = read(out_fd_, buf, sizeof(buf));
      if (n < 0 && errno != EINTR) return Errno("read");
      if (n == 0) eof_ = true;
      if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
    }
  }
}

absl::StatusOr<std::string> Subprocess::ReadLineMatching(
    std::string_view needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<std::string> line = ReadLine(deadline - absl::Now());
    if (!line.ok()) return line.status();
    if (line->find(needle) != std::string::npos) return line;
  }
}

absl::StatusOr<std::string> Subprocess::ReadAll(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string all;
  while (true) {
    absl::StatusOr<std::string> line = ReadLine(deadline - absl::Now());
    if (absl::IsOutOfRange(line.status())) return all;
    if (!line.ok()) return line.status();
    absl::StrAppend(&all, *line, "\n");
  }
}

absl::Status Subprocess::WriteStdin(std::string_view data) {
  if (in_fd_ < 0) return absl::FailedPreconditionError("stdin is not a pipe");
  while (!data.empty()) {
    ssize_t n = write(in_fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write to child stdin");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

void Subprocess::CloseStdin() {
  if (in_fd_ >= 0) {
    close(in_fd_);
    in_fd_ = -1;
  }
}

absl::Status Subprocess::Signal(int signo) {
  if (exited_) return absl::FailedPreconditionError("child already exited");
  if (kill(pid_, signo) != 0) return Errno("kill");
  return absl::OkStatus();
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  if (exited_) return wait_status_;
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(1);
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      wait_status_ = status;
      return status;
    }
    if (r < 0 && errno != EINTR) return Errno("waitpid");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running after ",
                       absl::FormatDuration(timeout)));
    }
    // Polling a child's exit: there is no fd to wait on without a
    // SIGCHLD handler, which a library must not install.
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(20));
  }
}

void Subprocess::Kill() {
  if (exited_ || pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exited_ = true;
  wait_status_ = status;
}

namespace {

// Binds a TCP socket to 127.0.0.1:`port` (0: any) without SO_REUSEADDR, so
// that it fails while anything, even a closed connection in TIME_WAIT,
// holds the port; returns the port bound, then closes the socket.
absl::StatusOr<int> BindAndRelease(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = Errno("bind");
    close(fd);
    return s;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

// The first port of the range the kernel gives to connections and to
// bind(0) (net.ipv4.ip_local_port_range), or 0 if it cannot be read.
int FirstEphemeralPort() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low)) return 0;
  return low;
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  // A port below the ephemeral range when there is room for one: the
  // kernel never hands such a port to a connection, so a server restarted
  // on it (RedisServer::Restart after an outage) cannot find it taken by a
  // connection made meanwhile, e.g. a client's own reconnect attempts.
  constexpr int kFloor = 10'000;
  const int low = FirstEphemeralPort();
  if (low > kFloor + 1'000) {
    static std::atomic<uint64_t> calls{0};
    std::mt19937_64 rng(static_cast<uint64_t>(absl::GetCurrentTimeNanos()) ^
                        (static_cast<uint64_t>(getpid()) << 32) ^
                        calls.fetch_add(1));
    std::uniform_int_distribution<int> pick(kFloor, low - 1);
    for (int attempt = 0; attempt < 64; ++attempt) {
      absl::StatusOr<int> port = BindAndRelease(pick(rng));
      if (port.ok()) return port;
    }
  }
  return BindAndRelease(0);
}

absl::Status WaitForPort(int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(5);
  while (true) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    int r = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    close(fd);
    if (r == 0) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("nothing listens on 127.0.0.1:", port, " after ",
                       absl::FormatDuration(timeout)));
    }
    // Readiness of another process's socket: retry with backoff until the
    // deadline.
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(100));
  }
}

absl::StatusOr<TempDir> TempDir::Create(std::string_view prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/",
                                   std::string(prefix), "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) return Errno("mkdtemp");
  return TempDir(templ);
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

}  // namespace testing
}  // namespace weir
