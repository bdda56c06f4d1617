#include "weir/testing/harness.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/status_macros.h"

namespace weir {
namespace testing {

const char* BackendName(BackendKind kind) {
  return kind == BackendKind::kMemory ? "memory" : "rocksdb";
}

FinalResults Latest(const std::vector<FeatureUpdate>& updates) {
  FinalResults out;
  for (const FeatureUpdate& u : updates) {
    auto key = std::make_tuple(u.key, u.feature, u.window.start);
    auto it = out.find(key);
    if (it == out.end()) {
      out.emplace(std::move(key), u);
    } else if (u.NewerThan(it->second)) {
      it->second = u;
    }
  }
  return out;
}

OperatorHarness::OperatorHarness(const HarnessOptions& options, TempDir dir)
    : options_(options), clock_(options.start), dir_(std::move(dir)) {
  options_.op.clock = &clock_;
  if (!options_.op.state_ttl.has_value())
    options_.op.state_ttl = options_.state_ttl;
}

OperatorHarness::~OperatorHarness() {
  op_.reset();
  backend_.reset();
}

absl::StatusOr<std::unique_ptr<OperatorHarness>> OperatorHarness::Create(
    const HarnessOptions& options) {
  WEIR_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("weir-harness"));
  std::unique_ptr<OperatorHarness> h(
      new OperatorHarness(options, std::move(dir)));
  if (options.backend == BackendKind::kRocksDb) {
    RocksDbResourcesOptions ro;
    ro.memory_budget_bytes = size_t{64} << 20;
    WEIR_ASSIGN_OR_RETURN(h->resources_, RocksDbResources::Create(ro));
  }
  WEIR_ASSIGN_OR_RETURN(h->backend_,
                        h->OpenBackend(absl::StrCat(h->dir_.path(), "/live0")));
  WEIR_ASSIGN_OR_RETURN(
      h->op_, KeyedWindowOperator::Create(h->options_.op, h->backend_.get()));
  return h;
}

absl::StatusOr<std::unique_ptr<StateBackend>> OperatorHarness::OpenBackend(
    const std::string& path) {
  if (options_.backend == BackendKind::kMemory) {
    MemoryStateBackendOptions mo;
    mo.ttl = options_.state_ttl;
    mo.clock = &clock_;
    if (std::filesystem::exists(path)) {
      WEIR_ASSIGN_OR_RETURN(auto b, MemoryStateBackend::Open(mo, path));
      return std::unique_ptr<StateBackend>(std::move(b));
    }
    WEIR_ASSIGN_OR_RETURN(auto b, MemoryStateBackend::Create(mo));
    return std::unique_ptr<StateBackend>(std::move(b));
  }
  RocksDbStateBackendOptions ro;
  ro.path = path;
  ro.resources = resources_;
  ro.ttl = options_.state_ttl;
  ro.clock = &clock_;
  WEIR_ASSIGN_OR_RETURN(auto b, RocksDbStateBackend::Create(ro));
  return std::unique_ptr<StateBackend>(std::move(b));
}

absl::Status OperatorHarness::Drain(absl::Status s) {
  while (true) {
    for (FeatureUpdate& u : out_.updates) updates_.push_back(std::move(u));
    for (LateRecord& l : out_.late) late_.push_back(std::move(l));
    out_.Clear();
    // A step of KeyedWindowOptions::max_fire_updates: fire the rest, as a
    // pipeline does.
    if (!s.ok() || !op_->firing_pending()) return s;
    s = op_->AdvanceWatermark(op_->watermark(), &out_);
  }
}

absl::Status OperatorHarness::Process(Event event) {
  if (event.offset < 0) {
    event.offset = next_offset_[event.partition];
  }
  next_offset_[event.partition] =
      std::max(next_offset_[event.partition], event.offset + 1);
  absl::Status s = op_->Process(event.view(), &out_);
  if (absl::IsInvalidArgument(s)) {
    failures_.emplace_back(std::move(event), s);
    return Drain(absl::OkStatus());
  }
  return Drain(s);
}

absl::Status OperatorHarness::Add(std::string key, EventTime event_time,
                                  std::vector<Value> values) {
  Event e;
  e.key = std::move(key);
  e.event_time = event_time;
  e.offset = -1;
  e.values = std::move(values);
  return Process(std::move(e));
}

absl::Status OperatorHarness::AdvanceWatermark(EventTime watermark) {
  return Drain(op_->AdvanceWatermark(watermark, &out_));
}

absl::StatusOr<std::string> OperatorHarness::Snapshot() {
  WEIR_RETURN_IF_ERROR(op_->Flush());
  const std::string dir = absl::StrCat(dir_.path(), "/snapshot", next_dir_++);
  WEIR_RETURN_IF_ERROR(backend_->CreateCheckpoint(dir));
  snapshot_offsets_[dir] = next_offset_;
  return dir;
}

absl::Status OperatorHarness::Restore(const std::string& snapshot) {
  auto offsets = snapshot_offsets_.find(snapshot);
  if (offsets == snapshot_offsets_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no snapshot ", snapshot, " in this harness"));
  }
  op_.reset();
  backend_.reset();
  // Open a copy, so the snapshot itself stays as it was.
  const std::string live = absl::StrCat(dir_.path(), "/live", next_dir_++);
  std::error_code ec;
  std::filesystem::copy(snapshot, live,
                        std::filesystem::copy_options::recursive, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("copy ", snapshot, " to ", live, ": ", ec.message()));
  }
  WEIR_ASSIGN_OR_RETURN(backend_, OpenBackend(live));
  WEIR_RETURN_IF_ERROR(Reopen());
  next_offset_ = offsets->second;
  return absl::OkStatus();
}

absl::Status OperatorHarness::Reopen() {
  op_.reset();
  WEIR_ASSIGN_OR_RETURN(
      op_, KeyedWindowOperator::Create(options_.op, backend_.get()));
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace weir
