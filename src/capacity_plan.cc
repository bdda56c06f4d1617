#include "weir/capacity_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace weir {
namespace {

absl::Status Bad(const char* field, const char* rule, double value) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be ", rule, ": ", value));
}

// Whether v is a finite number > 0 (>= 0 with `zero_ok`).
bool Positive(double v, bool zero_ok = false) {
  return std::isfinite(v) && (v > 0 || (zero_ok && v == 0));
}

uint64_t Bytes(double v) { return static_cast<uint64_t>(std::ceil(v)); }

int64_t CeilDiv(double a, double b) {
  return static_cast<int64_t>(std::ceil(a / b));
}

}  // namespace

absl::Status CapacityMeasurements::Validate() const {
  if (!Positive(events_per_core_second)) {
    return Bad("events_per_core_second", "> 0", events_per_core_second);
  }
  if (!Positive(events_per_thread_second)) {
    return Bad("events_per_thread_second", "> 0", events_per_thread_second);
  }
  if (!Positive(state_bytes_per_entity)) {
    return Bad("state_bytes_per_entity", "> 0", state_bytes_per_entity);
  }
  if (!Positive(disk_bytes_per_entity)) {
    return Bad("disk_bytes_per_entity", "> 0", disk_bytes_per_entity);
  }
  if (!Positive(checkpoint_bytes_per_event, /*zero_ok=*/true)) {
    return Bad("checkpoint_bytes_per_event", ">= 0",
               checkpoint_bytes_per_event);
  }
  if (!Positive(updates_per_event, /*zero_ok=*/true)) {
    return Bad("updates_per_event", ">= 0", updates_per_event);
  }
  return absl::OkStatus();
}

absl::Status CapacityTargets::Validate() const {
  if (!Positive(target_rate)) return Bad("target_rate", "> 0", target_rate);
  if (!std::isfinite(peak) || peak < 1) return Bad("peak", ">= 1", peak);
  if (entities <= 0) {
    return Bad("entities", "> 0", static_cast<double>(entities));
  }
  if (retention <= absl::ZeroDuration() ||
      retention == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retention must be > 0 and finite: ", absl::FormatDuration(retention)));
  }
  if (!Positive(headroom) || headroom > 1) {
    return Bad("headroom", "in (0, 1]", headroom);
  }
  if (checkpoint_interval <= absl::ZeroDuration() ||
      checkpoint_interval == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint_interval must be > 0 and finite: ",
                     absl::FormatDuration(checkpoint_interval)));
  }
  if (cores_per_instance < 1) {
    return Bad("cores_per_instance", ">= 1", cores_per_instance);
  }
  if (!Positive(cache_fraction) || cache_fraction > 1) {
    return Bad("cache_fraction", "in (0, 1]", cache_fraction);
  }
  return absl::OkStatus();
}

absl::StatusOr<CapacityPlan> PlanCapacity(const CapacityMeasurements& m,
                                          const CapacityTargets& t) {
  if (absl::Status s = m.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("measurements.", s.message()));
  }
  if (absl::Status s = t.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("targets.", s.message()));
  }
  CapacityPlan p;
  const double cores_per_instance = t.cores_per_instance;

  // CPU: cores for the peak, and instances for their cores and for their
  // one processing thread each.
  p.peak_rate = t.target_rate * t.peak;
  p.cores_needed = CeilDiv(p.peak_rate, m.events_per_core_second * t.headroom);
  p.instances = std::max<int64_t>(
      {1, CeilDiv(static_cast<double>(p.cores_needed), cores_per_instance),
       CeilDiv(p.peak_rate, m.events_per_thread_second * t.headroom)});
  p.cores = p.instances * t.cores_per_instance;
  p.partitions = p.instances * std::max(2, t.cores_per_instance);
  const double instance_rate =
      std::min(cores_per_instance * m.events_per_core_second,
               m.events_per_thread_second);
  p.utilisation_at_peak =
      p.peak_rate / (static_cast<double>(p.instances) * instance_rate);

  // State: the entities with an event within the retention.
  const double instances = static_cast<double>(p.instances);
  const double reachable =
      std::ceil(t.target_rate * absl::ToDoubleSeconds(t.retention));
  p.active_entities = static_cast<int64_t>(
      std::min(static_cast<double>(t.entities), reachable));
  const double active = static_cast<double>(p.active_entities);
  const double state = active * m.state_bytes_per_entity;
  p.state_bytes = Bytes(state);
  p.state_bytes_per_instance = Bytes(state / instances);
  p.state_bytes_per_partition =
      Bytes(state / static_cast<double>(p.partitions));
  const double settled_per_instance =
      active * m.disk_bytes_per_entity / instances;
  p.disk_bytes_per_instance = Bytes(settled_per_instance * kPlanDiskFactor);

  // Checkpoints: what one interval writes, at most the settled state.
  const double interval = absl::ToDoubleSeconds(t.checkpoint_interval);
  auto upload = [&](double rate) {
    return Bytes(
        std::min(m.checkpoint_bytes_per_event * rate / instances * interval,
                 settled_per_instance));
  };
  p.checkpoint_upload_bytes = upload(t.target_rate);
  p.checkpoint_upload_peak_bytes = upload(p.peak_rate);
  p.upload_bytes_per_second_at_peak =
      static_cast<double>(p.checkpoint_upload_peak_bytes) / interval;

  // Memory: the cached share of the state, and memtables for one
  // interval's writes.
  p.block_cache_bytes = Bytes(static_cast<double>(p.state_bytes_per_instance) *
                              t.cache_fraction * kPlanBlockCacheFactor);
  p.memtable_bytes = std::clamp(p.checkpoint_upload_peak_bytes,
                                kPlanMinMemtableBytes, kPlanMaxMemtableBytes);
  p.memory_budget_bytes = p.block_cache_bytes + p.memtable_bytes;
  p.write_buffer_fraction = static_cast<double>(p.memtable_bytes) /
                            static_cast<double>(p.memory_budget_bytes);
  p.memory_per_instance_bytes = p.memory_budget_bytes + kPlanProcessBaseBytes;

  p.sink_updates_per_second = t.target_rate * m.updates_per_event;
  p.sink_updates_per_second_at_peak = p.peak_rate * m.updates_per_event;
  return p;
}

}  // namespace weir
