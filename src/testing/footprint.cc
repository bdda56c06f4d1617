#include "weir/testing/footprint.h"

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
namespace testing {

double HeapBytesInUse() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
}

double ProcStatusMb(std::string_view field) {
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

// Window keys start with u32 length ‖ entity, so one entity's entries are
// adjacent.
StateFootprint MeasureState(StateBackend* backend) {
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

}  // namespace testing
}  // namespace weir
