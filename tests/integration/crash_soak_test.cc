// Crash tests of the checkpoint protocol (RELIABILITY.md, scenarios 1 and
// 2), on the fraud-features service run as a child process against the
// local broker (its own process, so the log survives every kill):
//
//   - Golden: an uninterrupted run over N W-PAY events; all six F-FRAUD
//     features equal an independent computation, key by key (ExpectOracle).
//   - Crash soak: the same input, SIGKILLed at least 30 times (file://
//     store; 12 with an s3:// store on s3rver) at moments drawn over the
//     whole life of a process, and restarted with the same state directory,
//     group and checkpoint store, then run to the end. The service logs its
//     phase (`weir phase=<name>`, docs/operations.md): each kill waits for
//     the line of a target phase, then kills after a random delay (fixed
//     seed) drawn within that phase; the phase a kill landed in is the last
//     phase line the process wrote. A phase that the drawn kills all missed
//     (a short phase on a slow machine) is then hit by construction: the
//     process kills itself right after that phase's line (the service's
//     --fault_kill_in_phase), so every phase of kPhases is hit at least
//     once on any machine. A kill counts only if the process was still
//     running (its wait status says SIGKILL). Then: no (key, feature, window,
//     version) carries two values in all the runs' outputs and golden's
//     (ExpectNoConflictingVersions); the deduplicated output equals golden
//     and the oracle; the dead letters equal golden's; and the last run
//     restored every partition, which is certain because an earlier run
//     was seen completing a checkpoint round before it was killed.
//   - Kill points: a run killed inside the checkpoint protocol
//     (the service's --fault_kill_at, checkpoint.h) after an earlier checkpoint
//     was published; the restart restores a published checkpoint, and the
//     final output equals golden.
// Every test checks that the broker's log start offsets are at or below
// the checkpointed offsets, so that data the broker dropped can never pass
// for a weir bug.
//
// WEIR_SOAK_SCALE (default 1, the CI form) multiplies the events and the
// number of kills.

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/checkpoint.h"
#include "weir/dlq.h"
#include "weir/object_store.h"
#include "weir/sketch.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/s3rver.h"
#include "weir/testing/sqlite_oracle.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 16;

int Scale() {
  const char* s = std::getenv("WEIR_SOAK_SCALE");
  int v = 1;
  if (s != nullptr && absl::SimpleAtoi(s, &v) && v >= 1) return v;
  return 1;
}

int64_t NumEvents() { return 200'000 * static_cast<int64_t>(Scale()); }

testing::WPayOptions WPay() {
  testing::WPayOptions w;
  w.num_events = NumEvents();
  w.num_users = 100'000;
  w.num_partitions = kPartitions;
  w.seed = 7;
  return w;
}

// Where one instance (or one series of restarts) keeps its things.
struct RunDirs {
  std::string state;
  std::string store_uri;
  std::string sink;
  std::string dlq;
};

RunDirs MakeDirs(const std::string& root, const std::string& name) {
  RunDirs d;
  d.state = absl::StrCat(root, "/", name, "/state");
  d.store_uri = absl::StrCat("file://", root, "/", name, "/store");
  d.sink = absl::StrCat(root, "/", name, "/features.jsonl");
  d.dlq = absl::StrCat(root, "/", name, "/dlq.jsonl");
  std::filesystem::create_directories(absl::StrCat(root, "/", name));
  return d;
}

// Dead letters, deduplicated by source position (replays write them again).
absl::StatusOr<std::set<std::pair<int32_t, int64_t>>> DeadLetters(
    const std::string& path) {
  absl::StatusOr<std::vector<DeadLetterRecord>> all = ReadDeadLetterFile(path);
  if (absl::IsNotFound(all.status())) {
    return std::set<std::pair<int32_t, int64_t>>();
  }
  if (!all.ok()) return all.status();
  std::set<std::pair<int32_t, int64_t>> out;
  for (const DeadLetterRecord& r : *all) out.emplace(r.partition, r.offset);
  return out;
}

// The phases of a service's life, in order: "startup" from the service,
// the rest from its Pipeline (weir::PipelinePhaseName). Each must see a
// kill.
const std::vector<const char*> kPhases = {
    "startup",    "join",   "restore",         "processing",
    "checkpoint", "firing", "final_checkpoint"};
constexpr char kPhasePrefix[] = "weir phase=";

// The position of `phase` in a life; "stopped" (and anything unknown)
// after all of kPhases.
int PhaseIndex(absl::string_view phase) {
  for (size_t i = 0; i < kPhases.size(); ++i) {
    if (phase == kPhases[i]) return static_cast<int>(i);
  }
  return static_cast<int>(kPhases.size());
}

// The phases a process logged, in order.
std::vector<std::string> Phases(const std::string& output) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (absl::ConsumePrefix(&line, kPhasePrefix)) out.emplace_back(line);
  }
  return out;
}

// The last phase a process logged: where it was when it died.
std::string LastPhase(const std::string& output) {
  std::vector<std::string> all = Phases(output);
  return all.empty() ? "none" : all.back();
}

// Whether a process logged the end of a checkpoint round it started
// (checkpoint, then processing): each of its partitions then has a
// published checkpoint.
bool CompletedRound(const std::string& output) {
  bool in_round = false;
  for (const std::string& phase : Phases(output)) {
    if (phase == "checkpoint") in_round = true;
    if (phase == "processing" && in_round) return true;
  }
  return false;
}

// The number in the summary's "N partitions restored", or -1.
int64_t RestoredPartitions(const std::string& output) {
  const size_t at = output.find(" partitions restored");
  if (at == std::string::npos) return -1;
  size_t begin = at;
  while (begin > 0 && isdigit(static_cast<unsigned char>(output[begin - 1]))) {
    --begin;
  }
  int64_t v = -1;
  if (!absl::SimpleAtoi(output.substr(begin, at - begin), &v)) return -1;
  return v;
}

// A moment to kill at: `delay` after the `occurrence`th line of `phase`;
// or, with `self`, the moment the process writes that line (it kills
// itself).
struct KillTarget {
  std::string phase;
  int occurrence = 1;
  absl::Duration delay;
  bool self = false;
};

struct KillOutcome {
  bool killed = false;  // SIGKILL ended the process (it was running)
  std::string phase;    // the last phase line before the kill
  std::string output;
};

// The independent computation of all six features over the golden input
// (see ExpectOracle).
struct Oracle {
  // By window size: the sqlite oracle's groups and late records.
  testing::OracleResult minute, hour, day;
  // The accepted events by (partition, offset).
  std::map<std::pair<int32_t, int64_t>, testing::WPayEvent> events;
  // The events of each user, not late for one-minute tiles, in offset
  // order (a user's events share one partition).
  std::map<std::string, std::vector<const testing::WPayEvent*>> minute_ok;
  // (user, hour start) -> merchants and non-null amounts of the events
  // not late for the hour.
  std::map<std::pair<std::string, EventTime>, std::set<std::string>> merchants;
  std::map<std::pair<std::string, EventTime>, std::vector<int64_t>> amounts;
};

class CrashSoakTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fft::BinariesBuilt()) return;
    auto dir = testing::TempDir::Create("crash-soak");
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = new testing::TempDir(std::move(*dir));
    LocalBroker::Options bo;
    bo.binary_path = fft::BrokerBinary();
    bo.topics = {{kTopic, kPartitions}};
    auto broker = LocalBroker::Start(bo);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    absl::Status produced =
        fft::ProduceWPay(broker_->bootstrap(), kTopic, WPay());
    ASSERT_TRUE(produced.ok()) << produced;

    // The golden run: uninterrupted, fresh store.
    golden_dirs_ = new RunDirs(MakeDirs(root_->path(), "golden"));
    auto service = fft::StartService(Args(*golden_dirs_, "golden"));
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(180));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
    auto golden = fft::ReadFinalValues(golden_dirs_->sink);
    ASSERT_TRUE(golden.ok()) << golden.status();
    golden_ = new fft::FinalValues(std::move(*golden));
    auto dead = DeadLetters(golden_dirs_->dlq);
    ASSERT_TRUE(dead.ok()) << dead.status();
    golden_dead_ = new std::set<std::pair<int32_t, int64_t>>(*dead);
  }

  static void TearDownTestSuite() {
    delete golden_dead_;
    delete golden_;
    delete golden_dirs_;
    delete broker_;
    delete root_;
    golden_dead_ = nullptr;
    golden_ = nullptr;
    golden_dirs_ = nullptr;
    broker_ = nullptr;
    root_ = nullptr;
  }

  void SetUp() override {
    WEIR_REQUIRE_PART(fft::NeedBinaries());
    ASSERT_NE(golden_, nullptr) << "the golden run failed";
  }

  // The service's flags for one run over the whole topic.
  static std::vector<std::string> Args(const RunDirs& d,
                                       const std::string& group) {
    return {"--bootstrap=" + broker_->bootstrap(),
            absl::StrCat("--topic=", kTopic), "--group=" + group,
            "--state_dir=" + d.state, "--checkpoint_uri=" + d.store_uri,
            "--sink=file:" + d.sink, "--dlq=file:" + d.dlq,
            // Checkpoints every half second, so that they cut the input in
            // the middle and restarts replay from there.
            "--checkpoint_interval=500ms", "--checkpoint_min_pause=500ms",
            absl::StrCat("--max_events=", NumEvents()),
            "--kafka_property=auto.offset.reset=error",
            "--kafka_property=session.timeout.ms=3000",
            "--kafka_property=heartbeat.interval.ms=300",
            "--s3_endpoint=" + s3_endpoint_};
  }

  // Runs until the process exits by itself; expects a clean exit.
  static void RunToEnd(const RunDirs& d, const std::string& group,
                       const std::vector<std::string>& env,
                       std::string* output = nullptr) {
    auto service = fft::StartService(Args(d, group), env);
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(180));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << service->output;
    if (output != nullptr) *output = service->output;
  }

  // Starts a run and SIGKILLs it in `target` (see the file comment).
  static KillOutcome RunAndKillInPhase(const RunDirs& d,
                                       const std::string& group,
                                       const std::vector<std::string>& env,
                                       const KillTarget& target) {
    KillOutcome out;
    std::vector<std::string> argv = {fft::ServiceBinary()};
    for (const std::string& a : Args(d, group)) argv.push_back(a);
    if (target.self) {
      argv.push_back(absl::StrCat("--fault_kill_in_phase=", target.phase, ":",
                                  target.occurrence));
    }
    testing::SubprocessOptions o;
    o.env = env;
    o.merge_stderr = true;
    auto process = testing::Subprocess::Start(argv, o);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return out;
    testing::Subprocess& p = **process;
    const int target_index = PhaseIndex(target.phase);
    int seen = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(180);
    while (true) {
      absl::StatusOr<std::string> line = p.ReadLine(deadline - absl::Now());
      if (absl::IsOutOfRange(line.status())) {
        // It killed itself in the target phase, or it finished before
        // that phase: a complete run, no kill.
        auto status = p.Wait(absl::Seconds(30));
        EXPECT_TRUE(status.ok()) << status.status();
        if (!status.ok()) return out;
        out.killed = WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
        EXPECT_TRUE(out.killed ||
                    (WIFEXITED(*status) && WEXITSTATUS(*status) == 0))
            << out.output;
        out.phase = LastPhase(out.output);
        return out;
      }
      EXPECT_TRUE(line.ok()) << line.status() << "\n" << out.output;
      if (!line.ok()) return out;
      absl::StrAppend(&out.output, *line, "\n");
      absl::string_view name = *line;
      if (!absl::ConsumePrefix(&name, kPhasePrefix)) continue;
      const int index = PhaseIndex(name);
      // The target; or, once the input ended (firing and after, which
      // never return), a later phase: the process went past the target,
      // so it dies where it is.
      if (target.self) continue;  // it dies by itself
      if ((index == target_index && ++seen == target.occurrence) ||
          (index > target_index && index >= PhaseIndex("firing"))) {
        break;
      }
    }
    absl::SleepFor(target.delay);  // the random moment itself
    EXPECT_TRUE(p.Signal(SIGKILL).ok());
    auto status = p.Wait(absl::Seconds(30));
    EXPECT_TRUE(status.ok()) << status.status();
    if (!status.ok()) return out;
    // Counts only if SIGKILL ended it, i.e. it was still running.
    out.killed = WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
    if (!out.killed) {
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
          << out.output;
    }
    auto rest = p.ReadAll(absl::Seconds(10));
    if (rest.ok()) absl::StrAppend(&out.output, *rest);
    out.phase = LastPhase(out.output);
    return out;
  }

  // Checks the run's output and store against golden (see the file
  // comment).
  static void ExpectGolden(const RunDirs& d, const std::string& uri,
                           const ObjectStoreOptions& store_options) {
    auto final = fft::ReadFinalValues(d.sink);
    ASSERT_TRUE(final.ok()) << final.status();
    EXPECT_EQ(final->size(), golden_->size());
    EXPECT_EQ(fft::CompareFinal(*golden_, *final), "");
    auto dead = DeadLetters(d.dlq);
    ASSERT_TRUE(dead.ok()) << dead.status();
    EXPECT_EQ(*dead, *golden_dead_) << "dead letters differ";
    ExpectLogStartAtOrBelowCheckpoints(uri, store_options);
  }

  // The checkpoints of partition `p` in `store`.
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> PartitionStore(
      ObjectStore* store, int p) {
    CheckpointStoreOptions so;
    so.prefix = CheckpointPrefix(absl::StrCat("fraud_features/", kTopic), p);
    return CheckpointStore::Create(store, so);
  }

  // RELIABILITY.md: data the broker dropped must never pass for a weir
  // bug, so the log must still hold every record from each retained
  // checkpoint's offset on; and the newest checkpoints cover the whole log.
  static void ExpectLogStartAtOrBelowCheckpoints(
      const std::string& uri, const ObjectStoreOptions& store_options) {
    auto low = fft::LogStartOffsets(broker_->bootstrap(), kTopic, kPartitions);
    ASSERT_TRUE(low.ok()) << low.status();
    auto store = OpenObjectStore(uri, store_options);
    ASSERT_TRUE(store.ok()) << store.status();
    int64_t newest_total = 0;
    for (int p = 0; p < kPartitions; ++p) {
      auto cs = PartitionStore(store->get(), p);
      ASSERT_TRUE(cs.ok()) << cs.status();
      auto ids = (*cs)->ListCheckpoints();
      ASSERT_TRUE(ids.ok()) << ids.status();
      ASSERT_FALSE(ids->empty()) << "partition " << p << " has no checkpoint";
      int64_t newest = -1;
      for (uint64_t id : *ids) {
        auto m = (*cs)->ReadCheckpoint(id);
        if (absl::IsDataLoss(m.status()) && uri.rfind("s3://", 0) == 0) {
          // s3rver writes an object in place as it arrives (real S3 makes a
          // PUT visible whole), so a service killed mid-upload can leave a
          // torn manifest there. Its checksum catches it; restore skips it.
          continue;
        }
        ASSERT_TRUE(m.ok()) << m.status();
        ASSERT_EQ(m->metadata.source_offsets.size(), 1u);
        EXPECT_LE((*low)[p], m->metadata.source_offsets[0].offset)
            << "partition " << p << ": the broker dropped records a "
            << "checkpoint still needs";
        newest = m->metadata.source_offsets[0].offset;  // ids ascend
      }
      ASSERT_GE(newest, 0) << "partition " << p << " has no valid checkpoint";
      newest_total += newest;
    }
    EXPECT_EQ(newest_total, NumEvents());
  }

  // Reads every update of the FileSink logs `paths` (all the runs that
  // wrote them, replays included): no (key, feature, window, version) may
  // carry two values, not even in the last bit (fraud_features_testing.h,
  // SameValue).
  static void ExpectNoConflictingVersions(
      const std::vector<std::string>& paths) {
    absl::flat_hash_map<std::string, Value> seen;
    int64_t updates = 0;
    int conflicts = 0;
    for (const std::string& path : paths) {
      auto all = ReadFeatureFile(path);
      ASSERT_TRUE(all.ok()) << all.status();
      updates += static_cast<int64_t>(all->size());
      for (const FeatureUpdate& u : *all) {
        std::string version = absl::StrCat(
            u.key, "\t", u.feature, "\t", u.window.start, "\t", u.window.end,
            "\t", u.version_time, "\t", u.version_offset);
        auto [it, inserted] = seen.try_emplace(std::move(version), u.value);
        if (inserted) continue;
        const bool same = fft::SameValue(it->second, u.value);
        if (!same && ++conflicts <= 5) {
          ADD_FAILURE() << "version " << it->first << " carries "
                        << it->second.ToString() << " and "
                        << u.value.ToString();
        }
      }
    }
    EXPECT_EQ(conflicts, 0);
    std::printf("%lld updates, %zu distinct versions, %d conflicts\n",
                static_cast<long long>(updates), seen.size(), conflicts);
  }

  // The oracle, computed once.
  static const Oracle& GetOracle() {
    static const Oracle* oracle = [] {
      auto o = std::make_unique<Oracle>();
      auto events = testing::WPayGenerator::GenerateAll(WPay());
      EXPECT_TRUE(events.ok()) << events.status();
      if (!events.ok()) return o.release();
      const std::vector<testing::OracleEvent> oracle_events =
          testing::OracleEventsFrom(*events);
      struct Size {
        absl::Duration size;
        testing::OracleResult* result;
      };
      for (const Size& s :
           {Size{absl::Minutes(1), &o->minute}, Size{absl::Hours(1), &o->hour},
            Size{absl::Hours(24), &o->day}}) {
        testing::SqliteOracleOptions so;
        so.window_size = s.size;
        so.max_out_of_orderness = absl::Seconds(5);  // FraudFeatures()
        so.allowed_lateness = absl::Minutes(1);
        auto r = testing::RunSqliteOracle(oracle_events, so);
        EXPECT_TRUE(r.ok()) << r.status();
        if (r.ok()) *s.result = std::move(*r);
      }
      for (testing::WPayEvent& e : *events) {
        if (!e.accepted()) continue;
        const std::pair<int32_t, int64_t> at(e.partition, e.offset);
        o->events.emplace(at, std::move(e));
      }
      // In (partition, offset) order, so each user's events are in offset
      // order.
      for (const auto& [at, e] : o->events) {
        if (!o->minute.late.count(at)) o->minute_ok[e.user_id].push_back(&e);
        if (o->hour.late.count(at)) continue;
        const std::pair<std::string, EventTime> group(
            e.user_id, FloorTo(e.event_time, 3'600'000));
        o->merchants[group].insert(e.merchant_id);
        if (e.amount_cents.has_value()) {
          o->amounts[group].push_back(*e.amount_cents);
        }
      }
      return o.release();
    }();
    return *oracle;
  }

  // All six F-FRAUD features of `got` (final values) against independent
  // computations over the same input:
  //   - txn_count_1m, amount_sum_1h, amount_avg_1d: sqlite (the lateness
  //     rule in SQL; sqlite_oracle.h), exactly (the mean within rounding);
  //   - txn_count_5m_sliding: a brute-force recount of each window's
  //     newest version: the user's events that are not late for their
  //     one-minute tile (sqlite), up to the version's offset, inside the
  //     window (docs/semantics.md, "Sliding windows");
  //   - distinct_merchants_1h: the exact distinct count of the events not
  //     late for the hour, within HyperLogLog's documented error (3
  //     standard errors at precision 14, at least 1);
  //   - amount_p99_1h: x_i, the i-th smallest of the hour's non-null
  //     amounts for the smallest i with i / n >= 0.99, exactly when the hour
  //     has at most 32 of them, else within the histogram's relative error
  //     (1%).
  static void ExpectOracle(const fft::FinalValues& got) {
    const Oracle& o = GetOracle();
    if (::testing::Test::HasFailure()) return;
    std::map<std::string, size_t> windows;
    std::map<std::string, int> mismatches;
    auto mismatch = [&](const std::string& feature, const std::string& what) {
      if (++mismatches[feature] <= 5) ADD_FAILURE() << feature << " " << what;
    };
    for (const auto& [k, u] : got) ++windows[std::get<1>(k)];
    auto find = [&](const std::string& key, const char* feature,
                    EventTime start) -> const Value* {
      auto it = got.find({key, feature, start});
      return it == got.end() ? nullptr : &it->second.value;
    };
    auto show = [](const Value* v) {
      return v == nullptr ? std::string("none") : v->ToString();
    };

    // sqlite: counts, sums, mean.
    EXPECT_EQ(windows["txn_count_1m"], o.minute.groups.size());
    for (const auto& [g, r] : o.minute.groups) {
      const Value* v = find(g.first, "txn_count_1m", g.second);
      if (v == nullptr || !(*v == Value::Int64(r.count))) {
        mismatch("txn_count_1m", absl::StrCat(g.first, " ", g.second, ": ",
                                              r.count, " vs ", show(v)));
      }
    }
    EXPECT_EQ(windows["amount_sum_1h"], o.hour.groups.size());
    for (const auto& [g, r] : o.hour.groups) {
      const Value* v = find(g.first, "amount_sum_1h", g.second);
      if (v == nullptr || !(*v == Value::Dec(r.sum_cents, 2))) {
        mismatch("amount_sum_1h", absl::StrCat(g.first, " ", g.second, ": ",
                                               r.sum_cents, " vs ", show(v)));
      }
    }
    EXPECT_EQ(windows["amount_avg_1d"], o.day.groups.size());
    for (const auto& [g, r] : o.day.groups) {
      const Value* v = find(g.first, "amount_avg_1d", g.second);
      const Value want =
          r.nonnull_count == 0
              ? Value::Null()
              : Value::Double(static_cast<double>(r.sum_cents) / 100.0 /
                              static_cast<double>(r.nonnull_count));
      if (v == nullptr || !fft::CloseToOracle(want, *v)) {
        mismatch("amount_avg_1d",
                 absl::StrCat(g.first, " ", g.second, ": ", want.ToString(),
                              " vs ", show(v)));
      }
    }

    // Brute force: the sliding count.
    size_t tiles = 0;
    for (const auto& [user, events] : o.minute_ok) {
      std::set<EventTime> ends;
      for (const testing::WPayEvent* e : events) {
        ends.insert(FloorTo(e->event_time, 60'000) + 60'000);
      }
      tiles += ends.size();
    }
    EXPECT_EQ(windows["txn_count_5m_sliding"], tiles);
    for (const auto& [k, u] : got) {
      if (std::get<1>(k) != "txn_count_5m_sliding") continue;
      auto it = o.minute_ok.find(u.key);
      int64_t n = 0;
      if (it != o.minute_ok.end()) {
        for (const testing::WPayEvent* e : it->second) {
          n += e->offset <= u.version_offset &&
               e->event_time >= u.window.start && e->event_time < u.window.end;
        }
      }
      if (!(u.value == Value::Int64(n))) {
        mismatch(
            "txn_count_5m_sliding",
            absl::StrCat(u.key, " ", u.window.start, " @", u.version_offset,
                         ": ", n, " vs ", u.value.ToString()));
      }
    }

    // Sketches, within their documented error.
    EXPECT_EQ(windows["distinct_merchants_1h"], o.merchants.size());
    const double hll_error = 3 * HyperLogLog::StandardError(14);
    int64_t hll_inexact = 0;
    for (const auto& [g, merchants] : o.merchants) {
      const Value* v = find(g.first, "distinct_merchants_1h", g.second);
      const double n = static_cast<double>(merchants.size());
      const double est = v == nullptr                        ? -1
                         : v->type() == Value::Type::kInt64  ? v->int64_value()
                         : v->type() == Value::Type::kDouble ? v->double_value()
                                                             : -1;
      if (est != n) ++hll_inexact;
      if (est < 0 || std::abs(est - n) > std::max(1.0, hll_error * n)) {
        mismatch(
            "distinct_merchants_1h",
            absl::StrCat(g.first, " ", g.second, ": ", n, " vs ", show(v)));
      }
    }
    EXPECT_EQ(windows["amount_p99_1h"], o.hour.groups.size());
    const double relative_error =
        QuantileHistogram::Create(0.01)->relative_error();
    for (const auto& [g, r] : o.hour.groups) {
      const Value* v = find(g.first, "amount_p99_1h", g.second);
      auto a = o.amounts.find(g);
      if (a == o.amounts.end() || a->second.empty()) {
        if (v == nullptr || !v->is_null()) {
          mismatch("amount_p99_1h",
                   absl::StrCat(g.first, " ", g.second, ": null vs ", show(v)));
        }
        continue;
      }
      if (v == nullptr || v->type() != Value::Type::kDouble) {
        mismatch("amount_p99_1h",
                 absl::StrCat(g.first, " ", g.second, ": ", show(v)));
        continue;
      }
      std::vector<int64_t> sorted = a->second;
      std::sort(sorted.begin(), sorted.end());
      const double n = static_cast<double>(sorted.size());
      size_t i = 1;
      while (i < sorted.size() && static_cast<double>(i) / n < 0.99) ++i;
      const double want = static_cast<double>(sorted[i - 1]) / 100.0;
      const double got = v->double_value();
      const bool exact = sorted.size() <= QuantileHistogram::kExactValues;
      if (exact ? got != want
                : std::abs(got - want) > relative_error * std::abs(want)) {
        mismatch(
            "amount_p99_1h",
            absl::StrCat(g.first, " ", g.second, ": want ", want,
                         exact ? " exactly" : " within 1%", ", got ", got));
      }
    }
    for (const auto& [feature, n] : mismatches) {
      EXPECT_EQ(n, 0) << feature << " mismatches";
    }
    std::printf(
        "oracle: %zu windows checked; %lld distinct-merchant estimates "
        "inexact (all within error)\n",
        got.size(), static_cast<long long>(hll_inexact));
  }

  // How many partitions have a published checkpoint in the store.
  static int PartitionsWithCheckpoint(const std::string& uri,
                                      const ObjectStoreOptions& options) {
    auto store = OpenObjectStore(uri, options);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return -1;
    int n = 0;
    for (int p = 0; p < kPartitions; ++p) {
      auto cs = PartitionStore(store->get(), p);
      EXPECT_TRUE(cs.ok()) << cs.status();
      if (!cs.ok()) return -1;
      auto ids = (*cs)->ListCheckpoints();
      EXPECT_TRUE(ids.ok()) << ids.status();
      if (ids.ok() && !ids->empty()) ++n;
    }
    return n;
  }

  // SIGKILLs at least `min_kills` times in phases drawn over a process's
  // life, until every phase was hit, then runs to the end; expects no
  // conflicting versions, golden and the oracle.
  static void Soak(const RunDirs& d, const std::string& group,
                   const std::vector<std::string>& env, int min_kills,
                   const ObjectStoreOptions& store_options) {
    std::mt19937_64 rng(20260101);
    // The upper bound of the random delay after a phase's line; halved
    // each time a kill lands past its phase (the phase was shorter), so a
    // short phase is reached on a slow machine too.
    std::map<std::string, absl::Duration> bound = {
        {"startup", absl::Milliseconds(20)},
        {"join", absl::Milliseconds(1500)},
        {"restore", absl::Milliseconds(200)},
        {"processing", absl::Milliseconds(600)},
        {"checkpoint", absl::Milliseconds(100)},
        {"firing", absl::Milliseconds(100)},
        {"final_checkpoint", absl::Milliseconds(30)}};
    // The targets: early phases (which make little progress) first, then
    // the ones that need a run to get far: later checkpoint rounds, the
    // final checkpoint and the end of the input. A kill in firing comes
    // last, so the last run restores checkpoints taken before the end and
    // replays the rest (the final checkpoint's fired state would leave it
    // nothing to prove).
    std::vector<KillTarget> plan;
    const std::vector<std::string> early = {"startup", "join", "restore",
                                            "processing", "checkpoint"};
    for (int i = 0; i < min_kills - 6; ++i) {
      KillTarget t;
      t.phase = early[i < 5 ? i : rng() % early.size()];
      // processing #1 lasts until the first round starts (at once); #2
      // follows a completed round. Rounds after the first publish progress
      // (some partitions of a killed round #2): little is spent here, so
      // processing is still there to kill in later.
      t.occurrence = t.phase == "processing"   ? 2
                     : t.phase == "checkpoint" ? 1 + rng() % 2
                                               : 1;
      plan.push_back(t);
    }
    std::shuffle(plan.begin() + std::min<int>(5, plan.size()), plan.end(), rng);
    for (const KillTarget& late :
         {KillTarget{"processing", 3}, KillTarget{"checkpoint", 3},
          KillTarget{"final_checkpoint", 1}, KillTarget{"firing", 1},
          KillTarget{"final_checkpoint", 1}, KillTarget{"firing", 1}}) {
      plan.push_back(late);
    }
    std::map<std::string, int> hits;
    int kills = 0;
    bool round_completed = false;  // some run completed a checkpoint round
    size_t next = 0;
    for (int attempt = 0; attempt < min_kills + 12; ++attempt) {
      KillTarget t;
      if (next < plan.size()) {
        t = plan[next++];
      } else {
        // A phase not hit yet is hit by construction (the process kills
        // itself on its line); done when there is none.
        auto missing =
            std::find_if(kPhases.begin(), kPhases.end(),
                         [&](const char* p) { return hits[p] == 0; });
        if (missing == kPhases.end() && kills >= min_kills) break;
        t.self = missing != kPhases.end();
        t.phase = t.self ? *missing : "checkpoint";
        t.occurrence = 1;
      }
      t.delay = absl::Microseconds(std::uniform_int_distribution<int64_t>(
          0, absl::ToInt64Microseconds(bound[t.phase]))(rng));
      const absl::Time run_start = absl::Now();
      KillOutcome k = RunAndKillInPhase(d, group, env, t);
      if (::testing::Test::HasFailure()) return;
      round_completed = round_completed || CompletedRound(k.output);
      if (!k.killed) continue;
      ++kills;
      ++hits[k.phase];
      if (k.phase != t.phase) bound[t.phase] = bound[t.phase] / 2;
      std::printf("kill %d: target %s #%d %s, killed in %s after %s (%s)\n",
                  kills, t.phase.c_str(), t.occurrence,
                  t.self ? "(by itself)"
                         : ("+" + absl::FormatDuration(t.delay)).c_str(),
                  k.phase.c_str(),
                  absl::FormatDuration(absl::Now() - run_start).c_str(),
                  absl::StrJoin(Phases(k.output), " ").c_str());
    }
    std::fflush(stdout);
    // Every partition has a published checkpoint, so the last run restores
    // every one: a run was seen completing a round (all its partitions
    // published) before it was killed.
    ASSERT_TRUE(round_completed);
    EXPECT_EQ(PartitionsWithCheckpoint(d.store_uri, store_options),
              kPartitions);
    std::string output;
    RunToEnd(d, group, env, &output);
    if (::testing::Test::HasFailure()) return;
    EXPECT_GE(fft::SummaryNumber(output, "checkpoints"), 1) << output;
    EXPECT_GE(RestoredPartitions(output), kPartitions) << output;
    ExpectNoConflictingVersions({golden_dirs_->sink, d.sink});
    ExpectGolden(d, d.store_uri, store_options);
    auto final = fft::ReadFinalValues(d.sink);
    ASSERT_TRUE(final.ok()) << final.status();
    ExpectOracle(*final);
    EXPECT_GE(kills, min_kills);
    for (const char* phase : kPhases) {
      EXPECT_GE(hits[phase], 1) << "no kill in phase " << phase;
    }
  }

  static testing::TempDir* root_;
  static LocalBroker* broker_;
  static RunDirs* golden_dirs_;
  static fft::FinalValues* golden_;
  static std::set<std::pair<int32_t, int64_t>>* golden_dead_;
  static std::string s3_endpoint_;  // for s3:// stores; empty otherwise

  // A first run publishes a checkpoint and is killed; the second dies
  // inside the protocol at `step`; the third restores a published
  // checkpoint and runs to the end.
  static void KillPoint(const std::string& step);
};

testing::TempDir* CrashSoakTest::root_ = nullptr;
LocalBroker* CrashSoakTest::broker_ = nullptr;
RunDirs* CrashSoakTest::golden_dirs_ = nullptr;
fft::FinalValues* CrashSoakTest::golden_ = nullptr;
std::set<std::pair<int32_t, int64_t>>* CrashSoakTest::golden_dead_ = nullptr;
std::string CrashSoakTest::s3_endpoint_;

// The golden run itself, against the independent computations of all six
// features (ExpectOracle), and its dead letters against the generator's.
TEST_F(CrashSoakTest, GoldenRunEqualsOracle) {
  auto events = testing::WPayGenerator::GenerateAll(WPay());
  ASSERT_TRUE(events.ok()) << events.status();
  std::set<std::pair<int32_t, int64_t>> must_dlq;
  for (const testing::WPayEvent& e : *events) {
    if (testing::MustReachDlq(e.malformed)) {
      must_dlq.emplace(e.partition, e.offset);
    }
  }
  EXPECT_EQ(*golden_dead_, must_dlq);
  ExpectOracle(*golden_);
  ExpectLogStartAtOrBelowCheckpoints(golden_dirs_->store_uri, {});
}

TEST_F(CrashSoakTest, RandomKillsWithFileStoreEqualGolden) {
  const RunDirs d = MakeDirs(root_->path(), "soak-file");
  Soak(d, "soak-file", {}, 30 * Scale(), {});
}

TEST_F(CrashSoakTest, RandomKillsWithS3StoreEqualGolden) {
  testing::S3rverOptions so;
  so.node_modules_dir = WEIR_SOURCE_DIR "/node_modules";
  auto s3 = testing::S3rver::Start(so);
  WEIR_REQUIRE_PART(s3.status());
  RunDirs d = MakeDirs(root_->path(), "soak-s3");
  d.store_uri = "s3://weir-test/soak";
  const std::vector<std::string> env = {
      "AWS_ACCESS_KEY_ID=" + (*s3)->access_key_id(),
      "AWS_SECRET_ACCESS_KEY=" + (*s3)->secret_access_key()};
  ObjectStoreOptions store_options;
  store_options.s3.endpoint = (*s3)->endpoint();
  store_options.s3.access_key_id = (*s3)->access_key_id();
  store_options.s3.secret_access_key = (*s3)->secret_access_key();
  s3_endpoint_ = (*s3)->endpoint();
  Soak(d, "soak-s3", env, 12 * Scale(), store_options);
  s3_endpoint_.clear();
}

void CrashSoakTest::KillPoint(const std::string& step) {
  const std::string name = "kill-" + step;
  const RunDirs d = MakeDirs(root_->path(), name);

  {
    auto service = fft::StartService(Args(d, name));
    ASSERT_TRUE(service.ok()) << service.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    double done = 0;
    while (absl::Now() < deadline && done < 1) {
      auto v = fft::ScrapeMetric(service->metrics_url,
                                 "weir_checkpoints_completed_total");
      if (v.ok()) done = *v;
      absl::SleepFor(absl::Milliseconds(20));  // polling the endpoint
    }
    ASSERT_GE(done, 1) << "no checkpoint was published";
    service->process->Kill();
  }
  {
    std::vector<std::string> args = Args(d, name);
    args.push_back("--fault_kill_at=" + step);
    auto service = fft::StartService(args);
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = fft::FinishService(*service, absl::Seconds(90));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << "did not die at " << step << ":\n"
        << service->output;
  }
  std::string output;
  RunToEnd(d, name, {}, &output);
  EXPECT_GT(fft::SummaryNumber(output, "checkpoints"), 0) << output;
  EXPECT_THAT(output, ::testing::HasSubstr(
                          absl::StrCat(kPartitions, " partitions restored")))
      << output;
  ExpectGolden(d, d.store_uri, {});
}

TEST_F(CrashSoakTest, KillBeforeUploadRestoresPublishedCheckpoint) {
  KillPoint("before_upload");
}

TEST_F(CrashSoakTest, KillMidUploadRestoresPublishedCheckpoint) {
  KillPoint("mid_upload");
}

TEST_F(CrashSoakTest, KillAfterUploadRestoresPublishedCheckpoint) {
  KillPoint("after_upload");
}

// Between the manifest and the offset commit.
TEST_F(CrashSoakTest, KillAfterManifestRestoresPublishedCheckpoint) {
  KillPoint("after_manifest");
}

}  // namespace
}  // namespace weir
