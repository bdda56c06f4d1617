// -----------------------------------------------------------------------------
// File: bench/bench_state.h
// -----------------------------------------------------------------------------
//
// Measurements the benchmark binaries share: the process's peak resident
// set and heap in use, and how many bytes of state a backend holds per
// entity (user).
//
// Threading: PeakRssMb reads /proc; MeasureState scans the backend, so no
// other thread may write it meanwhile.
//
// Example:
//   WEIR_RETURN_IF_ERROR(op->Flush());  // cached partials into the backend
//   weir::bench::StateFootprint state = weir::bench::MeasureState(backend);
//   std::printf("bytes_per_user=%.0f\n", state.BytesPerEntity());

#ifndef WEIR_BENCH_BENCH_STATE_H_
#define WEIR_BENCH_BENCH_STATE_H_

#include <malloc.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "weir/internal/coding.h"
#include "weir/internal/state_format.h"
#include "weir/state.h"

namespace weir {
namespace bench {

// Bytes of heap the process has in use (glibc's allocator: small blocks
// and mmapped large ones).
inline double HeapBytesInUse() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
}

// A size field of /proc/self/status ("VmHWM", "VmRSS"), in MiB; -1 if
// unknown.
inline double ProcStatusMb(std::string_view field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) {
      absl::string_view value(line);
      value.remove_prefix(prefix.size());
      if (absl::EndsWith(value, "kB")) value.remove_suffix(2);
      int64_t kb = 0;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &kb)) break;
      return static_cast<double>(kb) / 1024.0;
    }
  }
  return -1;
}

// Peak resident set size of this process, in MiB.
inline double PeakRssMb() { return ProcStatusMb("VmHWM"); }

// Resident set size of this process now, in MiB.
inline double RssMb() { return ProcStatusMb("VmRSS"); }

// The state a backend holds, as stored: every key, its value and the
// backend's value header (internal::kStateHeaderSize), in the windows and
// timers columns.
struct StateFootprint {
  uint64_t window_bytes = 0;
  uint64_t window_entries = 0;
  uint64_t timer_bytes = 0;
  // Distinct entities with at least one window entry.
  uint64_t entities = 0;
  bool ok = true;  // false if a scan failed

  double BytesPerEntity() const {
    return entities == 0 ? 0.0
                         : static_cast<double>(window_bytes + timer_bytes) /
                               static_cast<double>(entities);
  }
};

// Scans `backend`. Call after the operator's Flush so that the backend
// holds its whole state. Window keys start with u32 length ‖ entity, so one
// entity's entries are adjacent.
inline StateFootprint MeasureState(StateBackend* backend) {
  StateFootprint f;
  std::string last_entity;
  std::unique_ptr<StateIterator> it = backend->Scan(Column::kWindows, "", "");
  for (; it->Valid(); it->Next()) {
    f.window_bytes +=
        it->key().size() + it->value().size() + internal::kStateHeaderSize;
    ++f.window_entries;
    std::string_view key = it->key();
    uint32_t len = 0;
    if (!internal::GetOrderedU32(&key, &len) || key.size() < len) continue;
    const std::string_view entity = key.substr(0, len);
    if (f.entities == 0 || entity != last_entity) {
      ++f.entities;
      last_entity.assign(entity);
    }
  }
  f.ok = it->status().ok();
  it = backend->Scan(Column::kTimers, "", "");
  for (; it->Valid(); it->Next()) {
    f.timer_bytes +=
        it->key().size() + it->value().size() + internal::kStateHeaderSize;
  }
  f.ok = f.ok && it->status().ok();
  return f;
}

}  // namespace bench
}  // namespace weir

#endif  // WEIR_BENCH_BENCH_STATE_H_
