// -----------------------------------------------------------------------------
// File: state_footprint.h
// -----------------------------------------------------------------------------
//
// How many bytes of state a backend holds, and for how many entities
// (keys): what capacity planning (weir/capacity_calibration.h) and the
// benchmarks measure per entity.
//
// Threading: MeasureState scans the backend, so no other thread may write
// it meanwhile.
//
// Example:
//   WEIR_RETURN_IF_ERROR(op->Flush());  // cached partials into the backend
//   weir::StateFootprint state = weir::MeasureState(backend);
//   std::printf("bytes_per_user=%.0f\n", state.BytesPerEntity());

#ifndef WEIR_STATE_FOOTPRINT_H_
#define WEIR_STATE_FOOTPRINT_H_

#include <cstdint>

#include "weir/state.h"

namespace weir {

// The state a backend holds, as stored: every key, its value and the
// backend's value header, in the windows and timers columns.
struct StateFootprint {
  uint64_t window_bytes = 0;
  uint64_t window_entries = 0;
  uint64_t timer_bytes = 0;
  // Distinct entities with at least one window entry: exact up to 65,536,
  // estimated beyond (HyperLogLog, about 1% error).
  uint64_t entities = 0;
  bool ok = true;  // false if a scan failed

  double BytesPerEntity() const {
    return entities == 0 ? 0.0
                         : static_cast<double>(window_bytes + timer_bytes) /
                               static_cast<double>(entities);
  }
};

// Scans `backend`. Call after the operator's Flush so that the backend
// holds its whole state.
StateFootprint MeasureState(StateBackend* backend);

}  // namespace weir

#endif  // WEIR_STATE_FOOTPRINT_H_
