// -----------------------------------------------------------------------------
// File: bench/bench_state.h
// -----------------------------------------------------------------------------
//
// Measurements the benchmark binaries share, under their benchmark names:
// they live in weir/testing/footprint.h, which weir-plan uses too. And how
// they drive an operator as a pipeline does (FinishSteps).
//
// Example:
//   WEIR_RETURN_IF_ERROR(op->Flush());  // cached partials into the backend
//   weir::bench::StateFootprint state = weir::bench::MeasureState(backend);
//   std::printf("bytes_per_user=%.0f\n", state.BytesPerEntity());

#ifndef WEIR_BENCH_BENCH_STATE_H_
#define WEIR_BENCH_BENCH_STATE_H_

#include "absl/status/status.h"
#include "weir/keyed_window_operator.h"
#include "weir/status_macros.h"
#include "weir/testing/footprint.h"

namespace weir {
namespace bench {

using ::weir::testing::AllocatorName;
using ::weir::testing::HeapBytesInUse;
using ::weir::testing::MeasureState;
using ::weir::testing::PeakRssMb;
using ::weir::testing::ProcStatusMb;
using ::weir::testing::RssMb;
using ::weir::testing::StateFootprint;

// Hands the last call's output to `take` (a callable taking
// OperatorOutput&, which drains it), then fires the steps that call left
// pending (KeyedWindowOptions::max_fire_updates), handing each to `take`
// before the next: what a pipeline does after every record.
template <typename Take>
absl::Status FinishSteps(KeyedWindowOperator& op, OperatorOutput& out,
                         Take take) {
  take(out);
  while (op.firing_pending()) {
    WEIR_RETURN_IF_ERROR(op.AdvanceWatermark(op.watermark(), &out));
    take(out);
  }
  return absl::OkStatus();
}

}  // namespace bench
}  // namespace weir

#endif  // WEIR_BENCH_BENCH_STATE_H_
