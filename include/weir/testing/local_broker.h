// -----------------------------------------------------------------------------
// File: testing/local_broker.h
// -----------------------------------------------------------------------------
//
// A `LocalBroker` runs the `weir-broker` tool (librdkafka's mock Kafka
// cluster on 127.0.0.1) as a child process for tests and demos: it starts
// the binary with the requested brokers and topics, returns the bootstrap
// address, and injects faults (a broker down or up, a leader move, response
// latency, request errors) through the tool's command protocol on stdin.
// Every fault method returns once the broker has applied the fault.
//
// The cluster lives in its own process, so consumers and pipelines under
// test can be killed and restarted while the log survives. It is bound by
// the mock cluster's limits in librdkafka 2.0.2: ports are picked by the
// kernel, and each partition keeps only about 5 MiB or 100,000 message sets
// (oldest dropped first), so large runs want many partitions and lz4.
//
// Destroying a `LocalBroker` closes the tool's stdin, which makes it exit,
// and kills it if it has not exited within `Options::timeout`.
//
// Part of the weir_testing module (it starts a process), not of weir::weir;
// the class keeps its name `weir::LocalBroker`.
//
// Threading: not thread-safe; one thread uses a LocalBroker. Starts no
// threads. Writing a command to a broker that has died returns an error
// rather than raising SIGPIPE in the caller.
//
// Example:
//   weir::LocalBroker::Options options;
//   options.binary_path = WEIR_BINARY_DIR "/weir-broker";
//   options.topics = {{"payments", 16}};
//   WEIR_ASSIGN_OR_RETURN(auto broker, weir::LocalBroker::Start(options));
//   consumer_conf.Set("bootstrap.servers", broker->bootstrap());
//   WEIR_RETURN_IF_ERROR(broker->SetBrokerDown(1));
//   ...
//   WEIR_RETURN_IF_ERROR(broker->SetBrokerUp(1));

#ifndef WEIR_TESTING_LOCAL_BROKER_H_
#define WEIR_TESTING_LOCAL_BROKER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace weir {

namespace testing {
class Subprocess;
}  // namespace testing

class LocalBroker {
 public:
  struct Topic {
    // Kafka topic name: 1 to 249 of [a-zA-Z0-9._-].
    std::string name;
    // Number of partitions, 1 to 10000. Default: 1
    int partitions = 1;
  };

  struct Options {
    // Path of the `weir-broker` executable, e.g. WEIR_BINARY_DIR
    // "/weir-broker". Required.
    std::string binary_path;

    // Brokers in the cluster, with ids 1..brokers. Default: 1
    int brokers = 1;

    // Topics created before `Start` returns. Default: none
    std::vector<Topic> topics;

    // How long to wait for the bootstrap address at start, for each
    // command's answer, and for the tool to exit at `Stop`.
    // Default: absl::Seconds(10)
    absl::Duration timeout = absl::Seconds(10);

    // Extra arguments for the tool, e.g. {"--debug=mock"}. Default: none.
    // The environment variable WEIR_BROKER_DEBUG, when set, adds
    // --debug=<its value> to every broker a test starts.
    std::vector<std::string> extra_args;

    // Returns kInvalidArgument naming the first bad field.
    absl::Status Validate() const;
  };

  // Starts the tool and waits for its bootstrap address. Fails with
  // kInvalidArgument for bad options, kNotFound if `binary_path` is not an
  // executable, and kFailedPrecondition if the tool exits before it is
  // ready (its reason is on the inherited stderr).
  static absl::StatusOr<std::unique_ptr<LocalBroker>> Start(
      const Options& options);

  ~LocalBroker();
  LocalBroker(const LocalBroker&) = delete;
  LocalBroker& operator=(const LocalBroker&) = delete;

  // "127.0.0.1:port[,127.0.0.1:port...]", for `bootstrap.servers`.
  const std::string& bootstrap() const { return bootstrap_; }

  // The tool's process id.
  pid_t pid() const;

  // Disconnects broker `broker_id` (1..brokers, or -1 for all) and makes it
  // refuse new connections. Leaders do not move.
  absl::Status SetBrokerDown(int broker_id);

  // Makes broker `broker_id` (1..brokers, or -1 for all) accept connections
  // again.
  absl::Status SetBrokerUp(int broker_id);

  // Moves the leader of `topic`/`partition` to `broker_id`, or makes the
  // partition leaderless with -1.
  absl::Status SetLeader(std::string_view topic, int partition, int broker_id);

  // Delays every response of `broker_id` (1..brokers, or -1 for all) by
  // `rtt`, rounded down to milliseconds; zero removes the delay.
  absl::Status SetRtt(int broker_id, absl::Duration rtt);

  // Fails the next `count` requests of protocol API `api` ("Produce",
  // "Fetch", "Metadata", "OffsetCommit", ... or its ApiKey number) with
  // `error`, a librdkafka error name ("NOT_LEADER_FOR_PARTITION",
  // "_TRANSPORT" disconnects) or number.
  absl::Status PushRequestErrors(std::string_view api, std::string_view error,
                                 int count = 1);

  // Drops request errors still queued for `api`.
  absl::Status ClearRequestErrors(std::string_view api);

  // Creates another topic.
  absl::Status CreateTopic(std::string_view name, int partitions);

  // Sends one raw command line of the tool's protocol (see
  // tools/weir_broker.cc) and waits for its answer.
  absl::Status Command(std::string_view line);

  // Asks the tool to quit and waits for it to exit. Later commands fail
  // with kFailedPrecondition.
  absl::Status Stop();

 private:
  LocalBroker(std::unique_ptr<testing::Subprocess> process,
              std::string bootstrap, absl::Duration timeout);

  std::unique_ptr<testing::Subprocess> process_;
  std::string bootstrap_;
  absl::Duration timeout_;
  bool stopped_ = false;
};

}  // namespace weir

#endif  // WEIR_TESTING_LOCAL_BROKER_H_
