// -----------------------------------------------------------------------------
// File: internal/window_cache.h
// -----------------------------------------------------------------------------
//
// The operator's write-back cache of (key, window) entries
// (docs/architecture.md, "The write-back cache"). Entries live in a slab of
// slots. The index is per key: a slab of key nodes, each holding the key
// string once and a short list of its cached windows (group, start, slot),
// and a flat hash index over node numbers. A record looks its key up once
// and finds every group's window, and a sliding window's tiles, in that
// list.
//
// - Generations: freeing a slot bumps its generation, so a `SlotRef` taken
//   before (a timer, a queued re-emission) is recognized as stale even when
//   the slot has been reused for another window.
// - Key nodes: a node lives while it lists a window or is held (`Hold`):
//   the caller holds the key it is folding into, so evicting the key's
//   last window to make room for its next one keeps the node.
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
//   weir::internal::WindowCache cache(/*groups=*/1);
//   const uint32_t node = cache.Hold(key);
//   std::optional<uint32_t> slot = cache.FindIn(node, window.start, group);
//   if (!slot) {
//     slot = cache.Insert(node, group, window,
//                         cache.CompleteInMemory(group, window.start),
//                         acc_words, now_ms);
//   }
//   cache.entry(*slot).referenced = true;
//   cache.Release(node);

#ifndef WEIR_INTERNAL_WINDOW_CACHE_H_
#define WEIR_INTERNAL_WINDOW_CACHE_H_

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
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

// A growable array of up to `capacity` elements at a fixed address: the
// address space for all of them is reserved at once, and memory is
// committed a chunk of 2^chunk_bits elements at a time as the array grows.
// Elements never move, where a vector doubles and copies (for a moment
// holding both copies, and then up to twice what it uses), and indexing is
// one multiply-add on the base, where an array of separately mapped chunks
// costs three loads more an access. Memory comes from the system, not from
// malloc, so a chunk given back (ShrinkTo) leaves the process at once
// instead of a hole in malloc's heap that later chunks cannot use.
// Reserved address space that is not committed costs no memory.
template <typename T>
class ChunkedSlab {
 public:
  ChunkedSlab(int chunk_bits, size_t capacity)
      : chunk_(size_t{1} << chunk_bits),
        capacity_(capacity),
        reserved_bytes_(PageCeil(capacity * sizeof(T))) {
    void* p = mmap(nullptr, reserved_bytes_, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) base_ = static_cast<T*>(p);
  }
  ~ChunkedSlab() {
    if (base_ == nullptr) return;
    std::destroy_n(base_, committed_);
    munmap(base_, reserved_bytes_);
  }
  ChunkedSlab(const ChunkedSlab&) = delete;
  ChunkedSlab& operator=(const ChunkedSlab&) = delete;

  // False if the address space could not be reserved: the slab then holds
  // nothing and Grow fails.
  bool reserved() const { return base_ != nullptr; }
  // Bytes of address space reserved.
  size_t reserved_bytes() const { return reserved_bytes_; }

  T& operator[](size_t i) { return base_[i]; }
  const T& operator[](size_t i) const { return base_[i]; }
  // Elements in use: indexes 0 to size() - 1.
  size_t size() const { return size_; }
  // Elements constructed (whole chunks, the last cut at the capacity): the
  // ones Grow hands out before it commits more memory.
  size_t committed() const { return committed_; }
  // Elements a chunk holds.
  size_t chunk_size() const { return chunk_; }
  // Takes the next element (default-constructed) into use; returns its
  // index. Throws std::bad_alloc past the capacity or when the system has
  // no memory, as operator new does.
  size_t Grow() {
    if (size_ == committed_) {
      const size_t next = std::min(committed_ + chunk_, capacity_);
      if (next == committed_) throw std::bad_alloc();
      const size_t from = PageCeil(committed_ * sizeof(T));
      const size_t to = PageCeil(next * sizeof(T));
      if (to > from && mprotect(reinterpret_cast<char*>(base_) + from,
                                to - from, PROT_READ | PROT_WRITE) != 0) {
        throw std::bad_alloc();
      }
      std::uninitialized_default_construct_n(base_ + committed_,
                                             next - committed_);
      committed_ = next;
    }
    return size_++;
  }
  // Gives back the chunks past the first `size` elements, which are all
  // the elements left in use. REQUIRES: `size` is a multiple of
  // chunk_size(), at most size().
  void ShrinkTo(size_t size) {
    std::destroy_n(base_ + size, committed_ - size);
    const size_t from = PageCeil(size * sizeof(T));
    const size_t to = PageCeil(committed_ * sizeof(T));
    if (to > from) {
      char* p = reinterpret_cast<char*>(base_) + from;
      // Dropped, then made inaccessible again: a later Grow finds zeroes.
      madvise(p, to - from, MADV_DONTNEED);
      mprotect(p, to - from, PROT_NONE);
    }
    committed_ = size;
    size_ = size;
  }
  // Bytes committed: the chunks taken into use, in whole pages.
  size_t AllocatedBytes() const { return PageCeil(committed_ * sizeof(T)); }

 private:
  static size_t PageCeil(size_t bytes) {
    constexpr size_t kPage = 4096;
    return (bytes + kPage - 1) / kPage * kPage;
  }

  T* base_ = nullptr;
  size_t chunk_;
  size_t capacity_;
  size_t reserved_bytes_;
  // Elements constructed: whole chunks, the last cut at the capacity.
  size_t committed_ = 0;
  size_t size_ = 0;
};

// One (key, window) of one group: 128 bytes on a 64-byte line boundary,
// so its two lines are one aligned pair. What a record touches (start,
// max_offset, the flags and the accumulators) comes first: a count's or a
// sum's fold touches the first line only.
struct alignas(64) CacheEntry {
  int64_t start = 0;
  int64_t max_offset = -1;
  uint32_t key_node = 0;  // the key's node (WindowCache::KeyOf)
  uint16_t group = 0;
  bool live : 1 = false;
  bool complete : 1 = false;    // acc includes everything the backend holds
  bool in_backend : 1 = false;  // the backend holds a copy (with timers)
  bool dirty : 1 = false;       // acc has folds the backend does not have
  bool referenced : 1 = false;  // clock bit for eviction
  bool reemit : 1 = false;      // queued for re-emission
  bool pinned : 1 = false;      // must not be evicted (a merge in progress)
  // 8-aligned accumulator block, inline up to 56 bytes (a decimal sum and
  // two sketches: F-FRAUD's hourly group).
  static constexpr size_t kInlineAccWords = 7;
  static constexpr size_t kInlineAccBytes = 8 * kInlineAccWords;
  absl::InlinedVector<uint64_t, kInlineAccWords> acc;
  // Colder fields.
  int64_t end = 0;
  int64_t touched_ms = 0;  // processing time of the last fold (TTL only)
  uint32_t generation = 0;
  // The heap its sketch accumulators held when the owner last counted
  // them; the owner keeps the total (the cache's byte bound).
  uint32_t sketch_bytes = 0;
  // Where the entry's one in-memory timer is, so freeing the entry removes
  // its reference (internal/timer_queue.h).
  TimerHandle timer;

  char* acc_data() { return reinterpret_cast<char*>(acc.data()); }
};
static_assert(sizeof(CacheEntry) == 128, "two cache lines");

// One cached window of a key, as its node lists it: enough to find a
// group's window without touching the entry.
struct WindowRef {
  int64_t start = 0;
  uint32_t slot = 0;
  uint16_t group = 0;
};

// A key with cached windows (or held).
struct KeyNode {
  std::string key;
  size_t hash = 0;  // the index's hash of key, kept for rehashing
  uint32_t holds = 0;
  bool live = false;
  absl::InlinedVector<WindowRef, 6> windows;  // unordered
};

class WindowCache {
 public:
  // `groups` window groups, each with its own spill horizon. The slabs
  // grow in chunks of 1,024 elements, or fewer when `max_bytes` (the
  // owner's byte bound, 0 if none) is small: a sixteenth of it at most.
  // They reserve address space for twice the owner's bound in entries
  // (`max_entries`, or what `max_bytes` holds if fewer) and 65,536 more,
  // for entries and key nodes each: a record may add windows past the
  // bound before eviction catches up. Check reserved().
  explicit WindowCache(size_t groups, size_t max_bytes = 0,
                       size_t max_entries = size_t{1} << 20);
  // Not copyable or movable: the index points into the slabs.
  WindowCache(const WindowCache&) = delete;
  WindowCache& operator=(const WindowCache&) = delete;

  // False if the slabs' address space could not be reserved (a limit on
  // the process's address space, RLIMIT_AS): the cache is unusable.
  bool reserved() const { return entries_.reserved() && keys_.reserved(); }
  // Bytes of address space the slabs reserved.
  size_t ReservedBytes() const {
    return entries_.reserved_bytes() + keys_.reserved_bytes();
  }

  // The node of `key`, created if absent, held until Release: it stays
  // (and its number stays valid) while held, even with no window.
  uint32_t Hold(std::string_view key);
  // Drops one hold of `node`; a node with no hold and no window is freed.
  void Release(uint32_t node) {
    --keys_[node].holds;
    FreeNodeIfUnused(node);
  }

  // The node of `key`, if it has cached windows or is held.
  std::optional<uint32_t> FindKey(std::string_view key) const {
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    return *it;
  }
  // The slot of `node`'s window of `group` starting at `start`, if cached.
  std::optional<uint32_t> FindIn(uint32_t node, int64_t start,
                                 uint16_t group) const {
    for (const WindowRef& w : keys_[node].windows) {
      if (w.start == start && w.group == group) return w.slot;
    }
    return std::nullopt;
  }
  // The slot of (key, start, group), if cached.
  std::optional<uint32_t> Find(std::string_view key, int64_t start,
                               uint16_t group) const {
    std::optional<uint32_t> node = FindKey(key);
    if (!node) return std::nullopt;
    return FindIn(*node, start, group);
  }
  bool Contains(std::string_view key, int64_t start, uint16_t group) const {
    return Find(key, start, group).has_value();
  }

  const KeyNode& node(uint32_t node) const { return keys_[node]; }
  // Starts loading the entries of `node`'s windows into the CPU cache, so
  // that the record's folds, in different slab lines, wait for memory once
  // rather than one after another.
  void Prefetch(uint32_t node) const {
    for (const WindowRef& w : keys_[node].windows) {
      const char* e = reinterpret_cast<const char*>(&entries_[w.slot]);
      __builtin_prefetch(e);
      __builtin_prefetch(e + 64);
    }
  }
  // The key of an entry. Valid while its node lives.
  std::string_view KeyOf(const CacheEntry& e) const {
    return keys_[e.key_node].key;
  }
  std::string_view KeyOf(uint32_t slot) const { return KeyOf(entries_[slot]); }

  // Takes a free slot (a freed one first) for window `w` of `node`'s key in
  // `group`: live, referenced, not dirty, no timer, max_offset -1, touched
  // at `now_ms`, with an accumulator block of `acc_words` words the caller
  // initializes. REQUIRES: `node` is held or lists a window; the window is
  // not cached.
  uint32_t Insert(uint32_t node, uint16_t group, const Window& w, bool complete,
                  size_t acc_words, int64_t now_ms);
  // The same for `key` (holds its node for the call).
  uint32_t Insert(uint16_t group, std::string_view key, const Window& w,
                  bool complete, size_t acc_words, int64_t now_ms);

  // Frees `slot`: out of its key's list (the node freed with its last window
  // unless held), generation bumped. The caller has released what the
  // accumulators own and removed its timer.
  void Erase(uint32_t slot);

  CacheEntry& entry(uint32_t slot) { return entries_[slot]; }
  const CacheEntry& entry(uint32_t slot) const { return entries_[slot]; }

  // Slots ever taken, live or free: a sweep over the cache visits entry(0)
  // to entry(slot_count() - 1).
  uint32_t slot_count() const { return static_cast<uint32_t>(entries_.size()); }

  // Live entries.
  size_t live() const { return live_; }
  // Live key nodes.
  size_t live_keys() const { return index_.size(); }
  // Bytes of the live entries and key nodes with their index slots, and
  // what the slabs hold on the heap (accumulator blocks and key strings
  // longer than their inline room, long window lists). Freed slots and
  // nodes are reused before a slab grows, so the slabs stay within the
  // peak of this figure and a chunk (SlabBytes); HeldBytes counts them as
  // they are, which is what an owner's byte bound holds to. Sketches are
  // the owner's to count (CacheEntry::sketch_bytes).
  size_t MemoryBytes() const {
    return live_ * sizeof(CacheEntry) +
           index_.size() * (sizeof(KeyNode) + kIndexBytesPerKey) + heap_bytes_;
  }
  // A 4-byte slot and its control byte, the index at most 7/8 full.
  static constexpr size_t kIndexBytesPerKey = 6;
  // What the cache holds from the system: the slabs as allocated, their
  // free slots and nodes included (they stay until ShrinkBy gives their
  // chunks back), the index at its capacity, and the slabs' heap.
  size_t HeldBytes() const {
    return SlabBytes() + index_.capacity() * (sizeof(uint32_t) + 1) +
           heap_bytes_;
  }
  // Slots of one chunk of the entry slab.
  size_t chunk_slots() const { return entries_.chunk_size(); }
  // What taking one more slot adds to HeldBytes: nothing while a freed or
  // committed slot is left, else a chunk of the entry slab.
  size_t EntryGrowthBytes() const { return GrowthBytes(entries_, free_); }
  // The same for a new key's node.
  size_t NodeGrowthBytes() const { return GrowthBytes(keys_, free_keys_); }
  // Chunks the slabs gave back (ShrinkBy, ShrinkEntries, ShrinkKeys).
  size_t chunks_given_back() const { return chunks_given_back_; }
  // Bytes of the slabs as allocated, free slots and nodes included.
  size_t SlabBytes() const {
    return entries_.AllocatedBytes() + keys_.AllocatedBytes();
  }

  SlotRef RefOf(uint32_t slot) const {
    return SlotRef{slot, entries_[slot].generation};
  }
  // True if `ref`'s slot still holds the entry it was taken for.
  bool Valid(SlotRef ref) const {
    return ref.slot < entries_.size() && entries_[ref.slot].live &&
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

  // Gives back at least `bytes` of the slabs' free memory in whole chunks,
  // entries first, then nodes, or as much as can go while each slab keeps
  // `keep_free` free elements (ShrinkEntries, ShrinkKeys); every free slot
  // and node the request leaves stays. So an owner that meets a byte
  // bound this way gives back only what the bound needs, and the slots it
  // freed by evicting stay for the windows that come next rather than
  // being given back and committed again.
  template <typename Movable, typename Moved>
  size_t ShrinkBy(size_t bytes, size_t keep_free, Movable movable,
                  Moved moved) {
    const size_t before = SlabBytes();
    const size_t moves = ShrinkEntries(
        std::max(keep_free, KeepFree(entries_, free_.size(), bytes)), movable,
        moved);
    const size_t given = before - SlabBytes();
    if (given < bytes) {
      ShrinkKeys(std::max(keep_free,
                          KeepFree(keys_, free_keys_.size(), bytes - given)));
    }
    return moves;
  }
  // Gives back the node slab's last chunks while more than `keep_free`
  // nodes and a chunk are free: their live nodes move into free nodes
  // below them, with the index and their entries updated. A chunk holding
  // a held node (Hold: its number is in use) stays, and so do the chunks
  // below it. Returns the number of nodes moved.
  size_t ShrinkKeys(size_t keep_free);

  // Gives back the entry slab's last chunks while more than `keep_free`
  // slots and a chunk are free: the live entries of those chunks move into
  // free slots below them, each under the generation of the slot it moves
  // to, with its key's window list updated. `moved(from, to)` is called
  // after each move, for the owner to point what else refers to the slot
  // (its timer) at the new one. A chunk holding an entry that must not
  // move (`movable(slot)` false) stays, and so do the chunks below it.
  // Returns the number of entries moved.
  template <typename Movable, typename Moved>
  size_t ShrinkEntries(size_t keep_free, Movable movable, Moved moved) {
    const size_t chunk = entries_.chunk_size();
    const size_t taken = entries_.size();
    const size_t end =
        ShrinkEnd(taken, free_.size(), chunk, keep_free, [&](size_t slot) {
          return entries_[slot].live && !movable(static_cast<uint32_t>(slot));
        });
    if (end >= taken) return 0;
    std::vector<uint32_t> below = FreeBelow(free_, end);
    size_t moves = 0;
    for (size_t slot = end; slot < taken; ++slot) {
      CacheEntry& from = entries_[slot];
      if (from.live) {
        const uint32_t to = below.back();
        below.pop_back();
        MoveEntry(static_cast<uint32_t>(slot), to);
        moved(static_cast<uint32_t>(slot), to);
        ++moves;
      }
      heap_bytes_ -= HeapBytes(entries_[slot].acc);
      generation_floor_ =
          std::max(generation_floor_, entries_[slot].generation + 1);
    }
    free_ = std::move(below);
    chunks_given_back_ += (taken - end + chunk - 1) / chunk;
    entries_.ShrinkTo(end);
    if (hand_ >= end) hand_ = 0;
    return moves;
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
  // The index is a set of node numbers whose hash and equality look into
  // keys_.
  struct NodeHash {
    using is_transparent = void;
    const ChunkedSlab<KeyNode>* keys;
    size_t operator()(uint32_t node) const { return (*keys)[node].hash; }
    size_t operator()(std::string_view key) const {
      return absl::HashOf(absl::string_view(key.data(), key.size()));
    }
  };
  struct NodeEq {
    using is_transparent = void;
    const ChunkedSlab<KeyNode>* keys;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t a, std::string_view k) const {
      return (*keys)[a].key == k;
    }
    bool operator()(std::string_view k, uint32_t a) const {
      return (*this)(a, k);
    }
  };

  void FreeNodeIfUnused(uint32_t node) {
    const KeyNode& k = keys_[node];
    if (k.holds == 0 && k.windows.empty()) FreeNode(node);
  }
  // Takes `node` out of the index and onto the free list.
  void FreeNode(uint32_t node);
  // Where a slab of `taken` elements, `free` of them free, ends once
  // shrunk: room for the live ones and `keep_free` more, in whole chunks
  // of `chunk`, and past the last element that must stay (`stays(i)`).
  // `taken` or more if no chunk can go.
  template <typename Stays>
  static size_t ShrinkEnd(size_t taken, size_t free, size_t chunk,
                          size_t keep_free, Stays stays) {
    const size_t live = taken - free;
    const size_t end =
        std::max((live + keep_free + chunk - 1) / chunk, size_t{1}) * chunk;
    for (size_t i = taken; i-- > end;) {
      if (stays(i)) return (i / chunk + 1) * chunk;
    }
    return end;
  }
  // The `keep_free` with which shrinking `slab`, `free` of whose elements
  // are free, gives back at least `bytes` in whole chunks; 0 (give back
  // all it can) if it has not that many free.
  template <typename T>
  static size_t KeepFree(const ChunkedSlab<T>& slab, size_t free,
                         size_t bytes) {
    const size_t chunk = slab.chunk_size();
    const size_t chunk_bytes = chunk * sizeof(T);
    const size_t drop = (bytes + chunk_bytes - 1) / chunk_bytes * chunk;
    const size_t committed = (slab.committed() + chunk - 1) / chunk * chunk;
    const size_t end = committed > drop ? committed - drop : 0;
    const size_t live = slab.size() - free;
    return end > live ? end - live : 0;
  }
  template <typename T>
  static size_t GrowthBytes(const ChunkedSlab<T>& slab,
                            const std::vector<uint32_t>& free) {
    return free.empty() && slab.size() == slab.committed()
               ? slab.chunk_size() * sizeof(T)
               : 0;
  }
  // The free elements of `free` below `end`, in their order.
  static std::vector<uint32_t> FreeBelow(const std::vector<uint32_t>& free,
                                         size_t end);
  // Moves the live entry in `from` to the free slot `to` (ShrinkEntries).
  void MoveEntry(uint32_t from, uint32_t to);
  // Moves the live node `from` to the free node `to` (ShrinkKeys).
  void MoveNode(uint32_t from, uint32_t to);
  // Heap bytes of what a slab element holds beyond its inline room.
  static size_t HeapBytes(const std::string& s) {
    return s.capacity() > std::string().capacity() ? s.capacity() + 1 : 0;
  }
  template <typename T, size_t N>
  static size_t HeapBytes(const absl::InlinedVector<T, N>& v) {
    return v.capacity() > N ? v.capacity() * sizeof(T) : 0;
  }

  ChunkedSlab<CacheEntry> entries_;
  std::vector<uint32_t> free_;
  ChunkedSlab<KeyNode> keys_;
  std::vector<uint32_t> free_keys_;
  absl::flat_hash_set<uint32_t, NodeHash, NodeEq> index_;
  size_t live_ = 0;
  size_t heap_bytes_ = 0;  // see MemoryBytes
  size_t hand_ = 0;        // eviction clock hand
  // Above every generation a slot given back by ShrinkEntries had: a slot
  // taken again starts from it, so references to the slot's earlier
  // entries stay stale.
  uint32_t generation_floor_ = 0;
  size_t chunks_given_back_ = 0;
  std::vector<int64_t> horizon_;
};

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_WINDOW_CACHE_H_
