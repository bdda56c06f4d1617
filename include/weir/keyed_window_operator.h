// -----------------------------------------------------------------------------
// File: keyed_window_operator.h
// -----------------------------------------------------------------------------
//
// A `KeyedWindowOperator` groups records by entity key, assigns them to
// event-time windows, folds each window into mergeable accumulators kept in
// a `StateBackend`, and emits a `FeatureUpdate` per feature once the
// watermark passes the window's end.
//
// Features with the same window spec form a group and share one state entry
// per (key, window): several features over the same key cost one lookup and
// one state read.
//
// Event time and lateness (docs/semantics.md has the full rules):
//   - The watermark of the record's partition is the largest event time seen
//     minus `max_out_of_orderness` (see watermark.h).
//   - A window [start, end) fires when the watermark reaches `end`: one
//     update per feature. Its state stays until the watermark reaches
//     end + allowed_lateness, then it is deleted.
//   - A record whose window already fired but is within allowed lateness is
//     folded in, and the window re-emits its updated result at once, with a
//     higher version.
//   - A record whose window's end + allowed_lateness is at or below the
//     watermark (taken before the record) is late: it is not folded, it is
//     appended to `OperatorOutput::late` and counted. Nothing is dropped
//     silently.
// Outputs depend only on the sequence of records and explicit watermark
// advances, never on batching, cache size or spills: a replay, or a run on
// another backend, gives the same results.
//
// State: a write-back cache of partial aggregates sits in front of the
// backend. Records fold into the cache without reading state; the backend
// is written only when the cache evicts (coldest entries first) or on
// Flush(), and read only when a window that may have spilled fires. A
// window that opens and fires between two flushes without being evicted
// never touches the backend.
//
// Threading: not thread-safe; one thread calls every method. Starts no
// threads. The backend must outlive the operator and be used by no one else
// while the operator lives.
//
// Example:
//   weir::KeyedWindowOptions options;
//   options.name = "payments";
//   options.features = {
//       {.name = "txn_count_1m", .aggregate = weir::AggregateKind::kCount,
//        .window = weir::Tumbling(absl::Minutes(1))},
//       {.name = "amount_sum_1h", .aggregate =
//       weir::AggregateKind::kDecimalSum,
//        .window = weir::Tumbling(absl::Hours(1)), .field = 1}};
//   options.max_out_of_orderness = absl::Seconds(5);
//   options.allowed_lateness = absl::Minutes(1);
//   WEIR_ASSIGN_OR_RETURN(auto op,
//       weir::KeyedWindowOperator::Create(options, backend.get()));
//   weir::OperatorOutput out;
//   WEIR_RETURN_IF_ERROR(op->Process(event.view(), &out));
//   for (const weir::FeatureUpdate& u : out.updates) { ... }

#ifndef WEIR_KEYED_WINDOW_OPERATOR_H_
#define WEIR_KEYED_WINDOW_OPERATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/aggregate.h"
#include "weir/record.h"
#include "weir/sink.h"
#include "weir/state.h"
#include "weir/time.h"
#include "weir/window.h"

namespace weir {

struct FeatureSpec {
  // Output name and part of the state layout. REQUIRES: [a-z0-9_]+, unique
  // within the operator.
  std::string name;

  AggregateKind aggregate = AggregateKind::kCount;

  // How records map to windows. Required.
  std::optional<WindowSpec> window;

  // Index of the value in Record::values the feature aggregates. -1 means
  // "no field", allowed only for kCount, which then counts records.
  // Default: -1
  int field = -1;

  // Null policy and decimal scale.
  AggregatorOptions aggregator;
};

struct KeyedWindowOptions {
  // ---- behaviour ----

  // State namespace and metric prefix. REQUIRES: [a-z0-9_]+.
  std::string name;

  // What to compute. REQUIRES: 1 to 65535 features.
  std::vector<FeatureSpec> features;

  // How far behind the largest event time seen a record may be without
  // being late. Larger: fewer late records, results later.
  // Default: absl::ZeroDuration()
  absl::Duration max_out_of_orderness = absl::ZeroDuration();

  // How long after a window's end, by the watermark, records still merge
  // into it (each one re-emits the window's result). Larger: more state
  // kept. Default: absl::ZeroDuration()
  absl::Duration allowed_lateness = absl::ZeroDuration();

  // With several input partitions in one operator, a partition with no
  // record for this long stops holding the watermark back.
  // Default: unset (never idle)
  std::optional<absl::Duration> idle_timeout;

  // Drop window state not written for this long of processing time: it is
  // never emitted, and the backend's compaction filter deletes it from disk
  // (give the backend the same `ttl`). A safety net for windows whose
  // watermark stops moving (an abandoned partition, a key that never closes
  // its session); keep it well above window size + allowed lateness.
  // Default: unset (no expiry)
  std::optional<absl::Duration> state_ttl;

  // Processing-time source (idleness, TTL). Not owned.
  // Default: Clock::Real()
  Clock* clock = Clock::Real();

  // ---- performance ----

  // Capacity of the write-back cache, in (key, window, feature group)
  // entries of about 150 bytes each (a key's node and entry; sketches
  // besides). Larger: fewer state reads and writes, more memory. Create
  // reserves address space, not memory, for twice the bound (or twice
  // what cache_max_bytes holds, if fewer) at 288 bytes an entry, and fails
  // with kResourceExhausted if the process's address space is limited
  // (RLIMIT_AS) below that. Default: 262144
  size_t cache_max_entries = 262144;

  // Capacity of the write-back cache in bytes: its entries and key nodes
  // as allocated (free ones included), its index, and what their
  // accumulators hold on the heap (sketches, which grow with the values
  // they see). When set, the cache evicts at whichever bound it reaches
  // first (first giving back the memory of free entries and nodes), so a
  // memory budget can cover it whatever the features. 0: bounded by
  // cache_max_entries only; else at least kMinCacheBytes. Default: 0
  size_t cache_max_bytes = 0;
  static constexpr size_t kMinCacheBytes = 64 << 10;

  // The most updates one call emits from firing windows: a step. When the
  // watermark makes more windows due at once than that (every key's daily
  // window at midnight, a million keys' hourly windows on the hour),
  // Process and AdvanceWatermark return after one step with the rest still
  // due (firing_pending()), so the caller can hand the updates on and free
  // them before the next step: AdvanceWatermark(watermark()) fires it.
  // Process fires everything still pending before it folds its record.
  // The updates and their order are the same with any bound, as long as
  // the caller finishes the pending steps before it moves the watermark
  // further. 0: no bound, one call fires everything due. Pipeline finishes
  // the steps of each call, draining to the sink in between.
  // Default: 0
  size_t max_fire_updates = 0;

  // Returns kInvalidArgument naming the first bad field, e.g.
  // "features[1].window.size: ...".
  absl::Status Validate() const;
};

// A record that arrived after its window's allowed lateness.
struct LateRecord {
  std::string key;
  EventTime event_time = 0;
  int32_t partition = 0;
  int64_t offset = 0;
  // The watermark the record was judged against.
  EventTime watermark = 0;
  // The features whose windows it missed (all of them unless the features
  // use windows of different sizes).
  std::vector<std::string> features;
};

// What one call produced. The caller drains it; the operator only appends.
struct OperatorOutput {
  std::vector<FeatureUpdate> updates;
  std::vector<LateRecord> late;

  void Clear() {
    updates.clear();
    late.clear();
  }
};

struct OperatorStats {
  uint64_t records_in = 0;
  uint64_t records_late = 0;
  uint64_t records_failed = 0;  // Process returned an error
  uint64_t windows_fired = 0;
  uint64_t updates_emitted = 0;
  uint64_t cache_entries = 0;
  // What the cache holds (KeyedWindowOptions::cache_max_bytes).
  uint64_t cache_bytes = 0;
  // The part of cache_bytes the cached entries' sketches hold.
  uint64_t cache_sketch_bytes = 0;
  uint64_t cache_evictions = 0;
  // Slab chunks a cache bounded in bytes gave back (its free slots and
  // nodes: KeyedWindowOptions::cache_max_bytes).
  uint64_t cache_chunks_given_back = 0;
  uint64_t state_reads = 0;
  uint64_t state_writes = 0;
};

class KeyedWindowOperator {
 public:
  // Creates an operator over `backend`, resuming from what the backend holds
  // (watermarks and open windows), so restoring a checkpoint is opening its
  // backend and calling Create. Fails with kFailedPrecondition if the
  // backend holds state of a different feature set.
  static absl::StatusOr<std::unique_ptr<KeyedWindowOperator>> Create(
      const KeyedWindowOptions& options, StateBackend* backend);

  ~KeyedWindowOperator();
  KeyedWindowOperator(const KeyedWindowOperator&) = delete;
  KeyedWindowOperator& operator=(const KeyedWindowOperator&) = delete;

  // Folds one record, moves the watermark, and appends fired results and
  // the record itself if late to `out`. A record with a value the features
  // cannot take (wrong type, missing field) returns kInvalidArgument and
  // changes nothing: the caller sends it to the dead-letter queue and goes
  // on. Other errors come from the backend. Windows still due from an
  // earlier step fire first (KeyedWindowOptions::max_fire_updates).
  absl::Status Process(const Record& record, OperatorOutput* out);

  // Raises the watermark to at least `watermark` and fires what is due (end
  // of a bounded input: pass kMaxEventTime to fire everything), at most one
  // step of KeyedWindowOptions::max_fire_updates.
  absl::Status AdvanceWatermark(EventTime watermark, OperatorOutput* out);

  // True if windows are due that the last call left for a later step
  // (KeyedWindowOptions::max_fire_updates). May also be true when only
  // timers of spilled windows that are gone already remain; the next call
  // finds that out and clears it. E.g.
  //   while (op->firing_pending()) {
  //     WEIR_RETURN_IF_ERROR(op->AdvanceWatermark(op->watermark(), &out));
  //     hand out.updates to the sink; out.Clear();
  //   }
  bool firing_pending() const;

  // Writes every cached partial and the watermarks to the backend, so that a
  // backend checkpoint taken next holds the operator's complete state.
  absl::Status Flush();

  // The combined watermark (kMinEventTime before any record).
  EventTime watermark() const;

  OperatorStats stats() const;

 private:
  class Impl;
  explicit KeyedWindowOperator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir

#endif  // WEIR_KEYED_WINDOW_OPERATOR_H_
