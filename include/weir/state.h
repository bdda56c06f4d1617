// -----------------------------------------------------------------------------
// File: state.h
// -----------------------------------------------------------------------------
//
// `StateBackend` is the byte-level store of one operator instance (one per
// input partition): ordered key-value columns, batched writes, range scans,
// TTL, and consistent checkpoints into a local directory. The operator owns
// the encoding of keys and values; a backend only stores bytes.
//
// Columns (docs/architecture.md, "State layout"):
//   kWindows  feature group ‖ window start ‖ entity key → accumulators
//             (fixed-length windows), entity key ‖ feature group ‖ window
//             start → accumulators (sessions)
//   kTimers   time ‖ kind ‖ feature group ‖ window start ‖ entity key → ""
//             (sessions)
//   kMeta     small named values: watermarks, offsets, format version
//
// Every stored value starts with a header the backend writes itself: a
// format-version byte and the processing time of the last write (see
// internal/state_format.h). A value written by an unknown format version is
// refused with kFailedPrecondition, never misread. With `ttl` set, a kWindows
// entry not written (put or merged) for `ttl` of processing time is never
// returned again and is dropped by the next compaction; a merge into an
// entry that had expired when the merge was written starts it afresh.
//
// Two implementations: `MemoryStateBackend` (below; tests and small jobs)
// and `RocksDbStateBackend` (weir/rocksdb/rocksdb_state_backend.h).
//
// Threading: a backend is used by one thread at a time. CreateCheckpoint may
// be followed by reads of the checkpoint directory from another thread.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto backend, weir::MemoryStateBackend::Create({}));
//   weir::StateWriteBatch batch;
//   batch.Put(weir::Column::kMeta, "watermark", bytes);
//   WEIR_RETURN_IF_ERROR(backend->Write(batch));

#ifndef WEIR_STATE_H_
#define WEIR_STATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/env.h"
#include "weir/time.h"

namespace weir {

enum class Column : uint8_t { kWindows = 0, kTimers = 1, kMeta = 2 };
inline constexpr int kNumColumns = 3;
const char* ColumnName(Column c);  // "windows", "timers", "meta"

// An ordered list of puts, merges and deletes applied atomically by Write().
// The ops' bytes are copied into chunks the batch owns and reuses after
// Clear(), so building a batch allocates nothing once warm.
class StateWriteBatch {
 public:
  enum class Kind : uint8_t { kPut, kDelete, kMerge, kDeleteRange };
  struct Op {
    Column column;
    Kind kind;
    std::string_view key;    // kDeleteRange: the first key of the range
    std::string_view value;  // the value; a merge's operand; kDeleteRange:
                             // the end of the range (not deleted); empty
                             // for deletes
  };

  StateWriteBatch() = default;
  StateWriteBatch(const StateWriteBatch& other) { *this = other; }
  StateWriteBatch& operator=(const StateWriteBatch& other);
  StateWriteBatch(StateWriteBatch&&) = default;
  StateWriteBatch& operator=(StateWriteBatch&&) = default;

  void Put(Column column, std::string_view key, std::string_view value) {
    Add(column, Kind::kPut, key, value);
  }
  void Delete(Column column, std::string_view key) {
    Add(column, Kind::kDelete, key, {});
  }
  // Combines `operand`, a window payload (internal/window_state.h), with
  // what `key` holds by the aggregates' merge law, without reading it: the
  // backend merges when the key is read (or compacted), so the write is
  // blind. Only kWindows takes merges; a merge into another column fails
  // the Write with kInvalidArgument. A payload that does not merge (another
  // window, other aggregate kinds) surfaces as an error when the key is
  // read.
  void Merge(Column column, std::string_view key, std::string_view operand) {
    Add(column, Kind::kMerge, key, operand);
  }
  // Deletes every key in [begin, end): one op (a RocksDB range tombstone)
  // however many keys, merge operands included. The Write fails with
  // kInvalidArgument unless begin < end.
  void DeleteRange(Column column, std::string_view begin,
                   std::string_view end) {
    Add(column, Kind::kDeleteRange, begin, end);
  }
  const std::vector<Op>& ops() const { return ops_; }
  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  void Clear();

 private:
  void Add(Column column, Kind kind, std::string_view key,
           std::string_view value);
  // A copy of `s` in chunks_.
  std::string_view Keep(std::string_view s);

  std::vector<Op> ops_;
  // The ops' bytes. A chunk never moves, so the views in ops_ stay valid
  // (also when the batch is moved); chunks_[current_] is being filled.
  struct Chunk {
    std::unique_ptr<char[]> data;
    size_t size = 0;
    size_t used = 0;
  };
  std::vector<Chunk> chunks_;
  size_t current_ = 0;
};

// Iterates a key range of one column in key order. Values are the caller's
// bytes (the backend's header stripped); expired entries are skipped.
// key() and value() stay valid until the next Next(). Writes made while an
// iterator is open do not invalidate it, but whether it sees them differs by
// backend (RocksDB reads the store as of Scan(); the memory backend
// continues after its current key), so callers must not rely on either.
class StateIterator {
 public:
  virtual ~StateIterator() = default;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Not OK if the scan stopped on an error (I/O, an incompatible value).
  virtual absl::Status status() const = 0;
};

struct StateStats {
  uint64_t windows_keys = 0;  // exact for memory, an estimate for RocksDB
  uint64_t timers_keys = 0;
  uint64_t bytes = 0;  // approximate live bytes
};

class StateBackend {
 public:
  virtual ~StateBackend() = default;

  // Copies the value of `key` into `*value` (merged, if merges were
  // written to it). Returns kNotFound if absent or expired,
  // kFailedPrecondition for an incompatible format version or parts that
  // do not merge.
  virtual absl::Status Get(Column column, std::string_view key,
                           std::string* value) = 0;

  // Applies every op of `batch`, in order, atomically. kInvalidArgument for
  // an unknown column, a merge outside kWindows or a range delete in it
  // (nothing is applied).
  virtual absl::Status Write(const StateWriteBatch& batch) = 0;

  // Keys in [begin, end) of `column`; an empty `end` means to the last key.
  virtual std::unique_ptr<StateIterator> Scan(Column column,
                                              std::string_view begin,
                                              std::string_view end) = 0;

  // Makes every write so far part of the next checkpoint's files.
  virtual absl::Status Flush() = 0;

  // Compacts the whole store; TTL-expired entries are dropped.
  virtual absl::Status Compact() = 0;

  // Writes a consistent copy of the store into `dir`, which must not exist.
  // Cheap for RocksDB (hard links to immutable files).
  virtual absl::Status CreateCheckpoint(const std::string& dir) = 0;

  virtual StateStats Stats() = 0;
};

struct MemoryStateBackendOptions {
  // Expire kWindows entries not written for this long (processing time).
  // Default: unset (no expiry).
  std::optional<absl::Duration> ttl;

  // Processing-time source for TTL. Not owned; must outlive the backend.
  // Default: Clock::Real()
  Clock* clock = Clock::Real();

  // The file system CreateCheckpoint and Open use. Not owned; must outlive
  // the backend.
  // Default: Env::Default()
  Env* env = Env::Default();

  absl::Status Validate() const;
};

// Ordered maps in memory. Checkpoints are one file, "state.mem", with a
// CRC32C; Open() refuses a file whose checksum does not match.
class MemoryStateBackend final : public StateBackend {
 public:
  static absl::StatusOr<std::unique_ptr<MemoryStateBackend>> Create(
      const MemoryStateBackendOptions& options);
  // Opens the checkpoint CreateCheckpoint wrote into `dir`.
  static absl::StatusOr<std::unique_ptr<MemoryStateBackend>> Open(
      const MemoryStateBackendOptions& options, const std::string& dir);

  absl::Status Get(Column column, std::string_view key,
                   std::string* value) override;
  absl::Status Write(const StateWriteBatch& batch) override;
  std::unique_ptr<StateIterator> Scan(Column column, std::string_view begin,
                                      std::string_view end) override;
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Compact() override;
  absl::Status CreateCheckpoint(const std::string& dir) override;
  StateStats Stats() override;

 private:
  explicit MemoryStateBackend(const MemoryStateBackendOptions& options)
      : options_(options) {}

  // The stored value each merge op of `batch` leaves, at the op's index in
  // `*merged`, computed before the batch changes anything.
  absl::Status MergeBatch(const StateWriteBatch& batch, int64_t now_ms,
                          std::vector<std::string>* merged) const;

  using Map = std::map<std::string, std::string, std::less<>>;
  MemoryStateBackendOptions options_;
  Map columns_[kNumColumns];  // values carry the state_format header
  // Bumped by every change to columns_, so open iterators know to re-seek.
  uint64_t mutations_ = 0;
};

// A factory of memory backends for Pipeline (PipelineOptions::
// backend_factory in weir/pipeline.h), the counterpart of
// RocksDbBackendFactory: for a path holding a checkpoint (a restored
// partition) it opens that checkpoint, for an empty one it creates an empty
// backend. State lives in memory, so it suits small state, tests and
// backfills; checkpoints still go to the store, one file per partition.
std::function<absl::StatusOr<std::unique_ptr<StateBackend>>(const std::string&)>
MemoryBackendFactory(MemoryStateBackendOptions options = {});

}  // namespace weir

#endif  // WEIR_STATE_H_
