// -----------------------------------------------------------------------------
// File: order_features/main.cc (the `order-features` service)
// -----------------------------------------------------------------------------
//
// A team's own feature set as a weir service: per-customer order features
// over the JSON topic `orders`. The feature definition is this file; the
// rest (Kafka consumer group, sink, dead letters, late records, checkpoints,
// metrics, SIGTERM, bounded runs, summary) is weir/service.h, with the
// standard service flags (docs/operations.md). It builds inside weir's tree
// or alone against an installed weir (tests/install/install.test.sh does).
//
// Example:
//   $ order-features --bootstrap=kafka-1:9092 --state_dir=/var/lib/orders \
//       --sink=redis://127.0.0.1:6379 --late_output=kafka
//   $ order-features --bootstrap=127.0.0.1:40123 --max_events=1000 \
//       --sink=file:/tmp/order-features.jsonl --dlq=file:/tmp/dlq.jsonl

#include <memory>

#include "absl/time/time.h"
#include "weir/json/json_decoder.h"
#include "weir/service.h"

namespace {

// {"customer_id":"c7","store_id":"s3","total":25.10,"created_ms":...}
weir::JsonSchema OrderSchema() {
  weir::JsonSchema schema;
  schema.name = "orders";
  schema.version = 1;
  schema.key_field = "customer_id";
  schema.event_time_field = "created_ms";
  schema.event_time_type = weir::JsonType::kTimestampMs;
  schema.fields = {
      weir::JsonField::Required("store_id", weir::JsonType::kString),
      weir::JsonField::RequiredDecimal("total", 2)};
  return schema;
}

weir::KeyedWindowOptions OrderFeatures() {
  using weir::AggregateKind;
  const int store = 0;  // OrderSchema().fields[0]
  const int total = 1;  // OrderSchema().fields[1]
  weir::KeyedWindowOptions options;
  options.features = {
      {.name = "orders_1h",
       .aggregate = AggregateKind::kCount,
       .window = weir::Tumbling(absl::Hours(1))},
      {.name = "spend_1d",
       .aggregate = AggregateKind::kDecimalSum,
       .window = weir::Daily(),
       .field = total},
      {.name = "basket_avg_1d",
       .aggregate = AggregateKind::kMean,
       .window = weir::Daily(),
       .field = total},
      {.name = "stores_1d",
       .aggregate = AggregateKind::kDistinctCount,
       .window = weir::Daily(),
       .field = store},
  };
  options.max_out_of_orderness = absl::Seconds(10);
  options.allowed_lateness = absl::Minutes(5);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  weir::ServiceOptions defaults;
  defaults.name = "order_features";
  defaults.topic = "orders";
  defaults.group = "order-features";
  defaults.redis_key_prefix = "orders:";
  defaults.show_keys = {"c1", "c2"};
  absl::StatusOr<weir::ServiceOptions> options = weir::ParseServiceFlags(
      argc, argv, defaults,
      "order-features: per-customer order features from the Kafka topic "
      "'orders' (a weir service).");
  if (!options.ok()) return weir::ReportServiceError(options, 2);
  absl::StatusOr<std::unique_ptr<weir::JsonDecoder>> decoder =
      weir::JsonDecoder::Create(OrderSchema());
  if (!decoder.ok()) return weir::ReportServiceError(decoder, 1);
  return weir::ReportServiceError(
      weir::RunService(*std::move(options), OrderFeatures(), decoder->get()),
      1);
}
