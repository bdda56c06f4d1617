// weir-plan: sizes a deployment of the fraud-features service from what its
// feature definition costs on this machine.
//
//   weir-plan --target_rate=50000 --entities=10000000 [--peak=3] [--json]
//
// Calibration: runs the service's definition, F-FRAUD (examples/
// fraud_features/fraud_features.h), over generated W-PAY events (--events,
// --users, --seed) for up to --seconds: each event is decoded from its JSON
// line by the service's decoder and processed by the operator on a RocksDB
// state in a temporary directory, with a checkpoint published to a
// temporary file:// store every fifth of the run (of --seconds or of
// --events, whichever comes first) and at its end. With --sample=FILE it
// runs the lines of FILE instead (W-PAY message values, one JSON object a
// line, as weir-gen prints them), at most --events of them. It measures
//   events_per_core_second      events per second of process CPU time
//   events_per_thread_second    events per second of the processing
//                               thread's CPU time
//   state_bytes_per_entity      the state (keys, values, headers) per user
//                               holding state at the end, flushed
//   disk_bytes_per_entity       RocksDB's SST files per such user, compacted
//   checkpoint_bytes_per_event  the incremental checkpoint uploads after the
//                               first, per event processed in between
//   updates_per_event           feature updates emitted per event
// The calibration is the library's (weir::CalibrateCapacity, weir/
// capacity_calibration.h), which every service binary also runs on its own
// definition with --plan (weir/service.h).
// Plan: weir::PlanCapacity (weir/capacity_plan.h) from those and --target_rate,
// --peak, --entities, --retention, --headroom, --checkpoint_interval,
// --cores_per_instance and --cache_fraction. docs/operations.md, "Capacity
// planning", explains the rules and how to read the output.
//
// Output: text, or with --json one JSON object {"calibration": ...,
// "measurements": ..., "targets": ..., "plan": ...}.
// Exits 0 on success, 2 on a bad flag (named), 1 if the calibration fails.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/fraud_features/fraud_features.h"
#include "tools/common/command_line.h"
#include "weir/capacity_calibration.h"
#include "weir/capacity_plan.h"
#include "weir/json/json_decoder.h"
#include "weir/keyed_window_operator.h"
#include "weir/record.h"
#include "weir/service.h"
#include "weir/status_macros.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(double, target_rate, 0, "Average input rate, events/s. Required.");
ABSL_FLAG(double, peak, 3, "Peak rate as a multiple of --target_rate.");
ABSL_FLAG(int64_t, entities, 0, "Distinct entities (users). Required.");
ABSL_FLAG(std::optional<absl::Duration>, retention, std::nullopt,
          "How long an entity's state lives after its last event. Default: "
          "the definition's longest window plus its allowed lateness.");
ABSL_FLAG(double, headroom, 0.7, "CPU utilisation planned at the peak.");
ABSL_FLAG(absl::Duration, checkpoint_interval,
          weir::ServiceOptions().checkpoint_interval,
          "Time between checkpoints.");
ABSL_FLAG(int32_t, cores_per_instance, 2, "Cores of each instance.");
ABSL_FLAG(double, cache_fraction, 1,
          "Share of an instance's state its block cache holds.");
ABSL_FLAG(int64_t, events, 2'000'000, "Calibration: most events to run.");
ABSL_FLAG(int64_t, users, 1'000'000, "Calibration: W-PAY users (Zipf 1.0).");
ABSL_FLAG(double, seconds, 5, "Calibration: most seconds of processing.");
ABSL_FLAG(uint64_t, seed, 1, "Calibration: random seed of the W-PAY input.");
ABSL_FLAG(std::string, sample, "",
          "Calibration: a file of W-PAY message values, one JSON object a "
          "line (as weir-gen prints), to run instead of generated events.");
ABSL_FLAG(bool, json, false, "Print the plan as one JSON object.");

namespace {

constexpr char kUsage[] =
    "sizes a fraud-features deployment from a calibration run of its\n"
    "feature definition on this machine (docs/operations.md, \"Capacity\n"
    "planning\").\n"
    "usage: weir-plan --target_rate=EVENTS_PER_S --entities=N [--peak=3]\n"
    "                 [--retention=24h] [--checkpoint_interval=10s] [--json]";

// Generated W-PAY events, as the service reads them from the topic.
class WPayInput final : public weir::CalibrationInput {
 public:
  static absl::StatusOr<std::unique_ptr<WPayInput>> Create(int64_t events,
                                                           int64_t users,
                                                           uint64_t seed) {
    weir::testing::WPayOptions options;
    options.num_events = events;
    options.num_users = users;
    options.seed = seed;
    WEIR_ASSIGN_OR_RETURN(auto gen,
                          weir::testing::WPayGenerator::Create(options));
    return std::unique_ptr<WPayInput>(new WPayInput(std::move(gen), events));
  }

  std::string_view name() const override { return "W-PAY"; }
  int64_t size() const override { return size_; }
  absl::Status status() const override { return absl::OkStatus(); }

  bool Next(weir::RawRecord* record, std::string* storage) override {
    if (!gen_->Next(event_)) return false;
    *record = event_.ToRawRecord("payments");
    storage->swap(event_.json);
    // The JSON decoder reads the key from the value (user_id).
    record->key = {};
    record->value = *storage;
    return true;
  }

 private:
  WPayInput(std::unique_ptr<weir::testing::WPayGenerator> gen, int64_t size)
      : gen_(std::move(gen)), size_(size) {}

  std::unique_ptr<weir::testing::WPayGenerator> gen_;
  weir::testing::WPayEvent event_;
  const int64_t size_;
};

int BadUsage(const std::string& message) {
  std::fprintf(stderr, "weir-plan: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(argc, argv, {.usage = kUsage});
  weir::CapacityTargets targets;
  targets.target_rate = absl::GetFlag(FLAGS_target_rate);
  targets.peak = absl::GetFlag(FLAGS_peak);
  targets.entities = absl::GetFlag(FLAGS_entities);
  targets.retention =
      absl::GetFlag(FLAGS_retention)
          .value_or(weir::StateRetention(fraud::FraudFeatures()));
  targets.headroom = absl::GetFlag(FLAGS_headroom);
  targets.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  targets.cores_per_instance = absl::GetFlag(FLAGS_cores_per_instance);
  targets.cache_fraction = absl::GetFlag(FLAGS_cache_fraction);
  // The targets' fields are the flags' names.
  if (absl::Status s = targets.Validate(); !s.ok()) {
    return BadUsage(absl::StrCat("--", s.message()));
  }
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t users = absl::GetFlag(FLAGS_users);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (events <= 0)
    return BadUsage(absl::StrCat("--events must be > 0: ", events));
  if (users <= 0) return BadUsage(absl::StrCat("--users must be > 0: ", users));
  if (!(seconds > 0)) {
    return BadUsage(absl::StrCat("--seconds must be > 0: ", seconds));
  }

  const std::string sample = absl::GetFlag(FLAGS_sample);
  absl::StatusOr<std::unique_ptr<weir::CalibrationInput>> input =
      sample.empty()
          ? absl::StatusOr<std::unique_ptr<weir::CalibrationInput>>(
                WPayInput::Create(events, users, absl::GetFlag(FLAGS_seed)))
          : weir::OpenCalibrationSample(sample, "payments");
  if (!input.ok()) {
    std::fprintf(stderr, "weir-plan: %s\n", input.status().ToString().c_str());
    return 1;
  }
  weir::KeyedWindowOptions features = fraud::FraudFeatures();
  features.name = "weir_plan";
  absl::StatusOr<std::unique_ptr<weir::JsonDecoder>> decoder =
      weir::JsonDecoder::Create(fraud::WPaySchema());
  if (!decoder.ok()) {
    std::fprintf(stderr, "weir-plan: %s\n",
                 decoder.status().ToString().c_str());
    return 1;
  }
  weir::CalibrationOptions calibration_options;
  calibration_options.max_events = events;
  calibration_options.max_time = absl::Seconds(seconds);
  absl::StatusOr<weir::CapacityCalibration> calibration =
      weir::CalibrateCapacity(features, **decoder, **input,
                              calibration_options);
  if (!calibration.ok()) {
    std::fprintf(stderr, "weir-plan: calibration failed: %s\n",
                 calibration.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<weir::CapacityPlan> plan =
      weir::PlanCapacity(calibration->measurements, targets);
  if (!plan.ok()) {
    std::fprintf(stderr, "weir-plan: %s\n", plan.status().ToString().c_str());
    return 1;
  }
  constexpr char kDefinition[] = "F-FRAUD (the fraud-features service's)";
  const std::string report =
      absl::GetFlag(FLAGS_json)
          ? weir::CapacityReportJson(kDefinition, *calibration, targets, *plan)
          : weir::CapacityReportText(kDefinition, *calibration, targets, *plan);
  std::fputs(report.c_str(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
