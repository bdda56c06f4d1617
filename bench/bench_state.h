// -----------------------------------------------------------------------------
// File: bench/bench_state.h
// -----------------------------------------------------------------------------
//
// Measurements the benchmark binaries share, under their benchmark names:
// they live in weir/testing/footprint.h, which weir-plan uses too.
//
// Example:
//   WEIR_RETURN_IF_ERROR(op->Flush());  // cached partials into the backend
//   weir::bench::StateFootprint state = weir::bench::MeasureState(backend);
//   std::printf("bytes_per_user=%.0f\n", state.BytesPerEntity());

#ifndef WEIR_BENCH_BENCH_STATE_H_
#define WEIR_BENCH_BENCH_STATE_H_

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

}  // namespace bench
}  // namespace weir

#endif  // WEIR_BENCH_BENCH_STATE_H_
