// -----------------------------------------------------------------------------
// File: fraud_features/main.cc (the `fraud-features` service)
// -----------------------------------------------------------------------------
//
// The flagship weir service: reads payments (the W-PAY schema) from Kafka,
// computes the F-FRAUD feature set per user over event-time windows on
// RocksDB state, writes the features to Redis, a file or a Kafka topic,
// sends bad records to a dead-letter queue, checkpoints to file:// or s3://,
// and serves its metrics on loopback. Many copies may run in one consumer
// group: partitions, and their state through the checkpoint store, move
// between them.
//
// Given no --bootstrap, it runs the embedded default: it starts the local
// Kafka-protocol broker (weir-broker) as a child process, creates the topic,
// produces --events generated W-PAY payments into it (lz4, keyed by user_id,
// malformed records included), consumes them all, stops and prints a
// summary. `scripts/demo.sh` runs exactly that.
//
// Bounded runs: --max_events stops once the consumer's positions add up to
// that many records (counted over the offsets of the assigned partitions,
// so a restarted instance counts what earlier runs checkpointed),
// --max_seconds after that long, --idle_exit once every assigned partition
// has no lag and nothing arrived for that long. At the end of a bounded run
// every open window fires, so the sink holds final values, and a last
// checkpoint is taken. SIGTERM or SIGINT stop the service gracefully with a
// final checkpoint and no firing (another instance carries on).
//
// Threading: the main thread runs the pipeline. Besides the threads of
// librdkafka, RocksDB and the pipeline's checkpoint uploads, the service
// starts one signal-watcher thread ("ff-signals") and the metrics HTTP
// thread.
//
// Example:
//   $ fraud-features                                   # embedded default
//   $ fraud-features --bootstrap=kafka-1:9092 --topic=payments \
//       --state_dir=/var/lib/fraud --checkpoint_uri=s3://bucket/fraud \
//       --s3_endpoint=http://minio:9000 --sink=redis://127.0.0.1:6379 \
//       --kafka_property=security.protocol=SSL --metrics_port=9464

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "weir/dlq.h"
#include "weir/http/metrics_server.h"
#include "weir/json/json_decoder.h"
#include "weir/kafka/internal/kafka_producer.h"
#include "weir/kafka/kafka_dead_letter_queue.h"
#include "weir/kafka/kafka_sink.h"
#include "weir/kafka/kafka_source.h"
#include "weir/testing/local_broker.h"
#include "weir/metrics.h"
#include "weir/object_store.h"
#include "weir/pipeline.h"
#include "weir/redis/redis_sink.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/sinks.h"
#include "weir/status_macros.h"
#include "weir/testing/fault_env.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

// ---- Flags ------------------------------------------------------------------

ABSL_FLAG(std::string, bootstrap, "",
          "Kafka bootstrap servers, host:port[,...]. Empty: the embedded "
          "default (start the local broker, produce --events W-PAY payments, "
          "consume them all, print a summary).");
ABSL_FLAG(std::string, topic, "payments", "Input topic (W-PAY JSON).");
ABSL_FLAG(std::string, group, "fraud-features", "Kafka consumer group.");
ABSL_FLAG(std::string, state_dir, "",
          "Local working directory for live state and checkpoint staging. "
          "Empty: a fresh temporary directory, removed at exit.");
ABSL_FLAG(std::string, checkpoint_uri, "",
          "Where checkpoints go: file:///abs/path or s3://bucket[/prefix]. "
          "Empty: file://<state_dir>/checkpoints.");
ABSL_FLAG(std::string, s3_endpoint, "",
          "For s3:// checkpoints: the endpoint of an S3-compatible server "
          "(e.g. http://127.0.0.1:9000, path-style). Empty: AWS. "
          "Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(10),
          "Time between checkpoints.");
ABSL_FLAG(int, checkpoint_tolerated_failures, 3,
          "Checkpoints that may fail in a row (e.g. the object store is "
          "down); the next failure stops the service with an error.");
ABSL_FLAG(int, checkpoint_retained, 3,
          "Checkpoints kept per partition (older ones are deleted).");
ABSL_FLAG(absl::Duration, checkpoint_min_pause, absl::Seconds(5),
          "Least time between the end of one checkpoint and the start of "
          "the next.");
ABSL_FLAG(absl::Duration, s3_request_timeout, absl::Minutes(2),
          "Time limit of one S3 request (s3:// stores); a request past it "
          "is abandoned and retried.");
ABSL_FLAG(int, s3_max_attempts, 5,
          "Attempts per S3 request (s3:// stores), the first included.");
ABSL_FLAG(std::string, sink, "",
          "Where features go: file:PATH (JSON lines), redis://HOST:PORT or "
          "kafka:TOPIC. Empty: redis://127.0.0.1:6379 if a Redis answers "
          "there, else file:<state_dir>/features.jsonl.");
ABSL_FLAG(std::string, dlq, "kafka",
          "Dead-letter queue: kafka (the topic <topic>.dlq) or file:PATH.");
ABSL_FLAG(int, metrics_port, 0,
          "Port of the Prometheus endpoint on 127.0.0.1: 0 picks a free "
          "one, -1 turns it off.");
ABSL_FLAG(int64_t, max_events, 0,
          "Bounded run: stop once the consumer has read this many records "
          "(summed over the assigned partitions' offsets). 0: no limit; the "
          "embedded default uses --events.");
ABSL_FLAG(double, max_seconds, 0,
          "Bounded run: stop after this many seconds. 0: no limit.");
ABSL_FLAG(double, idle_exit, 0,
          "Bounded run: stop once no partition has lag and nothing arrived "
          "for this many seconds. 0: never.");
ABSL_FLAG(std::string, pipeline_version, "1",
          "Recorded in checkpoint manifests and dead-letter records.");
ABSL_FLAG(std::vector<std::string>, kafka_property, {},
          "A librdkafka consumer property, key=value; repeat the flag for "
          "more (e.g. --kafka_property=auto.offset.reset=error "
          "--kafka_property=session.timeout.ms=6000).");
ABSL_FLAG(std::string, broker_binary, "",
          "The weir-broker executable for the embedded default. Empty: the "
          "build tree's, the one next to this program, or PATH's.");
ABSL_FLAG(int64_t, events, 200000,
          "Embedded default: W-PAY payments to generate.");
ABSL_FLAG(int64_t, users, 100000, "Embedded default: distinct users.");
ABSL_FLAG(int64_t, seed, 1, "Embedded default: the generator's seed.");
ABSL_FLAG(int, partitions, 8, "Embedded default: partitions of the topic.");
ABSL_FLAG(std::string, redis_key_prefix,
          "fraud:", "Redis sink: prefix of each user's hash.");
ABSL_FLAG(std::string, show_users, "u1,u2,u3",
          "Users whose features the summary reads back from the sink.");
ABSL_FLAG(int64_t, max_pending_updates, 50000,
          "Feature updates queued in front of the sink; when full, the "
          "input pauses until half of them are written. Larger absorbs "
          "sink hiccups and uses more memory.");
ABSL_FLAG(int64_t, sink_batch_size, 1000, "Feature updates per sink write.");
ABSL_FLAG(int, checkpoint_upload_threads, 4,
          "Threads uploading checkpoints, shared by every partition (1 to "
          "64). More shortens checkpoints of many partitions on a store with "
          "high request latency (S3).");
ABSL_FLAG(int, sink_delay_ms, 0,
          "Testing/chaos only: make the sink behave like a slow store that "
          "takes this long per batch. After each accepted batch it refuses "
          "writes (kUnavailable) for this long, so updates queue up and the "
          "input pauses (backpressure); at the end of a run it waits "
          "instead of refusing. 0: off.");
ABSL_FLAG(std::string, fault_kill_at, "",
          "Testing only: run the pipeline's files through the fault-"
          "injecting Env of weir/testing/fault_env.h, which kills the "
          "process (SIGKILL) when the checkpoint protocol reaches this step "
          "(before_upload, mid_upload, after_upload, after_manifest; see "
          "weir/checkpoint.h). Empty: off.");

namespace {

constexpr char kPipelineName[] = "fraud_features";

// ---- Configuration ----------------------------------------------------------

struct Config {
  std::string bootstrap;
  bool embedded = false;
  std::string topic;
  std::string group;
  std::string state_dir;
  std::string checkpoint_uri;
  std::string s3_endpoint;
  absl::Duration checkpoint_interval;
  int checkpoint_tolerated_failures = 3;
  int checkpoint_retained = 3;
  absl::Duration checkpoint_min_pause;
  absl::Duration s3_request_timeout;
  int s3_max_attempts = 5;
  std::string sink;  // resolved: file:..., redis://..., kafka:...
  std::string dlq;
  int metrics_port = 0;
  int64_t max_events = 0;
  absl::Duration max_time = absl::InfiniteDuration();
  absl::Duration idle_exit = absl::InfiniteDuration();
  std::string pipeline_version;
  std::vector<std::string> kafka_properties;
  std::string broker_binary;
  int64_t events = 0;
  int64_t users = 0;
  int64_t seed = 0;
  int partitions = 0;
  std::string redis_key_prefix;
  std::vector<std::string> show_users;
  absl::Duration sink_delay;  // testing/chaos: a slow sink
  int64_t max_pending_updates = 0;
  int64_t sink_batch_size = 0;
  int checkpoint_upload_threads = 0;
  std::string fault_kill_at;  // testing: a checkpoint step to die at
};

absl::StatusOr<Config> ConfigFromFlags(
    const std::vector<std::string>& repeated_properties) {
  Config c;
  c.bootstrap = absl::GetFlag(FLAGS_bootstrap);
  c.embedded = c.bootstrap.empty();
  c.topic = absl::GetFlag(FLAGS_topic);
  c.group = absl::GetFlag(FLAGS_group);
  c.state_dir = absl::GetFlag(FLAGS_state_dir);
  c.checkpoint_uri = absl::GetFlag(FLAGS_checkpoint_uri);
  c.s3_endpoint = absl::GetFlag(FLAGS_s3_endpoint);
  c.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  c.checkpoint_tolerated_failures =
      absl::GetFlag(FLAGS_checkpoint_tolerated_failures);
  c.checkpoint_min_pause = absl::GetFlag(FLAGS_checkpoint_min_pause);
  c.checkpoint_retained = absl::GetFlag(FLAGS_checkpoint_retained);
  c.s3_request_timeout = absl::GetFlag(FLAGS_s3_request_timeout);
  c.s3_max_attempts = absl::GetFlag(FLAGS_s3_max_attempts);
  c.sink = absl::GetFlag(FLAGS_sink);
  c.dlq = absl::GetFlag(FLAGS_dlq);
  c.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  c.max_events = absl::GetFlag(FLAGS_max_events);
  const double max_seconds = absl::GetFlag(FLAGS_max_seconds);
  const double idle_exit = absl::GetFlag(FLAGS_idle_exit);
  c.pipeline_version = absl::GetFlag(FLAGS_pipeline_version);
  c.kafka_properties = absl::GetFlag(FLAGS_kafka_property);
  c.kafka_properties.insert(c.kafka_properties.end(),
                            repeated_properties.begin(),
                            repeated_properties.end());
  c.broker_binary = absl::GetFlag(FLAGS_broker_binary);
  c.events = absl::GetFlag(FLAGS_events);
  c.users = absl::GetFlag(FLAGS_users);
  c.seed = absl::GetFlag(FLAGS_seed);
  c.partitions = absl::GetFlag(FLAGS_partitions);
  c.redis_key_prefix = absl::GetFlag(FLAGS_redis_key_prefix);
  for (absl::string_view u :
       absl::StrSplit(absl::GetFlag(FLAGS_show_users), ',')) {
    if (!u.empty()) c.show_users.emplace_back(u);
  }

  const int sink_delay_ms = absl::GetFlag(FLAGS_sink_delay_ms);
  if (sink_delay_ms < 0 || sink_delay_ms > 60000) {
    return absl::InvalidArgumentError("--sink_delay_ms: 0 to 60000");
  }
  c.sink_delay = absl::Milliseconds(sink_delay_ms);
  c.max_pending_updates = absl::GetFlag(FLAGS_max_pending_updates);
  c.sink_batch_size = absl::GetFlag(FLAGS_sink_batch_size);
  c.checkpoint_upload_threads = absl::GetFlag(FLAGS_checkpoint_upload_threads);
  c.fault_kill_at = absl::GetFlag(FLAGS_fault_kill_at);
  if (c.sink_batch_size < 1) {
    return absl::InvalidArgumentError("--sink_batch_size: must be positive");
  }
  if (c.max_pending_updates < 1) {
    return absl::InvalidArgumentError(
        "--max_pending_updates: must be positive");
  }

  if (c.topic.empty()) return absl::InvalidArgumentError("--topic: empty");
  if (c.group.empty()) return absl::InvalidArgumentError("--group: empty");
  if (c.checkpoint_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--checkpoint_interval: must be positive");
  }
  if (c.checkpoint_tolerated_failures < 0) {
    return absl::InvalidArgumentError(
        "--checkpoint_tolerated_failures: must not be negative");
  }
  if (c.checkpoint_retained < 1) {
    return absl::InvalidArgumentError("--checkpoint_retained: at least 1");
  }
  if (c.checkpoint_min_pause < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--checkpoint_min_pause: must not be negative");
  }
  if (c.s3_request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--s3_request_timeout: must be positive");
  }
  if (c.s3_max_attempts < 1) {
    return absl::InvalidArgumentError("--s3_max_attempts: at least 1");
  }
  if (c.metrics_port < -1 || c.metrics_port > 65535) {
    return absl::InvalidArgumentError("--metrics_port: -1, 0 or a port");
  }
  if (c.max_events < 0) {
    return absl::InvalidArgumentError("--max_events: must not be negative");
  }
  if (!(max_seconds >= 0) || !(idle_exit >= 0)) {
    return absl::InvalidArgumentError(
        "--max_seconds / --idle_exit: must not be negative");
  }
  if (max_seconds > 0) c.max_time = absl::Seconds(max_seconds);
  if (idle_exit > 0) c.idle_exit = absl::Seconds(idle_exit);
  if (c.dlq != "kafka" && !absl::StartsWith(c.dlq, "file:")) {
    return absl::InvalidArgumentError("--dlq: kafka or file:PATH");
  }
  if (!c.sink.empty() && !absl::StartsWith(c.sink, "file:") &&
      !absl::StartsWith(c.sink, "redis://") &&
      !absl::StartsWith(c.sink, "kafka:")) {
    return absl::InvalidArgumentError(
        "--sink: file:PATH, redis://HOST:PORT or kafka:TOPIC");
  }
  for (const std::string& p : c.kafka_properties) {
    if (p.find('=') == std::string::npos || p[0] == '=') {
      return absl::InvalidArgumentError(
          absl::StrCat("--kafka_property: want key=value, got '", p, "'"));
    }
  }
  if (c.embedded) {
    if (c.events <= 0) {
      return absl::InvalidArgumentError("--events: must be positive");
    }
    if (c.users <= 0) {
      return absl::InvalidArgumentError("--users: must be positive");
    }
    if (c.partitions < 1 || c.partitions > 1000) {
      return absl::InvalidArgumentError("--partitions: 1 to 1000");
    }
    if (c.max_events == 0) c.max_events = c.events;
  }
  return c;
}

// ---- The features -----------------------------------------------------------

weir::JsonSchema WPaySchema() {
  weir::JsonSchema schema;
  schema.name = "wpay";
  schema.version = 1;
  schema.key_field = "user_id";
  schema.event_time_field = "event_timestamp";
  schema.event_time_type = weir::JsonType::kTimestampMs;
  schema.fields = {
      weir::JsonField::Required("merchant_id", weir::JsonType::kString),
      weir::JsonField::OptionalDecimal("amount", 2)};
  return schema;
}

weir::FeatureSpec Feature(std::string name, weir::AggregateKind kind,
                          weir::WindowSpec window, int field) {
  weir::FeatureSpec f;
  f.name = std::move(name);
  f.aggregate = kind;
  f.window = window;
  f.field = field;
  return f;
}

// The F-FRAUD feature set (BENCHMARKS.md), per user. The only place the
// features are listed: the pipeline, the summary and the tests all follow
// it.
weir::KeyedWindowOptions FraudFeatures() {
  using weir::AggregateKind;
  const int merchant = 0;  // WPaySchema().fields[0]
  const int amount = 1;    // WPaySchema().fields[1]
  weir::KeyedWindowOptions options;
  options.features = {
      Feature("txn_count_1m", AggregateKind::kCount,
              weir::Tumbling(absl::Minutes(1)), -1),
      Feature("amount_sum_1h", AggregateKind::kDecimalSum,
              weir::Tumbling(absl::Hours(1)), amount),
      Feature("amount_avg_1d", AggregateKind::kMean, weir::Daily(), amount),
      // The last 5 minutes as of each payment, merged from 1-minute tiles:
      // one update per payment (the window ends at the payment).
      Feature("txn_count_5m_sliding", AggregateKind::kCount,
              weir::Sliding(absl::Minutes(5), absl::Minutes(1)), -1),
      // HyperLogLog estimate of the distinct merchants.
      Feature("distinct_merchants_1h", AggregateKind::kDistinctCount,
              weir::Tumbling(absl::Hours(1)), merchant),
      Feature("amount_p99_1h", AggregateKind::kQuantile,
              weir::Tumbling(absl::Hours(1)), amount),
  };
  options.features.back().aggregator.quantile = 0.99;
  options.max_out_of_orderness = absl::Seconds(5);
  options.allowed_lateness = absl::Minutes(1);
  return options;
}

// ---- A bounded view of the source -------------------------------------------

// Forwards to a source and decides when a bounded run is over: once it is,
// Poll returns nothing and AtEnd() is true, which makes Pipeline::Run fire
// every window, checkpoint and return. Also keeps the latest partition
// positions for the metrics thread (a Source is single-threaded).
class BoundedSource final : public weir::Source,
                            private weir::PartitionListener {
 public:
  struct Limits {
    int64_t max_events = 0;  // 0: none
    absl::Duration max_time = absl::InfiniteDuration();
    absl::Duration idle_exit = absl::InfiniteDuration();
  };

  BoundedSource(weir::Source* inner, Limits limits)
      : inner_(inner), limits_(limits), start_(absl::Now()) {
    last_arrival_ = start_;
  }

  // Why the run ended; empty while it has not.
  std::string end_reason() const {
    absl::MutexLock lock(&mu_);
    return end_reason_;
  }

  std::vector<weir::PartitionPosition> positions() const {
    absl::MutexLock lock(&mu_);
    return positions_;
  }

  // When partitions were first assigned (the consumer started reading).
  std::optional<absl::Time> first_assigned() const {
    absl::MutexLock lock(&mu_);
    return first_assigned_;
  }

  void SetPartitionListener(weir::PartitionListener* l) override {
    listener_ = l;
    inner_->SetPartitionListener(l == nullptr ? nullptr : this);
  }
  absl::StatusOr<absl::Span<const weir::RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override {
    if (ended_) return absl::Span<const weir::RawRecord>();
    auto batch = inner_->Poll(max_records, timeout);
    if (!batch.ok()) return batch;
    const absl::Time now = absl::Now();
    if (!batch->empty()) last_arrival_ = now;
    absl::StatusOr<std::vector<weir::PartitionPosition>> positions =
        inner_->Positions();
    if (!positions.ok()) return positions.status();
    int64_t read = 0;
    bool caught_up = !positions->empty();
    for (const weir::PartitionPosition& p : *positions) {
      read += p.position.value_or(0);
      const std::optional<int64_t> lag = p.lag();
      if (!lag.has_value() || *lag > 0) caught_up = false;
    }
    std::string reason;
    if (limits_.max_events > 0 && read >= limits_.max_events) {
      reason = absl::StrCat("read ", read, " records (--max_events)");
    } else if (now - start_ >= limits_.max_time) {
      reason = "time limit (--max_seconds)";
    } else if (ever_assigned_ && caught_up &&
               now - last_arrival_ >= limits_.idle_exit) {
      reason = "no lag and idle (--idle_exit)";
    }
    absl::MutexLock lock(&mu_);
    positions_ = std::move(*positions);
    if (!reason.empty()) {
      ended_ = true;
      end_reason_ = std::move(reason);
    }
    return batch;
  }
  bool AtEnd() const override { return ended_; }
  absl::Status Pause(absl::Span<const weir::TopicPartition> p) override {
    return inner_->Pause(p);
  }
  absl::Status Resume(absl::Span<const weir::TopicPartition> p) override {
    return inner_->Resume(p);
  }
  absl::Status Seek(const weir::TopicPartition& p, int64_t offset) override {
    return inner_->Seek(p, offset);
  }
  absl::Status CommitOffsets(const weir::PartitionOffsets& o) override {
    return inner_->CommitOffsets(o);
  }
  std::vector<weir::TopicPartition> Assignment() const override {
    return inner_->Assignment();
  }
  absl::StatusOr<std::vector<weir::PartitionPosition>> Positions() override {
    return inner_->Positions();
  }
  weir::SourceStats stats() const override { return inner_->stats(); }
  absl::Status Close() override { return inner_->Close(); }

 private:
  absl::StatusOr<weir::StartOffsets> OnAssigned(
      absl::Span<const weir::TopicPartition> partitions) override {
    if (!ever_assigned_ && !partitions.empty()) {
      absl::MutexLock lock(&mu_);
      first_assigned_ = absl::Now();
    }
    ever_assigned_ = ever_assigned_ || !partitions.empty();
    last_arrival_ = absl::Now();  // a new assignment restarts the idle clock
    return listener_->OnAssigned(partitions);
  }
  void OnRevoked(absl::Span<const weir::TopicPartition> partitions) override {
    listener_->OnRevoked(partitions);
  }

  weir::Source* const inner_;
  const Limits limits_;
  const absl::Time start_;
  weir::PartitionListener* listener_ = nullptr;
  absl::Time last_arrival_;
  bool ever_assigned_ = false;
  bool ended_ = false;

  mutable absl::Mutex mu_;
  std::string end_reason_ ABSL_GUARDED_BY(mu_);
  std::vector<weir::PartitionPosition> positions_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> first_assigned_ ABSL_GUARDED_BY(mu_);
};

// ---- Signals ----------------------------------------------------------------

// SIGTERM and SIGINT write one byte to a pipe (the only thing a handler may
// safely do); a watcher thread reads it and calls Pipeline::Stop().
int g_signal_pipe[2] = {-1, -1};

extern "C" void OnStopSignal(int signo) {
  const int saved = errno;
  const char c = static_cast<char>(signo);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &c, 1);
  errno = saved;
}

class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal) {
    if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return;
    struct sigaction sa = {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    thread_ = std::thread([on_signal = std::move(on_signal)] {
      pthread_setname_np(pthread_self(), "ff-signals");
      char c = 0;
      while (true) {
        const ssize_t n = read(g_signal_pipe[0], &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || c == 0) return;  // 0: the service is done
        on_signal(c);
      }
    });
  }
  ~SignalWatcher() {
    if (!thread_.joinable()) return;
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    const char done = 0;
    [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &done, 1);
    thread_.join();
    close(g_signal_pipe[0]);
    close(g_signal_pipe[1]);
  }

 private:
  std::thread thread_;
};

// ---- Outside parts ----------------------------------------------------------

bool RedisAnswers(const std::string& host, int port) {
  timeval tv = {0, 300 * 1000};
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c == nullptr) return false;
  bool ok = false;
  if (c->err == 0) {
    redisSetTimeout(c, tv);
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
    if (r != nullptr) freeReplyObject(r);
  }
  redisFree(c);
  return ok;
}

absl::StatusOr<std::pair<std::string, int>> ParseRedisUri(
    const std::string& uri) {
  absl::string_view rest = uri;
  absl::ConsumePrefix(&rest, "redis://");
  absl::ConsumeSuffix(&rest, "/");
  const size_t colon = rest.rfind(':');
  int port = 6379;
  std::string host(rest);
  if (colon != absl::string_view::npos) {
    host = std::string(rest.substr(0, colon));
    if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port <= 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sink: bad Redis port in '", uri, "'"));
    }
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sink: no Redis host in '", uri, "'"));
  }
  return std::make_pair(host, port);
}

absl::StatusOr<std::unique_ptr<weir::Sink>> MakeSink(const Config& c) {
  if (absl::StartsWith(c.sink, "file:")) {
    weir::FileSinkOptions o;
    o.path = c.sink.substr(5);
    WEIR_ASSIGN_OR_RETURN(auto sink, weir::FileSink::Create(o));
    return std::unique_ptr<weir::Sink>(std::move(sink));
  }
  if (absl::StartsWith(c.sink, "redis://")) {
    WEIR_ASSIGN_OR_RETURN(auto hp, ParseRedisUri(c.sink));
    weir::RedisSinkOptions o;
    o.host = hp.first;
    o.port = hp.second;
    o.key_prefix = c.redis_key_prefix;
    WEIR_ASSIGN_OR_RETURN(auto sink, weir::RedisSink::Create(o));
    return std::unique_ptr<weir::Sink>(std::move(sink));
  }
  weir::KafkaSinkOptions o;
  o.bootstrap_servers = c.bootstrap;
  o.topic = c.sink.substr(6);
  WEIR_ASSIGN_OR_RETURN(auto sink, weir::KafkaSink::Create(o));
  return std::unique_ptr<weir::Sink>(std::move(sink));
}

// Wraps the sink the service writes to: times each Write into the sink
// latency histogram and counts errors and refusals. With a delay (the
// testing/chaos flag --sink_delay_ms) it also plays a slow store: after an
// accepted batch it is busy for `delay`, and a Write while busy is refused
// with kUnavailable, which makes the pipeline queue updates, pause the input
// and retry; once `finishing()` is true (the bounded input ended or a stop
// was asked for), it waits out the busy time instead, because the final
// checkpoint must be able to hand everything to the sink.
// Called on the processing thread only.
class InstrumentedSink final : public weir::Sink {
 public:
  struct Metrics {
    weir::Histogram* write_seconds = nullptr;
    weir::Counter* errors = nullptr;
    weir::Counter* refusals = nullptr;
  };

  InstrumentedSink(std::unique_ptr<weir::Sink> inner, absl::Duration delay,
                   std::function<bool()> finishing, Metrics metrics)
      : inner_(std::move(inner)),
        delay_(delay),
        finishing_(std::move(finishing)),
        metrics_(metrics) {}

  absl::Status Write(absl::Span<const weir::FeatureUpdate> updates) override {
    if (delay_ > absl::ZeroDuration()) {
      const absl::Time now = absl::Now();
      if (now < busy_until_) {
        if (!finishing_()) {
          metrics_.refusals->Increment();
          return absl::UnavailableError("sink busy (--sink_delay_ms)");
        }
        absl::SleepFor(busy_until_ - now);
      }
    }
    const absl::Time t0 = absl::Now();
    absl::Status s = inner_->Write(updates);
    const absl::Time t1 = absl::Now();
    metrics_.write_seconds->Observe(t1 - t0);
    if (absl::IsUnavailable(s)) {
      metrics_.refusals->Increment();
    } else if (!s.ok()) {
      metrics_.errors->Increment();
    }
    if (s.ok() && delay_ > absl::ZeroDuration()) busy_until_ = t1 + delay_;
    return s;
  }
  absl::Status Flush() override { return Count(inner_->Flush()); }
  absl::Status PreCommit(int64_t id) override {
    return Count(inner_->PreCommit(id));
  }
  absl::Status Commit(int64_t id) override { return Count(inner_->Commit(id)); }
  absl::Status Abort(int64_t id) override { return Count(inner_->Abort(id)); }

 private:
  absl::Status Count(absl::Status s) {
    if (absl::IsUnavailable(s)) {
      metrics_.refusals->Increment();
    } else if (!s.ok()) {
      metrics_.errors->Increment();
    }
    return s;
  }

  const std::unique_ptr<weir::Sink> inner_;
  const absl::Duration delay_;
  const std::function<bool()> finishing_;
  const Metrics metrics_;
  absl::Time busy_until_ = absl::InfinitePast();
};

absl::StatusOr<std::unique_ptr<weir::DeadLetterQueue>> MakeDlq(
    const Config& c) {
  if (absl::StartsWith(c.dlq, "file:")) {
    weir::FileDeadLetterQueueOptions o;
    o.path = c.dlq.substr(5);
    WEIR_ASSIGN_OR_RETURN(auto dlq, weir::FileDeadLetterQueue::Create(o));
    return std::unique_ptr<weir::DeadLetterQueue>(std::move(dlq));
  }
  weir::KafkaDeadLetterQueueOptions o;
  o.bootstrap_servers = c.bootstrap;
  WEIR_ASSIGN_OR_RETURN(auto dlq, weir::KafkaDeadLetterQueue::Create(o));
  return std::unique_ptr<weir::DeadLetterQueue>(std::move(dlq));
}

absl::StatusOr<std::unique_ptr<weir::KafkaSource>> MakeSource(const Config& c) {
  weir::KafkaSourceOptions o;
  o.bootstrap_servers = c.bootstrap;
  o.group_id = c.group;
  o.topics = {c.topic};
  o.client_id = "fraud-features";
  for (const std::string& p : c.kafka_properties) {
    const size_t eq = p.find('=');
    const std::string key = p.substr(0, eq);
    const std::string value = p.substr(eq + 1);
    // The few properties weir owns have their own options.
    if (key == "auto.offset.reset") {
      if (value == "earliest" || value == "smallest" || value == "beginning") {
        o.auto_offset_reset = weir::OffsetReset::kEarliest;
      } else if (value == "latest" || value == "largest" || value == "end") {
        o.auto_offset_reset = weir::OffsetReset::kLatest;
      } else if (value == "error") {
        o.auto_offset_reset = weir::OffsetReset::kError;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "--kafka_property: auto.offset.reset: earliest, latest or "
            "error, got '",
            value, "'"));
      }
    } else if (key == "partition.assignment.strategy") {
      o.partition_assignment_strategy = value;
    } else if (key == "client.id") {
      o.client_id = value;
    } else {
      o.properties[key] = value;
    }
  }
  return weir::KafkaSource::Create(std::move(o));
}

// The weir-broker executable for the embedded default.
absl::StatusOr<std::string> FindBrokerBinary(const Config& c) {
  if (!c.broker_binary.empty()) return c.broker_binary;
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

// Produces the W-PAY stream into the topic: lz4, keyed by user_id with
// Kafka's murmur2 partitioner, so each event lands on the partition (and at
// the offset) the generator reports.
absl::Status ProduceWPay(const Config& c) {
  weir::testing::WPayOptions w;
  w.num_events = c.events;
  w.num_users = c.users;
  w.seed = static_cast<uint64_t>(c.seed);
  w.num_partitions = c.partitions;
  WEIR_ASSIGN_OR_RETURN(auto gen, weir::testing::WPayGenerator::Create(w));
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", c.bootstrap},
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
        producer->Produce(c.topic, e.user_id, e.json, {}, absl::Seconds(30)));
  }
  return producer->Flush(absl::Seconds(120));
}

// ---- Metrics ----------------------------------------------------------------

// How many of the hottest keys the metrics show.
constexpr size_t kHotKeysShown = 10;

// Turns the per-partition record counts of successive scrapes into rates:
// each partition's rate is over the interval since its previous sample, a
// sample being replaced once it is at least a second old. Thread-safe (the
// metrics thread may scrape concurrently with a Snapshot).
class ThroughputTracker {
 public:
  std::map<weir::TopicPartition, double> Rates(
      const std::vector<weir::PartitionStats>& stats) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    std::map<weir::TopicPartition, double> out;
    std::map<weir::TopicPartition, Sample> next;
    for (const weir::PartitionStats& p : stats) {
      auto it = samples_.find(p.partition);
      if (it == samples_.end() || p.records < it->second.records) {
        next[p.partition] = {now, p.records, 0};
      } else if (now - it->second.at >= absl::Seconds(1)) {
        const double dt = absl::ToDoubleSeconds(now - it->second.at);
        next[p.partition] = {now, p.records,
                             (p.records - it->second.records) / dt};
      } else {
        next[p.partition] = it->second;
      }
      out[p.partition] = next[p.partition].rate;
    }
    samples_ = std::move(next);
    return out;
  }

 private:
  struct Sample {
    absl::Time at;
    int64_t records = 0;
    double rate = 0;
  };
  absl::Mutex mu_;
  std::map<weir::TopicPartition, Sample> samples_ ABSL_GUARDED_BY(mu_);
};

absl::Status RegisterMetrics(weir::MetricsRegistry& registry,
                             const weir::Pipeline* pipeline,
                             const BoundedSource* source, absl::Time start,
                             std::vector<weir::CallbackRegistration>& keep) {
  const weir::MetricLabels labels = {{"pipeline", kPipelineName}};
  auto stat = [pipeline](auto field) {
    return [pipeline, field] {
      return static_cast<double>(pipeline->stats().*field);
    };
  };
  struct Series {
    const char* name;
    const char* help;
    bool counter;
    std::function<double()> fn;
  };
  std::vector<Series> series = {
      {"weir_records_in_total", "Records read from the source.", true,
       stat(&weir::PipelineStats::records_in)},
      {"weir_dead_letters_total", "Records sent to the dead-letter queue.",
       true, stat(&weir::PipelineStats::dead_letters)},
      {"weir_late_records_total",
       "Records that arrived after their window's allowed lateness.", true,
       stat(&weir::PipelineStats::late_records)},
      {"weir_updates_written_total", "Feature updates accepted by the sink.",
       true, stat(&weir::PipelineStats::updates_written)},
      {"weir_pending_updates", "Feature updates waiting in front of the sink.",
       false, stat(&weir::PipelineStats::pending_updates)},
      {"weir_checkpoints_completed_total", "Checkpoints published.", true,
       stat(&weir::PipelineStats::checkpoints_completed)},
      {"weir_checkpoints_failed_total", "Checkpoints that failed.", true,
       stat(&weir::PipelineStats::checkpoints_failed)},
      {"weir_checkpoint_bytes_uploaded_total",
       "Bytes uploaded to the checkpoint store.", true,
       stat(&weir::PipelineStats::checkpoint_bytes_uploaded)},
      {"weir_partitions_assigned", "Input partitions assigned.", false,
       stat(&weir::PipelineStats::partitions_assigned)},
      {"weir_partitions_restored_total",
       "Partitions restored from a checkpoint.", true,
       stat(&weir::PipelineStats::partitions_restored)},
      {"weir_paused_seconds_total",
       "Time the input was paused because the sink fell behind.", true,
       [pipeline] { return absl::ToDoubleSeconds(pipeline->stats().paused); }},
      {"weir_last_checkpoint_duration_seconds",
       "Time the last published checkpoint took, from its start on the "
       "processing thread to its last manifest.",
       false,
       [pipeline] {
         return absl::ToDoubleSeconds(
             pipeline->stats().last_checkpoint_duration);
       }},
      {"weir_checkpoints_postponed_total",
       "Checkpoints put off because the sink refused the pending updates.",
       true, stat(&weir::PipelineStats::checkpoints_postponed)},
      {"weir_restore_fallbacks_total",
       "Checkpoints a restore skipped as corrupt or missing.", true,
       stat(&weir::PipelineStats::restore_fallbacks)},
      {"weir_backpressure_ratio",
       "Share of the time since partitions were first assigned that the "
       "input was paused (backpressure).",
       false,
       [pipeline, source] {
         const std::optional<absl::Time> since = source->first_assigned();
         if (!since.has_value()) return 0.0;
         const double up = absl::ToDoubleSeconds(absl::Now() - *since);
         return up > 0 ? absl::ToDoubleSeconds(pipeline->stats().paused) / up
                       : 0.0;
       }},
  };
  for (Series& s : series) {
    absl::StatusOr<weir::CallbackRegistration> r =
        s.counter ? registry.AddCallbackCounter(s.name, s.help, std::move(s.fn),
                                                labels)
                  : registry.AddCallbackGauge(s.name, s.help, std::move(s.fn),
                                              labels);
    if (!r.ok()) return r.status();
    keep.push_back(std::move(*r));
  }
  // What a restart would have to replay grows with this: the time since the
  // last published checkpoint, or since the start before the first one.
  WEIR_ASSIGN_OR_RETURN(
      weir::CallbackRegistration age,
      registry.AddCallbackGauge(
          "weir_last_checkpoint_age_seconds",
          "Seconds since the last published checkpoint (since the start, "
          "before the first).",
          [pipeline, start] {
            const absl::Time last =
                pipeline->stats().last_checkpoint.value_or(start);
            return absl::ToDoubleSeconds(absl::Now() - last);
          },
          labels));
  keep.push_back(std::move(age));
  WEIR_ASSIGN_OR_RETURN(
      weir::CallbackRegistration lag,
      registry.AddCallbackGaugeFamily(
          "weir_consumer_lag",
          "Records between the consumer's position and the partition's log "
          "end.",
          {"topic", "partition"},
          [source] {
            std::vector<weir::CallbackSample> out;
            for (const weir::PartitionPosition& p : source->positions()) {
              const std::optional<int64_t> lag = p.lag();
              if (!lag.has_value()) continue;
              out.push_back(
                  {{p.partition.topic, absl::StrCat(p.partition.partition)},
                   static_cast<double>(*lag)});
            }
            return out;
          },
          labels));
  keep.push_back(std::move(lag));

  // Per partition, from Pipeline::partition_stats() (refreshed every
  // second by the processing thread).
  struct PartitionSeries {
    const char* name;
    const char* help;
    std::function<double(const weir::PartitionStats&)> fn;
    bool needs_watermark = false;  // absent before the first record
  };
  const std::vector<PartitionSeries> per_partition = {
      {"weir_partition_records",
       "Records read from the partition (dead letters included) by this "
       "instance since it was assigned here.",
       [](const weir::PartitionStats& p) {
         return static_cast<double>(p.records);
       }},
      {"weir_partition_next_offset", "The next offset to process.",
       [](const weir::PartitionStats& p) {
         return static_cast<double>(p.next_offset);
       }},
      {"weir_partition_watermark_seconds",
       "The partition's event-time watermark, in seconds since the epoch "
       "(absent before its first record).",
       [](const weir::PartitionStats& p) {
         return static_cast<double>(p.watermark) / 1000.0;
       },
       true},
      {"weir_watermark_lag_seconds",
       "Wall-clock time minus the partition's watermark: how far event "
       "time trails real time (meaningful for live input; negative for "
       "future-dated test data).",
       [](const weir::PartitionStats& p) {
         return absl::ToDoubleSeconds(absl::Now() -
                                      weir::FromEventTime(p.watermark));
       },
       true},
      {"weir_state_keys",
       "Window keys in the partition's state backend (estimate).",
       [](const weir::PartitionStats& p) {
         return static_cast<double>(p.state.windows_keys);
       }},
      {"weir_state_bytes",
       "Live bytes of the partition's state backend (estimate).",
       [](const weir::PartitionStats& p) {
         return static_cast<double>(p.state.bytes);
       }},
      {"weir_cache_entries",
       "Entries in the partition's pre-aggregation (write-back) cache.",
       [](const weir::PartitionStats& p) {
         return static_cast<double>(p.op.cache_entries);
       }},
  };
  for (const PartitionSeries& ps : per_partition) {
    auto fn = ps.fn;
    const bool needs_watermark = ps.needs_watermark;
    WEIR_ASSIGN_OR_RETURN(
        weir::CallbackRegistration r,
        registry.AddCallbackGaugeFamily(
            ps.name, ps.help, {"topic", "partition"},
            [pipeline, fn, needs_watermark] {
              std::vector<weir::CallbackSample> out;
              for (const weir::PartitionStats& p :
                   pipeline->partition_stats()) {
                if (needs_watermark && p.watermark == weir::kMinEventTime) {
                  continue;
                }
                out.push_back(
                    {{p.partition.topic, absl::StrCat(p.partition.partition)},
                     fn(p)});
              }
              return out;
            },
            labels));
    keep.push_back(std::move(r));
  }

  // Throughput per partition over the last >= 1 s between scrapes, and the
  // skew between the busiest and the idlest partition.
  auto throughput = std::make_shared<ThroughputTracker>();
  WEIR_ASSIGN_OR_RETURN(
      weir::CallbackRegistration rate,
      registry.AddCallbackGaugeFamily(
          "weir_partition_records_per_second",
          "Records per second processed per partition, over the last "
          "second or more.",
          {"topic", "partition"},
          [pipeline, throughput] {
            std::vector<weir::CallbackSample> out;
            for (const auto& [tp, r] :
                 throughput->Rates(pipeline->partition_stats())) {
              out.push_back({{tp.topic, absl::StrCat(tp.partition)}, r});
            }
            return out;
          },
          labels));
  keep.push_back(std::move(rate));
  WEIR_ASSIGN_OR_RETURN(
      weir::CallbackRegistration skew,
      registry.AddCallbackGauge(
          "weir_partition_skew_ratio",
          "Records per second of the busiest partition over the idlest "
          "(rates floored at 1/s); 1 when balanced or idle.",
          [pipeline, throughput] {
            double lo = 0;
            double hi = 0;
            bool any = false;
            for (const auto& [tp, r] :
                 throughput->Rates(pipeline->partition_stats())) {
              const double v = std::max(1.0, r);
              lo = any ? std::min(lo, v) : v;
              hi = any ? std::max(hi, v) : v;
              any = true;
            }
            return any ? hi / lo : 1.0;
          },
          labels));
  keep.push_back(std::move(skew));

  // The hottest keys over all partitions (Space-Saving counts: an upper
  // bound of each key's records since its partition was assigned here).
  WEIR_ASSIGN_OR_RETURN(
      weir::CallbackRegistration hot,
      registry.AddCallbackGaugeFamily(
          "weir_hot_key_records",
          "Records of the hottest keys (Space-Saving estimate, an upper "
          "bound), rank 1 the hottest.",
          {"rank", "key", "partition"},
          [pipeline] {
            std::vector<std::pair<weir::HeavyHitter, int32_t>> all;
            for (const weir::PartitionStats& p : pipeline->partition_stats()) {
              for (const weir::HeavyHitter& h : p.hot_keys) {
                all.emplace_back(h, p.partition.partition);
              }
            }
            std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
              return a.first.count != b.first.count
                         ? a.first.count > b.first.count
                         : a.first.key < b.first.key;
            });
            std::vector<weir::CallbackSample> out;
            for (size_t i = 0; i < all.size() && i < kHotKeysShown; ++i) {
              out.push_back({{absl::StrCat(i + 1), all[i].first.key,
                              absl::StrCat(all[i].second)},
                             static_cast<double>(all[i].first.count)});
            }
            return out;
          },
          labels));
  keep.push_back(std::move(hot));
  return absl::OkStatus();
}

// ---- Reading features back for the summary ----------------------------------

std::string Minute(weir::EventTime t) {
  return absl::FormatTime("%Y-%m-%d %H:%M", weir::FromEventTime(t),
                          absl::UTCTimeZone());
}

std::string ShowValue(const weir::Value& v) {
  if (v.type() == weir::Value::Type::kDouble) {
    return absl::StrFormat("%.2f", v.double_value());
  }
  return v.ToString();
}

// One line per user: the newest value of each feature, as the sink holds it.
std::vector<std::string> ReadBack(const Config& c) {
  std::vector<std::string> lines;
  const weir::KeyedWindowOptions features = FraudFeatures();
  if (absl::StartsWith(c.sink, "file:")) {
    absl::StatusOr<std::vector<weir::FeatureUpdate>> all =
        weir::ReadFeatureFile(c.sink.substr(5));
    if (!all.ok()) return {absl::StrCat("(", all.status().ToString(), ")")};
    std::map<std::pair<std::string, std::string>, weir::FeatureUpdate> latest;
    for (weir::FeatureUpdate& u : weir::LatestFeatureUpdates(*all)) {
      latest[{u.key, u.feature}] = std::move(u);
    }
    for (const std::string& user : c.show_users) {
      std::string line = absl::StrFormat("%-8s", user);
      for (const weir::FeatureSpec& f : features.features) {
        auto it = latest.find({user, f.name});
        if (it == latest.end()) continue;
        absl::StrAppend(&line, "  ", f.name, "[",
                        Minute(it->second.window.start),
                        "]=", ShowValue(it->second.value));
      }
      lines.push_back(std::move(line));
    }
    return lines;
  }
  if (absl::StartsWith(c.sink, "redis://")) {
    absl::StatusOr<std::pair<std::string, int>> hp = ParseRedisUri(c.sink);
    if (!hp.ok()) return {};
    timeval tv = {2, 0};
    redisContext* ctx =
        redisConnectWithTimeout(hp->first.c_str(), hp->second, tv);
    if (ctx == nullptr || ctx->err != 0) {
      if (ctx != nullptr) redisFree(ctx);
      return {"(Redis did not answer)"};
    }
    for (const std::string& user : c.show_users) {
      const std::string key = c.redis_key_prefix + user;
      auto* r = static_cast<redisReply*>(
          redisCommand(ctx, "HGETALL %b", key.data(), key.size()));
      if (r == nullptr) break;
      std::map<std::string, std::string> fields;
      if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
          fields[std::string(r->element[i]->str, r->element[i]->len)] =
              std::string(r->element[i + 1]->str, r->element[i + 1]->len);
        }
      }
      freeReplyObject(r);
      std::string line = absl::StrFormat("%-8s", user);
      for (const weir::FeatureSpec& f : features.features) {
        auto v = fields.find(f.name);
        if (v == fields.end()) continue;
        std::string value = v->second;
        double d = 0;
        if (value.find('.') != std::string::npos &&
            absl::SimpleAtod(value, &d)) {
          value = absl::StrFormat("%.2f", d);
        }
        std::string window;
        int64_t start = 0;
        auto w = fields.find(f.name + "@w");
        if (w != fields.end() && absl::SimpleAtoi(w->second, &start)) {
          window = absl::StrCat("[", Minute(start), "]");
        }
        absl::StrAppend(&line, "  ", f.name, window, "=", value);
      }
      lines.push_back(absl::StrCat(line, "   (HGETALL ", key, ")"));
    }
    redisFree(ctx);
    return lines;
  }
  return {absl::StrCat("(in Kafka topic ", c.sink.substr(6), ")")};
}

// ---- The service ------------------------------------------------------------

// The process's peak resident set size (VmHWM of /proc/self/status), or -1.
int64_t PeakRssKib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    long long v = 0;
    if (std::sscanf(line, "VmHWM: %lld kB", &v) == 1) {
      kib = v;
      break;
    }
  }
  std::fclose(f);
  return kib;
}

// Logs the phase the service is in on stderr, one line `weir phase=<name>`
// per change (docs/operations.md, "Phases"): "startup" here, then the
// pipeline's phases (weir::PipelinePhaseName).
void LogPhase(const char* name) {
  std::fprintf(stderr, "weir phase=%s\n", name);
  std::fflush(stderr);
}

absl::Status RunService(Config c) {
  const absl::Time start = absl::Now();
  LogPhase("startup");

  // Local state: the given directory or a temporary one.
  std::optional<weir::testing::TempDir> tmp;
  if (c.state_dir.empty()) {
    WEIR_ASSIGN_OR_RETURN(tmp,
                          weir::testing::TempDir::Create("fraud-features"));
    c.state_dir = tmp->path();
  }
  std::error_code ec;
  std::filesystem::create_directories(c.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("--state_dir ", c.state_dir, ": ", ec.message()));
  }
  c.state_dir = std::filesystem::absolute(c.state_dir).string();
  if (c.checkpoint_uri.empty()) {
    c.checkpoint_uri = absl::StrCat("file://", c.state_dir, "/checkpoints");
  }
  if (c.sink.empty()) {
    c.sink = RedisAnswers("127.0.0.1", 6379)
                 ? "redis://127.0.0.1:6379"
                 : absl::StrCat("file:", c.state_dir, "/features.jsonl");
  }

  // The embedded default: a local broker with the W-PAY stream in it.
  std::unique_ptr<weir::LocalBroker> broker;
  absl::Duration produce_time;
  if (c.embedded) {
    WEIR_ASSIGN_OR_RETURN(std::string binary, FindBrokerBinary(c));
    weir::LocalBroker::Options bo;
    bo.binary_path = binary;
    bo.topics = {{c.topic, c.partitions}, {c.topic + ".dlq", 1}};
    if (absl::StartsWith(c.sink, "kafka:")) {
      bo.topics.push_back({c.sink.substr(6), c.partitions});
    }
    WEIR_ASSIGN_OR_RETURN(broker, weir::LocalBroker::Start(bo));
    c.bootstrap = broker->bootstrap();
    std::printf(
        "fraud-features: started the local broker at %s; producing %lld "
        "W-PAY payments into '%s' (%d partitions)...\n",
        c.bootstrap.c_str(), static_cast<long long>(c.events), c.topic.c_str(),
        c.partitions);
    std::fflush(stdout);
    const absl::Time t0 = absl::Now();
    WEIR_RETURN_IF_ERROR(ProduceWPay(c));
    produce_time = absl::Now() - t0;
  }

  // The parts.
  WEIR_ASSIGN_OR_RETURN(auto decoder, weir::JsonDecoder::Create(WPaySchema()));
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<weir::Sink> raw_sink, MakeSink(c));
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<weir::DeadLetterQueue> dlq, MakeDlq(c));
  weir::ObjectStoreOptions store_options;
  if (!c.s3_endpoint.empty()) store_options.s3.endpoint = c.s3_endpoint;
  store_options.s3.request_timeout = c.s3_request_timeout;
  store_options.s3.max_attempts = c.s3_max_attempts;
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<weir::ObjectStore> store,
                        weir::OpenObjectStore(c.checkpoint_uri, store_options));
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<weir::KafkaSource> kafka,
                        MakeSource(c));
  BoundedSource source(kafka.get(), {.max_events = c.max_events,
                                     .max_time = c.max_time,
                                     .idle_exit = c.idle_exit});

  weir::MetricsRegistry registry;
  std::atomic<int> stop_signal{0};
  const weir::MetricLabels pipeline_labels = {{"pipeline", kPipelineName}};
  InstrumentedSink::Metrics sink_metrics;
  WEIR_ASSIGN_OR_RETURN(
      sink_metrics.write_seconds,
      registry.AddHistogram("weir_sink_write_seconds",
                            "Time of one Sink::Write (a batch of updates).",
                            weir::DefaultLatencyBuckets(), pipeline_labels));
  WEIR_ASSIGN_OR_RETURN(
      sink_metrics.errors,
      registry.AddCounter("weir_sink_errors_total",
                          "Sink calls that failed (other than refusals).",
                          pipeline_labels));
  WEIR_ASSIGN_OR_RETURN(
      sink_metrics.refusals,
      registry.AddCounter("weir_sink_refusals_total",
                          "Sink calls refused with kUnavailable (retried; "
                          "the input pauses while updates pile up).",
                          pipeline_labels));
  InstrumentedSink instrumented_sink(
      std::move(raw_sink), c.sink_delay,
      [&source, &stop_signal] {
        return source.AtEnd() || stop_signal.load() != 0;
      },
      sink_metrics);
  weir::Sink* const sink = &instrumented_sink;

  WEIR_ASSIGN_OR_RETURN(auto resources, weir::RocksDbResources::Create({}));
  weir::PipelineOptions options;
  options.name = kPipelineName;
  options.version = c.pipeline_version;
  options.features = FraudFeatures();
  options.state_dir = absl::StrCat(c.state_dir, "/live");
  options.backend_factory = weir::RocksDbBackendFactory(resources);
  options.checkpoints.interval = c.checkpoint_interval;
  options.checkpoints.tolerated_failures = c.checkpoint_tolerated_failures;
  options.checkpoints.min_pause = c.checkpoint_min_pause;
  options.checkpoints.retained = c.checkpoint_retained;
  options.max_pending_updates = static_cast<size_t>(c.max_pending_updates);
  options.checkpoint_upload_threads = c.checkpoint_upload_threads;
  options.sink_batch_size = static_cast<size_t>(c.sink_batch_size);
  // Testing only (--fault_kill_at): outlives the pipeline, declared first.
  weir::testing::FaultInjectionEnv fault_env;
  if (!c.fault_kill_at.empty()) {
    fault_env.KillAtStep(c.fault_kill_at);
    options.env = &fault_env;
  }
  options.phase_listener = [](weir::PipelinePhase phase) {
    LogPhase(weir::PipelinePhaseName(phase));
  };
  weir::PipelineParts parts{&source, decoder.get(), sink, store.get(),
                            dlq.get()};

  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<weir::Pipeline> pipeline,
                        weir::Pipeline::Create(options, parts));
  std::vector<weir::CallbackRegistration> metric_series;
  WEIR_RETURN_IF_ERROR(
      RegisterMetrics(registry, pipeline.get(), &source, start, metric_series));
  std::unique_ptr<weir::MetricsServer> server;
  if (c.metrics_port >= 0) {
    weir::MetricsServerOptions mo;
    mo.port = c.metrics_port;
    WEIR_ASSIGN_OR_RETURN(server, weir::MetricsServer::Start(&registry, mo));
  }

  std::printf(
      "fraud-features: consuming '%s' at %s as group '%s'; checkpoints -> "
      "%s every %s; features -> %s; dead letters -> %s%s\n",
      c.topic.c_str(), c.bootstrap.c_str(), c.group.c_str(),
      c.checkpoint_uri.c_str(),
      absl::FormatDuration(c.checkpoint_interval).c_str(), c.sink.c_str(),
      c.dlq == "kafka" ? (c.topic + ".dlq").c_str() : c.dlq.c_str(),
      server != nullptr ? absl::StrCat("; metrics ", server->url()).c_str()
                        : "");
  std::fflush(stdout);

  absl::Status run_status;
  const absl::Time run_start = absl::Now();
  {
    SignalWatcher watcher([&](int signo) {
      stop_signal.store(signo);
      pipeline->Stop();
    });
    run_status = pipeline->Run();
  }
  const absl::Duration run_time = absl::Now() - run_start;
  const weir::PipelineStats stats = pipeline->stats();
  // Leaving the group hands the partitions over before the summary.
  source.Close().IgnoreError();
  if (server != nullptr) server->Stop();
  WEIR_RETURN_IF_ERROR(run_status);

  // The summary.
  std::string why = source.end_reason();
  if (why.empty()) {
    why = stop_signal.load() != 0
              ? absl::StrCat("stopped by ", strsignal(stop_signal.load()))
              : "stopped";
  }
  const double secs = std::max(1e-3, absl::ToDoubleSeconds(run_time));
  std::printf("\nfraud-features summary (%s, in %.1f s)\n", why.c_str(), secs);
  if (c.embedded) {
    std::printf(
        "  produced          %lld W-PAY payments in %.1f s (seed %lld, "
        "%lld users)\n",
        static_cast<long long>(c.events), absl::ToDoubleSeconds(produce_time),
        static_cast<long long>(c.seed), static_cast<long long>(c.users));
  }
  std::printf("  events            %lld read, %.0f events/s\n",
              static_cast<long long>(stats.records_in),
              static_cast<double>(stats.records_in) / secs);
  std::printf("  features written  %lld updates -> %s\n",
              static_cast<long long>(stats.updates_written), c.sink.c_str());
  std::printf(
      "  late records      %lld (beyond 1 min allowed lateness; counted, "
      "not folded)\n",
      static_cast<long long>(stats.late_records));
  std::printf("  dead letters      %lld -> %s\n",
              static_cast<long long>(stats.dead_letters),
              c.dlq == "kafka" ? ("kafka topic " + c.topic + ".dlq").c_str()
                               : c.dlq.c_str());
  std::printf(
      "  checkpoints       %lld taken, %lld failed, %lld partitions "
      "restored -> %s\n",
      static_cast<long long>(stats.checkpoints_completed),
      static_cast<long long>(stats.checkpoints_failed),
      static_cast<long long>(stats.partitions_restored),
      c.checkpoint_uri.c_str());
  std::printf("  backpressure      %.1f s paused (%.2f of the run)\n",
              absl::ToDoubleSeconds(stats.paused),
              absl::ToDoubleSeconds(stats.paused) / secs);
  std::printf("  peak RSS          %lld KiB (VmHWM)\n",
              static_cast<long long>(PeakRssKib()));
  std::vector<std::string> users = ReadBack(c);
  if (!users.empty()) {
    std::printf("\n  features of a few users, read back from the sink:\n");
    for (const std::string& line : users) std::printf("  %s\n", line.c_str());
  }
  std::fflush(stdout);
  return absl::OkStatus();
}

// Pulls every --kafka_property out of argv, so that the flag can be given
// many times (absl flags keep only the last value of a repeated flag).
std::vector<std::string> TakeRepeatedProperties(int& argc, char** argv) {
  std::vector<std::string> out;
  int w = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      while (i < argc) argv[w++] = argv[i++];
      break;
    }
    if (absl::ConsumePrefix(&arg, "--kafka_property=") ||
        absl::ConsumePrefix(&arg, "-kafka_property=")) {
      out.emplace_back(arg);
      continue;
    }
    if ((arg == "--kafka_property" || arg == "-kafka_property") &&
        i + 1 < argc) {
      out.emplace_back(argv[++i]);
      continue;
    }
    argv[w++] = argv[i];
  }
  argc = w;
  argv[argc] = nullptr;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // --help lists this file's flags (absl would look for a file named after
  // the program).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "fraud_features/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "the weir fraud-features service: reads W-PAY payments from Kafka, "
      "computes per-user fraud features over event-time windows, writes them "
      "to Redis, a file or Kafka, with a dead-letter queue, checkpoints and "
      "metrics.\n\n"
      "  fraud-features                       embedded default: local broker "
      "+ generated payments\n"
      "  fraud-features --bootstrap=HOST:PORT --state_dir=DIR ...   a real "
      "cluster");
  std::vector<std::string> properties = TakeRepeatedProperties(argc, argv);
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<Config> config = ConfigFromFlags(properties);
  if (!config.ok()) {
    std::fprintf(stderr, "fraud-features: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  absl::Status s = RunService(*std::move(config));
  if (!s.ok()) {
    std::fprintf(stderr, "fraud-features: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
