// -----------------------------------------------------------------------------
// File: aggregate.h
// -----------------------------------------------------------------------------
//
// Mergeable aggregators. Each folds values into a small fixed-size
// accumulator with four operations:
//   Init    an empty accumulator
//   Add     fold one value (with its event time and source offset)
//   Merge   fold another accumulator of the same kind into this one
//   Result  the feature value
// and a versioned byte encoding. Merge makes partial aggregation possible:
// the operator's write-back cache folds records into partials and merges
// them with what the state backend holds only when a window fires. The merge
// law holds for every kind: splitting the values into parts, adding each
// part to its own accumulator and merging the parts gives the same result as
// adding everything to one. Exactly, bit for bit, for count, decimal sum,
// min, max, first, last, distinct count and quantile, and for sum and mean
// of integers and decimals with at most `decimal_scale` places (amounts);
// within floating-point rounding for sum and mean of other numbers, and for
// variance. So a feature of the exact kinds has the same value however its
// partials were merged: after a restore, a cache spill or a backfill.
//
// Kinds:
//   kCount       number of values (or of records, with no field); int64
//   kSum         exact 128-bit sum at `decimal_scale` places for integers
//                and decimals it holds, compensated (Neumaier) double sum
//                for other numbers; double
//   kDecimalSum  exact fixed-point sum at `decimal_scale` places, 128-bit,
//                independent of order; decimal (double beyond int64 units)
//   kMin, kMax   double; null when nothing was added
//   kMean        kSum's sum / count; double; null when empty
//   kVariance    population variance (Welford, merged with Chan's formula)
//   kStddev      its square root
//   kFirst       value with the smallest (event time, offset); double
//   kLast        value with the largest (event time, offset); double
//   kDistinctCount  HyperLogLog estimate of the number of distinct values
//                (precision `hll_precision`; see sketch.h for the error
//                bound); int64. Merging is exact (register-wise max).
//   kQuantile    the `quantile` of the values, from a QuantileHistogram
//                (sketch.h): exact up to 32 values, then within
//                `quantile_relative_error` of the exact value; order-free;
//                double; null when empty.
//
// The two sketch kinds hold their first value inside the accumulator and
// keep a heap sketch once a second value arrives: an accumulator of theirs
// must be released with Destroy().
//
// Null policy: kSkip ignores null values (count counts non-null values);
// kZero folds a null as 0.
//
// Threading: an Aggregator is immutable after Create and safe to share.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(weir::Aggregator sum,
//       weir::Aggregator::Create(weir::AggregateKind::kDecimalSum, {}));
//   std::string a(sum.state_size(), '\0'), b(sum.state_size(), '\0');
//   sum.Init(a.data()); sum.Init(b.data());
//   WEIR_RETURN_IF_ERROR(sum.Add(a.data(), weir::Value::Dec(1234, 2), t, 0));
//   WEIR_RETURN_IF_ERROR(sum.Add(b.data(), weir::Value::Dec(1, 2), t, 1));
//   sum.Merge(a.data(), b.data());
//   sum.Result(a.data());  // 12.35

#ifndef WEIR_AGGREGATE_H_
#define WEIR_AGGREGATE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/record.h"
#include "weir/time.h"

namespace weir {

// Stored in state encodings: never renumber.
enum class AggregateKind : uint8_t {
  kCount = 1,
  kSum = 2,
  kDecimalSum = 3,
  kMin = 4,
  kMax = 5,
  kMean = 6,
  kVariance = 7,
  kStddev = 8,
  kFirst = 9,
  kLast = 10,
  kDistinctCount = 11,
  kQuantile = 12,
};

const char* AggregateKindName(AggregateKind kind);  // "count", "sum", ...

enum class NullPolicy : uint8_t {
  kSkip,  // a null value is not folded
  kZero,  // a null value is folded as 0
};

struct AggregatorOptions {
  NullPolicy null_policy = NullPolicy::kSkip;

  // Decimal places kept by kDecimalSum. A value with more places that are
  // not zero is refused (kInvalidArgument), never rounded.
  // Default: 2 (cents). REQUIRES: 0 <= decimal_scale <= 18.
  int32_t decimal_scale = 2;

  // kQuantile: which quantile, in [0, 1]. Default: 0.5
  double quantile = 0.5;

  // kDistinctCount: HyperLogLog precision (4..18); standard error
  // 1.04 / sqrt(2^p). Larger: more accurate, more memory once dense
  // (2^p bytes). Default: 14
  int32_t hll_precision = 14;

  // kQuantile: the bound on the relative error of the value returned
  // (QuantileHistogram, sketch.h), in [1e-4, 0.25]. Smaller: more buckets.
  // Default: 0.01
  double quantile_relative_error = 0.01;

  absl::Status Validate() const;
};

class Aggregator {
 public:
  // Current version of the per-accumulator encoding. Version 2 added the
  // exact part of sum and mean and replaced the quantile's KLL sketch by a
  // QuantileHistogram; a version 1 sum or mean restores, a version 1
  // quantile is refused (kFailedPrecondition).
  static constexpr uint8_t kEncodingVersion = 2;

  static absl::StatusOr<Aggregator> Create(AggregateKind kind,
                                           const AggregatorOptions& options);

  AggregateKind kind() const { return kind_; }
  const AggregatorOptions& options() const { return options_; }

  // Bytes of one accumulator (a multiple of 8; accumulators are 8-aligned).
  size_t state_size() const;

  void Init(char* acc) const;

  // Folds `value`. Fails with kInvalidArgument, leaving `acc` unchanged,
  // for a value of the wrong type (a string into a sum, a double into an
  // exact decimal sum) or a decimal with more places than decimal_scale.
  // kCount accepts any value.
  absl::Status Add(char* acc, const Value& value, EventTime time,
                   int64_t offset) const;

  // Folds `other` (an accumulator of this aggregator) into `acc`.
  void Merge(char* acc, const char* other) const;

  Value Result(const char* acc) const;

  // Appends kind, version and the accumulator to `out`.
  void Encode(const char* acc, std::string* out) const;

  // Reads what Encode wrote from the front of `*in` and advances it. Fails
  // with kFailedPrecondition if it was written by another kind or an
  // unknown version, kDataLoss if it is truncated.
  absl::Status Decode(std::string_view* in, char* acc) const;

  // Releases what an accumulator holds on the heap (sketch kinds); a no-op
  // for the others. The accumulator must be Init'ed again before reuse.
  void Destroy(char* acc) const;

 private:
  Aggregator(AggregateKind kind, const AggregatorOptions& options)
      : kind_(kind), options_(options) {}

  AggregateKind kind_;
  AggregatorOptions options_;
};

}  // namespace weir

#endif  // WEIR_AGGREGATE_H_
