#include "weir/capacity_calibration.h"

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "weir/checkpoint.h"
#include "weir/internal/scratch_dir.h"
#include "weir/object_store.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/state_footprint.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

// Records read per step; reading runs outside the timed part.
constexpr size_t kBatch = 8192;

double CpuSeconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Process CPU, calling-thread CPU and wall time of the timed parts.
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

// The sum of an integer RocksDB property over the state's columns.
absl::StatusOr<uint64_t> ColumnsProperty(RocksDbStateBackend* backend,
                                         std::string_view property) {
  uint64_t total = 0;
  for (Column column : {Column::kWindows, Column::kTimers, Column::kMeta}) {
    WEIR_ASSIGN_OR_RETURN(uint64_t v,
                          backend->GetIntProperty(column, property));
    total += v;
  }
  return total;
}

class SampleInput final : public CalibrationInput {
 public:
  SampleInput(std::ifstream file, int64_t size, std::string topic)
      : file_(std::move(file)), size_(size), topic_(std::move(topic)) {}

  std::string_view name() const override { return "sample"; }
  int64_t size() const override { return size_; }

  bool Next(RawRecord* record, std::string* storage) override {
    do {
      if (!std::getline(file_, *storage)) return false;
    } while (storage->empty());
    record->topic = topic_;
    record->partition = 0;
    record->offset = offset_++;
    record->key = {};
    record->value = *storage;
    return true;
  }

  absl::Status status() const override {
    if (file_.bad()) {
      return absl::DataLossError("the sample could not be read to its end");
    }
    return absl::OkStatus();
  }

 private:
  std::ifstream file_;
  const int64_t size_;
  const std::string topic_;
  int64_t offset_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CalibrationInput>> OpenCalibrationSample(
    const std::string& path, std::string_view topic) {
  std::ifstream file(path);
  if (!file.is_open()) {
    return absl::NotFoundError(absl::StrCat("cannot open the sample ", path));
  }
  int64_t size = 0;
  std::string line;
  while (std::getline(file, line)) size += !line.empty();
  if (file.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read the sample ", path));
  }
  file.clear();
  file.seekg(0);
  return std::unique_ptr<CalibrationInput>(
      std::make_unique<SampleInput>(std::move(file), size, std::string(topic)));
}

absl::Status CalibrationOptions::Validate() const {
  if (max_events <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_events must be > 0: ", max_events));
  }
  if (max_time <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_time must be > 0: ", absl::FormatDuration(max_time)));
  }
  if (checkpoints < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoints must be >= 1: ", checkpoints));
  }
  return absl::OkStatus();
}

absl::Duration StateRetention(const KeyedWindowOptions& features) {
  absl::Duration longest = absl::ZeroDuration();
  for (const FeatureSpec& f : features.features) {
    const WindowSpec& w = *f.window;
    longest =
        std::max(longest, w.kind == WindowKind::kSession ? w.gap : w.size);
  }
  return longest + features.allowed_lateness;
}

absl::StatusOr<CapacityCalibration> CalibrateCapacity(
    const KeyedWindowOptions& features, Decoder& decoder,
    CalibrationInput& input, const CalibrationOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  WEIR_ASSIGN_OR_RETURN(
      internal::ScratchDir tmp,
      internal::ScratchDir::Create(options.scratch_dir, "weir-calibration"));
  WEIR_ASSIGN_OR_RETURN(auto resources, RocksDbResources::Create({}));
  RocksDbStateBackendOptions backend_options;
  backend_options.path = tmp.path() + "/state";
  backend_options.resources = resources;
  WEIR_ASSIGN_OR_RETURN(auto backend,
                        RocksDbStateBackend::Create(backend_options));
  // A scratch store: its writes are not timed, so they need not sync.
  WEIR_ASSIGN_OR_RETURN(auto object_store,
                        LocalDirectoryStore::Create(tmp.path() + "/checkpoints",
                                                    {.sync = false}));
  const std::string pipeline =
      features.name.empty() ? std::string("calibration") : features.name;
  CheckpointStoreOptions store_options;
  store_options.prefix = CheckpointPrefix(pipeline, 0);
  WEIR_ASSIGN_OR_RETURN(
      auto store, CheckpointStore::Create(object_store.get(), store_options));
  WEIR_ASSIGN_OR_RETURN(auto op,
                        KeyedWindowOperator::Create(features, backend.get()));

  CapacityCalibration c;
  c.input = std::string(input.name());
  c.cache_max_entries = features.cache_max_entries;
  const double max_seconds = absl::ToDoubleSeconds(options.max_time);
  const int64_t max_events = input.size() >= 0
                                 ? std::min(options.max_events, input.size())
                                 : options.max_events;
  Stopwatch clock;
  uint64_t updates = 0;
  uint64_t incremental_bytes = 0;
  int64_t events_at_first_checkpoint = 0;
  OperatorOutput out;
  Event event;
  std::vector<RawRecord> batch(kBatch);
  std::vector<std::string> values(kBatch);
  // Flushes, checkpoints and publishes; the publication is not timed (the
  // service uploads on other threads).
  auto checkpoint = [&]() -> absl::Status {
    clock.Start();
    WEIR_RETURN_IF_ERROR(op->Flush());
    const std::string dir = absl::StrCat(tmp.path(), "/ckpt-", c.checkpoints);
    WEIR_RETURN_IF_ERROR(backend->CreateCheckpoint(dir));
    clock.Stop();
    CheckpointMetadata metadata;
    metadata.checkpoint_id = static_cast<uint64_t>(c.checkpoints) + 1;
    metadata.pipeline = pipeline;
    WEIR_ASSIGN_OR_RETURN(PublishResult published,
                          store->Publish(dir, metadata));
    if (c.checkpoints == 0) {
      c.first_checkpoint_bytes = published.bytes_uploaded;
      events_at_first_checkpoint = c.events;
    } else {
      incremental_bytes += published.bytes_uploaded;
    }
    ++c.checkpoints;
    return absl::OkStatus();
  };

  const double checkpoint_every = max_seconds / options.checkpoints;
  const int64_t events_per_checkpoint = max_events / options.checkpoints;
  bool more = true;
  while (more && c.events < max_events && clock.wall() < max_seconds) {
    // A batch ends at the input's end, at max_events and where the next
    // checkpoint is due by count.
    const int next_count = c.checkpoints + 1;
    int64_t until = max_events;
    if (next_count <= options.checkpoints &&
        events_per_checkpoint * next_count > c.events) {
      until = std::min(until, events_per_checkpoint * next_count);
    }
    const size_t want =
        static_cast<size_t>(std::min<int64_t>(kBatch, until - c.events));
    size_t n = 0;
    while (n < want && (more = input.Next(&batch[n], &values[n]))) ++n;
    clock.Start();
    for (size_t i = 0; i < n; ++i) {
      ++c.events;
      if (!decoder.DecodeInto(batch[i], &event).ok()) {
        ++c.rejected;
        continue;
      }
      WEIR_RETURN_IF_ERROR(op->Process(event.view(), &out));
      updates += out.updates.size();
      out.Clear();
    }
    clock.Stop();
    const int next = c.checkpoints + 1;
    if (next < options.checkpoints + 1 &&
        (clock.wall() >= checkpoint_every * next ||
         c.events >= events_per_checkpoint * next)) {
      WEIR_RETURN_IF_ERROR(checkpoint());
    }
  }
  WEIR_RETURN_IF_ERROR(input.status());
  if (c.events == 0) {
    return absl::InvalidArgumentError("the input holds no record");
  }
  WEIR_RETURN_IF_ERROR(checkpoint());

  // The state at the end of the input: logical, then compacted on disk.
  const StateFootprint state = MeasureState(backend.get());
  if (!state.ok) return absl::InternalError("the state scan failed");
  if (state.entities == 0) {
    return absl::InternalError(
        absl::StrCat("no state was kept: ", c.rejected, " of ", c.events,
                     " records were refused by the decoder"));
  }
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
  c.peak_rss_kib = internal::PeakRssKib();
  c.stats = op->stats();
  CapacityMeasurements& m = c.measurements;
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

namespace {

std::string Mib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

double PerEvent(uint64_t n, int64_t events) {
  return events > 0 ? static_cast<double>(n) / static_cast<double>(events) : 0;
}

// `s` with '"' and '\' escaped, for a JSON string of printable text.
std::string JsonText(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
  }
  return out;
}

}  // namespace

std::string CapacityReportText(std::string_view definition,
                               const CapacityCalibration& c,
                               const CapacityTargets& t,
                               const CapacityPlan& p) {
  const CapacityMeasurements& m = c.measurements;
  std::string s;
  absl::StrAppendFormat(&s, "capacity plan: %s on this machine\n\n",
                        definition);
  absl::StrAppendFormat(
      &s,
      "calibration: %d %s events (%d rejected by the decoder) in %.2f s, "
      "%.2f s of process CPU, %d checkpoints, %d entities holding state, "
      "peak RSS %.0f MiB\n",
      c.events, c.input, c.rejected, c.seconds, c.cpu_seconds, c.checkpoints,
      c.active_entities, static_cast<double>(c.peak_rss_kib) / 1024);
  absl::StrAppendFormat(
      &s,
      "operator: %.2f state reads and %.2f state writes per event, %d cache "
      "evictions (cache of %d entries)\n",
      PerEvent(c.stats.state_reads, c.events),
      PerEvent(c.stats.state_writes, c.events), c.stats.cache_evictions,
      c.cache_max_entries);
  absl::StrAppendFormat(&s,
                        "measured:\n"
                        "  events_per_core_second      %12.0f\n"
                        "  events_per_thread_second    %12.0f\n"
                        "  state_bytes_per_entity      %12.0f\n"
                        "  disk_bytes_per_entity       %12.0f\n"
                        "  checkpoint_bytes_per_event  %12.1f\n"
                        "  updates_per_event           %12.2f\n\n",
                        m.events_per_core_second, m.events_per_thread_second,
                        m.state_bytes_per_entity, m.disk_bytes_per_entity,
                        m.checkpoint_bytes_per_event, m.updates_per_event);
  absl::StrAppendFormat(
      &s,
      "targets: %.0f events/s, peak x%.2f = %.0f events/s, %d entities, "
      "retention %s, headroom %.2f, checkpoint every %s, %d cores per "
      "instance, cache fraction %.2f\n\n",
      t.target_rate, t.peak, p.peak_rate, t.entities,
      absl::FormatDuration(t.retention), t.headroom,
      absl::FormatDuration(t.checkpoint_interval), t.cores_per_instance,
      t.cache_fraction);
  absl::StrAppendFormat(
      &s,
      "plan:\n"
      "  instances                   %d (%d cores; %d needed for the peak; "
      "%.0f%% busy at the peak)\n"
      "  partitions                  %d\n"
      "  entities holding state      %d\n"
      "  state                       %s (%s per instance, %s per partition)\n"
      "  disk per instance           %s\n"
      "  RocksDB memory budget       %s per instance (block cache %s, "
      "memtables %s: write_buffer_fraction %.2f)\n"
      "  memory per instance         %s\n"
      "  checkpoint interval         %s: upload %s per instance (%s at the "
      "peak, %s/s)\n"
      "  sink updates                %.0f/s (%.0f/s at the peak)\n",
      p.instances, p.cores, p.cores_needed, 100 * p.utilisation_at_peak,
      p.partitions, p.active_entities, Mib(p.state_bytes),
      Mib(p.state_bytes_per_instance), Mib(p.state_bytes_per_partition),
      Mib(p.disk_bytes_per_instance), Mib(p.memory_budget_bytes),
      Mib(p.block_cache_bytes), Mib(p.memtable_bytes), p.write_buffer_fraction,
      Mib(p.memory_per_instance_bytes),
      absl::FormatDuration(t.checkpoint_interval),
      Mib(p.checkpoint_upload_bytes), Mib(p.checkpoint_upload_peak_bytes),
      Mib(static_cast<uint64_t>(p.upload_bytes_per_second_at_peak)),
      p.sink_updates_per_second, p.sink_updates_per_second_at_peak);
  return s;
}

std::string CapacityReportJson(std::string_view definition,
                               const CapacityCalibration& c,
                               const CapacityTargets& t,
                               const CapacityPlan& p) {
  const CapacityMeasurements& m = c.measurements;
  std::string s = "{";
  absl::StrAppendFormat(
      &s,
      "\"calibration\":{\"definition\":\"%s\",\"input\":\"%s\","
      "\"events\":%d,\"rejected\":%d,\"seconds\":%.3f,\"cpu_seconds\":%.3f,"
      "\"checkpoints\":%d,\"active_entities\":%d,\"state_bytes\":%d,"
      "\"disk_bytes\":%d,\"first_checkpoint_bytes\":%d,\"peak_rss_mb\":%.1f,"
      "\"state_reads\":%d,\"state_writes\":%d,\"cache_evictions\":%d},",
      JsonText(definition), JsonText(c.input), c.events, c.rejected, c.seconds,
      c.cpu_seconds, c.checkpoints, c.active_entities, c.state_bytes,
      c.disk_bytes, c.first_checkpoint_bytes,
      static_cast<double>(c.peak_rss_kib) / 1024, c.stats.state_reads,
      c.stats.state_writes, c.stats.cache_evictions);
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
  return s;
}

}  // namespace weir
