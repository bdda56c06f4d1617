#include "weir/watermark.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "weir/internal/coding.h"

namespace weir {

absl::Status WatermarkOptions::Validate() const {
  if (max_out_of_orderness < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_out_of_orderness: must not be negative, got ",
                     absl::FormatDuration(max_out_of_orderness)));
  }
  if (idle_timeout.has_value() && *idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("idle_timeout: must be positive when set, got ",
                     absl::FormatDuration(*idle_timeout)));
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock: is null");
  return absl::OkStatus();
}

WatermarkTracker::WatermarkTracker(const WatermarkOptions& options)
    : options_(options),
      ooo_ms_(ToMillis(options.max_out_of_orderness)),
      idle_timeout_(options.idle_timeout.has_value()) {}

WatermarkTracker::Partition* WatermarkTracker::Find(int32_t partition) {
  if (last_ != nullptr && last_id_ == partition) return last_;
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return nullptr;
  last_id_ = partition;
  last_ = &it->second;
  return last_;
}

EventTime WatermarkTracker::ObserveSlow(int32_t partition,
                                        EventTime event_time) {
  Partition* p = Find(partition);
  if (p == nullptr) {
    last_ = nullptr;  // the insert may rehash
    p = &partitions_[partition];
    last_id_ = partition;
    last_ = p;
  }
  // A new partition lowers no watermark, but it changes which partitions
  // the combined one is over.
  raised_ = true;
  const EventTime before = WatermarkOf(*p);
  p->max_event_time = std::max(p->max_event_time, event_time);
  if (idle_timeout_) p->last_record = options_.clock->Now();
  return before;
}

EventTime WatermarkTracker::PartitionWatermarkSlow(int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? floor_ : WatermarkOf(it->second);
}

EventTime WatermarkTracker::CombinedSlow() {
  raised_ = false;
  if (partitions_.size() == 1) {  // the common case: one partition
    combined_ = std::max(combined_, WatermarkOf(partitions_.begin()->second));
    return combined_;
  }
  if (partitions_.empty()) {
    combined_ = std::max(combined_, floor_);
    return combined_;
  }
  const absl::Time now =
      idle_timeout_ ? options_.clock->Now() : absl::InfinitePast();
  EventTime active_min = kMaxEventTime;
  EventTime all_max = kMinEventTime;
  bool any_active = false;
  for (const auto& [id, p] : partitions_) {
    const EventTime wm = WatermarkOf(p);
    all_max = std::max(all_max, wm);
    const bool idle = options_.idle_timeout.has_value() &&
                      now - p.last_record >= *options_.idle_timeout;
    if (!idle) {
      any_active = true;
      active_min = std::min(active_min, wm);
    }
  }
  combined_ = std::max(combined_, any_active ? active_min : all_max);
  return combined_;
}

void WatermarkTracker::AdvanceTo(EventTime t) {
  floor_ = std::max(floor_, t);
  combined_ = std::max(combined_, floor_);
  raised_ = true;
}

std::string WatermarkTracker::Encode() const {
  std::vector<std::pair<int32_t, EventTime>> parts;
  for (const auto& [id, p] : partitions_) {
    parts.emplace_back(id, p.max_event_time);
  }
  std::sort(parts.begin(), parts.end());  // deterministic bytes
  std::string out;
  internal::PutFixed64(&out, static_cast<uint64_t>(floor_));
  internal::PutFixed64(&out, static_cast<uint64_t>(combined_));
  internal::PutFixed32(&out, static_cast<uint32_t>(parts.size()));
  for (const auto& [id, max_time] : parts) {
    internal::PutFixed32(&out, static_cast<uint32_t>(id));
    internal::PutFixed64(&out, static_cast<uint64_t>(max_time));
  }
  return out;
}

absl::Status WatermarkTracker::Decode(std::string_view in) {
  uint64_t floor, combined;
  uint32_t n;
  if (!internal::GetFixed64(&in, &floor) ||
      !internal::GetFixed64(&in, &combined) || !internal::GetFixed32(&in, &n)) {
    return absl::DataLossError("watermark state is truncated");
  }
  // Idleness is not stored: a restored partition counts as just seen, so it
  // holds the combined watermark back until idle_timeout passes without a
  // record, as if it had delivered one at the restore.
  const absl::Time restored_at = options_.idle_timeout.has_value()
                                     ? options_.clock->Now()
                                     : absl::InfinitePast();
  absl::flat_hash_map<int32_t, Partition> parts;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t id;
    uint64_t max_time;
    if (!internal::GetFixed32(&in, &id) ||
        !internal::GetFixed64(&in, &max_time)) {
      return absl::DataLossError("watermark state is truncated");
    }
    Partition& p = parts[static_cast<int32_t>(id)];
    p.max_event_time = static_cast<EventTime>(max_time);
    p.last_record = restored_at;
  }
  floor_ = static_cast<EventTime>(floor);
  combined_ = static_cast<EventTime>(combined);
  partitions_ = std::move(parts);
  last_ = nullptr;
  raised_ = true;
  return absl::OkStatus();
}

}  // namespace weir
