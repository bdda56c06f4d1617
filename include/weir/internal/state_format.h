// -----------------------------------------------------------------------------
// File: internal/state_format.h
// -----------------------------------------------------------------------------
//
// The header every backend puts in front of a stored value, shared by the
// memory and RocksDB backends (and read by RocksDB's TTL compaction filter):
//
//   byte 0      format version (kStateFormatVersion; this weir also reads
//               the versions from kOldestStateFormatVersion on)
//   bytes 1..8  last write, processing time, int64 ms, little-endian
//   bytes 9..   the operator's bytes
//
// A version byte out of that range means the state was written by an
// incompatible weir; reading it fails with kFailedPrecondition. Version 2
// added merge operands to "windows" (StateWriteBatch::Merge): a weir that
// reads only version 1 has no merge operator, so it must refuse the state
// before it meets one. Version 1 values are version 2 values without
// operands, so this weir reads them.
//
// Besides the codec, the few pieces of backend logic that must agree
// between the backends live here: how Get reads a value under a TTL, when
// compaction drops one, and the iterator over an empty range.
//
// Threading: pure functions and a stateless iterator, safe from any thread.
//
// Example:
//   std::string stored;
//   weir::internal::EncodeStateValue(now_ms, payload, &stored);
//   std::string value;
//   WEIR_RETURN_IF_ERROR(weir::internal::DecodeLiveStateValue(
//       stored, ttl_ms, now_ms, &value));  // kNotFound once expired

#ifndef WEIR_INTERNAL_STATE_FORMAT_H_
#define WEIR_INTERNAL_STATE_FORMAT_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "weir/internal/coding.h"
#include "weir/state.h"

namespace weir {
namespace internal {

inline constexpr uint8_t kStateFormatVersion = 2;
inline constexpr uint8_t kOldestStateFormatVersion = 1;
inline constexpr size_t kStateHeaderSize = 9;

// Whether this weir reads values of format `version`.
inline bool ReadableStateFormat(uint8_t version) {
  return version >= kOldestStateFormatVersion && version <= kStateFormatVersion;
}

inline void EncodeStateValue(int64_t write_time_ms, std::string_view payload,
                             std::string* out) {
  out->resize(kStateHeaderSize + payload.size());
  (*out)[0] = static_cast<char>(kStateFormatVersion);
  uint64_t t = static_cast<uint64_t>(write_time_ms);
  for (int i = 0; i < 8; ++i) (*out)[1 + i] = static_cast<char>(t >> (8 * i));
  if (!payload.empty()) {
    std::memcpy(out->data() + kStateHeaderSize, payload.data(), payload.size());
  }
}

// Splits a stored value into its write time and payload.
inline absl::Status DecodeStateValue(std::string_view stored,
                                     int64_t* write_time_ms,
                                     std::string_view* payload) {
  if (stored.size() < kStateHeaderSize) {
    return absl::DataLossError(absl::StrCat(
        "state value of ", stored.size(), " bytes is shorter than its header"));
  }
  const uint8_t version = static_cast<uint8_t>(stored[0]);
  if (!ReadableStateFormat(version)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state value has format version ", version, ", this weir reads ",
        kOldestStateFormatVersion, " to ", kStateFormatVersion,
        "; restore it with the weir version that wrote it or start from "
        "empty state"));
  }
  *write_time_ms = static_cast<int64_t>(DecodeFixed64(stored.data() + 1));
  *payload = stored.substr(kStateHeaderSize);
  return absl::OkStatus();
}

// True if a value last written at `write_time_ms` has expired at `now_ms`.
inline bool StateExpired(int64_t write_time_ms, std::optional<int64_t> ttl_ms,
                         int64_t now_ms) {
  return ttl_ms.has_value() && now_ms - write_time_ms >= *ttl_ms;
}

// What Get returns for a stored value: its payload in `*value`, or
// kNotFound "state key expired" if it has expired at `now_ms` under
// `ttl_ms` (unset: it never expires), or the decoding error.
inline absl::Status DecodeLiveStateValue(std::string_view stored,
                                         std::optional<int64_t> ttl_ms,
                                         int64_t now_ms, std::string* value) {
  int64_t write_ms;
  std::string_view payload;
  absl::Status status = DecodeStateValue(stored, &write_ms, &payload);
  if (!status.ok()) return status;
  if (StateExpired(write_ms, ttl_ms, now_ms)) {
    return absl::NotFoundError("state key expired");
  }
  value->assign(payload);
  return absl::OkStatus();
}

// Whether compaction drops a stored value: it has expired at `now_ms`. A
// value it cannot decode (another format version) is kept: only the weir
// that wrote it may judge it.
inline bool CompactionDrops(std::string_view stored, int64_t ttl_ms,
                            int64_t now_ms) {
  // The cheap checks first, so an unknown version builds no error status.
  if (stored.size() < kStateHeaderSize ||
      !ReadableStateFormat(static_cast<uint8_t>(stored[0]))) {
    return false;
  }
  int64_t write_ms;
  std::string_view payload;
  if (!DecodeStateValue(stored, &write_ms, &payload).ok()) return false;
  return StateExpired(write_ms, ttl_ms, now_ms);
}

// Whether a backend takes `op`: a known column, merges only into kWindows,
// range deletes only of a non-empty range. kInvalidArgument otherwise.
inline absl::Status CheckStateOp(const StateWriteBatch::Op& op) {
  if (static_cast<int>(op.column) >= kNumColumns) {
    return absl::InvalidArgumentError("Write: unknown column");
  }
  if (op.kind == StateWriteBatch::Kind::kMerge &&
      op.column != Column::kWindows) {
    return absl::InvalidArgumentError(
        absl::StrCat("Write: merge into column \"", ColumnName(op.column),
                     "\"; only \"windows\" takes merges"));
  }
  if (op.kind == StateWriteBatch::Kind::kDeleteRange && !(op.key < op.value)) {
    return absl::InvalidArgumentError(
        "Write: range delete whose end is not after its begin");
  }
  return absl::OkStatus();
}

// An iterator over nothing, for an empty or invalid range.
class EmptyStateIterator final : public StateIterator {
 public:
  bool Valid() const override { return false; }
  void Next() override {}
  std::string_view key() const override { return {}; }
  std::string_view value() const override { return {}; }
  absl::Status status() const override { return absl::OkStatus(); }
};

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_STATE_FORMAT_H_
