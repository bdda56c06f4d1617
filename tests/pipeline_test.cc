#include "weir/pipeline.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/json/json_decoder.h"
#include "weir/object_store.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/sinks.h"
#include "weir/testing/harness.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

using ::testing::SizeIs;

constexpr int kPartitions = 4;

// W-PAY runs 2000 events per event-time second: 60k events span 30 s.
// Second-long windows make the operator emit all along the run.
KeyedWindowOptions Features(absl::Duration count_window = absl::Seconds(1)) {
  KeyedWindowOptions op;
  FeatureSpec count;
  count.name = "txn_count";
  count.window = Tumbling(count_window);
  FeatureSpec sum = count;
  sum.name = "amount_sum_1h";  // fires only at the end of the input
  sum.aggregate = AggregateKind::kDecimalSum;
  sum.window = Tumbling(absl::Hours(1));
  sum.field = 1;
  op.features = {count, sum};
  op.max_out_of_orderness = absl::Seconds(2);
  op.allowed_lateness = absl::Seconds(1);
  op.cache_max_entries = 5000;
  return op;
}

JsonSchema WPaySchema() {
  JsonSchema schema;
  schema.name = "wpay";
  schema.version = 1;
  schema.key_field = "user_id";
  schema.event_time_field = "event_timestamp";
  schema.event_time_type = JsonType::kTimestampMs;
  schema.fields = {JsonField::Required("merchant_id", JsonType::kString),
                   JsonField::OptionalDecimal("amount", 2)};
  return schema;
}

// Forwards to a source and calls `hook` after every poll with the number of
// records delivered so far: lets a test stop or checkpoint the pipeline at
// a chosen point, on the processing thread.
class HookedSource final : public ForwardingSource {
 public:
  HookedSource(Source* inner, std::function<void(int64_t)> hook)
      : ForwardingSource(inner), hook_(std::move(hook)) {}
  absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override {
    auto batch = ForwardingSource::Poll(max_records, timeout);
    if (batch.ok()) {
      delivered_ += static_cast<int64_t>(batch->size());
      hook_(delivered_);
    }
    return batch;
  }

 private:
  std::function<void(int64_t)> hook_;
  int64_t delivered_ = 0;
};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WPayOptions w;
    w.num_events = 60'000;
    w.num_users = 3'000;
    w.num_partitions = kPartitions;
    w.seed = 5;
    auto events = testing::WPayGenerator::GenerateAll(w);
    ASSERT_TRUE(events.ok());
    events_ = std::move(*events);
    auto dir = testing::TempDir::Create("weir-pipeline");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<testing::TempDir>(std::move(*dir));
    auto store = LocalDirectoryStore::Create(dir_->path() + "/store");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto resources = RocksDbResources::Create({});
    ASSERT_TRUE(resources.ok());
    resources_ = *resources;
    auto decoder = JsonDecoder::Create(WPaySchema());
    ASSERT_TRUE(decoder.ok());
    decoder_ = std::move(*decoder);
  }

  std::unique_ptr<VectorSource> MakeSource() {
    std::vector<VectorSourceRecord> records;
    for (const testing::WPayEvent& e : events_) {
      records.push_back(
          VectorSourceRecord{e.partition, e.user_id, e.json, e.event_time});
    }
    VectorSourceOptions o;
    o.topic = "payments";
    o.partitions = kPartitions;
    auto s = VectorSource::Create(o, std::move(records));
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }

  PipelineOptions Options(const std::string& state) {
    PipelineOptions o;
    o.name = "fraud";
    o.version = "7";
    o.features = Features();
    o.state_dir = dir_->path() + "/" + state;
    o.backend_factory = RocksDbBackendFactory(resources_);
    o.checkpoints.interval = absl::Hours(1);  // only when asked
    o.clock = &clock_;
    o.max_poll_records = 500;
    return o;
  }

  // What an idempotent store holds after one uninterrupted application of
  // every feature update the operator computes from the accepted events.
  std::map<std::pair<std::string, std::string>, FeatureUpdate> Golden() {
    testing::HarnessOptions h;
    h.op = Features();
    h.op.name = "fraud";
    auto harness = testing::OperatorHarness::Create(h);
    EXPECT_TRUE(harness.ok());
    for (const testing::WPayEvent& e : events_) {
      if (e.accepted()) EXPECT_TRUE((*harness)->Process(e.ToEvent()).ok());
    }
    EXPECT_TRUE((*harness)->Finish().ok());
    std::map<std::pair<std::string, std::string>, FeatureUpdate> out;
    for (const FeatureUpdate& u : (*harness)->updates()) {
      auto [it, inserted] = out.try_emplace({u.key, u.feature}, u);
      if (!inserted && u.NewerThan(it->second)) it->second = u;
    }
    return out;
  }

  static void ExpectSinkEquals(
      const MemorySink& sink,
      const std::map<std::pair<std::string, std::string>, FeatureUpdate>&
          golden) {
    const std::vector<FeatureUpdate> got = sink.Snapshot();
    ASSERT_EQ(got.size(), golden.size());
    for (const FeatureUpdate& u : got) {
      EXPECT_EQ(u, golden.at({u.key, u.feature})) << u.key << " " << u.feature;
    }
  }

  int64_t BadRecords() const {
    int64_t n = 0;
    for (const auto& e : events_) n += e.accepted() ? 0 : 1;
    return n;
  }

  std::vector<testing::WPayEvent> events_;
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<LocalDirectoryStore> store_;
  std::shared_ptr<RocksDbResources> resources_;
  std::unique_ptr<JsonDecoder> decoder_;
  ManualClock clock_{absl::FromUnixSeconds(1800000000)};
};

TEST_F(PipelineTest, BoundedRunComputesEveryFeatureAndDeadLettersBadRecords) {
  auto source = MakeSource();
  MemorySink sink;
  MemoryDeadLetterQueue dlq;
  auto pipeline = Pipeline::Create(
      Options("a"), {source.get(), decoder_.get(), &sink, store_.get(), &dlq});
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  ASSERT_TRUE((*pipeline)->Run().ok());
  ExpectSinkEquals(sink, Golden());
  const PipelineStats stats = (*pipeline)->stats();
  EXPECT_EQ(stats.records_in, static_cast<int64_t>(events_.size()));
  EXPECT_EQ(stats.dead_letters, BadRecords());
  EXPECT_GT(stats.dead_letters, 0);
  EXPECT_THAT(dlq.records(), SizeIs(BadRecords()));
  for (const DeadLetterRecord& r : dlq.records()) {
    const testing::WPayEvent* original = nullptr;
    for (const auto& e : events_) {
      if (e.partition == r.partition && e.offset == r.offset) original = &e;
    }
    ASSERT_NE(original, nullptr);
    EXPECT_EQ(r.value, original->json);  // bytes kept exactly
  }
  EXPECT_GT(stats.late_records, 0);
  EXPECT_EQ(stats.checkpoints_completed, 1);  // the final one
  EXPECT_EQ(stats.partitions_assigned, kPartitions);
  // Per partition: every record counted once, and the hottest W-PAY user
  // (u1, Zipf rank 1) on top of its partition's hot keys.
  const std::vector<PartitionStats> parts = (*pipeline)->partition_stats();
  ASSERT_EQ(parts.size(), static_cast<size_t>(kPartitions));
  int64_t records = 0;
  bool u1_on_top = false;
  for (const PartitionStats& p : parts) {
    records += p.records;
    EXPECT_GT(p.watermark, 0);
    ASSERT_FALSE(p.hot_keys.empty());
    if (p.hot_keys[0].key == "u1") u1_on_top = true;
  }
  EXPECT_EQ(records, static_cast<int64_t>(events_.size()));
  EXPECT_TRUE(u1_on_top);
}

// Records the size of each write made while `firing` is set, and keeps
// the updates in a MemorySink.
class WriteSizeSink final : public Sink {
 public:
  absl::Status Write(absl::Span<const FeatureUpdate> updates) override {
    if (firing) sizes.push_back(updates.size());
    return store.Write(updates);
  }
  absl::Status Flush() override { return store.Flush(); }

  MemorySink store;
  bool firing = false;
  std::vector<size_t> sizes;
};

// With max_fire_updates, the end of the input fires every user's hourly
// window in steps, and the pipeline hands each step to the sink before
// the next (one write per step, sink batches being larger): what reaches
// the sink is the same.
TEST_F(PipelineTest, FiringInStepsDrainsEachStepToTheSink) {
  constexpr size_t kStep = 40;
  auto source = MakeSource();
  WriteSizeSink sink;
  MemoryDeadLetterQueue dlq;
  PipelineOptions options = Options("steps");
  options.features.max_fire_updates = kStep;
  options.phase_listener = [&sink](PipelinePhase phase) {
    sink.firing = phase == PipelinePhase::kFiring;
  };
  auto pipeline = Pipeline::Create(
      options, {source.get(), decoder_.get(), &sink, store_.get(), &dlq});
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  ASSERT_TRUE((*pipeline)->Run().ok());
  ExpectSinkEquals(sink.store, Golden());
  // About 3,000 users' hourly windows: dozens of steps. The first write
  // may also hold what the last records emitted before the end.
  ASSERT_GT(sink.sizes.size(), 2000 / kStep);
  for (size_t i = 1; i < sink.sizes.size(); ++i) {
    EXPECT_LE(sink.sizes[i], kStep) << i;
  }
}

// The phase listener hears each change once, in the order of a bounded
// run's life (pipeline.h, PipelinePhase).
TEST_F(PipelineTest, ReportsEachPhaseOfABoundedRunInOrder) {
  auto source = MakeSource();
  MemorySink sink;
  MemoryDeadLetterQueue dlq;
  PipelineOptions options = Options("phases");
  std::vector<std::string> phases;
  options.phase_listener = [&phases](PipelinePhase phase) {
    phases.push_back(PipelinePhaseName(phase));
  };
  auto pipeline = Pipeline::Create(
      options, {source.get(), decoder_.get(), &sink, store_.get(), &dlq});
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  (*pipeline)->RequestCheckpoint();
  ASSERT_TRUE((*pipeline)->Run().ok());
  for (size_t i = 1; i < phases.size(); ++i) {
    EXPECT_NE(phases[i], phases[i - 1]) << i;
  }
  EXPECT_THAT(phases, ::testing::Contains("restore"));
  EXPECT_THAT(phases, ::testing::Contains("processing"));
  EXPECT_THAT(phases, ::testing::Contains("checkpoint"));
  ASSERT_GE(phases.size(), 3u);
  EXPECT_THAT(std::vector<std::string>(phases.end() - 3, phases.end()),
              ::testing::ElementsAre("firing", "final_checkpoint", "stopped"));
}

// A crash after a checkpoint: the second run restores every partition from
// the store, replays from the checkpointed offsets, and the store ends equal
// to an uninterrupted run's.
TEST_F(PipelineTest, RestartFromCheckpointEqualsUninterruptedRun) {
  MemorySink sink;
  MemoryDeadLetterQueue dlq;
  {
    auto inner = MakeSource();
    std::unique_ptr<Pipeline> pipeline;
    bool asked = false;
    HookedSource source(inner.get(), [&](int64_t delivered) {
      if (delivered >= 20'000 && !asked) {
        pipeline->RequestCheckpoint();
        asked = true;
      }
      if (delivered >= 35'000) pipeline->Stop();  // then "crash"
    });
    // The pipeline goes before its parts (they must outlive it).
    absl::Cleanup pipeline_first = [&] { pipeline.reset(); };
    PipelineOptions options = Options("first");
    options.checkpoint_on_stop = false;
    std::vector<std::string> log;
    options.logger = [&](std::string_view line) { log.emplace_back(line); };
    auto p = Pipeline::Create(
        options, {&source, decoder_.get(), &sink, store_.get(), &dlq});
    ASSERT_TRUE(p.ok()) << p.status();
    pipeline = std::move(*p);
    ASSERT_TRUE(pipeline->Run().ok());
    EXPECT_EQ(pipeline->stats().checkpoints_completed, 1);
    ASSERT_EQ(log.size(), static_cast<size_t>(kPartitions));
    EXPECT_THAT(log[0], ::testing::EndsWith(
                            ": no checkpoint, starting empty at offset 0"));
  }
  auto source = MakeSource();
  PipelineOptions options = Options("second");
  std::vector<std::string> log;
  options.logger = [&](std::string_view line) { log.emplace_back(line); };
  auto second = Pipeline::Create(
      options, {source.get(), decoder_.get(), &sink, store_.get(), &dlq});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*second)->Run().ok());
  EXPECT_EQ((*second)->stats().partitions_restored, kPartitions);
  // One line per partition says which checkpoint it was restored from.
  ASSERT_EQ(log.size(), static_cast<size_t>(kPartitions));
  for (const std::string& line : log) {
    EXPECT_THAT(line, ::testing::MatchesRegex(
                          "partition .*-[0-9]+: restored checkpoint 1 at "
                          "offset [1-9][0-9]*"));
  }
  EXPECT_LT((*second)->stats().records_in,
            static_cast<int64_t>(events_.size()));
  ExpectSinkEquals(sink, Golden());
}

// Each checkpoint of a partition is published under its own id, one past
// the newest in the store, also after a restart: none is refused as
// already published, and the restart resumes from the newest.
TEST_F(PipelineTest, EveryCheckpointGetsANewIdAcrossRestarts) {
  MemorySink sink;
  MemoryDeadLetterQueue dlq;
  int64_t first_run_checkpoints = 0;
  {
    auto inner = MakeSource();
    std::unique_ptr<Pipeline> pipeline;
    int asked = 0;
    HookedSource source(inner.get(), [&](int64_t delivered) {
      if (delivered >= 10'000 * (asked + 1) && asked < 2) {
        pipeline->RequestCheckpoint();
        ++asked;
      }
      if (delivered >= 35'000) pipeline->Stop();  // with a final checkpoint
    });
    // The pipeline goes before its parts (they must outlive it).
    absl::Cleanup pipeline_first = [&] { pipeline.reset(); };
    auto p = Pipeline::Create(
        Options("first"), {&source, decoder_.get(), &sink, store_.get(), &dlq});
    ASSERT_TRUE(p.ok()) << p.status();
    pipeline = std::move(*p);
    ASSERT_TRUE(pipeline->Run().ok());
    EXPECT_EQ(pipeline->stats().checkpoints_failed, 0);
    // The requested ones (unless one came while another was in flight) and
    // the final one.
    first_run_checkpoints = pipeline->stats().checkpoints_completed;
    EXPECT_GE(first_run_checkpoints, 2);
  }
  auto source = MakeSource();
  auto second = Pipeline::Create(
      Options("second"),
      {source.get(), decoder_.get(), &sink, store_.get(), &dlq});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*second)->Run().ok());
  EXPECT_EQ((*second)->stats().checkpoints_failed, 0);
  EXPECT_EQ((*second)->stats().checkpoints_completed, 1);
  EXPECT_EQ((*second)->stats().partitions_restored, kPartitions);
  for (int p = 0; p < kPartitions; ++p) {
    CheckpointStoreOptions so;
    so.prefix = CheckpointPrefix("fraud/payments", p);
    auto cs = CheckpointStore::Create(store_.get(), so);
    ASSERT_TRUE(cs.ok());
    auto ids = (*cs)->ListCheckpoints();
    ASSERT_TRUE(ids.ok());
    ASSERT_FALSE(ids->empty());
    EXPECT_EQ(ids->back(), static_cast<uint64_t>(first_run_checkpoints + 1))
        << "partition " << p;
    auto newest = (*cs)->ReadCheckpoint(ids->back());
    ASSERT_TRUE(newest.ok());
    EXPECT_GT(newest->metadata.source_offsets.at(0).offset, 0);
  }
  ExpectSinkEquals(sink, Golden());
}

// A sink that refuses writes: partitions pause, nothing is lost, and
// processing resumes when the sink is back.
TEST_F(PipelineTest, SinkOutagePausesAndLosesNothing) {
  auto inner = MakeSource();
  MemorySink sink;
  MemoryDeadLetterQueue dlq;
  std::unique_ptr<Pipeline> pipeline;
  int polls_while_down = 0;
  HookedSource source(inner.get(), [&](int64_t delivered) {
    if (delivered >= 10'000 && polls_while_down == 0) {
      sink.InjectError(absl::UnavailableError("store down"));
    }
    if (delivered >= 10'000 && polls_while_down < 200) {
      ++polls_while_down;
      clock_.Advance(absl::Milliseconds(100));
      if (polls_while_down == 200) sink.InjectError(absl::OkStatus());
    }
  });
  // The pipeline goes before its parts (they must outlive it).
  absl::Cleanup pipeline_first = [&] { pipeline.reset(); };
  PipelineOptions options = Options("c");
  options.max_pending_updates = 2000;
  // Checkpoints fall due during the outage: they are put off, not failed.
  options.checkpoints.interval = absl::Seconds(2);
  options.checkpoints.min_pause = absl::Seconds(1);
  auto p = Pipeline::Create(
      options, {&source, decoder_.get(), &sink, store_.get(), &dlq});
  ASSERT_TRUE(p.ok());
  pipeline = std::move(*p);
  absl::Status run = pipeline->Run();
  const PipelineStats stats = pipeline->stats();
  ASSERT_TRUE(run.ok()) << run << " records_in=" << stats.records_in
                        << " paused=" << stats.paused
                        << " pending=" << stats.pending_updates
                        << " polls_while_down=" << polls_while_down;
  EXPECT_GT(stats.paused, absl::Seconds(5));
  EXPECT_EQ(stats.checkpoints_failed, 0);
  EXPECT_GE(stats.checkpoints_completed, 2);
  EXPECT_LE(stats.pending_updates, 0);
  ExpectSinkEquals(sink, Golden());
}

TEST(PipelineOptionsTest, ValidateNamesTheBadField) {
  PipelineOptions o;
  EXPECT_THAT(o.Validate().message(), ::testing::HasSubstr("name"));
  o.name = "p";
  EXPECT_THAT(o.Validate().message(), ::testing::HasSubstr("features"));
  FeatureSpec f;
  f.name = "n";
  f.window = Tumbling(absl::Minutes(1));
  o.features.features = {f};
  EXPECT_THAT(o.Validate().message(), ::testing::HasSubstr("state_dir"));
  o.state_dir = "/tmp/x";
  EXPECT_THAT(o.Validate().message(), ::testing::HasSubstr("backend_factory"));
  o.backend_factory =
      [](const std::string&) -> absl::StatusOr<std::unique_ptr<StateBackend>> {
    return absl::UnimplementedError("");
  };
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
  o.checkpoint_upload_threads = 0;
  EXPECT_THAT(o.Validate().message(),
              ::testing::HasSubstr("checkpoint_upload_threads"));
  o.checkpoint_upload_threads = 4;
  o.max_pending_updates = 0;
  EXPECT_THAT(o.Validate().message(),
              ::testing::HasSubstr("max_pending_updates"));
}

}  // namespace
}  // namespace weir
