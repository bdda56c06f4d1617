#include "weir/state.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weir/internal/coding.h"
#include "weir/internal/crc32c.h"
#include "weir/internal/state_format.h"
#include "weir/internal/window_state.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

using Map = std::map<std::string, std::string, std::less<>>;

// The memory checkpoint file, "state.mem", all integers little-endian:
//
//   magic      "WEIRMEM" followed by the file-format version byte (1)
//   3 times, for kWindows, kTimers, kMeta in that order:
//     count    u64, the number of entries
//     count times: u32 key size, key, u32 value size, stored value (with its
//                  state_format header)
//   crc        u32, CRC-32C of every byte before it
constexpr std::string_view kMemFileName = "state.mem";
constexpr std::string_view kMemMagic = "WEIRMEM";
constexpr uint8_t kMemFileVersion = 1;

int64_t NowMs(Clock* clock) { return ToEventTime(clock->Now()); }

std::optional<int64_t> TtlMs(const std::optional<absl::Duration>& ttl) {
  if (!ttl.has_value()) return std::nullopt;
  return ToMillis(*ttl);
}

bool ValidColumn(Column c) { return static_cast<int>(c) < kNumColumns; }

using internal::PutFixed32;
using internal::PutFixed64;

bool GetBytes(std::string_view* in, std::string_view* out) {
  uint32_t size;
  if (!internal::GetFixed32(in, &size) || in->size() < size) return false;
  *out = in->substr(0, size);
  in->remove_prefix(size);
  return true;
}

// Iterates [begin, end) of one column of a MemoryStateBackend. It copies the
// current entry, so a Write() during the scan never leaves it dangling; when
// the backend changed since the last step it re-seeks past its current key.
class MemoryStateIterator final : public StateIterator {
 public:
  MemoryStateIterator(const Map* map, const uint64_t* mutations,
                      std::string_view begin, std::string_view end,
                      std::optional<int64_t> ttl_ms, int64_t now_ms)
      : map_(map),
        mutations_(mutations),
        seen_mutations_(*mutations),
        end_(end),
        ttl_ms_(ttl_ms),
        now_ms_(now_ms) {
    it_ = map_->lower_bound(begin);
    Settle();
  }

  bool Valid() const override { return valid_; }

  void Next() override {
    if (!valid_) return;
    if (*mutations_ != seen_mutations_) {
      seen_mutations_ = *mutations_;
      it_ = map_->upper_bound(key_);
    } else {
      ++it_;
    }
    Settle();
  }

  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  absl::Status status() const override { return status_; }

 private:
  // Moves forward to the first live entry in range, or stops.
  void Settle() {
    valid_ = false;
    for (; it_ != map_->end(); ++it_) {
      if (!end_.empty() && it_->first >= end_) return;
      int64_t write_ms;
      std::string_view payload;
      status_ = internal::DecodeStateValue(it_->second, &write_ms, &payload);
      if (!status_.ok()) return;
      if (internal::StateExpired(write_ms, ttl_ms_, now_ms_)) continue;
      key_ = it_->first;
      value_.assign(payload);
      valid_ = true;
      return;
    }
  }

  const Map* map_;
  const uint64_t* mutations_;
  uint64_t seen_mutations_;
  const std::string end_;
  const std::optional<int64_t> ttl_ms_;  // unset: nothing expires
  const int64_t now_ms_;
  Map::const_iterator it_;
  bool valid_ = false;
  std::string key_;
  std::string value_;
  absl::Status status_;
};

}  // namespace

const char* ColumnName(Column c) {
  switch (c) {
    case Column::kWindows:
      return "windows";
    case Column::kTimers:
      return "timers";
    case Column::kMeta:
      return "meta";
  }
  return "unknown";
}

// ---- StateWriteBatch -------------------------------------------------------

StateWriteBatch& StateWriteBatch::operator=(const StateWriteBatch& other) {
  if (this == &other) return *this;
  Clear();
  for (const Op& op : other.ops_) Add(op.column, op.kind, op.key, op.value);
  return *this;
}

namespace {
constexpr size_t kBatchChunkBytes = 64 << 10;
}  // namespace

void StateWriteBatch::Clear() {
  ops_.clear();
  // The chunks stay for the next batch, up to a megabyte of the usual size
  // (an operator's batch of evictions fills a few hundred kilobytes): one
  // large batch or value must not pin its memory for good.
  constexpr size_t kKeptChunks = 16;
  std::erase_if(chunks_,
                [](const Chunk& c) { return c.size > kBatchChunkBytes; });
  if (chunks_.size() > kKeptChunks) chunks_.resize(kKeptChunks);
  for (Chunk& c : chunks_) c.used = 0;
  current_ = 0;
}

std::string_view StateWriteBatch::Keep(std::string_view s) {
  if (s.empty()) return {};
  while (current_ < chunks_.size() &&
         chunks_[current_].size - chunks_[current_].used < s.size()) {
    ++current_;
  }
  if (current_ == chunks_.size()) {
    const size_t size = std::max(kBatchChunkBytes, s.size());
    chunks_.push_back(Chunk{std::make_unique<char[]>(size), size, 0});
  }
  Chunk& c = chunks_[current_];
  char* p = c.data.get() + c.used;
  std::memcpy(p, s.data(), s.size());
  c.used += s.size();
  return std::string_view(p, s.size());
}

void StateWriteBatch::Add(Column column, Kind kind, std::string_view key,
                          std::string_view value) {
  const std::string_view k = Keep(key);
  ops_.push_back(Op{column, kind, k, Keep(value)});
}

// ---- MemoryStateBackend -----------------------------------------------------

namespace {

// The value of `key` in `map`, inserted empty if absent (the key is copied
// only then).
std::string& ValueOf(Map& map, std::string_view key) {
  auto it = map.lower_bound(key);
  if (it == map.end() || it->first != key) {
    it = map.emplace_hint(it, std::string(key), std::string());
  }
  return it->second;
}

}  // namespace

absl::Status MemoryStateBackendOptions::Validate() const {
  if (ttl.has_value() && *ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("MemoryStateBackendOptions.ttl must be positive when "
                     "set, got ",
                     absl::FormatDuration(*ttl)));
  }
  if (clock == nullptr) {
    return absl::InvalidArgumentError(
        "MemoryStateBackendOptions.clock must not be null");
  }
  if (env == nullptr) {
    return absl::InvalidArgumentError(
        "MemoryStateBackendOptions.env must not be null");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MemoryStateBackend>> MemoryStateBackend::Create(
    const MemoryStateBackendOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<MemoryStateBackend>(new MemoryStateBackend(options));
}

absl::StatusOr<std::unique_ptr<MemoryStateBackend>> MemoryStateBackend::Open(
    const MemoryStateBackendOptions& options, const std::string& dir) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<MemoryStateBackend> backend,
                        Create(options));
  const std::string path = absl::StrCat(dir, "/", std::string(kMemFileName));
  WEIR_ASSIGN_OR_RETURN(const std::string data,
                        ReadFileToString(options.env, path));

  auto corrupt = [&path](std::string_view why) {
    return absl::DataLossError(absl::StrCat("memory state checkpoint ", path,
                                            " is corrupt: ", std::string(why)));
  };
  if (data.size() < kMemMagic.size() + 1 + 4) return corrupt("too short");
  const std::string_view body(data.data(), data.size() - 4);
  const uint32_t stored_crc =
      internal::DecodeFixed32(data.data() + data.size() - 4);
  if (internal::Crc32c(body) != stored_crc) {
    return corrupt("CRC-32C mismatch");
  }
  std::string_view in = body;
  if (in.substr(0, kMemMagic.size()) != kMemMagic) {
    return corrupt("not a memory state checkpoint (bad magic)");
  }
  in.remove_prefix(kMemMagic.size());
  const uint8_t version = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  if (version != kMemFileVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("memory state checkpoint ", path, " has file version ",
                     version, ", this weir reads only ", kMemFileVersion));
  }
  for (int c = 0; c < kNumColumns; ++c) {
    uint64_t count;
    if (!internal::GetFixed64(&in, &count)) {
      return corrupt("truncated entry count");
    }
    Map& map = backend->columns_[c];
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view key, value;
      if (!GetBytes(&in, &key) || !GetBytes(&in, &value)) {
        return corrupt("truncated entry");
      }
      // The writer emits keys in order, so appending at the end is O(1).
      map.emplace_hint(map.end(), std::string(key), std::string(value));
    }
  }
  if (!in.empty()) return corrupt("trailing bytes");
  return backend;
}

absl::Status MemoryStateBackend::Get(Column column, std::string_view key,
                                     std::string* value) {
  if (!ValidColumn(column)) {
    return absl::InvalidArgumentError("Get: unknown column");
  }
  const Map& map = columns_[static_cast<int>(column)];
  auto it = map.find(key);
  if (it == map.end()) return absl::NotFoundError("state key not found");
  // Only "windows" entries expire.
  const bool expires = column == Column::kWindows;
  return internal::DecodeLiveStateValue(
      it->second, expires ? TtlMs(options_.ttl) : std::nullopt,
      expires ? NowMs(options_.clock) : 0, value);
}

absl::Status MemoryStateBackend::Write(const StateWriteBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  // Check first so that a bad op leaves the store untouched.
  bool has_merge = false;
  for (const StateWriteBatch::Op& op : batch.ops()) {
    WEIR_RETURN_IF_ERROR(internal::CheckStateOp(op));
    has_merge = has_merge || op.kind == StateWriteBatch::Kind::kMerge;
  }
  const int64_t now_ms = NowMs(options_.clock);
  std::vector<std::string> merged;
  if (has_merge) WEIR_RETURN_IF_ERROR(MergeBatch(batch, now_ms, &merged));
  for (size_t i = 0; i < batch.ops().size(); ++i) {
    const StateWriteBatch::Op& op = batch.ops()[i];
    Map& map = columns_[static_cast<int>(op.column)];
    switch (op.kind) {
      case StateWriteBatch::Kind::kDelete: {
        auto it = map.find(op.key);
        if (it != map.end()) map.erase(it);
        break;
      }
      case StateWriteBatch::Kind::kDeleteRange:
        map.erase(map.lower_bound(op.key), map.lower_bound(op.value));
        break;
      case StateWriteBatch::Kind::kMerge:
        ValueOf(map, op.key) = std::move(merged[i]);
        break;
      case StateWriteBatch::Kind::kPut:
        internal::EncodeStateValue(now_ms, op.value, &ValueOf(map, op.key));
        break;
    }
  }
  ++mutations_;
  return absl::OkStatus();
}

absl::Status MemoryStateBackend::MergeBatch(
    const StateWriteBatch& batch, int64_t now_ms,
    std::vector<std::string>* merged) const {
  const std::vector<StateWriteBatch::Op>& ops = batch.ops();
  merged->resize(ops.size());
  // The stored value of each kWindows key an earlier op of the batch wrote
  // (nullopt: deleted), so that a merge sees the ops before it.
  absl::flat_hash_map<std::string_view, std::optional<std::string_view>>
      pending;
  // The kWindows ranges an earlier op deleted: a stored value in one of
  // them is gone for the merges after it.
  std::vector<std::pair<std::string_view, std::string_view>> deleted;
  const Map& windows = columns_[static_cast<int>(Column::kWindows)];
  std::string operand;
  for (size_t i = 0; i < ops.size(); ++i) {
    const StateWriteBatch::Op& op = ops[i];
    if (op.column != Column::kWindows) continue;
    if (op.kind == StateWriteBatch::Kind::kDelete) {
      pending[op.key] = std::nullopt;
      continue;
    }
    if (op.kind == StateWriteBatch::Kind::kDeleteRange) {
      for (auto& [key, value] : pending) {
        if (key >= op.key && key < op.value) value = std::nullopt;
      }
      deleted.emplace_back(op.key, op.value);
      continue;
    }
    if (op.kind == StateWriteBatch::Kind::kPut) {
      internal::EncodeStateValue(now_ms, op.value, &(*merged)[i]);
      pending[op.key] = (*merged)[i];
      continue;
    }
    std::optional<std::string_view> existing;
    if (auto it = pending.find(op.key); it != pending.end()) {
      existing = it->second;
    } else if (auto it = windows.find(op.key);
               it != windows.end() &&
               std::none_of(deleted.begin(), deleted.end(), [&](const auto& r) {
                 return op.key >= r.first && op.key < r.second;
               })) {
      existing = it->second;
    }
    internal::EncodeStateValue(now_ms, op.value, &operand);
    const std::string_view operands[1] = {operand};
    WEIR_RETURN_IF_ERROR(internal::MergeStoredWindowValues(
        existing.has_value() ? &*existing : nullptr, operands,
        TtlMs(options_.ttl), &(*merged)[i]));
    pending[op.key] = (*merged)[i];
  }
  return absl::OkStatus();
}

std::unique_ptr<StateIterator> MemoryStateBackend::Scan(Column column,
                                                        std::string_view begin,
                                                        std::string_view end) {
  if (!ValidColumn(column) || (!end.empty() && end <= begin)) {
    return std::make_unique<internal::EmptyStateIterator>();
  }
  std::optional<int64_t> ttl_ms;
  if (column == Column::kWindows) ttl_ms = TtlMs(options_.ttl);
  return std::make_unique<MemoryStateIterator>(
      &columns_[static_cast<int>(column)], &mutations_, begin, end, ttl_ms,
      NowMs(options_.clock));
}

absl::Status MemoryStateBackend::Compact() {
  const std::optional<int64_t> ttl_ms = TtlMs(options_.ttl);
  if (!ttl_ms.has_value()) return absl::OkStatus();
  const int64_t now_ms = NowMs(options_.clock);
  Map& map = columns_[static_cast<int>(Column::kWindows)];
  bool erased = false;
  for (auto it = map.begin(); it != map.end();) {
    if (internal::CompactionDrops(it->second, *ttl_ms, now_ms)) {
      it = map.erase(it);
      erased = true;
    } else {
      ++it;
    }
  }
  if (erased) ++mutations_;
  return absl::OkStatus();
}

absl::Status MemoryStateBackend::CreateCheckpoint(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("CreateCheckpoint: empty directory");
  }
  Env* const env = options_.env;
  WEIR_ASSIGN_OR_RETURN(const bool exists, PathExists(env, dir));
  if (exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint directory ", dir, " already exists"));
  }

  std::string data(kMemMagic);
  data.push_back(static_cast<char>(kMemFileVersion));
  for (const Map& map : columns_) {
    PutFixed64(&data, map.size());
    for (const auto& [key, value] : map) {
      if (key.size() > UINT32_MAX || value.size() > UINT32_MAX) {
        return absl::OutOfRangeError(
            "CreateCheckpoint: an entry is larger than 4 GiB");
      }
      PutFixed32(&data, static_cast<uint32_t>(key.size()));
      data.append(key);
      PutFixed32(&data, static_cast<uint32_t>(value.size()));
      data.append(value);
    }
  }
  PutFixed32(&data, internal::Crc32c(data));

  // Build the checkpoint in "<dir>.tmp" and rename it into place, so that
  // `dir` either holds a complete checkpoint or does not exist.
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = fs::absolute(fs::path(dir), ec).lexically_normal();
  if (ec) return ErrnoToStatus(ec.value(), "resolve", dir);
  if (target.filename().empty()) target = target.parent_path();  // "a/b/"
  const std::string parent = target.parent_path().string();
  WEIR_RETURN_IF_ERROR(CreateDirectories(env, parent));
  const std::string tmp = target.string() + ".tmp";
  // Left over from a crash while checkpointing.
  WEIR_RETURN_IF_ERROR(RemoveTree(env, tmp));
  WEIR_RETURN_IF_ERROR(env->CreateDirectory(tmp));
  absl::Status status =
      WriteStringToFile(env, absl::StrCat(tmp, "/", std::string(kMemFileName)),
                        data, WriteMode::kCreateNew, /*sync=*/true);
  if (status.ok()) status = env->SyncDirectory(tmp);
  if (status.ok()) status = env->Rename(tmp, target.string());
  if (!status.ok()) {
    RemoveTree(env, tmp).IgnoreError();
    return status;
  }
  return env->SyncDirectory(parent);
}

StateStats MemoryStateBackend::Stats() {
  StateStats stats;
  stats.windows_keys = columns_[static_cast<int>(Column::kWindows)].size();
  stats.timers_keys = columns_[static_cast<int>(Column::kTimers)].size();
  for (const Map& map : columns_) {
    for (const auto& [key, value] : map) {
      stats.bytes += key.size() + value.size();
    }
  }
  return stats;
}

std::function<absl::StatusOr<std::unique_ptr<StateBackend>>(const std::string&)>
MemoryBackendFactory(MemoryStateBackendOptions options) {
  return [options](const std::string& path)
             -> absl::StatusOr<std::unique_ptr<StateBackend>> {
    const std::string file = absl::StrCat(path, "/", std::string(kMemFileName));
    if (options.env->Stat(file).ok()) {
      WEIR_ASSIGN_OR_RETURN(auto backend,
                            MemoryStateBackend::Open(options, path));
      return std::unique_ptr<StateBackend>(std::move(backend));
    }
    WEIR_ASSIGN_OR_RETURN(auto backend, MemoryStateBackend::Create(options));
    return std::unique_ptr<StateBackend>(std::move(backend));
  };
}

}  // namespace weir
