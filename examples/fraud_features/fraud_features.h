// -----------------------------------------------------------------------------
// File: examples/fraud_features/fraud_features.h
// -----------------------------------------------------------------------------
//
// The F-FRAUD feature set (BENCHMARKS.md) over the W-PAY payment schema: the
// one definition the fraud-features service, the benchmarks (b2, b3) and
// the tests follow.
//
// Example:
//   WEIR_RETURN_IF_ERROR(weir::RunService(options, fraud::FraudFeatures(),
//                                         fraud::WPayServiceSchema()));
//   // or, JSON only:
//   WEIR_ASSIGN_OR_RETURN(auto decoder,
//                         weir::JsonDecoder::Create(fraud::WPaySchema()));
//   options.features = fraud::FraudFeatures();

#ifndef WEIR_EXAMPLES_FRAUD_FEATURES_FRAUD_FEATURES_H_
#define WEIR_EXAMPLES_FRAUD_FEATURES_FRAUD_FEATURES_H_

#include <string>
#include <utility>

#include "absl/time/time.h"
#include "weir/aggregate.h"
#include "weir/json/json_decoder.h"
#include "weir/keyed_window_operator.h"
#include "weir/service.h"
#include "weir/window.h"

namespace fraud {

// W-PAY payments: keyed by user_id, event time in ms; values[0] is the
// merchant, values[1] the amount.
inline weir::JsonSchema WPaySchema() {
  weir::JsonSchema schema;
  schema.name = "wpay";
  schema.version = 1;
  schema.key_field = "user_id";
  schema.event_time_field = "event_timestamp";
  schema.event_time_type = weir::JsonType::kTimestampMs;
  schema.fields = {
      weir::JsonField::Required("merchant_id", weir::JsonType::kString),
      weir::JsonField::OptionalDecimal("amount", 2)};
  return schema;
}

// W-PAY as Avro: the reader schema of fraud-features --format=avro, the
// same fields as WPaySchema() (the amount a decimal with 2 places, the time
// a timestamp-millis long). Version 1 of the payments-value subject is this
// schema; later versions may add fields with defaults (e.g. currency_code).
inline constexpr char kWPayAvroSchema[] =
    R"({"type":"record","name":"Payment","namespace":"wpay","fields":[)"
    R"({"name":"user_id","type":"string"},)"
    R"({"name":"merchant_id","type":"string"},)"
    R"({"name":"amount","type":["null",{"type":"bytes",)"
    R"("logicalType":"decimal","precision":18,"scale":2}],"default":null},)"
    R"({"name":"event_timestamp","type":{"type":"long",)"
    R"("logicalType":"timestamp-millis"}}]})";

// The W-PAY input in both formats the service reads (--format).
inline weir::ServiceSchema WPayServiceSchema() {
  return {WPaySchema(), kWPayAvroSchema};
}

inline weir::FeatureSpec Feature(std::string name, weir::AggregateKind kind,
                                 weir::WindowSpec window, int field) {
  weir::FeatureSpec f;
  f.name = std::move(name);
  f.aggregate = kind;
  f.window = window;
  f.field = field;
  return f;
}

// The F-FRAUD feature set, per user.
inline weir::KeyedWindowOptions FraudFeatures() {
  using weir::AggregateKind;
  const int merchant = 0;  // WPaySchema().fields[0]
  const int amount = 1;    // WPaySchema().fields[1]
  weir::KeyedWindowOptions options;
  options.features = {
      Feature("txn_count_1m", AggregateKind::kCount,
              weir::Tumbling(absl::Minutes(1)), -1),
      Feature("amount_sum_1h", AggregateKind::kDecimalSum,
              weir::Tumbling(absl::Hours(1)), amount),
      Feature("amount_avg_1d", AggregateKind::kMean, weir::Daily(), amount),
      // The last 5 minutes as of each payment, merged from 1-minute tiles:
      // one update per payment (the window ends at the payment).
      Feature("txn_count_5m_sliding", AggregateKind::kCount,
              weir::Sliding(absl::Minutes(5), absl::Minutes(1)), -1),
      // HyperLogLog estimate of the distinct merchants.
      Feature("distinct_merchants_1h", AggregateKind::kDistinctCount,
              weir::Tumbling(absl::Hours(1)), merchant),
      Feature("amount_p99_1h", AggregateKind::kQuantile,
              weir::Tumbling(absl::Hours(1)), amount),
  };
  options.features.back().aggregator.quantile = 0.99;
  options.max_out_of_orderness = absl::Seconds(5);
  options.allowed_lateness = absl::Minutes(1);
  return options;
}

}  // namespace fraud

#endif  // WEIR_EXAMPLES_FRAUD_FEATURES_FRAUD_FEATURES_H_
