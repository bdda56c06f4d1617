// -----------------------------------------------------------------------------
// File: weir_broker.cc (the `weir-broker` tool)
// -----------------------------------------------------------------------------
//
// A local Kafka-protocol broker for tests and demos: hosts librdkafka's mock
// cluster (rdkafka_mock.h) in its own process on 127.0.0.1, creates the
// topics it is given, prints one line `bootstrap=<host:port,...>` on stdout
// and then serves until stdin reaches end of file or it receives SIGTERM or
// SIGINT. Because the cluster lives in this process, consumers and pipelines
// can be killed and restarted against it without losing the log.
//
// Fault injection: one command per line on stdin, each answered on stdout
// with `ok` once it has taken effect, or `error: <reason>`:
//
//   down <broker_id>          disconnect a broker, refuse new connections
//   up <broker_id>            accept connections again
//   leader <topic> <partition> <broker_id>   move a partition's leader
//                             (-1: leaderless)
//   rtt <broker_id> <ms>      delay every response of a broker
//   error <api> <error> [count]   fail the next `count` (default 1) requests
//                             of an API, e.g. `error Fetch
//                             NOT_LEADER_FOR_PARTITION 3`; api and error by
//                             name or number
//   clear <api>               drop the request errors still queued for an API
//   topic <name> <partitions> create another topic
//   quit                      answer `ok` and exit
//
// `<broker_id>` may be `all` (or -1) for down, up and rtt. Broker ids run
// from 1 to --brokers.
//
// Limits of librdkafka 2.0.2's mock cluster, which tests must design around:
// every broker listens on a port the kernel picks, so there is no fixed
// port; each partition keeps at most about 5 MiB or 100,000 message sets
// and drops the oldest beyond that, and neither limit can be configured.
// Use many partitions and lz4 for large runs, and check log start offsets.
//
// Threading: the main thread reads commands; librdkafka runs the cluster on
// its own threads. SIGTERM and SIGINT are blocked in every thread and read
// through a signalfd, so shutdown always runs the same orderly path.
//
// Example:
//   $ weir-broker --brokers=3 --topic=payments:16 --topic=dlq:1
//   bootstrap=127.0.0.1:40123,127.0.0.1:40125,127.0.0.1:40127
//   down 2
//   ok
//   error Fetch NOT_LEADER_FOR_PARTITION 3
//   ok

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must follow rdkafka.h.
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tools/common/command_line.h"

ABSL_FLAG(int, brokers, 1, "Brokers in the cluster, ids 1..N.");
ABSL_FLAG(std::vector<std::string>, topic, {},
          "Topics to create, NAME:PARTITIONS; repeatable or comma-separated.");
ABSL_FLAG(bool, ignore_stdin, false,
          "Do not read commands; serve until SIGTERM or SIGINT.");
ABSL_FLAG(std::string, debug, "",
          "librdkafka debug contexts for the log on stderr, e.g. "
          "mock,protocol.");

namespace {

constexpr int kMaxBrokers = 100;
constexpr int kMaxPartitions = 10000;

constexpr char kUsage[] =
    R"(hosts a local Kafka-protocol broker cluster (librdkafka's mock cluster) on
127.0.0.1, prints `bootstrap=<host:port,...>`, then serves until stdin ends
(or, with --ignore_stdin, until SIGTERM/SIGINT).

usage: weir-broker [--brokers=N] [--topic=NAME:PARTITIONS]...
                   [--ignore_stdin] [--debug=CONTEXTS]

Commands on stdin, one per line, each answered `ok` or `error: ...`:
  down <broker_id> | up <broker_id> | rtt <broker_id> <ms>
  leader <topic> <partition> <broker_id>
  error <api> <error> [count] | clear <api>
  topic <name> <partitions> | quit
<broker_id> may be `all` for down, up and rtt.

Ports are picked by the kernel (a fixed port is not possible with
librdkafka 2.0.2). Each partition keeps about 5 MiB or 100,000 message sets;
older data is dropped and the limit is not configurable.)";

struct TopicSpec {
  std::string name;
  int partitions = 1;
};

struct Flags {
  int brokers = 1;
  std::vector<TopicSpec> topics;
  bool ignore_stdin = false;
  std::string debug;
};

// Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-].
absl::Status ValidateTopicName(absl::string_view name) {
  if (name.empty() || name.size() > 249) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic name must be 1 to 249 characters: '", name, "'"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic name may hold only [a-zA-Z0-9._-]: '", name, "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ParseInt(absl::string_view what, absl::string_view text,
                             int min, int max) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be an integer in [", min, ", ", max, "]: '", text, "'"));
  }
  return value;
}

absl::StatusOr<int> ParsePartitions(absl::string_view text) {
  return ParseInt("partition count", text, 1, kMaxPartitions);
}

absl::StatusOr<TopicSpec> ParseTopicSpec(absl::string_view spec) {
  size_t colon = spec.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--topic wants NAME:PARTITIONS, got '", spec, "'"));
  }
  TopicSpec topic;
  topic.name = std::string(spec.substr(0, colon));
  if (absl::Status s = ValidateTopicName(topic.name); !s.ok()) return s;
  absl::StatusOr<int> partitions = ParsePartitions(spec.substr(colon + 1));
  if (!partitions.ok()) return partitions.status();
  topic.partitions = *partitions;
  return topic;
}

absl::StatusOr<Flags> FlagsFromCommandLine(int argc, char** argv) {
  weir::tools::ParseCommandLine(argc, argv,
                                {.usage = kUsage, .repeatable = {"topic"}});
  Flags flags;
  absl::StatusOr<int> n = ParseInt(
      "--brokers", absl::StrCat(absl::GetFlag(FLAGS_brokers)), 1, kMaxBrokers);
  if (!n.ok()) return n.status();
  flags.brokers = *n;
  for (const std::string& spec : absl::GetFlag(FLAGS_topic)) {
    absl::StatusOr<TopicSpec> topic = ParseTopicSpec(spec);
    if (!topic.ok()) return topic.status();
    flags.topics.push_back(*std::move(topic));
  }
  flags.ignore_stdin = absl::GetFlag(FLAGS_ignore_stdin);
  flags.debug = absl::GetFlag(FLAGS_debug);
  return flags;
}

// Kafka protocol request names (ApiKey), as the `error` and `clear`
// commands accept them.
const absl::flat_hash_map<std::string, int16_t>& ApiKeysByName() {
  static const auto* const kApiKeys =
      new absl::flat_hash_map<std::string, int16_t>({
          {"produce", 0},
          {"fetch", 1},
          {"listoffsets", 2},
          {"metadata", 3},
          {"offsetcommit", 8},
          {"offsetfetch", 9},
          {"findcoordinator", 10},
          {"joingroup", 11},
          {"heartbeat", 12},
          {"leavegroup", 13},
          {"syncgroup", 14},
          {"describegroups", 15},
          {"listgroups", 16},
          {"saslhandshake", 17},
          {"apiversions", 18},
          {"createtopics", 19},
          {"deletetopics", 20},
          {"deleterecords", 21},
          {"initproducerid", 22},
          {"offsetforleaderepoch", 23},
          {"addpartitionstotxn", 24},
          {"addoffsetstotxn", 25},
          {"endtxn", 26},
          {"txnoffsetcommit", 28},
          {"describeconfigs", 32},
          {"alterconfigs", 33},
          {"saslauthenticate", 36},
          {"createpartitions", 37},
          {"deletegroups", 42},
      });
  return *kApiKeys;
}

// "Fetch", "fetch", "FetchRequest" or "1".
absl::StatusOr<int16_t> ParseApiKey(absl::string_view text) {
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    if (number < 0 || number > INT16_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("api key out of range: ", text));
    }
    return static_cast<int16_t>(number);
  }
  const std::string lower = absl::AsciiStrToLower(text);
  absl::string_view name = lower;
  absl::ConsumeSuffix(&name, "request");
  auto it = ApiKeysByName().find(name);
  if (it == ApiKeysByName().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown api '", text, "' (a name like Fetch or a number)"));
  }
  return it->second;
}

// "NOT_LEADER_FOR_PARTITION", "RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION",
// "_TRANSPORT" or "6". Names are librdkafka's, case-insensitive.
absl::StatusOr<rd_kafka_resp_err_t> ParseErrorCode(absl::string_view text) {
  int number = 0;
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  if (absl::SimpleAtoi(text, &number)) {
    for (size_t i = 0; i < count; ++i) {
      if (descs[i].name != nullptr && descs[i].code == number) {
        return descs[i].code;
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown error code ", number));
  }
  absl::string_view name = text;
  if (!absl::ConsumePrefix(&name, "RD_KAFKA_RESP_ERR_")) {
    absl::ConsumePrefix(&name, "rd_kafka_resp_err_");
  }
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr &&
        absl::EqualsIgnoreCase(descs[i].name, name)) {
      return descs[i].code;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown error '", text,
                   "' (a librdkafka name like "
                   "NOT_LEADER_FOR_PARTITION, or a number)"));
}

absl::Status FromKafka(rd_kafka_resp_err_t err, absl::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": ", rd_kafka_err2name(err), ": ", rd_kafka_err2str(err)));
}

// The mock cluster and the rd_kafka_t that owns it.
class Cluster {
 public:
  static absl::StatusOr<std::unique_ptr<Cluster>> Create(const Flags& flags) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The handle only hosts the cluster and never connects anywhere; its
    // notices (such as "no bootstrap.servers") would only be noise, so the
    // log shows warnings and errors unless --debug asks for more.
    const bool debug = !flags.debug.empty();
    if (rd_kafka_conf_set(conf, "log_level", debug ? "7" : "4", errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        (debug && rd_kafka_conf_set(conf, "debug", flags.debug.c_str(), errstr,
                                    sizeof(errstr)) != RD_KAFKA_CONF_OK)) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(absl::StrCat("--debug: ", errstr));
    }
    rd_kafka_t* rk =
        rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == nullptr) {
      rd_kafka_conf_destroy(conf);
      return absl::InternalError(absl::StrCat("rd_kafka_new: ", errstr));
    }
    rd_kafka_mock_cluster_t* mcluster =
        rd_kafka_mock_cluster_new(rk, flags.brokers);
    if (mcluster == nullptr) {
      rd_kafka_destroy(rk);
      return absl::InternalError("rd_kafka_mock_cluster_new failed");
    }
    return std::unique_ptr<Cluster>(new Cluster(rk, mcluster, flags.brokers));
  }

  ~Cluster() {
    rd_kafka_mock_cluster_destroy(mcluster_);
    rd_kafka_destroy(rk_);
  }

  std::string bootstrap() const {
    return rd_kafka_mock_cluster_bootstraps(mcluster_);
  }

  absl::Status CreateTopic(const TopicSpec& topic) {
    if (partitions_.contains(topic.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("topic '", topic.name, "' already exists"));
    }
    // Replicas matter to the mock only for follower fetching; three (or
    // every broker) spreads leaders the way a real cluster would.
    const int replication = brokers_ < 3 ? brokers_ : 3;
    absl::Status status =
        FromKafka(rd_kafka_mock_topic_create(mcluster_, topic.name.c_str(),
                                             topic.partitions, replication),
                  "create topic");
    if (status.ok()) partitions_[topic.name] = topic.partitions;
    return status;
  }

  // Runs one command line; OK once it has taken effect. Sets `*quit` for
  // `quit`.
  absl::Status Execute(absl::string_view line, bool* quit) {
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.empty()) return absl::InvalidArgumentError("empty command");
    const absl::string_view cmd = words[0];
    auto want_args = [&](size_t min, size_t max) -> absl::Status {
      size_t n = words.size() - 1;
      if (n < min || n > max) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", cmd, "' takes ", min,
                         min == max ? "" : absl::StrCat(" to ", max),
                         " argument(s), got ", n));
      }
      return absl::OkStatus();
    };
    if (cmd == "down" || cmd == "up") {
      if (absl::Status s = want_args(1, 1); !s.ok()) return s;
      absl::StatusOr<int> id = ParseBrokerId(words[1], /*allow_all=*/true);
      if (!id.ok()) return id.status();
      return FromKafka(cmd == "down"
                           ? rd_kafka_mock_broker_set_down(mcluster_, *id)
                           : rd_kafka_mock_broker_set_up(mcluster_, *id),
                       cmd);
    }
    if (cmd == "rtt") {
      if (absl::Status s = want_args(2, 2); !s.ok()) return s;
      absl::StatusOr<int> id = ParseBrokerId(words[1], /*allow_all=*/true);
      if (!id.ok()) return id.status();
      absl::StatusOr<int> ms = ParseInt("rtt ms", words[2], 0, 3600 * 1000);
      if (!ms.ok()) return ms.status();
      return FromKafka(rd_kafka_mock_broker_set_rtt(mcluster_, *id, *ms),
                       "rtt");
    }
    if (cmd == "leader") {
      if (absl::Status s = want_args(3, 3); !s.ok()) return s;
      const std::string topic(words[1]);
      auto it = partitions_.find(topic);
      if (it == partitions_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown topic '", topic, "'"));
      }
      absl::StatusOr<int> partition =
          ParseInt("partition", words[2], 0, it->second - 1);
      if (!partition.ok()) return partition.status();
      absl::StatusOr<int> id = ParseBrokerId(words[3], /*allow_all=*/false);
      if (!id.ok()) return id.status();
      return FromKafka(rd_kafka_mock_partition_set_leader(
                           mcluster_, topic.c_str(), *partition, *id),
                       "leader");
    }
    if (cmd == "error") {
      if (absl::Status s = want_args(2, 3); !s.ok()) return s;
      absl::StatusOr<int16_t> api = ParseApiKey(words[1]);
      if (!api.ok()) return api.status();
      absl::StatusOr<rd_kafka_resp_err_t> err = ParseErrorCode(words[2]);
      if (!err.ok()) return err.status();
      int count = 1;
      if (words.size() == 4) {
        absl::StatusOr<int> n = ParseInt("count", words[3], 1, 1000000);
        if (!n.ok()) return n.status();
        count = *n;
      }
      std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count), *err);
      rd_kafka_mock_push_request_errors_array(mcluster_, *api, errors.size(),
                                              errors.data());
      return absl::OkStatus();
    }
    if (cmd == "clear") {
      if (absl::Status s = want_args(1, 1); !s.ok()) return s;
      absl::StatusOr<int16_t> api = ParseApiKey(words[1]);
      if (!api.ok()) return api.status();
      rd_kafka_mock_clear_request_errors(mcluster_, *api);
      return absl::OkStatus();
    }
    if (cmd == "topic") {
      if (absl::Status s = want_args(2, 2); !s.ok()) return s;
      TopicSpec topic;
      topic.name = std::string(words[1]);
      if (absl::Status s = ValidateTopicName(topic.name); !s.ok()) return s;
      absl::StatusOr<int> partitions = ParsePartitions(words[2]);
      if (!partitions.ok()) return partitions.status();
      topic.partitions = *partitions;
      return CreateTopic(topic);
    }
    if (cmd == "quit") {
      if (absl::Status s = want_args(0, 0); !s.ok()) return s;
      *quit = true;
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command '", cmd,
                     "' (down, up, leader, rtt, error, clear, topic, quit)"));
  }

 private:
  Cluster(rd_kafka_t* rk, rd_kafka_mock_cluster_t* mcluster, int brokers)
      : rk_(rk), mcluster_(mcluster), brokers_(brokers) {}

  // A broker id in [1, brokers]; with `allow_all`, also `all` or -1 (every
  // broker); without, also -1 (for `leader`: no leader).
  absl::StatusOr<int> ParseBrokerId(absl::string_view text, bool allow_all) {
    if (text == "-1" || (allow_all && text == "all")) return -1;
    return ParseInt(allow_all ? "broker id (or all)" : "broker id (or -1)",
                    text, 1, brokers_);
  }

  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* mcluster_;
  int brokers_;
  absl::flat_hash_map<std::string, int> partitions_;
};

void WriteLine(absl::string_view line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// Reads commands from stdin and watches `signal_fd` until stdin ends, a
// signal arrives or `quit`.
void Serve(Cluster& cluster, int signal_fd, bool read_stdin) {
  std::string pending;
  bool quit = false;
  while (!quit) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    int r = poll(fds, read_stdin ? 2 : 1, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "weir-broker: poll: %s\n", std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo info;
      if (read(signal_fd, &info, sizeof(info)) > 0) {
        std::fprintf(stderr, "weir-broker: %s, shutting down\n",
                     strsignal(static_cast<int>(info.ssi_signo)));
      }
      return;
    }
    if (!read_stdin || fds[1].revents == 0) continue;
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      std::fprintf(stderr, "weir-broker: read stdin: %s\n",
                   std::strerror(errno));
      return;
    }
    if (n == 0) {
      // End of input: a last line without a newline still counts.
      if (!absl::StripAsciiWhitespace(pending).empty()) {
        absl::Status s = cluster.Execute(pending, &quit);
        WriteLine(s.ok() ? "ok" : absl::StrCat("error: ", s.message()));
      }
      return;
    }
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while (!quit && (nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      absl::string_view command = absl::StripAsciiWhitespace(line);
      if (command.empty()) continue;
      absl::Status s = cluster.Execute(command, &quit);
      WriteLine(s.ok() ? "ok" : absl::StrCat("error: ", s.message()));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<Flags> flags = FlagsFromCommandLine(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "weir-broker: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }

  // A reader that went away must not kill the cluster mid-write.
  signal(SIGPIPE, SIG_IGN);
  // Block the shutdown signals before librdkafka starts its threads, so
  // they inherit the mask and the signals reach only the signalfd.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  sigaddset(&shutdown_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  int signal_fd = signalfd(-1, &shutdown_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::fprintf(stderr, "weir-broker: signalfd: %s\n", std::strerror(errno));
    return 1;
  }

  absl::StatusOr<std::unique_ptr<Cluster>> created = Cluster::Create(*flags);
  if (!created.ok()) {
    std::fprintf(stderr, "weir-broker: %s\n",
                 std::string(created.status().message()).c_str());
    return 1;
  }
  std::unique_ptr<Cluster> cluster = *std::move(created);
  for (const TopicSpec& topic : flags->topics) {
    if (absl::Status s = cluster->CreateTopic(topic); !s.ok()) {
      std::fprintf(stderr, "weir-broker: --topic=%s:%d: %s\n",
                   topic.name.c_str(), topic.partitions,
                   std::string(s.message()).c_str());
      return 1;
    }
  }
  WriteLine(absl::StrCat("bootstrap=", cluster->bootstrap()));

  Serve(*cluster, signal_fd, !flags->ignore_stdin);

  cluster.reset();
  close(signal_fd);
  return 0;
}
