// -----------------------------------------------------------------------------
// File: weir_dlq_replay.cc (the `weir-dlq-replay` tool)
// -----------------------------------------------------------------------------
//
// Re-publishes dead-letter records (weir/dlq.h) to a Kafka topic, once the
// cause of their failure is fixed: reads the records from a JSON-lines file
// a FileDeadLetterQueue wrote (--input) or from a Kafka DLQ topic a
// KafkaDeadLetterQueue wrote (--dlq_topic, read from its first to its last
// offset at start), keeps those that pass the filters, and produces each
// one's ORIGINAL key and value bytes, exactly, to --topic (default: the
// topic the record came from).
//
// - Late records: a service's late-record output (--late_output, weir/
//   late_records.h) writes dead letters of error type "late_record", so a
//   late-output file (--input) or topic (--dlq_topic=<topic>.late) replays
//   the same way; --error_type=late_record selects them.
// - Filters (all must hold): --category, --error_type (comma-separated
//   lists), --source_topic, --partition, --since (failed_at at or after)
//   and --until (failed_at before), RFC 3339 times; --limit caps how many
//   are published (in the order read).
// - The DLQ is written at least once, so the same source position can be
//   there twice; only the first record of each (topic, partition, offset)
//   is replayed.
// - Each message keeps the record's Kafka timestamp when it has one. An
//   empty key is produced as a null key (the DLQ stores both as ""). The
//   partition is chosen by the Java-compatible murmur2 partitioner on the
//   key, or is the record's own with --same_partition.
// - acks=all with the idempotent producer; the tool waits for each
//   message's delivery report.
//
// Prints one summary line, `read=N matched=M duplicates=D published=P`
// (with --dry_run, one line per record it would publish first, and
// published=0). Exit status: 0 every matching record was delivered (or the
// dry run listed them); 1 a record could not be read or delivered; 2 bad
// usage.
//
// Threading: the main thread reads and produces; librdkafka sends on its
// own threads and reports deliveries on the main thread (rd_kafka_poll and
// rd_kafka_flush).
//
// Example:
//   $ weir-dlq-replay --input=/var/lib/ff/dlq.jsonl --bootstrap=kafka:9092 \
//       --category=schema_mismatch --since=2026-01-01T00:00:00Z
//   read=120 matched=37 duplicates=2 published=37
//   $ weir-dlq-replay --dlq_topic=payments.dlq --bootstrap=kafka:9092 \
//       --error_type=lossy_number --topic=payments-backfill --dry_run

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/common/command_line.h"
#include "weir/decode.h"
#include "weir/dlq.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/status_macros.h"

ABSL_FLAG(std::string, input, "",
          "Read records from this JSON-lines file a FileDeadLetterQueue "
          "wrote.");
ABSL_FLAG(std::string, dlq_topic, "",
          "Read records from this topic a KafkaDeadLetterQueue wrote, from "
          "its first to its last offset (at start).");
ABSL_FLAG(std::string, dlq_bootstrap, "",
          "The cluster holding --dlq_topic (default: --bootstrap).");
ABSL_FLAG(std::vector<std::string>, category, {},
          "Filter: categories (deserialization, schema_mismatch, "
          "processing_error).");
ABSL_FLAG(std::vector<std::string>, error_type, {},
          "Filter: error types, e.g. wrong_type,lossy_number.");
ABSL_FLAG(std::optional<std::string>, source_topic, std::nullopt,
          "Filter: the topic the record came from.");
ABSL_FLAG(std::optional<int32_t>, partition, std::nullopt,
          "Filter: the partition the record came from.");
ABSL_FLAG(std::optional<absl::Time>, since, std::nullopt,
          "Filter: failed_at at or after this RFC 3339 time.");
ABSL_FLAG(std::optional<absl::Time>, until, std::nullopt,
          "Filter: failed_at before this RFC 3339 time.");
ABSL_FLAG(std::optional<int64_t>, limit, std::nullopt,
          "Publish at most this many records.");
ABSL_FLAG(std::string, bootstrap, "",
          "The cluster to publish to, HOST:PORT[,...]. Required.");
ABSL_FLAG(std::string, topic, "",
          "The target topic (default: each record's source topic).");
ABSL_FLAG(bool, same_partition, false,
          "Produce to the record's source partition (default: murmur2 "
          "partitioner on the key).");
ABSL_FLAG(bool, new_timestamp, false,
          "Stamp messages with the current time (default: the record's "
          "original timestamp, when known).");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(60),
          "How long to wait for reading the DLQ topic and for deliveries.");
ABSL_FLAG(bool, dry_run, false,
          "Print what would be published; publish nothing.");

namespace {

constexpr char kUsage[] =
    R"(re-publishes the original key and value of dead-letter records to Kafka.

usage: weir-dlq-replay (--input=FILE | --dlq_topic=TOPIC)
                       --bootstrap=HOST:PORT[,...] [filters] [options]
                       [-X key=value]...
  -X key=value  a librdkafka producer property (repeatable)

A record is replayed when all filters hold. Prints read=N matched=M
duplicates=D published=P. Exit 0: all matching records delivered; 1: a
record could not be read or delivered; 2: bad usage.)";

struct Flags {
  std::string input;
  std::string dlq_topic;
  std::string dlq_bootstrap;
  std::string bootstrap;
  std::string topic;
  std::set<weir::DecodeErrorCategory> categories;
  std::set<std::string> error_types;
  std::optional<std::string> source_topic;
  std::optional<int32_t> partition;
  std::optional<absl::Time> since;
  std::optional<absl::Time> until;
  std::optional<int64_t> limit;
  bool same_partition = false;
  bool new_timestamp = false;
  absl::Duration timeout = absl::Seconds(60);
  bool dry_run = false;
  std::vector<std::pair<std::string, std::string>> properties;
};

absl::StatusOr<Flags> FlagsFromCommandLine(int argc, char** argv) {
  Flags f;
  f.properties = weir::tools::ParseCommandLine(
                     argc, argv, {.usage = kUsage, .properties = true})
                     .properties;
  f.input = absl::GetFlag(FLAGS_input);
  f.dlq_topic = absl::GetFlag(FLAGS_dlq_topic);
  f.dlq_bootstrap = absl::GetFlag(FLAGS_dlq_bootstrap);
  f.bootstrap = absl::GetFlag(FLAGS_bootstrap);
  f.topic = absl::GetFlag(FLAGS_topic);
  for (const std::string& c : absl::GetFlag(FLAGS_category)) {
    std::optional<weir::DecodeErrorCategory> parsed =
        weir::ParseDecodeErrorCategory(c);
    if (!parsed.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--category: '", c,
          "' is not deserialization, schema_mismatch or processing_error"));
    }
    f.categories.insert(*parsed);
  }
  for (const std::string& t : absl::GetFlag(FLAGS_error_type)) {
    if (t.empty())
      return absl::InvalidArgumentError("--error_type: empty type");
    f.error_types.insert(t);
  }
  f.source_topic = absl::GetFlag(FLAGS_source_topic);
  f.partition = absl::GetFlag(FLAGS_partition);
  if (f.partition.has_value() && *f.partition < 0) {
    return absl::InvalidArgumentError("--partition wants a partition number");
  }
  f.since = absl::GetFlag(FLAGS_since);
  f.until = absl::GetFlag(FLAGS_until);
  f.limit = absl::GetFlag(FLAGS_limit);
  if (f.limit.has_value() && *f.limit < 0) {
    return absl::InvalidArgumentError("--limit wants a non-negative integer");
  }
  f.same_partition = absl::GetFlag(FLAGS_same_partition);
  f.new_timestamp = absl::GetFlag(FLAGS_new_timestamp);
  f.timeout = absl::GetFlag(FLAGS_timeout);
  if (f.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--timeout wants a positive duration such as 30s");
  }
  f.dry_run = absl::GetFlag(FLAGS_dry_run);
  if (f.input.empty() == f.dlq_topic.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --input and --dlq_topic");
  }
  if (f.bootstrap.empty()) {
    return absl::InvalidArgumentError("--bootstrap is required");
  }
  if (f.dlq_bootstrap.empty()) f.dlq_bootstrap = f.bootstrap;
  if (f.since.has_value() && f.until.has_value() && *f.until <= *f.since) {
    return absl::InvalidArgumentError("--until must be after --since");
  }
  return f;
}

int TimeoutMs(absl::Duration d) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(d), 1 << 30));
}

// Owns an rd_kafka_t.
struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

// A client of `type` over `conf`.
absl::StatusOr<KafkaPtr> NewKafka(rd_kafka_type_t type,
                                  weir::internal::KafkaConfPtr conf) {
  char errstr[512];
  KafkaPtr rk(rd_kafka_new(type, conf.get(), errstr, sizeof(errstr)));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("rd_kafka_new: ", errstr));
  }
  conf.release();  // rd_kafka_new took it
  return rk;
}

// ---- Reading a DLQ topic ---------------------------------------------------

// Every record in `topic`, partition by partition, from the log start to
// the high watermark each partition had when the read began.
absl::StatusOr<std::vector<weir::DeadLetterRecord>> ReadDlqTopic(
    const Flags& f) {
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", f.dlq_bootstrap},
      {"group.id", "weir-dlq-replay"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "false"},
      {"auto.offset.reset", "error"}};
  WEIR_ASSIGN_OR_RETURN(
      weir::internal::KafkaConfPtr conf,
      weir::internal::NewKafkaConf("weir-dlq-replay", settings, {}));
  WEIR_ASSIGN_OR_RETURN(KafkaPtr rk,
                        NewKafka(RD_KAFKA_CONSUMER, std::move(conf)));
  rd_kafka_poll_set_consumer(rk.get());

  // How many partitions the topic has.
  const absl::Time deadline = absl::Now() + f.timeout;
  int partitions = 0;
  {
    rd_kafka_topic_t* t =
        rd_kafka_topic_new(rk.get(), f.dlq_topic.c_str(), nullptr);
    if (t == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--dlq_topic=", f.dlq_topic, ": ",
                       rd_kafka_err2str(rd_kafka_last_error())));
    }
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t err = rd_kafka_metadata(
        rk.get(), 0, t, &md, TimeoutMs(deadline - absl::Now()));
    rd_kafka_topic_destroy(t);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("metadata of ", f.dlq_topic,
                                                 ": ", rd_kafka_err2str(err)));
    }
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      partitions = md->topics[0].partition_cnt;
    }
    const rd_kafka_resp_err_t topic_err =
        md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_metadata_destroy(md);
    if (partitions == 0) {
      return absl::NotFoundError(absl::StrCat(
          "topic ", f.dlq_topic, ": ",
          topic_err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(topic_err)
                                                  : "no partitions"));
    }
  }

  // Where each partition starts and ends now.
  std::vector<int64_t> end(partitions, 0);
  // The next offset to read; a partition is done once it reaches `end`.
  std::vector<int64_t> next(partitions, 0);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(partitions);
  int64_t remaining = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        rk.get(), f.dlq_topic.c_str(), p, &low, &high,
        TimeoutMs(deadline - absl::Now()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_topic_partition_list_destroy(list);
      return absl::UnavailableError(absl::StrCat(
          "offsets of ", f.dlq_topic, "/", p, ": ", rd_kafka_err2str(err)));
    }
    end[p] = high;
    next[p] = low;
    if (high > low) {
      rd_kafka_topic_partition_list_add(list, f.dlq_topic.c_str(), p)->offset =
          low;
      remaining += high - low;
    }
  }
  std::vector<weir::DeadLetterRecord> out;
  if (remaining == 0) {
    rd_kafka_topic_partition_list_destroy(list);
    return out;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("assign ", f.dlq_topic, ": ", rd_kafka_err2str(err)));
  }

  // Records per partition, so the output follows each partition's order.
  std::vector<std::vector<weir::DeadLetterRecord>> by_partition(partitions);
  absl::Status status;
  while (status.ok()) {
    bool all_done = true;
    for (int p = 0; p < partitions; ++p) {
      if (next[p] < end[p]) all_done = false;
    }
    if (all_done) break;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      status = absl::DeadlineExceededError(absl::StrCat(
          "reading ", f.dlq_topic, " did not reach its end within ",
          absl::FormatDuration(f.timeout)));
      break;
    }
    rd_kafka_message_t* m =
        rd_kafka_consumer_poll(rk.get(), std::min(TimeoutMs(left), 200));
    if (m == nullptr) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        status = absl::UnavailableError(absl::StrCat(
            "reading ", f.dlq_topic, ": ", rd_kafka_message_errstr(m)));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    const int32_t p = m->partition;
    if (p >= 0 && p < partitions && m->offset < end[p]) {
      const std::string_view line =
          m->payload != nullptr
              ? std::string_view(static_cast<const char*>(m->payload), m->len)
              : std::string_view();
      absl::StatusOr<weir::DeadLetterRecord> r =
          weir::ParseDeadLetterJson(line);
      if (!r.ok()) {
        status = absl::DataLossError(absl::StrCat(
            f.dlq_topic, "/", p, "@", m->offset,
            " is not a dead-letter record: ", r.status().message()));
      } else {
        by_partition[p].push_back(*std::move(r));
      }
    }
    if (p >= 0 && p < partitions) next[p] = m->offset + 1;
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk.get());
  WEIR_RETURN_IF_ERROR(status);
  for (auto& records : by_partition) {
    for (auto& r : records) out.push_back(std::move(r));
  }
  return out;
}

// ---- Filtering -------------------------------------------------------------

bool Matches(const Flags& f, const weir::DeadLetterRecord& r) {
  if (!f.categories.empty() && !f.categories.count(r.category)) return false;
  if (!f.error_types.empty() && !f.error_types.count(r.error_type)) {
    return false;
  }
  if (f.source_topic.has_value() && r.topic != *f.source_topic) return false;
  if (f.partition.has_value() && r.partition != *f.partition) return false;
  if (f.since.has_value() && r.failed_at < *f.since) return false;
  if (f.until.has_value() && r.failed_at >= *f.until) return false;
  return true;
}

// ---- Producing -------------------------------------------------------------

struct Deliveries {
  int64_t delivered = 0;
  int64_t failed = 0;
  std::string first_error;
};

void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message,
                void* opaque) {
  auto* d = static_cast<Deliveries*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++d->delivered;
    return;
  }
  if (d->failed++ == 0) {
    d->first_error = absl::StrCat(rd_kafka_topic_name(message->rkt), ": ",
                                  rd_kafka_err2name(message->err), ": ",
                                  rd_kafka_err2str(message->err));
  }
}

absl::StatusOr<KafkaPtr> NewProducer(const Flags& f, Deliveries* d) {
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", f.bootstrap},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"partitioner", "murmur2_random"},
      {"message.timeout.ms", absl::StrCat(TimeoutMs(f.timeout))},
  };
  std::map<std::string, std::string> properties;
  for (const auto& [k, v] : f.properties) properties[k] = v;
  WEIR_ASSIGN_OR_RETURN(
      weir::internal::KafkaConfPtr conf,
      weir::internal::NewKafkaConf("weir-dlq-replay", settings, properties));
  rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
  rd_kafka_conf_set_opaque(conf.get(), d);
  return NewKafka(RD_KAFKA_PRODUCER, std::move(conf));
}

// Queues one record's original bytes, waiting for room in librdkafka's
// queue until `deadline`.
absl::Status Produce(rd_kafka_t* rk, const Flags& f, const std::string& target,
                     const weir::DeadLetterRecord& r, absl::Time deadline) {
  const int32_t partition =
      f.same_partition ? r.partition : RD_KAFKA_PARTITION_UA;
  const int64_t timestamp =
      (!f.new_timestamp && r.timestamp.has_value()) ? *r.timestamp : 0;
  while (true) {
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(target.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(r.key.empty() ? nullptr : r.key.data(), r.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
        RD_KAFKA_V_TIMESTAMP(timestamp),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::InvalidArgumentError(
          absl::StrCat("producing ", r.topic, "/", r.partition, "@", r.offset,
                       " to ", target, ": ", rd_kafka_err2str(err)));
    }
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(
          absl::StrCat("the producer queue stayed full until the timeout; is ",
                       target, " taking messages?"));
    }
    rd_kafka_poll(rk, 100);  // deliveries make room
  }
  rd_kafka_poll(rk, 0);
  return absl::OkStatus();
}

// One line describing a record the dry run would publish.
std::string Describe(const std::string& target, const weir::DeadLetterRecord& r,
                     bool same_partition) {
  return absl::StrCat(
      "would publish ", r.topic, "/", r.partition, "@", r.offset, " -> ",
      target, same_partition ? absl::StrCat("/", r.partition) : "",
      " category=", weir::DecodeErrorCategoryName(r.category),
      " error_type=", r.error_type, " failed_at=",
      absl::FormatTime(absl::RFC3339_full, r.failed_at, absl::UTCTimeZone()),
      " key=\"", absl::CHexEscape(r.key), "\" value_bytes=", r.value.size());
}

int Run(const Flags& f) {
  absl::StatusOr<std::vector<weir::DeadLetterRecord>> records =
      f.input.empty() ? ReadDlqTopic(f) : weir::ReadDeadLetterFile(f.input);
  if (!records.ok()) {
    std::fprintf(stderr, "weir-dlq-replay: reading %s: %s\n",
                 f.input.empty() ? f.dlq_topic.c_str() : f.input.c_str(),
                 records.status().ToString().c_str());
    return 1;
  }

  // The records to publish: matching, first copy of each position, up to
  // --limit.
  std::set<std::tuple<std::string, int32_t, int64_t>> seen;
  std::vector<const weir::DeadLetterRecord*> chosen;
  int64_t duplicates = 0;
  for (const weir::DeadLetterRecord& r : *records) {
    if (!Matches(f, r)) continue;
    if (!seen.emplace(r.topic, r.partition, r.offset).second) {
      ++duplicates;
      continue;
    }
    if (f.limit.has_value() && static_cast<int64_t>(chosen.size()) >= *f.limit)
      continue;
    chosen.push_back(&r);
  }
  const int64_t read = static_cast<int64_t>(records->size());
  const int64_t matched = static_cast<int64_t>(chosen.size());

  if (f.dry_run) {
    for (const weir::DeadLetterRecord* r : chosen) {
      const std::string target = f.topic.empty() ? r->topic : f.topic;
      std::printf("%s\n", Describe(target, *r, f.same_partition).c_str());
    }
    std::printf("read=%lld matched=%lld duplicates=%lld published=0\n",
                static_cast<long long>(read), static_cast<long long>(matched),
                static_cast<long long>(duplicates));
    return 0;
  }

  Deliveries deliveries;
  absl::StatusOr<KafkaPtr> producer = NewProducer(f, &deliveries);
  if (!producer.ok()) {
    std::fprintf(stderr, "weir-dlq-replay: %s\n",
                 producer.status().ToString().c_str());
    return 2;
  }
  rd_kafka_t* rk = producer->get();
  const absl::Time deadline = absl::Now() + f.timeout;
  absl::Status status;
  for (const weir::DeadLetterRecord* r : chosen) {
    const std::string& target = f.topic.empty() ? r->topic : f.topic;
    status = Produce(rk, f, target, *r, deadline);
    if (!status.ok()) break;
  }
  // Every queued message either delivered or failed by message.timeout.ms;
  // the flush waits a little longer than that.
  const rd_kafka_resp_err_t flushed =
      rd_kafka_flush(rk, TimeoutMs(f.timeout + absl::Seconds(5)));
  if (status.ok() && flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(
        absl::StrCat(rd_kafka_outq_len(rk), " messages still in flight after ",
                     absl::FormatDuration(f.timeout)));
  }
  if (status.ok() && deliveries.failed > 0) {
    status = absl::UnavailableError(absl::StrCat(
        deliveries.failed,
        " deliveries failed; the first: ", deliveries.first_error));
  }
  std::printf("read=%lld matched=%lld duplicates=%lld published=%lld\n",
              static_cast<long long>(read), static_cast<long long>(matched),
              static_cast<long long>(duplicates),
              static_cast<long long>(deliveries.delivered));
  std::fflush(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "weir-dlq-replay: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<Flags> flags = FlagsFromCommandLine(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "weir-dlq-replay: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  return Run(*flags);
}
