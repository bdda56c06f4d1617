#include "weir/internal/window_cache.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace weir {
namespace internal {
namespace {

// 2^10 elements a chunk, fewer for a small byte bound: a chunk of entries
// at most a sixteenth of it, and at least 16 entries.
int ChunkBits(size_t max_bytes) {
  int bits = 10;
  if (max_bytes == 0) return bits;
  while (bits > 4 && (sizeof(CacheEntry) << bits) > max_bytes / 16) --bits;
  return bits;
}

// Elements each slab reserves room for (WindowCache's constructor).
size_t SlabCapacity(size_t max_bytes, size_t max_entries) {
  size_t bound = max_entries;
  if (max_bytes != 0) bound = std::min(bound, max_bytes / sizeof(CacheEntry));
  // Slot and node numbers are 32-bit.
  return std::min<size_t>(2 * bound + 65'536, uint32_t{0xffffffff});
}

}  // namespace

WindowCache::WindowCache(size_t groups, size_t max_bytes, size_t max_entries)
    : entries_(ChunkBits(max_bytes), SlabCapacity(max_bytes, max_entries)),
      keys_(ChunkBits(max_bytes), SlabCapacity(max_bytes, max_entries)),
      index_(0, NodeHash{&keys_}, NodeEq{&keys_}),
      horizon_(groups, kMinEventTime) {}

uint32_t WindowCache::Hold(std::string_view key) {
  const size_t hash = index_.hash_function()(key);
  auto it = index_.find(key, hash);
  if (it != index_.end()) {
    ++keys_[*it].holds;
    return *it;
  }
  uint32_t node;
  if (!free_keys_.empty()) {
    node = free_keys_.back();
    free_keys_.pop_back();
  } else {
    node = static_cast<uint32_t>(keys_.Grow());
  }
  KeyNode& k = keys_[node];
  k.key.assign(key.data(), key.size());
  heap_bytes_ += HeapBytes(k.key);
  k.hash = hash;
  k.holds = 1;
  k.live = true;
  index_.insert(node);
  return node;
}

void WindowCache::FreeNode(uint32_t node) {
  KeyNode& k = keys_[node];
  index_.erase(node);
  k.live = false;
  // A free node holds no heap: a long key or window list is given back.
  heap_bytes_ -= HeapBytes(k.key) + HeapBytes(k.windows);
  if (HeapBytes(k.key) > 0) std::string().swap(k.key);
  k.key.clear();
  k.windows.clear();  // frees the heap of a long list
  free_keys_.push_back(node);
}

uint32_t WindowCache::Insert(uint32_t node, uint16_t group, const Window& w,
                             bool complete, size_t acc_words, int64_t now_ms) {
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<uint32_t>(entries_.Grow());
    entries_[slot].generation = generation_floor_;
  }
  CacheEntry& e = entries_[slot];
  e.key_node = node;
  e.start = w.start;
  e.end = w.end;
  e.group = group;
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
  e.sketch_bytes = 0;
  // A slot keeps an accumulator block it grew onto the heap when it is
  // freed, for the next entry.
  heap_bytes_ -= HeapBytes(e.acc);
  e.acc.resize(acc_words);
  heap_bytes_ += HeapBytes(e.acc);
  auto& windows = keys_[node].windows;
  heap_bytes_ -= HeapBytes(windows);
  windows.push_back(WindowRef{w.start, slot, group});
  heap_bytes_ += HeapBytes(windows);
  ++live_;
  return slot;
}

uint32_t WindowCache::Insert(uint16_t group, std::string_view key,
                             const Window& w, bool complete, size_t acc_words,
                             int64_t now_ms) {
  const uint32_t node = Hold(key);
  const uint32_t slot = Insert(node, group, w, complete, acc_words, now_ms);
  Release(node);
  return slot;
}

void WindowCache::MoveEntry(uint32_t from, uint32_t to) {
  CacheEntry& src = entries_[from];
  CacheEntry& dst = entries_[to];
  const uint32_t generation = dst.generation;
  // The free slot's spare accumulator block goes; the entry's moves.
  heap_bytes_ -= HeapBytes(dst.acc);
  dst = std::move(src);
  dst.generation = generation;
  src.live = false;
  for (WindowRef& w : keys_[dst.key_node].windows) {
    if (w.slot == from) {
      w.slot = to;
      break;
    }
  }
}

size_t WindowCache::ShrinkKeys(size_t keep_free) {
  const size_t chunk = keys_.chunk_size();
  const size_t taken = keys_.size();
  const size_t end = ShrinkEnd(
      taken, free_keys_.size(), chunk, keep_free,
      [&](size_t node) { return keys_[node].live && keys_[node].holds > 0; });
  if (end >= taken) return 0;
  std::vector<uint32_t> below = FreeBelow(free_keys_, end);
  size_t moves = 0;
  for (size_t node = end; node < taken; ++node) {
    if (!keys_[node].live) continue;
    const uint32_t to = below.back();
    below.pop_back();
    MoveNode(static_cast<uint32_t>(node), to);
    ++moves;
  }
  free_keys_ = std::move(below);
  chunks_given_back_ += (taken - end + chunk - 1) / chunk;
  keys_.ShrinkTo(end);
  return moves;
}

std::vector<uint32_t> WindowCache::FreeBelow(const std::vector<uint32_t>& free,
                                             size_t end) {
  std::vector<uint32_t> below;
  below.reserve(free.size());
  for (uint32_t i : free) {
    if (i < end) below.push_back(i);
  }
  return below;
}

void WindowCache::MoveNode(uint32_t from, uint32_t to) {
  // Out of the index while its hash is still at `from`.
  index_.erase(from);
  keys_[to] = std::move(keys_[from]);
  KeyNode& src = keys_[from];
  src.live = false;
  src.key.clear();
  src.windows.clear();
  for (const WindowRef& w : keys_[to].windows) entries_[w.slot].key_node = to;
  index_.insert(to);
}

void WindowCache::Erase(uint32_t slot) {
  CacheEntry& e = entries_[slot];
  auto& windows = keys_[e.key_node].windows;
  for (size_t i = 0; i < windows.size(); ++i) {
    if (windows[i].slot == slot) {
      windows[i] = windows.back();
      windows.pop_back();
      break;
    }
  }
  FreeNodeIfUnused(e.key_node);
  e.live = false;
  ++e.generation;
  free_.push_back(slot);
  --live_;
}

}  // namespace internal
}  // namespace weir
