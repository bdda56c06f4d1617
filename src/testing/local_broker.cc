#include "weir/testing/local_broker.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

constexpr absl::string_view kErrorPrefix = "error: ";

// Limits the tool enforces too; checked here so a bad option fails before a
// process starts.
constexpr int kMaxBrokers = 100;
constexpr int kMaxPartitions = 10000;

using internal::Sv;

absl::Status ValidateTopicName(absl::string_view field,
                               absl::string_view name) {
  if (name.empty() || name.size() > 249) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be 1 to 249 characters"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": may hold only [a-zA-Z0-9._-], got '", name, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePartitions(absl::string_view field, int partitions) {
  if (partitions < 1 || partitions > kMaxPartitions) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must be in [1, ", kMaxPartitions, "], got ", partitions));
  }
  return absl::OkStatus();
}

// A word of the command protocol: non-empty, no whitespace.
absl::Status ValidateWord(absl::string_view field, absl::string_view word) {
  if (word.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": empty"));
  }
  for (char c : word) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": may not contain whitespace"));
    }
  }
  return absl::OkStatus();
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status));
  }
  return absl::StrCat("wait status ", status);
}

// Writes to the child's stdin with SIGPIPE blocked in this thread, and
// swallows the SIGPIPE a dead child's pipe raises, so the caller's process
// survives a broker that has exited.
absl::Status WriteWithoutSigpipe(testing::Subprocess& process,
                                 absl::string_view data) {
  sigset_t pipe_set;
  sigset_t old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  absl::Status status =
      process.WriteStdin(std::string_view(data.data(), data.size()));
  if (!status.ok() && !was_pending) {
    const timespec no_wait = {0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return status;
}

}  // namespace

absl::Status LocalBroker::Options::Validate() const {
  if (binary_path.empty()) {
    return absl::InvalidArgumentError("binary_path: required");
  }
  if (brokers < 1 || brokers > kMaxBrokers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "brokers: must be in [1, ", kMaxBrokers, "], got ", brokers));
  }
  for (size_t i = 0; i < topics.size(); ++i) {
    WEIR_RETURN_IF_ERROR(ValidateTopicName(absl::StrCat("topics[", i, "].name"),
                                           topics[i].name));
    WEIR_RETURN_IF_ERROR(ValidatePartitions(
        absl::StrCat("topics[", i, "].partitions"), topics[i].partitions));
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LocalBroker>> LocalBroker::Start(
    const Options& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (access(options.binary_path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("binary_path: no executable at '", options.binary_path,
                     "' (build the weir-broker target)"));
  }
  std::vector<std::string> argv = {options.binary_path,
                                   absl::StrCat("--brokers=", options.brokers)};
  for (const Topic& topic : options.topics) {
    argv.push_back(absl::StrCat("--topic=", topic.name, ":", topic.partitions));
  }
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  // WEIR_BROKER_DEBUG=mock,cgrp puts the broker's own log of every request
  // and group state change in the test's output, to read a failure by.
  if (const char* debug = std::getenv("WEIR_BROKER_DEBUG");
      debug != nullptr && *debug != '\0') {
    argv.push_back(absl::StrCat("--debug=", debug));
  }

  testing::SubprocessOptions process_options;
  process_options.pipe_stdin = true;
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<testing::Subprocess> process,
                        testing::Subprocess::Start(argv, process_options));
  absl::StatusOr<std::string> line = process->ReadLine(options.timeout);
  if (!line.ok()) {
    if (absl::IsOutOfRange(line.status())) {
      absl::StatusOr<int> wait_status = process->Wait(options.timeout);
      return absl::FailedPreconditionError(absl::StrCat(
          "weir-broker exited before it was ready (",
          wait_status.ok() ? DescribeWaitStatus(*wait_status)
                           : std::string(wait_status.status().message()),
          "); its stderr says why"));
    }
    return line.status();
  }
  absl::string_view bootstrap = *line;
  if (!absl::ConsumePrefix(&bootstrap, "bootstrap=") || bootstrap.empty()) {
    return absl::InternalError(
        absl::StrCat("weir-broker printed '", *line,
                     "' where 'bootstrap=<host:port,...>' was expected"));
  }
  return std::unique_ptr<LocalBroker>(new LocalBroker(
      std::move(process), std::string(bootstrap), options.timeout));
}

LocalBroker::LocalBroker(std::unique_ptr<testing::Subprocess> process,
                         std::string bootstrap, absl::Duration timeout)
    : process_(std::move(process)),
      bootstrap_(std::move(bootstrap)),
      timeout_(timeout) {}

LocalBroker::~LocalBroker() {
  // End of stdin is the tool's orderly shutdown; the Subprocess destructor
  // kills it if that takes too long.
  process_->CloseStdin();
  (void)process_->Wait(timeout_);
}

pid_t LocalBroker::pid() const { return process_->pid(); }

absl::Status LocalBroker::Command(std::string_view line) {
  const absl::string_view command = Sv(line);
  if (command.find('\n') != absl::string_view::npos) {
    return absl::InvalidArgumentError("command: one line only");
  }
  if (stopped_ || process_->exited()) {
    return absl::FailedPreconditionError("weir-broker has stopped");
  }
  absl::Status written =
      WriteWithoutSigpipe(*process_, absl::StrCat(command, "\n"));
  if (!written.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("weir-broker (pid ", process_->pid(),
                     ") does not take commands: ", written.message()));
  }
  absl::StatusOr<std::string> reply = process_->ReadLine(timeout_);
  if (absl::IsOutOfRange(reply.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("weir-broker (pid ", process_->pid(),
                     ") exited before answering '", command, "'"));
  }
  if (!reply.ok()) return reply.status();
  if (*reply == "ok") return absl::OkStatus();
  absl::string_view reason = *reply;
  if (absl::ConsumePrefix(&reason, kErrorPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weir-broker rejected '", command, "': ", reason));
  }
  return absl::InternalError(
      absl::StrCat("weir-broker answered '", *reply, "' to '", command, "'"));
}

absl::Status LocalBroker::SetBrokerDown(int broker_id) {
  return Command(absl::StrCat("down ", broker_id));
}

absl::Status LocalBroker::SetBrokerUp(int broker_id) {
  return Command(absl::StrCat("up ", broker_id));
}

absl::Status LocalBroker::SetLeader(std::string_view topic, int partition,
                                    int broker_id) {
  WEIR_RETURN_IF_ERROR(ValidateWord("topic", Sv(topic)));
  return Command(
      absl::StrCat("leader ", Sv(topic), " ", partition, " ", broker_id));
}

absl::Status LocalBroker::SetRtt(int broker_id, absl::Duration rtt) {
  if (rtt < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rtt: must not be negative");
  }
  return Command(
      absl::StrCat("rtt ", broker_id, " ", absl::ToInt64Milliseconds(rtt)));
}

absl::Status LocalBroker::PushRequestErrors(std::string_view api,
                                            std::string_view error, int count) {
  WEIR_RETURN_IF_ERROR(ValidateWord("api", Sv(api)));
  WEIR_RETURN_IF_ERROR(ValidateWord("error", Sv(error)));
  if (count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("count: must be positive, got ", count));
  }
  return Command(absl::StrCat("error ", Sv(api), " ", Sv(error), " ", count));
}

absl::Status LocalBroker::ClearRequestErrors(std::string_view api) {
  WEIR_RETURN_IF_ERROR(ValidateWord("api", Sv(api)));
  return Command(absl::StrCat("clear ", Sv(api)));
}

absl::Status LocalBroker::CreateTopic(std::string_view name, int partitions) {
  WEIR_RETURN_IF_ERROR(ValidateTopicName("name", Sv(name)));
  WEIR_RETURN_IF_ERROR(ValidatePartitions("partitions", partitions));
  return Command(absl::StrCat("topic ", Sv(name), " ", partitions));
}

absl::Status LocalBroker::Stop() {
  if (stopped_) return absl::OkStatus();
  absl::Status quit = Command("quit");
  stopped_ = true;
  if (!quit.ok() && !process_->exited()) return quit;
  WEIR_ASSIGN_OR_RETURN(int wait_status, process_->Wait(timeout_));
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return absl::InternalError(absl::StrCat("weir-broker ended with ",
                                            DescribeWaitStatus(wait_status)));
  }
  return absl::OkStatus();
}

}  // namespace weir
