#include "weir/aggregate.h"

#include "absl/strings/str_cat.h"
#include "weir/internal/accumulators.h"
#include "weir/sketch.h"

namespace weir {

const char* AggregateKindName(AggregateKind kind) {
  switch (kind) {
    case AggregateKind::kCount:
      return "count";
    case AggregateKind::kSum:
      return "sum";
    case AggregateKind::kDecimalSum:
      return "decimal_sum";
    case AggregateKind::kMin:
      return "min";
    case AggregateKind::kMax:
      return "max";
    case AggregateKind::kMean:
      return "mean";
    case AggregateKind::kVariance:
      return "variance";
    case AggregateKind::kStddev:
      return "stddev";
    case AggregateKind::kFirst:
      return "first";
    case AggregateKind::kLast:
      return "last";
    case AggregateKind::kDistinctCount:
      return "distinct_count";
    case AggregateKind::kQuantile:
      return "quantile";
  }
  return "unknown";
}

absl::Status AggregatorOptions::Validate() const {
  if (decimal_scale < 0 || decimal_scale > 18) {
    return absl::InvalidArgumentError(
        absl::StrCat("decimal_scale: must be in 0..18, got ", decimal_scale));
  }
  if (!(quantile >= 0.0 && quantile <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantile: must be in [0, 1], got ", quantile));
  }
  if (hll_precision < HyperLogLog::kMinPrecision ||
      hll_precision > HyperLogLog::kMaxPrecision) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hll_precision: must be in ", HyperLogLog::kMinPrecision, "..",
        HyperLogLog::kMaxPrecision, ", got ", hll_precision));
  }
  if (!(quantile_relative_error >= QuantileHistogram::kMinRelativeError &&
        quantile_relative_error <= QuantileHistogram::kMaxRelativeError)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantile_relative_error: must be in [",
                     QuantileHistogram::kMinRelativeError, ", ",
                     QuantileHistogram::kMaxRelativeError, "], got ",
                     quantile_relative_error));
  }
  if (null_policy != NullPolicy::kSkip && null_policy != NullPolicy::kZero) {
    return absl::InvalidArgumentError("null_policy: unknown policy");
  }
  return absl::OkStatus();
}

absl::StatusOr<Aggregator> Aggregator::Create(
    AggregateKind kind, const AggregatorOptions& options) {
  if (internal::AccSize(kind) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "aggregate: unknown aggregate kind ", static_cast<int>(kind)));
  }
  absl::Status s = options.Validate();
  if (!s.ok()) return s;
  return Aggregator(kind, options);
}

size_t Aggregator::state_size() const { return internal::AccSize(kind_); }

void Aggregator::Init(char* acc) const { internal::AccInit(kind_, acc); }

absl::Status Aggregator::Add(char* acc, const Value& value, EventTime time,
                             int64_t offset) const {
  internal::AggInput in;
  absl::Status s = internal::Prepare(kind_, options_, value, &in);
  if (!s.ok()) return s;
  internal::Fold(kind_, options_, acc, in, time, offset);
  return absl::OkStatus();
}

void Aggregator::Merge(char* acc, const char* other) const {
  internal::Merge(kind_, acc, other);
}

Value Aggregator::Result(const char* acc) const {
  return internal::Result(kind_, options_, acc);
}

void Aggregator::Encode(const char* acc, std::string* out) const {
  internal::EncodeAcc(kind_, acc, out);
}

absl::Status Aggregator::Decode(std::string_view* in, char* acc) const {
  return internal::DecodeAcc(kind_, in, acc);
}

void Aggregator::Destroy(char* acc) const { internal::AccDestroy(kind_, acc); }

namespace internal {

absl::Status ScaleError(int32_t scale) {
  return absl::InvalidArgumentError(
      absl::StrCat("decimal scale ", scale, " is outside 0..18"));
}

absl::Status InexactError(int32_t scale, int32_t target) {
  return absl::InvalidArgumentError(absl::StrCat(
      "decimal with ", scale, " places has non-zero digits beyond the ", target,
      " places the exact sum keeps"));
}

absl::Status TypeError(AggregateKind kind, Value::Type type) {
  if (kind == AggregateKind::kDecimalSum) {
    return absl::InvalidArgumentError(absl::StrCat(
        "decimal_sum takes decimal or int64 values, got ", TypeName(type)));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      AggregateKindName(kind), " takes numeric values, got ", TypeName(type)));
}

absl::Status NonFiniteError(AggregateKind kind) {
  return absl::InvalidArgumentError(
      absl::StrCat(AggregateKindName(kind), " got a non-finite number"));
}

}  // namespace internal
}  // namespace weir
