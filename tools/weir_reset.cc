// weir-reset: moves where a stopped weir service's partitions start.
//
//   weir-reset --bootstrap=HOST:PORT --topic=payments \
//       --pipeline=fraud_features --checkpoint_uri=s3://bucket/prefix \
//       (--to_earliest | --to_latest | --to_time=2026-12-05T08:00:00Z |
//        --shift_by=-100000) [--partitions=0,3] [--dry_run]
//
// A weir service keeps its offsets in its checkpoints (a partition restores
// the state and the offset of its newest checkpoint), so resetting the
// consumer group's committed offsets would change nothing. weir-reset
// writes, for each partition of the topic, a starting point: a new
// checkpoint in the service's store whose offset is the target and whose
// state is empty. The next start of the service (stop it first) restores
// it: the partition starts empty at that offset.
//
//   --to_earliest   the log's first record
//   --to_latest     the end of the log: only records produced from now on
//   --to_time       the first record stamped at or after the time (Kafka's
//                   offsets-for-times lookup); the end when there is none.
//                   A broker that cannot look times up (librdkafka's mock
//                   cluster) answers "none"; weir-reset checks the answer
//                   against the partition's last record and fails rather
//                   than move the partition to the end wrongly.
//   --shift_by=N    N records after (negative: before) the offset of the
//                   partition's newest checkpoint, within the log
//
// The state is dropped: windows open at the new starting point hold only
// what is read from there. To rebuild features from a time without serving
// partial windows, run a replay instead (`--replay_from`, docs/
// operations.md, "Replay without downtime"). --state_backend must be the
// service's (rocksdb or memory).
//
// Exit status: 0 success (every partition moved, or --dry_run), 1 a
// failure (named), 2 bad usage (a flag, or a partition the topic lacks).

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tools/common/command_line.h"
#include "weir/checkpoint.h"
#include "weir/internal/scratch_dir.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/kafka/kafka_offsets.h"
#include "weir/object_store.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/state.h"
#include "weir/status_macros.h"

ABSL_FLAG(std::string, bootstrap, "", "Kafka bootstrap servers. Required.");
ABSL_FLAG(std::string, topic, "", "The service's input topic. Required.");
ABSL_FLAG(std::string, pipeline, "",
          "The service's name (its checkpoints' pipeline, e.g. "
          "fraud_features). Required.");
ABSL_FLAG(std::string, checkpoint_uri, "",
          "The service's checkpoint store: file:///abs/path or "
          "s3://bucket[/prefix]. Required.");
ABSL_FLAG(std::string, s3_endpoint, "",
          "With an s3:// store: an S3-compatible server, http://host:port.");
ABSL_FLAG(std::string, state_backend, "rocksdb",
          "The service's --state_backend: rocksdb or memory.");
ABSL_FLAG(bool, to_earliest, false, "Start at each partition's first record.");
ABSL_FLAG(bool, to_latest, false, "Start at the end of each partition.");
ABSL_FLAG(std::optional<absl::Time>, to_time, std::nullopt,
          "Start at the first record stamped at or after this RFC 3339 time.");
ABSL_FLAG(std::optional<int64_t>, shift_by, std::nullopt,
          "Start this many records after (negative: before) the newest "
          "checkpoint's offset.");
ABSL_FLAG(std::vector<std::string>, partitions, {},
          "Only these partitions (comma-separated). Default: all.");
ABSL_FLAG(bool, dry_run, false, "Print what would be done; write nothing.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30),
          "Limit of each request to the brokers.");

namespace {

constexpr char kUsage[] =
    "moves where a stopped weir service's partitions start: writes a\n"
    "starting point (empty state, a chosen offset) into its checkpoint "
    "store.\n"
    "usage: weir-reset --bootstrap=HOST:PORT --topic=T --pipeline=NAME\n"
    "         --checkpoint_uri=URI (--to_earliest | --to_latest |\n"
    "         --to_time=RFC3339 | --shift_by=N) [--partitions=P,...] "
    "[--dry_run]";

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

absl::StatusOr<KafkaPtr> NewConsumer() {
  WEIR_ASSIGN_OR_RETURN(
      weir::internal::KafkaConfPtr conf,
      weir::internal::NewKafkaConf(
          "weir-reset",
          {{"bootstrap.servers", absl::GetFlag(FLAGS_bootstrap)},
           {"group.id", "weir-reset"},
           {"enable.auto.commit", "false"},
           {"client.id", "weir-reset"}},
          {}));
  char errstr[512];
  KafkaPtr rk(
      rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof(errstr)));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("rd_kafka_new: ", errstr));
  }
  conf.release();  // rd_kafka_new took it
  return rk;
}

// The timestamp of the record at `offset`, by reading it.
absl::StatusOr<int64_t> RecordTimestamp(rd_kafka_t* rk,
                                        const std::string& topic,
                                        int32_t partition, int64_t offset) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset =
      offset;
  rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        weir::internal::KafkaErrorText(err, "assign"));
  }
  absl::StatusOr<int64_t> result = absl::DeadlineExceededError(
      absl::StrCat("no record read at ", topic, "/", partition, "@", offset));
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);
  while (absl::Now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    const bool ours = m->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                      m->partition == partition && m->offset == offset;
    if (ours) result = rd_kafka_message_timestamp(m, nullptr);
    rd_kafka_message_destroy(m);
    if (ours) break;
  }
  rd_kafka_assign(rk, nullptr);
  return result;
}

struct Move {
  int32_t partition = 0;
  std::optional<uint64_t> checkpoint;  // the newest readable, if any
  std::optional<int64_t> from;         // its offset
  int64_t to = 0;
};

// Where a partition should start, per the flags: `p` holds its log's
// bounds and the --to_time lookup's answer (`high` for "no record that
// late"), `current` the newest checkpoint's offset.
absl::StatusOr<int64_t> Target(rd_kafka_t* rk, const std::string& topic,
                               const weir::KafkaPartitionOffsets& p,
                               std::optional<int64_t> current) {
  if (absl::GetFlag(FLAGS_to_earliest)) return p.low;
  if (absl::GetFlag(FLAGS_to_latest)) return p.high;
  if (const std::optional<int64_t> shift = absl::GetFlag(FLAGS_shift_by)) {
    return std::clamp(current.value_or(p.low) + *shift, p.low, p.high);
  }
  const int64_t found = p.at_times.at(0);
  if (found < p.high || p.high == p.low) return found;
  // "No record at or after the time": the end, if the last record agrees.
  const int64_t t = absl::ToUnixMillis(*absl::GetFlag(FLAGS_to_time));
  WEIR_ASSIGN_OR_RETURN(int64_t last,
                        RecordTimestamp(rk, topic, p.partition, p.high - 1));
  if (last >= t) {
    return absl::FailedPreconditionError(absl::StrCat(
        topic, "/", p.partition, ": the broker found no record at or after ",
        absl::FormatTime(absl::RFC3339_full, absl::FromUnixMillis(t),
                         absl::UTCTimeZone()),
        " but the last one is stamped ", last,
        ": it cannot look times up; use --shift_by or --to_earliest"));
  }
  return p.high;
}

// Publishes an empty state at `move.to` as the partition's newest
// checkpoint.
absl::Status WriteStartingPoint(weir::CheckpointStore& store,
                                const std::string& scratch, const Move& move) {
  const std::string live = absl::StrCat(scratch, "/state-", move.partition);
  const std::string checkpoint =
      absl::StrCat(scratch, "/ckpt-", move.partition);
  std::unique_ptr<weir::StateBackend> backend;
  if (absl::GetFlag(FLAGS_state_backend) == "memory") {
    WEIR_ASSIGN_OR_RETURN(backend, weir::MemoryBackendFactory()(live));
  } else {
    WEIR_ASSIGN_OR_RETURN(auto resources, weir::RocksDbResources::Create({}));
    WEIR_ASSIGN_OR_RETURN(backend,
                          weir::RocksDbBackendFactory(resources)(live));
  }
  WEIR_RETURN_IF_ERROR(backend->CreateCheckpoint(checkpoint));
  backend.reset();
  WEIR_ASSIGN_OR_RETURN(uint64_t id, store.NextCheckpointId());
  weir::CheckpointMetadata metadata;
  metadata.checkpoint_id = id;
  metadata.pipeline = absl::GetFlag(FLAGS_pipeline);
  metadata.operator_name = absl::GetFlag(FLAGS_pipeline);
  metadata.partition = move.partition;
  metadata.source_offsets = {
      {absl::GetFlag(FLAGS_topic), move.partition, move.to}};
  metadata.user_metadata["weir_reset"] =
      move.checkpoint.has_value()
          ? absl::StrCat("from checkpoint ", *move.checkpoint, " at offset ",
                         move.from.value_or(-1))
          : "from no checkpoint";
  return store.Publish(checkpoint, metadata).status();
}

absl::Status Run() {
  const std::string topic = absl::GetFlag(FLAGS_topic);
  weir::KafkaOffsetsQuery query;
  query.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap);
  query.topic = topic;
  query.timeout = absl::GetFlag(FLAGS_timeout);
  if (const std::optional<absl::Time> t = absl::GetFlag(FLAGS_to_time)) {
    query.times = {absl::ToUnixMillis(*t)};
  }
  WEIR_ASSIGN_OR_RETURN(std::vector<weir::KafkaPartitionOffsets> partitions,
                        weir::QueryKafkaOffsets(query));
  std::set<int32_t> chosen;
  for (const weir::KafkaPartitionOffsets& p : partitions) {
    chosen.insert(p.partition);
  }
  if (const std::vector<std::string> only = absl::GetFlag(FLAGS_partitions);
      !only.empty()) {
    std::set<int32_t> all = std::move(chosen);
    chosen.clear();
    for (const std::string& p : only) {
      int32_t id = 0;
      if (!absl::SimpleAtoi(p, &id) || all.count(id) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--partitions: ", topic, " has no partition '", p, "'"));
      }
      chosen.insert(id);
    }
  }
  // Reads a partition's last record when a time lookup needs checking.
  WEIR_ASSIGN_OR_RETURN(KafkaPtr rk, NewConsumer());
  weir::ObjectStoreOptions store_options;
  store_options.local.create_if_missing = false;
  if (!absl::GetFlag(FLAGS_s3_endpoint).empty()) {
    store_options.s3.endpoint = absl::GetFlag(FLAGS_s3_endpoint);
  }
  WEIR_ASSIGN_OR_RETURN(
      std::unique_ptr<weir::ObjectStore> object_store,
      weir::OpenObjectStore(absl::GetFlag(FLAGS_checkpoint_uri),
                            store_options));
  WEIR_ASSIGN_OR_RETURN(weir::internal::ScratchDir scratch,
                        weir::internal::ScratchDir::Create("", "weir-reset"));
  const bool dry_run = absl::GetFlag(FLAGS_dry_run);
  for (const weir::KafkaPartitionOffsets& offsets : partitions) {
    const int32_t partition = offsets.partition;
    if (chosen.count(partition) == 0) continue;
    weir::CheckpointStoreOptions options;
    // The service's layout: <pipeline>/<topic>/p<partition>.
    options.prefix = weir::CheckpointPrefix(
        absl::StrCat(absl::GetFlag(FLAGS_pipeline), "/", topic), partition);
    WEIR_ASSIGN_OR_RETURN(
        std::unique_ptr<weir::CheckpointStore> store,
        weir::CheckpointStore::Create(object_store.get(), options));
    Move move;
    move.partition = partition;
    WEIR_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, store->ListCheckpoints());
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
      absl::StatusOr<weir::CheckpointManifest> m = store->ReadCheckpoint(*it);
      if (!m.ok()) continue;
      move.checkpoint = *it;
      for (const weir::SourceOffset& o : m->metadata.source_offsets) {
        if (o.topic == topic && o.partition == partition) move.from = o.offset;
      }
      break;
    }
    WEIR_ASSIGN_OR_RETURN(move.to, Target(rk.get(), topic, offsets, move.from));
    std::printf("%s/%d: %s -> offset %lld%s\n", topic.c_str(), partition,
                move.checkpoint.has_value()
                    ? absl::StrCat("checkpoint ", *move.checkpoint,
                                   " at offset ", move.from.value_or(-1))
                          .c_str()
                    : "no checkpoint",
                static_cast<long long>(move.to),
                dry_run ? " (dry run)" : ", empty state");
    if (!dry_run) {
      WEIR_RETURN_IF_ERROR(WriteStartingPoint(*store, scratch.path(), move));
    }
  }
  return absl::OkStatus();
}

int BadUsage(const std::string& why) {
  std::fprintf(stderr, "weir-reset: %s\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv, {.usage = kUsage, .repeatable = {"partitions"}});
  const std::pair<const char*, std::string> required[] = {
      {"bootstrap", absl::GetFlag(FLAGS_bootstrap)},
      {"topic", absl::GetFlag(FLAGS_topic)},
      {"pipeline", absl::GetFlag(FLAGS_pipeline)},
      {"checkpoint_uri", absl::GetFlag(FLAGS_checkpoint_uri)}};
  for (const auto& [flag, value] : required) {
    if (value.empty())
      return BadUsage(absl::StrCat("--", flag, " is required"));
  }
  const int targets = absl::GetFlag(FLAGS_to_earliest) +
                      absl::GetFlag(FLAGS_to_latest) +
                      absl::GetFlag(FLAGS_to_time).has_value() +
                      absl::GetFlag(FLAGS_shift_by).has_value();
  if (targets != 1) {
    return BadUsage(
        "give exactly one of --to_earliest, --to_latest, --to_time, "
        "--shift_by");
  }
  const std::string backend = absl::GetFlag(FLAGS_state_backend);
  if (backend != "rocksdb" && backend != "memory") {
    return BadUsage("--state_backend: rocksdb or memory");
  }
  if (absl::Status s = Run(); !s.ok()) {
    std::fprintf(stderr, "weir-reset: %s\n", s.ToString().c_str());
    return absl::IsInvalidArgument(s) ? 2 : 1;
  }
  return 0;
}
