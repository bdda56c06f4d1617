// Runs the weir-plan tool: a real calibration of the embedded definition
// (F-FRAUD over W-PAY, on RocksDB, with checkpoints) that prints a plan, as
// text and as JSON the library's arithmetic agrees with; a calibration on a
// sample file; and bad flags named with exit status 2.

#include <sys/wait.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/capacity_plan.h"
#include "weir/internal/json_reader.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace testing {
namespace {

using internal::JsonValue;
using ::testing::HasSubstr;

const std::string kWeirPlan = std::string(WEIR_BINARY_DIR) + "/weir-plan";
// A team's own service (examples/order_features), which plans its own
// definition with --plan.
const std::string kOrderFeatures =
    std::string(WEIR_BINARY_DIR) + "/examples/order_features/order-features";

// A short calibration: at most a second of processing.
const std::vector<std::string> kSmall = {"--seconds=1", "--events=200000",
                                         "--users=20000", "--target_rate=20000",
                                         "--entities=1000000"};

class WeirPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(
        testing::NeedExecutable(kWeirPlan, "build the weir-plan target"));
  }

  // Runs weir-plan with `args`; returns its stdout (and stderr, with
  // `merge_stderr`) and sets `exit_code`.
  std::string Run(const std::vector<std::string>& args, int& exit_code,
                  bool merge_stderr = false,
                  const std::string& program = kWeirPlan) {
    std::vector<std::string> argv = {program};
    argv.insert(argv.end(), args.begin(), args.end());
    auto child = Subprocess::Start(argv, {.merge_stderr = merge_stderr});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return "";
    auto out = (*child)->ReadAll(absl::Minutes(2));
    EXPECT_TRUE(out.ok()) << out.status();
    auto status = (*child)->Wait(absl::Minutes(2));
    EXPECT_TRUE(status.ok()) << status.status();
    exit_code = status.ok() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return out.ok() ? *out : "";
  }
};

// The number member `name` of `object`; fails the test if it is missing.
double Number(const JsonValue& object, const std::string& name) {
  const JsonValue* v = object.Find(name);
  double d = -1;
  EXPECT_TRUE(v != nullptr && v->type == JsonValue::Type::kNumber &&
              absl::SimpleAtod(v->text, &d))
      << name;
  return d;
}

TEST_F(WeirPlanTest, CalibratesAndPrintsAPlan) {
  int exit_code = -1;
  const std::string out = Run(kSmall, exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("calibration: "));
  for (const char* line : {"events_per_core_second", "events_per_thread_second",
                           "state_bytes_per_entity", "disk_bytes_per_entity",
                           "checkpoint_bytes_per_event", "updates_per_event"}) {
    const size_t at = out.find(std::string("  ") + line);
    ASSERT_NE(at, std::string::npos) << line << " in\n" << out;
    const size_t start = out.find_first_not_of(' ', at + 2 + strlen(line));
    const std::string value = out.substr(start, out.find('\n', start) - start);
    double d = 0;
    ASSERT_TRUE(absl::SimpleAtod(value, &d)) << line << ": " << value;
    EXPECT_GT(d, 0) << line;
  }
  for (const char* line : {"plan:", "  instances ", "  partitions ",
                           "  RocksDB memory budget ", "  memory per instance ",
                           "  checkpoint interval         10s: upload "}) {
    EXPECT_THAT(out, HasSubstr(line));
  }
}

TEST_F(WeirPlanTest, JsonHoldsTheMeasurementsAndTheirPlan) {
  std::vector<std::string> args = kSmall;
  args.push_back("--json");
  args.push_back("--checkpoint_interval=30s");
  int exit_code = -1;
  const std::string out = Run(args, exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  absl::StatusOr<JsonValue> doc = internal::ReadJson(out);
  ASSERT_TRUE(doc.ok()) << doc.status() << "\n" << out;
  const JsonValue* calibration = doc->Find("calibration");
  const JsonValue* measured = doc->Find("measurements");
  const JsonValue* targets = doc->Find("targets");
  const JsonValue* plan = doc->Find("plan");
  ASSERT_TRUE(calibration && measured && targets && plan) << out;

  EXPECT_GT(Number(*calibration, "events"), 0);
  EXPECT_GE(Number(*calibration, "checkpoints"), 2);
  EXPECT_GT(Number(*calibration, "active_entities"), 0);
  CapacityMeasurements m;
  m.events_per_core_second = Number(*measured, "events_per_core_second");
  m.events_per_thread_second = Number(*measured, "events_per_thread_second");
  m.state_bytes_per_entity = Number(*measured, "state_bytes_per_entity");
  m.disk_bytes_per_entity = Number(*measured, "disk_bytes_per_entity");
  m.checkpoint_bytes_per_event =
      Number(*measured, "checkpoint_bytes_per_event");
  m.updates_per_event = Number(*measured, "updates_per_event");
  for (double v : {m.events_per_core_second, m.events_per_thread_second,
                   m.state_bytes_per_entity, m.disk_bytes_per_entity,
                   m.checkpoint_bytes_per_event, m.updates_per_event}) {
    EXPECT_GT(v, 0) << out;
  }
  // The process's CPU includes the processing thread's.
  EXPECT_GE(m.events_per_thread_second, m.events_per_core_second * 0.999);

  EXPECT_EQ(Number(*targets, "target_rate"), 20000);
  EXPECT_EQ(Number(*targets, "peak"), 3);
  EXPECT_EQ(Number(*targets, "entities"), 1e6);
  // The default retention: F-FRAUD's day plus its minute of lateness.
  EXPECT_EQ(Number(*targets, "retention_seconds"), 86400 + 60);
  EXPECT_EQ(Number(*targets, "checkpoint_interval_seconds"), 30);

  // The printed plan is the library's on the printed measurements (which
  // are rounded, so compare what rounding cannot move much).
  CapacityTargets t;
  t.target_rate = 20000;
  t.entities = 1'000'000;
  t.retention = absl::Seconds(86400 + 60);
  t.checkpoint_interval = absl::Seconds(30);
  absl::StatusOr<CapacityPlan> expected = PlanCapacity(m, t);
  ASSERT_TRUE(expected.ok()) << expected.status();
  const double instances = Number(*plan, "instances");
  EXPECT_GE(instances, 1);
  EXPECT_NEAR(instances, static_cast<double>(expected->instances), 1);
  EXPECT_EQ(Number(*plan, "cores"), 2 * instances);
  EXPECT_EQ(Number(*plan, "partitions"), 2 * instances);
  EXPECT_EQ(Number(*plan, "active_entities"), 1e6);
  EXPECT_NEAR(Number(*plan, "state_bytes"),
              static_cast<double>(expected->state_bytes),
              1e-3 * static_cast<double>(expected->state_bytes));
  EXPECT_GT(Number(*plan, "memory_per_instance_bytes"),
            Number(*plan, "state_bytes") / instances);
  EXPECT_GT(Number(*plan, "checkpoint_upload_bytes"), 0);
  EXPECT_LE(Number(*plan, "utilisation_at_peak"), 0.7 + 1e-9);
}

TEST_F(WeirPlanTest, CalibratesOnASampleFile) {
  auto dir = TempDir::Create("weir-plan-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  WPayOptions options;
  options.num_events = 20000;
  options.num_users = 2000;
  auto events = WPayGenerator::GenerateAll(options);
  ASSERT_TRUE(events.ok()) << events.status();
  const std::string path = dir->path() + "/wpay.jsonl";
  {
    std::ofstream sample(path);
    for (const WPayEvent& e : *events) sample << e.json << "\n";
    ASSERT_TRUE(sample.good());
  }
  int exit_code = -1;
  const std::string out =
      Run({"--sample=" + path, "--seconds=600", "--target_rate=1000",
           "--entities=2000", "--json"},
          exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  absl::StatusOr<JsonValue> doc = internal::ReadJson(out);
  ASSERT_TRUE(doc.ok()) << doc.status() << "\n" << out;
  const JsonValue* calibration = doc->Find("calibration");
  const JsonValue* measured = doc->Find("measurements");
  ASSERT_TRUE(calibration && measured) << out;
  const JsonValue* input = calibration->Find("input");
  ASSERT_NE(input, nullptr);
  EXPECT_EQ(input->text, "sample");
  // Every line, the malformed ones included (they are rejected).
  EXPECT_EQ(Number(*calibration, "events"), 20000);
  EXPECT_GT(Number(*calibration, "rejected"), 0);
  EXPECT_GE(Number(*calibration, "checkpoints"), 2);
  EXPECT_LE(Number(*calibration, "active_entities"), 2000);
  for (const char* m : {"events_per_core_second", "state_bytes_per_entity",
                        "checkpoint_bytes_per_event", "updates_per_event"}) {
    EXPECT_GT(Number(*measured, m), 0) << m;
  }

  const std::string missing = Run({"--sample=" + dir->path() + "/none.jsonl",
                                   "--target_rate=1000", "--entities=2000"},
                                  exit_code, /*merge_stderr=*/true);
  EXPECT_EQ(exit_code, 1);
  EXPECT_THAT(missing, HasSubstr("cannot open the sample"));
}

TEST_F(WeirPlanTest, BadFlagsAreNamed) {
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  const Case cases[] = {
      {{"--entities=1000"}, "--target_rate must be > 0"},
      {{"--target_rate=1000"}, "--entities must be > 0"},
      {{"--target_rate=1000", "--entities=10", "--headroom=1.5"},
       "--headroom must be in (0, 1]"},
      {{"--target_rate=1000", "--entities=10", "--peak=0.5"},
       "--peak must be >= 1"},
      {{"--target_rate=1000", "--entities=10", "--cores_per_instance=0"},
       "--cores_per_instance must be >= 1"},
      {{"--target_rate=1000", "--entities=10", "--retention=0s"},
       "--retention must be > 0"},
      {{"--target_rate=1000", "--entities=10", "--seconds=0"},
       "--seconds must be > 0"},
      {{"--target_rate=1000", "--entities=10", "--retention=soon"},
       "retention"},
  };
  for (const Case& c : cases) {
    int exit_code = -1;
    const std::string out = Run(c.args, exit_code, /*merge_stderr=*/true);
    EXPECT_EQ(exit_code, 2) << c.named << ": " << out;
    EXPECT_THAT(out, HasSubstr(c.named));
  }
}

// A service binary calibrates its own definition (order-features: four
// features, hourly and daily windows, 5 minutes of lateness) with --plan.
TEST_F(WeirPlanTest, AServicePlansItsOwnDefinition) {
  WEIR_REQUIRE_PART(testing::NeedExecutable(
      kOrderFeatures, "build the order-features example"));
  auto dir = TempDir::Create("weir-plan-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/orders.jsonl";
  constexpr int kOrders = 6000, kCustomers = 600, kMalformed = 3;
  {
    std::ofstream sample(path);
    const int64_t t0 = 1'700'000'000'000;
    for (int i = 0; i < kOrders; ++i) {
      sample << "{\"customer_id\":\"c" << i % kCustomers
             << "\",\"store_id\":\"s" << i % 7 << "\",\"total\":" << 10 + i % 90
             << ".25,\"created_ms\":" << t0 + int64_t{i} * 1000 << "}\n";
      if (i % 2000 == 0) sample << "{\"customer_id\":\"c1\",\"total\":\"x\"}\n";
    }
    ASSERT_TRUE(sample.good());
  }
  int exit_code = -1;
  const std::string out = Run(
      {"--plan", "--plan_sample=" + path, "--plan_target_rate=5000",
       "--plan_entities=200000", "--plan_max_time=600s", "--plan_json",
       "--checkpoint_interval=30s", "--state_dir=" + dir->path() + "/state"},
      exit_code, /*merge_stderr=*/false, kOrderFeatures);
  ASSERT_EQ(exit_code, 0) << out;
  absl::StatusOr<JsonValue> doc = internal::ReadJson(out);
  ASSERT_TRUE(doc.ok()) << doc.status() << "\n" << out;
  const JsonValue* calibration = doc->Find("calibration");
  const JsonValue* measured = doc->Find("measurements");
  const JsonValue* targets = doc->Find("targets");
  const JsonValue* plan = doc->Find("plan");
  ASSERT_TRUE(calibration && measured && targets && plan) << out;
  const JsonValue* definition = calibration->Find("definition");
  ASSERT_NE(definition, nullptr);
  EXPECT_EQ(definition->text, "order_features (4 features)");
  EXPECT_EQ(Number(*calibration, "events"), kOrders + kMalformed);
  EXPECT_EQ(Number(*calibration, "rejected"), kMalformed);
  // Every customer holds open daily windows at the end of the sample.
  EXPECT_EQ(Number(*calibration, "active_entities"), kCustomers);
  for (const char* m : {"events_per_core_second", "events_per_thread_second",
                        "state_bytes_per_entity", "disk_bytes_per_entity",
                        "updates_per_event"}) {
    EXPECT_GT(Number(*measured, m), 0) << m;
  }
  // order-features' own retention: a day plus 5 minutes of lateness; the
  // service's checkpoint interval.
  EXPECT_EQ(Number(*targets, "retention_seconds"), 86400 + 300);
  EXPECT_EQ(Number(*targets, "checkpoint_interval_seconds"), 30);
  EXPECT_EQ(Number(*plan, "active_entities"), 200000);
  EXPECT_GE(Number(*plan, "instances"), 1);

  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string named;
  };
  const Case cases[] = {
      {{"--plan"}, 2, "--plan_sample: required with --plan"},
      {{"--plan", "--plan_sample=" + path, "--plan_entities=10"},
       2,
       "--plan_target_rate must be > 0"},
      {{"--plan", "--plan_sample=" + path, "--plan_target_rate=10",
        "--plan_entities=10", "--plan_max_events=0"},
       2,
       "--plan_max_events must be > 0"},
      {{"--plan", "--plan_sample=" + dir->path() + "/none.jsonl",
        "--plan_target_rate=10", "--plan_entities=10"},
       1,
       "cannot open the sample"},
  };
  for (const Case& c : cases) {
    const std::string err =
        Run(c.args, exit_code, /*merge_stderr=*/true, kOrderFeatures);
    EXPECT_EQ(exit_code, c.exit_code) << c.named << ": " << err;
    EXPECT_THAT(err, HasSubstr(c.named));
  }
}

}  // namespace
}  // namespace testing
}  // namespace weir
