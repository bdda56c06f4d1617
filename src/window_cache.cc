#include "weir/internal/window_cache.h"

namespace weir {
namespace internal {

WindowCache::WindowCache(size_t groups, size_t reserve)
    : index_(0, SlotHash{&entries_}, SlotEq{&entries_}),
      horizon_(groups, kMinEventTime) {
  entries_.reserve(reserve);
}

uint32_t WindowCache::Insert(uint16_t group, std::string_view key,
                             const Window& w, bool complete, size_t hash,
                             size_t acc_words, int64_t now_ms) {
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  CacheEntry& e = entries_[slot];
  e.key.assign(key.data(), key.size());
  e.start = w.start;
  e.end = w.end;
  e.group = group;
  e.hash = hash;
  e.max_offset = -1;
  e.touched_ms = now_ms;
  e.live = true;
  e.complete = complete;
  e.in_backend = false;
  e.dirty = false;
  e.referenced = true;
  e.reemit = false;
  e.pinned = false;
  e.timer.set = false;
  e.acc.resize(acc_words);
  index_.insert(slot);
  ++live_;
  return slot;
}

void WindowCache::Erase(uint32_t slot) {
  CacheEntry& e = entries_[slot];
  index_.erase(slot);
  e.live = false;
  ++e.generation;
  e.key.clear();
  free_.push_back(slot);
  --live_;
}

}  // namespace internal
}  // namespace weir
