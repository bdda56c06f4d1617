// Implementation of weir/source.h: the listener helpers, VectorSource and
// FileSource.

#include "weir/source.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "weir/status_macros.h"

namespace weir {

std::string TopicPartition::ToString() const {
  return absl::StrCat(topic, "/", partition);
}

std::optional<int64_t> PartitionPosition::lag() const {
  if (!position.has_value() || !log_end_offset.has_value()) {
    return std::nullopt;
  }
  return std::max<int64_t>(0, *log_end_offset - *position);
}

namespace internal {

absl::StatusOr<StartOffsets> CallOnAssigned(
    PartitionListener& listener, absl::Span<const TopicPartition> partitions) {
  absl::StatusOr<StartOffsets> start;
#if defined(__cpp_exceptions)
  try {
    start = listener.OnAssigned(partitions);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("PartitionListener::OnAssigned threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("PartitionListener::OnAssigned threw");
  }
#else
  start = listener.OnAssigned(partitions);
#endif
  if (!start.ok()) return start.status();
  const std::set<TopicPartition> offered(partitions.begin(), partitions.end());
  for (const auto& [tp, offset] : *start) {
    if (offered.count(tp) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("PartitionListener::OnAssigned returned an offset for ",
                       tp.ToString(), ", which is not being assigned"));
    }
    if (offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("PartitionListener::OnAssigned returned offset ", offset,
                       " for ", tp.ToString()));
    }
  }
  return start;
}

void CallOnRevoked(PartitionListener& listener,
                   absl::Span<const TopicPartition> partitions) {
#if defined(__cpp_exceptions)
  try {
    listener.OnRevoked(partitions);
  } catch (...) {
    // The contract forbids it; the revocation happens regardless.
  }
#else
  listener.OnRevoked(partitions);
#endif
}

}  // namespace internal

namespace {

absl::Status ClosedError() {
  return absl::FailedPreconditionError("the source is closed");
}

}  // namespace

// ---- VectorSource -----------------------------------------------------------

absl::Status VectorSourceOptions::Validate() const {
  if (topic.empty()) {
    return absl::InvalidArgumentError("VectorSourceOptions.topic is empty");
  }
  if (partitions < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VectorSourceOptions.partitions must be >= 1, is ", partitions));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<VectorSource>> VectorSource::Create(
    VectorSourceOptions options, std::vector<VectorSourceRecord> records) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<VectorSource> source(new VectorSource(std::move(options)));
  for (VectorSourceRecord& record : records) {
    WEIR_RETURN_IF_ERROR(source->Append(std::move(record)));
  }
  return source;
}

VectorSource::VectorSource(VectorSourceOptions options)
    : options_(std::move(options)),
      partitions_(static_cast<size_t>(options_.partitions)) {
  std::vector<int32_t> all(static_cast<size_t>(options_.partitions));
  for (int32_t p = 0; p < options_.partitions; ++p) {
    all[static_cast<size_t>(p)] = p;
  }
  pending_assignment_ = std::move(all);
}

VectorSource::~VectorSource() { Close().IgnoreError(); }

absl::Status VectorSource::Append(VectorSourceRecord record) {
  if (record.partition < 0 || record.partition >= options_.partitions) {
    return absl::InvalidArgumentError(
        absl::StrCat("record partition ", record.partition, " is not in [0, ",
                     options_.partitions, ")"));
  }
  partitions_[static_cast<size_t>(record.partition)].records.push_back(
      std::move(record));
  return absl::OkStatus();
}

absl::Status VectorSource::SetAssignment(std::vector<int32_t> partitions) {
  for (int32_t p : partitions) {
    if (p < 0 || p >= options_.partitions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "partition ", p, " is not in [0, ", options_.partitions, ")"));
    }
  }
  pending_assignment_ = std::move(partitions);
  return absl::OkStatus();
}

int64_t VectorSource::size(int32_t partition) const {
  if (partition < 0 || partition >= options_.partitions) return 0;
  return static_cast<int64_t>(
      partitions_[static_cast<size_t>(partition)].records.size());
}

void VectorSource::SetPartitionListener(PartitionListener* listener) {
  listener_ = listener;
}

absl::Status VectorSource::ApplyAssignment() {
  const std::set<int32_t> wanted(pending_assignment_->begin(),
                                 pending_assignment_->end());
  pending_assignment_.reset();
  std::vector<TopicPartition> revoked;
  std::vector<TopicPartition> added;
  for (int32_t p = 0; p < options_.partitions; ++p) {
    Partition& partition = partitions_[static_cast<size_t>(p)];
    const bool want = wanted.count(p) > 0;
    if (partition.assigned && !want) {
      revoked.push_back({options_.topic, p});
      partition.assigned = false;
      partition.paused = false;
    } else if (!partition.assigned && want) {
      added.push_back({options_.topic, p});
    }
  }
  if (!revoked.empty()) {
    if (listener_ != nullptr) internal::CallOnRevoked(*listener_, revoked);
    absl::MutexLock lock(&stats_mu_);
    stats_.partitions_revoked += static_cast<int64_t>(revoked.size());
  }
  if (added.empty()) return absl::OkStatus();
  StartOffsets start;
  if (listener_ != nullptr) {
    absl::StatusOr<StartOffsets> answer =
        internal::CallOnAssigned(*listener_, added);
    if (!answer.ok()) return answer.status();
    start = *std::move(answer);
  }
  for (const TopicPartition& tp : added) {
    Partition& partition = partitions_[static_cast<size_t>(tp.partition)];
    partition.assigned = true;
    partition.paused = false;
    if (auto it = start.find(tp); it != start.end()) {
      partition.next = it->second;
    } else if (auto c = committed_.find(tp); c != committed_.end()) {
      partition.next = c->second;
    } else {
      partition.next = 0;
    }
  }
  absl::MutexLock lock(&stats_mu_);
  stats_.partitions_assigned += static_cast<int64_t>(added.size());
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const RawRecord>> VectorSource::Poll(
    size_t max_records, absl::Duration timeout) {
  batch_.clear();
  if (closed_) return ClosedError();
  if (!listener_error_.ok()) return listener_error_;
  if (pending_assignment_.has_value()) {
    listener_error_ = ApplyAssignment();
    if (!listener_error_.ok()) return listener_error_;
  }
  const int32_t n = options_.partitions;
  bool progress = true;
  while (batch_.size() < max_records && progress) {
    progress = false;
    for (int32_t i = 0; i < n && batch_.size() < max_records; ++i) {
      const int32_t p = (next_partition_ + i) % n;
      Partition& partition = partitions_[static_cast<size_t>(p)];
      if (!partition.assigned || partition.paused ||
          partition.next >= static_cast<int64_t>(partition.records.size())) {
        continue;
      }
      const VectorSourceRecord& r =
          partition.records[static_cast<size_t>(partition.next)];
      RawRecord raw;
      raw.topic = options_.topic;
      raw.partition = p;
      raw.offset = partition.next;
      raw.timestamp = r.timestamp;
      raw.key = r.key;
      raw.value = r.value;
      batch_.push_back(raw);
      ++partition.next;
      progress = true;
    }
  }
  next_partition_ = (next_partition_ + 1) % n;
  absl::MutexLock lock(&stats_mu_);
  stats_.records += static_cast<int64_t>(batch_.size());
  return absl::Span<const RawRecord>(batch_);
}

bool VectorSource::AtEnd() const {
  if (closed_ || pending_assignment_.has_value()) return false;
  for (const Partition& partition : partitions_) {
    if (partition.assigned &&
        partition.next < static_cast<int64_t>(partition.records.size())) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<int32_t> VectorSource::AssignedPartition(
    const TopicPartition& tp) const {
  if (closed_) return ClosedError();
  if (tp.topic != options_.topic || tp.partition < 0 ||
      tp.partition >= options_.partitions ||
      !partitions_[static_cast<size_t>(tp.partition)].assigned) {
    return absl::InvalidArgumentError(
        absl::StrCat(tp.ToString(), " is not assigned"));
  }
  return tp.partition;
}

absl::Status VectorSource::Pause(absl::Span<const TopicPartition> partitions) {
  for (const TopicPartition& tp : partitions) {
    WEIR_RETURN_IF_ERROR(AssignedPartition(tp).status());
  }
  for (const TopicPartition& tp : partitions) {
    partitions_[static_cast<size_t>(tp.partition)].paused = true;
  }
  return absl::OkStatus();
}

absl::Status VectorSource::Resume(absl::Span<const TopicPartition> partitions) {
  for (const TopicPartition& tp : partitions) {
    WEIR_RETURN_IF_ERROR(AssignedPartition(tp).status());
  }
  for (const TopicPartition& tp : partitions) {
    partitions_[static_cast<size_t>(tp.partition)].paused = false;
  }
  return absl::OkStatus();
}

absl::Status VectorSource::Seek(const TopicPartition& partition,
                                int64_t offset) {
  WEIR_ASSIGN_OR_RETURN(int32_t p, AssignedPartition(partition));
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot seek ", partition.ToString(), " to ", offset));
  }
  partitions_[static_cast<size_t>(p)].next = offset;
  return absl::OkStatus();
}

absl::Status VectorSource::CommitOffsets(const PartitionOffsets& offsets) {
  if (closed_) return ClosedError();
  for (const auto& [tp, offset] : offsets) {
    if (tp.topic != options_.topic || tp.partition < 0 ||
        tp.partition >= options_.partitions || offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot commit ", tp.ToString(), " at ", offset));
    }
  }
  for (const auto& [tp, offset] : offsets) committed_[tp] = offset;
  return absl::OkStatus();
}

std::vector<TopicPartition> VectorSource::Assignment() const {
  std::vector<TopicPartition> out;
  if (closed_) return out;
  for (int32_t p = 0; p < options_.partitions; ++p) {
    if (partitions_[static_cast<size_t>(p)].assigned) {
      out.push_back({options_.topic, p});
    }
  }
  return out;
}

absl::StatusOr<std::vector<PartitionPosition>> VectorSource::Positions() {
  if (closed_) return ClosedError();
  std::vector<PartitionPosition> out;
  for (int32_t p = 0; p < options_.partitions; ++p) {
    const Partition& partition = partitions_[static_cast<size_t>(p)];
    if (!partition.assigned) continue;
    PartitionPosition pos;
    pos.partition = {options_.topic, p};
    pos.position = partition.next;
    pos.log_end_offset = static_cast<int64_t>(partition.records.size());
    pos.paused = partition.paused;
    out.push_back(std::move(pos));
  }
  return out;
}

SourceStats VectorSource::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

absl::Status VectorSource::Close() {
  if (closed_) return absl::OkStatus();
  batch_.clear();
  std::vector<TopicPartition> revoked = Assignment();
  closed_ = true;
  for (Partition& partition : partitions_) {
    partition.assigned = false;
    partition.paused = false;
  }
  if (!revoked.empty()) {
    if (listener_ != nullptr) internal::CallOnRevoked(*listener_, revoked);
    absl::MutexLock lock(&stats_mu_);
    stats_.partitions_revoked += static_cast<int64_t>(revoked.size());
  }
  return absl::OkStatus();
}

// ---- FileSource -------------------------------------------------------------

absl::Status FileSourceOptions::Validate() const {
  if (path.empty()) {
    return absl::InvalidArgumentError("FileSourceOptions.path is empty");
  }
  if (topic.has_value() && topic->empty()) {
    return absl::InvalidArgumentError(
        "FileSourceOptions.topic is set but empty");
  }
  if (env == nullptr) {
    return absl::InvalidArgumentError("FileSourceOptions.env is null");
  }
  if (partition < 0) {
    return absl::InvalidArgumentError(
        "FileSourceOptions.partition must be >= 0");
  }
  if (max_line_bytes == 0) {
    return absl::InvalidArgumentError(
        "FileSourceOptions.max_line_bytes must be > 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileSource>> FileSource::Create(
    FileSourceOptions options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  WEIR_ASSIGN_OR_RETURN(const FileStat st, options.env->Stat(options.path));
  if (st.type == FileType::kDirectory) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.path, " is not a readable file"));
  }
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file,
                        options.env->NewReadableFile(options.path));
  TopicPartition tp{options.topic.value_or(options.path), options.partition};
  return std::unique_ptr<FileSource>(
      new FileSource(std::move(options), std::move(tp), std::move(file)));
}

FileSource::FileSource(FileSourceOptions options, TopicPartition tp,
                       std::unique_ptr<ReadableFile> file)
    : options_(std::move(options)),
      tp_(std::move(tp)),
      file_(std::move(file)) {}

FileSource::~FileSource() { Close().IgnoreError(); }

void FileSource::SetPartitionListener(PartitionListener* listener) {
  listener_ = listener;
}

absl::Status FileSource::Assign() {
  std::optional<int64_t> start;
  if (listener_ != nullptr) {
    const TopicPartition offered[] = {tp_};
    WEIR_ASSIGN_OR_RETURN(StartOffsets answer,
                          internal::CallOnAssigned(*listener_, offered));
    if (auto it = answer.find(tp_); it != answer.end()) start = it->second;
  }
  if (!start.has_value()) {
    auto c = committed_.find(tp_);
    start = c != committed_.end() ? c->second : 0;
  }
  assigned_ = true;
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.partitions_assigned;
  }
  return SeekTo(*start);
}

absl::StatusOr<bool> FileSource::ReadLine() {
  constexpr size_t kChunk = size_t{1} << 16;
  size_t newline;
  while ((newline = buf_.find('\n', buf_pos_)) == std::string::npos) {
    if (buf_.size() - buf_pos_ > options_.max_line_bytes + 1) break;
    // Drop the lines already returned, then read more.
    buf_.erase(0, buf_pos_);
    buf_pos_ = 0;
    const size_t old_size = buf_.size();
    buf_.resize(old_size + kChunk);
    absl::StatusOr<size_t> n =
        file_->ReadAt(file_pos_, buf_.data() + old_size, kChunk);
    buf_.resize(old_size + (n.ok() ? *n : 0));
    if (!n.ok()) return absl::DataLossError(n.status().message());
    if (*n == 0) break;
    file_pos_ += *n;
  }
  if (newline == std::string::npos && buf_pos_ == buf_.size()) {
    eof_ = true;
    line_count_ = next_line_;
    return false;
  }
  // A last line without a line break is a line too.
  const size_t end = newline == std::string::npos ? buf_.size() : newline;
  size_t len = end - buf_pos_;
  if (len > 0 && buf_[buf_pos_ + len - 1] == '\r') --len;
  if (len > options_.max_line_bytes) {
    return absl::DataLossError(
        absl::StrCat(options_.path, " line ", next_line_, " is ", len,
                     " bytes, more than max_line_bytes"));
  }
  line_ = std::string_view(buf_).substr(buf_pos_, len);
  buf_pos_ = newline == std::string::npos ? buf_.size() : newline + 1;
  ++next_line_;
  return true;
}

absl::Status FileSource::SeekTo(int64_t offset) {
  if (offset < next_line_) {
    buf_.clear();
    buf_pos_ = 0;
    file_pos_ = 0;
    next_line_ = 0;
    eof_ = false;
  }
  while (next_line_ < offset && !eof_) {
    WEIR_ASSIGN_OR_RETURN(bool read, ReadLine());
    (void)read;
  }
  if (eof_ && offset > next_line_) {
    // Past the end: nothing more will be returned.
    next_line_ = offset;
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const RawRecord>> FileSource::Poll(
    size_t max_records, absl::Duration timeout) {
  batch_.clear();
  arena_.clear();
  if (closed_) return ClosedError();
  if (!listener_error_.ok()) return listener_error_;
  if (!assigned_) {
    listener_error_ = Assign();
    if (!listener_error_.ok()) return listener_error_;
  }
  if (paused_) return absl::Span<const RawRecord>();
  // Lines are gathered into one arena first and viewed afterwards, as the
  // arena may move while it grows.
  struct Line {
    int64_t number;
    size_t begin;
    size_t size;
  };
  std::vector<Line> lines;
  while (lines.size() < max_records && !eof_) {
    const int64_t number = next_line_;
    WEIR_ASSIGN_OR_RETURN(bool read, ReadLine());
    if (!read) break;
    const std::string_view line = line_;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    lines.push_back({number, arena_.size(), line.size()});
    arena_.append(line);
  }
  const std::string_view arena(arena_);
  batch_.reserve(lines.size());
  for (const Line& line : lines) {
    RawRecord raw;
    raw.topic = tp_.topic;
    raw.partition = tp_.partition;
    raw.offset = line.number;
    raw.value = arena.substr(line.begin, line.size);
    batch_.push_back(raw);
  }
  absl::MutexLock lock(&stats_mu_);
  stats_.records += static_cast<int64_t>(batch_.size());
  return absl::Span<const RawRecord>(batch_);
}

bool FileSource::AtEnd() const { return !closed_ && assigned_ && eof_; }

absl::Status FileSource::CheckPartition(const TopicPartition& tp) const {
  if (closed_) return ClosedError();
  if (!(tp == tp_) || !assigned_) {
    return absl::InvalidArgumentError(
        absl::StrCat(tp.ToString(), " is not assigned"));
  }
  return absl::OkStatus();
}

absl::Status FileSource::Pause(absl::Span<const TopicPartition> partitions) {
  for (const TopicPartition& tp : partitions) {
    WEIR_RETURN_IF_ERROR(CheckPartition(tp));
  }
  if (!partitions.empty()) paused_ = true;
  return absl::OkStatus();
}

absl::Status FileSource::Resume(absl::Span<const TopicPartition> partitions) {
  for (const TopicPartition& tp : partitions) {
    WEIR_RETURN_IF_ERROR(CheckPartition(tp));
  }
  if (!partitions.empty()) paused_ = false;
  return absl::OkStatus();
}

absl::Status FileSource::Seek(const TopicPartition& partition, int64_t offset) {
  WEIR_RETURN_IF_ERROR(CheckPartition(partition));
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot seek ", partition.ToString(), " to ", offset));
  }
  return SeekTo(offset);
}

absl::Status FileSource::CommitOffsets(const PartitionOffsets& offsets) {
  if (closed_) return ClosedError();
  for (const auto& [tp, offset] : offsets) {
    if (!(tp == tp_) || offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot commit ", tp.ToString(), " at ", offset));
    }
  }
  for (const auto& [tp, offset] : offsets) committed_[tp] = offset;
  return absl::OkStatus();
}

std::vector<TopicPartition> FileSource::Assignment() const {
  if (closed_ || !assigned_) return {};
  return {tp_};
}

absl::StatusOr<std::vector<PartitionPosition>> FileSource::Positions() {
  if (closed_) return ClosedError();
  if (!assigned_) return std::vector<PartitionPosition>();
  PartitionPosition pos;
  pos.partition = tp_;
  pos.position = next_line_;
  pos.log_end_offset = line_count_;
  pos.paused = paused_;
  return std::vector<PartitionPosition>{pos};
}

SourceStats FileSource::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

absl::Status FileSource::Close() {
  if (closed_) return absl::OkStatus();
  batch_.clear();
  arena_.clear();
  closed_ = true;
  const bool was_assigned = assigned_;
  assigned_ = false;
  file_.reset();
  if (was_assigned) {
    const TopicPartition revoked[] = {tp_};
    if (listener_ != nullptr) internal::CallOnRevoked(*listener_, revoked);
    absl::MutexLock lock(&stats_mu_);
    ++stats_.partitions_revoked;
  }
  return absl::OkStatus();
}

}  // namespace weir
