// -----------------------------------------------------------------------------
// File: capacity_calibration.h
// -----------------------------------------------------------------------------
//
// Measures what a feature definition costs on this machine, for capacity
// planning (weir/capacity_plan.h): `CalibrateCapacity` runs the
// definition's operator, with the service's decoder, over sample records on
// a RocksDB state in a scratch directory, checkpointing to a scratch
// file:// store as the service does, and returns the `CapacityMeasurements`
// that `PlanCapacity` turns into a deployment plan. `CapacityReportText`
// and `CapacityReportJson` print the calibration, the targets and the plan.
//
// Every service binary plans its own definition this way with `--plan`
// (weir/service.h); the weir-plan tool does it for F-FRAUD on generated
// W-PAY events. docs/operations.md, "Capacity planning", explains the
// measurements and how to read a plan.
//
// Threading: CalibrateCapacity runs on the calling thread (RocksDB adds its
// background threads) and uses the decoder and input only from it.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto input,
//       weir::OpenCalibrationSample("orders-sample.jsonl", "orders"));
//   WEIR_ASSIGN_OR_RETURN(weir::CapacityCalibration c,
//       weir::CalibrateCapacity(MyFeatures(), *decoder, *input, {}));
//   weir::CapacityTargets t;
//   t.target_rate = 20000;
//   t.entities = 5'000'000;
//   t.retention = weir::StateRetention(MyFeatures());
//   WEIR_ASSIGN_OR_RETURN(weir::CapacityPlan plan,
//                         weir::PlanCapacity(c.measurements, t));
//   std::fputs(weir::CapacityReportText("my features", c, t, plan).c_str(),
//              stdout);

#ifndef WEIR_CAPACITY_CALIBRATION_H_
#define WEIR_CAPACITY_CALIBRATION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/capacity_plan.h"
#include "weir/decode.h"
#include "weir/keyed_window_operator.h"
#include "weir/record.h"

namespace weir {

// Where a calibration's records come from.
class CalibrationInput {
 public:
  virtual ~CalibrationInput() = default;

  // What the report calls it ("sample", "W-PAY").
  virtual std::string_view name() const = 0;

  // The records it holds, or -1 when not known in advance.
  virtual int64_t size() const = 0;

  // The next record into `*record`, whose bytes are kept in `*storage`
  // until the next call; false at the end of the input.
  virtual bool Next(RawRecord* record, std::string* storage) = 0;

  // Not OK if the input could not be read to its end.
  virtual absl::Status status() const = 0;
};

// The non-empty lines of a file, each a message value (a JSON object as the
// service's JSON decoder reads it), as records of `topic`'s partition 0 with
// consecutive offsets and no key. kNotFound if the file cannot be opened.
absl::StatusOr<std::unique_ptr<CalibrationInput>> OpenCalibrationSample(
    const std::string& path, std::string_view topic);

struct CalibrationOptions {
  // The calibration stops at whichever comes first: the end of the input,
  // `max_events` records, or `max_time` of processing (wall time of the
  // timed part). REQUIRES: > 0. Defaults: 2,000,000 and absl::Seconds(5)
  int64_t max_events = 2'000'000;
  absl::Duration max_time = absl::Seconds(5);

  // Checkpoints taken during the run, evenly over `max_time` or the input
  // (whichever ends first); one more is taken at the end. The first is the
  // full upload, the others are incremental. REQUIRES: >= 1. Default: 5
  int checkpoints = 5;

  // Where the scratch state and checkpoints go (a fresh directory inside,
  // removed at the end). Default: empty, $TMPDIR or /tmp
  std::string scratch_dir;

  // kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// What a calibration ran, next to what it measured.
struct CapacityCalibration {
  CapacityMeasurements measurements;

  std::string input;             // the input's name()
  int64_t events = 0;            // processed, accepted and rejected
  int64_t rejected = 0;          // refused by the decoder (dead letters)
  uint64_t active_entities = 0;  // entities holding state at the end
  double seconds = 0;            // wall time of the timed part
  double cpu_seconds = 0;        // process CPU time of the timed part
  int checkpoints = 0;
  uint64_t first_checkpoint_bytes = 0;
  uint64_t state_bytes = 0;      // logical state at the end (keys, values)
  uint64_t disk_bytes = 0;       // RocksDB's files once compacted
  int64_t peak_rss_kib = -1;     // the process's, -1 if unknown
  size_t cache_max_entries = 0;  // the definition's operator cache
  OperatorStats stats;           // state reads, writes, cache evictions
};

// Runs `features` over `input`, each record decoded by `decoder` (records
// it refuses count as rejected), on a fresh RocksDB state, and measures.
// kInvalidArgument for bad options or an input without a single record;
// kInternal if no record left state behind; the parts' errors otherwise.
absl::StatusOr<CapacityCalibration> CalibrateCapacity(
    const KeyedWindowOptions& features, Decoder& decoder,
    CalibrationInput& input, const CalibrationOptions& options);

// How long a key's state lives after its last event: the longest window
// (or session gap) of `features` plus the allowed lateness. The default
// CapacityTargets::retention for a definition.
absl::Duration StateRetention(const KeyedWindowOptions& features);

// The calibration, the targets and the plan as text for a person (a title
// naming `definition`, then "calibration:", "measured:", "targets:" and
// "plan:" sections), or as one JSON object {"calibration": ...,
// "measurements": ..., "targets": ..., "plan": ...} on one line.
std::string CapacityReportText(std::string_view definition,
                               const CapacityCalibration& calibration,
                               const CapacityTargets& targets,
                               const CapacityPlan& plan);
std::string CapacityReportJson(std::string_view definition,
                               const CapacityCalibration& calibration,
                               const CapacityTargets& targets,
                               const CapacityPlan& plan);

}  // namespace weir

#endif  // WEIR_CAPACITY_CALIBRATION_H_
