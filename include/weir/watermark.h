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
  EventTime Observe(int32_t partition, EventTime event_time);

  // The watermark of one partition (kMinEventTime if none).
  EventTime PartitionWatermark(int32_t partition) const;

  // Recomputes and returns the combined watermark.
  EventTime Combined();

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
  EventTime WatermarkOf(const Partition& p) const;
  Partition* Find(int32_t partition);

  WatermarkOptions options_;
  int64_t ooo_ms_;
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
