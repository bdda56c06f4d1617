// -----------------------------------------------------------------------------
// File: watermark.h
// -----------------------------------------------------------------------------
//
// Event-time progress per input partition.
//
// A partition's watermark is the largest event time seen on it minus
// `max_out_of_orderness`: the claim "records older than this are not
// expected any more". It only moves forward. Before a partition's first
// record it has no watermark (kMinEventTime).
//
// When one tracker follows several partitions, its combined watermark is
// the minimum over the partitions that are not idle: a partition with no
// record for `idle_timeout` of processing time holds nothing back, and
// takes part again with its next record. If every partition is idle, the
// combined watermark is the largest partition watermark. The combined
// watermark never moves backward. `AdvanceTo` raises every watermark
// explicitly (end of a bounded input, or a caller that knows a partition is
// complete).
//
// weir runs one operator per input partition, so a window's firing depends
// on its own partition's log alone and replays are deterministic; the
// multi-partition form serves callers that combine partitions (tests,
// metrics of the slowest partition).
//
// Threading: not thread-safe; one thread calls every method. Starts no
// threads.
//
// Example:
//   weir::WatermarkTracker wm({.max_out_of_orderness = absl::Seconds(5)});
//   wm.Observe(/*partition=*/0, /*event_time=*/1767225610000);
//   wm.Combined();  // 1767225605000

#ifndef WEIR_WATERMARK_H_
#define WEIR_WATERMARK_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/time.h"

namespace weir {

struct WatermarkOptions {
  // How far behind the largest event time seen a record may be and still
  // count as in order. Larger: fewer late records, later results and more
  // open windows in state. Default: 0
  absl::Duration max_out_of_orderness = absl::ZeroDuration();

  // After this much processing time without a record, a partition stops
  // holding the combined watermark back. Default: unset (never idle).
  std::optional<absl::Duration> idle_timeout;

  // Processing-time source for idleness. Not owned. Default: Clock::Real()
  Clock* clock = Clock::Real();

  // kInvalidArgument naming "max_out_of_orderness", "idle_timeout" or
  // "clock".
  absl::Status Validate() const;
};

class WatermarkTracker {
 public:
  explicit WatermarkTracker(const WatermarkOptions& options);

  // Notes a record of `partition` at `event_time`; returns that partition's
  // watermark as it was before the record.
  EventTime Observe(int32_t partition, EventTime event_time) {
    // The common case, inline: the previous record's partition, no
    // idleness to note.
    if (last_ == nullptr || last_id_ != partition || idle_timeout_) {
      return ObserveSlow(partition, event_time);
    }
    const EventTime before = WatermarkOf(*last_);
    if (event_time > last_->max_event_time) {
      last_->max_event_time = event_time;
      raised_ = true;
    }
    return before;
  }

  // The watermark of one partition (kMinEventTime if none).
  EventTime PartitionWatermark(int32_t partition) const {
    if (last_ != nullptr && last_id_ == partition) return WatermarkOf(*last_);
    return PartitionWatermarkSlow(partition);
  }

  // Recomputes and returns the combined watermark.
  EventTime Combined() {
    // Without idleness it changes only when a partition's watermark rose
    // or a partition joined (AdvanceTo raises combined_ itself).
    if (!idle_timeout_) {
      if (!raised_) return combined_;
      if (last_ != nullptr && partitions_.size() == 1) {  // one partition
        raised_ = false;
        combined_ = std::max(combined_, WatermarkOf(*last_));
        return combined_;
      }
    }
    return CombinedSlow();
  }

  // Raises every partition's watermark and the combined one to at least `t`.
  void AdvanceTo(EventTime t);

  // Serialized form of the event-time state (not idleness, which is
  // processing time), for checkpoints.
  std::string Encode() const;
  absl::Status Decode(std::string_view bytes);

 private:
  struct Partition {
    EventTime max_event_time = kMinEventTime;
    absl::Time last_record = absl::InfinitePast();
  };
  EventTime WatermarkOf(const Partition& p) const {
    const EventTime own = p.max_event_time == kMinEventTime
                              ? kMinEventTime
                              : SaturatingAdd(p.max_event_time, -ooo_ms_);
    return std::max(own, floor_);
  }
  Partition* Find(int32_t partition);
  EventTime ObserveSlow(int32_t partition, EventTime event_time);
  EventTime PartitionWatermarkSlow(int32_t partition) const;
  EventTime CombinedSlow();

  WatermarkOptions options_;
  int64_t ooo_ms_;
  bool idle_timeout_;  // options_.idle_timeout is set
  // A partition's watermark may have risen, or a partition joined, since
  // combined_ was last computed.
  bool raised_ = false;
  absl::flat_hash_map<int32_t, Partition> partitions_;
  // The partition of the previous Observe: consecutive records mostly come
  // from one partition. Reset whenever partitions_ may rehash.
  int32_t last_id_ = 0;
  Partition* last_ = nullptr;
  EventTime floor_ = kMinEventTime;     // from AdvanceTo
  EventTime combined_ = kMinEventTime;  // monotonic
};

}  // namespace weir

#endif  // WEIR_WATERMARK_H_
