// Implementation of weir/kafka/kafka_source.h.

#include "weir/kafka/kafka_source.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

constexpr char kOwner[] = "KafkaSourceOptions";

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionListPtr =
    std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

PartitionListPtr MakeList(absl::Span<const TopicPartition> partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(
      static_cast<int>(std::max<size_t>(1, partitions.size()))));
  for (const TopicPartition& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(),
                                      tp.partition);
  }
  return list;
}

std::vector<TopicPartition> ToVector(
    const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  out.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  std::sort(out.begin(), out.end());
  return out;
}

const char* OffsetResetName(OffsetReset reset) {
  switch (reset) {
    case OffsetReset::kEarliest:
      return "earliest";
    case OffsetReset::kLatest:
      return "latest";
    case OffsetReset::kError:
      return "error";
  }
  return "earliest";
}

std::vector<std::pair<std::string, std::string>> Settings(
    const KafkaSourceOptions& options) {
  return {
      {"bootstrap.servers", options.bootstrap_servers},
      {"group.id", options.group_id},
      {"client.id", options.client_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      {"auto.offset.reset", OffsetResetName(options.auto_offset_reset)},
      {"partition.assignment.strategy", options.partition_assignment_strategy},
      // librdkafka (before 2.1) stops fetching for a whole second once the
      // consumer's queue holds more than queued.min.messages (default
      // 100,000, counted over all partitions): a consumer that reads that
      // many in under a second then waits with nothing to read. The bound
      // that matters is queued.max.messages.kbytes (64 MiB by default).
      {"queued.min.messages", "10000000"},
  };
}

// Whether librdkafka runs the cooperative rebalance protocol for `strategy`
// (a comma-separated list of assignors). librdkafka requires every
// configured assignor to use the same protocol, and in 2.0 the only
// cooperative one is "cooperative-sticky".
bool IsCooperativeStrategy(std::string_view strategy) {
  return strategy.find("cooperative-sticky") != std::string_view::npos;
}

absl::Status ClosedError() {
  return absl::FailedPreconditionError("the KafkaSource is closed");
}

// Milliseconds for a librdkafka timeout argument, clamped to [0, INT_MAX].
int TimeoutMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  const int64_t ms =
      absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

}  // namespace

// The librdkafka callbacks. They run on the thread inside
// rd_kafka_consumer_poll or rd_kafka_consumer_close: the source's thread.
struct KafkaSourceCallbacks {
  static void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* partitions,
                        void* opaque) {
    auto* source = static_cast<KafkaSource*>(opaque);
    const bool cooperative = source->cooperative_;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      source->ever_assigned_ = true;
      source->join_in_flight_ = false;
      source->OnAssign(partitions, cooperative);
      return;
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      // A rebalance that failed: give everything up, as librdkafka asks.
      source->CountTransient(internal::KafkaErrorText(err, "rebalance"));
    }
    // An eager member gives up its whole assignment and joins again.
    if (!cooperative) source->join_in_flight_ = true;
    source->OnRevoke(partitions, cooperative);
  }

  static void Error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    static_cast<KafkaSource*>(opaque)->OnError(err, reason);
  }
};

absl::Status KafkaSourceOptions::Validate() const {
  if (bootstrap_servers.empty()) {
    return absl::InvalidArgumentError(
        "KafkaSourceOptions.bootstrap_servers is empty");
  }
  if (group_id.empty()) {
    return absl::InvalidArgumentError("KafkaSourceOptions.group_id is empty");
  }
  if (topics.empty()) {
    return absl::InvalidArgumentError("KafkaSourceOptions.topics is empty");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < topics.size(); ++i) {
    const std::string field =
        absl::StrCat("KafkaSourceOptions.topics[", i, "]");
    if (topics[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
    }
    if (topics[i][0] != '^') {
      WEIR_RETURN_IF_ERROR(internal::ValidateTopicName(field, topics[i]));
    }
    if (!seen.insert(topics[i]).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " \"", topics[i], "\" is listed twice"));
    }
  }
  if (partition_assignment_strategy.empty()) {
    return absl::InvalidArgumentError(
        "KafkaSourceOptions.partition_assignment_strategy is empty");
  }
  if (client_id.empty()) {
    return absl::InvalidArgumentError("KafkaSourceOptions.client_id is empty");
  }
  if (seek_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "KafkaSourceOptions.seek_timeout must be positive");
  }
  if (close_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "KafkaSourceOptions.close_timeout must be positive");
  }
  if (start_time_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "KafkaSourceOptions.start_time_timeout must be positive");
  }
  static constexpr std::pair<std::string_view, std::string_view> kReserved[] = {
      {"bootstrap.servers", "use KafkaSourceOptions.bootstrap_servers"},
      {"metadata.broker.list", "use KafkaSourceOptions.bootstrap_servers"},
      {"group.id", "use KafkaSourceOptions.group_id"},
      {"enable.auto.commit", "weir manages offsets"},
      {"enable.auto.offset.store", "weir manages offsets"},
      {"auto.offset.reset", "use KafkaSourceOptions.auto_offset_reset"},
      {"partition.assignment.strategy",
       "use KafkaSourceOptions.partition_assignment_strategy"},
  };
  WEIR_RETURN_IF_ERROR(
      internal::CheckNoReservedProperties(kOwner, properties, kReserved));
  // librdkafka's own checks of every name and value.
  return internal::NewKafkaConf(kOwner, Settings(*this), properties).status();
}

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::Create(
    KafkaSourceOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<KafkaSource> source(new KafkaSource(std::move(options)));
  const KafkaSourceOptions& o = source->options_;
  WEIR_ASSIGN_OR_RETURN(
      internal::KafkaConfPtr conf,
      internal::NewKafkaConf(kOwner, Settings(o), o.properties));
  rd_kafka_conf_set_opaque(conf.get(), source.get());
  rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaSourceCallbacks::Rebalance);
  rd_kafka_conf_set_error_cb(conf.get(), &KafkaSourceCallbacks::Error);
  char errstr[512];
  rd_kafka_t* rk =
      rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot create the Kafka consumer: ", errstr));
  }
  conf.release();  // rd_kafka_new took it
  source->rk_ = rk;
  rd_kafka_poll_set_consumer(rk);

  PartitionListPtr topics(
      rd_kafka_topic_partition_list_new(static_cast<int>(o.topics.size())));
  for (const std::string& topic : o.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(),
                                      RD_KAFKA_PARTITION_UA);
  }
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(internal::KafkaErrorText(
        err, absl::StrCat("subscribing to KafkaSourceOptions.topics")));
  }
  return source;
}

KafkaSource::KafkaSource(KafkaSourceOptions options)
    : options_(std::move(options)),
      cooperative_(
          IsCooperativeStrategy(options_.partition_assignment_strategy)) {}

namespace {

// How long Close waits for the group to answer a join in flight (within
// close_timeout).
constexpr absl::Duration kCloseAssignmentWait = absl::Seconds(10);

// Before 2.3.0, librdkafka asserts (and so aborts the process) in
// rd_kafka_destroy when a cooperative-sticky consumer joined its group but
// never received an assignment: its assignor state is still NULL
// (librdkafka issue 4312). Close first waits for that assignment; a
// consumer that still has none (the group never answered) is closed, then
// kept here, reachable, for the life of the process instead of destroyed.
// So is a consumer whose close did not finish within close_timeout:
// rd_kafka_destroy would block on it. Nothing calls back into its (gone)
// source: callbacks run only inside a poll or a close, and its close queue
// is no longer served.
void KeepUndestroyed(rd_kafka_t* rk) {
  static absl::Mutex mu(absl::kConstInit);
  static std::vector<rd_kafka_t*>* kept = nullptr;
  absl::MutexLock lock(&mu);
  if (kept == nullptr) kept = new std::vector<rd_kafka_t*>();
  kept->push_back(rk);
}

}  // namespace

bool KafkaSource::MustAwaitFirstAssignment() const {
  return cooperative_ && !ever_assigned_ && rd_kafka_version() < 0x020300ff;
}

bool KafkaSource::AwaitsAssignment() const {
  return MustAwaitFirstAssignment() || (!cooperative_ && join_in_flight_);
}

KafkaSource::~KafkaSource() {
  Close().IgnoreError();
  if (rk_ == nullptr) return;
  if (close_unfinished_ || MustAwaitFirstAssignment()) {
    KeepUndestroyed(rk_);
  } else {
    rd_kafka_destroy(rk_);
  }
}

std::string KafkaSource::name() const {
  return rk_ != nullptr ? rd_kafka_name(rk_) : "";
}

void KafkaSource::SetPartitionListener(PartitionListener* listener) {
  listener_ = listener;
}

absl::Status KafkaSource::AddStartTimeOffsets(
    const std::vector<TopicPartition>& offered, StartOffsets* start) {
  rd_kafka_topic_partition_list_t* query =
      rd_kafka_topic_partition_list_new(static_cast<int>(offered.size()));
  for (const TopicPartition& tp : offered) {
    if (start->count(tp) == 0) {
      rd_kafka_topic_partition_list_add(query, tp.topic.c_str(), tp.partition)
          ->offset = absl::ToUnixMillis(*options_.start_time);
    }
  }
  absl::Status status;
  if (query->cnt > 0) {
    const int timeout_ms = static_cast<int>(std::min<int64_t>(
        absl::ToInt64Milliseconds(options_.start_time_timeout), INT32_MAX));
    if (rd_kafka_resp_err_t err =
            rd_kafka_offsets_for_times(rk_, query, timeout_ms);
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const std::string what =
          internal::KafkaErrorText(err, "offsets for start_time");
      status = err == RD_KAFKA_RESP_ERR__TIMED_OUT
                   ? absl::DeadlineExceededError(what)
                   : absl::UnavailableError(what);
    }
    for (int i = 0; status.ok() && i < query->cnt; ++i) {
      const rd_kafka_topic_partition_t& elem = query->elems[i];
      if (elem.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::UnavailableError(internal::KafkaErrorText(
            elem.err, absl::StrCat("offsets for start_time of ", elem.topic,
                                   "/", elem.partition)));
        break;
      }
      // -1: the broker found no record at or after the time, or cannot
      // look times up (librdkafka's mock cluster answers -1 to every time);
      // start at the beginning, which reads more but misses nothing.
      (*start)[TopicPartition{elem.topic, elem.partition}] =
          elem.offset >= 0 ? elem.offset : RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  rd_kafka_topic_partition_list_destroy(query);
  return status;
}

void KafkaSource::OnAssign(rd_kafka_topic_partition_list_t* partitions,
                           bool cooperative) {
  if (closing_) {
    // Close is waiting for this first assignment only to be able to leave
    // cleanly: accept it in librdkafka, tell no one, read nothing.
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk_, partitions)) {
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk_, partitions);
    }
    return;
  }
  const std::vector<TopicPartition> offered = ToVector(partitions);
  StartOffsets start;
  // Cooperative rebalances may assign nothing new; the listener only hears
  // of actual partitions.
  if (listener_ != nullptr && sticky_error_.ok() && !offered.empty()) {
    absl::StatusOr<StartOffsets> answer =
        internal::CallOnAssigned(*listener_, offered);
    if (!answer.ok()) {
      sticky_error_ = answer.status();
    } else {
      start = *std::move(answer);
    }
  }
  if (!sticky_error_.ok()) {
    // Take none of the partitions: the source is failing, and the pipeline
    // will close it, which gives them to another group member.
    if (!cooperative) Unassign();
    return;
  }
  if (options_.start_time.has_value() && sticky_error_.ok()) {
    sticky_error_ = AddStartTimeOffsets(offered, &start);
  }
  if (!sticky_error_.ok()) {
    if (listener_ != nullptr) internal::CallOnRevoked(*listener_, offered);
    if (!cooperative) Unassign();
    return;
  }
  for (int i = 0; i < partitions->cnt; ++i) {
    rd_kafka_topic_partition_t& elem = partitions->elems[i];
    auto it = start.find(TopicPartition{elem.topic, elem.partition});
    elem.offset = it != start.end() ? it->second : RD_KAFKA_OFFSET_INVALID;
  }
  if (cooperative) {
    if (rd_kafka_error_t* error =
            rd_kafka_incremental_assign(rk_, partitions)) {
      sticky_error_ = absl::InternalError(absl::StrCat(
          "incremental assign failed: ", rd_kafka_error_string(error)));
      rd_kafka_error_destroy(error);
    }
  } else if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_, partitions);
             err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    sticky_error_ =
        absl::InternalError(internal::KafkaErrorText(err, "assign"));
  }
  if (!sticky_error_.ok()) {
    // The listener accepted partitions the source could not take.
    if (listener_ != nullptr) internal::CallOnRevoked(*listener_, offered);
    return;
  }
  for (const TopicPartition& tp : offered) {
    assignment_.insert(tp);
    paused_.erase(tp);
    next_offset_.erase(tp);
  }
  // Only real offsets are positions (not a logical one, like the beginning
  // a start_time lookup may give).
  for (const auto& [tp, offset] : start) {
    if (offset >= 0) next_offset_[tp] = offset;
  }
  absl::MutexLock lock(&stats_mu_);
  stats_.partitions_assigned += static_cast<int64_t>(offered.size());
}

void KafkaSource::OnRevoke(rd_kafka_topic_partition_list_t* partitions,
                           bool cooperative) {
  // Eager revocations list the whole assignment; only partitions this
  // source accepted are reported.
  std::vector<TopicPartition> revoked;
  for (const TopicPartition& tp : ToVector(partitions)) {
    if (assignment_.count(tp) > 0) revoked.push_back(tp);
  }
  if (!revoked.empty()) {
    // Records fetched before the revocation are not returned.
    const std::set<TopicPartition> gone(revoked.begin(), revoked.end());
    auto keep =
        std::remove_if(held_.begin(), held_.end(), [&](rd_kafka_message_t* m) {
          if (gone.count({rd_kafka_topic_name(m->rkt), m->partition}) == 0) {
            return false;
          }
          rd_kafka_message_destroy(m);
          return true;
        });
    held_.erase(keep, held_.end());
    if (listener_ != nullptr) internal::CallOnRevoked(*listener_, revoked);
  }
  if (cooperative) {
    if (rd_kafka_error_t* error =
            rd_kafka_incremental_unassign(rk_, partitions)) {
      CountTransient(
          absl::StrCat("incremental unassign: ", rd_kafka_error_string(error)));
      rd_kafka_error_destroy(error);
    }
  } else {
    Unassign();
  }
  for (const TopicPartition& tp : revoked) {
    assignment_.erase(tp);
    paused_.erase(tp);
    next_offset_.erase(tp);
  }
  absl::MutexLock lock(&stats_mu_);
  stats_.partitions_revoked += static_cast<int64_t>(revoked.size());
}

bool KafkaSource::LibrdkafkaAssignmentEmpty() {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(rk_, &list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return assignment_.empty();
  }
  const bool empty = list->cnt == 0;
  rd_kafka_topic_partition_list_destroy(list);
  return empty && assignment_.empty();
}

void KafkaSource::Unassign() {
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_, nullptr);
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    CountTransient(internal::KafkaErrorText(err, "unassign"));
  }
}

void KafkaSource::OnError(int err, const char* reason) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char errstr[512];
    const rd_kafka_resp_err_t fatal =
        rd_kafka_fatal_error(rk_, errstr, sizeof(errstr));
    if (sticky_error_.ok()) {
      sticky_error_ = absl::AbortedError(
          absl::StrCat("fatal Kafka consumer error, recreate the source: ",
                       rd_kafka_err2name(fatal), ": ", errstr));
    }
    return;
  }
  CountTransient(absl::StrCat(rd_kafka_err2name(code), ": ",
                              reason != nullptr ? reason : ""));
}

void KafkaSource::CountTransient(std::string text) {
  absl::MutexLock lock(&stats_mu_);
  ++stats_.transient_errors;
  stats_.last_transient_error = std::move(text);
}

void KafkaSource::ReleaseBatch() {
  batch_.clear();
  for (rd_kafka_message_t* m : held_) rd_kafka_message_destroy(m);
  held_.clear();
}

absl::Status KafkaSource::HandleMessageError(rd_kafka_message_t* message) {
  const rd_kafka_resp_err_t err = message->err;
  std::string where;
  if (message->rkt != nullptr) {
    where = absl::StrCat(rd_kafka_topic_name(message->rkt), "/",
                         message->partition, ": ");
  }
  const std::string text = absl::StrCat(where, rd_kafka_err2name(err), ": ",
                                        rd_kafka_message_errstr(message));
  rd_kafka_message_destroy(message);
  switch (err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
      return absl::OkStatus();
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
      return absl::FailedPreconditionError(absl::StrCat(
          text, " (no valid offset and auto_offset_reset is kError)"));
    case RD_KAFKA_RESP_ERR__FATAL:
      OnError(err, text.c_str());
      return sticky_error_;
    default:
      CountTransient(text);
      return absl::OkStatus();
  }
}

absl::StatusOr<absl::Span<const RawRecord>> KafkaSource::Poll(
    size_t max_records, absl::Duration timeout) {
  ReleaseBatch();
  if (closed_) return ClosedError();
  if (!sticky_error_.ok()) return sticky_error_;
  const absl::Time deadline = absl::Now() + timeout;
  while (held_.size() < max_records) {
    const int wait_ms = held_.empty() ? TimeoutMs(deadline - absl::Now()) : 0;
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, wait_ms);
    if (!sticky_error_.ok()) {
      if (m != nullptr) rd_kafka_message_destroy(m);
      ReleaseBatch();
      return sticky_error_;
    }
    if (m == nullptr) {
      if (!held_.empty() || absl::Now() >= deadline) break;
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (absl::Status s = HandleMessageError(m); !s.ok()) {
        ReleaseBatch();
        return s;
      }
      continue;
    }
    held_.push_back(m);
  }

  batch_.reserve(held_.size());
  std::string_view run_topic;
  int32_t run_partition = -1;
  auto end_run = [&](int64_t next) {
    if (run_partition >= 0) {
      next_offset_[TopicPartition{std::string(run_topic), run_partition}] =
          next;
    }
  };
  for (size_t i = 0; i < held_.size(); ++i) {
    const rd_kafka_message_t* m = held_[i];
    RawRecord r;
    r.topic = rd_kafka_topic_name(m->rkt);
    r.partition = m->partition;
    r.offset = m->offset;
    rd_kafka_timestamp_type_t type;
    const int64_t ts = rd_kafka_message_timestamp(m, &type);
    if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) r.timestamp = ts;
    if (m->key != nullptr) {
      r.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
    }
    if (m->payload != nullptr) {
      r.value = std::string_view(static_cast<const char*>(m->payload), m->len);
    }
    if (r.partition != run_partition || r.topic != run_topic) {
      if (i > 0) end_run(held_[i - 1]->offset + 1);
      run_topic = r.topic;
      run_partition = r.partition;
    }
    batch_.push_back(r);
  }
  if (!held_.empty()) end_run(held_.back()->offset + 1);
  absl::MutexLock lock(&stats_mu_);
  stats_.records += static_cast<int64_t>(batch_.size());
  return absl::Span<const RawRecord>(batch_);
}

absl::Status KafkaSource::CheckAssigned(
    absl::Span<const TopicPartition> partitions) const {
  if (closed_) return ClosedError();
  for (const TopicPartition& tp : partitions) {
    if (assignment_.count(tp) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(tp.ToString(), " is not assigned"));
    }
  }
  return absl::OkStatus();
}

namespace {

// The first per-partition error of `list` after a call, or OK.
absl::Status ListError(const rd_kafka_topic_partition_list_t* list,
                       std::string_view what, absl::StatusCode code) {
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::Status(
          code, internal::KafkaErrorText(
                    list->elems[i].err,
                    absl::StrCat(std::string(what), " ", list->elems[i].topic,
                                 "/", list->elems[i].partition)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status KafkaSource::Pause(absl::Span<const TopicPartition> partitions) {
  WEIR_RETURN_IF_ERROR(CheckAssigned(partitions));
  if (partitions.empty()) return absl::OkStatus();
  PartitionListPtr list = MakeList(partitions);
  const rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk_, list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(internal::KafkaErrorText(err, "pause"));
  }
  WEIR_RETURN_IF_ERROR(
      ListError(list.get(), "pause", absl::StatusCode::kInternal));
  paused_.insert(partitions.begin(), partitions.end());
  return absl::OkStatus();
}

absl::Status KafkaSource::Resume(absl::Span<const TopicPartition> partitions) {
  WEIR_RETURN_IF_ERROR(CheckAssigned(partitions));
  if (partitions.empty()) return absl::OkStatus();
  PartitionListPtr list = MakeList(partitions);
  const rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk_, list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(internal::KafkaErrorText(err, "resume"));
  }
  WEIR_RETURN_IF_ERROR(
      ListError(list.get(), "resume", absl::StatusCode::kInternal));
  for (const TopicPartition& tp : partitions) paused_.erase(tp);
  return absl::OkStatus();
}

absl::Status KafkaSource::Seek(const TopicPartition& partition,
                               int64_t offset) {
  const TopicPartition one[] = {partition};
  WEIR_RETURN_IF_ERROR(CheckAssigned(one));
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot seek ", partition.ToString(), " to ", offset));
  }
  PartitionListPtr list = MakeList(one);
  list->elems[0].offset = offset;
  int timeout_ms = TimeoutMs(options_.seek_timeout);
  if (rd_kafka_version() < 0x020100ff) {
    // Before 2.1.0, rd_kafka_seek_partitions waited its timeout in the
    // wrong unit (microseconds), so a seek could report _TIMED_OUT long
    // before `seek_timeout`; scaling makes the wait at least as long as
    // asked. Seeks are local and normally confirmed at once.
    timeout_ms = static_cast<int>(
        std::min<int64_t>(int64_t{timeout_ms} * 1000, INT_MAX));
  }
  if (rd_kafka_error_t* error =
          rd_kafka_seek_partitions(rk_, list.get(), timeout_ms)) {
    absl::Status s = absl::UnavailableError(absl::StrCat(
        "seek ", partition.ToString(), ": ", rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
    return s;
  }
  WEIR_RETURN_IF_ERROR(
      ListError(list.get(), "seek", absl::StatusCode::kUnavailable));
  next_offset_[partition] = offset;
  return absl::OkStatus();
}

absl::Status KafkaSource::CommitOffsets(const PartitionOffsets& offsets) {
  if (closed_) return ClosedError();
  if (offsets.empty()) return absl::OkStatus();
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, offset] : offsets) {
    if (offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot commit ", tp.ToString(), " at ", offset));
    }
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(),
                                      tp.partition)
        ->offset = offset;
  }
  const rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list.get(), 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(internal::KafkaErrorText(err, "commit"));
  }
  return ListError(list.get(), "commit", absl::StatusCode::kUnavailable);
}

absl::StatusOr<PartitionOffsets> KafkaSource::Committed(
    absl::Span<const TopicPartition> partitions, absl::Duration timeout) {
  if (closed_) return ClosedError();
  PartitionOffsets out;
  if (partitions.empty()) return out;
  PartitionListPtr list = MakeList(partitions);
  const rd_kafka_resp_err_t err =
      rd_kafka_committed(rk_, list.get(), TimeoutMs(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        internal::KafkaErrorText(err, "committed offsets"));
  }
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& elem = list->elems[i];
    if (elem.err == RD_KAFKA_RESP_ERR_NO_ERROR && elem.offset >= 0) {
      out[{elem.topic, elem.partition}] = elem.offset;
    }
  }
  return out;
}

std::vector<TopicPartition> KafkaSource::Assignment() const {
  if (closed_) return {};
  return std::vector<TopicPartition>(assignment_.begin(), assignment_.end());
}

absl::StatusOr<std::vector<PartitionPosition>> KafkaSource::Positions() {
  if (closed_) return ClosedError();
  std::vector<PartitionPosition> out;
  out.reserve(assignment_.size());
  for (const TopicPartition& tp : assignment_) {
    PartitionPosition pos;
    pos.partition = tp;
    if (auto it = next_offset_.find(tp); it != next_offset_.end()) {
      pos.position = it->second;
    }
    int64_t low = RD_KAFKA_OFFSET_INVALID;
    int64_t high = RD_KAFKA_OFFSET_INVALID;
    if (rd_kafka_get_watermark_offsets(rk_, tp.topic.c_str(), tp.partition,
                                       &low,
                                       &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      pos.log_end_offset = high;
    }
    pos.paused = paused_.count(tp) > 0;
    out.push_back(std::move(pos));
  }
  return out;
}

SourceStats KafkaSource::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

absl::Status KafkaSource::Close() {
  if (closed_ || rk_ == nullptr) {
    closed_ = true;
    return absl::OkStatus();
  }
  ReleaseBatch();
  const absl::Time deadline = absl::Now() + options_.close_timeout;
  // From here an assignment is accepted only so that it can be given back
  // (OnAssign while closing_): the listener is not asked to restore state.
  closing_ = true;
  if (AwaitsAssignment()) {
    // A member whose join is in flight cannot leave the group yet: the
    // coordinator answers a member's requests in order, so its LeaveGroup
    // would wait behind the JoinGroup, and a new member does not even know
    // its member id. Closed now, it would stay in the group, unheard from,
    // until its session timed out: the rebalance would hand it partitions
    // that no one reads for session.timeout.ms and then run again. So Close
    // lets the group answer first, for a bounded time, and then leaves.
    // (A cooperative member that has not been given its first assignment
    // must wait for it in any case: see KeepUndestroyed.)
    const absl::Time first =
        std::min(deadline, absl::Now() + kCloseAssignmentWait);
    while (AwaitsAssignment() && absl::Now() < first) {
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 50)) {
        rd_kafka_message_destroy(m);
      }
    }
  }
  if (cooperative_ && rd_kafka_version() < 0x020400ff) {
    // librdkafka before 2.4 can block for good inside a closing cooperative
    // consumer's rebalance callback when an assignment comes in during the
    // close (librdkafka issue 4527: the incremental_unassign of the revoke
    // that follows never returns). So the assignment is given back before
    // the close, while the group is not terminating: unsubscribe and serve
    // the rebalance (an assignment still arriving is accepted and then
    // revoked) until nothing is assigned, for a bounded time; the close
    // then has nothing to revoke. In a group in mid-rebalance the
    // revocation can fail to come in time: the close below then does it.
    rd_kafka_unsubscribe(rk_);
    const absl::Time leave =
        std::min(deadline, absl::Now() + kCloseAssignmentWait);
    while (absl::Now() < leave && !LibrdkafkaAssignmentEmpty()) {
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 50)) {
        rd_kafka_message_destroy(m);
      }
    }
  }
  // librdkafka's close (the revoke callback runs in it, on this thread),
  // on a queue this thread serves until it is done or the deadline passes:
  // rd_kafka_consumer_close would block without bound.
  absl::Status status;
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_);
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk_, queue)) {
    status = absl::UnavailableError(absl::StrCat("leaving the consumer group: ",
                                                 rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
  } else {
    // Served as rd_kafka_consumer_close serves its own queue: callbacks
    // (the rebalance callback) run, anything returned (a message, a
    // consumer error) is dropped. The callback-only poll would assert on
    // those.
    while (!rd_kafka_consumer_closed(rk_)) {
      if (absl::Now() >= deadline) {
        close_unfinished_ = true;
        status = absl::DeadlineExceededError(
            absl::StrCat("leaving the consumer group took longer than "
                         "KafkaSourceOptions.close_timeout (",
                         absl::FormatDuration(options_.close_timeout), ")"));
        break;
      }
      if (rd_kafka_message_t* m = rd_kafka_consume_queue(queue, 50)) {
        rd_kafka_message_destroy(m);
      }
    }
  }
  rd_kafka_queue_destroy(queue);
  ReleaseBatch();
  if (!assignment_.empty()) {
    // Whatever the close did not revoke (a failing consumer) is revoked
    // here, so the listener always hears of it.
    const std::vector<TopicPartition> rest(assignment_.begin(),
                                           assignment_.end());
    if (listener_ != nullptr) internal::CallOnRevoked(*listener_, rest);
    absl::MutexLock lock(&stats_mu_);
    stats_.partitions_revoked += static_cast<int64_t>(rest.size());
  }
  assignment_.clear();
  paused_.clear();
  next_offset_.clear();
  closed_ = true;
  return status;
}

}  // namespace weir
