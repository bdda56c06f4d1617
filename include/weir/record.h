// -----------------------------------------------------------------------------
// File: record.h
// -----------------------------------------------------------------------------
//
// What flows through weir: a decoded input record (`Event`, owning, and
// `Record`, a view of one for the duration of a call) made of an entity key,
// an event time, its position in the source log, and a row of typed `Value`s
// laid out as the decoder's schema says.
//
// `Decimal` is an exact fixed-point number (unscaled integer and a scale of
// decimal places), the type money is carried in: weir sums it exactly and
// order-independently, unlike a double.
//
// Example:
//   weir::Event e;
//   e.key = "u123";
//   e.event_time = 1767225600123;
//   e.values = {weir::Value::String("m45"), weir::Value::Dec(1234, 2)};
//   WEIR_RETURN_IF_ERROR(op->Process(e.view()));

#ifndef WEIR_RECORD_H_
#define WEIR_RECORD_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "weir/time.h"

namespace weir {

// An exact decimal: `units` * 10^-`scale`, e.g. {1234, 2} is 12.34.
// REQUIRES: 0 <= scale <= 18.
struct Decimal {
  int64_t units = 0;
  int32_t scale = 0;

  // Parses "12.34", "-0.5", "7" exactly. Fails on anything else, on more
  // than 18 fractional digits, or on a value that does not fit in int64.
  static absl::StatusOr<Decimal> Parse(std::string_view text);

  // The value at `target_scale` decimal places, exactly; fails if that
  // would drop a non-zero digit or overflow.
  absl::StatusOr<int64_t> UnitsAt(int32_t target_scale) const;

  double ToDouble() const;
  std::string ToString() const;

  friend bool operator==(const Decimal& a, const Decimal& b) {
    return a.units == b.units && a.scale == b.scale;
  }
};

// One typed field of a record, or null.
class Value {
 public:
  enum class Type : uint8_t {
    kNull,
    kBool,
    kInt64,
    kDouble,
    kDecimal,
    kString
  };

  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool v) {
    return Value(Storage(std::in_place_index<1>, v));
  }
  static Value Int64(int64_t v) {
    return Value(Storage(std::in_place_index<2>, v));
  }
  static Value Double(double v) {
    return Value(Storage(std::in_place_index<3>, v));
  }
  static Value Dec(int64_t units, int32_t scale) {
    return Value(Storage(std::in_place_index<4>, Decimal{units, scale}));
  }
  static Value Dec(Decimal d) {
    return Value(Storage(std::in_place_index<4>, d));
  }
  static Value String(std::string v) {
    return Value(Storage(std::in_place_index<5>, std::move(v)));
  }

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return v_.index() == 0; }

  // REQUIRES: the matching type().
  bool bool_value() const { return std::get<1>(v_); }
  int64_t int64_value() const { return std::get<2>(v_); }
  double double_value() const { return std::get<3>(v_); }
  const Decimal& decimal_value() const { return std::get<4>(v_); }
  const std::string& string_value() const { return std::get<5>(v_); }

  // The value as a double for numeric types (bool is 0 or 1); fails for
  // null and strings.
  absl::StatusOr<double> AsDouble() const;

  // A short human-readable form: "null", "true", "42", "1.5", "12.34", "abc".
  std::string ToString() const;

  friend bool operator==(const Value& a, const Value& b) {
    return a.v_ == b.v_;
  }

 private:
  using Storage =
      std::variant<std::monostate, bool, int64_t, double, Decimal, std::string>;
  explicit Value(Storage v) : v_(std::move(v)) {}
  Storage v_;
};

const char* TypeName(Value::Type type);

// A view of one input record, valid for the duration of the call it is
// passed to. `values` follow the decoder's schema, field by field.
struct Record {
  std::string_view key;
  EventTime event_time = 0;
  // Position in the source log: ties between equal event times are broken
  // by offset, and results carry the largest offset folded into them as
  // their version.
  int32_t partition = 0;
  int64_t offset = 0;
  absl::Span<const Value> values;
};

// An owning record, as decoders produce it.
struct Event {
  std::string key;
  EventTime event_time = 0;
  int32_t partition = 0;
  int64_t offset = 0;
  std::vector<Value> values;

  Record view() const {
    return Record{key, event_time, partition, offset, values};
  }
};

}  // namespace weir

#endif  // WEIR_RECORD_H_
