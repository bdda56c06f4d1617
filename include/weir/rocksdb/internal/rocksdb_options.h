// -----------------------------------------------------------------------------
// File: rocksdb/internal/rocksdb_options.h
// -----------------------------------------------------------------------------
//
// The RocksDB options a `RocksDbStateBackend` opens its database with: one
// place that says them, for the backend and for benchmarks that measure
// RocksDB alone with the same options (bench/b6_memory.cc's reference).
//
// Threading: pure function; the options share `resources`' cache and
// write-buffer manager, which are thread-safe.
//
// Example:
//   weir::internal::RocksDbOpenOptions open =
//       weir::internal::MakeRocksDbOpenOptions(backend_options);
//   std::vector<rocksdb::ColumnFamilyHandle*> handles;
//   rocksdb::DB* db;
//   rocksdb::Status s = rocksdb::DB::Open(open.db, path,
//                                         open.column_families, &handles, &db);

#ifndef WEIR_ROCKSDB_INTERNAL_ROCKSDB_OPTIONS_H_
#define WEIR_ROCKSDB_INTERNAL_ROCKSDB_OPTIONS_H_

#include <memory>
#include <string>
#include <vector>

#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "weir/rocksdb/rocksdb_state_backend.h"

namespace weir {
namespace internal {

// Every column family's `memtable_insert_with_hint_prefix_extractor`: one
// prefix (the empty one) for every key, so each memtable keeps one insert
// hint, where the last insert went, and a key a few entries after it is
// found from there. (Without a hint, RocksDB searches from the top of the
// skip list unless the key is the very next one: a write batch sorted by
// key, its keys a few entries apart in a memtable of tens of thousands,
// paid a whole search per key.)
//
// RocksDB 7.8 uses the same hint for a memtable's range deletions, which
// live in a skip list of their own, and a hint from one list used in the
// other corrupts it. (Later versions give range deletions no hint.) So a
// range deletion's begin key is out of the domain while it is written:
// the writer names those keys (`ExcludeWhileWriting`) before each write and
// clears them after (`ClearExcluded`). Not thread-safe: the database's one
// writing thread calls all three.
class MemtableInsertHint final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "weir.MemtableInsertHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), 0);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    for (const std::string& excluded : excluded_) {
      if (key == rocksdb::Slice(excluded)) return false;
    }
    return true;
  }
  void ExcludeWhileWriting(const rocksdb::Slice& key) {
    excluded_.emplace_back(key.data(), key.size());
  }
  void ClearExcluded() { excluded_.clear(); }

 private:
  std::vector<std::string> excluded_;
};

struct RocksDbOpenOptions {
  rocksdb::DBOptions db;
  // RocksDB's "default" first, then one per Column, in Column order.
  std::vector<rocksdb::ColumnFamilyDescriptor> column_families;
  // The insert hint every column family uses; a writer that range-deletes
  // names the begin keys to it (see MemtableInsertHint).
  std::shared_ptr<MemtableInsertHint> insert_hint;
};

// The options for `options.path`'s database. REQUIRES: options.Validate()
// is OK.
RocksDbOpenOptions MakeRocksDbOpenOptions(
    const RocksDbStateBackendOptions& options);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_ROCKSDB_INTERNAL_ROCKSDB_OPTIONS_H_
