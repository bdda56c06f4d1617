#include "weir/rocksdb/rocksdb_state_backend.h"

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "weir/internal/state_format.h"
#include "weir/internal/window_state.h"
#include "weir/rocksdb/internal/rocksdb_options.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

// RocksDB's info log, errors only, to stderr.
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::ERROR_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    std::fprintf(stderr, "weir rocksdb: %s\n", line);
  }
};

constexpr size_t kMiB = size_t{1} << 20;

// Column family names, indexed by Column.
constexpr std::array<const char*, kNumColumns> kColumnFamilies = {
    "windows", "timers", "meta"};

int64_t NowMs(Clock* clock) { return ToEventTime(clock->Now()); }

std::string_view View(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

bool ValidColumn(Column c) { return static_cast<int>(c) < kNumColumns; }

// Maps a RocksDB status onto the absl code with the same retry meaning.
absl::Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return absl::OkStatus();
  const std::string message =
      absl::StrCat("rocksdb ", std::string(context), ": ", s.ToString());
  using Code = rocksdb::Status::Code;
  switch (s.code()) {
    case Code::kNotFound:
      return absl::NotFoundError(message);
    case Code::kCorruption:
      return absl::DataLossError(message);
    case Code::kNotSupported:
      return absl::UnimplementedError(message);
    case Code::kInvalidArgument:
      return absl::InvalidArgumentError(message);
    case Code::kIOError:
      if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
      if (s.IsPathNotFound()) return absl::NotFoundError(message);
      return absl::UnavailableError(message);
    case Code::kBusy:
    case Code::kTryAgain:
    case Code::kShutdownInProgress:
      return absl::UnavailableError(message);
    case Code::kTimedOut:
    case Code::kExpired:
      return absl::DeadlineExceededError(message);
    case Code::kAborted:
      return absl::AbortedError(message);
    case Code::kCompactionTooLarge:
      return absl::ResourceExhaustedError(message);
    case Code::kColumnFamilyDropped:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

rocksdb::CompressionType BestCompression() {
  static const rocksdb::CompressionType type = [] {
    for (rocksdb::CompressionType t : rocksdb::GetSupportedCompressions()) {
      if (t == rocksdb::kLZ4Compression) return t;
    }
    return rocksdb::kNoCompression;
  }();
  return type;
}

// Drops "windows" entries whose last write is at least `ttl_ms` before the
// time the compaction started. A value it cannot decode (another format
// version) is kept: only the weir that wrote it may judge it.
class TtlCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  TtlCompactionFilter(int64_t ttl_ms, int64_t now_ms)
      : ttl_ms_(ttl_ms), now_ms_(now_ms) {}

  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/,
              const rocksdb::Slice& existing_value, std::string* /*new_value*/,
              bool* /*value_changed*/) const override {
    return internal::CompactionDrops(View(existing_value), ttl_ms_, now_ms_);
  }

  // Merge operands carry the header too: an expired one is dropped like an
  // expired value.
  bool FilterMergeOperand(int /*level*/, const rocksdb::Slice& /*key*/,
                          const rocksdb::Slice& operand) const override {
    return internal::CompactionDrops(View(operand), ttl_ms_, now_ms_);
  }

  const char* Name() const override { return "weir.StateTtlFilter"; }

 private:
  const int64_t ttl_ms_;
  const int64_t now_ms_;
};

// One filter per compaction, reading the clock once when it starts.
class TtlCompactionFilterFactory final
    : public rocksdb::CompactionFilterFactory {
 public:
  TtlCompactionFilterFactory(int64_t ttl_ms, Clock* clock)
      : ttl_ms_(ttl_ms), clock_(clock) {}

  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& /*context*/) override {
    return std::make_unique<TtlCompactionFilter>(ttl_ms_, NowMs(clock_));
  }

  const char* Name() const override { return "weir.StateTtlFilterFactory"; }

 private:
  const int64_t ttl_ms_;
  Clock* const clock_;
};

// Combines the merge operands of a "windows" key (StateWriteBatch::Merge)
// with its value by the aggregates' merge law (internal/window_state.h),
// when the key is read or compacted. Parts that do not merge fail the read
// (RocksDB reports Corruption) rather than losing a part.
class WindowMergeOperator final : public rocksdb::MergeOperator {
 public:
  explicit WindowMergeOperator(std::optional<int64_t> ttl_ms)
      : ttl_ms_(ttl_ms) {}

  bool FullMergeV2(const MergeOperationInput& in,
                   MergeOperationOutput* out) const override {
    std::string_view existing;
    if (in.existing_value != nullptr) existing = View(*in.existing_value);
    absl::InlinedVector<std::string_view, 4> operands;
    operands.reserve(in.operand_list.size());
    for (const rocksdb::Slice& operand : in.operand_list) {
      operands.push_back(View(operand));
    }
    const absl::Status s = internal::MergeStoredWindowValues(
        in.existing_value != nullptr ? &existing : nullptr, operands, ttl_ms_,
        &out->new_value);
    if (!s.ok() && in.logger != nullptr) {
      rocksdb::Log(rocksdb::InfoLogLevel::ERROR_LEVEL, in.logger,
                   "weir window merge failed: %s", s.ToString().c_str());
    }
    return s.ok();
  }

  const char* Name() const override { return "weir.WindowStateMerge"; }

 private:
  const std::optional<int64_t> ttl_ms_;
};

// Iterates [begin, end) of one column family; the upper bound is enforced
// by RocksDB (iterate_upper_bound), so it never reads past the range.
class RocksDbStateIterator final : public StateIterator {
 public:
  RocksDbStateIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                       std::string_view begin, std::string_view end,
                       std::optional<int64_t> ttl_ms, int64_t now_ms)
      : end_(end), upper_(end_), ttl_ms_(ttl_ms), now_ms_(now_ms) {
    rocksdb::ReadOptions read_options;
    if (!end_.empty()) read_options.iterate_upper_bound = &upper_;
    it_.reset(db->NewIterator(read_options, cf));
    it_->Seek(ToSlice(begin));
    Settle();
  }

  bool Valid() const override { return valid_; }

  void Next() override {
    if (!valid_) return;
    it_->Next();
    Settle();
  }

  std::string_view key() const override { return View(it_->key()); }
  std::string_view value() const override { return payload_; }
  absl::Status status() const override { return status_; }

 private:
  void Settle() {
    valid_ = false;
    for (; it_->Valid(); it_->Next()) {
      int64_t write_ms;
      status_ =
          internal::DecodeStateValue(View(it_->value()), &write_ms, &payload_);
      if (!status_.ok()) return;
      if (internal::StateExpired(write_ms, ttl_ms_, now_ms_)) continue;
      valid_ = true;
      return;
    }
    status_ = FromRocks(it_->status(), "Scan");
  }

  // end_ and upper_ must outlive it_, which reads the bound through them.
  const std::string end_;
  const rocksdb::Slice upper_;
  const std::optional<int64_t> ttl_ms_;
  const int64_t now_ms_;
  std::unique_ptr<rocksdb::Iterator> it_;
  bool valid_ = false;
  std::string_view payload_;
  absl::Status status_;
};

}  // namespace

// ---- RocksDbResources -------------------------------------------------------

struct RocksDbResources::Impl {
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager;
};

absl::Status RocksDbResourcesOptions::Validate() const {
  if (memory_budget_bytes < kMiB) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RocksDbResourcesOptions.memory_budget_bytes must be at least 1 MiB, "
        "got ",
        memory_budget_bytes));
  }
  if (!(write_buffer_fraction > 0 && write_buffer_fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RocksDbResourcesOptions.write_buffer_fraction must be in (0, 1), "
        "got ",
        write_buffer_fraction));
  }
  return absl::OkStatus();
}

RocksDbResources::RocksDbResources(const RocksDbResourcesOptions& options,
                                   std::unique_ptr<Impl> impl)
    : options_(options), impl_(std::move(impl)) {}

RocksDbResources::~RocksDbResources() = default;

absl::StatusOr<std::shared_ptr<RocksDbResources>> RocksDbResources::Create(
    const RocksDbResourcesOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>();
  rocksdb::LRUCacheOptions cache_options;
  cache_options.capacity = options.memory_budget_bytes;
  cache_options.num_shard_bits = -1;  // RocksDB picks by capacity
  // Overshoot briefly rather than fail reads when pinned blocks fill it.
  cache_options.strict_capacity_limit = false;
  impl->cache = rocksdb::NewLRUCache(cache_options);
  if (impl->cache == nullptr) {
    return absl::InternalError("rocksdb: cannot create the block cache");
  }
  const size_t write_buffer_bytes =
      static_cast<size_t>(static_cast<double>(options.memory_budget_bytes) *
                          options.write_buffer_fraction);
  // Memtable memory is charged to the block cache, so the two together stay
  // within the one budget.
  impl->write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      write_buffer_bytes, impl->cache, /*allow_stall=*/false);
  return std::shared_ptr<RocksDbResources>(
      new RocksDbResources(options, std::move(impl)));
}

size_t RocksDbResources::block_cache_capacity() const {
  return impl_->cache->GetCapacity();
}

size_t RocksDbResources::block_cache_usage() const {
  return impl_->cache->GetUsage();
}

size_t RocksDbResources::write_buffer_usage() const {
  return impl_->write_buffer_manager->memory_usage();
}

size_t RocksDbResources::write_buffer_limit() const {
  return impl_->write_buffer_manager->buffer_size();
}

// ---- RocksDbStateBackend ----------------------------------------------------

struct RocksDbStateBackend::Impl {
  ~Impl() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db->Close().PermitUncheckedError();
  }

  rocksdb::ColumnFamilyHandle* cf(Column c) const {
    return columns[static_cast<int>(c)];
  }

  // Told the begin keys of a batch's range deletions while it is written.
  std::shared_ptr<internal::MemtableInsertHint> insert_hint;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default first
  std::array<rocksdb::ColumnFamilyHandle*, kNumColumns> columns{};
  std::optional<int64_t> ttl_ms;
  rocksdb::WriteOptions write_options;
  rocksdb::ReadOptions read_options;
  // Write's, reused: built afresh per batch, a batch of an operator's
  // evictions (hundreds of kilobytes) took new pages from the allocator
  // every time.
  rocksdb::WriteBatch write_batch;
  std::vector<uint32_t> order;
};

absl::Status RocksDbStateBackendOptions::Validate() const {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "RocksDbStateBackendOptions.path must be set");
  }
  if (resources == nullptr) {
    return absl::InvalidArgumentError(
        "RocksDbStateBackendOptions.resources must be set (create one "
        "RocksDbResources per process and share it)");
  }
  if (ttl.has_value() && *ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("RocksDbStateBackendOptions.ttl must be positive when "
                     "set, got ",
                     absl::FormatDuration(*ttl)));
  }
  if (clock == nullptr) {
    return absl::InvalidArgumentError(
        "RocksDbStateBackendOptions.clock must not be null");
  }
  return absl::OkStatus();
}

RocksDbStateBackend::RocksDbStateBackend(
    const RocksDbStateBackendOptions& options, std::unique_ptr<Impl> impl)
    : options_(options), impl_(std::move(impl)) {}

RocksDbStateBackend::~RocksDbStateBackend() = default;

namespace internal {

RocksDbOpenOptions MakeRocksDbOpenOptions(
    const RocksDbStateBackendOptions& options) {
  const RocksDbResources::Impl& shared = *options.resources->impl_;
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.write_buffer_manager = shared.write_buffer_manager;
  // The WAL is off, so flush every column family together: the files on
  // disk then always hold the same write prefix in all of them.
  db_options.atomic_flush = true;
  // Unflushed writes are not a restore point (checkpoints are), so closing
  // does not spend time flushing them.
  db_options.avoid_flush_during_shutdown = true;
  db_options.keep_log_file_num = 4;
  db_options.max_log_file_size = 16 * kMiB;
  // RocksDB's info log goes to stderr (errors only), not to a LOG
  // file in the state directory: on a full disk the file logger's write
  // fails, and RocksDB builds with assertions (Debian's) abort on its next
  // line, which would turn a clear kResourceExhausted into a crash.
  db_options.info_log = std::make_shared<StderrLogger>();

  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = shared.cache;
  // Index and filter blocks live in the shared cache too, so they count
  // against the budget; L0's stay pinned because every read touches them.
  table_options.cache_index_and_filter_blocks = true;
  table_options.cache_index_and_filter_blocks_with_high_priority = true;
  table_options.pin_l0_filter_and_index_blocks_in_cache = true;
  table_options.format_version = 5;

  rocksdb::ColumnFamilyOptions base;
  base.compaction_style = rocksdb::kCompactionStyleLevel;
  base.level_compaction_dynamic_level_bytes = true;
  base.compression = BestCompression();
  // The shared write-buffer manager caps the total; a single memtable is a
  // fraction of it so that one busy partition cannot take all of it.
  base.write_buffer_size =
      std::clamp(options.resources->write_buffer_limit() / 4, kMiB, 64 * kMiB);
  base.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  auto insert_hint = std::make_shared<MemtableInsertHint>();
  base.memtable_insert_with_hint_prefix_extractor = insert_hint;

  // "windows" takes point reads when windows fire: bloom filters save disk
  // reads for keys that are absent. Filters and indexes are partitioned (a
  // two-level index over 4 KiB partitions), so a read loads one small
  // partition through the cache instead of a whole file's filter, whose
  // size grows with the state; the top levels stay pinned for the life of
  // each table, and the partitions stay in the cache's high-priority pool.
  rocksdb::ColumnFamilyOptions windows = base;
  rocksdb::BlockBasedTableOptions windows_table = table_options;
  windows_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  windows_table.optimize_filters_for_memory = true;
  windows_table.index_type =
      rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
  windows_table.partition_filters = true;
  windows_table.metadata_block_size = 4096;
  windows_table.metadata_cache_options.top_level_index_pinning =
      rocksdb::PinningTier::kAll;
  windows.table_factory.reset(
      rocksdb::NewBlockBasedTableFactory(windows_table));

  std::optional<int64_t> ttl_ms;
  if (options.ttl.has_value()) {
    ttl_ms = ToMillis(*options.ttl);
    windows.compaction_filter_factory =
        std::make_shared<TtlCompactionFilterFactory>(*ttl_ms, options.clock);
  }
  windows.merge_operator = std::make_shared<WindowMergeOperator>(ttl_ms);

  internal::RocksDbOpenOptions open;
  open.db = db_options;
  open.insert_hint = std::move(insert_hint);
  open.column_families = {
      {rocksdb::kDefaultColumnFamilyName, base},
      {kColumnFamilies[static_cast<int>(Column::kWindows)], windows},
      {kColumnFamilies[static_cast<int>(Column::kTimers)], base},
      {kColumnFamilies[static_cast<int>(Column::kMeta)], base},
  };
  return open;
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<RocksDbStateBackend>>
RocksDbStateBackend::Create(const RocksDbStateBackendOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  // A database holding column families this weir does not know was written
  // by something else; refuse it rather than guess.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), options.path,
                                      &existing)
          .ok()) {
    for (const std::string& name : existing) {
      if (name != rocksdb::kDefaultColumnFamilyName &&
          std::find_if(kColumnFamilies.begin(), kColumnFamilies.end(),
                       [&name](const char* known) { return name == known; }) ==
              kColumnFamilies.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the database at ", options.path, " has a column family \"", name,
            "\" that weir's state layout does not have"));
      }
    }
  }

  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create state directory ", options.path, ": ", ec.message()));
  }

  auto impl = std::make_unique<Impl>();
  if (options.ttl.has_value()) impl->ttl_ms = ToMillis(*options.ttl);
  const internal::RocksDbOpenOptions open =
      internal::MakeRocksDbOpenOptions(options);
  rocksdb::DB* db = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(
      open.db, options.path, open.column_families, &impl->handles, &db);
  if (!s.ok()) return FromRocks(s, absl::StrCat("Open ", options.path));
  impl->db.reset(db);
  impl->insert_hint = open.insert_hint;
  for (int c = 0; c < kNumColumns; ++c) impl->columns[c] = impl->handles[c + 1];
  impl->write_options.disableWAL = true;
  return std::unique_ptr<RocksDbStateBackend>(
      new RocksDbStateBackend(options, std::move(impl)));
}

absl::Status RocksDbStateBackend::Get(Column column, std::string_view key,
                                      std::string* value) {
  if (!ValidColumn(column)) {
    return absl::InvalidArgumentError("Get: unknown column");
  }
  rocksdb::PinnableSlice stored;
  const rocksdb::Status s = impl_->db->Get(
      impl_->read_options, impl_->cf(column), ToSlice(key), &stored);
  if (s.IsNotFound()) return absl::NotFoundError("state key not found");
  if (!s.ok()) return FromRocks(s, "Get");
  // Only "windows" entries expire.
  const bool expires = column == Column::kWindows;
  return internal::DecodeLiveStateValue(
      View(stored), expires ? impl_->ttl_ms : std::nullopt,
      expires ? NowMs(options_.clock) : 0, value);
}

namespace {

// The order in which a batch's operations go into the memtable: the point
// operations between two range deletes sorted by column and key, the
// operations on one key in their order, range deletes where they are, so
// the batch applied in this order leaves what it leaves applied in its own.
// The memtable's skip list remembers where its last insert went: a key next
// to the one before costs a short search, a random one a search from the
// top of a list of a hundred thousand entries (an operator's eviction
// writes its keys in the order its clock hand finds them, random in key
// order).
void KeyOrder(const StateWriteBatch& batch, std::vector<uint32_t>* order) {
  const std::vector<StateWriteBatch::Op>& ops = batch.ops();
  order->resize(ops.size());
  for (uint32_t i = 0; i < order->size(); ++i) (*order)[i] = i;
  // Ties (one key) keep their order by index: a sort that allocates
  // nothing, where std::stable_sort takes a buffer per call.
  auto by_key = [&ops](uint32_t a, uint32_t b) {
    if (ops[a].column != ops[b].column) return ops[a].column < ops[b].column;
    const int c = ops[a].key.compare(ops[b].key);
    return c != 0 ? c < 0 : a < b;
  };
  auto begin = order->begin();
  for (auto it = order->begin(); it != order->end(); ++it) {
    if (ops[*it].kind != StateWriteBatch::Kind::kDeleteRange) continue;
    std::sort(begin, it, by_key);
    begin = it + 1;
  }
  std::sort(begin, order->end(), by_key);
}

}  // namespace

absl::Status RocksDbStateBackend::Write(const StateWriteBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  for (const StateWriteBatch::Op& op : batch.ops()) {
    WEIR_RETURN_IF_ERROR(internal::CheckStateOp(op));
  }
  // Every value of a batch gets the same header (one write time), so it is
  // encoded once and each value is put as header + payload, without a copy.
  std::string header;
  internal::EncodeStateValue(NowMs(options_.clock), "", &header);
  rocksdb::WriteBatch& write_batch = impl_->write_batch;
  write_batch.Clear();
  KeyOrder(batch, &impl_->order);
  for (uint32_t i : impl_->order) {
    const StateWriteBatch::Op& op = batch.ops()[i];
    rocksdb::Status s;
    const rocksdb::Slice key(op.key.data(), op.key.size());
    const rocksdb::Slice value[2] = {
        rocksdb::Slice(header),
        rocksdb::Slice(op.value.data(), op.value.size())};
    switch (op.kind) {
      case StateWriteBatch::Kind::kDelete:
        s = write_batch.Delete(impl_->cf(op.column), key);
        break;
      case StateWriteBatch::Kind::kDeleteRange:
        s = write_batch.DeleteRange(impl_->cf(op.column), key, value[1]);
        impl_->insert_hint->ExcludeWhileWriting(key);
        break;
      case StateWriteBatch::Kind::kMerge:
        s = write_batch.Merge(impl_->cf(op.column),
                              rocksdb::SliceParts(&key, 1),
                              rocksdb::SliceParts(value, 2));
        break;
      case StateWriteBatch::Kind::kPut:
        s = write_batch.Put(impl_->cf(op.column), rocksdb::SliceParts(&key, 1),
                            rocksdb::SliceParts(value, 2));
        break;
    }
    if (!s.ok()) {
      impl_->insert_hint->ClearExcluded();
      return FromRocks(s, "Write");
    }
  }
  absl::Status status =
      FromRocks(impl_->db->Write(impl_->write_options, &write_batch), "Write");
  impl_->insert_hint->ClearExcluded();
  // One large batch (a flush of the whole cache) must not keep its memory.
  constexpr size_t kKeptBatchBytes = 4 << 20;
  if (write_batch.GetDataSize() > kKeptBatchBytes) {
    write_batch = rocksdb::WriteBatch();
    impl_->order = std::vector<uint32_t>();
  }
  return status;
}

std::unique_ptr<StateIterator> RocksDbStateBackend::Scan(Column column,
                                                         std::string_view begin,
                                                         std::string_view end) {
  if (!ValidColumn(column) || (!end.empty() && end <= begin)) {
    return std::make_unique<internal::EmptyStateIterator>();
  }
  std::optional<int64_t> ttl_ms;
  if (column == Column::kWindows) ttl_ms = impl_->ttl_ms;
  return std::make_unique<RocksDbStateIterator>(impl_->db.get(),
                                                impl_->cf(column), begin, end,
                                                ttl_ms, NowMs(options_.clock));
}

absl::Status RocksDbStateBackend::Flush() {
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  flush_options.allow_write_stall = true;
  return FromRocks(impl_->db->Flush(flush_options, impl_->handles), "Flush");
}

absl::Status RocksDbStateBackend::Compact() {
  WEIR_RETURN_IF_ERROR(Flush());
  rocksdb::CompactRangeOptions compact_options;
  // Rewrite the last level too, so expired entries and tombstones go.
  compact_options.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (rocksdb::ColumnFamilyHandle* handle : impl_->handles) {
    WEIR_RETURN_IF_ERROR(FromRocks(
        impl_->db->CompactRange(compact_options, handle, nullptr, nullptr),
        absl::StrCat("CompactRange ", handle->GetName())));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStateBackend::CreateCheckpoint(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("CreateCheckpoint: empty directory");
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint directory ", dir, " already exists"));
  }
  // RocksDB builds the checkpoint in "<dir>.tmp", so no trailing '/'.
  fs::path target = fs::absolute(fs::path(dir), ec).lexically_normal();
  if (!ec && target.filename().empty()) target = target.parent_path();
  const fs::path parent = target.parent_path();
  if (!ec) fs::create_directories(parent, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the parent of ", dir, ": ", ec.message()));
  }
  WEIR_RETURN_IF_ERROR(Flush());
  rocksdb::Checkpoint* raw = nullptr;
  WEIR_RETURN_IF_ERROR(FromRocks(
      rocksdb::Checkpoint::Create(impl_->db.get(), &raw), "Checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush = 0: RocksDB flushes again before linking, which
  // costs nothing now that the memtables are empty, and is what keeps the
  // checkpoint complete with the WAL off.
  return FromRocks(checkpoint->CreateCheckpoint(target.string(),
                                                /*log_size_for_flush=*/0),
                   absl::StrCat("CreateCheckpoint ", dir));
}

StateStats RocksDbStateBackend::Stats() {
  StateStats stats;
  uint64_t v = 0;
  if (impl_->db->GetIntProperty(impl_->cf(Column::kWindows),
                                "rocksdb.estimate-num-keys", &v)) {
    stats.windows_keys = v;
  }
  if (impl_->db->GetIntProperty(impl_->cf(Column::kTimers),
                                "rocksdb.estimate-num-keys", &v)) {
    stats.timers_keys = v;
  }
  for (rocksdb::ColumnFamilyHandle* handle : impl_->handles) {
    if (impl_->db->GetIntProperty(handle, "rocksdb.total-sst-files-size", &v)) {
      stats.bytes += v;
    }
    if (impl_->db->GetIntProperty(handle, "rocksdb.cur-size-all-mem-tables",
                                  &v)) {
      stats.bytes += v;
    }
  }
  return stats;
}

absl::StatusOr<uint64_t> RocksDbStateBackend::GetIntProperty(
    Column column, std::string_view property) {
  if (!ValidColumn(column)) {
    return absl::InvalidArgumentError("GetIntProperty: unknown column");
  }
  uint64_t v = 0;
  if (!impl_->db->GetIntProperty(impl_->cf(column), ToSlice(property), &v)) {
    return absl::NotFoundError(absl::StrCat("rocksdb has no integer property ",
                                            std::string(property)));
  }
  return v;
}

absl::StatusOr<std::string> RocksDbStateBackend::GetProperty(
    Column column, std::string_view property) {
  if (!ValidColumn(column)) {
    return absl::InvalidArgumentError("GetProperty: unknown column");
  }
  std::string v;
  if (!impl_->db->GetProperty(impl_->cf(column), ToSlice(property), &v)) {
    return absl::NotFoundError(
        absl::StrCat("rocksdb has no property ", std::string(property)));
  }
  return v;
}

std::function<absl::StatusOr<std::unique_ptr<StateBackend>>(const std::string&)>
RocksDbBackendFactory(std::shared_ptr<RocksDbResources> resources,
                      std::optional<absl::Duration> ttl, Clock* clock) {
  return [resources = std::move(resources), ttl, clock](const std::string& path)
             -> absl::StatusOr<std::unique_ptr<StateBackend>> {
    RocksDbStateBackendOptions options;
    options.path = path;
    options.resources = resources;
    options.ttl = ttl;
    options.clock = clock;
    absl::StatusOr<std::unique_ptr<RocksDbStateBackend>> backend =
        RocksDbStateBackend::Create(options);
    if (!backend.ok()) return backend.status();
    return std::unique_ptr<StateBackend>(std::move(*backend));
  };
}

}  // namespace weir
