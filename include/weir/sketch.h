// -----------------------------------------------------------------------------
// File: sketch.h
// -----------------------------------------------------------------------------
//
// Three mergeable sketches with versioned, checksummed encodings, the state
// of approximate aggregators such as `distinct_merchants_1h` and
// `amount_p99_1h`:
//
//   - `HyperLogLog` estimates the number of distinct values.
//   - `QuantileHistogram` estimates quantiles within a relative error on the
//     value; its state depends only on the multiset of values added. The
//     `kQuantile` aggregator keeps one.
//   - `QuantileSketch` (KLL) estimates ranks and quantiles of a stream of
//     doubles within a rank error; its state depends on the order of merges.
//
// All are plain values: copyable, movable, no shared state. All are exactly
// DETERMINISTIC: the same input sequence gives byte-equal `Serialize` output
// on every run, process and (little- or big-endian) platform, so a replay
// from a checkpoint rebuilds the same state. HyperLogLog and
// QuantileHistogram are more: ORDER-FREE, the same multiset of values gives
// the same bytes however it was ordered, split and merged.
//
// HyperLogLog
// -----------
// Flajolet, Fusy, Gandouet, Meunier, "HyperLogLog: the analysis of a
// near-optimal cardinality estimation algorithm", 2007, with a sparse mode
// in the style of Heule, Nunkesser, Hall, "HyperLogLog in Practice", 2013
// (HLL++), and the estimator of Ertl, "New cardinality estimation algorithms
// for HyperLogLog sketches", 2017 (the "improved estimator", which needs no
// empirical bias tables and covers small and large cardinalities alike).
//
//   - Hashing: every value becomes a 64-bit hash. `Add(std::string_view)`
//     uses XXH64 with seed 0 (`XxHash64` below; `XxHash64("abc") ==
//     0x44BC2CF5AD770999`); `Add(int64_t)` hashes the value's 8 bytes in
//     little-endian order; `Add(double)` hashes the 8 little-endian bytes of
//     its IEEE-754 representation after mapping -0.0 to +0.0 and every NaN to
//     the one quiet NaN 0x7FF8000000000000. So `Add(int64_t{5})`,
//     `Add(5.0)` and `Add("5")` are three different values. `AddHash` takes a
//     64-bit hash the caller computed; it must be a good 64-bit hash (every
//     bit uniform), and the same function everywhere the sketches are merged.
//   - Precision p in [4, 18] (default 14): m = 2^p registers. For p >= 8
//     the relative standard error of `Estimate()` is about 1.04 / sqrt(m)
//     (`StandardError(p)`: 0.81% at p = 14, 0.41% at p = 16; measured
//     1.00-1.07 / sqrt(m)), and an estimate is within 3 standard errors
//     (2.44% at p = 14) with probability > 99%. Below p = 8 the estimator
//     is biased upwards and noisier (measured at p = 4: +7% bias, 1.22 /
//     sqrt(m)). Hash collisions add no visible error below about 2^40
//     distinct values.
//   - Sparse mode: a new sketch keeps one 32-bit entry per occupied register
//     of a finer sketch with 2^25 registers (index and rank), sorted by index.
//     While it is sparse the estimate is the same estimator applied at
//     precision 25 (standard error about 0.02%): counts up to a few thousand
//     are off by at most a few units, typically exact. It turns dense when it
//     holds more than min(m / 4, 4096) entries, i.e. before it would outgrow
//     the dense form. The first kInlineSparseEntries (6) entries live inside
//     the object (64 bytes, no heap); serialized, an entry takes about 3-5
//     bytes: a 1-value sketch is 14 bytes, a 5-value one 31. A list of 16
//     entries or more takes a new entry at its end and sorts such entries
//     in once they are more than 8 and more than a quarter of the list (or
//     the list would pass its limit): a binary search of a list out of the
//     CPU's cache waits for memory at most of its steps, an append at one.
//     Every read (Estimate, Serialize, Merge) sees the sorted list; a const
//     one sorts a copy.
//   - Dense mode: m one-byte registers (16 KiB at p = 14); serialized 6 bits
//     per register, 3m / 4 + 8 bytes (12 KiB at p = 14). The dense form a
//     sparse sketch turns into equals the form the same hashes would have
//     built directly: the fine entries carry every bit a register needs.
//   - Merge is a register-wise maximum (union for sparse entries), so the
//     state depends only on the SET of hashes added, never on their order,
//     duplicates, or how the input was split and merged: Merge is
//     commutative and associative down to byte-equal serializations, and
//     merging two halves equals adding everything into one sketch.
//
// QuantileSketch (KLL)
// --------------------
// Karnin, Lang, Liberty, "Optimal Quantile Approximation in Streams", 2016,
// with the level capacities and lazy compaction of Apache DataSketches' KLL
// sketch (capacity of the level at depth d below the top: max(8,
// round(k * (2/3)^d)); one level is compacted when the sketch is full).
//
//   - Rank error: for a sketch of n values with parameter k (default 200,
//     range [8, 65535]), the normalized rank error of `Rank(x)` and of the
//     true rank of `Quantile(q)` is at most `RankErrorBound(k)` = 2.296 /
//     k^0.9723 (2.6% at k = 100, 1.33% at k = 200, 0.68% at k = 400) with
//     99% confidence, over all queries at once. That is the 99th percentile
//     of the maximum rank error measured by DataSketches for this algorithm,
//     and it holds for merged sketches (same k) too. The
//     bound is on RANK, not on value: the p99 of a heavy-tailed stream is a
//     value whose true rank lies in [0.99 - eps, 0.99 + eps].
//   - Exact while small: up to k values nothing is compacted; `Rank` and
//     `Quantile` are then exact, and memory is one double per value (a
//     handful of values costs a handful of doubles; the first two live
//     inside the 88-byte object, no heap). Serialized, such a sketch is 13
//     bytes plus its values (its min and max are its values).
//   - Memory: about 3k + 8 * log2(n / k) retained doubles at most (614 at
//     k = 200 for n = 10^6: about 9 KiB in memory, 5 KiB serialized);
//     `Serialize` writes at most 8 bytes per retained value plus at most
//     about 60 bytes (min and max only once the sketch has compacted).
//     When every retained value is an integer divided by 10^s, s <= 6 (an
//     amount with two decimals, converted from its decimal), the values are
//     written as varints of those integers (sorted levels as differences):
//     2-3 bytes for an amount up to 1000.00, bit-exact on restore.
//   - Randomness: each compaction keeps the odd or the even half of a sorted
//     level, chosen by one bit of SplitMix64 applied to a per-sketch
//     compaction counter (starting at a fixed seed). The counter is part of
//     the serialized state, so the same input sequence always gives the
//     same sketch, restored or not. Merge continues the counter of the
//     sketch merged into; a different merge ORDER may give a different
//     sketch, each within the error bound.
//   - NaN values are ignored (not counted); -0.0 is stored as +0.0;
//     infinities are ordinary values.
//
// QuantileHistogram
// -----------------
// A quantile sketch with a bound on the error of the VALUE it returns, whose
// state is a function of the multiset of values added alone: the order of
// the values and how the input was split and merged change nothing, down to
// byte-equal serializations. It is what the `kQuantile` aggregator keeps, so
// that a p99 computed by a run that was killed and restored, spilled its
// cache or merged partials at other moments equals the uninterrupted run's.
// In the style of DDSketch (Masson, Rim, Lee, "DDSketch: a fast and
// fully-mergeable quantile sketch with relative-error guarantees", VLDB
// 2019), with buckets cut from a value's IEEE-754 bits by integer arithmetic
// instead of a logarithm, so every platform puts a value in the same bucket.
//
//   - Exact while small: up to kExactValues (32) values it keeps the values
//     themselves, and `Quantile` is exact. They are appended as they come
//     and sorted when read (a const read sorts a copy).
//   - Buckets: beyond that, a value x goes to a bucket by its sign, its
//     binary exponent e and the first M = ceil(1 / (2 * relative_error))
//     equal parts of [2^e, 2^(e+1)) (50 parts at the default relative error
//     of 1%). A bucket counts its values; `Quantile` returns the middle of
//     the bucket holding the value of the rank asked for, clamped to
//     [min(), max()]. The middle of [a, a * (1 + 1/M)) is within 1 / (2M)
//     of every value in it, relatively: `Quantile(q)` is within
//     relative_error of the exact quantile (the value x_i of the smallest
//     rank i with i / n >= q), whatever the distribution. A bucket takes
//     16 bytes in memory and about 2-4 serialized; amounts from 0.01 to
//     10^6 fill at most 27 binades, 1,350 buckets at 1%. As HyperLogLog's
//     sparse list, 16 buckets or more take a new value as a bucket of its
//     own at their end, merged in with others later.
//   - Values of magnitude below 2^-1022 (subnormals) count as 0; NaN and
//     infinities are ignored (the aggregators refuse them before); -0.0 is
//     +0.0.
//   - Bounded: each sign covers at most kMaxBinades (128) binades, a ratio
//     of 3 * 10^38 between its largest and smallest magnitude (128 * M
//     buckets). Beyond that the buckets of the smallest magnitudes are
//     folded into one, whose values lose the error bound; the fold is a
//     function of the largest magnitude, so it keeps the state order-free.
//   - Merge needs the same M; merging is adding counts (values, while both
//     are small): commutative and associative, byte for byte.
//
// Encodings: byte 0 is a type tag ('H', 'Q' or 'R'), byte 1 the encoding
// version (HyperLogLog and KLL: 2; version 1 wrote dense registers one byte
// each, and a KLL's values as doubles with its min and max; it still
// restores. QuantileHistogram: 1), and the last 4 bytes a CRC-32C of
// everything before them. Deserialize returns kDataLoss for truncated,
// corrupt or inconsistent bytes and kFailedPrecondition for an encoding
// version this build does not read. A sketch restored from either version
// serializes to the bytes a sketch built from the same input writes.
//
// Threading: not thread-safe; one thread uses an instance (const methods
// may run concurrently with each other). Starts no threads.
//
// Example:
//   weir::HyperLogLog merchants;  // p = 14
//   merchants.Add(std::string_view("m-1042"));
//   WEIR_RETURN_IF_ERROR(merchants.Merge(other_partition));
//   double distinct = merchants.Estimate();
//
//   WEIR_ASSIGN_OR_RETURN(weir::QuantileSketch amounts,
//                         weir::QuantileSketch::Create(200));
//   amounts.Add(129.95);
//   WEIR_ASSIGN_OR_RETURN(double p99, amounts.Quantile(0.99));
//
//   std::string bytes;
//   amounts.Serialize(&bytes);
//   WEIR_ASSIGN_OR_RETURN(weir::QuantileSketch restored,
//                         weir::QuantileSketch::Deserialize(bytes));

#ifndef WEIR_SKETCH_H_
#define WEIR_SKETCH_H_

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace weir {

// XXH64 (Yann Collet's xxHash, 64-bit variant) of `data`: a fixed,
// platform-independent hash. XxHash64("") == 0xEF46DB3751D8E999.
uint64_t XxHash64(std::string_view data, uint64_t seed = 0);

class HyperLogLog {
 public:
  static constexpr int kMinPrecision = 4;
  static constexpr int kMaxPrecision = 18;
  static constexpr int kDefaultPrecision = 14;
  // The precision of the sparse mode's entries.
  static constexpr int kSparsePrecision = 25;
  // Sparse entries held inside the object, without a heap allocation.
  static constexpr size_t kInlineSparseEntries = 6;
  // The encoding version Serialize writes; Deserialize reads every version
  // from 1 to it.
  static constexpr uint8_t kEncodingVersion = 2;

  // An empty sketch with precision kDefaultPrecision.
  HyperLogLog();

  // An empty sketch with `precision` in [kMinPrecision, kMaxPrecision];
  // kInvalidArgument otherwise.
  static absl::StatusOr<HyperLogLog> Create(int precision);

  // The relative standard error of Estimate() for a precision p:
  // 1.04 / sqrt(2^p).
  static double StandardError(int precision);

  // Adds one value (see the file comment for how each type is hashed).
  void Add(std::string_view value) { AddHash(XxHash64(value)); }
  void Add(const char* value) { Add(std::string_view(value)); }
  void Add(int64_t value);
  void Add(double value);
  // Other integer types hash as their int64_t value.
  template <std::integral T>
  requires(!std::same_as<T, int64_t>) void Add(T value) {
    Add(static_cast<int64_t>(value));
  }

  // Adds a value by its 64-bit hash.
  void AddHash(uint64_t hash);

  // Folds `other` into this sketch: afterwards this sketch is the sketch of
  // the union of both inputs. kInvalidArgument if the precisions differ.
  absl::Status Merge(const HyperLogLog& other);

  // The estimated number of distinct values added (0 for an empty sketch).
  double Estimate() const;
  // Estimate() of a sketch, of any precision, to which only `hash` was
  // added (one value, maybe several times): the same double, from a table
  // of the 40 ranks a sparse entry can have, without building the sketch.
  static double EstimateOfOneHash(uint64_t hash);

  int precision() const { return precision_; }
  bool is_sparse() const { return dense_.empty(); }

  // Appends the encoding (version kEncodingVersion) to `*out`.
  void Serialize(std::string* out) const;
  // Reads any encoding version from 1 to kEncodingVersion.
  static absl::StatusOr<HyperLogLog> Deserialize(std::string_view bytes);

  // Heap and inline bytes this sketch holds.
  size_t MemoryBytes() const;

 private:
  explicit HyperLogLog(int precision) : precision_(precision) {}

  size_t SparseLimit() const;
  void ToDense();
  void FoldSparseEntry(uint32_t entry);
  // Sorts the entries added since the last call into the sorted ones, one
  // per index, and turns the sketch dense if they are then too many.
  void Normalize();
  // This sketch, normalized: itself, or `*copy` made normalized.
  const HyperLogLog& Normalized(std::optional<HyperLogLog>* copy) const;

  int precision_;
  // sparse_[0, sorted_) is sorted, one entry per index; the entries after
  // it were added since, in arrival order (Normalize).
  uint32_t sorted_ = 0;
  // Sparse mode: entries (index << 6) | rank at kSparsePrecision; the first
  // kInlineSparseEntries need no heap. Empty in dense mode.
  absl::InlinedVector<uint32_t, kInlineSparseEntries> sparse_;
  // Dense mode: 2^precision_ registers. Empty in sparse mode.
  std::vector<uint8_t> dense_;
};

class QuantileSketch {
 public:
  static constexpr int kMinK = 8;
  static constexpr int kMaxK = 65535;
  static constexpr int kDefaultK = 200;
  // The encoding version Serialize writes; Deserialize reads every version
  // from 1 to it.
  static constexpr uint8_t kEncodingVersion = 2;

  // An empty sketch with k = kDefaultK.
  QuantileSketch();

  // An empty sketch with `k` in [kMinK, kMaxK]; kInvalidArgument otherwise.
  // Larger k: smaller rank error, proportionally more memory.
  static absl::StatusOr<QuantileSketch> Create(int k);

  // The normalized rank error bound for `k` (see the file comment):
  // 2.296 / k^0.9723.
  static double RankErrorBound(int k);

  // Adds one value. NaN is ignored; -0.0 is added as +0.0.
  void Add(double value);

  // Folds `other` into this sketch: afterwards it summarizes both inputs.
  // kInvalidArgument if the k differ.
  absl::Status Merge(const QuantileSketch& other);

  // The estimated q-quantile: the smallest retained value whose estimated
  // Rank is >= q; q = 0 gives min() and q = 1 gives max().
  // kInvalidArgument if q is not in [0, 1]; kFailedPrecondition if empty.
  absl::StatusOr<double> Quantile(double q) const;

  // The estimated fraction of values <= x, in [0, 1]; 0 when empty.
  double Rank(double x) const;

  // Number of values added (merged sketches included; NaNs excluded).
  uint64_t count() const { return n_; }
  // The smallest and largest values added; nullopt when empty.
  std::optional<double> min() const;
  std::optional<double> max() const;

  int k() const { return k_; }
  // Number of values the sketch keeps.
  size_t num_retained() const;

  // Appends the encoding (version kEncodingVersion) to `*out`.
  void Serialize(std::string* out) const;
  // Reads any encoding version from 1 to kEncodingVersion.
  static absl::StatusOr<QuantileSketch> Deserialize(std::string_view bytes);

  // Heap and inline bytes this sketch holds.
  size_t MemoryBytes() const;

 private:
  explicit QuantileSketch(int k) : k_(k) {}

  size_t LevelCapacity(size_t level, size_t num_levels) const;
  size_t TotalCapacity(size_t num_levels) const;
  // Recomputes retained_ and capacity_ from levels_.
  void LevelsChanged();
  bool NextBit();
  void CompactLevel(size_t level);
  void CompressAfterMerge();
  // All retained values in order with their weights.
  std::vector<std::pair<double, uint64_t>> SortedView() const;

  // The values of one level; the first kInlineValues need no heap.
  static constexpr size_t kInlineValues = 2;
  using Level = absl::InlinedVector<double, kInlineValues>;

  int k_;
  uint64_t n_ = 0;
  double min_ = 0;
  double max_ = 0;
  // Number of compactions so far: the state of the random bit stream.
  uint64_t compactions_ = 0;
  // Values in levels_, and TotalCapacity(levels_.size()); derived state.
  size_t retained_ = 0;
  size_t capacity_ = 0;
  // levels_[h] holds values of weight 2^h; levels_[0] is unsorted, the
  // others sorted ascending. Empty only before the first value. A sketch
  // with one level has never been compacted: it holds every value.
  absl::InlinedVector<Level, 1> levels_;
};

class QuantileHistogram {
 public:
  static constexpr double kDefaultRelativeError = 0.01;
  // relative_error's range: M from 5,000 down to 2.
  static constexpr double kMinRelativeError = 1e-4;
  static constexpr double kMaxRelativeError = 0.25;
  // Values kept as they are before the sketch turns to buckets.
  static constexpr size_t kExactValues = 32;
  // Binades each sign covers at most (kMaxBinades * M buckets).
  static constexpr int kMaxBinades = 128;
  // The encoding version Serialize writes.
  static constexpr uint8_t kEncodingVersion = 1;

  // An empty sketch with kDefaultRelativeError.
  QuantileHistogram();

  // An empty sketch whose quantiles are within `relative_error` (in
  // [kMinRelativeError, kMaxRelativeError]) of the exact ones;
  // kInvalidArgument otherwise.
  static absl::StatusOr<QuantileHistogram> Create(double relative_error);

  // M for `relative_error`: ceil(1 / (2 * relative_error)), clamped to the
  // range Create accepts. Create(0.5 / M) has M buckets per binade again.
  static int BucketsPerBinade(double relative_error);

  // Adds one value. NaN and infinities are ignored; -0.0 is added as +0.0.
  void Add(double value);

  // Folds `other` into this sketch: afterwards it is the sketch of both
  // inputs. kInvalidArgument if their bucket widths (relative errors)
  // differ.
  absl::Status Merge(const QuantileHistogram& other);

  // The estimated q-quantile: within relative_error() of x_i, the i-th
  // smallest value for the smallest i with i / count() >= q (exact while
  // the sketch holds its values); q = 0 gives min(), q = 1 max().
  // kInvalidArgument if q is not in [0, 1]; kFailedPrecondition if empty.
  absl::StatusOr<double> Quantile(double q) const;

  // Number of values added (merged sketches included; NaN and infinities
  // excluded).
  uint64_t count() const { return n_; }
  // The smallest and largest values added; nullopt when empty.
  std::optional<double> min() const;
  std::optional<double> max() const;

  // The bound on Quantile's relative error: 1 / (2M).
  double relative_error() const { return 0.5 / parts_; }
  // Whether the sketch holds its values (count() <= kExactValues).
  bool is_exact() const { return n_ <= kExactValues; }
  // Buckets in use (0 while exact).
  size_t num_buckets() const;

  // Appends the encoding (version kEncodingVersion) to `*out`.
  void Serialize(std::string* out) const;
  static absl::StatusOr<QuantileHistogram> Deserialize(std::string_view bytes);

  // Heap and inline bytes this sketch holds.
  size_t MemoryBytes() const;

 private:
  struct Bucket {
    int32_t key;  // sign * (1 + (biased exponent - 1) * M + part); 0 for 0
    uint64_t count;
  };

  explicit QuantileHistogram(int parts) : parts_(parts) {}

  int32_t KeyOf(double value) const;
  double ValueOf(int32_t key) const;
  void AddToBucket(int32_t key, uint64_t count);
  // Moves the values into buckets.
  void ToBuckets();
  // Folds the smallest magnitudes of a sign that has too many buckets.
  // REQUIRES: normalized.
  void Bound();
  // Whether the values or buckets added since the last Normalize are
  // sorted in.
  bool normalized() const;
  // Sorts the values added since the last call in with the others: while
  // exact, into the sorted values; after, into the buckets, then Bound.
  void Normalize();
  // This sketch, normalized: itself, or `*copy` made normalized.
  const QuantileHistogram& Normalized(
      std::optional<QuantileHistogram>* copy) const;

  int32_t parts_;  // M: buckets per binade
  // While exact, values_[0, sorted_) is sorted; after, buckets_[0,
  // sorted_) is normalized and each bucket after it holds one value. The
  // values after sorted_ were added since (Normalize).
  uint32_t sorted_ = 0;
  uint64_t n_ = 0;
  double min_ = 0;
  double max_ = 0;
  // While n_ <= kExactValues: the values. Empty after.
  absl::InlinedVector<double, 2> values_;
  // After: buckets sorted by key, which is value order; none empty; one
  // per key.
  std::vector<Bucket> buckets_;
};

}  // namespace weir

#endif  // WEIR_SKETCH_H_
