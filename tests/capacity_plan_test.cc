#include "weir/capacity_plan.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

CapacityMeasurements Measured() {
  CapacityMeasurements m;
  m.events_per_core_second = 100000;
  m.events_per_thread_second = 125000;
  m.state_bytes_per_entity = 500;
  m.disk_bytes_per_entity = 200;
  m.checkpoint_bytes_per_event = 100;
  m.updates_per_event = 1.5;
  return m;
}

CapacityTargets Targets() {
  CapacityTargets t;
  t.target_rate = 60000;
  t.peak = 3;
  t.entities = 10'000'000;
  t.retention = absl::Hours(24);
  t.headroom = 0.75;
  t.checkpoint_interval = absl::Seconds(10);
  t.cores_per_instance = 2;
  t.cache_fraction = 1;
  return t;
}

TEST(CapacityPlanTest, PlansFromFixedMeasurements) {
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(Measured(), Targets());
  ASSERT_TRUE(plan.ok()) << plan.status();
  const CapacityPlan& p = *plan;
  EXPECT_DOUBLE_EQ(p.peak_rate, 180000);
  // 180000 / (100000 × 0.75) = 2.4 cores; the thread: 180000 / 93750 = 1.92.
  EXPECT_EQ(p.cores_needed, 3);
  EXPECT_EQ(p.instances, 2);
  EXPECT_EQ(p.cores, 4);
  EXPECT_EQ(p.partitions, 4);
  // An instance does min(2 × 100000, 125000) = 125000 events/s.
  EXPECT_DOUBLE_EQ(p.utilisation_at_peak, 0.72);
  // 60000 × 86400 could reach more than the 10 M entities.
  EXPECT_EQ(p.active_entities, 10'000'000);
  EXPECT_EQ(p.state_bytes, 5'000'000'000u);
  EXPECT_EQ(p.state_bytes_per_instance, 2'500'000'000u);
  EXPECT_EQ(p.state_bytes_per_partition, 1'250'000'000u);
  // 10 M × 200 / 2 instances × 2.
  EXPECT_EQ(p.disk_bytes_per_instance, 2'000'000'000u);
  // 100 bytes × 30000 events/s per instance × 10 s, and at the peak.
  EXPECT_EQ(p.checkpoint_upload_bytes, 30'000'000u);
  EXPECT_EQ(p.checkpoint_upload_peak_bytes, 90'000'000u);
  EXPECT_DOUBLE_EQ(p.upload_bytes_per_second_at_peak, 9'000'000);
  EXPECT_EQ(p.block_cache_bytes, 3'125'000'000u);
  EXPECT_EQ(p.memtable_bytes, 90'000'000u);
  EXPECT_EQ(p.memory_budget_bytes, 3'215'000'000u);
  EXPECT_DOUBLE_EQ(p.write_buffer_fraction, 90e6 / 3215e6);
  EXPECT_EQ(p.memory_per_instance_bytes, 3'215'000'000u + (256u << 20));
  EXPECT_DOUBLE_EQ(p.sink_updates_per_second, 90000);
  EXPECT_DOUBLE_EQ(p.sink_updates_per_second_at_peak, 270000);
}

TEST(CapacityPlanTest, RetentionBoundsTheEntitiesAndStateBoundsTheUpload) {
  CapacityMeasurements m = Measured();
  m.checkpoint_bytes_per_event = 1e6;
  CapacityTargets t = Targets();
  t.target_rate = 1000;
  t.entities = 1'000'000'000;
  t.retention = absl::Minutes(1);
  t.cores_per_instance = 1;
  t.cache_fraction = 0.5;
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(m, t);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const CapacityPlan& p = *plan;
  EXPECT_EQ(p.cores_needed, 1);
  EXPECT_EQ(p.instances, 1);
  EXPECT_EQ(p.cores, 1);
  EXPECT_EQ(p.partitions, 2);            // at least two per instance
  EXPECT_EQ(p.active_entities, 60'000);  // 1000 events/s × 60 s
  EXPECT_EQ(p.state_bytes, 30'000'000u);
  EXPECT_EQ(p.disk_bytes_per_instance, 24'000'000u);
  // At most the settled state, 60000 × 200 bytes.
  EXPECT_EQ(p.checkpoint_upload_bytes, 12'000'000u);
  EXPECT_EQ(p.checkpoint_upload_peak_bytes, 12'000'000u);
  EXPECT_EQ(p.block_cache_bytes, 18'750'000u);  // half of it, × 1.25
  EXPECT_EQ(p.memtable_bytes, kPlanMinMemtableBytes);
  EXPECT_EQ(p.memory_budget_bytes, 18'750'000u + kPlanMinMemtableBytes);
}

TEST(CapacityPlanTest, ThreadBoundInstances) {
  // Cheap background work: four cores would do, but each instance has one
  // processing thread.
  CapacityMeasurements m = Measured();
  m.events_per_core_second = 1'000'000;
  m.events_per_thread_second = 100'000;
  CapacityTargets t = Targets();
  t.cores_per_instance = 4;
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(m, t);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->cores_needed, 1);
  EXPECT_EQ(plan->instances, 3);  // 180000 / (100000 × 0.75) = 2.4
  EXPECT_EQ(plan->cores, 12);
  EXPECT_EQ(plan->partitions, 12);
  EXPECT_DOUBLE_EQ(plan->utilisation_at_peak, 0.6);
}

TEST(CapacityPlanTest, MemtablesAreCapped) {
  CapacityMeasurements m = Measured();
  m.checkpoint_bytes_per_event = 10'000;
  m.disk_bytes_per_entity = 1000;
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(m, Targets());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->checkpoint_upload_peak_bytes, 5'000'000'000u);  // the state
  EXPECT_EQ(plan->memtable_bytes, kPlanMaxMemtableBytes);
}

struct BadCase {
  std::string field;
  std::function<void(CapacityMeasurements&, CapacityTargets&)> spoil;
};

TEST(CapacityPlanTest, BadInputsNameTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const BadCase cases[] = {
      {"measurements.events_per_core_second",
       [](auto& m, auto&) { m.events_per_core_second = 0; }},
      {"measurements.events_per_core_second",
       [&](auto& m, auto&) { m.events_per_core_second = nan; }},
      {"measurements.events_per_thread_second",
       [](auto& m, auto&) { m.events_per_thread_second = -1; }},
      {"measurements.state_bytes_per_entity",
       [](auto& m, auto&) { m.state_bytes_per_entity = 0; }},
      {"measurements.disk_bytes_per_entity",
       [&](auto& m, auto&) { m.disk_bytes_per_entity = inf; }},
      {"measurements.checkpoint_bytes_per_event",
       [](auto& m, auto&) { m.checkpoint_bytes_per_event = -1; }},
      {"measurements.updates_per_event",
       [&](auto& m, auto&) { m.updates_per_event = nan; }},
      {"targets.target_rate", [](auto&, auto& t) { t.target_rate = 0; }},
      {"targets.peak", [](auto&, auto& t) { t.peak = 0.5; }},
      {"targets.entities", [](auto&, auto& t) { t.entities = 0; }},
      {"targets.retention",
       [](auto&, auto& t) { t.retention = absl::ZeroDuration(); }},
      {"targets.retention",
       [](auto&, auto& t) { t.retention = absl::InfiniteDuration(); }},
      {"targets.headroom", [](auto&, auto& t) { t.headroom = 1.5; }},
      {"targets.headroom", [](auto&, auto& t) { t.headroom = 0; }},
      {"targets.checkpoint_interval",
       [](auto&, auto& t) { t.checkpoint_interval = absl::Seconds(-1); }},
      {"targets.cores_per_instance",
       [](auto&, auto& t) { t.cores_per_instance = 0; }},
      {"targets.cache_fraction", [](auto&, auto& t) { t.cache_fraction = 0; }},
  };
  for (const BadCase& c : cases) {
    CapacityMeasurements m = Measured();
    CapacityTargets t = Targets();
    c.spoil(m, t);
    absl::StatusOr<CapacityPlan> plan = PlanCapacity(m, t);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument)
        << c.field;
    EXPECT_THAT(std::string(plan.status().message()),
                HasSubstr(c.field + " must be"));
  }
}

}  // namespace
}  // namespace weir
