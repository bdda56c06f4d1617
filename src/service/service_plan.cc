// The service's capacity-planning mode (--plan): the binary's own feature
// definition and decoder, calibrated on a sample of its input.

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "weir/capacity_calibration.h"
#include "weir/capacity_plan.h"
#include "weir/service.h"
#include "weir/status_macros.h"

namespace weir {

CapacityTargets ServicePlanOptions::TargetsFor(
    absl::Duration checkpoint_interval,
    absl::Duration definition_retention) const {
  CapacityTargets t = targets;
  t.checkpoint_interval = checkpoint_interval;
  t.retention = retention.value_or(definition_retention);
  return t;
}

absl::Status PlanService(const ServiceOptions& options,
                         const KeyedWindowOptions& features, Decoder& decoder) {
  if (!options.plan.has_value()) {
    return absl::InvalidArgumentError("plan: not set");
  }
  WEIR_RETURN_IF_ERROR(options.Validate());
  const ServicePlanOptions& plan = *options.plan;
  const CapacityTargets targets =
      plan.TargetsFor(options.checkpoint_interval, StateRetention(features));
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<CalibrationInput> input,
                        OpenCalibrationSample(plan.sample, options.topic));
  CalibrationOptions calibration = plan.calibration;
  if (calibration.scratch_dir.empty()) {
    calibration.scratch_dir = options.state_dir;
  }
  // The operator is named as the service names it.
  KeyedWindowOptions definition = features;
  if (definition.name.empty()) definition.name = options.name;
  WEIR_ASSIGN_OR_RETURN(
      CapacityCalibration measured,
      CalibrateCapacity(definition, decoder, *input, calibration));
  WEIR_ASSIGN_OR_RETURN(CapacityPlan result,
                        PlanCapacity(measured.measurements, targets));
  const std::string title = absl::StrCat(
      definition.name, " (", definition.features.size(), " features)");
  const std::string report =
      plan.json ? CapacityReportJson(title, measured, targets, result)
                : CapacityReportText(title, measured, targets, result);
  if (std::fputs(report.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
    return absl::DataLossError("cannot write the plan to stdout");
  }
  return absl::OkStatus();
}

}  // namespace weir
