// CalibrateCapacity on a team's own definition: two features over a small
// JSON schema, records from an input of the test's own, measured on a real
// RocksDB state with checkpoints; and the options it refuses, by name.

#include "weir/capacity_calibration.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/capacity_plan.h"
#include "weir/json/json_decoder.h"
#include "weir/keyed_window_operator.h"
#include "weir/window.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

// {"device":"d7","reading":12.5,"ts":...}
JsonSchema DeviceSchema() {
  JsonSchema schema;
  schema.name = "readings";
  schema.version = 1;
  schema.key_field = "device";
  schema.event_time_field = "ts";
  schema.event_time_type = JsonType::kTimestampMs;
  schema.fields = {JsonField::Required("reading", JsonType::kDouble)};
  return schema;
}

KeyedWindowOptions DeviceFeatures() {
  KeyedWindowOptions options;
  options.name = "devices";
  options.features = {
      {.name = "readings_1m",
       .aggregate = AggregateKind::kCount,
       .window = Tumbling(absl::Minutes(1))},
      {.name = "reading_mean_6h",
       .aggregate = AggregateKind::kMean,
       .window = Tumbling(absl::Hours(6)),
       .field = 0},
  };
  options.allowed_lateness = absl::Minutes(2);
  return options;
}

// `devices` devices, one reading a second each in turn; every
// `malformed_every`-th record a line the decoder refuses.
class ReadingsInput final : public CalibrationInput {
 public:
  ReadingsInput(int64_t records, int devices, int64_t malformed_every)
      : records_(records),
        devices_(devices),
        malformed_every_(malformed_every) {}

  std::string_view name() const override { return "readings"; }
  int64_t size() const override { return records_; }
  absl::Status status() const override { return absl::OkStatus(); }

  bool Next(RawRecord* record, std::string* storage) override {
    if (next_ == records_) return false;
    const int64_t i = next_++;
    *storage =
        (i + 1) % malformed_every_ == 0
            ? std::string("{\"device\":\"d1\",\"reading\":\"high\"}")
            : absl::StrCat("{\"device\":\"d", i % devices_,
                           "\",\"reading\":", i % 50,
                           ".5,\"ts\":", 1'700'000'000'000 + i * 1000, "}");
    record->topic = "readings";
    record->partition = 0;
    record->offset = i;
    record->key = {};
    record->value = *storage;
    return true;
  }

 private:
  const int64_t records_;
  const int devices_;
  const int64_t malformed_every_;
  int64_t next_ = 0;
};

TEST(CapacityCalibrationTest, MeasuresATeamsOwnDefinition) {
  auto decoder = JsonDecoder::Create(DeviceSchema());
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  ReadingsInput input(/*records=*/12000, /*devices=*/300,
                      /*malformed_every=*/1000);
  CalibrationOptions options;
  options.max_time = absl::Minutes(10);  // the input ends first
  options.checkpoints = 3;
  absl::StatusOr<CapacityCalibration> c =
      CalibrateCapacity(DeviceFeatures(), **decoder, input, options);
  ASSERT_TRUE(c.ok()) << c.status();

  EXPECT_EQ(c->input, "readings");
  EXPECT_EQ(c->events, 12000);
  EXPECT_EQ(c->rejected, 12);
  // Each device's 6-hour window is still open at the end.
  EXPECT_EQ(c->active_entities, 300u);
  // Three during the run (one per third of the input), one at its end.
  EXPECT_EQ(c->checkpoints, 4);
  EXPECT_GT(c->first_checkpoint_bytes, 0u);
  EXPECT_EQ(c->stats.records_in, 12000u - 12u);
  EXPECT_GT(c->state_bytes, 0u);
  EXPECT_GT(c->disk_bytes, 0u);
  const CapacityMeasurements& m = c->measurements;
  EXPECT_TRUE(m.Validate().ok()) << m.Validate();
  EXPECT_DOUBLE_EQ(m.state_bytes_per_entity,
                   static_cast<double>(c->state_bytes) / 300);
  EXPECT_DOUBLE_EQ(m.disk_bytes_per_entity,
                   static_cast<double>(c->disk_bytes) / 300);
  // 1-minute counts fire as the stream moves on: 300 devices, one reading
  // a second, so each device's readings fall in separate minutes and each
  // accepted record ends up as about one fired count (the last minutes stay
  // open); the 6-hour means fire at most once per device in 3.3 hours.
  EXPECT_GT(m.updates_per_event, 0.9);
  EXPECT_LT(m.updates_per_event, 1.1);
  EXPECT_NEAR(m.updates_per_event * 12000,
              static_cast<double>(c->stats.updates_emitted), 1e-6);

  // The plan and the reports on these measurements.
  CapacityTargets t;
  t.target_rate = 1000;
  t.entities = 5000;
  t.retention = StateRetention(DeviceFeatures());
  EXPECT_EQ(t.retention, absl::Hours(6) + absl::Minutes(2));
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(m, t);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string text = CapacityReportText("devices", *c, t, *plan);
  EXPECT_THAT(text, HasSubstr("capacity plan: devices on this machine"));
  EXPECT_THAT(text, HasSubstr("calibration: 12000 readings events (12 "
                              "rejected by the decoder)"));
  EXPECT_THAT(text, HasSubstr("retention 6h2m"));
  const std::string json = CapacityReportJson("devices", *c, t, *plan);
  EXPECT_THAT(json, HasSubstr("\"definition\":\"devices\",\"input\":"
                              "\"readings\",\"events\":12000,\"rejected\":12"));
  EXPECT_THAT(json, HasSubstr(absl::StrCat("\"instances\":", plan->instances)));
}

TEST(CapacityCalibrationTest, StopsAtMaxEvents) {
  auto decoder = JsonDecoder::Create(DeviceSchema());
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  ReadingsInput input(/*records=*/10000, /*devices=*/50,
                      /*malformed_every=*/1'000'000);
  CalibrationOptions options;
  options.max_events = 2500;
  options.max_time = absl::Minutes(10);
  absl::StatusOr<CapacityCalibration> c =
      CalibrateCapacity(DeviceFeatures(), **decoder, input, options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->events, 2500);
  EXPECT_EQ(c->checkpoints, options.checkpoints + 1);
}

TEST(CapacityCalibrationTest, RefusesBadOptionsAndEmptyInput) {
  auto decoder = JsonDecoder::Create(DeviceSchema());
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  struct Case {
    CalibrationOptions options;
    std::string named;
  };
  std::vector<Case> cases(3);
  cases[0].options.max_events = 0;
  cases[0].named = "max_events must be > 0";
  cases[1].options.max_time = absl::ZeroDuration();
  cases[1].named = "max_time must be > 0";
  cases[2].options.checkpoints = 0;
  cases[2].named = "checkpoints must be >= 1";
  for (const Case& c : cases) {
    ReadingsInput input(10, 2, 1000);
    absl::StatusOr<CapacityCalibration> r =
        CalibrateCapacity(DeviceFeatures(), **decoder, input, c.options);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(c.named));
  }
  ReadingsInput empty(0, 1, 1000);
  absl::StatusOr<CapacityCalibration> r =
      CalibrateCapacity(DeviceFeatures(), **decoder, empty, {});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  // Nothing the decoder accepts: no state to measure.
  ReadingsInput refused(100, 1, /*malformed_every=*/1);
  r = CalibrateCapacity(DeviceFeatures(), **decoder, refused, {});
  EXPECT_TRUE(absl::IsInternal(r.status())) << r.status();
  EXPECT_THAT(r.status().message(),
              HasSubstr("100 of 100 records were refused"));
}

}  // namespace
}  // namespace weir
