#include "weir/state_footprint.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "weir/internal/coding.h"
#include "weir/internal/state_format.h"
#include "weir/state.h"

namespace weir {

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

}  // namespace weir
