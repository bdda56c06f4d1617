// Tests of the service layer (weir/service.h) in process, against the local
// broker: the metrics endpoint serves every metric docs/operations.md lists
// (the list is parsed from the page, so the page and the library cannot
// drift apart), /healthz and /readyz answer, and late records go to a
// JSON-lines file or a Kafka topic as dead letters that weir-dlq-replay
// replays.

#include "weir/service.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../../examples/fraud_features/fraud_features.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "weir/dlq.h"
#include "weir/env.h"
#include "weir/json/json_decoder.h"
#include "weir/late_records.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = ::weir::fraud_features_testing;
using ::testing::HasSubstr;

constexpr char kReplayBinary[] = WEIR_BINARY_DIR "/weir-dlq-replay";
constexpr char kTopic[] = "payments";
constexpr int kPartitions = 4;

// Every metric name the "## Metrics" section of docs/operations.md lists in
// its tables (rows starting "| `weir_...` |").
std::vector<std::string> DocumentedMetrics() {
  std::ifstream in(WEIR_SOURCE_DIR "/docs/operations.md");
  std::vector<std::string> names;
  const std::regex row(R"(^\| `(weir_[a-z0-9_]+)` \|)");
  bool in_metrics = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_metrics = line == "## Metrics";
    std::smatch m;
    if (in_metrics && std::regex_search(line, m, row)) names.push_back(m[1]);
  }
  return names;
}

// The metric names that have at least one sample in a scrape (a histogram
// by its name, from its _bucket series).
std::set<std::string> SampledMetrics(const std::string& text) {
  std::set<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::string name(line.substr(0, line.find_first_of("{ ")));
    out.insert(name);
    if (absl::EndsWith(name, "_bucket")) {
      out.insert(name.substr(0, name.size() - 7));
    }
  }
  return out;
}

// GET path on the endpoint of `metrics_url`: (status, body).
std::pair<int, std::string> Get(const std::string& metrics_url,
                                const std::string& path) {
  const std::string base = metrics_url.substr(0, metrics_url.rfind('/'));
  httplib::Client client(base);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto res = client.Get(path.c_str());
  if (!res) return {0, ""};
  return {res->status, res->body};
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WEIR_REQUIRE_PART(testing::NeedExecutable(fft::BrokerBinary(),
                                              "build the weir-broker target"));
    LocalBroker::Options bo;
    bo.binary_path = fft::BrokerBinary();
    bo.topics = {{kTopic, kPartitions},
                 {std::string(kTopic) + ".dlq", 1},
                 {std::string(kTopic) + ".late", 1}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    auto dir = testing::TempDir::Create("service-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));

    wpay_.num_events = 20000;
    wpay_.num_users = 2000;
    wpay_.num_partitions = kPartitions;
    wpay_.late_fraction = 0.02;
    ASSERT_TRUE(fft::ProduceWPay(broker_->bootstrap(), kTopic, wpay_).ok());
    auto decoder = JsonDecoder::Create(fraud::WPaySchema());
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    decoder_ = *std::move(decoder);
  }

  ServiceOptions Options() const {
    ServiceOptions o;
    o.name = "service_test";
    o.bootstrap = broker_->bootstrap();
    o.topic = kTopic;
    o.group = "service-test";
    o.state_dir = dir_->path() + "/state";
    o.sink = "file:" + dir_->path() + "/features.jsonl";
    o.dlq = "file:" + dir_->path() + "/dlq.jsonl";
    o.checkpoint_interval = absl::Seconds(1);
    o.checkpoint_min_pause = absl::ZeroDuration();
    o.handle_signals = false;
    return o;
  }

  // Runs a bounded run over the whole stream; returns the service after Run.
  std::unique_ptr<Service> RunToEnd(ServiceOptions o) {
    o.max_events = wpay_.num_events;
    auto service =
        Service::Create(std::move(o), fraud::FraudFeatures(), decoder_.get());
    EXPECT_TRUE(service.ok()) << service.status();
    if (!service.ok()) return nullptr;
    const absl::Status run = (*service)->Run();
    EXPECT_TRUE(run.ok()) << run;
    return *std::move(service);
  }

  // (partition, offset) -> the message value the generator produced there.
  std::map<std::pair<int32_t, int64_t>, std::string> Produced() const {
    std::map<std::pair<int32_t, int64_t>, std::string> out;
    auto gen = testing::WPayGenerator::Create(wpay_);
    testing::WPayEvent e;
    while ((*gen)->Next(e)) out[{e.partition, e.offset}] = e.json;
    return out;
  }

  // Runs weir-dlq-replay with `args`; its output.
  std::string Replay(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {kReplayBinary,
                                     "--bootstrap=" + broker_->bootstrap()};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::SubprocessOptions so;
    so.merge_stderr = true;
    auto p = testing::Subprocess::Start(argv, so);
    if (!p.ok()) return p.status().ToString();
    auto out = (*p)->ReadAll(absl::Seconds(120));
    auto status = (*p)->Wait(absl::Seconds(10));
    return absl::StrCat(out.ok() ? *out : out.status().ToString(),
                        " exit=", status.ok() ? *status : -1);
  }

  std::unique_ptr<LocalBroker> broker_;
  std::optional<testing::TempDir> dir_;
  testing::WPayOptions wpay_;
  std::unique_ptr<JsonDecoder> decoder_;
};

TEST_F(ServiceTest, EndpointServesEveryMetricOfTheOperationsGuide) {
  const std::vector<std::string> documented = DocumentedMetrics();
  // The parser found the tables (29 metrics when this test was written).
  ASSERT_GE(documented.size(), 25u);

  auto service =
      Service::Create(Options(), fraud::FraudFeatures(), decoder_.get());
  ASSERT_TRUE(service.ok()) << service.status();
  const std::string url = (*service)->metrics_url();
  ASSERT_FALSE(url.empty());
  absl::Status run;
  std::thread runner([&] { run = (*service)->Run(); });

  std::vector<std::string> missing = documented;
  bool ready = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while ((!missing.empty() || !ready) && absl::Now() < deadline) {
    auto [status, body] = Get(url, "/metrics");
    if (status == 200) {
      const std::set<std::string> sampled = SampledMetrics(body);
      std::erase_if(missing, [&](const std::string& name) {
        return sampled.contains(name);
      });
    }
    ready = ready || Get(url, "/readyz").first == 200;
    absl::SleepFor(absl::Milliseconds(200));  // between scrapes
  }
  EXPECT_THAT(missing, ::testing::IsEmpty())
      << "documented in docs/operations.md but not served";
  EXPECT_TRUE(ready) << "/readyz never answered 200";
  EXPECT_EQ(Get(url, "/healthz").first, 200);
  // Every series carries the pipeline's label.
  EXPECT_THAT(Get(url, "/metrics").second,
              HasSubstr("weir_records_in_total{pipeline=\"service_test\"}"));

  (*service)->Stop();
  runner.join();
  EXPECT_TRUE(run.ok()) << run;
  EXPECT_GT((*service)->stats().records_in, 0);
}

TEST_F(ServiceTest, LateRecordsGoToAFileAndReplay) {
  WEIR_REQUIRE_PART(testing::NeedExecutable(
      kReplayBinary, "build the weir-dlq-replay target"));
  const std::string late_path = dir_->path() + "/late.jsonl";
  ServiceOptions o = Options();
  o.late_output = "file:" + late_path;
  o.metrics_port.reset();
  std::unique_ptr<Service> service = RunToEnd(o);
  ASSERT_NE(service, nullptr);
  const int64_t late = service->stats().late_records;
  ASSERT_GT(late, 0);

  // One dead letter per late record, with the record's original bytes,
  // the watermark it missed and the features it missed.
  const auto produced = Produced();
  std::ifstream in(late_path);
  int64_t lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    absl::StatusOr<DeadLetterRecord> r = ParseDeadLetterJson(line);
    ASSERT_TRUE(r.ok()) << r.status() << ": " << line;
    EXPECT_EQ(r->error_type, "late_record");
    EXPECT_EQ(r->topic, kTopic);
    EXPECT_EQ(r->pipeline_name, "service_test");
    auto it = produced.find({r->partition, r->offset});
    ASSERT_NE(it, produced.end()) << line;
    EXPECT_EQ(r->value, it->second);
    absl::StatusOr<LateRecordInfo> info = ParseLateRecord(*r);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_LT(info->event_time, info->watermark);
    EXPECT_THAT(info->features, ::testing::Contains("txn_count_1m"));
  }
  EXPECT_EQ(lines, late);

  // weir-dlq-replay reads the file like a dead-letter file.
  EXPECT_THAT(Replay({"--input=" + late_path, "--topic=payments-late-replay",
                      "--error_type=late_record"}),
              HasSubstr(absl::StrCat("read=", late, " matched=", late,
                                     " duplicates=0 published=", late)));
}

// Records the directories created and the files opened for writing
// through it. Thread-safe, as an Env must be (the upload threads use it).
class RecordingEnv : public EnvWrapper {
 public:
  RecordingEnv() : EnvWrapper(Env::Default()) {}

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, WriteMode mode) override {
    Note(path);
    return EnvWrapper::NewWritableFile(path, mode);
  }
  absl::Status CreateDirectory(const std::string& dir) override {
    Note(dir);
    return EnvWrapper::CreateDirectory(dir);
  }

  bool Saw(const std::string& path) const {
    return SawOne([&](const std::string& p) { return p == path; });
  }
  bool SawUnder(const std::string& dir) const {
    return SawOne(
        [&](const std::string& p) { return absl::StartsWith(p, dir + "/"); });
  }
  bool SawFileNamed(const std::string& name) const {
    return SawOne(
        [&](const std::string& p) { return absl::EndsWith(p, "/" + name); });
  }

 private:
  template <typename Matches>
  bool SawOne(Matches matches) const {
    absl::MutexLock lock(&mu_);
    return std::any_of(paths_.begin(), paths_.end(), matches);
  }
  void Note(const std::string& path) {
    absl::MutexLock lock(&mu_);
    paths_.push_back(path);
  }

  mutable absl::Mutex mu_;
  std::vector<std::string> paths_ ABSL_GUARDED_BY(mu_);
};

// The files a service writes itself (not RocksDB's) go through
// ServiceOptions::env, so a fault-injecting Env reaches them.
TEST_F(ServiceTest, ItsFilesGoThroughItsEnv) {
  for (const std::string backend : {"rocksdb", "memory"}) {
    SCOPED_TRACE(backend);
    RecordingEnv env;
    ServiceOptions o = Options();
    const std::string run = dir_->path() + "/" + backend;
    o.env = &env;
    o.state_backend = backend;
    o.state_dir = run + "/state";
    o.sink = "file:" + run + "-features.jsonl";
    o.dlq = "file:" + run + "-dlq.jsonl";
    o.late_output = "file:" + run + "-late.jsonl";
    o.group = "service-test-" + backend;
    o.metrics_port.reset();
    std::unique_ptr<Service> service = RunToEnd(o);
    ASSERT_NE(service, nullptr);
    ASSERT_GT(service->stats().late_records, 0);
    ASSERT_GT(service->stats().checkpoints_completed, 0);
    EXPECT_TRUE(env.Saw(run + "/state"));
    EXPECT_TRUE(env.SawUnder(run + "/state/checkpoints"));  // file:// store
    EXPECT_TRUE(env.Saw(run + "-features.jsonl"));
    EXPECT_TRUE(env.Saw(run + "-dlq.jsonl"));
    EXPECT_TRUE(env.Saw(run + "-late.jsonl"));
    if (backend == "memory") EXPECT_TRUE(env.SawFileNamed("state.mem"));
  }
}

TEST_F(ServiceTest, LateRecordsGoToAKafkaTopic) {
  WEIR_REQUIRE_PART(testing::NeedExecutable(
      kReplayBinary, "build the weir-dlq-replay target"));
  ServiceOptions o = Options();
  o.late_output = "kafka";
  o.metrics_port.reset();
  std::unique_ptr<Service> service = RunToEnd(o);
  ASSERT_NE(service, nullptr);
  const int64_t late = service->stats().late_records;
  ASSERT_GT(late, 0);
  // The topic <topic>.late holds one dead letter per late record, and
  // weir-dlq-replay reads it like a DLQ topic.
  const std::string out = Replay(
      {"--dlq_topic=payments.late", "--error_type=late_record", "--dry_run"});
  EXPECT_THAT(out, HasSubstr(absl::StrCat("read=", late, " matched=", late,
                                          " duplicates=0 published=0")));
  EXPECT_THAT(out, HasSubstr("exit=0"));
}

TEST_F(ServiceTest, MemoryStateRestoresFromItsCheckpoints) {
  ServiceOptions o = Options();
  o.state_backend = "memory";
  o.metrics_port.reset();
  std::unique_ptr<Service> first = RunToEnd(o);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->stats().records_in, wpay_.num_events);
  EXPECT_GE(first->stats().checkpoints_completed, 1);
  first.reset();
  // A second instance of the group restores every partition from the
  // memory backends' checkpoints and has nothing left to read.
  o.state_dir = dir_->path() + "/state2";
  o.group = "service-test-restore";  // no wait for the first to leave
  o.checkpoint_uri = "file://" + dir_->path() + "/state/checkpoints";
  std::unique_ptr<Service> second = RunToEnd(o);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->stats().partitions_restored, kPartitions);
  EXPECT_EQ(second->stats().records_in, 0);
}

TEST(ServiceOptionsTest, ValidateNamesTheBadField) {
  ServiceOptions o;
  o.name = "orders";
  o.bootstrap = "127.0.0.1:9092";
  o.topic = "orders";
  o.group = "orders";
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
  auto message = [](ServiceOptions bad) {
    return std::string(bad.Validate().message());
  };
  ServiceOptions bad = o;
  bad.name = "Orders!";
  EXPECT_THAT(message(bad), HasSubstr("name"));
  bad = o;
  bad.late_output = "s3://nowhere";
  EXPECT_THAT(message(bad), HasSubstr("late_output"));
  bad = o;
  bad.sink_batch_size = 0;
  EXPECT_THAT(message(bad), HasSubstr("sink_batch_size"));
  bad = o;
  bad.state_backend = "leveldb";
  EXPECT_THAT(message(bad), HasSubstr("state_backend"));
  bad = o;
  bad.max_events = 0;
  EXPECT_THAT(message(bad), HasSubstr("max_events"));
  bad = o;
  bad.kafka_properties = {"=x"};
  EXPECT_THAT(message(bad), HasSubstr("kafka_property"));
}

}  // namespace
}  // namespace weir
