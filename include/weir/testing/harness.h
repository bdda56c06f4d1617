// -----------------------------------------------------------------------------
// File: testing/harness.h
// -----------------------------------------------------------------------------
//
// `OperatorHarness` drives a `KeyedWindowOperator` the way a unit test of
// feature logic wants: feed records with event times, move the watermark,
// drive processing time with a manual clock (TTL, idleness), read back the
// emitted updates, the late records and the records that failed, and take
// and restore snapshots, on either backend. No broker, no threads, no
// sleeps.
//
// Snapshots are real backend checkpoints in a temporary directory owned by
// the harness: Restore() opens a fresh backend from a copy of one and
// re-creates the operator over it, exactly as a pipeline restores a
// partition.
//
// Threading: not thread-safe. Starts no threads (RocksDB keeps its own
// background pool).
//
// Example:
//   weir::testing::HarnessOptions options;
//   options.op.name = "clicks";
//   options.op.features = {{.name = "clicks_1m",
//                           .window = weir::Tumbling(absl::Minutes(1))}};
//   options.backend = weir::testing::BackendKind::kRocksDb;
//   WEIR_ASSIGN_OR_RETURN(auto h,
//   weir::testing::OperatorHarness::Create(options));
//   WEIR_RETURN_IF_ERROR(h->Add("u1", 1000));
//   WEIR_RETURN_IF_ERROR(h->AdvanceWatermark(60000));
//   // h->updates() holds {u1, clicks_1m, [0, 60000), 1}

#ifndef WEIR_TESTING_HARNESS_H_
#define WEIR_TESTING_HARNESS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/keyed_window_operator.h"
#include "weir/record.h"
#include "weir/state.h"
#include "weir/testing/subprocess.h"
#include "weir/time.h"

namespace weir {

class RocksDbResources;

namespace testing {

enum class BackendKind { kMemory, kRocksDb };

const char* BackendName(BackendKind kind);  // "memory", "rocksdb"

struct HarnessOptions {
  // The operator under test. Its `clock` is replaced by the harness's
  // manual clock.
  KeyedWindowOptions op;

  BackendKind backend = BackendKind::kMemory;

  // TTL of the backend's window state (processing time, the manual clock).
  // Default: unset
  std::optional<absl::Duration> state_ttl;

  // Initial processing time. Default: 2026-01-01T00:00:00Z
  absl::Time start = absl::FromUnixMillis(1767225600000);
};

// (key, feature, window start) -> the newest update for it.
using FinalResults =
    std::map<std::tuple<std::string, std::string, EventTime>, FeatureUpdate>;

// The newest version of each (key, feature, window) among `updates`: what an
// idempotent sink would hold.
FinalResults Latest(const std::vector<FeatureUpdate>& updates);

class OperatorHarness {
 public:
  static absl::StatusOr<std::unique_ptr<OperatorHarness>> Create(
      const HarnessOptions& options);
  ~OperatorHarness();

  // Feeds one record. If `event.offset` is negative the harness numbers
  // records per partition (0, 1, 2, ...). A record the operator refuses
  // (kInvalidArgument) is kept in failures() and OK is returned, as a
  // pipeline would send it to the dead-letter queue and go on; other errors
  // are returned.
  absl::Status Process(Event event);

  // Shorthand: a record of partition 0 with the next offset.
  absl::Status Add(std::string key, EventTime event_time,
                   std::vector<Value> values = {});

  // Like Process, finishes every firing step the operator leaves pending
  // (KeyedWindowOptions::max_fire_updates), as a pipeline does.
  absl::Status AdvanceWatermark(EventTime watermark);
  // Fires every open window (end of input).
  absl::Status Finish() { return AdvanceWatermark(kMaxEventTime); }

  ManualClock& clock() { return clock_; }
  KeyedWindowOperator& op() { return *op_; }
  StateBackend& backend() { return *backend_; }

  const std::vector<FeatureUpdate>& updates() const { return updates_; }
  const std::vector<LateRecord>& late() const { return late_; }
  const std::vector<std::pair<Event, absl::Status>>& failures() const {
    return failures_;
  }
  FinalResults Final() const { return Latest(updates_); }

  // Flushes the operator and checkpoints the backend into a new directory;
  // returns its path (valid while the harness lives).
  absl::StatusOr<std::string> Snapshot();

  // Replaces backend and operator with ones restored from `snapshot`.
  // Updates, late records and failures seen so far are kept; per-partition
  // offsets continue from the snapshot's (the caller replays from there).
  absl::Status Restore(const std::string& snapshot);

  // Replaces the operator with a new one over the same backend, as a
  // process restarted on its own state directory would: what it had not
  // flushed is gone.
  absl::Status Reopen();

  // Compacts the backend (TTL expiry).
  absl::Status Compact() { return backend_->Compact(); }

 private:
  OperatorHarness(const HarnessOptions& options, TempDir dir);
  absl::StatusOr<std::unique_ptr<StateBackend>> OpenBackend(
      const std::string& path);
  absl::Status Drain(absl::Status s);

  HarnessOptions options_;
  ManualClock clock_;
  TempDir dir_;
  int next_dir_ = 0;
  std::shared_ptr<RocksDbResources> resources_;
  std::unique_ptr<StateBackend> backend_;
  std::unique_ptr<KeyedWindowOperator> op_;
  OperatorOutput out_;
  std::vector<FeatureUpdate> updates_;
  std::vector<LateRecord> late_;
  std::vector<std::pair<Event, absl::Status>> failures_;
  absl::flat_hash_map<int32_t, int64_t> next_offset_;
  // Per snapshot path: the offsets to continue from after Restore.
  std::map<std::string, absl::flat_hash_map<int32_t, int64_t>>
      snapshot_offsets_;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_HARNESS_H_
