// -----------------------------------------------------------------------------
// File: backfill.h
// -----------------------------------------------------------------------------
//
// A backfill runs a feature definition over historical input with the same
// code, options and lateness as the live service: it is a weir service
// (weir/service.h) whose `ServiceOptions::backfill` is set, so it has the
// service's sinks, dead-letter queue, late-record output, checkpoints,
// metrics, phases and summary, and it ends by itself once its input is
// read, firing every open window and taking a last checkpoint. Every
// service binary offers it through the standard flags `--backfill_from`,
// `--backfill_start` and `--backfill_end` (docs/operations.md, "Backfill").
//
// Input (`from`):
//   "kafka"                  the service's topic, read by a consumer group
//                            of its own (`<group>-backfill`), every
//                            partition from its range's start to its end;
//   "file:PATH[,PATH...]"    JSON-lines files, one per partition in the
//                            order given (partition 0, 1, ...); offset n
//                            is line n. A PATH that is a directory stands
//                            for its *.jsonl files in name order.
//
// Range (docs/semantics.md, "Backfill"): offsets or times, or neither.
//   - Offsets [start, end) are the same on every partition; an end beyond
//     a Kafka partition's last record is its end (the high watermark when
//     the backfill starts). Every window the records fall in is written:
//     a backfill over the same offsets as a streaming run that read those
//     offsets and ended (a bounded run) writes the same updates.
//   - Times [start, end) write only the windows the range covers
//     completely (start <= window start, window end <= end). To warm those
//     windows up, a Kafka backfill starts each partition at the first
//     record stamped at or after start - BackfillWarmup(features) and stops
//     before the first one stamped at or after end + allowed lateness +
//     max out-of-orderness, after which no covered window can change;
//     files are read whole. Kafka record timestamps are taken to be the
//     event times (as producers stamp them by default at creation, and as
//     weir's event-time field should agree with).
//
// Checkpoints go under `<checkpoint_uri>/backfill-<range>`, apart from the
// live service's, so a backfill that is killed resumes from its own last
// checkpoint when started again with the same flags, and gives the same
// output (an idempotent sink keeps the same (key, feature, window, version)
// rows).
//
// Threading: the functions here are pure; the service runs the backfill on
// the thread that calls Service::Run.

#ifndef WEIR_BACKFILL_H_
#define WEIR_BACKFILL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/keyed_window_operator.h"
#include "weir/window.h"

namespace weir {

struct BackfillOptions {
  // "kafka" or "file:PATH[,PATH...]" (above). Required.
  std::string from;

  // An offset range [start_offset, end_offset): either bound may be unset
  // (the log start, the log end). REQUIRES: 0 <= start < end when both set.
  std::optional<int64_t> start_offset;
  std::optional<int64_t> end_offset;

  // A time range [start_time, end_time): both or neither, not with offsets.
  // REQUIRES: start < end, whole milliseconds.
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> end_time;

  // kInvalidArgument naming the flag (backfill_from, backfill_start,
  // backfill_end) of the first bad field.
  absl::Status Validate() const;

  // "kafka" or "files".
  bool kafka() const { return from == "kafka"; }
  bool time_range() const { return start_time.has_value(); }

  // The range as a name part: "offsets-0-1000", "offsets-0-end",
  // "20260101T000100Z-20260101T000200Z", "all".
  std::string RangeName() const;
};

// How long before a time range's start a backfill starts reading: the
// longest window of `features` (a session's gap, a daily window's day, a
// sliding window's size) plus allowed lateness plus max out-of-orderness.
absl::Duration BackfillWarmup(const KeyedWindowOptions& features);

// Whether a backfill over `options` writes an update of `window`: always
// for an offset range; for a time range, when the range covers the window
// completely.
bool BackfillWritesWindow(const BackfillOptions& options, const Window& window);

// The files `from` ("file:PATH[,PATH...]") names, directories expanded to
// their *.jsonl files in name order. kNotFound for a missing path,
// kInvalidArgument when it names no file.
absl::StatusOr<std::vector<std::string>> BackfillFiles(const std::string& from);

// Parses a --backfill_start / --backfill_end value into `options`: an
// offset (a non-negative integer) or an RFC 3339 time
// ("2026-01-01T00:01:00Z"). Empty leaves the bound unset.
absl::Status ParseBackfillBound(const std::string& text, bool is_start,
                                BackfillOptions& options);

}  // namespace weir

#endif  // WEIR_BACKFILL_H_
