// -----------------------------------------------------------------------------
// File: heavy_hitters.h
// -----------------------------------------------------------------------------
//
// `HeavyHitters` finds the most frequent keys of a stream in bounded memory
// with the Space-Saving algorithm (Metwally, Agrawal, El Abbadi, "Efficient
// Computation of Frequent and Top-k Elements in Data Streams", 2005): it
// monitors at most `capacity` (k) keys, each with a count and an error.
// A new key that finds the table full takes the place of the key with the
// smallest count and inherits that count as its error.
//
// Guarantees, for a stream of total weight N (the sum of all weights added,
// merged streams included):
//   - For every reported key: count - error <= true count <= count.
//   - error <= min_count() <= N / k.
//   - Every key whose true count is > N / k is monitored, so `Top(k)`
//     contains it. More generally, a key with true count > min_count() is
//     monitored, and an unmonitored key's true count is <= min_count().
// Top(n) orders by estimated count; a key whose `count - error` exceeds the
// `count` of every key after it is certainly ranked correctly.
//
// Cost: O(log k) per Add (a min-heap over the counts plus a hash map from
// key to entry); memory O(k) keys. Merge is O(k log k).
//
// Merging (per-partition sketches into one) follows the mergeable-summaries
// construction (Agarwal et al., "Mergeable Summaries", 2012): a key missing
// from a full sketch is taken to have that sketch's minimum count (its
// largest possible true count) as both count and error, counts and errors
// are added, and the k largest counts are kept. The result keeps every
// guarantee above with N = N1 + N2.
//
// Threading: not thread-safe; one thread (the processing thread) uses an
// instance. Starts no threads.
//
// Example:
//   weir::HeavyHitters hot(1000);
//   for (const Record& r : batch) hot.Add(r.key);
//   for (const weir::HeavyHitter& h : hot.Top(10)) {
//     // h.key, h.count (upper bound), h.count - h.error (lower bound)
//   }

#ifndef WEIR_HEAVY_HITTERS_H_
#define WEIR_HEAVY_HITTERS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"

namespace weir {

// One monitored key: its estimated count (an upper bound of the true count)
// and the estimate's largest possible overcount.
struct HeavyHitter {
  std::string key;
  uint64_t count = 0;
  uint64_t error = 0;

  // The smallest possible true count.
  uint64_t lower_bound() const { return count - error; }
};

class HeavyHitters {
 public:
  // Monitors at most `capacity` keys; a capacity of 0 is treated as 1.
  // Guarantees scale as N / capacity.
  explicit HeavyHitters(size_t capacity);

  HeavyHitters(const HeavyHitters& other);
  HeavyHitters& operator=(const HeavyHitters& other);
  HeavyHitters(HeavyHitters&&) noexcept = default;
  HeavyHitters& operator=(HeavyHitters&&) noexcept = default;

  // Counts `weight` occurrences of `key`. A weight of 0 is ignored.
  void Add(std::string_view key, uint64_t weight = 1);

  // The `n` keys with the largest estimated counts, largest first (ties by
  // key), at most size() of them.
  std::vector<HeavyHitter> Top(size_t n) const;

  // The estimate for `key` if it is monitored, otherwise nullopt (its true
  // count is then at most min_count()).
  std::optional<HeavyHitter> Find(std::string_view key) const;

  // Folds `other` (a sketch of another part of the stream, e.g. another
  // partition) into this one. kInvalidArgument if the capacities differ:
  // the N / k guarantee needs equal k.
  absl::Status Merge(const HeavyHitters& other);

  // The smallest count among monitored keys when the table is full, else 0:
  // the largest possible true count of an unmonitored key.
  uint64_t min_count() const;

  size_t capacity() const { return capacity_; }
  // Number of monitored keys (<= capacity()).
  size_t size() const { return heap_.size(); }
  // N: the total weight added, merged sketches included.
  uint64_t total_weight() const { return total_weight_; }

  void Clear();

 private:
  struct Entry {
    uint64_t count = 0;
    uint64_t error = 0;
    size_t heap_index = 0;
  };
  using Map = absl::node_hash_map<std::string, Entry>;
  using Node = Map::value_type;

  void SiftUp(size_t i);
  void SiftDown(size_t i);
  void Swap(size_t a, size_t b);
  void Rebuild();  // heap_ from entries_

  size_t capacity_;
  uint64_t total_weight_ = 0;
  // Nodes are stable in a node_hash_map, so the heap points into it.
  Map entries_;
  // A min-heap on count of pointers into entries_.
  std::vector<Node*> heap_;
};

}  // namespace weir

#endif  // WEIR_HEAVY_HITTERS_H_
