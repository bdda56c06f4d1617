#include "weir/state_footprint.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "weir/internal/state_format.h"
#include "weir/internal/state_keys.h"
#include "weir/state.h"

namespace weir {

// Fixed-length windows are stored in time order, not by entity, so
// entities are counted by a hash each (a collision among millions of
// entities is rare enough for a count that sizes memory).
StateFootprint MeasureState(StateBackend* backend) {
  StateFootprint f;
  absl::flat_hash_set<uint64_t> entities;
  std::unique_ptr<StateIterator> it = backend->Scan(Column::kWindows, "", "");
  for (; it->Valid(); it->Next()) {
    f.window_bytes +=
        it->key().size() + it->value().size() + internal::kStateHeaderSize;
    ++f.window_entries;
    internal::DecodedWindowKey w;
    if (internal::DecodeWindowKey(it->key(), &w)) {
      entities.insert(absl::HashOf(w.key));
    }
  }
  f.entities = entities.size();
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
