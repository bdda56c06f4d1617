// weir-plan: sizes a deployment of the fraud-features service from what its
// feature definition costs on this machine.
//
//   weir-plan --target_rate=50000 --entities=10000000 [--peak=3] [--json]
//
// Calibration: runs the service's definition, F-FRAUD (examples/
// fraud_features/fraud_features.h), over generated W-PAY events (--events,
// --users, --seed) for up to --seconds: each event is decoded from its JSON
// line by the service's decoder and processed by the operator on a RocksDB
// state in a temporary directory, with a checkpoint published to a
// temporary file:// store every fifth of the run (of --seconds or of
// --events, whichever comes first) and at its end. With --sample=FILE it
// runs the lines of FILE instead (W-PAY message values, one JSON object a
// line, as weir-gen prints them), at most --events of them. It measures
//   events_per_core_second      events per second of process CPU time
//   events_per_thread_second    events per second of the processing
//                               thread's CPU time
//   state_bytes_per_entity      the state (keys, values, headers) per user
//                               holding state at the end, flushed
//   disk_bytes_per_entity       RocksDB's SST files per such user, compacted
//   checkpoint_bytes_per_event  the incremental checkpoint uploads after the
//                               first, per event processed in between
//   updates_per_event           feature updates emitted per event
// Plan: weir::PlanCapacity (weir/capacity_plan.h) from those and --target_rate,
// --peak, --entities, --retention, --headroom, --checkpoint_interval,
// --cores_per_instance and --cache_fraction. docs/operations.md, "Capacity
// planning", explains the rules and how to read the output.
//
// Output: text, or with --json one JSON object {"calibration": ...,
// "measurements": ..., "targets": ..., "plan": ...}.
// Exits 0 on success, 2 on a bad flag (named), 1 if the calibration fails.

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/fraud_features/fraud_features.h"
#include "tools/common/command_line.h"
#include "weir/capacity_plan.h"
#include "weir/checkpoint.h"
#include "weir/json/json_decoder.h"
#include "weir/keyed_window_operator.h"
#include "weir/object_store.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/service.h"
#include "weir/status_macros.h"
#include "weir/testing/footprint.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(double, target_rate, 0, "Average input rate, events/s. Required.");
ABSL_FLAG(double, peak, 3, "Peak rate as a multiple of --target_rate.");
ABSL_FLAG(int64_t, entities, 0, "Distinct entities (users). Required.");
ABSL_FLAG(std::optional<absl::Duration>, retention, std::nullopt,
          "How long an entity's state lives after its last event. Default: "
          "the definition's longest window plus its allowed lateness.");
ABSL_FLAG(double, headroom, 0.7, "CPU utilisation planned at the peak.");
ABSL_FLAG(absl::Duration, checkpoint_interval,
          weir::ServiceOptions().checkpoint_interval,
          "Time between checkpoints.");
ABSL_FLAG(int32_t, cores_per_instance, 2, "Cores of each instance.");
ABSL_FLAG(double, cache_fraction, 1,
          "Share of an instance's state its block cache holds.");
ABSL_FLAG(int64_t, events, 2'000'000, "Calibration: most events to run.");
ABSL_FLAG(int64_t, users, 1'000'000, "Calibration: W-PAY users (Zipf 1.0).");
ABSL_FLAG(double, seconds, 5, "Calibration: most seconds of processing.");
ABSL_FLAG(uint64_t, seed, 1, "Calibration: random seed of the W-PAY input.");
ABSL_FLAG(std::string, sample, "",
          "Calibration: a file of W-PAY message values, one JSON object a "
          "line (as weir-gen prints), to run instead of generated events.");
ABSL_FLAG(bool, json, false, "Print the plan as one JSON object.");

namespace {

constexpr char kUsage[] =
    "sizes a fraud-features deployment from a calibration run of its\n"
    "feature definition on this machine (docs/operations.md, \"Capacity\n"
    "planning\").\n"
    "usage: weir-plan --target_rate=EVENTS_PER_S --entities=N [--peak=3]\n"
    "                 [--retention=24h] [--checkpoint_interval=10s] [--json]";

// Events generated per step; the generator runs outside the timed part.
constexpr size_t kBatch = 8192;
// Checkpoints taken during the calibration, evenly over --seconds or the
// input, whichever ends first; one more at the end.
constexpr int kCheckpoints = 5;

// What the calibration ran, next to what it measured.
struct Calibration {
  weir::CapacityMeasurements measurements;
  const char* input = "";  // "W-PAY" (generated) or "sample"
  int64_t events = 0;      // processed (accepted and rejected)
  int64_t rejected = 0;    // refused by the decoder (dead letters)
  uint64_t active_entities = 0;
  double seconds = 0;      // wall time of the timed part
  double cpu_seconds = 0;  // process CPU time of the timed part
  int checkpoints = 0;
  uint64_t first_checkpoint_bytes = 0;
  uint64_t state_bytes = 0;
  uint64_t disk_bytes = 0;
  double peak_rss_mb = 0;
  weir::OperatorStats stats;  // the operator's: state reads, cache evictions
};

double CpuSeconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Process CPU, processing-thread CPU and wall time of the timed parts.
class Stopwatch {
 public:
  void Start() {
    process_ = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
    thread_ = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    wall_ = absl::Now();
  }
  void Stop() {
    process_total_ += CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - process_;
    thread_total_ += CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - thread_;
    wall_total_ += absl::ToDoubleSeconds(absl::Now() - wall_);
  }
  double process() const { return process_total_; }
  double thread() const { return thread_total_; }
  double wall() const { return wall_total_; }

 private:
  double process_ = 0, thread_ = 0, process_total_ = 0, thread_total_ = 0,
         wall_total_ = 0;
  absl::Time wall_;
};

// The longest time a feature's state lives: window size (session gap) plus
// the allowed lateness.
absl::Duration LongestRetention(const weir::KeyedWindowOptions& features) {
  absl::Duration longest = absl::ZeroDuration();
  for (const weir::FeatureSpec& f : features.features) {
    const weir::WindowSpec& w = *f.window;
    longest = std::max(longest,
                       w.kind == weir::WindowKind::kSession ? w.gap : w.size);
  }
  return longest + features.allowed_lateness;
}

// The sum of an integer RocksDB property over the state's columns.
absl::StatusOr<uint64_t> ColumnsProperty(weir::RocksDbStateBackend* backend,
                                         std::string_view property) {
  uint64_t total = 0;
  for (weir::Column column :
       {weir::Column::kWindows, weir::Column::kTimers, weir::Column::kMeta}) {
    WEIR_ASSIGN_OR_RETURN(uint64_t v,
                          backend->GetIntProperty(column, property));
    total += v;
  }
  return total;
}

// Where the calibration's events come from: generated W-PAY events, or the
// lines of a sample file (message values, one a line, as weir-gen prints).
class Input {
 public:
  static absl::StatusOr<Input> Generated(int64_t events, int64_t users,
                                         uint64_t seed) {
    weir::testing::WPayOptions options;
    options.num_events = events;
    options.num_users = users;
    options.seed = seed;
    WEIR_ASSIGN_OR_RETURN(auto gen,
                          weir::testing::WPayGenerator::Create(options));
    Input input;
    input.gen_ = std::move(gen);
    input.size_ = events;
    return input;
  }

  static absl::StatusOr<Input> Sample(const std::string& path) {
    Input input;
    input.file_ = std::make_unique<std::ifstream>(path);
    if (!input.file_->is_open()) {
      return absl::NotFoundError(absl::StrCat("cannot open --sample ", path));
    }
    std::string line;
    while (std::getline(*input.file_, line)) input.size_ += !line.empty();
    input.file_->clear();
    input.file_->seekg(0);
    return input;
  }

  const char* name() const { return gen_ ? "W-PAY" : "sample"; }

  // The records it holds.
  int64_t size() const { return size_; }

  // kDataLoss if the sample could not be read to its end.
  absl::Status status() const {
    if (file_ && file_->bad()) {
      return absl::DataLossError("cannot read --sample to its end");
    }
    return absl::OkStatus();
  }

  // The next record into `*record`, whose value is kept in `*storage`;
  // false at the end of the input (or when the sample cannot be read).
  bool Next(weir::RawRecord* record, std::string* storage) {
    if (gen_) {
      if (!gen_->Next(event_)) return false;
      *record = event_.ToRawRecord("payments");
      storage->swap(event_.json);
    } else {
      do {
        if (!std::getline(*file_, *storage)) return false;
      } while (storage->empty());
      record->topic = "payments";
      record->partition = 0;
      record->offset = offset_++;
    }
    // The JSON decoder reads the key from the value (user_id).
    record->key = {};
    record->value = *storage;
    return true;
  }

 private:
  std::unique_ptr<weir::testing::WPayGenerator> gen_;
  weir::testing::WPayEvent event_;
  std::unique_ptr<std::ifstream> file_;
  int64_t offset_ = 0;
  int64_t size_ = 0;
};

absl::StatusOr<Calibration> Calibrate(Input& input, double max_seconds,
                                      int64_t max_events) {
  WEIR_ASSIGN_OR_RETURN(weir::testing::TempDir tmp,
                        weir::testing::TempDir::Create("weir-plan"));
  WEIR_ASSIGN_OR_RETURN(auto resources, weir::RocksDbResources::Create({}));
  weir::RocksDbStateBackendOptions backend_options;
  backend_options.path = tmp.path() + "/state";
  backend_options.resources = resources;
  WEIR_ASSIGN_OR_RETURN(auto backend,
                        weir::RocksDbStateBackend::Create(backend_options));
  // A scratch store: its writes are not timed, so they need not sync.
  WEIR_ASSIGN_OR_RETURN(auto object_store,
                        weir::LocalDirectoryStore::Create(
                            tmp.path() + "/checkpoints", {.sync = false}));
  weir::CheckpointStoreOptions store_options;
  store_options.prefix = weir::CheckpointPrefix("weir_plan", 0);
  WEIR_ASSIGN_OR_RETURN(auto store, weir::CheckpointStore::Create(
                                        object_store.get(), store_options));
  weir::KeyedWindowOptions features = fraud::FraudFeatures();
  features.name = "weir_plan";
  WEIR_ASSIGN_OR_RETURN(
      auto op, weir::KeyedWindowOperator::Create(features, backend.get()));
  WEIR_ASSIGN_OR_RETURN(auto decoder,
                        weir::JsonDecoder::Create(fraud::WPaySchema()));

  Calibration c;
  c.input = input.name();
  Stopwatch clock;
  uint64_t updates = 0;
  uint64_t incremental_bytes = 0;
  int64_t events_at_first_checkpoint = 0;
  weir::OperatorOutput out;
  weir::Event event;
  std::vector<weir::RawRecord> batch(kBatch);
  std::vector<std::string> values(kBatch);
  // Flushes, checkpoints and publishes; the publication is not timed (the
  // service uploads on other threads).
  auto checkpoint = [&]() -> absl::Status {
    WEIR_RETURN_IF_ERROR(op->Flush());
    const std::string dir = absl::StrCat(tmp.path(), "/ckpt-", c.checkpoints);
    WEIR_RETURN_IF_ERROR(backend->CreateCheckpoint(dir));
    clock.Stop();
    weir::CheckpointMetadata metadata;
    metadata.checkpoint_id = static_cast<uint64_t>(c.checkpoints) + 1;
    metadata.pipeline = "weir_plan";
    WEIR_ASSIGN_OR_RETURN(weir::PublishResult published,
                          store->Publish(dir, metadata));
    if (c.checkpoints == 0) {
      c.first_checkpoint_bytes = published.bytes_uploaded;
      events_at_first_checkpoint = c.events;
    } else {
      incremental_bytes += published.bytes_uploaded;
    }
    ++c.checkpoints;
    clock.Start();
    return absl::OkStatus();
  };

  const double checkpoint_every = max_seconds / kCheckpoints;
  bool more = true;
  while (more && clock.wall() < max_seconds) {
    size_t n = 0;
    while (n < kBatch && c.events + static_cast<int64_t>(n) < max_events &&
           (more = input.Next(&batch[n], &values[n]))) {
      ++n;
    }
    more = more && c.events + static_cast<int64_t>(n) < max_events;
    clock.Start();
    for (size_t i = 0; i < n; ++i) {
      ++c.events;
      if (!decoder->DecodeInto(batch[i], &event).ok()) {
        ++c.rejected;
        continue;
      }
      WEIR_RETURN_IF_ERROR(op->Process(event.view(), &out));
      updates += out.updates.size();
      out.Clear();
    }
    clock.Stop();
    const int next = c.checkpoints + 1;
    if (clock.wall() >= checkpoint_every * next ||
        c.events >= std::min(max_events, input.size()) / kCheckpoints * next) {
      clock.Start();
      WEIR_RETURN_IF_ERROR(checkpoint());
      clock.Stop();
    }
  }
  WEIR_RETURN_IF_ERROR(input.status());
  if (c.events == 0) return absl::InvalidArgumentError("no events to run");
  clock.Start();
  WEIR_RETURN_IF_ERROR(checkpoint());
  clock.Stop();

  // The state at the end of the input: logical, then compacted on disk.
  const weir::testing::StateFootprint state =
      weir::testing::MeasureState(backend.get());
  if (!state.ok) return absl::InternalError("the state scan failed");
  if (state.entities == 0) return absl::InternalError("no state was kept");
  WEIR_RETURN_IF_ERROR(backend->Compact());
  WEIR_ASSIGN_OR_RETURN(
      c.disk_bytes,
      ColumnsProperty(backend.get(), "rocksdb.live-sst-files-size"));

  const double events = static_cast<double>(c.events);
  const double entities = static_cast<double>(state.entities);
  c.active_entities = state.entities;
  c.state_bytes = state.window_bytes + state.timer_bytes;
  c.seconds = clock.wall();
  c.cpu_seconds = clock.process();
  c.peak_rss_mb = weir::testing::PeakRssMb();
  c.stats = op->stats();
  weir::CapacityMeasurements& m = c.measurements;
  m.events_per_core_second = events / clock.process();
  m.events_per_thread_second = events / clock.thread();
  m.state_bytes_per_entity = static_cast<double>(c.state_bytes) / entities;
  m.disk_bytes_per_entity = static_cast<double>(c.disk_bytes) / entities;
  const int64_t after_first = c.events - events_at_first_checkpoint;
  m.checkpoint_bytes_per_event =
      after_first > 0 ? static_cast<double>(incremental_bytes) /
                            static_cast<double>(after_first)
                      : static_cast<double>(c.first_checkpoint_bytes) / events;
  m.updates_per_event = static_cast<double>(updates) / events;
  return c;
}

std::string Mib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

void PrintText(const Calibration& c, const weir::CapacityTargets& t,
               const weir::CapacityPlan& p) {
  const weir::CapacityMeasurements& m = c.measurements;
  std::printf(
      "weir-plan: F-FRAUD (the fraud-features service's definition) on this "
      "machine\n\n");
  std::printf(
      "calibration: %lld %s events (%lld rejected by the decoder) in "
      "%.2f s, %.2f s of process CPU, %d checkpoints, %llu users holding "
      "state, peak RSS %.0f MiB\n",
      static_cast<long long>(c.events), c.input,
      static_cast<long long>(c.rejected), c.seconds, c.cpu_seconds,
      c.checkpoints, static_cast<unsigned long long>(c.active_entities),
      c.peak_rss_mb);
  std::printf(
      "operator: %.2f state reads and %.2f state writes per event, %llu "
      "cache evictions (cache of %zu entries)\n",
      static_cast<double>(c.stats.state_reads) / static_cast<double>(c.events),
      static_cast<double>(c.stats.state_writes) / static_cast<double>(c.events),
      static_cast<unsigned long long>(c.stats.cache_evictions),
      fraud::FraudFeatures().cache_max_entries);
  std::printf("measured:\n");
  std::printf("  events_per_core_second      %12.0f\n",
              m.events_per_core_second);
  std::printf("  events_per_thread_second    %12.0f\n",
              m.events_per_thread_second);
  std::printf("  state_bytes_per_entity      %12.0f\n",
              m.state_bytes_per_entity);
  std::printf("  disk_bytes_per_entity       %12.0f\n",
              m.disk_bytes_per_entity);
  std::printf("  checkpoint_bytes_per_event  %12.1f\n",
              m.checkpoint_bytes_per_event);
  std::printf("  updates_per_event           %12.2f\n\n", m.updates_per_event);
  std::printf(
      "targets: %.0f events/s, peak x%.2f = %.0f events/s, %lld entities, "
      "retention %s, headroom %.2f, checkpoint every %s, %d cores per "
      "instance, cache fraction %.2f\n\n",
      t.target_rate, t.peak, p.peak_rate, static_cast<long long>(t.entities),
      absl::FormatDuration(t.retention).c_str(), t.headroom,
      absl::FormatDuration(t.checkpoint_interval).c_str(), t.cores_per_instance,
      t.cache_fraction);
  std::printf("plan:\n");
  std::printf(
      "  instances                   %lld (%lld cores; %lld needed for the "
      "peak; %.0f%% busy at the peak)\n",
      static_cast<long long>(p.instances), static_cast<long long>(p.cores),
      static_cast<long long>(p.cores_needed), 100 * p.utilisation_at_peak);
  std::printf("  partitions                  %lld\n",
              static_cast<long long>(p.partitions));
  std::printf("  entities holding state      %lld\n",
              static_cast<long long>(p.active_entities));
  std::printf(
      "  state                       %s (%s per instance, %s per "
      "partition)\n",
      Mib(p.state_bytes).c_str(), Mib(p.state_bytes_per_instance).c_str(),
      Mib(p.state_bytes_per_partition).c_str());
  std::printf("  disk per instance           %s\n",
              Mib(p.disk_bytes_per_instance).c_str());
  std::printf(
      "  RocksDB memory budget       %s per instance (block cache %s, "
      "memtables %s: write_buffer_fraction %.2f)\n",
      Mib(p.memory_budget_bytes).c_str(), Mib(p.block_cache_bytes).c_str(),
      Mib(p.memtable_bytes).c_str(), p.write_buffer_fraction);
  std::printf("  memory per instance         %s\n",
              Mib(p.memory_per_instance_bytes).c_str());
  std::printf(
      "  checkpoint interval         %s: upload %s per instance (%s at the "
      "peak, %s/s)\n",
      absl::FormatDuration(t.checkpoint_interval).c_str(),
      Mib(p.checkpoint_upload_bytes).c_str(),
      Mib(p.checkpoint_upload_peak_bytes).c_str(),
      Mib(static_cast<uint64_t>(p.upload_bytes_per_second_at_peak)).c_str());
  std::printf("  sink updates                %.0f/s (%.0f/s at the peak)\n",
              p.sink_updates_per_second, p.sink_updates_per_second_at_peak);
}

void PrintJson(const Calibration& c, const weir::CapacityTargets& t,
               const weir::CapacityPlan& p) {
  const weir::CapacityMeasurements& m = c.measurements;
  std::string s = "{";
  absl::StrAppendFormat(
      &s,
      "\"calibration\":{\"definition\":\"F-FRAUD\",\"input\":\"%s\","
      "\"events\":%d,\"rejected\":%d,\"seconds\":%.3f,\"cpu_seconds\":%.3f,"
      "\"checkpoints\":%d,\"active_entities\":%d,\"state_bytes\":%d,"
      "\"disk_bytes\":%d,\"first_checkpoint_bytes\":%d,\"peak_rss_mb\":%.1f,"
      "\"state_reads\":%d,\"state_writes\":%d,\"cache_evictions\":%d},",
      c.input, c.events, c.rejected, c.seconds, c.cpu_seconds, c.checkpoints,
      c.active_entities, c.state_bytes, c.disk_bytes, c.first_checkpoint_bytes,
      c.peak_rss_mb, c.stats.state_reads, c.stats.state_writes,
      c.stats.cache_evictions);
  absl::StrAppendFormat(
      &s,
      "\"measurements\":{\"events_per_core_second\":%.1f,"
      "\"events_per_thread_second\":%.1f,\"state_bytes_per_entity\":%.1f,"
      "\"disk_bytes_per_entity\":%.1f,\"checkpoint_bytes_per_event\":%.3f,"
      "\"updates_per_event\":%.4f},",
      m.events_per_core_second, m.events_per_thread_second,
      m.state_bytes_per_entity, m.disk_bytes_per_entity,
      m.checkpoint_bytes_per_event, m.updates_per_event);
  absl::StrAppendFormat(
      &s,
      "\"targets\":{\"target_rate\":%.1f,\"peak\":%.3f,\"entities\":%d,"
      "\"retention_seconds\":%.3f,\"headroom\":%.3f,"
      "\"checkpoint_interval_seconds\":%.3f,\"cores_per_instance\":%d,"
      "\"cache_fraction\":%.3f},",
      t.target_rate, t.peak, t.entities, absl::ToDoubleSeconds(t.retention),
      t.headroom, absl::ToDoubleSeconds(t.checkpoint_interval),
      t.cores_per_instance, t.cache_fraction);
  absl::StrAppendFormat(
      &s,
      "\"plan\":{\"peak_rate\":%.1f,\"cores_needed\":%d,\"instances\":%d,"
      "\"cores\":%d,\"partitions\":%d,\"utilisation_at_peak\":%.4f,"
      "\"active_entities\":%d,\"state_bytes\":%d,"
      "\"state_bytes_per_instance\":%d,\"state_bytes_per_partition\":%d,"
      "\"disk_bytes_per_instance\":%d,\"block_cache_bytes\":%d,"
      "\"memtable_bytes\":%d,\"memory_budget_bytes\":%d,"
      "\"write_buffer_fraction\":%.4f,\"memory_per_instance_bytes\":%d,"
      "\"checkpoint_upload_bytes\":%d,\"checkpoint_upload_peak_bytes\":%d,"
      "\"upload_bytes_per_second_at_peak\":%.1f,"
      "\"sink_updates_per_second\":%.1f,"
      "\"sink_updates_per_second_at_peak\":%.1f}}\n",
      p.peak_rate, p.cores_needed, p.instances, p.cores, p.partitions,
      p.utilisation_at_peak, p.active_entities, p.state_bytes,
      p.state_bytes_per_instance, p.state_bytes_per_partition,
      p.disk_bytes_per_instance, p.block_cache_bytes, p.memtable_bytes,
      p.memory_budget_bytes, p.write_buffer_fraction,
      p.memory_per_instance_bytes, p.checkpoint_upload_bytes,
      p.checkpoint_upload_peak_bytes, p.upload_bytes_per_second_at_peak,
      p.sink_updates_per_second, p.sink_updates_per_second_at_peak);
  std::fputs(s.c_str(), stdout);
}

int BadUsage(const std::string& message) {
  std::fprintf(stderr, "weir-plan: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(argc, argv, {.usage = kUsage});
  weir::CapacityTargets targets;
  targets.target_rate = absl::GetFlag(FLAGS_target_rate);
  targets.peak = absl::GetFlag(FLAGS_peak);
  targets.entities = absl::GetFlag(FLAGS_entities);
  targets.retention = absl::GetFlag(FLAGS_retention)
                          .value_or(LongestRetention(fraud::FraudFeatures()));
  targets.headroom = absl::GetFlag(FLAGS_headroom);
  targets.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  targets.cores_per_instance = absl::GetFlag(FLAGS_cores_per_instance);
  targets.cache_fraction = absl::GetFlag(FLAGS_cache_fraction);
  // The targets' fields are the flags' names.
  if (absl::Status s = targets.Validate(); !s.ok()) {
    return BadUsage(absl::StrCat("--", s.message()));
  }
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t users = absl::GetFlag(FLAGS_users);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (events <= 0)
    return BadUsage(absl::StrCat("--events must be > 0: ", events));
  if (users <= 0) return BadUsage(absl::StrCat("--users must be > 0: ", users));
  if (!(seconds > 0)) {
    return BadUsage(absl::StrCat("--seconds must be > 0: ", seconds));
  }

  const std::string sample = absl::GetFlag(FLAGS_sample);
  absl::StatusOr<Input> input =
      sample.empty()
          ? Input::Generated(events, users, absl::GetFlag(FLAGS_seed))
          : Input::Sample(sample);
  if (!input.ok()) {
    std::fprintf(stderr, "weir-plan: %s\n", input.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<Calibration> calibration = Calibrate(*input, seconds, events);
  if (!calibration.ok()) {
    std::fprintf(stderr, "weir-plan: calibration failed: %s\n",
                 calibration.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<weir::CapacityPlan> plan =
      weir::PlanCapacity(calibration->measurements, targets);
  if (!plan.ok()) {
    std::fprintf(stderr, "weir-plan: %s\n", plan.status().ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    PrintJson(*calibration, targets, *plan);
  } else {
    PrintText(*calibration, targets, *plan);
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}
