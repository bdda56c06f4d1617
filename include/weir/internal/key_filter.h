// -----------------------------------------------------------------------------
// File: internal/key_filter.h
// -----------------------------------------------------------------------------
//
// A Bloom filter over keys' 64-bit hashes, for questions of the form "can
// this key have written X?" asked far more often than X is written: a
// "no" is certain, a "maybe" is wrong about 1% of the time at 100,000 keys
// (each key sets four bits of one 64-bit word, so a test is one load) at
// its largest size, 128 KiB. Its size, a power of two from 1 KiB, is chosen
// when it is made; past a few hundred thousand keys at the largest size,
// or fewer at a smaller one, it answers "maybe" more often, which costs
// its user work, never correctness.
//
// The operator keeps one per sliding-window tile start, of the keys whose
// tile of that start was spilled, so that merging a key's tiles reads only
// the ones that can be in the backend (docs/architecture.md).
//
// Threading: not thread-safe.
//
// Example:
//   weir::internal::KeyFilter filter;
//   filter.Add(absl::HashOf(key));
//   if (filter.MayContain(absl::HashOf(other))) ...  // read it

#ifndef WEIR_INTERNAL_KEY_FILTER_H_
#define WEIR_INTERNAL_KEY_FILTER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace weir {
namespace internal {

class KeyFilter {
 public:
  // Sizes a filter can have: powers of two between these.
  static constexpr size_t kMinBytes = size_t{1} << 10;
  static constexpr size_t kMaxBytes = size_t{1} << 17;

  // A filter of the largest size allowed that is at most `bytes`.
  explicit KeyFilter(size_t bytes = kMaxBytes) {
    bytes = std::clamp(bytes, kMinBytes, kMaxBytes);
    int bits = 0;  // log2 of the words
    while ((sizeof(uint64_t) << (bits + 1)) <= bytes) ++bits;
    shift_ = 64 - bits;
    words_.resize(size_t{1} << bits);
  }

  size_t bytes() const { return words_.size() * sizeof(uint64_t); }

  void Add(uint64_t hash) { words_[Word(hash)] |= Mask(hash); }
  // False only if no hash equal to `hash` was added.
  bool MayContain(uint64_t hash) const {
    const uint64_t mask = Mask(hash);
    return (words_[Word(hash)] & mask) == mask;
  }

 private:
  // The top bits choose the word (14 at the largest size); four 6-bit
  // fields of the low bits its bits.
  size_t Word(uint64_t hash) const { return hash >> shift_; }
  static uint64_t Mask(uint64_t hash) {
    return (uint64_t{1} << (hash & 63)) | (uint64_t{1} << ((hash >> 6) & 63)) |
           (uint64_t{1} << ((hash >> 12) & 63)) |
           (uint64_t{1} << ((hash >> 18) & 63));
  }

  int shift_ = 50;
  std::vector<uint64_t> words_;
};

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_KEY_FILTER_H_
