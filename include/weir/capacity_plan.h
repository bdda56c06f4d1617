// -----------------------------------------------------------------------------
// File: capacity_plan.h
// -----------------------------------------------------------------------------
//
// The arithmetic of capacity planning: from what a feature definition was
// measured to cost on one machine (`CapacityMeasurements`, which the
// weir-plan tool measures by running the definition) and what the
// deployment must carry (`CapacityTargets`), `PlanCapacity` computes the
// instances, cores, Kafka partitions, state size, memory budget and
// checkpoint upload of a deployment (`CapacityPlan`). docs/operations.md,
// "Capacity planning", explains the rules; each field below says its own.
//
// Threading: pure functions, safe from any thread.
//
// Example:
//   weir::CapacityMeasurements m;   // from a weir-plan calibration run
//   m.events_per_core_second = 150000;
//   ...
//   weir::CapacityTargets t;
//   t.target_rate = 50000;          // events/s, on average
//   t.entities = 10'000'000;
//   WEIR_ASSIGN_OR_RETURN(weir::CapacityPlan plan, weir::PlanCapacity(m, t));
//   // plan.instances, plan.partitions, plan.memory_per_instance_bytes, ...

#ifndef WEIR_CAPACITY_PLAN_H_
#define WEIR_CAPACITY_PLAN_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace weir {

// What one feature definition costs, measured on one machine. Every field
// must be > 0 (checkpoint_bytes_per_event and updates_per_event >= 0).
struct CapacityMeasurements {
  // Events per second of process CPU time (the processing thread, RocksDB's
  // flushes and compactions, checkpoints): the throughput of one core.
  double events_per_core_second = 0;

  // Events per second of the processing thread's CPU time: the most one
  // instance processes, since a pipeline processes on one thread.
  double events_per_thread_second = 0;

  // State per active entity as the operator stores it (keys, values and
  // value headers of every open window and timer): what RocksDB's block
  // cache holds when the state is cached.
  double state_bytes_per_entity = 0;

  // RocksDB's files per active entity once compacted (compressed SSTs):
  // what the state takes on disk and in the checkpoint store.
  double disk_bytes_per_entity = 0;

  // Incremental checkpoint upload per event processed since the previous
  // checkpoint (new SST files).
  double checkpoint_bytes_per_event = 0;

  // Feature updates written to the sink per event.
  double updates_per_event = 0;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// What a deployment must carry.
struct CapacityTargets {
  // Average input rate, events/s. Required: > 0.
  double target_rate = 0;

  // The peak rate as a multiple of `target_rate`; cores are sized for the
  // peak. REQUIRES: >= 1. Default: 3
  double peak = 3;

  // Distinct entities (keys) in the input. Required: > 0.
  int64_t entities = 0;

  // How long an entity's state lives after its last event: the longest
  // window plus its allowed lateness (or the state TTL). Only entities with
  // an event within it hold state, at most target_rate × retention of them.
  // Default: absl::Hours(24)
  absl::Duration retention = absl::Hours(24);

  // CPU utilisation planned at the peak; the rest is left for catching up
  // after a restart or rebalance. REQUIRES: in (0, 1]. Default: 0.7
  double headroom = 0.7;

  // Time between checkpoints (the service's --checkpoint_interval).
  // REQUIRES: > 0. Default: absl::Seconds(10)
  absl::Duration checkpoint_interval = absl::Seconds(10);

  // Cores of each instance: one runs the processing thread, the others
  // RocksDB's background work, Kafka's client and checkpoint uploads.
  // REQUIRES: >= 1. Default: 2
  int cores_per_instance = 2;

  // The share of an instance's state its block cache holds. Below 1,
  // windows read what is not cached from disk (slower: see B7 in
  // docs/benchmarks.md). REQUIRES: in (0, 1]. Default: 1
  double cache_fraction = 1;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// The rules' constants (docs/operations.md, "Capacity planning").
//
// Disk per byte of settled (compacted) state: room for a compaction's
// output beside its input, and for L0 files and obsolete versions waiting
// for compaction.
inline constexpr double kPlanDiskFactor = 2.0;
// Block cache per byte of cached state: index and filter blocks and the
// cache's own overhead.
inline constexpr double kPlanBlockCacheFactor = 1.25;
// Memtables: one checkpoint interval's writes at the peak (every checkpoint
// flushes them), within these bounds.
inline constexpr uint64_t kPlanMinMemtableBytes = uint64_t{32} << 20;
inline constexpr uint64_t kPlanMaxMemtableBytes = uint64_t{1} << 30;
// Memory of an instance besides RocksDB: the operator's write-back cache
// at its default size, the pending-update queue, Kafka's queues, the code.
inline constexpr uint64_t kPlanProcessBaseBytes = uint64_t{256} << 20;

struct CapacityPlan {
  // target_rate × peak, events/s.
  double peak_rate = 0;
  // ceil(peak_rate / (events_per_core_second × headroom)).
  int64_t cores_needed = 0;
  // The larger of ceil(cores_needed / cores_per_instance) and
  // ceil(peak_rate / (events_per_thread_second × headroom)).
  int64_t instances = 0;
  // instances × cores_per_instance.
  int64_t cores = 0;
  // instances × max(2, cores_per_instance): every instance gets the same
  // number, at least 2, so the instances can double without new partitions.
  int64_t partitions = 0;
  // The busier of an instance's cores and its processing thread at the
  // peak, as a share of what it can do (<= headroom).
  double utilisation_at_peak = 0;

  // min(entities, ceil(target_rate × retention in seconds)).
  int64_t active_entities = 0;
  // active_entities × state_bytes_per_entity, and its share per instance
  // and per partition.
  uint64_t state_bytes = 0;
  uint64_t state_bytes_per_instance = 0;
  uint64_t state_bytes_per_partition = 0;
  // active_entities × disk_bytes_per_entity / instances × kPlanDiskFactor.
  uint64_t disk_bytes_per_instance = 0;

  // state_bytes_per_instance × cache_fraction × kPlanBlockCacheFactor.
  uint64_t block_cache_bytes = 0;
  // checkpoint_upload_peak_bytes within [kPlanMinMemtableBytes,
  // kPlanMaxMemtableBytes].
  uint64_t memtable_bytes = 0;
  // block_cache_bytes + memtable_bytes: RocksDbResourcesOptions::
  // memory_budget_bytes, with write_buffer_fraction =
  // memtable_bytes / memory_budget_bytes.
  uint64_t memory_budget_bytes = 0;
  double write_buffer_fraction = 0;
  // memory_budget_bytes + kPlanProcessBaseBytes.
  uint64_t memory_per_instance_bytes = 0;

  // One instance's upload per checkpoint interval at the target rate and
  // at the peak: checkpoint_bytes_per_event × rate / instances × interval,
  // at most the instance's settled state (active_entities ×
  // disk_bytes_per_entity / instances), since a checkpoint uploads no more
  // than the files it lacks.
  uint64_t checkpoint_upload_bytes = 0;
  uint64_t checkpoint_upload_peak_bytes = 0;
  // checkpoint_upload_peak_bytes / interval, bytes/s per instance.
  double upload_bytes_per_second_at_peak = 0;

  // Feature updates the sink receives, target_rate × updates_per_event,
  // and at the peak.
  double sink_updates_per_second = 0;
  double sink_updates_per_second_at_peak = 0;
};

// The plan for `targets` from `measurements`. kInvalidArgument naming the
// first bad field ("measurements.events_per_core_second", "targets.peak").
absl::StatusOr<CapacityPlan> PlanCapacity(
    const CapacityMeasurements& measurements, const CapacityTargets& targets);

}  // namespace weir

#endif  // WEIR_CAPACITY_PLAN_H_
