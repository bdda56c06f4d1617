// The streaming service against an independent batch reference (issue 13,
// item 3). sqlite3 computes F-FRAUD's exact features (fraud_features.h:
// txn_count_1m, amount_sum_1h, amount_avg_1d) over the same W-PAY input the
// service reads from the local broker, as a batch job does (every record,
// no watermark), and exports them as CSV; weir-shadow compares the
// service's Redis content and its feature file with that export:
//   - the same input gives zero divergence; the records the stream judged
//     late (its --late_output) explain the only differences, counted apart;
//   - skew injected into the service (another null policy, daily windows
//     at another offset, one partition's records dropped) is caught, on the
//     right features, with exactly the counts of divergent and missing
//     values that the test works out from sqlite's exports alone.

#include <sys/wait.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/dlq.h"
#include "weir/late_records.h"
#include "weir/shadow.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/redis_server.h"
#include "weir/testing/sqlite_oracle.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;
using testing::BatchFeature;

constexpr char kTopic[] = "payments";
// The same stream without the records of one partition.
constexpr char kTopicWithoutPartition[] = "payments_without_p1";
constexpr int32_t kDroppedPartition = 1;
constexpr int kPartitions = 4;
constexpr char kCount1m[] = "txn_count_1m";
constexpr char kSum1h[] = "amount_sum_1h";
constexpr char kAvg1d[] = "amount_avg_1d";

// 60,000 payments are 30 s of event time from midnight: a late record
// (moved 2-10 minutes back) misses its 1-minute window, never its hour or
// day, which close a minute after the hour (allowed lateness).
testing::WPayOptions WPay() {
  testing::WPayOptions w;
  w.num_events = 60'000;
  w.num_users = 3'000;
  w.num_partitions = kPartitions;
  w.seed = 13;
  return w;
}

// F-FRAUD's exact features as a batch job computes them, the daily window
// shifted by `daily_offset`.
testing::SqliteBatchOptions Reference(
    absl::Duration daily_offset = absl::ZeroDuration()) {
  using A = BatchFeature::Aggregate;
  testing::SqliteBatchOptions o;
  o.features = {{kCount1m, A::kCount, absl::Minutes(1), absl::ZeroDuration()},
                {kSum1h, A::kDecimalSum, absl::Hours(1), absl::ZeroDuration()},
                {kAvg1d, A::kMean, absl::Hours(24), daily_offset}};
  return o;
}

// (entity, feature, window start) -> value text ("null" for a null).
using Key = std::tuple<std::string, std::string, int64_t>;
using Values = std::map<Key, std::string>;

// The counts weir-shadow reports for one feature.
struct Counts {
  int64_t compared = 0;
  int64_t divergent = 0;
  int64_t missing_online = 0;
  int64_t missing_batch = 0;
  int64_t explained_by_late = 0;
};
bool operator==(const Counts& a, const Counts& b) {
  return a.divergent == b.divergent && a.missing_online == b.missing_online &&
         a.missing_batch == b.missing_batch &&
         a.explained_by_late == b.explained_by_late;
}
std::ostream& operator<<(std::ostream& os, const Counts& c) {
  return os << "{divergent " << c.divergent << ", missing online "
            << c.missing_online << ", missing in batch " << c.missing_batch
            << ", explained by late " << c.explained_by_late << "}";
}
using FeatureCounts = std::map<std::string, Counts>;

// sqlite3's export of `features` over `events`, written to `path`.
absl::StatusOr<Values> Export(const std::vector<testing::OracleEvent>& events,
                              const testing::SqliteBatchOptions& features,
                              const std::string& path) {
  WEIR_RETURN_IF_ERROR(testing::RunSqliteBatchExport(events, features, path));
  WEIR_ASSIGN_OR_RETURN(std::vector<ShadowValue> rows, ReadShadowCsv(path));
  Values out;
  for (ShadowValue& v : rows) {
    out[{v.entity, v.feature, v.window_start_ms}] = v.value.value_or("null");
  }
  return out;
}

// What the stream judged late, by sqlite (weir's lateness rule in SQL, F-
// FRAUD's 5 s out-of-orderness and 1 minute allowed lateness): the records
// as (partition, offset), their 1-minute windows, and the 1-minute windows
// of the records it folded.
struct Late {
  std::set<std::pair<int32_t, int64_t>> records;
  std::set<Key> windows;
  std::set<Key> folded_windows;
};
absl::StatusOr<Late> LateBySqlite(
    const std::vector<testing::OracleEvent>& events) {
  testing::SqliteOracleOptions o;
  o.window_size = absl::Minutes(1);
  o.max_out_of_orderness = absl::Seconds(5);
  o.allowed_lateness = absl::Minutes(1);
  WEIR_ASSIGN_OR_RETURN(testing::OracleResult r,
                        testing::RunSqliteOracle(events, o));
  Late late;
  late.records = r.late;
  for (const testing::OracleEvent& e : events) {
    if (r.late.count({e.partition, e.offset}) == 0) continue;
    late.windows.insert(
        {e.user_id, kCount1m, e.event_time - e.event_time % 60000});
  }
  for (const auto& [group, aggregates] : r.groups) {
    late.folded_windows.insert({group.first, kCount1m, group.second});
  }
  return late;
}

// What weir-shadow should report for an online feature file holding the
// stream over the input `stream` (a batch export of the service's input,
// skew included), compared with `batch`: every key of the batch, online or
// both, where the values differ, except the windows late records changed
// (`late`), which are explained. REQUIRES (checked): the stream's input
// and the batch agree on the late windows, so that only lateness changed
// them.
absl::StatusOr<FeatureCounts> ExpectedForFile(const Values& batch,
                                              const Values& stream,
                                              const std::set<Key>& late) {
  FeatureCounts out;
  for (const char* f : {kCount1m, kSum1h, kAvg1d}) out[f] = {};
  for (const auto& [key, value] : batch) {
    Counts& c = out[std::get<1>(key)];
    auto s = stream.find(key);
    if (late.count(key) > 0) {
      if (s == stream.end() || s->second != value) {
        return absl::InternalError("a late window is skewed too");
      }
      ++c.explained_by_late;
    } else if (s == stream.end()) {
      ++c.missing_online;
    } else if (s->second != value) {
      ++c.divergent;
    }
  }
  for (const auto& [key, value] : stream) {
    if (batch.count(key) == 0) ++out[std::get<1>(key)].missing_batch;
  }
  return out;
}

// (partition, offset) of the late records in a --late_output file, after
// checking that each missed only 1-minute windows.
absl::StatusOr<std::set<std::pair<int32_t, int64_t>>> ServiceLateRecords(
    const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::vector<DeadLetterRecord> records,
                        ReadDeadLetterFile(path));
  std::set<std::pair<int32_t, int64_t>> out;
  for (const DeadLetterRecord& r : records) {
    if (r.error_type != kLateRecordErrorType) continue;
    WEIR_ASSIGN_OR_RETURN(LateRecordInfo info, ParseLateRecord(r));
    for (const std::string& f : info.features) {
      if (f == kSum1h || f == kAvg1d) {
        return absl::InternalError(
            absl::StrCat("a record was late for ", f, ": ", r.error_message));
      }
    }
    out.emplace(r.partition, r.offset);
  }
  return out;
}

struct ShadowRun {
  int exit_code = -1;
  std::string output;
  FeatureCounts counts;
};

// Runs weir-shadow against the batch export `batch_csv` over F-FRAUD's
// exact features, and reads its Prometheus report back.
absl::StatusOr<ShadowRun> RunShadow(const std::string& batch_csv,
                                    const std::string& dir,
                                    std::vector<std::string> args) {
  const std::string prom = dir + "/shadow.prom";
  std::vector<std::string> argv = {
      WEIR_BINARY_DIR "/weir-shadow",
      "--batch=" + batch_csv,
      absl::StrCat("--features=", kCount1m, ",", kSum1h, ",", kAvg1d),
      absl::StrCat("--tolerance=", kAvg1d, "=1e-9"),
      "--prometheus_report=" + prom,
      "--sample=3"};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::SubprocessOptions o;
  o.merge_stderr = true;
  WEIR_ASSIGN_OR_RETURN(auto child, testing::Subprocess::Start(argv, o));
  ShadowRun run;
  WEIR_ASSIGN_OR_RETURN(run.output, child->ReadAll(absl::Minutes(2)));
  WEIR_ASSIGN_OR_RETURN(const int status, child->Wait(absl::Minutes(1)));
  if (!WIFEXITED(status)) {
    return absl::InternalError("weir-shadow did not exit: " + run.output);
  }
  run.exit_code = WEXITSTATUS(status);
  if (run.exit_code == 2) return run;  // no report
  std::ifstream in(prom);
  std::string line;
  const std::map<std::string, int64_t Counts::*> fields = {
      {"weir_shadow_compared", &Counts::compared},
      {"weir_shadow_divergent", &Counts::divergent},
      {"weir_shadow_missing_online", &Counts::missing_online},
      {"weir_shadow_missing_batch", &Counts::missing_batch},
      {"weir_shadow_explained_by_late", &Counts::explained_by_late}};
  while (std::getline(in, line)) {
    // weir_shadow_divergent{feature="txn_count_1m"} 12
    const size_t brace = line.find("{feature=\"");
    if (line.empty() || line[0] == '#' || brace == std::string::npos) continue;
    auto field = fields.find(line.substr(0, brace));
    if (field == fields.end()) continue;
    const size_t name_end = line.find("\"}", brace);
    const std::string feature = line.substr(brace + 10, name_end - brace - 10);
    int64_t v = 0;
    if (!absl::SimpleAtoi(line.substr(name_end + 3), &v)) {
      return absl::InternalError("bad report line: " + line);
    }
    run.counts[feature].*(field->second) = v;
  }
  return run;
}

class BatchReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fft::BinariesBuilt()) return;
    auto root = testing::TempDir::Create("batch-reference-test");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = new testing::TempDir(std::move(*root));
    auto broker = fft::StartBrokerWithWPay(kTopic, kPartitions, WPay());
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    absl::Status produced =
        broker_->CreateTopic(kTopicWithoutPartition, kPartitions);
    ASSERT_TRUE(produced.ok()) << produced;
    produced = fft::ProduceWPay(broker_->bootstrap(), kTopicWithoutPartition,
                                WPay(), 0, std::nullopt, nullptr,
                                [](const testing::WPayEvent& e) {
                                  return e.partition != kDroppedPartition;
                                });
    ASSERT_TRUE(produced.ok()) << produced;

    auto events = testing::WPayGenerator::GenerateAll(WPay());
    ASSERT_TRUE(events.ok()) << events.status();
    events_ = new std::vector<testing::WPayEvent>(std::move(*events));
    auto batch = Export(Accepted(), Reference(), BatchCsv());
    if (absl::IsFailedPrecondition(batch.status())) {
      no_sqlite_ = new absl::Status(batch.status());
      return;
    }
    ASSERT_TRUE(batch.ok()) << batch.status();
    batch_ = new Values(std::move(*batch));
  }

  static void TearDownTestSuite() {
    delete batch_;
    delete no_sqlite_;
    delete events_;
    delete broker_;
    delete root_;
    batch_ = nullptr;
    no_sqlite_ = nullptr;
    events_ = nullptr;
    broker_ = nullptr;
    root_ = nullptr;
  }

  void SetUp() override {
    WEIR_REQUIRE_PART(fft::NeedBinaries());
    WEIR_REQUIRE_PART(testing::NeedExecutable(WEIR_BINARY_DIR "/weir-shadow",
                                              "build the weir-shadow target"));
    if (no_sqlite_ != nullptr) WEIR_REQUIRE_PART(*no_sqlite_);
    ASSERT_NE(batch_, nullptr) << "setting up the batch reference failed";
  }

  static std::string BatchCsv() { return root_->path() + "/batch.csv"; }

  // Checks a run's output in `dir` (features.jsonl, late.jsonl) against the
  // batch reference: the late records sqlite finds in `late`, then
  // weir-shadow with them exits 0 with the counts the reference gives (the
  // late windows explained). Returns the shadow run.
  static ShadowRun ExpectEqualsReference(const std::string& dir,
                                         const Late& late) {
    auto run_late = ServiceLateRecords(dir + "/late.jsonl");
    EXPECT_TRUE(run_late.ok()) << run_late.status();
    if (run_late.ok()) EXPECT_EQ(*run_late, late.records);
    absl::StatusOr<ShadowRun> run =
        RunShadow(BatchCsv(), dir,
                  {"--online=file:" + dir + "/features.jsonl",
                   "--late_output=file:" + dir + "/late.jsonl"});
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return {};
    EXPECT_EQ(run->exit_code, 0) << run->output;
    absl::StatusOr<FeatureCounts> want =
        ExpectedForFile(*batch_, *batch_, late.windows);
    EXPECT_TRUE(want.ok()) << want.status();
    if (!want.ok()) return *run;
    for (const auto& [feature, c] : *want) {
      EXPECT_EQ(run->counts[feature], c) << feature << "\n" << run->output;
      EXPECT_GT(run->counts[feature].compared, 0) << feature;
    }
    return *run;
  }

  // The accepted W-PAY events (the DLQ's left out), those `keep` says.
  static std::vector<testing::OracleEvent> Accepted(
      const std::function<bool(const testing::WPayEvent&)>& keep = nullptr) {
    std::vector<testing::WPayEvent> kept;
    for (const testing::WPayEvent& e : *events_) {
      if (!keep || keep(e)) kept.push_back(e);
    }
    return testing::OracleEventsFrom(kept);
  }

  // Runs the service named `name` to the end of `topic` (`records` long)
  // with `sink` and `flags`; returns its directory, which holds the late
  // records (late.jsonl) and, for a file sink, features.jsonl.
  static absl::StatusOr<std::string> RunService(
      const std::string& name, const std::string& topic, int64_t records,
      const std::string& sink, const std::vector<std::string>& flags = {}) {
    const std::string dir = absl::StrCat(root_->path(), "/", name);
    std::filesystem::create_directories(dir);
    std::vector<std::string> args = {
        "--bootstrap=" + broker_->bootstrap(),
        "--topic=" + topic,
        "--group=" + name,
        "--state_dir=" + dir + "/state",
        "--sink=" + (sink.empty() ? "file:" + dir + "/features.jsonl" : sink),
        "--redis_key_prefix=fraud:",
        "--dlq=file:" + dir + "/dlq.jsonl",
        "--late_output=file:" + dir + "/late.jsonl",
        "--checkpoint_interval=1h",
        absl::StrCat("--max_events=", records)};
    args.insert(args.end(), flags.begin(), flags.end());
    WEIR_RETURN_IF_ERROR(
        fft::RunServiceToEnd(args, absl::Seconds(120)).status());
    return dir;
  }

  // Runs the service with `flags` on `topic` (`records` long) into a
  // feature file, and checks that weir-shadow against the batch reference
  // alerts with exactly the counts the batch exports give: `stream` is the
  // export of the service's input as the flags change it, `late_input`
  // the input's accepted events (for the lateness).
  static void ExpectSkewCaught(const std::string& name,
                               const std::string& topic, int64_t records,
                               const std::vector<std::string>& flags,
                               const Values& stream,
                               const std::vector<testing::OracleEvent>& input,
                               const std::set<std::string>& skewed) {
    absl::StatusOr<Late> late = LateBySqlite(input);
    ASSERT_TRUE(late.ok()) << late.status();
    absl::StatusOr<FeatureCounts> want =
        ExpectedForFile(*batch_, stream, late->windows);
    ASSERT_TRUE(want.ok()) << want.status();
    for (const auto& [feature, c] : *want) {
      const bool skew = c.divergent + c.missing_online + c.missing_batch > 0;
      EXPECT_EQ(skew, skewed.count(feature) > 0) << feature << " " << c;
    }

    absl::StatusOr<std::string> dir =
        RunService(name, topic, records, "", flags);
    ASSERT_TRUE(dir.ok()) << dir.status();
    auto service_late = ServiceLateRecords(*dir + "/late.jsonl");
    ASSERT_TRUE(service_late.ok()) << service_late.status();
    EXPECT_EQ(*service_late, late->records);

    absl::StatusOr<ShadowRun> run =
        RunShadow(BatchCsv(), *dir,
                  {"--online=file:" + *dir + "/features.jsonl",
                   "--late_output=file:" + *dir + "/late.jsonl"});
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->exit_code, 1) << run->output;
    for (const auto& [feature, c] : *want) {
      EXPECT_EQ(run->counts[feature], c) << feature << "\n" << run->output;
    }
    for (const std::string& feature : skewed) {
      EXPECT_THAT(run->output, ::testing::HasSubstr(feature + ": "))
          << "the alert names " << feature;
    }
  }

  static testing::TempDir* root_;
  static LocalBroker* broker_;
  static std::vector<testing::WPayEvent>* events_;
  static Values* batch_;
  static absl::Status* no_sqlite_;
};

testing::TempDir* BatchReferenceTest::root_ = nullptr;
LocalBroker* BatchReferenceTest::broker_ = nullptr;
std::vector<testing::WPayEvent>* BatchReferenceTest::events_ = nullptr;
Values* BatchReferenceTest::batch_ = nullptr;
absl::Status* BatchReferenceTest::no_sqlite_ = nullptr;

// The same input: zero divergence against the feature file and against
// Redis. The late records explain the only differences (their 1-minute
// windows), which without the late output are real divergences.
TEST_F(BatchReferenceTest, StreamEqualsTheBatchReference) {
  const std::vector<testing::OracleEvent> input = Accepted();
  absl::StatusOr<Late> late = LateBySqlite(input);
  ASSERT_TRUE(late.ok()) << late.status();
  ASSERT_GT(late->windows.size(), 50u);
  const int64_t records = WPay().num_events;

  absl::StatusOr<std::string> dir = RunService("file", kTopic, records, "");
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<ShadowRun> run = ExpectEqualsReference(*dir, *late);
  const std::string online = "--online=file:" + *dir + "/features.jsonl";
  EXPECT_EQ(run->counts[kCount1m].explained_by_late,
            static_cast<int64_t>(late->windows.size()));
  int64_t batch_values = 0;
  for (const auto& [key, value] : *batch_) {
    if (std::get<1>(key) == kSum1h) ++batch_values;
  }
  EXPECT_EQ(run->counts[kSum1h].compared, batch_values);

  // Without the late output the late windows are real differences: those
  // with folded records diverge, the others are missing online.
  run = RunShadow(BatchCsv(), *dir, {online});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 1) << run->output;
  Counts bare;
  for (const Key& k : late->windows) {
    ++(late->folded_windows.count(k) > 0 ? bare.divergent
                                         : bare.missing_online);
  }
  EXPECT_EQ(run->counts[kCount1m], bare) << run->output;
  EXPECT_EQ(run->counts[kSum1h], Counts()) << run->output;

  // Redis holds each user's newest window: the late windows that count are
  // those at or after the user's newest folded window.
  auto redis = testing::RedisServer::Start();
  WEIR_REQUIRE_PART(redis.status());
  dir = RunService("redis", kTopic, records,
                   absl::StrCat("redis://127.0.0.1:", (*redis)->port()));
  ASSERT_TRUE(dir.ok()) << dir.status();
  run = RunShadow(
      BatchCsv(), *dir,
      {absl::StrCat("--online=redis://127.0.0.1:", (*redis)->port()),
       "--redis_prefix=fraud:", "--late_output=file:" + *dir + "/late.jsonl"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->output;
  std::map<std::string, int64_t> newest_folded;
  for (const Key& k : late->folded_windows) {
    int64_t& n =
        newest_folded.try_emplace(std::get<0>(k), INT64_MIN).first->second;
    n = std::max(n, std::get<2>(k));
  }
  Counts redis_want;
  for (const Key& k : late->windows) {
    auto n = newest_folded.find(std::get<0>(k));
    if (n == newest_folded.end() || std::get<2>(k) >= n->second) {
      ++redis_want.explained_by_late;
    }
  }
  EXPECT_EQ(run->counts[kCount1m], redis_want) << run->output;
  EXPECT_EQ(run->counts[kSum1h], Counts()) << run->output;
  EXPECT_EQ(run->counts[kAvg1d], Counts()) << run->output;
  std::set<std::string> users;
  for (const auto& [key, value] : *batch_) users.insert(std::get<0>(key));
  EXPECT_EQ(run->counts[kSum1h].compared, static_cast<int64_t>(users.size()));
}

// A backfill of the same topic (the service as `--backfill_from=kafka`,
// the whole log) equals the batch reference just as the stream does: the
// same comparison, the same counts, zero divergence.
TEST_F(BatchReferenceTest, BackfillEqualsTheBatchReference) {
  const std::vector<testing::OracleEvent> input = Accepted();
  absl::StatusOr<Late> late = LateBySqlite(input);
  ASSERT_TRUE(late.ok()) << late.status();
  const std::string dir = root_->path() + "/backfill";
  std::filesystem::create_directories(dir);
  absl::StatusOr<std::string> out = fft::RunServiceToEnd(
      {"--bootstrap=" + broker_->bootstrap(), absl::StrCat("--topic=", kTopic),
       "--group=backfill", "--state_dir=" + dir + "/state",
       "--sink=file:" + dir + "/features.jsonl",
       "--dlq=file:" + dir + "/dlq.jsonl",
       "--late_output=file:" + dir + "/late.jsonl", "--backfill_from=kafka"},
      absl::Seconds(120));
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectEqualsReference(dir, *late);
}

// (a) A null amount folded as 0 instead of skipped: the mean counts it (the
// sum does not change: an empty decimal sum is 0 too).
TEST_F(BatchReferenceTest, AnotherNullPolicyIsCaught) {
  std::vector<testing::OracleEvent> zeroed = Accepted();
  for (testing::OracleEvent& e : zeroed) {
    if (!e.amount_cents.has_value()) e.amount_cents = 0;
  }
  absl::StatusOr<Values> stream =
      Export(zeroed, Reference(), root_->path() + "/nulls_as_zero.csv");
  ASSERT_TRUE(stream.ok()) << stream.status();
  ExpectSkewCaught("nulls", kTopic, WPay().num_events,
                   {"--null_amount_as_zero"}, *stream, Accepted(), {kAvg1d});
}

// (b) Daily windows from 03:00 instead of midnight UTC.
TEST_F(BatchReferenceTest, DailyWindowsAtAnotherOffsetAreCaught) {
  absl::StatusOr<Values> stream = Export(Accepted(), Reference(absl::Hours(3)),
                                         root_->path() + "/offset.csv");
  ASSERT_TRUE(stream.ok()) << stream.status();
  ExpectSkewCaught("offset", kTopic, WPay().num_events, {"--daily_offset=3h"},
                   *stream, Accepted(), {kAvg1d});
}

// (c) One partition's records never reach the service (the input topic
// lacks them; the other partitions keep their offsets).
TEST_F(BatchReferenceTest, ADroppedPartitionIsCaught) {
  auto keep = [](const testing::WPayEvent& e) {
    return e.partition != kDroppedPartition;
  };
  int64_t records = 0;
  for (const testing::WPayEvent& e : *events_) records += keep(e) ? 1 : 0;
  const std::vector<testing::OracleEvent> input = Accepted(keep);
  absl::StatusOr<Values> stream =
      Export(input, Reference(), root_->path() + "/dropped.csv");
  ASSERT_TRUE(stream.ok()) << stream.status();
  ExpectSkewCaught("dropped", kTopicWithoutPartition, records, {}, *stream,
                   input, {kCount1m, kSum1h, kAvg1d});
}

}  // namespace
}  // namespace weir
