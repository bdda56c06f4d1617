// QueryKafkaOffsets (weir/kafka/kafka_offsets.h): metadata, watermark
// offsets and offsets-for-times through a short-lived librdkafka consumer.

#include "weir/kafka/kafka_offsets.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};

int TimeoutMs(absl::Time deadline) {
  return static_cast<int>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(deadline - absl::Now()), 1, 1 << 30));
}

absl::StatusOr<int> PartitionCount(rd_kafka_t* rk, const std::string& topic,
                                   absl::Time deadline) {
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (t == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topic ", topic, ": ", rd_kafka_err2str(rd_kafka_last_error())));
  }
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, 0, t, &md, TimeoutMs(deadline));
  rd_kafka_topic_destroy(t);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        internal::KafkaErrorText(err, absl::StrCat("metadata of ", topic)));
  }
  int partitions = 0;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (md->topic_cnt == 1) {
    topic_err = md->topics[0].err;
    if (topic_err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      partitions = md->topics[0].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (partitions == 0) {
    return absl::NotFoundError(absl::StrCat(
        "topic ", topic, ": ",
        topic_err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(topic_err)
                                                : "no partitions"));
  }
  return partitions;
}

}  // namespace

absl::StatusOr<std::vector<KafkaPartitionOffsets>> QueryKafkaOffsets(
    const KafkaOffsetsQuery& query) {
  const absl::Time deadline = absl::Now() + query.timeout;
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"bootstrap.servers", query.bootstrap_servers},
      {"enable.auto.commit", "false"}};
  WEIR_ASSIGN_OR_RETURN(
      internal::KafkaConfPtr conf,
      internal::NewKafkaConf("QueryKafkaOffsets", settings, query.properties));
  char errstr[512];
  std::unique_ptr<rd_kafka_t, KafkaDeleter> rk(
      rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof(errstr)));
  if (rk == nullptr) return absl::InternalError(errstr);
  conf.release();  // owned by the client now

  WEIR_ASSIGN_OR_RETURN(const int partitions,
                        PartitionCount(rk.get(), query.topic, deadline));
  std::vector<KafkaPartitionOffsets> out(partitions);
  for (int p = 0; p < partitions; ++p) {
    out[p].partition = p;
    const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        rk.get(), query.topic.c_str(), p, &out[p].low, &out[p].high,
        TimeoutMs(deadline));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(internal::KafkaErrorText(
          err, absl::StrCat("offsets of ", query.topic, "/", p)));
    }
  }
  for (const EventTime t : query.times) {
    std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter> list(
        rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), query.topic.c_str(), p)
          ->offset = t;
    }
    const rd_kafka_resp_err_t err =
        rd_kafka_offsets_for_times(rk.get(), list.get(), TimeoutMs(deadline));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(internal::KafkaErrorText(
          err, absl::StrCat("offsets for time ", t, " of ", query.topic)));
    }
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& e = list->elems[i];
      if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return absl::UnavailableError(internal::KafkaErrorText(
            e.err, absl::StrCat("offsets for time ", t, " of ", query.topic,
                                "/", e.partition)));
      }
      KafkaPartitionOffsets& po = out[e.partition];
      // -1: no record at or after the time, so the partition's end.
      po.at_times.push_back(
          e.offset < 0 ? po.high : std::clamp(e.offset, po.low, po.high));
    }
  }
  return out;
}

}  // namespace weir
