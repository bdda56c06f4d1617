// Schema evolution end to end: fraud-features --format=avro against the
// local broker and the test schema registry. W-PAY payments written with
// Avro v1 (WPayAvroWriter) and then v2, an added field with a default
// (weir-produce --format=avro), give the features the same payments give as
// JSON; a record whose schema id the registry never
// gave goes to the dead-letter queue as schema_unknown; an incompatible v3
// (the amount a double) is refused by the registry and, once forced in,
// makes the service refuse to start naming the field.

#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../../examples/fraud_features/fraud_features.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/avro/schema_registry.h"
#include "weir/dlq.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/schema_registry_server.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"
#include "weir/testing/wpay_avro.h"

namespace weir {
namespace {

using fraud_features_testing::CompareFinal;
using fraud_features_testing::FinishService;
using fraud_features_testing::ProduceWPay;
using fraud_features_testing::ReadFinalValues;
using fraud_features_testing::StartService;
using ::testing::HasSubstr;
using testing::WPayAvroWriter;

std::string ProduceBinary() { return WEIR_BINARY_DIR "/weir-produce"; }

constexpr char kSubject[] = "payments-value";

// v2: v1 (fraud::kWPayAvroSchema) and a currency with a default.
std::string WPayV2() {
  std::string v1 = fraud::kWPayAvroSchema;
  v1.resize(v1.size() - 2);  // "]}"
  return v1 + R"(,{"name":"currency_code","type":"string","default":"USD"}]})";
}

// v3: the amount became a double, which the reader's decimal cannot read.
constexpr char kWPayV3[] =
    R"({"type":"record","name":"Payment","namespace":"wpay","fields":[)"
    R"({"name":"user_id","type":"string"},)"
    R"({"name":"merchant_id","type":"string"},)"
    R"({"name":"amount","type":["null","double"],"default":null},)"
    R"({"name":"event_timestamp","type":"long"}]})";

class AvroServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(fraud_features_testing::NeedBinaries());
    WEIR_REQUIRE_PART(testing::NeedExecutable(ProduceBinary(),
                                              "build the weir-produce target"));
    auto dir = testing::TempDir::Create("avro-service-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
    auto registry = testing::SchemaRegistryServer::Start();
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    LocalBroker::Options bo;
    bo.binary_path = fraud_features_testing::BrokerBinary();
    bo.topics = {{"payments", 4}, {"payments-json", 4}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  // Runs fraud-features to the end of `events` records of `topic`; its
  // features go to <dir>/<name>.jsonl, dead letters to <dir>/<name>.dlq.
  void RunService(const std::string& name, const std::string& topic,
                  int64_t events, std::vector<std::string> args) {
    args.insert(args.end(),
                {"--bootstrap=" + broker_->bootstrap(), "--topic=" + topic,
                 "--group=" + name, "--max_events=" + std::to_string(events),
                 "--state_dir=" + dir_->path() + "/" + name,
                 "--sink=file:" + dir_->path() + "/" + name + ".jsonl",
                 "--dlq=file:" + dir_->path() + "/" + name + ".dlq"});
    auto service = StartService(args);
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = FinishService(*service, absl::Seconds(120));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
  }

  // Runs fraud-features and expects it to refuse to start with
  // `exit_code`: its output.
  std::string RunRefused(const std::vector<std::string>& args,
                         int exit_code = 1) {
    std::vector<std::string> argv = {fraud_features_testing::ServiceBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::SubprocessOptions o;
    o.merge_stderr = true;
    auto p = testing::Subprocess::Start(argv, o);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return "";
    auto out = (*p)->ReadAll(absl::Seconds(60));
    auto status = (*p)->Wait(absl::Seconds(60));
    EXPECT_TRUE(out.ok() && status.ok());
    if (!out.ok() || !status.ok()) return "";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == exit_code)
        << *out;
    return *out;
  }

  std::vector<std::string> AvroFlags() const {
    return {"--format=avro", "--schema_registry=" + registry_->url()};
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::SchemaRegistryServer> registry_;
  std::unique_ptr<LocalBroker> broker_;
};

TEST_F(AvroServiceTest, ReadsV1ThenV2AsJsonAndUnknownIdsGoToTheDlq) {
  testing::WPayOptions w;
  w.num_events = 6'000;
  w.num_users = 300;
  w.num_partitions = 4;
  w.malformed_fraction = 0;  // malformed JSON has no Avro counterpart
  const int64_t half = w.num_events / 2;
  constexpr int64_t kUnknown = 5;

  auto v1 = WPayAvroWriter::Create(registry_->url(), kSubject,
                                   fraud::kWPayAvroSchema);
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto encode_v1 = [&](const testing::WPayEvent& e) {
    return (*v1)->Encode(e);
  };
  ASSERT_TRUE(
      ProduceWPay(broker_->bootstrap(), "payments", w, 0, half, encode_v1)
          .ok());
  // The producer moves to v2, here weir-produce writing the JSON lines as
  // Avro; the registry (BACKWARD) accepts it.
  auto events = testing::WPayGenerator::GenerateAll(w);
  ASSERT_TRUE(events.ok()) << events.status();
  const std::string lines = dir_->path() + "/v2.jsonl";
  const std::string avsc = dir_->path() + "/v2.avsc";
  {
    std::FILE* f = std::fopen(lines.c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (int64_t i = half; i < w.num_events; ++i) {
      std::fprintf(f, "%s\n", (*events)[i].json.c_str());
    }
    std::fclose(f);
    f = std::fopen(avsc.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(WPayV2().c_str(), f);
    std::fclose(f);
  }
  testing::SubprocessOptions po;
  po.merge_stderr = true;
  auto produce = testing::Subprocess::Start(
      {ProduceBinary(), "--bootstrap=" + broker_->bootstrap(),
       "--topic=payments", "--format=avro",
       "--schema_registry=" + registry_->url(), "--schema=" + avsc,
       "--input=" + lines, "-X", "enable.idempotence=true"},
      po);
  ASSERT_TRUE(produce.ok()) << produce.status();
  auto produced = (*produce)->ReadAll(absl::Seconds(120));
  auto produce_status = (*produce)->Wait(absl::Seconds(60));
  ASSERT_TRUE(produced.ok() && produce_status.ok());
  ASSERT_TRUE(WIFEXITED(*produce_status) && WEXITSTATUS(*produce_status) == 0)
      << *produced;
  EXPECT_THAT(*produced,
              HasSubstr(absl::StrCat("produced=", w.num_events - half)));
  SchemaRegistryOptions ro;
  ro.url = registry_->url();
  auto client = SchemaRegistryClient::Create(ro);
  ASSERT_TRUE(client.ok()) << client.status();
  auto versions = (*client)->Versions(kSubject);
  ASSERT_TRUE(versions.ok()) << versions.status();
  EXPECT_EQ(versions->size(), 2u);
  // A few records with a schema id the registry never gave.
  auto unknown = WPayAvroWriter::WithId(9999, WPayV2());
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  auto encode_unknown = [&](const testing::WPayEvent& e) {
    return (*unknown)->Encode(e);
  };
  ASSERT_TRUE(ProduceWPay(broker_->bootstrap(), "payments", w, 0, kUnknown,
                          encode_unknown)
                  .ok());
  // The same payments as JSON.
  ASSERT_TRUE(ProduceWPay(broker_->bootstrap(), "payments-json", w).ok());

  RunService("avro", "payments", w.num_events + kUnknown, AvroFlags());
  RunService("json", "payments-json", w.num_events, {});

  auto avro = ReadFinalValues(dir_->path() + "/avro.jsonl");
  ASSERT_TRUE(avro.ok()) << avro.status();
  auto json = ReadFinalValues(dir_->path() + "/json.jsonl");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_GT(json->size(), 100u);
  EXPECT_EQ(CompareFinal(*json, *avro), "");

  auto dead = ReadDeadLetterFile(dir_->path() + "/avro.dlq");
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->size(), static_cast<size_t>(kUnknown));
  for (const DeadLetterRecord& d : *dead) {
    EXPECT_EQ(d.error_type, "schema_unknown") << d.error_message;
  }
}

TEST_F(AvroServiceTest, RefusesToStartWhenTheReaderCannotReadTheLatestSchema) {
  auto v1 = WPayAvroWriter::Create(registry_->url(), kSubject,
                                   fraud::kWPayAvroSchema);
  ASSERT_TRUE(v1.ok()) << v1.status();
  SchemaRegistryOptions ro;
  ro.url = registry_->url();
  auto client = SchemaRegistryClient::Create(ro);
  ASSERT_TRUE(client.ok()) << client.status();
  // The registry refuses v3 under its (default) BACKWARD rule...
  auto refused = (*client)->Register(kSubject, kWPayV3);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  // ... until someone turns the rule off and registers it anyway.
  ASSERT_TRUE(
      (*client)->SetCompatibility(kSubject, SchemaCompatibility::kNone).ok());
  ASSERT_TRUE((*client)->Register(kSubject, kWPayV3).ok());

  std::vector<std::string> args = AvroFlags();
  args.insert(args.end(), {"--bootstrap=" + broker_->bootstrap(),
                           "--state_dir=" + dir_->path() + "/state",
                           "--sink=file:" + dir_->path() + "/out.jsonl",
                           "--dlq=file:" + dir_->path() + "/dlq.jsonl"});
  const std::string out = RunRefused(args);
  EXPECT_THAT(out, HasSubstr("refusing to start"));
  EXPECT_THAT(out, HasSubstr("payments-value version 2"));
  EXPECT_THAT(out, HasSubstr("Payment.amount"));
  EXPECT_THAT(out, HasSubstr("double"));

  // A reader schema that can read v3 is needed; so is a subject of its own:
  // --schema_subject points the check at another subject, which has only
  // v1, and the service starts.
  ASSERT_TRUE(WPayAvroWriter::Create(registry_->url(), "payments-v1-value",
                                     fraud::kWPayAvroSchema)
                  .ok());
  args.push_back("--schema_subject=payments-v1-value");
  args.push_back("--max_seconds=1");
  auto service = StartService(args);
  ASSERT_TRUE(service.ok()) << service.status();
  auto status = FinishService(*service, absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << service->output;
}

// Bad format flags are usage errors (exit 2) naming the flag.
TEST_F(AvroServiceTest, RefusesBadFormatFlags) {
  const std::string bootstrap = "--bootstrap=" + broker_->bootstrap();
  EXPECT_THAT(RunRefused({bootstrap, "--format=avro"}, 2),
              HasSubstr("--schema_registry: required with --format=avro"));
  EXPECT_THAT(RunRefused({bootstrap, "--format=protobuf"}, 2),
              HasSubstr("--format: json or avro"));
  // The embedded default produces JSON.
  EXPECT_THAT(RunRefused(AvroFlags(), 2), HasSubstr("give --bootstrap"));
}

}  // namespace
}  // namespace weir
