// -----------------------------------------------------------------------------
// File: internal/window_cache.h
// -----------------------------------------------------------------------------
//
// The operator's write-back cache of (key, window) entries
// (docs/architecture.md, "The write-back cache"). Entries live in a slab of
// slots; a flat hash index over slot numbers finds them, its hash and
// equality looking into the slab, so each key string is stored once.
//
// - Generations: freeing a slot bumps its generation, so a `SlotRef` taken
//   before (a timer, a queued re-emission) is recognized as stale even when
//   the slot has been reused for another window.
// - Eviction: a CLOCK sweep over the slab. An entry folded into since the
//   hand last passed (its `referenced` bit) gets a second chance; entries
//   pinned (a session merge in progress) or queued for re-emission are
//   never evicted. What eviction does to an entry (write it to the backend,
//   free it) is the caller's.
// - Spill horizon: per window group, the largest window start ever written
//   to the backend. An entry for a later window is complete in memory (the
//   backend holds nothing of it), so it needs no read.
//
// Threading: not thread-safe; the operator's thread uses it. Starts no
// threads.
//
// Example:
//   weir::internal::WindowCache cache(/*groups=*/1, /*reserve=*/1024);
//   std::optional<uint32_t> slot = cache.Find(key, window.start, group);
//   if (!slot) {
//     slot = cache.Insert(group, key, window,
//                         cache.CompleteInMemory(group, window.start),
//                         cache.Hash(key, window.start, group), acc_words,
//                         now_ms);
//   }
//   cache.entry(*slot).referenced = true;

#ifndef WEIR_INTERNAL_WINDOW_CACHE_H_
#define WEIR_INTERNAL_WINDOW_CACHE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "weir/internal/timer_queue.h"
#include "weir/status_macros.h"
#include "weir/time.h"
#include "weir/window.h"

namespace weir {
namespace internal {

// One (key, window) of one group. Laid out so that what a record touches
// (key, start, group, flags, max_offset and up to 48 bytes of accumulators)
// comes first, in the first two cache lines.
struct CacheEntry {
  std::string key;
  int64_t start = 0;
  uint16_t group = 0;
  bool live = false;
  bool complete = false;    // acc includes everything the backend holds
  bool in_backend = false;  // the backend holds a copy (with timers)
  bool dirty = false;       // acc has folds the backend does not have
  bool referenced = false;  // clock bit for eviction
  bool reemit = false;      // queued for re-emission
  int64_t max_offset = -1;
  absl::InlinedVector<uint64_t, 6> acc;  // 8-aligned accumulator block
  // Colder fields.
  int64_t end = 0;
  int64_t touched_ms = 0;  // processing time of the last fold (TTL only)
  size_t hash = 0;         // Hash() of (key, start, group), kept for
                           // rehashing and erasing without rehashing
  uint32_t generation = 0;
  bool pinned = false;  // must not be evicted (a merge in progress)
  // Where the entry's one in-memory timer is, so freeing the entry removes
  // its reference (internal/timer_queue.h).
  TimerHandle timer;

  char* acc_data() { return reinterpret_cast<char*>(acc.data()); }
};

class WindowCache {
 public:
  // `groups` window groups, each with its own spill horizon; room for
  // `reserve` entries before the slab grows.
  WindowCache(size_t groups, size_t reserve);
  // Not copyable or movable: the index points into the slab.
  WindowCache(const WindowCache&) = delete;
  WindowCache& operator=(const WindowCache&) = delete;

  // The index's hash of (key, start, group).
  size_t Hash(std::string_view key, int64_t start, uint16_t group) const {
    return index_.hash_function()(KeyView{key, start, group});
  }

  // The slot of (key, start, group), if cached. `hash` is Hash() of it.
  std::optional<uint32_t> Find(std::string_view key, int64_t start,
                               uint16_t group, size_t hash) const {
    auto it = index_.find(KeyView{key, start, group}, hash);
    if (it == index_.end()) return std::nullopt;
    return *it;
  }
  std::optional<uint32_t> Find(std::string_view key, int64_t start,
                               uint16_t group) const {
    auto it = index_.find(KeyView{key, start, group});
    if (it == index_.end()) return std::nullopt;
    return *it;
  }
  bool Contains(std::string_view key, int64_t start, uint16_t group) const {
    return index_.contains(KeyView{key, start, group});
  }

  // Takes a free slot (a freed one first) for window `w` of `key` in
  // `group`: live, referenced, not dirty, no timer, max_offset -1, touched
  // at `now_ms`, with an accumulator block of `acc_words` words the caller
  // initializes. `hash` is Hash(key, w.start, group). REQUIRES: not cached.
  uint32_t Insert(uint16_t group, std::string_view key, const Window& w,
                  bool complete, size_t hash, size_t acc_words, int64_t now_ms);

  // Frees `slot`: out of the index, key released, generation bumped. The
  // caller has released what the accumulators own and removed its timer.
  void Erase(uint32_t slot);

  CacheEntry& entry(uint32_t slot) { return entries_[slot]; }
  const CacheEntry& entry(uint32_t slot) const { return entries_[slot]; }

  // Every slot, live or free, for sweeps over the cache.
  std::vector<CacheEntry>& slots() { return entries_; }

  // Live entries.
  size_t live() const { return live_; }

  SlotRef RefOf(uint32_t slot) const {
    return SlotRef{slot, entries_[slot].generation};
  }
  // True if `ref`'s slot still holds the entry it was taken for.
  bool Valid(SlotRef ref) const {
    return entries_[ref.slot].live &&
           entries_[ref.slot].generation == ref.generation;
  }

  // The group's spill horizon: the largest window start ever written to
  // the backend, kMinEventTime if none.
  int64_t horizon(uint16_t group) const { return horizon_[group]; }
  // Restores a horizon (from the operator's stored metadata).
  void set_horizon(uint16_t group, int64_t horizon) {
    horizon_[group] = horizon;
  }
  // A window of `group` starting at `start` was written to the backend.
  void NoteSpilled(uint16_t group, int64_t start) {
    horizon_[group] = std::max(horizon_[group], start);
  }
  // True if the backend holds nothing of a window of `group` starting at
  // `start`: its entry, if any, is complete in memory.
  bool CompleteInMemory(uint16_t group, int64_t start) const {
    return start > horizon_[group];
  }

  // Moves the clock hand until `target` entries were evicted, no entry is
  // live, or the hand has gone three times round the slab (everything
  // pinned). A referenced entry has its bit cleared and is passed over;
  // pinned entries and entries queued for re-emission are passed over.
  // `evict(slot)` returns absl::Status and must Erase the slot; its first
  // error is returned.
  template <typename Evict>
  absl::Status EvictSome(size_t target, Evict evict) {
    size_t evicted = 0;
    size_t scanned = 0;
    const size_t limit = 3 * entries_.size() + 1;
    while (evicted < target && live_ > 0 && scanned < limit) {
      if (hand_ >= entries_.size()) hand_ = 0;
      const uint32_t slot = static_cast<uint32_t>(hand_++);
      ++scanned;
      CacheEntry& e = entries_[slot];
      if (!e.live || e.reemit || e.pinned) continue;
      if (e.referenced) {
        e.referenced = false;
        continue;
      }
      WEIR_RETURN_IF_ERROR(evict(slot));
      ++evicted;
    }
    return absl::OkStatus();
  }

 private:
  struct KeyView {
    std::string_view key;
    int64_t start;
    uint16_t group;
  };
  // The index is a set of slot numbers whose hash and equality look into
  // entries_.
  struct SlotHash {
    using is_transparent = void;
    const std::vector<CacheEntry>* entries;
    size_t operator()(uint32_t slot) const { return (*entries)[slot].hash; }
    size_t operator()(const KeyView& k) const {
      return absl::HashOf(absl::string_view(k.key.data(), k.key.size()),
                          k.start, k.group);
    }
  };
  struct SlotEq {
    using is_transparent = void;
    const std::vector<CacheEntry>* entries;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t a, const KeyView& k) const {
      const CacheEntry& e = (*entries)[a];
      return e.start == k.start && e.group == k.group && e.key == k.key;
    }
    bool operator()(const KeyView& k, uint32_t a) const {
      return (*this)(a, k);
    }
  };

  std::vector<CacheEntry> entries_;
  std::vector<uint32_t> free_;
  absl::flat_hash_set<uint32_t, SlotHash, SlotEq> index_;
  size_t live_ = 0;
  size_t hand_ = 0;  // eviction clock hand
  std::vector<int64_t> horizon_;
};

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_WINDOW_CACHE_H_
