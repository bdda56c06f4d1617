// The service layer (weir/service.h): the parts a Kafka feature service
// needs around a Pipeline, from the options to the summary.

#include "weir/service.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "weir/dlq.h"
#include "weir/env.h"
#include "weir/http/metrics_server.h"
#include "weir/internal/backfill_input.h"
#include "weir/internal/scratch_dir.h"
#include "weir/kafka/kafka_dead_letter_queue.h"
#include "weir/kafka/kafka_sink.h"
#include "weir/kafka/kafka_source.h"
#include "weir/late_records.h"
#include "weir/metrics.h"
#include "weir/object_store.h"
#include "weir/pipeline.h"
#include "weir/redis/redis_sink.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/sinks.h"
#include "weir/state.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

// ---- A bounded view of the source -------------------------------------------

// Forwards to a source and decides when a bounded run is over: once it is,
// Poll returns nothing and AtEnd() is true, which makes Pipeline::Run fire
// every window, checkpoint and return. Also keeps the latest partition
// positions for the metrics thread (a Source is single-threaded).
class BoundedSource final : public weir::ForwardingSource,
                            private weir::PartitionListener {
 public:
  struct Limits {
    int64_t max_events = 0;  // 0: none
    absl::Duration max_time = absl::InfiniteDuration();
    absl::Duration idle_exit = absl::InfiniteDuration();
  };

  // `caught_up` is called once, on the polling thread, with the number of
  // partitions, the first time every assigned partition has no lag.
  BoundedSource(weir::Source* inner, Limits limits,
                std::function<void(size_t partitions)> caught_up)
      : ForwardingSource(inner),
        limits_(limits),
        start_(absl::Now()),
        caught_up_(std::move(caught_up)) {
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
    ForwardingSource::SetPartitionListener(l == nullptr ? nullptr : this);
  }
  absl::StatusOr<absl::Span<const weir::RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override {
    if (ended_) return absl::Span<const weir::RawRecord>();
    auto batch = ForwardingSource::Poll(max_records, timeout);
    if (!batch.ok()) return batch;
    const absl::Time now = absl::Now();
    if (!batch->empty()) last_arrival_ = now;
    absl::StatusOr<std::vector<weir::PartitionPosition>> positions =
        ForwardingSource::Positions();
    if (!positions.ok()) return positions.status();
    int64_t read = 0;
    bool caught_up = !positions->empty();
    for (const weir::PartitionPosition& p : *positions) {
      read += p.position.value_or(0);
      const std::optional<int64_t> lag = p.lag();
      if (!lag.has_value() || *lag > 0) caught_up = false;
    }
    if (caught_up && caught_up_) {
      caught_up_(positions->size());
      caught_up_ = nullptr;
    }
    std::string reason;
    if (limits_.max_events > 0 && read >= limits_.max_events) {
      reason = absl::StrCat("read ", read, " records (--max_events)");
    } else if (now - start_ >= limits_.max_time) {
      reason = "time limit (--max_seconds)";
    } else if (ever_assigned_ && caught_up &&
               now - last_arrival_ >= limits_.idle_exit) {
      reason = "no lag and idle (--idle_exit)";
    } else if (ForwardingSource::AtEnd()) {
      reason = absl::StrCat("read ", read, " records, the whole input");
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

  const Limits limits_;
  const absl::Time start_;
  std::function<void(size_t)> caught_up_;
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
      pthread_setname_np(pthread_self(), "weir-signals");
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
          absl::StrCat("sink: bad Redis port in '", uri, "'"));
    }
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sink: no Redis host in '", uri, "'"));
  }
  return std::make_pair(host, port);
}

absl::StatusOr<std::unique_ptr<weir::Sink>> MakeSink(const ServiceOptions& c) {
  if (absl::StartsWith(c.sink, "file:")) {
    weir::FileSinkOptions o;
    o.path = c.sink.substr(5);
    o.env = c.env;
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

// Which windows' updates the service writes: those starting at or after a
// replay's --replay_from, those a time-range backfill covers completely
// (weir::BackfillWritesWindow), or (unset) every window.
std::function<bool(const weir::Window&)> WrittenWindows(
    const weir::ServiceOptions& c) {
  if (c.replay_from.has_value()) {
    const weir::EventTime from = absl::ToUnixMillis(*c.replay_from);
    return [from](const weir::Window& w) { return w.start >= from; };
  }
  if (c.backfill.has_value() && c.backfill->time_range()) {
    return [b = *c.backfill](const weir::Window& w) {
      return weir::BackfillWritesWindow(b, w);
    };
  }
  return nullptr;
}

// Wraps the sink the service writes to: times each Write into the sink
// latency histogram and counts errors and refusals. With a delay (the
// testing/chaos flag --sink_delay_ms) it also plays a slow store: after an
// accepted batch it is busy for `delay`, and a Write while busy is refused
// with kUnavailable, which makes the pipeline queue updates, pause the input
// and retry; once `finishing()` is true (the bounded input ended or a stop
// was asked for), it waits out the busy time instead, because the final
// checkpoint must be able to hand everything to the sink. With `writes`
// (a replay's or a time-range backfill's rule: WrittenWindows) it writes
// only the updates of the windows `writes` accepts, and counts the others
// as withheld.
// Called on the processing thread only.
class InstrumentedSink final : public weir::Sink {
 public:
  struct Metrics {
    weir::Histogram* write_seconds = nullptr;
    weir::Counter* errors = nullptr;
    weir::Counter* refusals = nullptr;
  };

  InstrumentedSink(std::unique_ptr<weir::Sink> inner, absl::Duration delay,
                   std::function<bool()> finishing, Metrics metrics,
                   std::function<bool(const weir::Window&)> writes)
      : inner_(std::move(inner)),
        delay_(delay),
        finishing_(std::move(finishing)),
        metrics_(metrics),
        writes_(std::move(writes)) {}

  // Updates of windows `writes` refused, not written.
  int64_t withheld() const { return withheld_.load(); }

  absl::Status Write(absl::Span<const weir::FeatureUpdate> updates) override {
    if (writes_) {
      kept_.clear();
      for (const weir::FeatureUpdate& u : updates) {
        if (writes_(u.window)) kept_.push_back(u);
      }
      if (kept_.size() != updates.size()) {
        const int64_t withheld =
            static_cast<int64_t>(updates.size() - kept_.size());
        if (kept_.empty()) {
          withheld_.fetch_add(withheld);
          return absl::OkStatus();
        }
        absl::Status s = WriteAll(kept_);
        if (s.ok()) withheld_.fetch_add(withheld);
        return s;
      }
    }
    return WriteAll(updates);
  }

  absl::Status Flush() override { return Count(inner_->Flush()); }
  absl::Status PreCommit(int64_t id) override {
    return Count(inner_->PreCommit(id));
  }
  absl::Status Commit(int64_t id) override { return Count(inner_->Commit(id)); }
  absl::Status Abort(int64_t id) override { return Count(inner_->Abort(id)); }

 private:
  absl::Status WriteAll(absl::Span<const weir::FeatureUpdate> updates) {
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
  const std::function<bool(const weir::Window&)> writes_;
  std::vector<weir::FeatureUpdate> kept_;
  std::atomic<int64_t> withheld_{0};
  absl::Time busy_until_ = absl::InfinitePast();
};

absl::StatusOr<std::unique_ptr<weir::DeadLetterQueue>> MakeDlq(
    const ServiceOptions& c) {
  if (absl::StartsWith(c.dlq, "file:")) {
    weir::FileDeadLetterQueueOptions o;
    o.path = c.dlq.substr(5);
    o.env = c.env;
    WEIR_ASSIGN_OR_RETURN(auto dlq, weir::FileDeadLetterQueue::Create(o));
    return std::unique_ptr<weir::DeadLetterQueue>(std::move(dlq));
  }
  weir::KafkaDeadLetterQueueOptions o;
  o.bootstrap_servers = c.bootstrap;
  WEIR_ASSIGN_OR_RETURN(auto dlq, weir::KafkaDeadLetterQueue::Create(o));
  return std::unique_ptr<weir::DeadLetterQueue>(std::move(dlq));
}

absl::StatusOr<std::unique_ptr<weir::KafkaSource>> MakeSource(
    const ServiceOptions& c, std::optional<absl::Time> start_time) {
  weir::KafkaSourceOptions o;
  o.start_time = start_time;
  o.bootstrap_servers = c.bootstrap;
  o.group_id = c.group;
  o.topics = {c.topic};
  o.client_id = c.program_name;
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
                             const std::string& name,
                             const weir::Pipeline* pipeline,
                             const BoundedSource* source, absl::Time start,
                             std::vector<weir::CallbackRegistration>& keep) {
  const weir::MetricLabels labels = {{"pipeline", name}};
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
      {"weir_cache_bytes",
       "Bytes the partition's write-back cache holds: entries, keys, index "
       "and sketches.",
       [](const weir::PartitionStats& p) {
         return static_cast<double>(p.op.cache_bytes);
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
std::vector<std::string> ReadBack(const ServiceOptions& c,
                                  const KeyedWindowOptions& features) {
  std::vector<std::string> lines;
  if (absl::StartsWith(c.sink, "file:")) {
    absl::StatusOr<std::vector<weir::FeatureUpdate>> all =
        weir::ReadFeatureFile(c.sink.substr(5));
    if (!all.ok()) return {absl::StrCat("(", all.status().ToString(), ")")};
    std::map<std::pair<std::string, std::string>, weir::FeatureUpdate> latest;
    for (weir::FeatureUpdate& u : weir::LatestFeatureUpdates(*all)) {
      latest[{u.key, u.feature}] = std::move(u);
    }
    for (const std::string& user : c.show_keys) {
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
    for (const std::string& user : c.show_keys) {
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

// Logs the phase the service is in on stderr, one line `weir phase=<name>`
// per change (docs/operations.md, "Phases"): "startup" here, then the
// pipeline's phases (weir::PipelinePhaseName).
// Then tells `listener` (ServiceOptions::phase_listener), if any.
void LogPhase(const char* name,
              const std::function<void(std::string_view)>& listener) {
  std::fprintf(stderr, "weir phase=%s\n", name);
  std::fflush(stderr);
  if (listener) listener(name);
}

// The late-record output's description for the printed lines.
std::string LateOutputName(const ServiceOptions& c) {
  if (!c.late_output.has_value()) return "";
  return *c.late_output == "kafka" ? "kafka topic " + c.topic + ".late"
                                   : *c.late_output;
}

std::string DlqName(const ServiceOptions& c) {
  return c.dlq == "kafka" ? "kafka topic " + c.topic + ".dlq" : c.dlq;
}

absl::StatusOr<std::unique_ptr<LateRecordOutput>> MakeLateOutput(
    const ServiceOptions& c) {
  if (!c.late_output.has_value()) return nullptr;
  DeadLetterLateRecordOutputOptions lo;
  lo.pipeline_name = c.name;
  lo.pipeline_version = c.pipeline_version;
  std::unique_ptr<DeadLetterQueue> queue;
  if (absl::StartsWith(*c.late_output, "file:")) {
    FileDeadLetterQueueOptions o;
    o.path = c.late_output->substr(5);
    o.env = c.env;
    WEIR_ASSIGN_OR_RETURN(queue, FileDeadLetterQueue::Create(o));
  } else {
    KafkaDeadLetterQueueOptions o;
    o.bootstrap_servers = c.bootstrap;
    o.topic_suffix = ".late";
    WEIR_ASSIGN_OR_RETURN(queue, KafkaDeadLetterQueue::Create(o));
  }
  WEIR_ASSIGN_OR_RETURN(
      auto out, DeadLetterLateRecordOutput::Create(lo, std::move(queue)));
  return std::unique_ptr<LateRecordOutput>(std::move(out));
}

bool ValidName(const std::string& name) {
  if (name.empty()) return false;
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status ServiceOptions::Validate() const {
  auto bad = [](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
  };
  if (!ValidName(name)) return bad("name", "want [a-z0-9_]+");
  if (backfill.has_value()) WEIR_RETURN_IF_ERROR(backfill->Validate());
  // A plan reads no Kafka; a file backfill only for a Kafka output.
  const bool uses_kafka =
      !plan.has_value() &&
      (!backfill.has_value() || backfill->kafka() || dlq == "kafka" ||
       late_output == "kafka" || absl::StartsWith(sink, "kafka:"));
  if (bootstrap.empty() && uses_kafka) return bad("bootstrap", "empty");
  if (backfill.has_value() && replay_from.has_value()) {
    return bad("replay_from", "not with --backfill_from");
  }
  if (topic.empty()) return bad("topic", "empty");
  if (group.empty()) return bad("group", "empty");
  for (const std::string& p : kafka_properties) {
    if (p.find('=') == std::string::npos || p[0] == '=') {
      return bad("kafka_property",
                 absl::StrCat("want key=value, got '", p, "'"));
    }
  }
  if (max_events.has_value() && *max_events <= 0) {
    return bad("max_events", "must be positive");
  }
  if (max_time.has_value() && *max_time <= absl::ZeroDuration()) {
    return bad("max_seconds", "must be positive");
  }
  if (idle_exit.has_value() && *idle_exit <= absl::ZeroDuration()) {
    return bad("idle_exit", "must be positive");
  }
  if (state_backend != "rocksdb" && state_backend != "memory") {
    return bad("state_backend", "rocksdb or memory");
  }
  if (checkpoint_interval <= absl::ZeroDuration()) {
    return bad("checkpoint_interval", "must be positive");
  }
  if (checkpoint_tolerated_failures < 0) {
    return bad("checkpoint_tolerated_failures", "must not be negative");
  }
  if (checkpoint_retained < 1) return bad("checkpoint_retained", "at least 1");
  if (checkpoint_min_pause < absl::ZeroDuration()) {
    return bad("checkpoint_min_pause", "must not be negative");
  }
  if (checkpoint_upload_threads < 1 || checkpoint_upload_threads > 64) {
    return bad("checkpoint_upload_threads", "1 to 64");
  }
  if (s3_request_timeout <= absl::ZeroDuration()) {
    return bad("s3_request_timeout", "must be positive");
  }
  if (s3_max_attempts < 1) return bad("s3_max_attempts", "at least 1");
  if (!sink.empty() && !absl::StartsWith(sink, "file:") &&
      !absl::StartsWith(sink, "redis://") &&
      !absl::StartsWith(sink, "kafka:")) {
    return bad("sink", "file:PATH, redis://HOST:PORT or kafka:TOPIC");
  }
  if (absl::StartsWith(sink, "redis://")) {
    WEIR_RETURN_IF_ERROR(ParseRedisUri(sink).status());
  }
  if (dlq != "kafka" && !absl::StartsWith(dlq, "file:")) {
    return bad("dlq", "kafka or file:PATH");
  }
  if (late_output.has_value() && *late_output != "kafka" &&
      !(absl::StartsWith(*late_output, "file:") && late_output->size() > 5)) {
    return bad("late_output", "kafka or file:PATH");
  }
  if (sink_batch_size < 1) return bad("sink_batch_size", "must be positive");
  if (max_pending_updates < 1) {
    return bad("max_pending_updates", "must be positive");
  }
  if (sink_delay < absl::ZeroDuration() || sink_delay > absl::Minutes(1)) {
    return bad("sink_delay_ms", "0 to 60000");
  }
  if (metrics_port.has_value() &&
      (*metrics_port < 0 || *metrics_port > 65535)) {
    return bad("metrics_port", "-1, 0 or a port");
  }
  if (env == nullptr) return bad("env", "null");
  if (format != "json" && format != "avro")
    return bad("format", "json or avro");
  if (replay_from.has_value() && (*replay_from == absl::InfinitePast() ||
                                  *replay_from == absl::InfiniteFuture())) {
    return bad("replay_from", "a time (RFC 3339, e.g. 2026-12-05T08:00:00Z)");
  }
  if (plan.has_value()) {
    if (plan->sample.empty()) return bad("plan_sample", "required with --plan");
    if (format != "json") {
      return bad("plan", "calibrates on a sample of JSON lines: --format=json");
    }
    // The flags are the fields' names with "plan_" in front.
    absl::Status s =
        plan->TargetsFor(checkpoint_interval, absl::Hours(24)).Validate();
    if (s.ok()) s = plan->calibration.Validate();
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("plan_", s.message()));
    }
  }
  if (format == "avro" && schema_registry.empty()) {
    return bad("schema_registry", "required with --format=avro");
  }
  return absl::OkStatus();
}

class Service::Impl {
 public:
  Impl(ServiceOptions options, KeyedWindowOptions features, Decoder* decoder)
      : c_(std::move(options)),
        features_(std::move(features)),
        decoder_(decoder) {}

  ~Impl() {
    if (server_ != nullptr) server_->Stop();
    pipeline_.reset();
  }

  absl::Status Init();
  absl::Status Run();
  void Stop() {
    stop_requested_.store(true);
    if (pipeline_ != nullptr) pipeline_->Stop();
  }
  std::string metrics_url() const {
    return server_ != nullptr ? server_->url() : "";
  }
  PipelineStats stats() const { return pipeline_->stats(); }

 private:
  absl::Status ResolveDefaults();
  // Logs `weir caught_up ...` (docs/operations.md, "Phases").
  void LogCaughtUp(size_t partitions);
  void PrintSummary(const std::string& why, absl::Duration run_time);

  // A temporary state directory (when none is given), removed after every
  // other member is gone.
  internal::ScratchDir tmp_dir_;
  ServiceOptions c_;
  const KeyedWindowOptions features_;
  Decoder* const decoder_;
  const absl::Time start_ = absl::Now();
  std::atomic<int> stop_signal_{0};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> failed_{false};
  std::atomic<PipelinePhase> phase_{PipelinePhase::kJoin};

  std::unique_ptr<DeadLetterQueue> dlq_;
  std::unique_ptr<LateRecordOutput> late_output_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<KafkaSource> kafka_;
  std::unique_ptr<internal::BackfillInput> backfill_;
  std::unique_ptr<BoundedSource> source_;
  MetricsRegistry registry_;
  std::unique_ptr<InstrumentedSink> sink_;
  std::shared_ptr<RocksDbResources> resources_;
  std::unique_ptr<Pipeline> pipeline_;
  std::vector<CallbackRegistration> metric_series_;
  std::unique_ptr<MetricsServer> server_;
};

void Service::Impl::LogCaughtUp(size_t partitions) {
  const absl::Duration after = absl::Now() - start_;
  // The lowest partition watermark, as of the pipeline's last refresh of
  // its partition figures.
  EventTime watermark = kMinEventTime;
  if (pipeline_ != nullptr) {
    bool first = true;
    for (const PartitionStats& p : pipeline_->partition_stats()) {
      watermark = first ? p.watermark : std::min(watermark, p.watermark);
      first = false;
    }
  }
  std::string line = absl::StrFormat(
      "weir caught_up partitions=%d lag=0 after_s=%.1f watermark_ms=%s",
      partitions, absl::ToDoubleSeconds(after),
      watermark == kMinEventTime ? "none" : absl::StrCat(watermark));
  if (c_.replay_from.has_value()) {
    absl::StrAppend(&line, " replay_from=",
                    absl::FormatTime(absl::RFC3339_sec, *c_.replay_from,
                                     absl::UTCTimeZone()));
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

absl::Status Service::Impl::ResolveDefaults() {
  if (c_.program_name.empty()) {
    c_.program_name = absl::StrReplaceAll(c_.name, {{"_", "-"}});
  }
  // Local state: the given directory or a temporary one.
  if (c_.state_dir.empty()) {
    WEIR_ASSIGN_OR_RETURN(tmp_dir_,
                          internal::ScratchDir::Create("", c_.program_name));
    c_.state_dir = tmp_dir_.path();
  }
  std::error_code ec;
  const std::filesystem::path absolute =
      std::filesystem::absolute(c_.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("--state_dir ", c_.state_dir, ": ", ec.message()));
  }
  c_.state_dir = absolute.string();
  if (absl::Status s = CreateDirectories(c_.env, c_.state_dir); !s.ok()) {
    // Its message names the path; its code stays (kUnavailable for EIO).
    return absl::Status(s.code(), absl::StrCat("--state_dir: ", s.message()));
  }
  if (c_.checkpoint_uri.empty()) {
    c_.checkpoint_uri = absl::StrCat("file://", c_.state_dir, "/checkpoints");
  }
  if (c_.backfill.has_value()) internal::ResolveBackfillDefaults(c_);
  if (c_.sink.empty()) {
    c_.sink = RedisAnswers("127.0.0.1", 6379)
                  ? "redis://127.0.0.1:6379"
                  : absl::StrCat("file:", c_.state_dir, "/features.jsonl");
  }
  return absl::OkStatus();
}

absl::Status Service::Impl::Init() {
  LogPhase("startup", c_.phase_listener);
  WEIR_RETURN_IF_ERROR(c_.Validate());
  WEIR_RETURN_IF_ERROR(ResolveDefaults());

  // The parts.
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<Sink> raw_sink, MakeSink(c_));
  WEIR_ASSIGN_OR_RETURN(dlq_, MakeDlq(c_));
  WEIR_ASSIGN_OR_RETURN(late_output_, MakeLateOutput(c_));
  ObjectStoreOptions store_options;
  store_options.local.env = c_.env;
  store_options.s3.env = c_.env;
  if (!c_.s3_endpoint.empty()) store_options.s3.endpoint = c_.s3_endpoint;
  store_options.s3.request_timeout = c_.s3_request_timeout;
  store_options.s3.max_attempts = c_.s3_max_attempts;
  WEIR_ASSIGN_OR_RETURN(store_,
                        OpenObjectStore(c_.checkpoint_uri, store_options));
  Source* input = nullptr;
  if (c_.backfill.has_value()) {
    WEIR_ASSIGN_OR_RETURN(
        backfill_,
        internal::BackfillInput::Open(
            c_, features_, [this]() -> absl::StatusOr<std::unique_ptr<Source>> {
              WEIR_ASSIGN_OR_RETURN(std::unique_ptr<KafkaSource> kafka,
                                    MakeSource(c_, std::nullopt));
              return std::unique_ptr<Source>(std::move(kafka));
            }));
    input = backfill_->source();
  } else {
    // A replay starts early enough to fill every window that starts at
    // --replay_from: a backfill's warm-up before it.
    std::optional<absl::Time> start_time;
    if (c_.replay_from.has_value()) {
      start_time = *c_.replay_from - BackfillWarmup(features_);
    }
    WEIR_ASSIGN_OR_RETURN(kafka_, MakeSource(c_, start_time));
    input = kafka_.get();
  }
  source_ = std::make_unique<BoundedSource>(
      input,
      BoundedSource::Limits{
          .max_events = c_.max_events.value_or(0),
          .max_time = c_.max_time.value_or(absl::InfiniteDuration()),
          .idle_exit = c_.idle_exit.value_or(absl::InfiniteDuration())},
      [this](size_t partitions) { LogCaughtUp(partitions); });

  const MetricLabels pipeline_labels = {{"pipeline", c_.name}};
  InstrumentedSink::Metrics sink_metrics;
  WEIR_ASSIGN_OR_RETURN(
      sink_metrics.write_seconds,
      registry_.AddHistogram("weir_sink_write_seconds",
                             "Time of one Sink::Write (a batch of updates).",
                             DefaultLatencyBuckets(), pipeline_labels));
  WEIR_ASSIGN_OR_RETURN(
      sink_metrics.errors,
      registry_.AddCounter("weir_sink_errors_total",
                           "Sink calls that failed (other than refusals).",
                           pipeline_labels));
  WEIR_ASSIGN_OR_RETURN(
      sink_metrics.refusals,
      registry_.AddCounter("weir_sink_refusals_total",
                           "Sink calls refused with kUnavailable (retried; "
                           "the input pauses while updates pile up).",
                           pipeline_labels));
  sink_ = std::make_unique<InstrumentedSink>(
      std::move(raw_sink), c_.sink_delay,
      [this] {
        return source_->AtEnd() || stop_signal_.load() != 0 ||
               stop_requested_.load();
      },
      sink_metrics, WrittenWindows(c_));

  PipelineOptions options;
  options.name = c_.name;
  options.version = c_.pipeline_version;
  options.features = features_;
  options.state_dir = absl::StrCat(c_.state_dir, "/live");
  if (c_.state_backend == "memory") {
    MemoryStateBackendOptions memory;
    memory.env = c_.env;
    options.backend_factory = MemoryBackendFactory(memory);
  } else {
    WEIR_ASSIGN_OR_RETURN(resources_, RocksDbResources::Create({}));
    options.backend_factory = RocksDbBackendFactory(resources_);
  }
  options.checkpoints.interval = c_.checkpoint_interval;
  options.checkpoints.tolerated_failures = c_.checkpoint_tolerated_failures;
  options.checkpoints.min_pause = c_.checkpoint_min_pause;
  options.checkpoints.retained = c_.checkpoint_retained;
  options.max_pending_updates = static_cast<size_t>(c_.max_pending_updates);
  options.checkpoint_upload_threads = c_.checkpoint_upload_threads;
  options.sink_batch_size = static_cast<size_t>(c_.sink_batch_size);
  options.env = c_.env;
  // A replay's partitions without a checkpoint start at the offsets for
  // its start time (MakeSource), not at offset 0.
  options.start_unrestored_at_zero = !c_.replay_from.has_value();
  options.phase_listener = [this](PipelinePhase phase) {
    phase_.store(phase);
    LogPhase(PipelinePhaseName(phase), c_.phase_listener);
  };
  PipelineParts parts{source_.get(), decoder_,   sink_.get(),
                      store_.get(),  dlq_.get(), late_output_.get()};
  WEIR_ASSIGN_OR_RETURN(pipeline_, Pipeline::Create(options, parts));
  WEIR_RETURN_IF_ERROR(RegisterMetrics(registry_, c_.name, pipeline_.get(),
                                       source_.get(), start_, metric_series_));
  if (c_.metrics_port.has_value()) {
    MetricsServerOptions mo;
    mo.port = *c_.metrics_port;
    mo.health_check = [this] {
      return failed_.load() ? absl::UnavailableError("the pipeline failed")
                            : absl::OkStatus();
    };
    mo.readiness_check = [this] {
      const PipelinePhase p = phase_.load();
      if (p == PipelinePhase::kProcessing || p == PipelinePhase::kCheckpoint) {
        return absl::OkStatus();
      }
      return absl::UnavailableError(
          absl::StrCat("phase ", PipelinePhaseName(p)));
    };
    WEIR_ASSIGN_OR_RETURN(server_, MetricsServer::Start(&registry_, mo));
  }
  return absl::OkStatus();
}

absl::Status Service::Impl::Run() {
  std::string late;
  if (late_output_ != nullptr) late = "; late records -> " + LateOutputName(c_);
  if (backfill_ != nullptr) {
    std::printf("%s: backfill %s: %s\n", c_.program_name.c_str(),
                c_.backfill->RangeName().c_str(),
                backfill_->description().c_str());
  }
  const std::string from =
      c_.backfill.has_value() && !c_.backfill->kafka()
          ? std::string("from files")
          : absl::StrCat("at ", c_.bootstrap, " as group '", c_.group, "'");
  std::printf(
      "%s: consuming '%s' %s; checkpoints -> %s every %s; features -> %s; "
      "dead letters -> %s%s%s\n",
      c_.program_name.c_str(), c_.topic.c_str(), from.c_str(),
      c_.checkpoint_uri.c_str(),
      absl::FormatDuration(c_.checkpoint_interval).c_str(), c_.sink.c_str(),
      c_.dlq == "kafka" ? (c_.topic + ".dlq").c_str() : c_.dlq.c_str(),
      late.c_str(),
      server_ != nullptr ? absl::StrCat("; metrics ", server_->url()).c_str()
                         : "");
  std::fflush(stdout);

  absl::Status run_status;
  const absl::Time run_start = absl::Now();
  {
    std::optional<SignalWatcher> watcher;
    if (c_.handle_signals) {
      watcher.emplace([this](int signo) {
        stop_signal_.store(signo);
        pipeline_->Stop();
      });
    }
    if (stop_requested_.load()) pipeline_->Stop();
    run_status = pipeline_->Run();
  }
  const absl::Duration run_time = absl::Now() - run_start;
  if (!run_status.ok()) failed_.store(true);
  // Leaving the group hands the partitions over before the summary. A
  // failure to leave is reported, not fatal: the group's session timeout
  // moves the partitions then.
  if (const absl::Status closed = source_->Close(); !closed.ok()) {
    std::fprintf(stderr, "weir: closing the source: %s\n",
                 closed.ToString().c_str());
  }
  if (server_ != nullptr) server_->Stop();
  WEIR_RETURN_IF_ERROR(run_status);

  std::string why = source_->end_reason();
  if (why.empty()) {
    why = stop_signal_.load() != 0
              ? absl::StrCat("stopped by ", strsignal(stop_signal_.load()))
              : "stopped";
  }
  PrintSummary(why, run_time);
  return absl::OkStatus();
}

void Service::Impl::PrintSummary(const std::string& why,
                                 absl::Duration run_time) {
  const PipelineStats stats = pipeline_->stats();
  const double secs = std::max(1e-3, absl::ToDoubleSeconds(run_time));
  std::printf("\n%s summary (%s, in %.1f s)\n", c_.program_name.c_str(),
              why.c_str(), secs);
  for (const std::string& note : c_.summary_notes) {
    std::printf("  %s\n", note.c_str());
  }
  std::printf("  events            %lld read, %.0f events/s\n",
              static_cast<long long>(stats.records_in),
              static_cast<double>(stats.records_in) / secs);
  std::printf("  features written  %lld updates -> %s\n",
              static_cast<long long>(stats.updates_written), c_.sink.c_str());
  if (c_.replay_from.has_value()) {
    std::printf(
        "  replay            from %s: %lld updates of earlier windows "
        "withheld\n",
        absl::FormatTime(absl::RFC3339_sec, *c_.replay_from,
                         absl::UTCTimeZone())
            .c_str(),
        static_cast<long long>(sink_->withheld()));
  } else if (c_.backfill.has_value() && c_.backfill->time_range()) {
    std::printf(
        "  backfill          %lld updates of windows the range does not "
        "cover withheld\n",
        static_cast<long long>(sink_->withheld()));
  }
  const std::string lateness =
      features_.allowed_lateness % absl::Minutes(1) == absl::ZeroDuration()
          ? absl::StrCat(features_.allowed_lateness / absl::Minutes(1), " min")
          : absl::FormatDuration(features_.allowed_lateness);
  std::printf("  late records      %lld (beyond %s allowed lateness; %s)\n",
              static_cast<long long>(stats.late_records), lateness.c_str(),
              late_output_ != nullptr
                  ? absl::StrCat("not folded, -> ", LateOutputName(c_)).c_str()
                  : "counted, not folded");
  std::printf("  dead letters      %lld -> %s\n",
              static_cast<long long>(stats.dead_letters), DlqName(c_).c_str());
  std::printf(
      "  checkpoints       %lld taken, %lld failed, %lld partitions "
      "restored -> %s\n",
      static_cast<long long>(stats.checkpoints_completed),
      static_cast<long long>(stats.checkpoints_failed),
      static_cast<long long>(stats.partitions_restored),
      c_.checkpoint_uri.c_str());
  std::printf("  backpressure      %.1f s paused (%.2f of the run)\n",
              absl::ToDoubleSeconds(stats.paused),
              absl::ToDoubleSeconds(stats.paused) / secs);
  std::printf("  peak RSS          %lld KiB (VmHWM)\n",
              static_cast<long long>(internal::PeakRssKib()));
  std::vector<std::string> keys = ReadBack(c_, features_);
  if (!keys.empty()) {
    std::printf("\n  features of a few keys, read back from the sink:\n");
    for (const std::string& line : keys) std::printf("  %s\n", line.c_str());
  }
  std::fflush(stdout);
}

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() = default;

absl::StatusOr<std::unique_ptr<Service>> Service::Create(
    ServiceOptions options, KeyedWindowOptions features, Decoder* decoder) {
  if (decoder == nullptr) return absl::InvalidArgumentError("decoder: null");
  auto impl =
      std::make_unique<Impl>(std::move(options), std::move(features), decoder);
  WEIR_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

absl::Status Service::Run() { return impl_->Run(); }
void Service::Stop() { impl_->Stop(); }
std::string Service::metrics_url() const { return impl_->metrics_url(); }
PipelineStats Service::stats() const { return impl_->stats(); }

absl::Status RunService(ServiceOptions options, KeyedWindowOptions features,
                        Decoder* decoder) {
  // A given decoder is the binary's one format (a ServiceSchema lets the
  // flags choose).
  if (options.format != "json") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--format=", options.format, ": this service reads JSON only"));
  }
  if (options.plan.has_value()) return PlanService(options, features, *decoder);
  WEIR_ASSIGN_OR_RETURN(
      std::unique_ptr<Service> service,
      Service::Create(std::move(options), std::move(features), decoder));
  return service->Run();
}

int ReportServiceError(const absl::Status& status, int exit_code,
                       const std::string& program) {
  if (status.ok()) return 0;
  std::string name = program;
  if (name.empty()) {
    std::error_code ec;
    name = std::filesystem::read_symlink("/proc/self/exe", ec).filename();
  }
  // A usage error (exit code 2) is printed as its message alone.
  std::fprintf(stderr, "%s: %s\n", name.c_str(),
               exit_code == 2 ? std::string(status.message()).c_str()
                              : status.ToString().c_str());
  return exit_code;
}

}  // namespace weir
