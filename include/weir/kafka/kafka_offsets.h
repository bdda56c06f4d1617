// -----------------------------------------------------------------------------
// File: kafka_offsets.h
// -----------------------------------------------------------------------------
//
// Where a topic's partitions start and end, and which offset each has at a
// point in time: what a backfill (weir/backfill.h) needs to turn a range of
// offsets or times into per-partition offsets before it reads.
//
// Threading: QueryKafkaOffsets may be called from any thread; it creates
// and destroys its own librdkafka client (and its threads) inside the call.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(
//       std::vector<weir::KafkaPartitionOffsets> parts,
//       weir::QueryKafkaOffsets({.bootstrap_servers = "kafka:9092",
//                                .topic = "payments",
//                                .times = {start_ms}}));
//   for (const auto& p : parts) Read(p.partition, p.at_times[0], p.high);

#ifndef WEIR_KAFKA_KAFKA_OFFSETS_H_
#define WEIR_KAFKA_KAFKA_OFFSETS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/time.h"

namespace weir {

struct KafkaOffsetsQuery {
  // host:port[,...]. Required.
  std::string bootstrap_servers;
  // The topic. Required.
  std::string topic;
  // librdkafka properties of the client (security settings, ...).
  std::map<std::string, std::string> properties;
  // Times (ms since the epoch) to look up in every partition.
  std::vector<EventTime> times;
  // Time limit of the whole query. Default: absl::Seconds(30)
  absl::Duration timeout = absl::Seconds(30);
};

struct KafkaPartitionOffsets {
  int32_t partition = 0;
  // The log start offset and the offset after the last record (the high
  // watermark), as the query found them.
  int64_t low = 0;
  int64_t high = 0;
  // For each of KafkaOffsetsQuery::times: the first offset whose record
  // timestamp is at or after it (Kafka's offsets-for-times), or `high`
  // when no record is that recent.
  std::vector<int64_t> at_times;
};

// Every partition of the topic, in partition order. kNotFound for a topic
// that does not exist, kUnavailable when the cluster does not answer in
// time, kInvalidArgument for a bad property.
absl::StatusOr<std::vector<KafkaPartitionOffsets>> QueryKafkaOffsets(
    const KafkaOffsetsQuery& query);

}  // namespace weir

#endif  // WEIR_KAFKA_KAFKA_OFFSETS_H_
