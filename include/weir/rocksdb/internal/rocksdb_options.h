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

#include <vector>

#include "rocksdb/options.h"
#include "weir/rocksdb/rocksdb_state_backend.h"

namespace weir {
namespace internal {

struct RocksDbOpenOptions {
  rocksdb::DBOptions db;
  // RocksDB's "default" first, then one per Column, in Column order.
  std::vector<rocksdb::ColumnFamilyDescriptor> column_families;
};

// The options for `options.path`'s database. REQUIRES: options.Validate()
// is OK.
RocksDbOpenOptions MakeRocksDbOpenOptions(
    const RocksDbStateBackendOptions& options);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_ROCKSDB_INTERNAL_ROCKSDB_OPTIONS_H_
