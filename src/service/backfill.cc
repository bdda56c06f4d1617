// Backfills (weir/backfill.h): the range rules, and the bounded sources and
// sink filter a service swaps in to run as one
// (weir/internal/backfill_input.h).

#include "weir/backfill.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "weir/capacity_calibration.h"
#include "weir/internal/backfill_input.h"
#include "weir/kafka/kafka_offsets.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", why));
}

std::string CompactTime(absl::Time t) {
  return absl::FormatTime("%Y%m%dT%H%M%E3SZ", t, absl::UTCTimeZone());
}

// ---- Sources ----------------------------------------------------------------

// Several FileSources as one source, file i being partition i of one topic.
// Poll takes a batch from each partition in turn.
class FilesSource final : public Source {
 public:
  explicit FilesSource(std::vector<std::unique_ptr<FileSource>> files)
      : files_(std::move(files)) {}

  void SetPartitionListener(PartitionListener* listener) override {
    for (auto& f : files_) f->SetPartitionListener(listener);
  }
  absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override {
    for (size_t tried = 0; tried < files_.size(); ++tried) {
      FileSource& f = *files_[next_];
      next_ = (next_ + 1) % files_.size();
      WEIR_ASSIGN_OR_RETURN(absl::Span<const RawRecord> batch,
                            f.Poll(max_records, timeout));
      if (!batch.empty()) return batch;
    }
    return absl::Span<const RawRecord>();
  }
  bool AtEnd() const override {
    return std::all_of(files_.begin(), files_.end(),
                       [](const auto& f) { return f->AtEnd(); });
  }
  absl::Status Pause(absl::Span<const TopicPartition> partitions) override {
    for (const TopicPartition& tp : partitions) {
      WEIR_ASSIGN_OR_RETURN(FileSource * f, File(tp));
      WEIR_RETURN_IF_ERROR(f->Pause({tp}));
    }
    return absl::OkStatus();
  }
  absl::Status Resume(absl::Span<const TopicPartition> partitions) override {
    for (const TopicPartition& tp : partitions) {
      WEIR_ASSIGN_OR_RETURN(FileSource * f, File(tp));
      WEIR_RETURN_IF_ERROR(f->Resume({tp}));
    }
    return absl::OkStatus();
  }
  absl::Status Seek(const TopicPartition& tp, int64_t offset) override {
    WEIR_ASSIGN_OR_RETURN(FileSource * f, File(tp));
    return f->Seek(tp, offset);
  }
  absl::Status CommitOffsets(const PartitionOffsets& offsets) override {
    for (const auto& [tp, offset] : offsets) {
      WEIR_ASSIGN_OR_RETURN(FileSource * f, File(tp));
      WEIR_RETURN_IF_ERROR(f->CommitOffsets({{tp, offset}}));
    }
    return absl::OkStatus();
  }
  std::vector<TopicPartition> Assignment() const override {
    std::vector<TopicPartition> out;
    for (const auto& f : files_) {
      for (TopicPartition& tp : f->Assignment()) out.push_back(std::move(tp));
    }
    return out;
  }
  absl::StatusOr<std::vector<PartitionPosition>> Positions() override {
    std::vector<PartitionPosition> out;
    for (auto& f : files_) {
      WEIR_ASSIGN_OR_RETURN(std::vector<PartitionPosition> p, f->Positions());
      out.insert(out.end(), p.begin(), p.end());
    }
    return out;
  }
  SourceStats stats() const override {
    SourceStats sum;
    for (const auto& f : files_) {
      const SourceStats s = f->stats();
      sum.records += s.records;
      sum.partitions_assigned += s.partitions_assigned;
      sum.partitions_revoked += s.partitions_revoked;
    }
    return sum;
  }
  absl::Status Close() override {
    absl::Status status;
    for (auto& f : files_) status.Update(f->Close());
    return status;
  }

 private:
  absl::StatusOr<FileSource*> File(const TopicPartition& tp) const {
    if (tp.partition < 0 ||
        static_cast<size_t>(tp.partition) >= files_.size() ||
        !(files_[tp.partition]->partition() == tp)) {
      return absl::InvalidArgumentError(
          absl::StrCat(tp.ToString(), " is not assigned"));
    }
    return files_[tp.partition].get();
  }

  const std::vector<std::unique_ptr<FileSource>> files_;
  size_t next_ = 0;
};

// Reads each partition of another source from its range's start to its
// end only, and ends (AtEnd) once all `partitions` partitions were read to
// their ends or the inner source ended. A partition restored from a
// checkpoint resumes where the checkpoint says, never before its start.
//
// Times bound a range by record timestamps, as Kafka's offsets-for-times
// does, for brokers that cannot answer it: from `start`, records stamped
// before `from_time` are skipped up to the first one stamped at or after
// it; the partition ends before its first record stamped at or after
// `to_time`.
class RangedSource final : public ForwardingSource, private PartitionListener {
 public:
  struct Range {
    int64_t start = 0;
    std::optional<int64_t> end;  // unset: the inner source's end
    std::optional<EventTime> from_time;
    std::optional<EventTime> to_time;
  };

  RangedSource(Source* inner, std::map<int32_t, Range> ranges,
               Range default_range, size_t partitions)
      : ForwardingSource(inner),
        ranges_(std::move(ranges)),
        default_range_(default_range),
        partitions_(partitions) {}

  void SetPartitionListener(PartitionListener* l) override {
    listener_ = l;
    ForwardingSource::SetPartitionListener(l == nullptr ? nullptr : this);
  }

  absl::StatusOr<absl::Span<const RawRecord>> Poll(
      size_t max_records, absl::Duration timeout) override {
    batch_.clear();
    if (AtEnd()) return absl::Span<const RawRecord>();
    WEIR_ASSIGN_OR_RETURN(absl::Span<const RawRecord> in,
                          ForwardingSource::Poll(max_records, timeout));
    // Partitions to pause: reading past the end is wasted (a resume after
    // backpressure may fetch more; it is dropped and paused again).
    std::set<TopicPartition> to_pause;
    for (const RawRecord& r : in) {
      const Range range = RangeOf(r.partition);
      if (r.offset < range.start) continue;
      bool done = done_.count(r.partition) > 0;
      if (!done && ((range.end.has_value() && r.offset >= *range.end) ||
                    (range.to_time.has_value() &&
                     r.timestamp.value_or(kMinEventTime) >= *range.to_time))) {
        done_.insert(r.partition);
        done = true;
      }
      if (done) {
        to_pause.insert({std::string(r.topic), r.partition});
        continue;
      }
      if (range.from_time.has_value() && !started_.count(r.partition)) {
        if (r.timestamp.value_or(kMinEventTime) < *range.from_time) continue;
        started_.insert(r.partition);
      }
      batch_.push_back(r);
      if (range.end.has_value() && r.offset + 1 >= *range.end) {
        done_.insert(r.partition);
        to_pause.insert({std::string(r.topic), r.partition});
      }
    }
    // A partition whose position passed its end (a gap in the offsets)
    // is done too.
    WEIR_ASSIGN_OR_RETURN(std::vector<PartitionPosition> positions,
                          ForwardingSource::Positions());
    for (const PartitionPosition& p : positions) {
      const Range range = RangeOf(p.partition.partition);
      if (range.end.has_value() && p.position.has_value() &&
          *p.position >= *range.end &&
          done_.insert(p.partition.partition).second) {
        to_pause.insert(p.partition);
      }
    }
    if (!to_pause.empty()) {
      const std::vector<TopicPartition> pause(to_pause.begin(), to_pause.end());
      WEIR_RETURN_IF_ERROR(ForwardingSource::Pause(pause));
    }
    return absl::Span<const RawRecord>(batch_);
  }

  bool AtEnd() const override {
    return done_.size() >= partitions_ || inner()->AtEnd();
  }

 private:
  Range RangeOf(int32_t partition) const {
    auto it = ranges_.find(partition);
    return it != ranges_.end() ? it->second : default_range_;
  }

  absl::StatusOr<StartOffsets> OnAssigned(
      absl::Span<const TopicPartition> partitions) override {
    WEIR_ASSIGN_OR_RETURN(StartOffsets starts,
                          internal::CallOnAssigned(*listener_, partitions));
    for (const TopicPartition& tp : partitions) {
      const Range range = RangeOf(tp.partition);
      auto it = starts.find(tp);
      const int64_t start =
          std::max(it != starts.end() ? it->second : range.start, range.start);
      starts[tp] = start;
      // Resuming past the start, the first record of the time range was
      // found before.
      if (start > range.start) started_.insert(tp.partition);
      if (range.end.has_value() && start >= *range.end) {
        done_.insert(tp.partition);
      }
    }
    return starts;
  }
  void OnRevoked(absl::Span<const TopicPartition> partitions) override {
    internal::CallOnRevoked(*listener_, partitions);
  }

  const std::map<int32_t, Range> ranges_;
  const Range default_range_;
  const size_t partitions_;
  PartitionListener* listener_ = nullptr;
  // Partitions (of the one topic) read to their ends, and those whose first
  // record stamped at or after from_time was found.
  std::set<int32_t> done_;
  std::set<int32_t> started_;
  std::vector<RawRecord> batch_;
};

class BackfillInputImpl final : public internal::BackfillInput {
 public:
  BackfillInputImpl(std::unique_ptr<Source> inner,
                    std::map<int32_t, RangedSource::Range> ranges,
                    RangedSource::Range default_range, size_t partitions,
                    std::string description)
      : inner_(std::move(inner)),
        ranged_(inner_.get(), std::move(ranges), default_range, partitions),
        description_(std::move(description)) {}

  Source* source() override { return &ranged_; }
  std::string description() const override { return description_; }

 private:
  const std::unique_ptr<Source> inner_;
  RangedSource ranged_;
  const std::string description_;
};

std::string RangeText(const RangedSource::Range& r) {
  std::string out =
      absl::StrCat("[", r.start, ", ",
                   r.end.has_value() ? absl::StrCat(*r.end) : "end", ")");
  if (r.from_time.has_value()) {
    absl::StrAppend(&out, " stamped [",
                    CompactTime(FromEventTime(*r.from_time)), ", ",
                    CompactTime(FromEventTime(*r.to_time)), ")");
  }
  return out;
}

}  // namespace

absl::Status BackfillOptions::Validate() const {
  if (from != "kafka" &&
      !(absl::StartsWith(from, "file:") && from.size() > 5)) {
    return Bad("backfill_from", "kafka or file:PATH[,PATH...]");
  }
  const bool offsets = start_offset.has_value() || end_offset.has_value();
  const bool times = start_time.has_value() || end_time.has_value();
  if (offsets && times) {
    return Bad("backfill_start",
               "--backfill_start and --backfill_end are both offsets or both "
               "times");
  }
  if (start_offset.has_value() && *start_offset < 0) {
    return Bad("backfill_start", "an offset must not be negative");
  }
  if (end_offset.has_value() && *end_offset < 0) {
    return Bad("backfill_end", "an offset must not be negative");
  }
  if (start_offset.has_value() && end_offset.has_value() &&
      *end_offset <= *start_offset) {
    return Bad("backfill_end", "must be after --backfill_start");
  }
  if (times) {
    if (!start_time.has_value()) {
      return Bad("backfill_start", "a time range needs both times");
    }
    if (!end_time.has_value()) {
      return Bad("backfill_end", "a time range needs both times");
    }
    if (*end_time <= *start_time) {
      return Bad("backfill_end", "must be after --backfill_start");
    }
  }
  return absl::OkStatus();
}

std::string BackfillOptions::RangeName() const {
  if (time_range()) {
    return absl::StrCat(CompactTime(*start_time), "-", CompactTime(*end_time));
  }
  if (!start_offset.has_value() && !end_offset.has_value()) return "all";
  return absl::StrCat(
      "offsets-", start_offset.value_or(0), "-",
      end_offset.has_value() ? absl::StrCat(*end_offset) : "end");
}

absl::Duration BackfillWarmup(const KeyedWindowOptions& features) {
  return StateRetention(features) + features.max_out_of_orderness;
}

bool BackfillWritesWindow(const BackfillOptions& options,
                          const Window& window) {
  if (!options.time_range()) return true;
  return window.start >= ToEventTime(*options.start_time) &&
         window.end <= ToEventTime(*options.end_time);
}

absl::StatusOr<std::vector<std::string>> BackfillFiles(
    const std::string& from) {
  if (!absl::StartsWith(from, "file:")) {
    return Bad("backfill_from", "not file:PATH[,PATH...]");
  }
  std::vector<std::string> out;
  for (absl::string_view part :
       absl::StrSplit(from.substr(5), ',', absl::SkipEmpty())) {
    const std::filesystem::path path{std::string(part)};
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return absl::NotFoundError(
          absl::StrCat("--backfill_from: no such file ", path.string()));
    }
    if (!std::filesystem::is_directory(path, ec)) {
      out.push_back(path.string());
      continue;
    }
    std::vector<std::string> in_dir;
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".jsonl") {
        in_dir.push_back(e.path().string());
      }
    }
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("--backfill_from: ", path.string(), ": ", ec.message()));
    }
    std::sort(in_dir.begin(), in_dir.end());
    out.insert(out.end(), in_dir.begin(), in_dir.end());
  }
  if (out.empty()) {
    return Bad("backfill_from", absl::StrCat("no .jsonl file in ", from));
  }
  return out;
}

absl::Status ParseBackfillBound(const std::string& text, bool is_start,
                                BackfillOptions& options) {
  if (text.empty()) return absl::OkStatus();
  const char* flag = is_start ? "backfill_start" : "backfill_end";
  int64_t offset = 0;
  if (absl::SimpleAtoi(text, &offset)) {
    if (offset < 0) return Bad(flag, "an offset must not be negative");
    (is_start ? options.start_offset : options.end_offset) = offset;
    return absl::OkStatus();
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return Bad(flag, absl::StrCat("an offset or an RFC 3339 time (e.g. "
                                  "2026-01-01T00:01:00Z), got '",
                                  text, "'"));
  }
  if (absl::FromUnixMillis(absl::ToUnixMillis(t)) != t) {
    return Bad(flag, "times are whole milliseconds");
  }
  (is_start ? options.start_time : options.end_time) = t;
  return absl::OkStatus();
}

absl::Status RunBackfill(ServiceOptions options, BackfillOptions backfill,
                         KeyedWindowOptions features, Decoder* decoder) {
  options.backfill = std::move(backfill);
  return RunService(std::move(options), std::move(features), decoder);
}

namespace internal {

absl::StatusOr<std::unique_ptr<BackfillInput>> BackfillInput::Open(
    const ServiceOptions& options, const KeyedWindowOptions& features,
    const std::function<absl::StatusOr<std::unique_ptr<Source>>()>&
        make_kafka) {
  const BackfillOptions& b = *options.backfill;
  WEIR_RETURN_IF_ERROR(b.Validate());
  RangedSource::Range default_range;
  default_range.start = b.start_offset.value_or(0);
  default_range.end = b.end_offset;
  if (!b.kafka()) {
    // Files: an offset range is line numbers; a time range reads them
    // whole (they have no timestamps to seek by).
    if (b.time_range()) default_range = {};
    WEIR_ASSIGN_OR_RETURN(std::vector<std::string> paths,
                          BackfillFiles(b.from));
    std::vector<std::unique_ptr<FileSource>> files;
    for (size_t i = 0; i < paths.size(); ++i) {
      FileSourceOptions fo;
      fo.path = paths[i];
      fo.topic = options.topic;
      fo.partition = static_cast<int32_t>(i);
      fo.env = options.env;
      WEIR_ASSIGN_OR_RETURN(std::unique_ptr<FileSource> f,
                            FileSource::Create(std::move(fo)));
      files.push_back(std::move(f));
    }
    const std::string description =
        absl::StrCat(paths.size(), " file(s), lines ", RangeText(default_range),
                     " of each: ", absl::StrJoin(paths, ", "));
    return std::unique_ptr<BackfillInput>(
        new BackfillInputImpl(std::make_unique<FilesSource>(std::move(files)),
                              {}, default_range, paths.size(), description));
  }

  // Kafka: each partition's range from the cluster.
  KafkaOffsetsQuery query;
  query.bootstrap_servers = options.bootstrap;
  query.topic = options.topic;
  for (const std::string& p : options.kafka_properties) {
    const size_t eq = p.find('=');
    const std::string key = p.substr(0, eq);
    if (key == "auto.offset.reset" || key == "client.id" ||
        key == "partition.assignment.strategy" || key == "group.id") {
      continue;
    }
    query.properties[key] = p.substr(eq + 1);
  }
  if (b.time_range()) {
    query.times = {ToEventTime(*b.start_time - BackfillWarmup(features)),
                   ToEventTime(*b.end_time + features.allowed_lateness +
                               features.max_out_of_orderness)};
  }
  WEIR_ASSIGN_OR_RETURN(std::vector<KafkaPartitionOffsets> parts,
                        QueryKafkaOffsets(query));
  std::map<int32_t, RangedSource::Range> ranges;
  std::vector<std::string> described;
  for (const KafkaPartitionOffsets& p : parts) {
    RangedSource::Range r;
    if (b.time_range()) {
      // The broker's answers are hints (weir-broker, librdkafka's mock
      // cluster, answers none): the record timestamps decide.
      r.start = p.at_times[0] < p.high ? p.at_times[0] : p.low;
      r.end = p.high;
      r.from_time = query.times[0];
      r.to_time = query.times[1];
    } else {
      r.start = std::clamp(b.start_offset.value_or(p.low), p.low, p.high);
      r.end = std::clamp(b.end_offset.value_or(p.high), r.start, p.high);
    }
    ranges[p.partition] = r;
    described.push_back(
        absl::StrCat(options.topic, "/", p.partition, " ", RangeText(r)));
  }
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<Source> kafka, make_kafka());
  const size_t partitions = ranges.size();
  // A partition the cluster did not list reads nothing.
  RangedSource::Range nothing;
  nothing.end = 0;
  return std::unique_ptr<BackfillInput>(
      new BackfillInputImpl(std::move(kafka), std::move(ranges), nothing,
                            partitions, absl::StrJoin(described, ", ")));
}

void ResolveBackfillDefaults(ServiceOptions& options) {
  const BackfillOptions& b = *options.backfill;
  options.group = absl::StrCat(options.group, "-backfill");
  std::string uri = options.checkpoint_uri;
  while (absl::EndsWith(uri, "/")) uri.pop_back();
  options.checkpoint_uri = absl::StrCat(
      uri, "/backfill-", b.kafka() ? "kafka" : "files", "-", b.RangeName());
}

}  // namespace internal
}  // namespace weir
