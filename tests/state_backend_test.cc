// One conformance suite for every StateBackend (memory and RocksDB), plus
// the checks only one of them has (RocksDB's shared memory budget, the
// memory backend's checkpoint file).

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "weir/internal/accumulators.h"
#include "weir/internal/coding.h"
#include "weir/internal/crc32c.h"
#include "weir/internal/state_format.h"
#include "weir/internal/window_state.h"
#include "weir/pipeline.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/state.h"
#include "weir/testing/fault_env.h"
#include "weir/testing/subprocess.h"
#include "weir/time.h"

namespace weir {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

using Entries = std::vector<std::pair<std::string, std::string>>;

const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

#define ASSERT_OK(expr)                                       \
  do {                                                        \
    const auto& weir_result_ = (expr);                        \
    ASSERT_TRUE(weir_result_.ok()) << StatusOf(weir_result_); \
  } while (false)
#define EXPECT_OK(expr)                                       \
  do {                                                        \
    const auto& weir_result_ = (expr);                        \
    EXPECT_TRUE(weir_result_.ok()) << StatusOf(weir_result_); \
  } while (false)

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Every live entry of `column`, in scan order.
absl::StatusOr<Entries> Dump(StateBackend& backend, Column column,
                             std::string_view begin = "",
                             std::string_view end = "") {
  Entries out;
  std::unique_ptr<StateIterator> it = backend.Scan(column, begin, end);
  for (; it->Valid(); it->Next()) {
    out.emplace_back(std::string(it->key()), std::string(it->value()));
  }
  if (!it->status().ok()) return it->status();
  return out;
}

std::vector<std::string> Keys(const Entries& entries) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : entries) keys.push_back(k);
  return keys;
}

// All three columns.
absl::StatusOr<std::vector<Entries>> DumpAll(StateBackend& backend) {
  std::vector<Entries> all;
  for (Column c : {Column::kWindows, Column::kTimers, Column::kMeta}) {
    absl::StatusOr<Entries> entries = Dump(backend, c);
    if (!entries.ok()) return entries.status();
    all.push_back(*std::move(entries));
  }
  return all;
}

absl::Status Put(StateBackend& backend, Column column, std::string_view key,
                 std::string_view value) {
  StateWriteBatch batch;
  batch.Put(column, key, value);
  return backend.Write(batch);
}

absl::Status Delete(StateBackend& backend, Column column,
                    std::string_view key) {
  StateWriteBatch batch;
  batch.Delete(column, key);
  return backend.Write(batch);
}

absl::StatusOr<std::string> Get(StateBackend& backend, Column column,
                                std::string_view key) {
  std::string value;
  absl::Status status = backend.Get(column, key, &value);
  if (!status.ok()) return status;
  return value;
}

// A window payload (internal/window_state.h) of `n` records: their count
// and their max, `top`.
std::string Payload(int64_t end, int64_t max_offset, int64_t n, double top) {
  std::string out;
  out.push_back(static_cast<char>(internal::kWindowPayloadVersion));
  internal::PutFixed64(&out, static_cast<uint64_t>(end));
  internal::PutFixed64(&out, static_cast<uint64_t>(max_offset));
  internal::CountAcc count{n};
  internal::EncodeAcc(AggregateKind::kCount, reinterpret_cast<char*>(&count),
                      &out);
  alignas(8) char max[sizeof(internal::ExtremeAcc)];
  internal::AccInit(AggregateKind::kMax, max);
  internal::AggInput in;
  if (!internal::Prepare(AggregateKind::kMax, {}, Value::Double(top), &in)
           .ok()) {
    return "";
  }
  for (int64_t i = 0; i < n; ++i) {
    internal::Fold(AggregateKind::kMax, {}, max, in, 0, 0);
  }
  internal::EncodeAcc(AggregateKind::kMax, max, &out);
  return out;
}

enum class Kind { kMemory, kRocksDb };

void PrintTo(Kind kind, std::ostream* os) {
  *os << (kind == Kind::kMemory ? "memory" : "rocksdb");
}

std::string KindName(const ::testing::TestParamInfo<Kind>& info) {
  return info.param == Kind::kMemory ? "Memory" : "RocksDb";
}

class StateBackendTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("state");
    ASSERT_OK(dir);
    dir_.emplace(*std::move(dir));
    absl::StatusOr<std::shared_ptr<RocksDbResources>> resources =
        RocksDbResources::Create({.memory_budget_bytes = size_t{32} << 20});
    ASSERT_OK(resources);
    resources_ = *resources;
  }

  std::string Path(std::string_view name) const {
    return absl::StrCat(dir_->path(), "/", std::string(name));
  }

  // A new, empty backend of the kind under test.
  absl::StatusOr<std::unique_ptr<StateBackend>> Make(
      std::optional<absl::Duration> ttl = std::nullopt) {
    ttl_ = ttl;
    if (GetParam() == Kind::kMemory) {
      MemoryStateBackendOptions options;
      options.ttl = ttl;
      options.clock = &clock_;
      return MemoryStateBackend::Create(options);
    }
    return OpenRocksDb(Path(absl::StrCat("db", next_db_++)), resources_);
  }

  // A backend restored from the checkpoint in `dir`.
  absl::StatusOr<std::unique_ptr<StateBackend>> Restore(
      const std::string& dir,
      std::shared_ptr<RocksDbResources> resources = nullptr) {
    if (GetParam() == Kind::kMemory) {
      MemoryStateBackendOptions options;
      options.ttl = ttl_;
      options.clock = &clock_;
      return MemoryStateBackend::Open(options, dir);
    }
    return OpenRocksDb(dir, resources ? resources : resources_);
  }

  absl::StatusOr<std::unique_ptr<StateBackend>> OpenRocksDb(
      const std::string& path, std::shared_ptr<RocksDbResources> resources) {
    RocksDbStateBackendOptions options;
    options.path = path;
    options.resources = std::move(resources);
    options.ttl = ttl_;
    options.clock = &clock_;
    return RocksDbStateBackend::Create(options);
  }

  // Rewrites the format-version byte of the stored value of `key`, whose
  // payload is `payload` (unique in the store), through the backend's own
  // files, and returns the backend reopened on them.
  absl::StatusOr<std::unique_ptr<StateBackend>> SetStoredVersion(
      std::unique_ptr<StateBackend> backend, Column column,
      const std::string& key, const std::string& payload, uint8_t version) {
    if (GetParam() == Kind::kMemory) {
      // Patch the checkpoint file and fix its checksum, as an older or newer
      // weir would have written it.
      const std::string dir = Path("patched");
      if (absl::Status s = backend->CreateCheckpoint(dir); !s.ok()) return s;
      const std::string file = dir + "/state.mem";
      std::string data = ReadAll(file);
      const size_t at = data.find(payload);
      if (at == std::string::npos || at < internal::kStateHeaderSize ||
          data.find(payload, at + 1) != std::string::npos) {
        return absl::InternalError("payload not found once in state.mem");
      }
      data[at - internal::kStateHeaderSize] = static_cast<char>(version);
      data.resize(data.size() - 4);
      const uint32_t crc = internal::Crc32c(data);
      for (int i = 0; i < 4; ++i)
        data.push_back(static_cast<char>(crc >> (8 * i)));
      WriteAll(file, data);
      return Restore(dir);
    }
    // RocksDB: rewrite the raw value with RocksDB's own API.
    if (absl::Status s = backend->Flush(); !s.ok()) return s;
    const std::string path =
        static_cast<RocksDbStateBackend*>(backend.get())->path();
    backend.reset();
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, {}},
        {"windows", {}},
        {"timers", {}},
        {"meta", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s =
        rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &handles, &db);
    if (!s.ok()) return absl::InternalError(s.ToString());
    rocksdb::ColumnFamilyHandle* cf = handles[1 + static_cast<int>(column)];
    std::string raw;
    s = db->Get(rocksdb::ReadOptions(), cf, key, &raw);
    if (s.ok()) {
      raw[0] = static_cast<char>(version);
      s = db->Put(rocksdb::WriteOptions(), cf, key, raw);
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
    if (!s.ok()) return absl::InternalError(s.ToString());
    return OpenRocksDb(path, resources_);
  }

  ManualClock clock_{absl::FromUnixMillis(1767225600000)};
  std::optional<testing::TempDir> dir_;
  std::shared_ptr<RocksDbResources> resources_;
  std::optional<absl::Duration> ttl_;
  int next_db_ = 0;
};

TEST_P(StateBackendTest, PutGetDeleteAcrossColumns) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;

  EXPECT_EQ(Get(b, Column::kWindows, "k").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK(Put(b, Column::kWindows, "k", "w"));
  ASSERT_OK(Put(b, Column::kTimers, "k", "t"));
  ASSERT_OK(Put(b, Column::kMeta, "k", ""));
  EXPECT_EQ(*Get(b, Column::kWindows, "k"), "w");
  EXPECT_EQ(*Get(b, Column::kTimers, "k"), "t");
  EXPECT_EQ(*Get(b, Column::kMeta, "k"), "");  // empty values are values

  ASSERT_OK(Put(b, Column::kWindows, "k", std::string("\0\xff\0", 3)));
  EXPECT_EQ(*Get(b, Column::kWindows, "k"), std::string("\0\xff\0", 3));

  ASSERT_OK(Delete(b, Column::kWindows, "k"));
  EXPECT_EQ(Get(b, Column::kWindows, "k").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*Get(b, Column::kTimers, "k"), "t");  // other columns untouched
  ASSERT_OK(Delete(b, Column::kWindows, "never-written"));
  ASSERT_OK(b.Write(StateWriteBatch()));  // an empty batch is a no-op
}

TEST_P(StateBackendTest, BatchAppliesInOrderAndAtomically) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  ASSERT_OK(Put(b, Column::kWindows, "gone", "x"));

  StateWriteBatch batch;
  batch.Put(Column::kWindows, "a", "1");
  batch.Put(Column::kWindows, "a", "2");  // later op wins
  batch.Put(Column::kWindows, "b", "1");
  batch.Delete(Column::kWindows, "b");  // put then delete: absent
  batch.Delete(Column::kWindows, "c");
  batch.Put(Column::kWindows, "c", "3");  // delete then put: present
  batch.Delete(Column::kWindows, "gone");
  batch.Put(Column::kMeta, "offset", "42");
  ASSERT_OK(b.Write(batch));
  EXPECT_THAT(*Dump(b, Column::kWindows),
              ElementsAre(Pair("a", "2"), Pair("c", "3")));
  EXPECT_EQ(*Get(b, Column::kMeta, "offset"), "42");

  // Keys out of order, each key's ops interleaved with other keys' (the
  // RocksDB backend applies a batch in key order): each key ends as its
  // last op left it.
  StateWriteBatch shuffled;
  shuffled.Put(Column::kTimers, "z", "1");
  shuffled.Put(Column::kTimers, "a", "1");
  shuffled.Delete(Column::kTimers, "z");
  shuffled.Put(Column::kTimers, "m", "1");
  shuffled.Put(Column::kMeta, "z", "meta");
  shuffled.Put(Column::kTimers, "z", "2");
  shuffled.Delete(Column::kTimers, "a");
  shuffled.Put(Column::kTimers, "a", "3");
  shuffled.Delete(Column::kTimers, "m");
  ASSERT_OK(b.Write(shuffled));
  EXPECT_THAT(*Dump(b, Column::kTimers),
              ElementsAre(Pair("a", "3"), Pair("z", "2")));
  EXPECT_EQ(*Get(b, Column::kMeta, "z"), "meta");

  // A batch with a bad op changes nothing, not even its valid ops.
  StateWriteBatch bad;
  bad.Put(Column::kWindows, "a", "changed");
  bad.Put(static_cast<Column>(7), "x", "y");
  EXPECT_EQ(b.Write(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*Get(b, Column::kWindows, "a"), "2");
  // The next batch applies its own ops only (the RocksDB backend reuses
  // its write batch).
  StateWriteBatch next;
  next.Put(Column::kWindows, "d", "4");
  ASSERT_OK(b.Write(next));
  EXPECT_THAT(*Dump(b, Column::kWindows),
              ElementsAre(Pair("a", "2"), Pair("c", "3"), Pair("d", "4")));
}

TEST_P(StateBackendTest, DeleteRangeRemovesExactlyItsHalfOpenRange) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  for (const char* k : {"a", "b", "b1", "c", "d"}) {
    ASSERT_OK(Put(b, Column::kTimers, k, k));
  }
  ASSERT_OK(Put(b, Column::kMeta, "b", "m"));

  StateWriteBatch batch;
  batch.Put(Column::kTimers, "bb", "x");  // in the range, before it: gone
  batch.DeleteRange(Column::kTimers, "b", "c");
  batch.Put(Column::kTimers, "b2", "y");  // after it: stays
  ASSERT_OK(b.Write(batch));
  EXPECT_THAT(*Dump(b, Column::kTimers),
              ElementsAre(Pair("a", "a"), Pair("b2", "y"), Pair("c", "c"),
                          Pair("d", "d")));
  EXPECT_EQ(*Get(b, Column::kMeta, "b"), "m");  // other columns untouched
  EXPECT_EQ(Get(b, Column::kTimers, "b1").status().code(),
            absl::StatusCode::kNotFound);

  // After a flush too (RocksDB: the tombstone in a table file).
  ASSERT_OK(b.Flush());
  EXPECT_THAT(*Dump(b, Column::kTimers),
              ElementsAre(Pair("a", "a"), Pair("b2", "y"), Pair("c", "c"),
                          Pair("d", "d")));

  // No empty range. A bad op fails the whole batch.
  for (const auto& [column, begin, end] :
       {std::tuple(Column::kWindows, "c", "a"),
        std::tuple(Column::kTimers, "c", "c"),
        std::tuple(Column::kTimers, "d", "a")}) {
    StateWriteBatch bad;
    bad.Delete(Column::kTimers, "a");
    bad.DeleteRange(column, begin, end);
    EXPECT_EQ(b.Write(bad).code(), absl::StatusCode::kInvalidArgument)
        << begin << " " << end;
  }
  EXPECT_EQ(*Get(b, Column::kTimers, "a"), "a");
}

// Batches of writes sorted by key, with range deletes among them, as an
// operator's evictions and cleanups write them: what the backend holds
// after each batch is what a map applying the same ops holds. (RocksDB
// inserts a batch's keys with an insert hint; its range deletions must not
// take that hint, which belongs to the other skip list: see
// rocksdb/internal/rocksdb_options.h.)
TEST_P(StateBackendTest, SortedBatchesWithRangeDeletesMatchAModel) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  std::map<std::string, std::string> model;
  std::mt19937_64 rng(12345);
  auto next = [&rng](uint64_t n) {
    return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
  };
  auto key = [](uint64_t i) { return absl::StrCat("k", 10000 + i); };
  for (int round = 0; round < 60; ++round) {
    StateWriteBatch batch;
    for (int i = 0; i < 400; ++i) {
      const std::string k = key(next(5000));
      if (next(10) == 0) {
        batch.Delete(Column::kTimers, k);
        model.erase(k);
      } else {
        const std::string v = absl::StrCat(round, ".", i);
        batch.Put(Column::kTimers, k, v);
        model[k] = v;
      }
      if (i % 150 == 149) {
        // Begins at a key that may be held, a few hundred keys wide.
        const uint64_t first = next(5000);
        const std::string begin = key(first);
        const std::string end = key(first + 1 + next(300));
        batch.DeleteRange(Column::kTimers, begin, end);
        model.erase(model.lower_bound(begin), model.lower_bound(end));
      }
    }
    ASSERT_OK(b.Write(batch));
    if (round % 20 == 19) {
      ASSERT_OK(b.Flush());  // the next rounds write into a new memtable
    }
  }
  absl::StatusOr<Entries> held = Dump(b, Column::kTimers);
  ASSERT_OK(held);
  EXPECT_EQ(*held, Entries(model.begin(), model.end()));
  EXPECT_GT(model.size(), 1000u);
}

TEST_P(StateBackendTest, BatchesCopyAndReuseTheirBytes) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  StateWriteBatch batch;
  // More bytes than one chunk of the batch, in values of every size.
  std::vector<std::pair<std::string, std::string>> expected;
  for (int i = 0; i < 300; ++i) {
    std::string key = absl::StrCat("k", 1000 + i);
    std::string value(static_cast<size_t>(i * 37 % 4000), 'a' + i % 26);
    batch.Put(Column::kMeta, key, value);
    expected.emplace_back(std::move(key), std::move(value));
  }
  // One value larger than a chunk.
  const std::string big(100 << 10, 'z');
  batch.Put(Column::kMeta, "z-big", big);
  expected.emplace_back("z-big", big);
  const StateWriteBatch copy = batch;  // a copy holds its own bytes
  batch.Clear();
  batch.Put(Column::kMeta, "k1000", "overwritten in the reused chunk");
  ASSERT_OK(b.Write(copy));
  EXPECT_THAT(*Dump(b, Column::kMeta), ElementsAreArray(expected));
  StateWriteBatch moved = std::move(batch);  // a move keeps the views valid
  ASSERT_OK(b.Write(moved));
  EXPECT_EQ(*Get(b, Column::kMeta, "k1000"), "overwritten in the reused chunk");
}

TEST_P(StateBackendTest, ScanRangesAreHalfOpenAndBytewiseOrdered) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  // Sorted as unsigned bytes; written out of order.
  const std::vector<std::string> sorted = {std::string("\0", 1),
                                           std::string("\0\0", 2),
                                           std::string("\0\xff", 2),
                                           std::string("\x01", 1),
                                           "a",
                                           std::string("a\0", 2),
                                           "ab",
                                           std::string("\x7f", 1),
                                           std::string("\x80", 1),
                                           std::string("\xff", 1),
                                           std::string("\xff\0", 2),
                                           std::string("\xff\xff", 2),
                                           std::string("\xff\xff\xff", 3)};
  StateWriteBatch batch;
  for (auto it = sorted.rbegin(); it != sorted.rend(); ++it) {
    batch.Put(Column::kTimers, *it, "v" + *it);
  }
  batch.Put(Column::kWindows, "a", "other column");
  batch.Put(Column::kMeta, "a", "other column");
  ASSERT_OK(b.Write(batch));

  absl::StatusOr<Entries> all = Dump(b, Column::kTimers);
  ASSERT_OK(all);
  EXPECT_THAT(Keys(*all), ElementsAreArray(sorted));
  for (const auto& [k, v] : *all) EXPECT_EQ(v, "v" + k);

  auto keys = [&](std::string_view begin, std::string_view end) {
    absl::StatusOr<Entries> entries = Dump(b, Column::kTimers, begin, end);
    EXPECT_TRUE(entries.ok()) << entries.status();
    return entries.ok() ? Keys(*entries) : std::vector<std::string>{};
  };
  // [begin, end): begin included, end excluded.
  EXPECT_THAT(keys(std::string("\0", 1), std::string("\x01", 1)),
              ElementsAre(std::string("\0", 1), std::string("\0\0", 2),
                          std::string("\0\xff", 2)));
  EXPECT_THAT(keys("a", "ab"), ElementsAre("a", std::string("a\0", 2)));
  EXPECT_THAT(keys(std::string("a\0", 2), std::string("a\x01", 2)),
              ElementsAre(std::string("a\0", 2)));
  // An empty end scans to the last key, 0xff keys included.
  EXPECT_THAT(
      keys(std::string("\xff", 1), ""),
      ElementsAre(std::string("\xff", 1), std::string("\xff\0", 2),
                  std::string("\xff\xff", 2), std::string("\xff\xff\xff", 3)));
  EXPECT_THAT(keys(std::string("\x7f", 1), std::string("\xff", 1)),
              ElementsAre(std::string("\x7f", 1), std::string("\x80", 1)));
  // Empty and inverted ranges.
  EXPECT_THAT(keys("a", "a"), IsEmpty());
  EXPECT_THAT(keys("b", "a"), IsEmpty());
  EXPECT_THAT(keys(std::string("\xff\xff\xff\xff", 4), ""), IsEmpty());
  EXPECT_THAT(*Dump(b, Column::kWindows),
              ElementsAre(Pair("a", "other column")));
}

TEST_P(StateBackendTest, WritesDuringAScanDoNotBreakIt) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  StateWriteBatch batch;
  for (char c = 'b'; c <= 'k'; ++c) batch.Put(Column::kTimers, {&c, 1}, "v");
  ASSERT_OK(b.Write(batch));

  // The firing loop: scan timers, deleting each as it goes. Inserts go
  // below the scan position, so neither backend's view may show them.
  std::vector<std::string> seen;
  std::unique_ptr<StateIterator> it = b.Scan(Column::kTimers, "b", "");
  for (; it->Valid(); it->Next()) {
    seen.emplace_back(it->key());
    StateWriteBatch step;
    step.Delete(Column::kTimers, it->key());
    step.Put(Column::kTimers, "a" + std::string(it->key()), "new");
    ASSERT_OK(b.Write(step));
    EXPECT_EQ(it->value(), "v");
  }
  ASSERT_OK(it->status());
  EXPECT_THAT(seen,
              ElementsAre("b", "c", "d", "e", "f", "g", "h", "i", "j", "k"));
  EXPECT_THAT(*Dump(b, Column::kTimers, "b", ""), IsEmpty());
}

TEST_P(StateBackendTest, CheckpointRestoresExactlyAndIsIsolated) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  StateWriteBatch batch;
  for (int i = 0; i < 200; ++i) {
    const std::string key = absl::StrCat(std::string("\0\xff", 2), i);
    batch.Put(Column::kWindows, key, std::string(i % 7, static_cast<char>(i)));
    batch.Put(Column::kTimers, absl::StrCat("t", i), "");
  }
  batch.Put(Column::kMeta, "watermark", "12345");
  ASSERT_OK(b.Write(batch));
  absl::StatusOr<std::vector<Entries>> before = DumpAll(b);
  ASSERT_OK(before);

  const std::string dir = Path("ckpt/1");  // parent created on demand
  ASSERT_OK(b.CreateCheckpoint(dir));
  EXPECT_EQ(b.CreateCheckpoint(dir).code(), absl::StatusCode::kAlreadyExists);

  // Writes after the checkpoint must not reach it.
  StateWriteBatch later;
  later.Put(Column::kWindows, "new", "x");
  later.Delete(Column::kTimers, "t0");
  later.Put(Column::kMeta, "watermark", "99999");
  ASSERT_OK(b.Write(later));
  ASSERT_OK(b.Flush());
  ASSERT_OK(b.Compact());

  absl::StatusOr<std::unique_ptr<StateBackend>> restored = Restore(dir);
  ASSERT_OK(restored);
  absl::StatusOr<std::vector<Entries>> after = DumpAll(**restored);
  ASSERT_OK(after);
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(*Get(**restored, Column::kMeta, "watermark"), "12345");
  EXPECT_EQ(restored->get()->Stats().timers_keys, 200u);

  // The live store kept its own writes.
  EXPECT_EQ(*Get(b, Column::kMeta, "watermark"), "99999");
  EXPECT_EQ(*Get(b, Column::kWindows, "new"), "x");
  EXPECT_EQ(Get(b, Column::kTimers, "t0").status().code(),
            absl::StatusCode::kNotFound);

  // A restored store is a working store: it takes writes and checkpoints.
  ASSERT_OK(Put(**restored, Column::kMeta, "watermark", "2"));
  ASSERT_OK(restored->get()->CreateCheckpoint(Path("ckpt/2")));
  absl::StatusOr<std::unique_ptr<StateBackend>> second =
      Restore(Path("ckpt/2"));
  ASSERT_OK(second);
  EXPECT_EQ(*Get(**second, Column::kMeta, "watermark"), "2");

  // A trailing '/' names the same directory.
  ASSERT_OK(b.CreateCheckpoint(Path("ckpt/3/")));
  absl::StatusOr<std::unique_ptr<StateBackend>> third = Restore(Path("ckpt/3"));
  ASSERT_OK(third);
  EXPECT_EQ(*Get(**third, Column::kMeta, "watermark"), "99999");
}

TEST_P(StateBackendTest, TtlHidesExpiredWindowsAndCompactionDropsThem) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make(absl::Hours(1));
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  StateWriteBatch batch;
  batch.Put(Column::kWindows, "a", "1");
  batch.Put(Column::kWindows, "b", "1");
  batch.Put(Column::kTimers, "t", "");
  batch.Put(Column::kMeta, "m", "meta");
  ASSERT_OK(b.Write(batch));

  clock_.Advance(absl::Minutes(30));
  StateWriteBatch refresh;
  refresh.Put(Column::kWindows, "b", "2");  // a write restarts the TTL
  refresh.Put(Column::kWindows, "c", "2");
  ASSERT_OK(b.Write(refresh));

  // "a" is 1 ms short of its TTL: still there.
  clock_.Advance(absl::Minutes(30) - absl::Milliseconds(1));
  EXPECT_EQ(*Get(b, Column::kWindows, "a"), "1");
  // At exactly the TTL it is gone from Get and Scan.
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Get(b, Column::kWindows, "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(*Dump(b, Column::kWindows),
              ElementsAre(Pair("b", "2"), Pair("c", "2")));
  EXPECT_THAT(*Dump(b, Column::kWindows, "a", "b"), IsEmpty());

  // Later everything in kWindows has expired, nothing else has.
  clock_.Advance(absl::Hours(5));
  EXPECT_THAT(*Dump(b, Column::kWindows), IsEmpty());
  EXPECT_EQ(Get(b, Column::kWindows, "b").status().code(),
            absl::StatusCode::kNotFound);
  const uint64_t keys_before = b.Stats().windows_keys;
  EXPECT_GE(keys_before, 3u);  // expired, but still stored

  ASSERT_OK(b.Compact());
  EXPECT_EQ(b.Stats().windows_keys, 0u);
  EXPECT_EQ(*Get(b, Column::kTimers, "t"), "");
  EXPECT_EQ(*Get(b, Column::kMeta, "m"), "meta");
  EXPECT_EQ(b.Stats().timers_keys, 1u);

  // An expired key written again is live again.
  ASSERT_OK(Put(b, Column::kWindows, "a", "3"));
  EXPECT_EQ(*Get(b, Column::kWindows, "a"), "3");
}

TEST_P(StateBackendTest, MergesCombineWindowPartsWhenRead) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  // Onto nothing, in separate writes.
  StateWriteBatch first;
  first.Merge(Column::kWindows, "a", Payload(100, 5, 2, 1.5));
  ASSERT_OK(b.Write(first));
  EXPECT_EQ(*Get(b, Column::kWindows, "a"), Payload(100, 5, 2, 1.5));
  StateWriteBatch second;
  second.Merge(Column::kWindows, "a", Payload(100, 9, 3, 0.5));
  ASSERT_OK(b.Write(second));
  EXPECT_EQ(*Get(b, Column::kWindows, "a"), Payload(100, 9, 5, 1.5));
  // Onto a put and a delete, and twice, within one batch.
  ASSERT_OK(Put(b, Column::kWindows, "b", Payload(100, 1, 1, 7)));
  ASSERT_OK(Put(b, Column::kWindows, "c", Payload(100, 1, 1, 7)));
  StateWriteBatch batch;
  batch.Merge(Column::kWindows, "b", Payload(100, 4, 1, 8));
  batch.Merge(Column::kWindows, "b", Payload(100, 2, 1, 6));
  batch.Delete(Column::kWindows, "c");
  batch.Merge(Column::kWindows, "c", Payload(100, 3, 4, 2));
  ASSERT_OK(b.Write(batch));
  const Entries merged = {{"a", Payload(100, 9, 5, 1.5)},
                          {"b", Payload(100, 4, 3, 8)},
                          {"c", Payload(100, 3, 4, 2)}};
  EXPECT_EQ(*Dump(b, Column::kWindows), merged);

  // Merges survive flush, compaction and checkpoints, and go on merging.
  ASSERT_OK(b.Flush());
  StateWriteBatch third;
  third.Merge(Column::kWindows, "a", Payload(100, 1, 10, 9));
  ASSERT_OK(b.Write(third));
  const std::string dir = Path("ckpt");
  ASSERT_OK(b.CreateCheckpoint(dir));
  absl::StatusOr<std::unique_ptr<StateBackend>> restored = Restore(dir);
  ASSERT_OK(restored);
  ASSERT_OK(restored->get()->Compact());
  EXPECT_EQ(*Get(**restored, Column::kWindows, "a"), Payload(100, 9, 15, 9));
  StateWriteBatch fourth;
  fourth.Merge(Column::kWindows, "b", Payload(100, 1, 1, 1));
  ASSERT_OK(restored->get()->Write(fourth));
  EXPECT_EQ(*Get(**restored, Column::kWindows, "b"), Payload(100, 4, 4, 8));

  // A range delete takes a window's parts with it: merges before it in the
  // batch, stored values and operands; a merge after it starts afresh.
  StateWriteBatch ranged;
  ranged.Merge(Column::kWindows, "b", Payload(100, 6, 1, 3));
  ranged.DeleteRange(Column::kWindows, "a", "c");
  ranged.Merge(Column::kWindows, "b", Payload(100, 7, 2, 1));
  ASSERT_OK(b.Write(ranged));
  EXPECT_EQ(Get(b, Column::kWindows, "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*Get(b, Column::kWindows, "b"), Payload(100, 7, 2, 1));
  EXPECT_EQ(*Get(b, Column::kWindows, "c"), Payload(100, 3, 4, 2));
  ASSERT_OK(b.Flush());
  ASSERT_OK(b.Compact());
  EXPECT_EQ(*Get(b, Column::kWindows, "b"), Payload(100, 7, 2, 1));

  // A merge outside "windows" is refused, and its batch changes nothing.
  StateWriteBatch bad;
  bad.Put(Column::kWindows, "d", Payload(100, 1, 1, 1));
  bad.Merge(Column::kTimers, "t", Payload(100, 1, 1, 1));
  EXPECT_EQ(b.Write(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get(b, Column::kWindows, "d").status().code(),
            absl::StatusCode::kNotFound);

  // Parts of different windows never read as a value.
  StateWriteBatch other_window;
  other_window.Merge(Column::kWindows, "e", Payload(100, 1, 1, 1));
  other_window.Merge(Column::kWindows, "e", Payload(200, 1, 1, 1));
  if (b.Write(other_window).ok()) {  // RocksDB merges on read
    EXPECT_FALSE(Get(b, Column::kWindows, "e").ok());
  }
}

TEST_P(StateBackendTest, MergeAfterTtlStartsAfresh) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make(absl::Hours(1));
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  auto merge = [&b](std::string_view key, const std::string& payload) {
    StateWriteBatch batch;
    batch.Merge(Column::kWindows, key, payload);
    return b.Write(batch);
  };
  ASSERT_OK(merge("a", Payload(100, 1, 1, 1)));
  ASSERT_OK(merge("b", Payload(100, 1, 1, 1)));
  clock_.Advance(absl::Minutes(30));
  ASSERT_OK(merge("b", Payload(100, 2, 2, 2)));  // within the TTL: merged
  clock_.Advance(absl::Minutes(30));
  ASSERT_OK(merge("a", Payload(100, 3, 4, 0)));  // "a" had expired
  EXPECT_EQ(*Get(b, Column::kWindows, "a"), Payload(100, 3, 4, 0));
  EXPECT_EQ(*Get(b, Column::kWindows, "b"), Payload(100, 2, 3, 2));
  // The merged value expires an hour after its newest part.
  clock_.Advance(absl::Minutes(30) - absl::Milliseconds(1));
  EXPECT_EQ(*Get(b, Column::kWindows, "b"), Payload(100, 2, 3, 2));
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Get(b, Column::kWindows, "b").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK(b.Compact());
  EXPECT_THAT(*Dump(b, Column::kWindows), ElementsAre(Pair("a", _)));
}

TEST_P(StateBackendTest, UnknownFormatVersionIsFailedPrecondition) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateWriteBatch batch;
  batch.Put(Column::kWindows, "a", "fine");
  batch.Put(Column::kWindows, "b", "written-by-weir-v2");
  batch.Put(Column::kWindows, "c", "fine too");
  ASSERT_OK(backend.value()->Write(batch));

  absl::StatusOr<std::unique_ptr<StateBackend>> reopened =
      SetStoredVersion(*std::move(backend), Column::kWindows, "b",
                       "written-by-weir-v2", internal::kStateFormatVersion + 1);
  ASSERT_OK(reopened);
  StateBackend& b = **reopened;

  absl::Status status = Get(b, Column::kWindows, "b").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat("format version ",
                                     internal::kStateFormatVersion + 1)));
  EXPECT_EQ(*Get(b, Column::kWindows, "a"), "fine");

  // A scan stops on it with the same error, after the good entry before it.
  std::unique_ptr<StateIterator> it = b.Scan(Column::kWindows, "", "");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "a");
  it->Next();
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().code(), absl::StatusCode::kFailedPrecondition);
  // Ranges that avoid it are fine.
  EXPECT_THAT(*Dump(b, Column::kWindows, "c", ""),
              ElementsAre(Pair("c", "fine too")));
}

TEST_P(StateBackendTest, CorruptCheckpointIsDataLoss) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateWriteBatch batch;
  for (int i = 0; i < 100; ++i) {
    batch.Put(Column::kWindows, absl::StrCat("key", i), std::string(50, 'v'));
  }
  ASSERT_OK(backend.value()->Write(batch));
  const std::string dir = Path("ckpt");
  ASSERT_OK(backend.value()->CreateCheckpoint(dir));
  backend->reset();

  // Flip one byte of the data: the memory checkpoint file, or the start of
  // an SST file (its first data block).
  std::string target;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name == "state.mem" || entry.path().extension() == ".sst") {
      target = entry.path().string();
    }
  }
  ASSERT_FALSE(target.empty());
  std::string data = ReadAll(target);
  ASSERT_GT(data.size(), 40u);
  data[20] ^= 0x40;
  WriteAll(target, data);

  // Fresh resources: no cached copy of the good block may hide the damage.
  absl::StatusOr<std::shared_ptr<RocksDbResources>> fresh =
      RocksDbResources::Create();
  ASSERT_OK(fresh);
  absl::StatusOr<std::unique_ptr<StateBackend>> restored = Restore(dir, *fresh);
  absl::Status status = restored.status();
  if (restored.ok()) status = Dump(**restored, Column::kWindows).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  if (GetParam() == Kind::kMemory) {
    EXPECT_THAT(status.message(), HasSubstr(target));
  }
}

TEST_P(StateBackendTest, StatsCountKeysAndBytes) {
  absl::StatusOr<std::unique_ptr<StateBackend>> backend = Make();
  ASSERT_OK(backend);
  StateBackend& b = **backend;
  EXPECT_EQ(b.Stats().windows_keys, 0u);
  StateWriteBatch batch;
  for (int i = 0; i < 50; ++i) {
    batch.Put(Column::kWindows, absl::StrCat("w", i), "0123456789");
  }
  for (int i = 0; i < 20; ++i)
    batch.Put(Column::kTimers, absl::StrCat("t", i), "");
  ASSERT_OK(b.Write(batch));
  ASSERT_OK(b.Flush());
  StateStats stats = b.Stats();
  EXPECT_EQ(stats.windows_keys, 50u);
  EXPECT_EQ(stats.timers_keys, 20u);
  EXPECT_GT(stats.bytes, 50u * 10);
}

INSTANTIATE_TEST_SUITE_P(Backends, StateBackendTest,
                         ::testing::Values(Kind::kMemory, Kind::kRocksDb),
                         KindName);

// ---- options ------------------------------------------------------------

TEST(StateOptionsTest, MemoryValidateNamesTheBadField) {
  MemoryStateBackendOptions options;
  EXPECT_OK(options.Validate());
  options.ttl = absl::ZeroDuration();
  EXPECT_THAT(options.Validate().message(), HasSubstr("ttl"));
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
  options.ttl = absl::Seconds(-1);
  EXPECT_THAT(options.Validate().message(), HasSubstr("ttl"));
  options.ttl = absl::Seconds(1);
  options.clock = nullptr;
  EXPECT_THAT(options.Validate().message(), HasSubstr("clock"));
  EXPECT_EQ(MemoryStateBackend::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StateOptionsTest, RocksDbValidateNamesTheBadField) {
  RocksDbResourcesOptions resources_options;
  EXPECT_OK(resources_options.Validate());
  resources_options.memory_budget_bytes = 1000;
  EXPECT_THAT(resources_options.Validate().message(),
              HasSubstr("memory_budget_bytes"));
  resources_options.memory_budget_bytes = size_t{64} << 20;
  for (double bad : {0.0, 1.0, -0.5, std::nan("")}) {
    resources_options.write_buffer_fraction = bad;
    EXPECT_THAT(resources_options.Validate().message(),
                HasSubstr("write_buffer_fraction"))
        << bad;
  }
  EXPECT_EQ(RocksDbResources::Create(resources_options).status().code(),
            absl::StatusCode::kInvalidArgument);

  RocksDbStateBackendOptions options;
  EXPECT_THAT(options.Validate().message(), HasSubstr("path"));
  options.path = "/nonexistent/never-created";
  EXPECT_THAT(options.Validate().message(), HasSubstr("resources"));
  options.resources = *RocksDbResources::Create();
  options.ttl = absl::ZeroDuration();
  EXPECT_THAT(options.Validate().message(), HasSubstr("ttl"));
  options.ttl.reset();
  options.clock = nullptr;
  EXPECT_THAT(options.Validate().message(), HasSubstr("clock"));
  EXPECT_EQ(RocksDbStateBackend::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.clock = Clock::Real();
  EXPECT_OK(options.Validate());
}

TEST(StateOptionsTest, ColumnNames) {
  EXPECT_STREQ(ColumnName(Column::kWindows), "windows");
  EXPECT_STREQ(ColumnName(Column::kTimers), "timers");
  EXPECT_STREQ(ColumnName(Column::kMeta), "meta");
}

// ---- RocksDB only -------------------------------------------------------

class RocksDbStateBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("rocks");
    ASSERT_OK(dir);
    dir_.emplace(*std::move(dir));
  }
  std::string Path(std::string_view name) const {
    return absl::StrCat(dir_->path(), "/", std::string(name));
  }
  std::optional<testing::TempDir> dir_;
};

TEST_F(RocksDbStateBackendTest, BackendsShareOneCacheAndWriteBufferBudget) {
  // An odd capacity, so the property below can only come from this cache.
  const size_t budget = (size_t{48} << 20) + 4096;
  absl::StatusOr<std::shared_ptr<RocksDbResources>> resources =
      RocksDbResources::Create({.memory_budget_bytes = budget});
  ASSERT_OK(resources);
  EXPECT_EQ((*resources)->block_cache_capacity(), budget);
  EXPECT_EQ((*resources)->write_buffer_limit(), budget / 2);

  RocksDbStateBackendOptions options;
  options.resources = *resources;
  options.path = Path("a");
  absl::StatusOr<std::unique_ptr<RocksDbStateBackend>> a =
      RocksDbStateBackend::Create(options);
  ASSERT_OK(a);
  options.path = Path("b");
  absl::StatusOr<std::unique_ptr<RocksDbStateBackend>> b =
      RocksDbStateBackend::Create(options);
  ASSERT_OK(b);
  EXPECT_EQ((*a)->resources().get(), resources->get());
  EXPECT_EQ((*b)->resources().get(), resources->get());
  for (auto* backend : {a->get(), b->get()}) {
    for (Column c : {Column::kWindows, Column::kTimers, Column::kMeta}) {
      absl::StatusOr<uint64_t> capacity =
          backend->GetIntProperty(c, "rocksdb.block-cache-capacity");
      ASSERT_OK(capacity);
      EXPECT_EQ(*capacity, budget) << ColumnName(c);
    }
  }

  // Memtables of both count in one write-buffer manager, charged to the
  // one cache.
  auto fill = [](StateBackend& backend) {
    StateWriteBatch batch;
    for (int i = 0; i < 2000; ++i) {
      batch.Put(Column::kWindows, absl::StrCat("key", i),
                std::string(500, 'x'));
    }
    return backend.Write(batch);
  };
  const size_t start = (*resources)->write_buffer_usage();
  ASSERT_OK(fill(**a));
  const size_t after_a = (*resources)->write_buffer_usage();
  ASSERT_OK(fill(**b));
  const size_t after_b = (*resources)->write_buffer_usage();
  EXPECT_GT(after_a, start + 500 * 1000);
  EXPECT_GT(after_b, after_a + 500 * 1000);
  EXPECT_GE((*resources)->block_cache_usage(), after_b - start);

  ASSERT_OK((*a)->Flush());
  ASSERT_OK((*b)->Flush());
  EXPECT_LT((*resources)->write_buffer_usage(), after_b);
  std::string value;
  ASSERT_OK((*a)->Get(Column::kWindows, "key7", &value));
  ASSERT_OK((*b)->Get(Column::kWindows, "key1999", &value));
  EXPECT_EQ(value, std::string(500, 'x'));
  EXPECT_GT((*resources)->block_cache_usage(), 0u);
}

TEST_F(RocksDbStateBackendTest, ReopensItsDirectoryAfterFlush) {
  absl::StatusOr<std::shared_ptr<RocksDbResources>> resources =
      RocksDbResources::Create();
  ASSERT_OK(resources);
  RocksDbStateBackendOptions options;
  options.resources = *resources;
  options.path = Path("nested/dir/db");
  {
    absl::StatusOr<std::unique_ptr<RocksDbStateBackend>> backend =
        RocksDbStateBackend::Create(options);
    ASSERT_OK(backend);
    ASSERT_OK(Put(**backend, Column::kMeta, "offset", "7"));
    ASSERT_OK((*backend)->Flush());
    // The directory is locked while open.
    EXPECT_FALSE(RocksDbStateBackend::Create(options).ok());
  }
  absl::StatusOr<std::unique_ptr<RocksDbStateBackend>> backend =
      RocksDbStateBackend::Create(options);
  ASSERT_OK(backend);
  EXPECT_EQ(*Get(**backend, Column::kMeta, "offset"), "7");
}

TEST_F(RocksDbStateBackendTest, RefusesADatabaseWithForeignColumnFamilies) {
  const std::string path = Path("foreign");
  {
    rocksdb::Options raw_options;
    raw_options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(raw_options, path, &db).ok());
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily({}, "not-weir", &cf).ok());
    db->DestroyColumnFamilyHandle(cf);
    db->Close();
    delete db;
  }
  RocksDbStateBackendOptions options;
  options.resources = *RocksDbResources::Create();
  options.path = path;
  absl::Status status = RocksDbStateBackend::Create(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not-weir"));
}

// ---- memory only --------------------------------------------------------

TEST(MemoryStateBackendTest, OpenOfAMissingCheckpointIsNotFound) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("mem");
  ASSERT_OK(dir);
  EXPECT_EQ(MemoryStateBackend::Open({}, dir->path() + "/none").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(MemoryStateBackendTest, TruncatedCheckpointIsDataLoss) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("mem");
  ASSERT_OK(dir);
  absl::StatusOr<std::unique_ptr<MemoryStateBackend>> backend =
      MemoryStateBackend::Create({});
  ASSERT_OK(backend);
  ASSERT_OK(Put(**backend, Column::kMeta, "k", "v"));
  const std::string ckpt = dir->path() + "/ckpt";
  ASSERT_OK((*backend)->CreateCheckpoint(ckpt));
  const std::string file = ckpt + "/state.mem";
  const std::string data = ReadAll(file);
  for (size_t size : {size_t{0}, size_t{3}, data.size() - 1}) {
    WriteAll(file, data.substr(0, size));
    absl::Status status = MemoryStateBackend::Open({}, ckpt).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << size;
    EXPECT_THAT(status.message(), HasSubstr("state.mem"));
  }
  WriteAll(file, data);
  absl::StatusOr<std::unique_ptr<MemoryStateBackend>> restored =
      MemoryStateBackend::Open({}, ckpt);
  ASSERT_OK(restored);
  EXPECT_EQ(*Get(**restored, Column::kMeta, "k"), "v");
}

// The factory a Pipeline uses: an empty path gives an empty backend, a path
// holding a checkpoint (a restored partition) that checkpoint's state.
TEST(MemoryStateBackendTest, FactoryOpensACheckpointOrStartsEmpty) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("mem");
  ASSERT_OK(dir);
  const StateBackendFactory factory = MemoryBackendFactory();
  absl::StatusOr<std::unique_ptr<StateBackend>> fresh =
      factory(dir->path() + "/live");
  ASSERT_OK(fresh);
  EXPECT_EQ(Get(**fresh, Column::kMeta, "k").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_OK(Put(**fresh, Column::kMeta, "k", "v"));
  const std::string ckpt = dir->path() + "/ckpt";
  ASSERT_OK((*fresh)->CreateCheckpoint(ckpt));
  absl::StatusOr<std::unique_ptr<StateBackend>> restored = factory(ckpt);
  ASSERT_OK(restored);
  EXPECT_EQ(*Get(**restored, Column::kMeta, "k"), "v");
  // A corrupt checkpoint is refused, not mistaken for an empty one.
  std::ofstream(ckpt + "/state.mem", std::ios::trunc) << "junk";
  EXPECT_EQ(factory(ckpt).status().code(), absl::StatusCode::kDataLoss);
}

// A disk that fills while the checkpoint file is written: the error names
// the file, neither the checkpoint nor its temporary directory is left
// behind, and once space returns the checkpoint is written and opens.
TEST(MemoryStateBackendTest, AFullDiskLeavesNoPartialCheckpoint) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("mem");
  ASSERT_OK(dir);
  testing::FaultInjectionEnv env;
  MemoryStateBackendOptions options;
  options.env = &env;
  absl::StatusOr<std::unique_ptr<MemoryStateBackend>> backend =
      MemoryStateBackend::Create(options);
  ASSERT_OK(backend);
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(Put(**backend, Column::kWindows, absl::StrCat("k", i), "v"));
  }
  const std::string ckpt = dir->path() + "/ckpt";
  env.Fail({.ops = testing::kWriteOps, .error = ENOSPC, .after_bytes = 100});
  const absl::Status full = (*backend)->CreateCheckpoint(ckpt);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_THAT(full.message(), HasSubstr(ckpt + ".tmp/state.mem"));
  EXPECT_FALSE(std::filesystem::exists(ckpt));
  EXPECT_FALSE(std::filesystem::exists(ckpt + ".tmp"));

  env.Clear();
  ASSERT_OK((*backend)->CreateCheckpoint(ckpt));
  absl::StatusOr<std::unique_ptr<MemoryStateBackend>> restored =
      MemoryStateBackend::Open(options, ckpt);
  ASSERT_OK(restored);
  EXPECT_EQ(*Get(**restored, Column::kWindows, "k99"), "v");
}

}  // namespace
}  // namespace weir
