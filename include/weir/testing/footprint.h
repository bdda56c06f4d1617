// -----------------------------------------------------------------------------
// File: testing/footprint.h
// -----------------------------------------------------------------------------
//
// What a process and its state take, as the benchmarks measure it: the
// process's peak resident set and heap in use, and (from
// weir/state_footprint.h) how many bytes of state a backend holds per
// entity (user).
//
// Threading: the process figures read /proc and glibc's allocator and are
// safe from any thread; MeasureState scans the backend, so no other thread
// may write it meanwhile.
//
// Example:
//   WEIR_RETURN_IF_ERROR(op->Flush());  // cached partials into the backend
//   weir::testing::StateFootprint state = weir::testing::MeasureState(backend);
//   std::printf("bytes_per_user=%.0f\n", state.BytesPerEntity());

#ifndef WEIR_TESTING_FOOTPRINT_H_
#define WEIR_TESTING_FOOTPRINT_H_

#include <cstdint>
#include <string_view>

#include "weir/state_footprint.h"

namespace weir {
namespace testing {

// Bytes of heap the process has in use (glibc's allocator: small blocks
// and mmapped large ones; meaningless when another allocator serves
// malloc).
double HeapBytesInUse();

// The allocator serving malloc: "jemalloc" (linked in or preloaded) or
// "glibc". Memory figures depend on it (docs/operations.md, "Memory").
const char* AllocatorName();

// A size field of /proc/self/status ("VmHWM", "VmRSS"), in MiB; -1 if
// unknown.
double ProcStatusMb(std::string_view field);

// Peak resident set size of this process, in MiB.
inline double PeakRssMb() { return ProcStatusMb("VmHWM"); }

// Resident set size of this process now, in MiB.
inline double RssMb() { return ProcStatusMb("VmRSS"); }

// The state a backend holds (weir/state_footprint.h).
using ::weir::MeasureState;
using ::weir::StateFootprint;

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_FOOTPRINT_H_
