// -----------------------------------------------------------------------------
// File: testing/subprocess.h
// -----------------------------------------------------------------------------
//
// A child process for tests that start real servers (the local broker,
// redis-server, s3rver) or kill a pipeline process: spawn with arguments
// and environment, read its stdout line by line with a deadline, send it
// signals, and reap it. The destructor kills (SIGKILL) and reaps a child
// that is still running, so a failing test leaves no server behind.
//
// Threading: one thread uses a Subprocess. Starts no threads.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto broker, weir::testing::Subprocess::Start(
//       {"./weir-broker", "--topic=payments:16"}));
//   WEIR_ASSIGN_OR_RETURN(std::string line,
//       broker->ReadLineMatching("bootstrap=", absl::Seconds(10)));

#ifndef WEIR_TESTING_SUBPROCESS_H_
#define WEIR_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace weir {
namespace testing {

struct SubprocessOptions {
  // Extra environment variables, "NAME=value", added to the parent's.
  std::vector<std::string> env;
  // Working directory of the child. Default: the parent's.
  std::string cwd;
  // Give the child a pipe on stdin (WriteStdin/CloseStdin). Default: false,
  // stdin is /dev/null.
  bool pipe_stdin = false;
  // Also capture stderr into the stdout pipe. Default: false, stderr is
  // inherited (visible in the test log).
  bool merge_stderr = false;
};

class Subprocess {
 public:
  // Starts argv[0] (searched in PATH if it has no '/') with `argv`.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv,
      const SubprocessOptions& options = {});

  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // The next line of the child's stdout, without the newline. Returns
  // kDeadlineExceeded after `timeout`, kOutOfRange at end of output.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);

  // Reads lines until one contains `needle`; returns that line.
  absl::StatusOr<std::string> ReadLineMatching(std::string_view needle,
                                               absl::Duration timeout);

  // Everything the child printed so far and until it closes stdout or
  // `timeout` passes.
  absl::StatusOr<std::string> ReadAll(absl::Duration timeout);

  absl::Status WriteStdin(std::string_view data);
  void CloseStdin();

  absl::Status Signal(int signo);

  // Waits for the child to exit; returns its wait status (as waitpid).
  // kDeadlineExceeded if it is still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // True once the child has been reaped.
  bool exited() const { return exited_; }

  // SIGKILL and reap, if still running.
  void Kill();

 private:
  Subprocess(pid_t pid, int out_fd, int in_fd)
      : pid_(pid), out_fd_(out_fd), in_fd_(in_fd) {}

  pid_t pid_;
  int out_fd_;
  int in_fd_;
  bool exited_ = false;
  int wait_status_ = 0;
  std::string buffer_;
  bool eof_ = false;
};

// A free TCP port on 127.0.0.1 (bound, then released, so a child can take
// it; another process could take it first, which callers retry around).
// Picked at random below the kernel's ephemeral range when there is room,
// so that no connection is ever given it while its server is down.
absl::StatusOr<int> PickFreePort();

// Waits until something accepts TCP connections on 127.0.0.1:`port`.
absl::Status WaitForPort(int port, absl::Duration timeout);

// A fresh temporary directory under $TMPDIR (or /tmp); removed, with its
// contents, by the returned object's destructor.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create(std::string_view prefix = "weir");
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) {
    other.path_.clear();
  }
  TempDir& operator=(TempDir&& other) noexcept;
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_SUBPROCESS_H_
