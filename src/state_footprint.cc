#include "weir/state_footprint.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "weir/internal/state_format.h"
#include "weir/internal/state_keys.h"
#include "weir/sketch.h"
#include "weir/state.h"

namespace weir {

// Fixed-length windows are stored in time order, not by entity, so
// entities are counted by a hash each: exactly up to kExactEntities (a
// collision among them is rare enough for a count that sizes memory), then
// estimated by a HyperLogLog of the same hashes (about 1% error), so that
// measuring a large state does not add tens of MiB to the memory of the
// process that measures it.
StateFootprint MeasureState(StateBackend* backend) {
  constexpr size_t kExactEntities = 1 << 16;
  StateFootprint f;
  absl::flat_hash_set<uint64_t> exact;
  HyperLogLog estimate;
  std::unique_ptr<StateIterator> it = backend->Scan(Column::kWindows, "", "");
  for (; it->Valid(); it->Next()) {
    f.window_bytes +=
        it->key().size() + it->value().size() + internal::kStateHeaderSize;
    ++f.window_entries;
    internal::DecodedWindowKey w;
    if (!internal::DecodeWindowKey(it->key(), &w)) continue;
    const uint64_t hash = XxHash64(w.key);
    estimate.AddHash(hash);
    if (exact.size() < kExactEntities) exact.insert(hash);
  }
  f.entities = exact.size() < kExactEntities
                   ? exact.size()
                   : static_cast<uint64_t>(std::llround(estimate.Estimate()));
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
