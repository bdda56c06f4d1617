// -----------------------------------------------------------------------------
// File: rocksdb/rocksdb_state_backend.h
// -----------------------------------------------------------------------------
//
// `RocksDbStateBackend` is the production `StateBackend`: one RocksDB
// instance per operator instance (per input partition), with the column
// families "windows", "timers" and "meta" (plus RocksDB's "default").
//
// Memory: every backend of a process shares one `RocksDbResources`, which
// holds one LRU block cache and one write-buffer manager charged to that
// cache. Memtables, data blocks, index and filter blocks all count against
// the same cache, so the state memory of the whole process is one number,
// `memory_budget_bytes`, whatever the partition count. (RocksDB lets the
// cache overshoot briefly rather than fail a read or write.)
//
// Durability: the write-ahead log is off. Writes reach disk on Flush(), on
// CreateCheckpoint() and when memtables fill; a crash loses what was not
// flushed, and recovery is a restore from the last checkpoint plus replay
// from the source, as docs/architecture.md describes. Reopening a live
// `path` is allowed but yields the state as of its last flush, which need
// not match any recorded source offset: only checkpoints are restore points.
//
// Checkpoints: CreateCheckpoint(dir) flushes and then hard-links the live
// SST files into `dir` (copying the small metadata files). The result is a
// complete RocksDB directory. To restore from it, create a backend with
// `path` set to that directory (or to a copy of it); the new backend then
// owns the directory and writes into it, so keep a copy (or the uploaded
// files) if the checkpoint itself must stay untouched.
//
// TTL: with `ttl` set, a "windows" entry whose last write is `ttl` or more
// of processing time ago is hidden from Get and Scan at once and dropped by
// a compaction filter when compaction reaches it; Compact() forces that for
// the whole store. Timers and meta never expire.
//
// Threading: a backend is used by one thread at a time (RocksDB's own
// background threads flush and compact). `RocksDbResources` is thread-safe
// and shared by any number of backends on any threads. Starts no threads of
// its own; RocksDB runs its process-wide background pool.
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto resources, weir::RocksDbResources::Create(
//       {.memory_budget_bytes = size_t{512} << 20}));
//   weir::RocksDbStateBackendOptions options;
//   options.path = "/var/lib/weir/payments-7";
//   options.resources = resources;
//   options.ttl = absl::Hours(48);
//   WEIR_ASSIGN_OR_RETURN(auto backend,
//                         weir::RocksDbStateBackend::Create(options));
//   weir::StateWriteBatch batch;
//   batch.Put(weir::Column::kMeta, "watermark", bytes);
//   WEIR_RETURN_IF_ERROR(backend->Write(batch));
//   WEIR_RETURN_IF_ERROR(backend->CreateCheckpoint("/var/lib/weir/ckpt-42"));

#ifndef WEIR_ROCKSDB_ROCKSDB_STATE_BACKEND_H_
#define WEIR_ROCKSDB_ROCKSDB_STATE_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/state.h"
#include "weir/time.h"

namespace weir {

struct RocksDbStateBackendOptions;
namespace internal {
struct RocksDbOpenOptions;
RocksDbOpenOptions MakeRocksDbOpenOptions(
    const RocksDbStateBackendOptions& options);
}  // namespace internal

struct RocksDbResourcesOptions {
  // Memory for all RocksDB state of the process: block cache, memtables,
  // index and filter blocks. Larger keeps more of the state in memory and
  // makes fewer, larger flushes. REQUIRES: >= 1 MiB.
  // Default: 256 MiB
  size_t memory_budget_bytes = size_t{256} << 20;

  // The share of `memory_budget_bytes` that memtables may use before the
  // largest is flushed; the rest caches blocks read from disk. Larger
  // absorbs more writes between flushes; smaller caches more reads.
  // REQUIRES: in (0, 1).
  // Default: 0.5
  double write_buffer_fraction = 0.5;

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// The memory shared by every RocksDbStateBackend of a process or pipeline.
// Create one, hand the shared_ptr to every backend; it lives as long as the
// last of them.
//
// Threading: thread-safe.
class RocksDbResources {
 public:
  static absl::StatusOr<std::shared_ptr<RocksDbResources>> Create(
      const RocksDbResourcesOptions& options = {});

  ~RocksDbResources();
  RocksDbResources(const RocksDbResources&) = delete;
  RocksDbResources& operator=(const RocksDbResources&) = delete;

  const RocksDbResourcesOptions& options() const { return options_; }

  // The block cache's capacity: the whole budget.
  size_t block_cache_capacity() const;

  // Bytes the block cache holds now, memtable reservations included.
  size_t block_cache_usage() const;

  // Bytes of memtables of every backend sharing these resources.
  size_t write_buffer_usage() const;

  // The memtable limit: write_buffer_fraction × memory_budget_bytes.
  size_t write_buffer_limit() const;

 private:
  friend class RocksDbStateBackend;
  friend internal::RocksDbOpenOptions internal::MakeRocksDbOpenOptions(
      const RocksDbStateBackendOptions& options);
  struct Impl;

  RocksDbResources(const RocksDbResourcesOptions& options,
                   std::unique_ptr<Impl> impl);

  RocksDbResourcesOptions options_;
  std::unique_ptr<Impl> impl_;
};

struct RocksDbStateBackendOptions {
  // The database directory; created if missing, opened if it holds a
  // database (a previous run's, or a checkpoint to restore). Required.
  // Default: "" (unset)
  std::string path;

  // Shared block cache and write-buffer manager. Required.
  // Default: nullptr (unset)
  std::shared_ptr<RocksDbResources> resources;

  // Expire "windows" entries not written for this long (processing time).
  // Default: unset (no expiry).
  std::optional<absl::Duration> ttl;

  // Processing-time source for TTL. Not owned; must outlive the backend.
  // Default: Clock::Real()
  Clock* clock = Clock::Real();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Thread-compatible: one thread at a time (see the file comment).
class RocksDbStateBackend final : public StateBackend {
 public:
  // Opens or creates the database at `options.path`.
  static absl::StatusOr<std::unique_ptr<RocksDbStateBackend>> Create(
      const RocksDbStateBackendOptions& options);

  // Closes the database. Unflushed writes are lost (the WAL is off); call
  // Flush() first to keep them in `path`.
  ~RocksDbStateBackend() override;

  absl::Status Get(Column column, std::string_view key,
                   std::string* value) override;
  absl::Status Write(const StateWriteBatch& batch) override;
  std::unique_ptr<StateIterator> Scan(Column column, std::string_view begin,
                                      std::string_view end) override;
  absl::Status Flush() override;
  absl::Status Compact() override;
  absl::Status CreateCheckpoint(const std::string& dir) override;
  StateStats Stats() override;

  const std::string& path() const { return options_.path; }
  const std::shared_ptr<RocksDbResources>& resources() const {
    return options_.resources;
  }

  // A RocksDB integer property of one column family, e.g.
  // "rocksdb.estimate-num-keys" or "rocksdb.block-cache-capacity", for
  // metrics and tests. kNotFound if RocksDB does not know it.
  absl::StatusOr<uint64_t> GetIntProperty(Column column,
                                          std::string_view property);

  // A RocksDB string property of one column family, e.g. "rocksdb.stats"
  // (compaction and write-stall summary) or "rocksdb.levelstats", for
  // diagnostics. kNotFound if RocksDB does not know it.
  absl::StatusOr<std::string> GetProperty(Column column,
                                          std::string_view property);

 private:
  struct Impl;

  RocksDbStateBackend(const RocksDbStateBackendOptions& options,
                      std::unique_ptr<Impl> impl);

  RocksDbStateBackendOptions options_;
  std::unique_ptr<Impl> impl_;
};

// A factory of RocksDB backends for Pipeline (weir/pipeline.h): each
// partition's backend at the given path, all sharing `resources`, with
// `ttl` and `clock` as in RocksDbStateBackendOptions.
std::function<absl::StatusOr<std::unique_ptr<StateBackend>>(const std::string&)>
RocksDbBackendFactory(std::shared_ptr<RocksDbResources> resources,
                      std::optional<absl::Duration> ttl = std::nullopt,
                      Clock* clock = Clock::Real());

}  // namespace weir

#endif  // WEIR_ROCKSDB_ROCKSDB_STATE_BACKEND_H_
