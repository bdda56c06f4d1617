// -----------------------------------------------------------------------------
// File: internal/accumulators.h
// -----------------------------------------------------------------------------
//
// The accumulator layouts and fold/merge/result code behind weir::Aggregator,
// inline so that the operator's per-record loop compiles to a switch with no
// calls. Adding a value is split in two: Prepare() validates and converts a
// Value into an AggInput (it can fail), Fold() applies it (it cannot). The
// operator prepares every feature of a record before folding any, so a bad
// value leaves no partial update behind.
//
// Every accumulator is a struct of 8-byte fields, stored little-endian as is
// (weir targets little-endian machines; Encode writes a version byte so a
// future portable encoding can be told apart).

#ifndef WEIR_INTERNAL_ACCUMULATORS_H_
#define WEIR_INTERNAL_ACCUMULATORS_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "weir/aggregate.h"
#include "weir/internal/coding.h"
#include "weir/internal/pow10.h"
#include "weir/record.h"
#include "weir/sketch.h"

namespace weir {
namespace internal {

struct CountAcc {
  int64_t n;
};
// A 128-bit integer kept as two 8-byte halves, so accumulators stay
// 8-aligned.
struct Units128 {
  uint64_t lo;
  int64_t hi;

  __int128 get() const {
    return static_cast<__int128>(
        (static_cast<unsigned __int128>(static_cast<uint64_t>(hi)) << 64) | lo);
  }
  void set(__int128 u) {
    lo = static_cast<uint64_t>(u);
    hi = static_cast<int64_t>(u >> 64);
  }
};
// kSum, kMean: integers and decimals with at most decimal_scale places are
// summed exactly (and so independently of order and of merge points), the
// other values as a compensated double sum.
struct SumAcc {
  int64_t n;
  double sum;
  double comp;     // Neumaier compensation
  Units128 exact;  // at the aggregator's decimal_scale
};
// The layout of version 1 encodings: no exact part.
struct SumAccV1 {
  int64_t n;
  double sum;
  double comp;
};
struct DecimalAcc {
  int64_t n;
  Units128 sum;

  __int128 units() const { return sum.get(); }
  void set_units(__int128 u) { sum.set(u); }
};
struct ExtremeAcc {  // kMin, kMax
  int64_t n;
  double v;
};
struct WelfordAcc {  // kVariance, kStddev
  int64_t n;
  double mean;
  double m2;
};
struct PickAcc {  // kFirst, kLast
  int64_t n;
  double v;
  int64_t time;
  int64_t offset;
};
// kDistinctCount (HyperLogLog) and kQuantile (QuantileHistogram). Most
// windows of such a feature see one value (one merchant, one amount in a
// user's hour), so until a second value arrives (for a HyperLogLog, a
// second distinct hash) the accumulator holds that value inline, with the
// sketch's parameter: the HyperLogLog's 64-bit hash and precision, the
// double's bits and the histogram's buckets per binade. No heap sketch exists
// then; results and encodings are those of the sketch the value makes. After,
// `slot` points to the heap sketch, which AccDestroy releases. Copying the
// accumulator's bytes moves ownership.
struct SketchAcc {
  static constexpr int kCountShift = 16;

  uint64_t header;  // values added << kCountShift | parameter << 1 | inline
  uint64_t slot;    // inline: the value; else the sketch pointer (0: none)

  uint64_t count() const { return header >> kCountShift; }
  bool is_inline() const { return (header & 1) != 0; }
  int param() const { return static_cast<int>((header >> 1) & 0x7FFF); }
  bool empty() const { return header == 0 && slot == 0; }
  void* sketch() const {
    return is_inline() ? nullptr : reinterpret_cast<void*>(slot);
  }
};

// The sketch an inline value makes (a one-value sketch holds no heap).
inline HyperLogLog InlineHyperLogLog(const SketchAcc& a) {
  HyperLogLog one = *HyperLogLog::Create(a.param());
  one.AddHash(a.slot);
  return one;
}
inline QuantileHistogram InlineHistogram(const SketchAcc& a) {
  QuantileHistogram one = *QuantileHistogram::Create(0.5 / a.param());
  one.Add(std::bit_cast<double>(a.slot));
  return one;
}

// Adds one value, as SketchAcc holds it inline, to a heap sketch.
inline void AddToSketch(AggregateKind kind, void* sketch, uint64_t value) {
  if (kind == AggregateKind::kDistinctCount) {
    static_cast<HyperLogLog*>(sketch)->AddHash(value);
  } else {
    static_cast<QuantileHistogram*>(sketch)->Add(std::bit_cast<double>(value));
  }
}

// Moves an inline value into a new heap sketch.
inline void SketchToHeap(AggregateKind kind, SketchAcc* a) {
  void* sketch =
      kind == AggregateKind::kDistinctCount
          ? static_cast<void*>(new HyperLogLog(InlineHyperLogLog(*a)))
          : new QuantileHistogram(InlineHistogram(*a));
  a->header = a->count() << SketchAcc::kCountShift;
  a->slot = reinterpret_cast<uint64_t>(sketch);
}

inline bool IsSketch(AggregateKind kind) {
  return kind == AggregateKind::kDistinctCount ||
         kind == AggregateKind::kQuantile;
}

inline size_t AccSize(AggregateKind kind) {
  switch (kind) {
    case AggregateKind::kCount:
      return sizeof(CountAcc);
    case AggregateKind::kSum:
    case AggregateKind::kMean:
      return sizeof(SumAcc);
    case AggregateKind::kDecimalSum:
      return sizeof(DecimalAcc);
    case AggregateKind::kMin:
    case AggregateKind::kMax:
      return sizeof(ExtremeAcc);
    case AggregateKind::kVariance:
    case AggregateKind::kStddev:
      return sizeof(WelfordAcc);
    case AggregateKind::kFirst:
    case AggregateKind::kLast:
      return sizeof(PickAcc);
    case AggregateKind::kDistinctCount:
    case AggregateKind::kQuantile:
      return sizeof(SketchAcc);
  }
  return 0;
}

inline void AccInit(AggregateKind kind, char* acc) {
  switch (kind) {
    case AggregateKind::kCount:
      new (acc) CountAcc{0};
      return;
    case AggregateKind::kSum:
    case AggregateKind::kMean:
      new (acc) SumAcc{0, 0.0, 0.0, {0, 0}};
      return;
    case AggregateKind::kDecimalSum:
      new (acc) DecimalAcc{0, {0, 0}};
      return;
    case AggregateKind::kMin:
    case AggregateKind::kMax:
      new (acc) ExtremeAcc{0, 0.0};
      return;
    case AggregateKind::kVariance:
    case AggregateKind::kStddev:
      new (acc) WelfordAcc{0, 0.0, 0.0};
      return;
    case AggregateKind::kFirst:
    case AggregateKind::kLast:
      new (acc) PickAcc{0, 0.0, 0, 0};
      return;
    case AggregateKind::kDistinctCount:
    case AggregateKind::kQuantile:
      new (acc) SketchAcc{0, 0};
      return;
  }
}

// Releases a sketch accumulator's heap state; a no-op for other kinds.
inline void AccDestroy(AggregateKind kind, char* acc) {
  if (!IsSketch(kind)) return;
  auto* a = reinterpret_cast<SketchAcc*>(acc);
  if (kind == AggregateKind::kDistinctCount) {
    delete static_cast<HyperLogLog*>(a->sketch());
  } else {
    delete static_cast<QuantileHistogram*>(a->sketch());
  }
  a->header = 0;
  a->slot = 0;
}

// The heap a sketch accumulator holds (an inline value holds none); 0 for
// other kinds.
inline size_t AccHeapBytes(AggregateKind kind, const char* acc) {
  if (!IsSketch(kind)) return 0;
  const void* sketch = reinterpret_cast<const SketchAcc*>(acc)->sketch();
  if (sketch == nullptr) return 0;
  if (kind == AggregateKind::kDistinctCount) {
    return static_cast<const HyperLogLog*>(sketch)->MemoryBytes();
  }
  return static_cast<const QuantileHistogram*>(sketch)->MemoryBytes();
}

// A value made ready to fold.
struct AggInput {
  bool skip = false;   // null under NullPolicy::kSkip
  bool exact = false;  // kSum, kMean: `units` holds the value exactly
  double d = 0;        // all kinds but kDecimalSum
  __int128 units = 0;  // kDecimalSum (kSum, kMean if exact), at the scale
  uint64_t hash = 0;   // kDistinctCount
};

// The hash kDistinctCount counts. Values equal as numbers hash equal (5,
// 5.0 and 5.00 as decimals, the int64 5), and the hash is stable across
// processes (XxHash64), so state written by one run merges correctly with
// the next.
inline uint64_t DistinctHash(const Value& v) {
  char buf[17];
  switch (v.type()) {
    case Value::Type::kString:
      return XxHash64(v.string_value());
    case Value::Type::kBool:
      buf[0] = v.bool_value() ? 1 : 0;
      return XxHash64(std::string_view(buf, 1), /*seed=*/1);
    case Value::Type::kInt64:
    case Value::Type::kDecimal: {
      int64_t units = v.type() == Value::Type::kInt64 ? v.int64_value()
                                                      : v.decimal_value().units;
      int32_t scale =
          v.type() == Value::Type::kInt64 ? 0 : v.decimal_value().scale;
      while (scale > 0 && units % 10 == 0) {
        units /= 10;
        --scale;
      }
      std::memcpy(buf, &units, 8);
      std::memcpy(buf + 8, &scale, 4);
      return XxHash64(std::string_view(buf, 12), /*seed=*/2);
    }
    case Value::Type::kDouble: {
      double d = v.double_value();
      if (d == 0) d = 0;  // -0.0 and 0.0 are one value
      std::memcpy(buf, &d, 8);
      return XxHash64(std::string_view(buf, 8), /*seed=*/3);
    }
    case Value::Type::kNull:
      return XxHash64(std::string_view(), /*seed=*/4);
  }
  return 0;
}

// The errors of Prepare, built out of line so that its common path stays
// small enough to inline into the per-record loop.
absl::Status ScaleError(int32_t scale);
absl::Status InexactError(int32_t scale, int32_t target);
absl::Status TypeError(AggregateKind kind, Value::Type type);
absl::Status NonFiniteError(AggregateKind kind);

inline bool ScaleInRange(int32_t scale) { return scale >= 0 && scale <= 18; }

// `units` at `scale` places expressed at `target` places, exactly; false if
// that loses digits. REQUIRES: ScaleInRange(scale).
inline bool RescaleExact(int64_t units, int32_t scale, int32_t target,
                         __int128* out) {
  if (scale <= target) {
    *out = static_cast<__int128>(units) * kPow10[target - scale];
    return true;
  }
  const int64_t div = kPow10[scale - target];
  if (units % div != 0) return false;
  *out = units / div;
  return true;
}

// Inlined into the per-record loop, where its OK paths fold away.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status Prepare(
    AggregateKind kind, const AggregatorOptions& opts, const Value& v,
    AggInput* in) {
  *in = AggInput();
  const Value::Type type = v.type();
  if (type == Value::Type::kNull) {
    if (opts.null_policy == NullPolicy::kSkip) {
      in->skip = true;
    }
    return absl::OkStatus();  // kZero: d = 0, units = 0
  }
  if (kind == AggregateKind::kCount) return absl::OkStatus();
  if (kind == AggregateKind::kDistinctCount) {
    in->hash = DistinctHash(v);
    return absl::OkStatus();
  }
  // A decimal's units and scale, or an int64's at scale 0. A decimal whose
  // scale is out of range is never exact; its double is the units as they
  // are.
  int64_t units = 0;
  int32_t scale = 0;
  bool scale_ok = true;
  if (type == Value::Type::kDecimal) {
    units = v.decimal_value().units;
    scale = v.decimal_value().scale;
    if (!ScaleInRange(scale)) {
      if (kind == AggregateKind::kDecimalSum) return ScaleError(scale);
      scale_ok = false;
      scale = 0;
    }
  } else if (type == Value::Type::kInt64) {
    units = v.int64_value();
  }
  const bool integral =
      type == Value::Type::kDecimal || type == Value::Type::kInt64;
  if (kind == AggregateKind::kDecimalSum) {
    if (!integral) return TypeError(kind, type);
    if (!RescaleExact(units, scale, opts.decimal_scale, &in->units)) {
      return InexactError(scale, opts.decimal_scale);
    }
    return absl::OkStatus();
  }
  if (kind == AggregateKind::kSum || kind == AggregateKind::kMean) {
    // An integer, or a decimal the scale holds, is summed exactly; any
    // other number falls back to the double sum below.
    if (integral) {
      in->exact = scale_ok &&
                  RescaleExact(units, scale, opts.decimal_scale, &in->units);
    } else if (type == Value::Type::kBool) {
      in->exact = true;
      in->units = v.bool_value() ? kPow10[opts.decimal_scale] : 0;
    }
  }
  switch (type) {
    case Value::Type::kInt64:
      in->d = static_cast<double>(units);
      return absl::OkStatus();
    case Value::Type::kDouble:
      in->d = v.double_value();
      if (!std::isfinite(in->d)) return NonFiniteError(kind);
      return absl::OkStatus();
    case Value::Type::kDecimal:
      in->d = static_cast<double>(units) / static_cast<double>(kPow10[scale]);
      return absl::OkStatus();
    case Value::Type::kBool:
      in->d = v.bool_value() ? 1.0 : 0.0;
      return absl::OkStatus();
    default:
      return TypeError(kind, type);
  }
}

inline void NeumaierAdd(SumAcc* a, double x) {
  const double t = a->sum + x;
  if (std::fabs(a->sum) >= std::fabs(x)) {
    a->comp += (a->sum - t) + x;
  } else {
    a->comp += (x - t) + a->sum;
  }
  a->sum = t;
}

inline bool PickBefore(int64_t t1, int64_t o1, int64_t t2, int64_t o2) {
  return t1 != t2 ? t1 < t2 : o1 < o2;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Fold(AggregateKind kind,
                                              const AggregatorOptions& opts,
                                              char* acc, const AggInput& in,
                                              EventTime time, int64_t offset) {
  if (in.skip) return;
  switch (kind) {
    case AggregateKind::kCount:
      reinterpret_cast<CountAcc*>(acc)->n++;
      return;
    case AggregateKind::kSum:
    case AggregateKind::kMean: {
      auto* a = reinterpret_cast<SumAcc*>(acc);
      a->n++;
      if (in.exact) {
        a->exact.set(a->exact.get() + in.units);
      } else {
        NeumaierAdd(a, in.d);
      }
      return;
    }
    case AggregateKind::kDecimalSum: {
      auto* a = reinterpret_cast<DecimalAcc*>(acc);
      a->n++;
      a->set_units(a->units() + in.units);
      return;
    }
    case AggregateKind::kMin:
    case AggregateKind::kMax: {
      auto* a = reinterpret_cast<ExtremeAcc*>(acc);
      const bool better =
          a->n == 0 ||
          (kind == AggregateKind::kMin ? in.d < a->v : in.d > a->v);
      if (better) a->v = in.d;
      a->n++;
      return;
    }
    case AggregateKind::kVariance:
    case AggregateKind::kStddev: {
      auto* a = reinterpret_cast<WelfordAcc*>(acc);
      a->n++;
      const double d = in.d - a->mean;
      a->mean += d / static_cast<double>(a->n);
      a->m2 += d * (in.d - a->mean);
      return;
    }
    case AggregateKind::kFirst:
    case AggregateKind::kLast: {
      auto* a = reinterpret_cast<PickAcc*>(acc);
      const bool take =
          a->n == 0 || (kind == AggregateKind::kFirst
                            ? PickBefore(time, offset, a->time, a->offset)
                            : PickBefore(a->time, a->offset, time, offset));
      if (take) {
        a->v = in.d;
        a->time = time;
        a->offset = offset;
      }
      a->n++;
      return;
    }
    case AggregateKind::kDistinctCount:
    case AggregateKind::kQuantile: {
      auto* a = reinterpret_cast<SketchAcc*>(acc);
      const bool distinct = kind == AggregateKind::kDistinctCount;
      // Prepare refused non-finite values; -0.0 is kept as +0.0.
      const uint64_t value =
          distinct ? in.hash : std::bit_cast<uint64_t>(in.d == 0 ? 0.0 : in.d);
      constexpr uint64_t kOne = uint64_t{1} << SketchAcc::kCountShift;
      if (a->empty()) {
        const int param = distinct ? opts.hll_precision
                                   : QuantileHistogram::BucketsPerBinade(
                                         opts.quantile_relative_error);
        a->header = kOne | (static_cast<uint64_t>(param) << 1) | 1;
        a->slot = value;
        return;
      }
      if (a->is_inline()) {
        // A HyperLogLog is a set: the same hash again changes nothing.
        if (distinct && a->slot == value) {
          a->header += kOne;
          return;
        }
        SketchToHeap(kind, a);
      }
      AddToSketch(kind, a->sketch(), value);
      a->header += kOne;
      return;
    }
  }
}

inline void Merge(AggregateKind kind, char* acc, const char* other) {
  if (IsSketch(kind)) {
    auto* a = reinterpret_cast<SketchAcc*>(acc);
    const auto* b = reinterpret_cast<const SketchAcc*>(other);
    if (b->empty()) return;
    const uint64_t added = b->count() << SketchAcc::kCountShift;
    if (a->empty()) {
      if (b->is_inline()) {
        *a = *b;
      } else if (kind == AggregateKind::kDistinctCount) {
        a->header = added;
        a->slot = reinterpret_cast<uint64_t>(
            new HyperLogLog(*static_cast<const HyperLogLog*>(b->sketch())));
      } else {
        a->header = added;
        a->slot = reinterpret_cast<uint64_t>(new QuantileHistogram(
            *static_cast<const QuantileHistogram*>(b->sketch())));
      }
      return;
    }
    if (kind == AggregateKind::kDistinctCount && a->is_inline() &&
        b->is_inline() && a->slot == b->slot) {
      a->header += added;
      return;
    }
    if (a->is_inline()) SketchToHeap(kind, a);
    a->header += added;
    if (b->is_inline()) {
      // A HyperLogLog adds its one hash once (a set); a histogram holds one
      // value inline.
      AddToSketch(kind, a->sketch(), b->slot);
      return;
    }
    // One feature's sketches share its parameters, so Merge cannot fail.
    if (kind == AggregateKind::kDistinctCount) {
      static_cast<HyperLogLog*>(a->sketch())
          ->Merge(*static_cast<const HyperLogLog*>(b->sketch()))
          .IgnoreError();
    } else {
      static_cast<QuantileHistogram*>(a->sketch())
          ->Merge(*static_cast<const QuantileHistogram*>(b->sketch()))
          .IgnoreError();
    }
    return;
  }
  switch (kind) {
    case AggregateKind::kCount:
      reinterpret_cast<CountAcc*>(acc)->n +=
          reinterpret_cast<const CountAcc*>(other)->n;
      return;
    case AggregateKind::kSum:
    case AggregateKind::kMean: {
      auto* a = reinterpret_cast<SumAcc*>(acc);
      const auto* b = reinterpret_cast<const SumAcc*>(other);
      a->n += b->n;
      NeumaierAdd(a, b->sum);
      a->comp += b->comp;
      a->exact.set(a->exact.get() + b->exact.get());
      return;
    }
    case AggregateKind::kDecimalSum: {
      auto* a = reinterpret_cast<DecimalAcc*>(acc);
      const auto* b = reinterpret_cast<const DecimalAcc*>(other);
      a->n += b->n;
      a->set_units(a->units() + b->units());
      return;
    }
    case AggregateKind::kMin:
    case AggregateKind::kMax: {
      auto* a = reinterpret_cast<ExtremeAcc*>(acc);
      const auto* b = reinterpret_cast<const ExtremeAcc*>(other);
      if (b->n == 0) return;
      if (a->n == 0 ||
          (kind == AggregateKind::kMin ? b->v < a->v : b->v > a->v)) {
        a->v = b->v;
      }
      a->n += b->n;
      return;
    }
    case AggregateKind::kVariance:
    case AggregateKind::kStddev: {
      auto* a = reinterpret_cast<WelfordAcc*>(acc);
      const auto* b = reinterpret_cast<const WelfordAcc*>(other);
      if (b->n == 0) return;
      if (a->n == 0) {
        *a = *b;
        return;
      }
      const double na = static_cast<double>(a->n);
      const double nb = static_cast<double>(b->n);
      const double n = na + nb;
      const double d = b->mean - a->mean;
      a->mean += d * nb / n;
      a->m2 += b->m2 + d * d * na * nb / n;
      a->n += b->n;
      return;
    }
    case AggregateKind::kFirst:
    case AggregateKind::kLast: {
      auto* a = reinterpret_cast<PickAcc*>(acc);
      const auto* b = reinterpret_cast<const PickAcc*>(other);
      if (b->n == 0) return;
      const bool take =
          a->n == 0 ||
          (kind == AggregateKind::kFirst
               ? PickBefore(b->time, b->offset, a->time, a->offset)
               : PickBefore(a->time, a->offset, b->time, b->offset));
      if (take) {
        a->v = b->v;
        a->time = b->time;
        a->offset = b->offset;
      }
      a->n += b->n;
      return;
    }
    case AggregateKind::kDistinctCount:
    case AggregateKind::kQuantile:
      return;  // handled above
  }
}

// The exact part, rounded once, plus the compensated double part (zero
// when every value was exact, so the result is the same however the values
// were split and merged).
inline double SumOf(const AggregatorOptions& opts, const SumAcc& a) {
  const double exact = static_cast<double>(a.exact.get()) /
                       static_cast<double>(kPow10[opts.decimal_scale]);
  return exact + (a.sum + a.comp);
}

inline Value Result(AggregateKind kind, const AggregatorOptions& opts,
                    const char* acc) {
  switch (kind) {
    case AggregateKind::kCount:
      return Value::Int64(reinterpret_cast<const CountAcc*>(acc)->n);
    case AggregateKind::kSum:
      return Value::Double(SumOf(opts, *reinterpret_cast<const SumAcc*>(acc)));
    case AggregateKind::kMean: {
      const auto* a = reinterpret_cast<const SumAcc*>(acc);
      if (a->n == 0) return Value::Null();
      return Value::Double(SumOf(opts, *a) / static_cast<double>(a->n));
    }
    case AggregateKind::kDecimalSum: {
      const auto* a = reinterpret_cast<const DecimalAcc*>(acc);
      const __int128 units = a->units();
      if (units >= std::numeric_limits<int64_t>::min() &&
          units <= std::numeric_limits<int64_t>::max()) {
        return Value::Dec(static_cast<int64_t>(units), opts.decimal_scale);
      }
      return Value::Double(static_cast<double>(units) /
                           static_cast<double>(kPow10[opts.decimal_scale]));
    }
    case AggregateKind::kMin:
    case AggregateKind::kMax: {
      const auto* a = reinterpret_cast<const ExtremeAcc*>(acc);
      return a->n == 0 ? Value::Null() : Value::Double(a->v);
    }
    case AggregateKind::kVariance:
    case AggregateKind::kStddev: {
      const auto* a = reinterpret_cast<const WelfordAcc*>(acc);
      if (a->n == 0) return Value::Null();
      const double var = std::max(0.0, a->m2 / static_cast<double>(a->n));
      return Value::Double(kind == AggregateKind::kVariance ? var
                                                            : std::sqrt(var));
    }
    case AggregateKind::kFirst:
    case AggregateKind::kLast: {
      const auto* a = reinterpret_cast<const PickAcc*>(acc);
      return a->n == 0 ? Value::Null() : Value::Double(a->v);
    }
    case AggregateKind::kDistinctCount: {
      const auto* a = reinterpret_cast<const SketchAcc*>(acc);
      if (a->is_inline()) {
        return Value::Int64(
            std::llround(HyperLogLog::EstimateOfOneHash(a->slot)));
      }
      if (a->sketch() == nullptr) return Value::Int64(0);
      return Value::Int64(std::llround(
          static_cast<const HyperLogLog*>(a->sketch())->Estimate()));
    }
    case AggregateKind::kQuantile: {
      const auto* a = reinterpret_cast<const SketchAcc*>(acc);
      // Every quantile of one value is that value.
      if (a->is_inline()) return Value::Double(std::bit_cast<double>(a->slot));
      if (a->sketch() == nullptr) return Value::Null();
      absl::StatusOr<double> q =
          static_cast<const QuantileHistogram*>(a->sketch())
              ->Quantile(opts.quantile);
      return q.ok() ? Value::Double(*q) : Value::Null();
    }
  }
  return Value::Null();
}

inline void EncodeAcc(AggregateKind kind, const char* acc, std::string* out) {
  out->push_back(static_cast<char>(kind));
  out->push_back(static_cast<char>(Aggregator::kEncodingVersion));
  if (!IsSketch(kind)) {
    out->append(acc, AccSize(kind));
    return;
  }
  // n (8 bytes LE), length (4 bytes LE), the sketch's own versioned bytes,
  // written in place (the length filled in after them).
  // An inline value is written as the sketch it makes.
  const auto* a = reinterpret_cast<const SketchAcc*>(acc);
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<char>(a->count() >> (8 * i)));
  }
  const size_t len_at = out->size();
  out->append(4, '\0');
  if (kind == AggregateKind::kDistinctCount) {
    if (a->is_inline()) {
      InlineHyperLogLog(*a).Serialize(out);
    } else if (a->sketch() != nullptr) {
      static_cast<const HyperLogLog*>(a->sketch())->Serialize(out);
    }
  } else {
    if (a->is_inline()) {
      InlineHistogram(*a).Serialize(out);
    } else if (a->sketch() != nullptr) {
      static_cast<const QuantileHistogram*>(a->sketch())->Serialize(out);
    }
  }
  const auto len = static_cast<uint32_t>(out->size() - len_at - 4);
  for (int i = 0; i < 4; ++i)
    (*out)[len_at + i] = static_cast<char>(len >> (8 * i));
}

inline absl::Status DecodeAcc(AggregateKind kind, std::string_view* in,
                              char* acc) {
  const size_t size = AccSize(kind);
  if (in->size() < 2) {
    return absl::DataLossError("accumulator encoding is truncated");
  }
  const auto stored_kind = static_cast<AggregateKind>((*in)[0]);
  const auto version = static_cast<uint8_t>((*in)[1]);
  if (stored_kind != kind) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state holds a '", AggregateKindName(stored_kind),
        "' accumulator where this feature set declares '",
        AggregateKindName(kind),
        "': the features changed since the state was written; restore "
        "with the original feature set or start from empty state"));
  }
  if (version < 1 || version > Aggregator::kEncodingVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", AggregateKindName(kind), "' accumulator has encoding version ",
        version, ", this weir reads versions 1 to ",
        Aggregator::kEncodingVersion));
  }
  if (version == 1 && kind == AggregateKind::kQuantile) {
    return absl::FailedPreconditionError(
        "'quantile' accumulator of encoding version 1 holds a KLL sketch, "
        "which depends on the order values were merged in; this weir keeps "
        "an order-free quantile histogram instead. Start the feature from "
        "empty state, or rebuild it with a backfill");
  }
  if (version == 1 &&
      (kind == AggregateKind::kSum || kind == AggregateKind::kMean)) {
    // Version 1 had no exact part: every value is in the double sum.
    SumAccV1 old;
    if (in->size() < 2 + sizeof(old)) {
      return absl::DataLossError("accumulator encoding is truncated");
    }
    std::memcpy(&old, in->data() + 2, sizeof(old));
    new (acc) SumAcc{old.n, old.sum, old.comp, {0, 0}};
    in->remove_prefix(2 + sizeof(old));
    return absl::OkStatus();
  }
  if (IsSketch(kind)) {
    if (in->size() < 2 + 12) {
      return absl::DataLossError("sketch accumulator encoding is truncated");
    }
    const uint64_t n = DecodeFixed64(in->data() + 2);
    const uint32_t len = DecodeFixed32(in->data() + 10);
    if (in->size() < 14 + static_cast<size_t>(len)) {
      return absl::DataLossError("sketch accumulator encoding is truncated");
    }
    const std::string_view bytes = in->substr(14, len);
    if ((n == 0) != (len == 0) || n >= (uint64_t{1} << 48)) {
      return absl::DataLossError(
          "sketch accumulator's value count disagrees with its sketch");
    }
    AccInit(kind, acc);
    auto* a = reinterpret_cast<SketchAcc*>(acc);
    if (len > 0) {
      // Restored sketches live on the heap, whatever they hold.
      void* sketch;
      if (kind == AggregateKind::kDistinctCount) {
        absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(bytes);
        if (!h.ok()) return h.status();
        sketch = new HyperLogLog(std::move(*h));
      } else {
        absl::StatusOr<QuantileHistogram> q =
            QuantileHistogram::Deserialize(bytes);
        if (!q.ok()) return q.status();
        sketch = new QuantileHistogram(std::move(*q));
      }
      a->header = n << SketchAcc::kCountShift;
      a->slot = reinterpret_cast<uint64_t>(sketch);
    }
    in->remove_prefix(14 + len);
    return absl::OkStatus();
  }
  if (in->size() < 2 + size) {
    return absl::DataLossError("accumulator encoding is truncated");
  }
  AccInit(kind, acc);
  std::memcpy(acc, in->data() + 2, size);
  in->remove_prefix(2 + size);
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_ACCUMULATORS_H_
