// -----------------------------------------------------------------------------
// File: tests/integration/fraud_features_testing.h
// -----------------------------------------------------------------------------
//
// Helpers shared by the tests that run the `fraud-features` service as a
// child process (fraud_features_test, crash_soak_test, rebalance_test):
// where the binaries are, producing a W-PAY stream into the local broker,
// running the service and reading its metrics, reading a FileSink log back
// as final values, and asking the broker for log start offsets.
//
// Threading: each helper is called from the test's thread; none starts
// threads of its own.
//
// Example:
//   ASSERT_OK(ProduceWPay(broker->bootstrap(), "payments", wpay));
//   auto run = StartService({"--bootstrap=" + broker->bootstrap(), ...});
//   absl::StatusOr<FinalValues> out = ReadFinalValues(dir + "/out.jsonl");

#ifndef WEIR_TESTS_INTEGRATION_FRAUD_FEATURES_TESTING_H_
#define WEIR_TESTS_INTEGRATION_FRAUD_FEATURES_TESTING_H_

#include <librdkafka/rdkafka.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "httplib.h"
#include "weir/dlq.h"
#include "weir/kafka/internal/kafka_producer.h"
#include "weir/sinks.h"
#include "weir/status_macros.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/sqlite_oracle.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace fraud_features_testing {

inline std::string ServiceBinary() {
  return WEIR_BINARY_DIR "/examples/fraud_features/fraud-features";
}
inline std::string BrokerBinary() { return WEIR_BINARY_DIR "/weir-broker"; }
inline bool BinariesBuilt() {
  return access(ServiceBinary().c_str(), X_OK) == 0 &&
         access(BrokerBinary().c_str(), X_OK) == 0;
}
// For WEIR_REQUIRE_PART: kFailedPrecondition naming the binary not built.
inline absl::Status NeedBinaries() {
  WEIR_RETURN_IF_ERROR(testing::NeedExecutable(
      ServiceBinary(), "build the fraud-features target"));
  return testing::NeedExecutable(BrokerBinary(),
                                 "build the weir-broker target");
}

// Produces the W-PAY stream of `options` into `topic`: keyed by user_id
// with Kafka's murmur2 partitioner and one producer in order, so each event
// lands at the partition and offset the generator reports (which the
// sqlite oracle relies on). lz4, as the broker's retention needs. Only the
// events numbered `first` up to (not including) `end`, when given, so that a
// stream can be produced in parts, in order. Each message is the event's
// JSON line, or what `encode`, when given, makes of the event (e.g. Avro,
// weir/testing/wpay_avro.h). Only the events `keep`, when given, is true
// for (e.g. all but one partition's: the others keep their offsets).
inline absl::Status ProduceWPay(
    const std::string& bootstrap, const std::string& topic,
    const testing::WPayOptions& options, int64_t first = 0,
    std::optional<int64_t> end = std::nullopt,
    const std::function<absl::StatusOr<std::string>(const testing::WPayEvent&)>&
        encode = nullptr,
    const std::function<bool(const testing::WPayEvent&)>& keep = nullptr) {
  WEIR_ASSIGN_OR_RETURN(auto gen, testing::WPayGenerator::Create(options));
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", bootstrap},
      {"compression.type", "lz4"},
      {"partitioner", "murmur2_random"},
      {"enable.idempotence", "true"},
      {"linger.ms", "20"},
      {"batch.num.messages", "10000"},
      {"queue.buffering.max.messages", "500000"}};
  WEIR_ASSIGN_OR_RETURN(auto producer,
                        internal::KafkaProducer::Create("test", settings, {}));
  testing::WPayEvent e;
  for (int64_t i = 0; gen->Next(e); ++i) {
    if (end.has_value() && i >= *end) break;
    if (i < first) continue;
    if (keep && !keep(e)) continue;
    std::string value;
    if (encode) {
      WEIR_ASSIGN_OR_RETURN(value, encode(e));
    }
    WEIR_RETURN_IF_ERROR(producer->Produce(
        topic, e.user_id, encode ? value : e.json, {}, absl::Seconds(30)));
  }
  return producer->Flush(absl::Seconds(120));
}

// The log start offset of each partition 0..partitions-1 of `topic`.
inline absl::StatusOr<std::vector<int64_t>> LogStartOffsets(
    const std::string& bootstrap, const std::string& topic, int partitions) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err,
                        sizeof(err)) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(err);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) return absl::InternalError(err);
  std::vector<int64_t> out;
  absl::Status status;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = -1;
    int64_t high = -1;
    const rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
        rk, topic.c_str(), p, &low, &high, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = absl::UnavailableError(rd_kafka_err2str(e));
      break;
    }
    out.push_back(low);
  }
  rd_kafka_destroy(rk);
  if (!status.ok()) return status;
  return out;
}

// (key, feature, window start) -> the newest update a FileSink log holds
// for it: what an idempotent store ends up with.
using FinalValues =
    std::map<std::tuple<std::string, std::string, EventTime>, FeatureUpdate>;

inline absl::StatusOr<FinalValues> ReadFinalValues(const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::vector<FeatureUpdate> all, ReadFeatureFile(path));
  FinalValues out;
  for (FeatureUpdate& u : all) {
    auto key = std::make_tuple(u.key, u.feature, u.window.start);
    auto it = out.find(key);
    if (it == out.end()) {
      out.emplace(std::move(key), std::move(u));
    } else if (u.NewerThan(it->second)) {
      it->second = std::move(u);
    }
  }
  return out;
}

// Whether two runs' final values agree: exactly. Every F-FRAUD feature is
// a function of its window's values alone, however partials were merged
// (the mean sums amounts exactly, the p99 is an order-free histogram), so a
// restart, a spill or a replay gives the same value to the last bit.
inline bool SameValue(const Value& a, const Value& b) { return a == b; }

// Whether a value agrees with an independent computation (the sqlite
// oracle): exactly, except doubles, which the other side rounds its own
// way; those within 1e-9 relative.
inline bool CloseToOracle(const Value& a, const Value& b) {
  if (a.type() == Value::Type::kDouble && b.type() == Value::Type::kDouble) {
    const double x = a.double_value();
    const double y = b.double_value();
    return std::abs(x - y) <= 1e-9 * std::max(1.0, std::abs(x));
  }
  return a == b;
}

// Describes the first differences between two final outputs; empty if they
// agree key by key, exactly.
inline std::string CompareFinal(const FinalValues& want,
                                const FinalValues& got) {
  std::string diff;
  int shown = 0;
  auto note = [&](const std::string& line) {
    if (shown++ < 10) absl::StrAppend(&diff, line, "\n");
  };
  for (const auto& [k, u] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      note(absl::StrCat("missing ", std::get<0>(k), " ", std::get<1>(k), " ",
                        std::get<2>(k)));
    } else if (!SameValue(u.value, it->second.value)) {
      note(absl::StrCat("differs ", std::get<0>(k), " ", std::get<1>(k), " ",
                        std::get<2>(k), ": want ", u.value.ToString(), " got ",
                        it->second.value.ToString()));
    }
  }
  for (const auto& [k, u] : got) {
    if (!want.count(k)) {
      note(absl::StrCat("extra ", std::get<0>(k), " ", std::get<1>(k), " ",
                        std::get<2>(k)));
    }
  }
  if (shown > 10) absl::StrAppend(&diff, "... ", shown - 10, " more\n");
  return diff;
}

// Compares the exact features of `final` with the sqlite3 oracle over the
// same W-PAY input: windowed counts (txn_count_1m) and exact sums
// (amount_sum_1h), key by key, under the service's watermark and lateness
// (FraudFeatures() in examples/fraud_features/main.cc). Returns a
// description of the first differences, empty if they agree.
inline absl::StatusOr<std::string> CompareWithOracle(
    const FinalValues& final, const testing::WPayOptions& wpay) {
  WEIR_ASSIGN_OR_RETURN(std::vector<testing::WPayEvent> events,
                        testing::WPayGenerator::GenerateAll(wpay));
  const std::vector<testing::OracleEvent> oracle_events =
      testing::OracleEventsFrom(events);
  std::string diff;
  int shown = 0;
  for (const auto& [feature, window] :
       {std::make_pair(std::string("txn_count_1m"), absl::Minutes(1)),
        std::make_pair(std::string("amount_sum_1h"), absl::Hours(1))}) {
    testing::SqliteOracleOptions o;
    o.window_size = window;
    o.max_out_of_orderness = absl::Seconds(5);
    o.allowed_lateness = absl::Minutes(1);
    WEIR_ASSIGN_OR_RETURN(testing::OracleResult oracle,
                          testing::RunSqliteOracle(oracle_events, o));
    size_t windows = 0;
    for (const auto& [k, u] : final) {
      if (std::get<1>(k) == feature) ++windows;
    }
    if (windows != oracle.groups.size()) {
      absl::StrAppend(&diff, feature, ": ", windows, " windows, oracle ",
                      oracle.groups.size(), "\n");
    }
    for (const auto& [key, g] : oracle.groups) {
      auto it = final.find({key.first, feature, key.second});
      const Value want = feature == "txn_count_1m" ? Value::Int64(g.count)
                                                   : Value::Dec(g.sum_cents, 2);
      if (it != final.end() && it->second.value == want) continue;
      if (shown++ < 10) {
        absl::StrAppend(
            &diff, feature, " ", key.first, " ", key.second, ": oracle ",
            want.ToString(), ", weir ",
            it == final.end() ? "none" : it->second.value.ToString(), "\n");
      }
    }
  }
  if (shown > 10) absl::StrAppend(&diff, "... ", shown - 10, " more\n");
  return diff;
}

// A running service with its stdout captured (stderr merged).
struct Service {
  std::unique_ptr<testing::Subprocess> process;
  std::string metrics_url;  // from the "consuming" line, if metrics are on
  std::string output;       // what was read so far
};

// Starts the service and waits until it says it is consuming.
inline absl::StatusOr<Service> StartService(
    const std::vector<std::string>& args,
    const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {ServiceBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::SubprocessOptions o;
  o.env = env;
  o.merge_stderr = true;
  Service s;
  WEIR_ASSIGN_OR_RETURN(s.process, testing::Subprocess::Start(argv, o));
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    WEIR_ASSIGN_OR_RETURN(std::string line,
                          s.process->ReadLine(deadline - absl::Now()));
    absl::StrAppend(&s.output, line, "\n");
    if (line.find("consuming") != std::string::npos) {
      const size_t at = line.find("metrics http://");
      if (at != std::string::npos) s.metrics_url = line.substr(at + 8);
      return s;
    }
  }
}

// Starts the local broker with `topic` of `partitions` partitions and
// produces the W-PAY stream of `wpay` into it.
inline absl::StatusOr<std::unique_ptr<LocalBroker>> StartBrokerWithWPay(
    const std::string& topic, int partitions,
    const testing::WPayOptions& wpay) {
  LocalBroker::Options bo;
  bo.binary_path = BrokerBinary();
  bo.topics = {{topic, partitions}};
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<LocalBroker> broker,
                        LocalBroker::Start(bo));
  WEIR_RETURN_IF_ERROR(ProduceWPay(broker->bootstrap(), topic, wpay));
  return broker;
}

// Every series of metric `name` on the service's /metrics, in the order
// served: (labels, e.g. `{pipeline="x",partition="3"}`, or "", value).
// An error if the endpoint does not answer.
inline absl::StatusOr<std::vector<std::pair<std::string, double>>> ScrapeSeries(
    const std::string& url, const std::string& name) {
  // url: http://127.0.0.1:PORT/metrics
  const std::string base = url.substr(0, url.rfind('/'));
  httplib::Client client(base);
  client.set_connection_timeout(2);
  client.set_read_timeout(2);
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) {
    return absl::UnavailableError("metrics endpoint did not answer");
  }
  std::vector<std::pair<std::string, double>> out;
  for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (line.substr(0, name.size()) != name) continue;
    const char next = line.size() > name.size() ? line[name.size()] : ' ';
    if (next != '{' && next != ' ') continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &v)) continue;
    out.emplace_back(std::string(line.substr(name.size(), space - name.size())),
                     v);
  }
  return out;
}

// One metric's value from the service's /metrics (the first series of that
// name), or an error if the endpoint does not answer.
inline absl::StatusOr<double> ScrapeMetric(const std::string& url,
                                           const std::string& name) {
  WEIR_ASSIGN_OR_RETURN(auto series, ScrapeSeries(url, name));
  if (series.empty()) {
    return absl::NotFoundError(absl::StrCat("no metric ", name));
  }
  return series.front().second;
}

// The sum of the service's progress counters (records read, updates
// written, checkpoints completed, partitions restored), or an error if its
// metrics endpoint does not answer.
inline absl::StatusOr<double> ProgressCount(const std::string& url) {
  double sum = 0;
  for (const char* name :
       {"weir_records_in_total", "weir_updates_written_total",
        "weir_checkpoints_completed_total", "weir_partitions_restored_total"}) {
    WEIR_ASSIGN_OR_RETURN(auto series, ScrapeSeries(url, name));
    for (const auto& [labels, value] : series) sum += value;
  }
  return sum;
}

// Reads the rest of the output and waits for the exit; returns the wait
// status. The service takes as long as it needs while it makes progress:
// this fails (kDeadlineExceeded) only when, for `stall`, none of its
// progress counters moved (or, without a metrics endpoint, it printed
// nothing). A loaded machine makes a run slower, not a test fail; a hang
// still fails. `sample`, if set, is called about every 50 ms meanwhile.
inline absl::StatusOr<int> FinishService(
    Service& s, absl::Duration stall,
    const std::function<void()>& sample = nullptr) {
  absl::Time last_progress = absl::Now();
  absl::Time next_scrape = last_progress;
  double progress = -1;
  while (true) {
    absl::StatusOr<std::string> line =
        s.process->ReadLine(absl::Milliseconds(50));
    if (absl::IsOutOfRange(line.status())) break;  // it is exiting
    if (line.ok()) {
      absl::StrAppend(&s.output, *line, "\n");
      if (s.metrics_url.empty()) last_progress = absl::Now();
      continue;
    }
    if (!absl::IsDeadlineExceeded(line.status())) return line.status();
    if (sample) sample();
    const absl::Time now = absl::Now();
    if (!s.metrics_url.empty() && now >= next_scrape) {
      next_scrape = now + absl::Seconds(1);
      absl::StatusOr<double> p = ProgressCount(s.metrics_url);
      if (p.ok() && *p != progress) {
        progress = *p;
        last_progress = now;
      }
    }
    if (now - last_progress > stall) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the service made no progress for ", absl::FormatDuration(stall),
          "; its output:\n", s.output));
    }
  }
  return s.process->Wait(stall);
}

// Runs the service to its end; its output if it exited 0, else an error
// holding the output.
inline absl::StatusOr<std::string> RunServiceToEnd(
    const std::vector<std::string>& args, absl::Duration timeout) {
  WEIR_ASSIGN_OR_RETURN(Service s, StartService(args));
  WEIR_ASSIGN_OR_RETURN(const int status, FinishService(s, timeout));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(
        "fraud-features ended with wait status ", status, ":\n", s.output));
  }
  return s.output;
}

// Merges the output of service instances, each with its own directory
// `root`/name holding features.jsonl and dlq.jsonl (either may be missing):
// the final values (the newest update per key, feature and window) and the
// dead letters, by source position.
inline absl::Status MergeOutputs(const std::string& root,
                                 const std::vector<std::string>& names,
                                 FinalValues* final,
                                 std::set<std::pair<int32_t, int64_t>>* dead) {
  for (const std::string& name : names) {
    const std::string d = absl::StrCat(root, "/", name);
    absl::StatusOr<FinalValues> f = ReadFinalValues(d + "/features.jsonl");
    if (!f.ok() && !absl::IsNotFound(f.status())) return f.status();
    if (f.ok()) {
      for (auto& [k, u] : *f) {
        auto it = final->find(k);
        if (it == final->end()) {
          final->emplace(k, u);
        } else if (u.NewerThan(it->second)) {
          it->second = u;
        }
      }
    }
    absl::StatusOr<std::vector<DeadLetterRecord>> records =
        ReadDeadLetterFile(d + "/dlq.jsonl");
    if (absl::IsNotFound(records.status())) continue;
    if (!records.ok()) return records.status();
    for (const DeadLetterRecord& r : *records) {
      dead->emplace(r.partition, r.offset);
    }
  }
  return absl::OkStatus();
}

// The number in a summary line "  <label>  <number> ...", or -1.
inline int64_t SummaryNumber(const std::string& output,
                             const std::string& label) {
  const size_t at = output.find(absl::StrCat("  ", label, " "));
  if (at == std::string::npos) return -1;
  size_t p = at + label.size() + 2;
  while (p < output.size() && output[p] == ' ') ++p;
  size_t e = p;
  while (e < output.size() && isdigit(static_cast<unsigned char>(output[e]))) {
    ++e;
  }
  int64_t v = -1;
  if (!absl::SimpleAtoi(absl::string_view(output).substr(p, e - p), &v)) {
    return -1;
  }
  return v;
}

}  // namespace fraud_features_testing
}  // namespace weir

#endif  // WEIR_TESTS_INTEGRATION_FRAUD_FEATURES_TESTING_H_
