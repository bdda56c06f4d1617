#include "weir/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

// The start offset of a partition that starts where the source starts it
// (PipelineOptions::start_unrestored_at_zero false), until its first record.
constexpr int64_t kSourceStart = -1;

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

absl::Status MakeDirs(Env* env, const std::string& dir) {
  return CreateDirectories(env, dir);
}

void RemoveAll(Env* env, const std::string& path) {
  RemoveTree(env, path).IgnoreError();
}

}  // namespace

const char* PipelinePhaseName(PipelinePhase phase) {
  switch (phase) {
    case PipelinePhase::kJoin:
      return "join";
    case PipelinePhase::kRestore:
      return "restore";
    case PipelinePhase::kProcessing:
      return "processing";
    case PipelinePhase::kCheckpoint:
      return "checkpoint";
    case PipelinePhase::kFiring:
      return "firing";
    case PipelinePhase::kFinalCheckpoint:
      return "final_checkpoint";
    case PipelinePhase::kStopped:
      return "stopped";
  }
  return "unknown";
}

absl::Status PipelineOptions::Validate() const {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: must match [a-z0-9_]+, got '", name, "'"));
  }
  KeyedWindowOptions f = features;
  f.name = name;
  f.clock = clock;
  absl::Status s = f.Validate();
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("features.", std::string(s.message())));
  }
  if (state_dir.empty()) {
    return absl::InvalidArgumentError("state_dir: is required");
  }
  if (!backend_factory) {
    return absl::InvalidArgumentError("backend_factory: is required");
  }
  if (checkpoint_upload_threads < 1 || checkpoint_upload_threads > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint_upload_threads: must be 1 to 64, got ",
                     checkpoint_upload_threads));
  }
  CheckpointerOptions c = checkpoints;
  c.clock = clock;
  s = c.Validate();
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoints.", std::string(s.message())));
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock: is null");
  if (env == nullptr) return absl::InvalidArgumentError("env: is null");
  if (max_poll_records == 0) {
    return absl::InvalidArgumentError("max_poll_records: must be positive");
  }
  if (poll_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("poll_timeout: must not be negative");
  }
  if (max_pending_updates == 0) {
    return absl::InvalidArgumentError("max_pending_updates: must be positive");
  }
  if (sink_batch_size == 0) {
    return absl::InvalidArgumentError("sink_batch_size: must be positive");
  }
  if (sink_retry_backoff <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("sink_retry_backoff: must be positive");
  }
  if (partition_stats_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "partition_stats_interval: must be positive");
  }
  return absl::OkStatus();
}

// Everything a Pipeline is; Pipeline forwards to it.
class Pipeline::Impl final : public PartitionListener {
 public:
  Impl(const PipelineOptions& options, const PipelineParts& parts);
  ~Impl() override;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Pipeline's public methods; pipeline.h says what they do.
  absl::Status Run();
  void Stop();
  void RequestCheckpoint();
  void RequestSavepoint(std::string name);
  PipelineStats stats() const;
  std::vector<PartitionStats> partition_stats() const;

 private:
  friend class Pipeline;  // Create sets up the parts

  struct Partition;

  absl::StatusOr<StartOffsets> OnAssigned(
      absl::Span<const TopicPartition> partitions) override;
  void OnRevoked(absl::Span<const TopicPartition> partitions) override;
  absl::StatusOr<std::unique_ptr<Partition>> OpenPartition(
      const TopicPartition& tp, int64_t* start_offset);

  absl::Status ProcessRecord(const RawRecord& raw);
  absl::Status DrainToSink(bool must_empty);
  absl::Status UpdatePause();
  // Moves what the operator produced (out_) to the sink queue.
  void TakeOutput();
  // Moves out_ to the sink queue, then fires the steps `op` left pending
  // (KeyedWindowOptions::max_fire_updates), draining to the sink after
  // each, so one step's updates are in memory at a time.
  absl::Status FinishFiring(KeyedWindowOperator& op);
  absl::Status StartCheckpoint(std::optional<std::string> savepoint,
                               bool* postponed);
  absl::Status PollCheckpoints();
  absl::Status FinalCheckpoint();
  // Reports `phase` to the listener if it differs from the current one.
  // Processing and checkpoint are not entered again once firing began.
  void SetPhase(PipelinePhase phase);
  // Processing or checkpoint (a round in flight), join with no partitions.
  PipelinePhase SteadyPhase() const;

  PipelineOptions options_;
  std::optional<PipelinePhase> phase_;
  PipelineParts parts_;
  std::unique_ptr<DeadLetterRouter> router_;
  // Uploads every partition's checkpoints; outlives the partitions.
  std::unique_ptr<UploadPool> upload_pool_;
  std::map<TopicPartition, std::unique_ptr<Partition>> partitions_;
  std::optional<CheckpointScheduler> scheduler_;
  absl::Status last_round_status_;  // of the newest completed round
  int64_t generation_ = 0;          // distinguishes local directories

  OperatorOutput out_;
  std::vector<FeatureUpdate> pending_;
  size_t pending_begin_ = 0;
  bool paused_ = false;
  bool reassigned_ = false;  // a rebalance happened: re-pause if paused
  absl::Time paused_since_;
  absl::Time sink_retry_at_ = absl::InfinitePast();

  // The checkpoint round in flight: the partitions submitted and their
  // offsets; done when every one of them completed.
  struct Round {
    int64_t id = 0;
    absl::Time started;
    std::map<TopicPartition, int64_t> offsets;
    std::map<TopicPartition, bool> done;
    absl::Status status;
  };
  std::optional<Round> round_;
  int64_t next_round_id_ = 1;

  // Counters kept by the processing thread and published to stats_ once
  // per batch.
  struct Counters {
    int64_t records_in = 0;
    int64_t records_processed = 0;
    int64_t late_records = 0;
  };
  void PublishCounters();
  Counters counters_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> checkpoint_requested_{false};
  mutable absl::Mutex mu_;
  std::optional<std::string> savepoint_requested_ ABSL_GUARDED_BY(mu_);
  PipelineStats stats_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> paused_since_for_stats_ ABSL_GUARDED_BY(mu_);
  std::vector<PartitionStats> partition_stats_ ABSL_GUARDED_BY(mu_);
  absl::Time partition_stats_at_ = absl::InfinitePast();
  void RefreshPartitionStats(bool force);
};

// The state of one assigned input partition. Members are destroyed in
// reverse order: the checkpointer (which uses the store) first, the operator
// before its backend.
struct Pipeline::Impl::Partition {
  TopicPartition tp;
  std::string dir;
  std::unique_ptr<CheckpointStore> store;
  std::unique_ptr<AsyncCheckpointer> checkpointer;
  std::unique_ptr<StateBackend> backend;
  std::unique_ptr<KeyedWindowOperator> op;
  int64_t next_offset = 0;
  int64_t records = 0;
  std::unique_ptr<HeavyHitters> hot_keys;  // null when turned off
  // The id of this partition's next checkpoint: one past the largest in the
  // store, so a restored partition never reuses a published id.
  uint64_t next_checkpoint_id = 1;
  // Every record of the partition is decoded into this event, reusing its
  // storage (no allocation per record once the strings and values fit).
  Event event;
};

Pipeline::Impl::Impl(const PipelineOptions& options, const PipelineParts& parts)
    : options_(options), parts_(parts) {
  options_.features.name = options_.name;
  options_.features.clock = options_.clock;
  options_.checkpoints.clock = options_.clock;
  if (!options_.logger) {
    options_.logger = [](std::string_view line) {
      std::fprintf(stderr, "weir pipeline: %.*s\n",
                   static_cast<int>(line.size()), line.data());
    };
  }
}

Pipeline::Impl::~Impl() {
  if (parts_.source != nullptr) parts_.source->SetPartitionListener(nullptr);
  partitions_.clear();
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(
    const PipelineOptions& options, const PipelineParts& parts) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (parts.source == nullptr)
    return absl::InvalidArgumentError("source: is null");
  if (parts.decoder == nullptr) {
    return absl::InvalidArgumentError("decoder: is null");
  }
  if (parts.sink == nullptr) return absl::InvalidArgumentError("sink: is null");
  if (parts.checkpoint_store == nullptr) {
    return absl::InvalidArgumentError("checkpoint_store: is null");
  }
  if (parts.dead_letters == nullptr) {
    return absl::InvalidArgumentError("dead_letters: is null");
  }
  WEIR_RETURN_IF_ERROR(MakeDirs(options.env, options.state_dir));
  std::unique_ptr<Impl> p(new Impl(options, parts));
  DeadLetterRouterOptions ro;
  ro.pipeline_name = options.name;
  ro.pipeline_version = options.version;
  ro.clock = options.clock;
  WEIR_ASSIGN_OR_RETURN(p->router_,
                        DeadLetterRouter::Create(ro, parts.dead_letters));
  WEIR_ASSIGN_OR_RETURN(CheckpointScheduler scheduler,
                        CheckpointScheduler::Create(p->options_.checkpoints));
  p->scheduler_.emplace(std::move(scheduler));
  p->upload_pool_ =
      std::make_unique<UploadPool>(options.checkpoint_upload_threads);
  parts.source->SetPartitionListener(p.get());
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(p)));
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() = default;

absl::Status Pipeline::Run() { return impl_->Run(); }

void Pipeline::Stop() { impl_->Stop(); }

void Pipeline::RequestCheckpoint() { impl_->RequestCheckpoint(); }

void Pipeline::RequestSavepoint(std::string name) {
  impl_->RequestSavepoint(std::move(name));
}

PipelineStats Pipeline::stats() const { return impl_->stats(); }

std::vector<PartitionStats> Pipeline::partition_stats() const {
  return impl_->partition_stats();
}

// ---- partitions
// ---------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Pipeline::Impl::Partition>>
Pipeline::Impl::OpenPartition(const TopicPartition& tp, int64_t* start_offset) {
  auto p = std::make_unique<Partition>();
  p->tp = tp;
  const std::string base =
      absl::StrCat(options_.state_dir, "/", tp.topic, "-", tp.partition);
  WEIR_RETURN_IF_ERROR(MakeDirs(options_.env, base));
  p->dir = absl::StrCat(base, "/live-", ++generation_);
  RemoveAll(options_.env, p->dir);

  CheckpointStoreOptions so;
  so.env = options_.env;
  so.prefix = CheckpointPrefix(absl::StrCat(options_.name, "/", tp.topic),
                               tp.partition);
  WEIR_ASSIGN_OR_RETURN(p->store,
                        CheckpointStore::Create(parts_.checkpoint_store, so));
  *start_offset = 0;
  WEIR_ASSIGN_OR_RETURN(p->next_checkpoint_id, p->store->NextCheckpointId());
  absl::StatusOr<CheckpointManifest> manifest =
      options_.restore_savepoint.has_value()
          ? p->store->RestoreSavepoint(*options_.restore_savepoint, p->dir)
          : p->store->RestoreLatest(p->dir);
  {
    absl::MutexLock lock(&mu_);
    stats_.restore_fallbacks +=
        static_cast<int64_t>(p->store->stats().restore_fallbacks);
  }
  if (manifest.ok()) {
    for (const SourceOffset& o : manifest->metadata.source_offsets) {
      if (o.topic == tp.topic && o.partition == tp.partition) {
        *start_offset = o.offset;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      ++stats_.partitions_restored;
    }
    options_.logger(absl::StrCat(
        "partition ", tp.topic, "-", tp.partition, ": restored checkpoint ",
        manifest->metadata.checkpoint_id, " at offset ", *start_offset));
  } else if (absl::IsNotFound(manifest.status())) {
    RemoveAll(options_.env,
              p->dir);  // nothing usable: start empty, from the beginning
    WEIR_RETURN_IF_ERROR(MakeDirs(options_.env, p->dir));
    if (!options_.start_unrestored_at_zero) *start_offset = kSourceStart;
    options_.logger(absl::StrCat(
        "partition ", tp.topic, "-", tp.partition,
        options_.start_unrestored_at_zero
            ? ": no checkpoint, starting empty at offset 0"
            : ": no checkpoint, starting empty where the source starts it"));
  } else {
    return manifest.status();
  }
  p->next_offset = *start_offset;
  WEIR_ASSIGN_OR_RETURN(p->backend, options_.backend_factory(p->dir));
  WEIR_ASSIGN_OR_RETURN(
      p->op, KeyedWindowOperator::Create(options_.features, p->backend.get()));
  WEIR_ASSIGN_OR_RETURN(
      p->checkpointer,
      AsyncCheckpointer::Create(p->store.get(), options_.checkpoints,
                                upload_pool_.get()));
  if (options_.hot_key_capacity > 0) {
    p->hot_keys = std::make_unique<HeavyHitters>(options_.hot_key_capacity);
  }
  return p;
}

absl::StatusOr<StartOffsets> Pipeline::Impl::OnAssigned(
    absl::Span<const TopicPartition> partitions) {
  StartOffsets start;
  if (!partitions.empty()) SetPhase(PipelinePhase::kRestore);
  for (const TopicPartition& tp : partitions) {
    int64_t offset = 0;
    WEIR_ASSIGN_OR_RETURN(std::unique_ptr<Partition> p,
                          OpenPartition(tp, &offset));
    partitions_[tp] = std::move(p);
    if (offset != kSourceStart) start[tp] = offset;
  }
  reassigned_ = true;
  partition_stats_at_ = absl::InfinitePast();
  SetPhase(SteadyPhase());
  absl::MutexLock lock(&mu_);
  stats_.partitions_assigned = static_cast<int64_t>(partitions_.size());
  return start;
}

void Pipeline::Impl::OnRevoked(absl::Span<const TopicPartition> partitions) {
  for (const TopicPartition& tp : partitions) {
    auto it = partitions_.find(tp);
    if (it == partitions_.end()) continue;
    const std::string dir = it->second->dir;
    partitions_.erase(it);  // abandons an upload in flight
    RemoveAll(options_.env, dir);
    partition_stats_at_ = absl::InfinitePast();
    if (round_.has_value() && round_->done.count(tp)) {
      round_->done[tp] = true;
      round_->offsets.erase(tp);
    }
  }
  SetPhase(SteadyPhase());
  absl::MutexLock lock(&mu_);
  stats_.partitions_assigned = static_cast<int64_t>(partitions_.size());
}

// ---- processing
// -----------------------------------------------------------------

absl::Status Pipeline::Impl::ProcessRecord(const RawRecord& raw) {
  auto it =
      partitions_.find(TopicPartition{std::string(raw.topic), raw.partition});
  if (it == partitions_.end()) return absl::OkStatus();  // not ours any more
  Partition& p = *it->second;
  if (raw.offset < p.next_offset) return absl::OkStatus();  // seen already
  p.next_offset = raw.offset + 1;
  ++p.records;
  if (p.hot_keys != nullptr) p.hot_keys->Add(raw.key);
  absl::Status decoded = parts_.decoder->DecodeInto(raw, &p.event);
  if (!decoded.ok()) WEIR_RETURN_IF_ERROR(router_->Route(raw, decoded));
  int64_t late = 0;
  if (decoded.ok()) {
    Event* event = &p.event;
    event->partition = raw.partition;
    event->offset = raw.offset;
    absl::Status s = p.op->Process(event->view(), &out_);
    if (absl::IsInvalidArgument(s)) {
      WEIR_RETURN_IF_ERROR(router_->Route(raw, s));
    } else {
      WEIR_RETURN_IF_ERROR(s);
    }
    for (const LateRecord& l : out_.late) {
      ++late;
      if (parts_.late_records != nullptr) {
        WEIR_RETURN_IF_ERROR(parts_.late_records->Write(l, raw));
      }
    }
  }
  WEIR_RETURN_IF_ERROR(FinishFiring(*p.op));
  ++counters_.records_in;
  if (decoded.ok()) ++counters_.records_processed;
  counters_.late_records += late;
  return absl::OkStatus();
}

absl::Status Pipeline::Impl::FinishFiring(KeyedWindowOperator& op) {
  TakeOutput();
  while (op.firing_pending()) {
    WEIR_RETURN_IF_ERROR(DrainToSink(/*must_empty=*/false));
    WEIR_RETURN_IF_ERROR(op.AdvanceWatermark(op.watermark(), &out_));
    TakeOutput();
  }
  return absl::OkStatus();
}

void Pipeline::Impl::TakeOutput() {
  out_.late.clear();
  if (out_.updates.empty()) return;
  if (pending_begin_ == pending_.size()) {
    // The queue is empty (the common case: the sink keeps up): trade
    // buffers instead of moving every update.
    pending_.clear();
    pending_begin_ = 0;
    pending_.swap(out_.updates);
    return;
  }
  pending_.insert(pending_.end(), std::make_move_iterator(out_.updates.begin()),
                  std::make_move_iterator(out_.updates.end()));
  out_.updates.clear();
}

void Pipeline::Impl::PublishCounters() {
  absl::MutexLock lock(&mu_);
  stats_.records_in += counters_.records_in;
  stats_.records_processed += counters_.records_processed;
  stats_.late_records += counters_.late_records;
  counters_ = Counters();
}

absl::Status Pipeline::Impl::DrainToSink(bool must_empty) {
  const absl::Time now = options_.clock->Now();
  if (!must_empty && now < sink_retry_at_) return absl::OkStatus();
  int64_t written = 0;
  absl::Status result;
  while (pending_begin_ < pending_.size()) {
    const size_t n =
        std::min(options_.sink_batch_size, pending_.size() - pending_begin_);
    absl::Status s = parts_.sink->Write(
        absl::MakeConstSpan(pending_.data() + pending_begin_, n));
    if (!s.ok()) {
      if (absl::IsUnavailable(s)) {
        sink_retry_at_ = now + options_.sink_retry_backoff;
        if (must_empty) result = s;
      } else {
        result = s;
      }
      break;
    }
    pending_begin_ += n;
    written += static_cast<int64_t>(n);
  }
  if (pending_begin_ == pending_.size()) {
    pending_.clear();
    pending_begin_ = 0;
  } else if (pending_begin_ > pending_.size() / 2) {
    pending_.erase(pending_.begin(), pending_.begin() + pending_begin_);
    pending_begin_ = 0;
  }
  absl::MutexLock lock(&mu_);
  stats_.updates_written += written;
  stats_.pending_updates =
      static_cast<int64_t>(pending_.size() - pending_begin_);
  return result;
}

absl::Status Pipeline::Impl::UpdatePause() {
  const size_t pending = pending_.size() - pending_begin_;
  const bool want = pending >= options_.max_pending_updates ||
                    (paused_ && pending > options_.max_pending_updates / 2);
  if (want == paused_) return absl::OkStatus();
  std::vector<TopicPartition> all;
  for (const auto& [tp, p] : partitions_) all.push_back(tp);
  const absl::Time now = options_.clock->Now();
  if (want) {
    WEIR_RETURN_IF_ERROR(parts_.source->Pause(all));
    paused_since_ = now;
    absl::MutexLock lock(&mu_);
    paused_since_for_stats_ = now;
  } else {
    WEIR_RETURN_IF_ERROR(parts_.source->Resume(all));
    absl::MutexLock lock(&mu_);
    stats_.paused += now - paused_since_;
    paused_since_for_stats_.reset();
  }
  paused_ = want;
  return absl::OkStatus();
}

absl::Status Pipeline::Impl::Run() {
  SetPhase(SteadyPhase());
  while (!stop_.load(std::memory_order_relaxed)) {
    WEIR_RETURN_IF_ERROR(DrainToSink(false));
    WEIR_RETURN_IF_ERROR(UpdatePause());
    const absl::Duration timeout =
        paused_ ? std::min(options_.poll_timeout, options_.sink_retry_backoff)
                : options_.poll_timeout;
    WEIR_ASSIGN_OR_RETURN(
        absl::Span<const RawRecord> batch,
        parts_.source->Poll(options_.max_poll_records, timeout));
    if (reassigned_) {
      // A rebalance resumes what it assigns; a pause must cover the new
      // partitions too (a listener may not pause from inside the callback).
      reassigned_ = false;
      if (paused_) {
        std::vector<TopicPartition> all;
        for (const auto& [tp, p] : partitions_) all.push_back(tp);
        WEIR_RETURN_IF_ERROR(parts_.source->Pause(all));
      }
    }
    for (const RawRecord& raw : batch) WEIR_RETURN_IF_ERROR(ProcessRecord(raw));
    PublishCounters();
    RefreshPartitionStats(/*force=*/false);

    WEIR_RETURN_IF_ERROR(PollCheckpoints());
    std::optional<std::string> savepoint;
    {
      absl::MutexLock lock(&mu_);
      savepoint = std::move(savepoint_requested_);
      savepoint_requested_.reset();
    }
    // A request made while a round is in flight waits for it to end.
    const bool requested = !round_.has_value()
                               ? checkpoint_requested_.exchange(false)
                               : checkpoint_requested_.load();
    const bool want = savepoint.has_value() || requested || scheduler_->Due();
    const bool sink_backing_off = options_.clock->Now() < sink_retry_at_;
    if (want && !round_.has_value() && sink_backing_off) {
      // The sink refused recently: a checkpoint could not flush it. Put the
      // checkpoint off (an explicit request stays pending).
      checkpoint_requested_.store(true);
      if (savepoint.has_value()) {
        absl::MutexLock lock(&mu_);
        savepoint_requested_ = std::move(savepoint);
      }
    } else if (want && !round_.has_value()) {
      bool postponed = false;
      absl::Status s = StartCheckpoint(savepoint, &postponed);
      SetPhase(SteadyPhase());
      if (postponed) {
        checkpoint_requested_.store(true);
        absl::MutexLock lock(&mu_);
        ++stats_.checkpoints_postponed;
        if (savepoint.has_value()) savepoint_requested_ = std::move(savepoint);
      } else if (!s.ok()) {
        {
          absl::MutexLock lock(&mu_);
          ++stats_.checkpoints_failed;
        }
        scheduler_->Started();
        WEIR_RETURN_IF_ERROR(scheduler_->Completed(s));
      }
    } else if (want && savepoint.has_value()) {
      absl::MutexLock lock(&mu_);
      savepoint_requested_ = std::move(savepoint);  // after the one in flight
    }

    if (batch.empty() && parts_.source->AtEnd()) {
      // A bounded input is exhausted: every window fires.
      SetPhase(PipelinePhase::kFiring);
      for (auto& [tp, p] : partitions_) {
        WEIR_RETURN_IF_ERROR(p->op->AdvanceWatermark(kMaxEventTime, &out_));
        WEIR_RETURN_IF_ERROR(FinishFiring(*p->op));
        WEIR_RETURN_IF_ERROR(DrainToSink(/*must_empty=*/false));
      }
      break;
    }
  }
  SetPhase(PipelinePhase::kFinalCheckpoint);
  absl::Status s = FinalCheckpoint();
  RefreshPartitionStats(/*force=*/true);
  SetPhase(PipelinePhase::kStopped);
  return s;
}

// ---- checkpoints
// ----------------------------------------------------------------

absl::Status Pipeline::Impl::StartCheckpoint(
    std::optional<std::string> savepoint, bool* postponed) {
  *postponed = false;
  if (partitions_.empty()) return absl::OkStatus();
  SetPhase(PipelinePhase::kCheckpoint);  // the caller sets it back on failure
  const int64_t id = next_round_id_;
  // Everything emitted so far must be durable before any offset past it is
  // published: otherwise a crash after the checkpoint would lose updates
  // that no replay re-emits. A sink that cannot take them now postpones
  // the checkpoint rather than failing it.
  absl::Status s = DrainToSink(/*must_empty=*/true);
  if (s.ok()) s = parts_.sink->PreCommit(id);
  if (absl::IsUnavailable(s)) {
    sink_retry_at_ = options_.clock->Now() + options_.sink_retry_backoff;
    *postponed = true;
    return s;
  }
  WEIR_RETURN_IF_ERROR(s);
  ++next_round_id_;
  WEIR_RETURN_IF_ERROR(router_->Flush());
  if (parts_.late_records != nullptr) {
    WEIR_RETURN_IF_ERROR(parts_.late_records->Flush());
  }
  Round round;
  round.id = id;
  round.started = options_.clock->Now();
  const std::string staging = absl::StrCat(options_.state_dir, "/staging");
  WEIR_RETURN_IF_ERROR(MakeDirs(options_.env, staging));
  for (auto& [tp, p] : partitions_) {
    // Nothing read yet of a partition that started where the source starts
    // it: its state is empty, and a restart starts it there again.
    if (p->next_offset == kSourceStart) continue;
    WEIR_RETURN_IF_ERROR(p->op->Flush());
    const std::string dir =
        absl::StrCat(staging, "/", tp.topic, "-", tp.partition, "-", id);
    RemoveAll(options_.env, dir);
    WEIR_RETURN_IF_ERROR(p->backend->CreateCheckpoint(dir));
    CheckpointRequest request;
    request.metadata.checkpoint_id = p->next_checkpoint_id++;
    request.metadata.pipeline = options_.name;
    request.metadata.pipeline_version = options_.version;
    request.metadata.operator_name = options_.name;
    request.metadata.partition = tp.partition;
    request.metadata.source_offsets = {
        SourceOffset{tp.topic, tp.partition, p->next_offset}};
    request.metadata.watermark = p->op->watermark();
    request.local_dir = dir;
    request.savepoint_name = savepoint;
    WEIR_RETURN_IF_ERROR(p->checkpointer->Submit(std::move(request)));
    round.offsets[tp] = p->next_offset;
    round.done[tp] = false;
  }
  round_ = std::move(round);
  scheduler_->Started();
  return absl::OkStatus();
}

absl::Status Pipeline::Impl::PollCheckpoints() {
  if (!round_.has_value()) return absl::OkStatus();
  Round& r = *round_;
  int64_t bytes = 0;
  bool all_done = true;
  for (auto& [tp, done] : r.done) {
    if (done) continue;
    auto it = partitions_.find(tp);
    if (it == partitions_.end()) {
      done = true;
      continue;
    }
    std::optional<CheckpointCompletion> c = it->second->checkpointer->Poll();
    if (!c.has_value()) {
      all_done = false;
      continue;
    }
    done = true;
    bytes += static_cast<int64_t>(c->bytes_uploaded);
    if (!c->status.ok()) {
      r.status = c->status;
      r.offsets.erase(tp);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    stats_.checkpoint_bytes_uploaded += bytes;
  }
  if (!all_done) return absl::OkStatus();
  // Offsets go to the source for lag tooling; the manifests are the truth,
  // so a failed commit is not a failed checkpoint.
  if (!r.offsets.empty()) {
    PartitionOffsets offsets(r.offsets.begin(), r.offsets.end());
    parts_.source->CommitOffsets(offsets).IgnoreError();
  }
  absl::Status status = r.status;
  if (status.ok()) {
    status = parts_.sink->Commit(r.id);
  } else {
    parts_.sink->Abort(r.id).IgnoreError();
  }
  {
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      ++stats_.checkpoints_completed;
      stats_.last_checkpoint = options_.clock->Now();
      stats_.last_checkpoint_duration = options_.clock->Now() - r.started;
    } else {
      ++stats_.checkpoints_failed;
    }
  }
  round_.reset();
  last_round_status_ = status;
  SetPhase(SteadyPhase());
  return scheduler_->Completed(status);
}

absl::Status Pipeline::Impl::FinalCheckpoint() {
  // Let the round in flight finish.
  const absl::Duration wait = options_.checkpoints.timeout + absl::Seconds(5);
  while (round_.has_value()) {
    for (auto& [tp, p] : partitions_) p->checkpointer->WaitForIdle(wait);
    WEIR_RETURN_IF_ERROR(PollCheckpoints());
  }
  // At the end of a bounded input every update must reach the sink: a sink
  // that refuses for now (kUnavailable) is waited for, with backoff, until
  // it takes them or Stop() is called. After Stop() it is not: the last
  // checkpoint covers what was not written, and a restart replays it.
  while (!stop_.load()) {
    absl::Status s = DrainToSink(/*must_empty=*/true);
    if (s.ok() || !absl::IsUnavailable(s)) break;
    absl::SleepFor(options_.sink_retry_backoff);
  }
  if (!options_.checkpoint_on_stop || partitions_.empty()) {
    return DrainToSink(/*must_empty=*/true);
  }
  bool postponed = false;
  last_round_status_ = absl::OkStatus();
  WEIR_RETURN_IF_ERROR(StartCheckpoint(std::nullopt, &postponed));
  while (round_.has_value()) {
    for (auto& [tp, p] : partitions_) p->checkpointer->WaitForIdle(wait);
    WEIR_RETURN_IF_ERROR(PollCheckpoints());
  }
  // Nothing later can make up for it: say so.
  if (!last_round_status_.ok()) {
    return absl::Status(last_round_status_.code(),
                        absl::StrCat("the final checkpoint failed: ",
                                     last_round_status_.message()));
  }
  return absl::OkStatus();
}

void Pipeline::Impl::SetPhase(PipelinePhase phase) {
  if (phase_.has_value() &&
      (phase == *phase_ ||
       (*phase_ >= PipelinePhase::kFiring && phase < *phase_))) {
    return;
  }
  phase_ = phase;
  if (options_.phase_listener) options_.phase_listener(phase);
}

PipelinePhase Pipeline::Impl::SteadyPhase() const {
  if (round_.has_value()) return PipelinePhase::kCheckpoint;
  return partitions_.empty() ? PipelinePhase::kJoin
                             : PipelinePhase::kProcessing;
}

void Pipeline::Impl::RefreshPartitionStats(bool force) {
  const absl::Time now = options_.clock->Now();
  if (!force && now < partition_stats_at_ + options_.partition_stats_interval) {
    return;
  }
  partition_stats_at_ = now;
  std::vector<PartitionStats> all;
  for (const auto& [tp, p] : partitions_) {
    PartitionStats s;
    s.partition = tp;
    s.records = p->records;
    s.next_offset = p->next_offset;
    s.watermark = p->op->watermark();
    s.op = p->op->stats();
    s.state = p->backend->Stats();
    if (p->hot_keys != nullptr) s.hot_keys = p->hot_keys->Top(10);
    all.push_back(std::move(s));
  }
  absl::MutexLock lock(&mu_);
  partition_stats_ = std::move(all);
}

std::vector<PartitionStats> Pipeline::Impl::partition_stats() const {
  absl::MutexLock lock(&mu_);
  return partition_stats_;
}

void Pipeline::Impl::Stop() { stop_.store(true); }

void Pipeline::Impl::RequestCheckpoint() { checkpoint_requested_.store(true); }

void Pipeline::Impl::RequestSavepoint(std::string name) {
  absl::MutexLock lock(&mu_);
  savepoint_requested_ = std::move(name);
}

PipelineStats Pipeline::Impl::stats() const {
  absl::MutexLock lock(&mu_);
  PipelineStats s = stats_;
  s.dead_letters = 0;
  if (router_ != nullptr) {
    const DeadLetterCounts c = router_->counts();
    s.dead_letters = c.deserialization + c.schema_mismatch + c.processing_error;
  }
  if (paused_since_for_stats_.has_value()) {
    s.paused += options_.clock->Now() - *paused_since_for_stats_;
  }
  return s;
}

}  // namespace weir
