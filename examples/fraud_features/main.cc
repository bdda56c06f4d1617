// -----------------------------------------------------------------------------
// File: fraud_features/main.cc (the `fraud-features` service)
// -----------------------------------------------------------------------------
//
// The flagship weir service: reads payments (the W-PAY schema) from Kafka,
// computes the F-FRAUD feature set (fraud_features.h) per user over
// event-time windows on RocksDB state, and runs as a weir service
// (weir/service.h): features to Redis, a file or a Kafka topic, a
// dead-letter queue, optional late-record output, checkpoints to file:// or
// s3://, metrics on loopback, SIGTERM with a final checkpoint, bounded runs
// and a summary. The flags are the standard service flags
// (docs/operations.md) plus the ones below. Many copies may run in one
// consumer group: partitions, and their state through the checkpoint store,
// move between them.
//
// Given no --bootstrap, it runs the embedded default: it starts the local
// Kafka-protocol broker (weir-broker) as a child process, creates the topic,
// produces --events generated W-PAY payments into it (lz4, keyed by user_id,
// malformed records included), consumes them all, stops and prints a
// summary. `scripts/demo.sh` runs exactly that.
//
// Example:
//   $ fraud-features                                   # embedded default
//   $ fraud-features --bootstrap=kafka-1:9092 --topic=payments \
//       --state_dir=/var/lib/fraud --checkpoint_uri=s3://bucket/fraud \
//       --s3_endpoint=http://minio:9000 --sink=redis://127.0.0.1:6379 \
//       --kafka_property=security.protocol=SSL --metrics_port=9464

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fraud_features.h"
#include "weir/json/json_decoder.h"
#include "weir/kafka/internal/kafka_producer.h"
#include "weir/service.h"
#include "weir/status_macros.h"
#include "weir/testing/fault_env.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(std::string, broker_binary, "",
          "The weir-broker executable for the embedded default. Empty: the "
          "build tree's, the one next to this program, or PATH's.");
ABSL_FLAG(int64_t, events, 200000,
          "Embedded default: W-PAY payments to generate.");
ABSL_FLAG(int64_t, users, 100000, "Embedded default: distinct users.");
ABSL_FLAG(int64_t, seed, 1, "Embedded default: the generator's seed.");
ABSL_FLAG(int, partitions, 8, "Embedded default: partitions of the topic.");
ABSL_FLAG(std::string, fault_kill_at, "",
          "Testing only: run the pipeline's files through the fault-"
          "injecting Env of weir/testing/fault_env.h, which kills the "
          "process (SIGKILL) when the checkpoint protocol reaches this step "
          "(before_upload, mid_upload, after_upload, after_manifest; see "
          "weir/checkpoint.h). Empty: off.");
ABSL_FLAG(std::string, fault_kill_in_phase, "",
          "Testing only: PHASE:N kills the process (SIGKILL) right after it "
          "logs `weir phase=PHASE` for the Nth time, so that a crash test "
          "hits that phase by construction. Empty: off.");
ABSL_FLAG(absl::Duration, daily_offset, absl::ZeroDuration(),
          "Shifts the daily windows (amount_avg_1d) from midnight UTC, e.g. "
          "5h for midnight in New York; less than a day either way.");
ABSL_FLAG(bool, null_amount_as_zero, false,
          "Folds a null amount as 0 instead of skipping it (NullPolicy::kZero "
          "of the features over the amount): the mean then counts it.");

namespace {

// F-FRAUD as the flags above change it (the shadow tests run
// the service so to inject skew: docs/operations.md).
absl::Status ApplyFeatureFlags(weir::KeyedWindowOptions& features) {
  const absl::Duration offset = absl::GetFlag(FLAGS_daily_offset);
  if (absl::AbsDuration(offset) >= absl::Hours(24)) {
    return absl::InvalidArgumentError("--daily_offset: less than 24h");
  }
  for (weir::FeatureSpec& f : features.features) {
    if (f.window == weir::Daily()) f.window = weir::Daily(offset);
    if (absl::GetFlag(FLAGS_null_amount_as_zero) && f.field == 1) {  // amount
      f.aggregator.null_policy = weir::NullPolicy::kZero;
    }
  }
  return absl::OkStatus();
}

// The weir-broker executable for the embedded default.
absl::StatusOr<std::string> FindBrokerBinary() {
  const std::string given = absl::GetFlag(FLAGS_broker_binary);
  if (!given.empty()) return given;
  std::vector<std::string> candidates;
#ifdef WEIR_BROKER_BUILD_PATH
  candidates.push_back(WEIR_BROKER_BUILD_PATH);
#endif
  std::error_code ec;
  const std::filesystem::path self =
      std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(self.parent_path() / "weir-broker");
    // build/examples/fraud_features/fraud-features -> build/weir-broker
    candidates.push_back(self.parent_path().parent_path().parent_path() /
                         "weir-broker");
  }
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      if (!dir.empty()) candidates.push_back(absl::StrCat(dir, "/weir-broker"));
    }
  }
  for (const std::string& p : candidates) {
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return absl::NotFoundError(
      "weir-broker not found (build it, put it in PATH or pass "
      "--broker_binary)");
}

// The embedded default: starts the local broker with the topics the service
// uses and produces the W-PAY stream into the input topic: lz4, keyed by
// user_id with Kafka's murmur2 partitioner, so each event lands on the
// partition (and at the offset) the generator reports.
absl::StatusOr<std::unique_ptr<weir::LocalBroker>> StartEmbedded(
    weir::ServiceOptions& o) {
  weir::testing::WPayOptions w;
  w.num_events = absl::GetFlag(FLAGS_events);
  w.num_users = absl::GetFlag(FLAGS_users);
  w.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  w.num_partitions = absl::GetFlag(FLAGS_partitions);
  if (w.num_events <= 0) {
    return absl::InvalidArgumentError("--events: must be positive");
  }
  if (w.num_users <= 0) {
    return absl::InvalidArgumentError("--users: must be positive");
  }
  if (w.num_partitions < 1 || w.num_partitions > 1000) {
    return absl::InvalidArgumentError("--partitions: 1 to 1000");
  }
  if (!o.max_events.has_value()) o.max_events = w.num_events;

  WEIR_ASSIGN_OR_RETURN(std::string binary, FindBrokerBinary());
  weir::LocalBroker::Options bo;
  bo.binary_path = binary;
  bo.topics = {{o.topic, w.num_partitions},
               {o.topic + ".dlq", 1},
               {o.topic + ".late", 1}};
  if (absl::StartsWith(o.sink, "kafka:")) {
    bo.topics.push_back({o.sink.substr(6), w.num_partitions});
  }
  WEIR_ASSIGN_OR_RETURN(auto broker, weir::LocalBroker::Start(bo));
  o.bootstrap = broker->bootstrap();
  std::printf(
      "fraud-features: started the local broker at %s; producing %lld "
      "W-PAY payments into '%s' (%d partitions)...\n",
      o.bootstrap.c_str(), static_cast<long long>(w.num_events),
      o.topic.c_str(), w.num_partitions);
  std::fflush(stdout);

  const absl::Time t0 = absl::Now();
  WEIR_ASSIGN_OR_RETURN(auto gen, weir::testing::WPayGenerator::Create(w));
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", o.bootstrap},
      {"compression.type", "lz4"},
      {"partitioner", "murmur2_random"},
      {"enable.idempotence", "true"},
      {"linger.ms", "20"},
      {"batch.num.messages", "10000"},
      {"queue.buffering.max.messages", "500000"}};
  WEIR_ASSIGN_OR_RETURN(auto producer, weir::internal::KafkaProducer::Create(
                                           "fraud-features", settings, {}));
  weir::testing::WPayEvent e;
  while (gen->Next(e)) {
    WEIR_RETURN_IF_ERROR(
        producer->Produce(o.topic, e.user_id, e.json, {}, absl::Seconds(30)));
  }
  WEIR_RETURN_IF_ERROR(producer->Flush(absl::Seconds(120)));
  o.summary_notes.push_back(absl::StrFormat(
      "produced          %lld W-PAY payments in %.1f s (seed %lld, %lld "
      "users)",
      static_cast<long long>(w.num_events),
      absl::ToDoubleSeconds(absl::Now() - t0), static_cast<long long>(w.seed),
      static_cast<long long>(w.num_users)));
  return broker;
}

}  // namespace

int main(int argc, char** argv) {
  weir::ServiceOptions defaults;
  defaults.name = "fraud_features";
  defaults.program_name = "fraud-features";
  defaults.topic = "payments";
  defaults.group = "fraud-features";
  defaults.redis_key_prefix = "fraud:";
  defaults.show_keys = {"u1", "u2", "u3"};
  absl::StatusOr<weir::ServiceOptions> options = weir::ParseServiceFlags(
      argc, argv, defaults,
      "the weir fraud-features service: reads W-PAY payments from Kafka, "
      "computes per-user fraud features over event-time windows, writes them "
      "to Redis, a file or Kafka, with a dead-letter queue, checkpoints and "
      "metrics.\n\n"
      "  fraud-features                       embedded default: local broker "
      "+ generated payments\n"
      "  fraud-features --bootstrap=HOST:PORT --state_dir=DIR ...   a real "
      "cluster");
  if (options.ok() && options->bootstrap.empty() && options->format != "json") {
    return weir::ReportServiceError(
        absl::InvalidArgumentError("--format=avro: give --bootstrap (the "
                                   "embedded default produces JSON)"),
        2, "fraud-features");
  }
  std::unique_ptr<weir::LocalBroker> broker;
  if (options.ok() && options->bootstrap.empty() && !options->plan &&
      !options->backfill) {
    absl::StatusOr<std::unique_ptr<weir::LocalBroker>> started =
        StartEmbedded(*options);
    if (!started.ok()) {
      return weir::ReportServiceError(
          started, absl::IsInvalidArgument(started.status()) ? 2 : 1,
          "fraud-features");
    }
    broker = *std::move(started);
  }
  if (!options.ok()) {
    return weir::ReportServiceError(options, 2, "fraud-features");
  }
  // Testing only (--fault_kill_at): outlives the service.
  weir::testing::FaultInjectionEnv fault_env;
  if (const std::string step = absl::GetFlag(FLAGS_fault_kill_at);
      !step.empty()) {
    fault_env.KillAtStep(step);
    options->env = &fault_env;
  }
  if (const std::string at = absl::GetFlag(FLAGS_fault_kill_in_phase);
      !at.empty()) {
    std::pair<std::string, std::string> parts = absl::StrSplit(at, ':');
    int occurrence = 0;
    if (!absl::SimpleAtoi(parts.second, &occurrence) || occurrence < 1) {
      return weir::ReportServiceError(
          absl::InvalidArgumentError(
              "--fault_kill_in_phase: expected PHASE:N with N >= 1"),
          2, "fraud-features");
    }
    options->phase_listener = [target = parts.first, left = occurrence](
                                  std::string_view phase) mutable {
      if (phase == target && --left == 0) raise(SIGKILL);
    };
  }
  weir::KeyedWindowOptions features = fraud::FraudFeatures();
  // Every active user's hourly and daily windows fire at the same
  // watermark: in steps, each handed to the sink before the next.
  features.max_fire_updates = 16'384;
  if (absl::Status s = ApplyFeatureFlags(features); !s.ok()) {
    return weir::ReportServiceError(s, 2, "fraud-features");
  }
  return weir::ReportServiceError(
      weir::RunService(*std::move(options), features,
                       fraud::WPayServiceSchema()),
      1, "fraud-features");
}
