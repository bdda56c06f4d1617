// B3 of BENCHMARKS.md: end to end from Kafka. Starts the local broker
// (weir-broker), produces N W-PAY payments into a topic of 8 partitions,
// or 8 per 500,000 payments (lz4, keyed by user_id), then reads that topic
// to the end:
//   (a) the reference: a bare librdkafka consumer (rd_kafka_consumer_poll,
//       all partitions assigned from offset 0, no group), counting
//       messages; the best of --reference_runs runs (3);
//   (b) the pipeline: KafkaSource + JsonDecoder + F-FRAUD + FileSink into a
//       temporary directory, RocksDB state, file:// checkpoints every 10 s
//       and a final one, every window fired at the end.
// Each is timed from its first record to its end (the pipeline's end
// includes firing every window and the final checkpoint), so the group
// join of the pipeline's consumer is left out of both.
// Then, as a second reference for the pipeline, (c) the operator alone: the
// same events, already decoded in memory, through one operator per
// partition on RocksDB (as the pipeline runs them), every window fired and
// each operator flushed at the end. Pipeline over operator-only is what the
// pipeline around the operator (Kafka, decoding, sink, checkpoints) costs.
//
//   b3_end_to_end [--events=N] [--users=N] [--partitions=N] [--cheap]
//                 [--reference_runs=N] [-X key=value ...]
//
// -X sets a librdkafka property of the pipeline's consumer (KafkaSource
// properties), e.g. -X queued.min.messages=100000 for librdkafka's default
// instead of weir's.
//
// The local broker keeps at most about 5 MiB or 100,000 message sets per
// partition and drops the oldest records beyond that (tools/weir_broker.cc);
// the default partition count keeps every W-PAY payment (the busiest of 8
// partitions holds about 18% of them, some 170,000 fit). The bench checks
// every partition's log start offset before reading and fails, naming the
// partition, rather than wait for records the broker dropped.
//
// --cheap computes one feature (txn_count_1m) instead of F-FRAUD, to show
// the pipeline's own ceiling against the bare consumer.
//
// The broker is looked for next to this program (the build tree puts both
// there), then in PATH; WEIR_BROKER=/path overrides both.
//
// Prints (the wall-clock rates, then the same runs per second of process
// CPU time, all threads: on a shared, overloaded machine wall-clock time
// mostly measures how long a thread waited for a core):
//   B3 pipeline events_per_s=... ref_events_per_s=... ratio=...
//   B3 pipeline_vs_operator events_per_s=... ref_events_per_s=... ratio=...
//   B3 pipeline_cpu events_per_s=... ref_events_per_s=... ratio=...
//   B3 pipeline_vs_operator_cpu events_per_s=... ref_events_per_s=... ratio=...

#include <librdkafka/rdkafka.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../examples/fraud_features/fraud_features.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/common/command_line.h"
#include "weir/json/json_decoder.h"
#include "weir/kafka/internal/kafka_producer.h"
#include "weir/kafka/kafka_source.h"
#include "weir/object_store.h"
#include "weir/pipeline.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/sinks.h"
#include "weir/status_macros.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(int64_t, events, 500'000, "Events to produce and process.");
ABSL_FLAG(int64_t, users, 100'000, "Distinct users.");
ABSL_FLAG(
    int32_t, partitions, 0,
    "Partitions of the input topic; 0: 8 per 500,000 events, at least 8.");
ABSL_FLAG(int32_t, reference_runs, 3,
          "Runs of the bare consumer: the reference is the least wall and "
          "the least CPU time among them.");
ABSL_FLAG(bool, cheap, false,
          "One feature (txn_count_1m) instead of F-FRAUD, to show the "
          "pipeline's own ceiling.");

namespace {

constexpr char kTopic[] = "payments";

// CPU time of the whole process (every thread) so far, in seconds.
double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

// How long a run took, in wall-clock and process CPU seconds.
struct Elapsed {
  double wall_s = 0;
  double cpu_s = 0;
};

absl::StatusOr<std::string> FindBroker() {
  if (const char* env = std::getenv("WEIR_BROKER")) return std::string(env);
  std::vector<std::string> candidates;
  std::error_code ec;
  const std::filesystem::path self =
      std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(self.parent_path() / "weir-broker");
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      if (!dir.empty()) candidates.push_back(absl::StrCat(dir, "/weir-broker"));
    }
  }
  for (const std::string& p : candidates) {
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return absl::NotFoundError(
      "weir-broker not found: build it (it goes next to this program), put "
      "it in PATH or set WEIR_BROKER");
}

absl::Status Produce(const std::string& bootstrap,
                     const weir::testing::WPayOptions& w) {
  WEIR_ASSIGN_OR_RETURN(auto gen, weir::testing::WPayGenerator::Create(w));
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", bootstrap},
      {"compression.type", "lz4"},
      {"partitioner", "murmur2_random"},
      {"enable.idempotence", "true"},
      {"linger.ms", "20"},
      {"batch.num.messages", "10000"},
      {"queue.buffering.max.messages", "500000"}};
  WEIR_ASSIGN_OR_RETURN(
      auto producer, weir::internal::KafkaProducer::Create("b3", settings, {}));
  weir::testing::WPayEvent e;
  while (gen->Next(e)) {
    WEIR_RETURN_IF_ERROR(
        producer->Produce(kTopic, e.user_id, e.json, {}, absl::Seconds(30)));
  }
  return producer->Flush(absl::Seconds(120));
}

// (a) The bare consumer: from the first message to the last.
absl::StatusOr<Elapsed> RunReference(const std::string& bootstrap,
                                     int partitions, int64_t events) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const char* v) {
    return rd_kafka_conf_set(conf, k, v, err, sizeof(err)) == RD_KAFKA_CONF_OK;
  };
  // queued.min.messages as KafkaSource sets it: with librdkafka's default
  // (100,000) a consumer whose first fetches fill its queue stops fetching
  // for a second (librdkafka < 2.1), so the reference would measure that
  // wait instead of the consumer.
  if (!set("bootstrap.servers", bootstrap.c_str()) ||
      !set("group.id", "b3-reference") || !set("enable.auto.commit", "false") ||
      !set("queued.min.messages", "10000000")) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(err);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) return absl::InternalError(err);
  rd_kafka_poll_set_consumer(rk);
  // The local broker drops a partition's oldest records beyond about 5 MiB
  // or 100,000 message sets: a run that overflowed it would wait forever
  // for records that are gone, so it fails here instead.
  int64_t stored = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = -1;
    int64_t high = -1;
    const rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, kTopic, p, &low, &high, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_destroy(rk);
      return absl::UnavailableError(absl::StrCat(
          "watermark offsets of ", kTopic, "[", p, "]: ", rd_kafka_err2str(e)));
    }
    if (low > 0) {
      rd_kafka_destroy(rk);
      return absl::FailedPreconditionError(absl::StrCat(
          "the local broker dropped the oldest ", low, " of the ", high,
          " records of ", kTopic, "[", p,
          "] (log start offset > 0: it keeps about 5 MiB or 100,000 message "
          "sets per partition); run with more --partitions"));
    }
    stored += high;
  }
  if (stored != events) {
    rd_kafka_destroy(rk);
    return absl::InternalError(absl::StrCat(
        "the topic holds ", stored, " records, ", events, " were produced"));
  }
  // From offset 0 (every partition starts there: checked above), not
  // RD_KAFKA_OFFSET_BEGINNING, which looks each partition's start up
  // first: the first partition found then fetched alone, reached its end,
  // and its fetch waited fetch.wait.max.ms (500 ms) twice at the broker
  // before the others joined. One run in four stalled a second that way.
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, kTopic, p)->offset = 0;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  int64_t count = 0;
  int64_t bytes = 0;
  absl::Time first;
  double first_cpu = 0;
  const absl::Time deadline = absl::Now() + absl::Minutes(10);
  absl::Status status;
  while (count < events) {
    if (absl::Now() > deadline) {
      status = absl::DeadlineExceededError("reference consumer stalled");
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (count == 0) {
        first = absl::Now();
        first_cpu = ProcessCpuSeconds();
      }
      ++count;
      bytes += static_cast<int64_t>(m->len);
    }
    rd_kafka_message_destroy(m);
  }
  const absl::Time end = absl::Now();
  const double end_cpu = ProcessCpuSeconds();
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!status.ok()) return status;
  if (bytes == 0) return absl::InternalError("no payload read");
  return Elapsed{absl::ToDoubleSeconds(end - first), end_cpu - first_cpu};
}

// Ends the pipeline's input once `events` records were returned, and notes
// when the first one came.
class CountingSource final : public weir::ForwardingSource {
 public:
  CountingSource(weir::Source* inner, int64_t events)
      : ForwardingSource(inner), events_(events) {}

  absl::Time first() const { return first_; }
  double first_cpu() const { return first_cpu_; }
  // Time spent inside the inner source's Poll after the first record, and
  // how many of those polls returned nothing.
  absl::Duration poll_time() const { return poll_time_; }
  int64_t empty_polls() const { return empty_polls_; }

  absl::StatusOr<absl::Span<const weir::RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override {
    if (AtEnd()) return absl::Span<const weir::RawRecord>();
    const absl::Time start = absl::Now();
    auto batch = ForwardingSource::Poll(max_records, timeout);
    if (read_ > 0) {
      poll_time_ += absl::Now() - start;
      if (batch.ok() && batch->empty()) ++empty_polls_;
    }
    if (batch.ok() && !batch->empty()) {
      if (read_ == 0) {
        first_ = absl::Now();
        first_cpu_ = ProcessCpuSeconds();
      }
      read_ += static_cast<int64_t>(batch->size());
    }
    return batch;
  }
  bool AtEnd() const override { return read_ >= events_; }

 private:
  const int64_t events_;
  int64_t read_ = 0;
  absl::Time first_;
  double first_cpu_ = 0;
  absl::Duration poll_time_;
  int64_t empty_polls_ = 0;
};

// One feature, the cheapest: what the pipeline costs around an operator that
// does almost nothing.
weir::KeyedWindowOptions CheapFeatures() {
  weir::KeyedWindowOptions o = fraud::FraudFeatures();
  o.features.resize(1);  // txn_count_1m
  return o;
}

// (b) The pipeline: from the first record to Run's return.
absl::StatusOr<Elapsed> RunPipeline(
    const std::string& bootstrap, int64_t events,
    const weir::KeyedWindowOptions& features,
    const std::vector<std::pair<std::string, std::string>>& properties,
    int64_t* updates) {
  WEIR_ASSIGN_OR_RETURN(weir::testing::TempDir dir,
                        weir::testing::TempDir::Create("b3"));
  WEIR_ASSIGN_OR_RETURN(auto decoder,
                        weir::JsonDecoder::Create(fraud::WPaySchema()));
  weir::FileSinkOptions so;
  so.path = dir.path() + "/features.jsonl";
  WEIR_ASSIGN_OR_RETURN(auto sink, weir::FileSink::Create(so));
  weir::FileDeadLetterQueueOptions dqo;
  dqo.path = dir.path() + "/dlq.jsonl";
  WEIR_ASSIGN_OR_RETURN(auto dlq, weir::FileDeadLetterQueue::Create(dqo));
  WEIR_ASSIGN_OR_RETURN(
      auto store,
      weir::OpenObjectStore(absl::StrCat("file://", dir.path(), "/ckpt"), {}));
  weir::KafkaSourceOptions ko;
  ko.bootstrap_servers = bootstrap;
  ko.group_id = "b3-pipeline";
  ko.topics = {kTopic};
  ko.properties.insert(properties.begin(), properties.end());
  WEIR_ASSIGN_OR_RETURN(auto kafka, weir::KafkaSource::Create(ko));
  CountingSource source(kafka.get(), events);
  WEIR_ASSIGN_OR_RETURN(auto resources, weir::RocksDbResources::Create({}));

  weir::PipelineOptions options;
  options.name = "b3";
  options.features = features;
  options.state_dir = dir.path() + "/live";
  options.backend_factory = weir::RocksDbBackendFactory(resources);
  options.checkpoints.interval = absl::Seconds(10);
  // When each phase began, to say where the pipeline's time went.
  std::vector<std::pair<weir::PipelinePhase, absl::Time>> phases;
  options.phase_listener = [&phases](weir::PipelinePhase phase) {
    phases.emplace_back(phase, absl::Now());
  };
  weir::PipelineParts parts{&source, decoder.get(), sink.get(), store.get(),
                            dlq.get()};
  WEIR_ASSIGN_OR_RETURN(auto pipeline, weir::Pipeline::Create(options, parts));
  WEIR_RETURN_IF_ERROR(pipeline->Run());
  const absl::Time end = absl::Now();
  const double end_cpu = ProcessCpuSeconds();
  *updates = pipeline->stats().updates_written;
  source.Close().IgnoreError();
  std::string line;
  for (size_t i = 0; i + 1 < phases.size(); ++i) {
    const absl::Time from = std::max(phases[i].second, source.first());
    const absl::Time to = phases[i + 1].second;
    if (to <= from) continue;
    absl::StrAppend(
        &line, " ", weir::PipelinePhaseName(phases[i].first), " ",
        absl::FormatDuration(absl::Trunc(to - from, absl::Milliseconds(1))));
  }
  std::fprintf(stderr,
               "B3: pipeline phases after the first record:%s; %.2f s in the "
               "source's Poll (%lld polls returned nothing)\n",
               line.c_str(), absl::ToDoubleSeconds(source.poll_time()),
               static_cast<long long>(source.empty_polls()));
  return Elapsed{absl::ToDoubleSeconds(end - source.first()),
                 end_cpu - source.first_cpu()};
}

// (c) The operator alone on the same events (accepted ones, decoded before
// the clock starts), one operator and RocksDB backend per partition as in
// the pipeline: from the first event to the last operator's Flush.
absl::StatusOr<Elapsed> RunOperatorOnly(
    const weir::testing::WPayOptions& w,
    const weir::KeyedWindowOptions& features, int64_t* updates) {
  WEIR_ASSIGN_OR_RETURN(auto gen, weir::testing::WPayGenerator::Create(w));
  std::vector<weir::Event> events;
  events.reserve(static_cast<size_t>(w.num_events));
  weir::testing::WPayEvent e;
  while (gen->Next(e)) {
    if (e.accepted()) events.push_back(e.ToEvent());
  }
  WEIR_ASSIGN_OR_RETURN(weir::testing::TempDir dir,
                        weir::testing::TempDir::Create("b3op"));
  WEIR_ASSIGN_OR_RETURN(auto resources, weir::RocksDbResources::Create({}));
  auto factory = weir::RocksDbBackendFactory(resources);
  weir::KeyedWindowOptions options = features;
  options.name = "b3";
  std::vector<std::unique_ptr<weir::StateBackend>> backends;
  std::vector<std::unique_ptr<weir::KeyedWindowOperator>> ops;
  for (int p = 0; p < w.num_partitions; ++p) {
    WEIR_ASSIGN_OR_RETURN(auto backend,
                          factory(absl::StrCat(dir.path(), "/", p)));
    WEIR_ASSIGN_OR_RETURN(
        auto op, weir::KeyedWindowOperator::Create(options, backend.get()));
    backends.push_back(std::move(backend));
    ops.push_back(std::move(op));
  }
  weir::OperatorOutput out;
  const absl::Time start = absl::Now();
  const double start_cpu = ProcessCpuSeconds();
  for (const weir::Event& event : events) {
    WEIR_RETURN_IF_ERROR(ops[event.partition]->Process(event.view(), &out));
    *updates += static_cast<int64_t>(out.updates.size());
    out.Clear();
  }
  for (auto& op : ops) {
    WEIR_RETURN_IF_ERROR(op->AdvanceWatermark(weir::kMaxEventTime, &out));
    *updates += static_cast<int64_t>(out.updates.size());
    out.Clear();
    WEIR_RETURN_IF_ERROR(op->Flush());
  }
  return Elapsed{absl::ToDoubleSeconds(absl::Now() - start),
                 ProcessCpuSeconds() - start_cpu};
}

absl::Status Main(int argc, char** argv) {
  const weir::tools::CommandLine command_line = weir::tools::ParseCommandLine(
      argc, argv,
      {.usage = "b3_end_to_end: see docs/benchmarks.md", .properties = true});
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t users = absl::GetFlag(FLAGS_users);
  int partitions = static_cast<int>(absl::GetFlag(FLAGS_partitions));
  if (partitions == 0) {
    partitions = static_cast<int>(
        8 * std::max<int64_t>(1, (events + 499'999) / 500'000));
  }
  const bool cheap = absl::GetFlag(FLAGS_cheap);
  if (events <= 0 || users <= 0 || partitions <= 0) {
    return absl::InvalidArgumentError("--events, --users, --partitions > 0");
  }
  WEIR_ASSIGN_OR_RETURN(std::string binary, FindBroker());
  weir::LocalBroker::Options bo;
  bo.binary_path = binary;
  bo.topics = {{kTopic, partitions}};
  WEIR_ASSIGN_OR_RETURN(auto broker, weir::LocalBroker::Start(bo));

  weir::testing::WPayOptions w;
  w.num_events = events;
  w.num_users = users;
  w.num_partitions = partitions;
  const absl::Time t0 = absl::Now();
  WEIR_RETURN_IF_ERROR(Produce(broker->bootstrap(), w));
  std::fprintf(stderr, "B3: produced %lld W-PAY payments in %.1f s\n",
               static_cast<long long>(events),
               absl::ToDoubleSeconds(absl::Now() - t0));

  // The reference is the limit: the best of a few runs, so that a run
  // the machine held up does not lower it.
  const int reference_runs =
      std::max(1, static_cast<int>(absl::GetFlag(FLAGS_reference_runs)));
  Elapsed ref;
  std::string reference_walls;
  for (int run = 0; run < reference_runs; ++run) {
    WEIR_ASSIGN_OR_RETURN(
        Elapsed r, RunReference(broker->bootstrap(), partitions, events));
    ref.wall_s = run == 0 ? r.wall_s : std::min(ref.wall_s, r.wall_s);
    ref.cpu_s = run == 0 ? r.cpu_s : std::min(ref.cpu_s, r.cpu_s);
    absl::StrAppendFormat(&reference_walls, "%s%.2f", run == 0 ? "" : ", ",
                          r.wall_s);
  }
  const weir::KeyedWindowOptions features =
      cheap ? CheapFeatures() : fraud::FraudFeatures();
  int64_t updates = 0;
  WEIR_ASSIGN_OR_RETURN(Elapsed pipe,
                        RunPipeline(broker->bootstrap(), events, features,
                                    command_line.properties, &updates));
  int64_t op_updates = 0;
  WEIR_ASSIGN_OR_RETURN(Elapsed op, RunOperatorOnly(w, features, &op_updates));
  std::fprintf(stderr,
               "B3: reference %.2f s (%.2f s CPU; best of %d runs: %s s), "
               "pipeline %.2f s (%.2f s CPU, %lld feature updates), "
               "operator only %.2f s (%.2f s CPU, %lld updates)%s\n",
               ref.wall_s, ref.cpu_s, reference_runs, reference_walls.c_str(),
               pipe.wall_s, pipe.cpu_s, static_cast<long long>(updates),
               op.wall_s, op.cpu_s, static_cast<long long>(op_updates),
               cheap ? ", one feature (--cheap)" : "");
  const auto print = [&](const char* what, double s, double ref_s) {
    const double rate = static_cast<double>(events) / s;
    const double ref_rate = static_cast<double>(events) / ref_s;
    std::printf("B3 %s events_per_s=%.3g ref_events_per_s=%.3g ratio=%.2f\n",
                what, rate, ref_rate, rate / ref_rate);
  };
  print("pipeline", pipe.wall_s, ref.wall_s);
  print("pipeline_vs_operator", pipe.wall_s, op.wall_s);
  print("pipeline_cpu", pipe.cpu_s, ref.cpu_s);
  print("pipeline_vs_operator_cpu", pipe.cpu_s, op.cpu_s);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::Status s = Main(argc, argv);
  if (!s.ok()) {
    std::fprintf(stderr, "b3_end_to_end: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
