// B6 of BENCHMARKS.md: memory. N distinct users each add state to a daily
// window (nothing fires, so state only grows) on the RocksDB backend under
// one memory budget. Two references, measured in the same binary:
//   - the budget itself, against the peak RSS (VmHWM) of the weir phase;
//   - raw RocksDB: a rocksdb::WriteBatch loop putting the keys and value
//     sizes the operator writes (each user's window entry; a daily window
//     has no timer), in batches of the same size, users in the order they
//     arrive (the backend sorts each batch by key, the loop does not), into
//     a database opened with the backend's own options
//     (internal::MakeRocksDbOpenOptions) and the same budget: what the
//     backend would do with no operator in front.
//
//   b6_memory [--users=N] [--budget_mb=N] [--reference=0|1] [--stats=0|1]
//
// Prints:
//   B6 rocksdb users=... peak_rss_mb=... budget_mb=... ratio=...
//   B6 speed users=... events_per_s=... ref_events_per_s=... ratio=...
//   B6 cpu users=... cpu_ns_per_event=... ref_cpu_ns_per_event=... ratio=...
// Goals: peak ratio <= 1.3, speed ratio >= 0.5 (the full size is
// --users=10000000), and ns_per_event at 10 M within 2x of 1 M.
// --stats=1 also prints RocksDB's own statistics (stalls, compactions) of
// the weir phase to stderr.

#include <time.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_state.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "tools/common/command_line.h"
#include "weir/internal/state_format.h"
#include "weir/internal/state_keys.h"
#include "weir/keyed_window_operator.h"
#include "weir/rocksdb/internal/rocksdb_options.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/testing/subprocess.h"

ABSL_FLAG(int64_t, users, 2'000'000, "Users, one daily window each.");
ABSL_FLAG(int64_t, budget_mb, 256, "The memory budget in MB.");
ABSL_FLAG(bool, reference, true, "Also run the raw RocksDB reference.");
ABSL_FLAG(bool, stats, false, "Print RocksDB's statistics.");

namespace {

using ::weir::bench::PeakRssMb;

constexpr weir::EventTime kDayStart = 1767225600000;  // 2026-01-01 UTC

// CPU seconds of the whole process so far (every thread, RocksDB's
// background flushes and compactions included): less disturbed than wall
// time by other work on a shared machine.
double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

// The i-th user: each user once, in a scrambled order (an odd multiplier is
// a permutation modulo 2^64; the modulo keeps ids below 4 × users).
void UserKey(int64_t i, int64_t users, std::string* key) {
  const uint64_t x = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  key->assign("u");
  absl::StrAppend(key, x % static_cast<uint64_t>(users * 4));
}

// A database in a new temporary directory, with the RocksDB share of the
// budget: three quarters to RocksDB (block cache and memtables); the
// operator's write-back cache takes the last quarter.
struct Db {
  weir::testing::TempDir dir;
  weir::RocksDbStateBackendOptions options;
};

absl::StatusOr<Db> NewDb(const char* name, size_t budget) {
  absl::StatusOr<weir::testing::TempDir> dir =
      weir::testing::TempDir::Create(name);
  if (!dir.ok()) return dir.status();
  weir::RocksDbResourcesOptions ro;
  ro.memory_budget_bytes = budget * 3 / 4;
  auto resources = weir::RocksDbResources::Create(ro);
  if (!resources.ok()) return resources.status();
  weir::RocksDbStateBackendOptions options;
  options.path = dir->path() + "/db";
  options.resources = *resources;
  return Db{*std::move(dir), options};
}

struct WeirRun {
  double secs = 0;
  double cpu_secs = 0;
  double peak_rss_mb = 0;
  weir::OperatorStats stats;
  size_t value_bytes = 0;  // a stored window payload, without the header
  size_t batch_entries = 0;
};

bool RunWeir(int64_t users, size_t budget, bool print_stats, WeirRun* run) {
  absl::StatusOr<Db> db = NewDb("weir-b6", budget);
  if (!db.ok()) return false;
  auto backend = weir::RocksDbStateBackend::Create(db->options);
  if (!backend.ok()) return false;

  weir::KeyedWindowOptions options;
  options.name = "b6";
  weir::FeatureSpec count;
  count.name = "txn_count_1d";
  count.window = weir::Daily();
  weir::FeatureSpec sum = count;
  sum.name = "amount_sum_1d";
  sum.aggregate = weir::AggregateKind::kDecimalSum;
  sum.field = 0;
  options.features = {count, sum};
  constexpr size_t kEntryBytes = 256;  // an entry with its index slot
  options.cache_max_entries = budget / 4 / kEntryBytes;
  run->batch_entries = std::max<size_t>(1, options.cache_max_entries / 64);
  auto op = weir::KeyedWindowOperator::Create(options, backend->get());
  if (!op.ok()) {
    std::fprintf(stderr, "%s\n", op.status().ToString().c_str());
    return false;
  }

  weir::OperatorOutput out;
  const weir::Value amount[1] = {weir::Value::Dec(1234, 2)};
  std::string key;
  const absl::Time start = absl::Now();
  const double cpu_start = ProcessCpuSeconds();
  for (int64_t i = 0; i < users; ++i) {
    UserKey(i, users, &key);
    weir::Record r;
    r.key = key;
    r.event_time = kDayStart + i / 100;  // all in one day
    r.offset = i;
    r.values = amount;
    if (!(*op)->Process(r, &out).ok()) return false;
    out.Clear();
  }
  if (!(*op)->Flush().ok()) return false;
  run->secs = absl::ToDoubleSeconds(absl::Now() - start);
  run->cpu_secs = ProcessCpuSeconds() - cpu_start;
  run->peak_rss_mb = PeakRssMb();
  run->stats = (*op)->stats();
  std::unique_ptr<weir::StateIterator> it =
      (*backend)->Scan(weir::Column::kWindows, "", "");
  if (!it->Valid()) return false;
  run->value_bytes = it->value().size();
  it.reset();
  if (print_stats) {
    for (const char* property :
         {"rocksdb.estimate-num-keys", "rocksdb.num-files-at-level0",
          "rocksdb.estimate-pending-compaction-bytes",
          "rocksdb.total-sst-files-size", "rocksdb.block-cache-usage"}) {
      absl::StatusOr<uint64_t> v =
          (*backend)->GetIntProperty(weir::Column::kWindows, property);
      if (v.ok()) {
        std::fprintf(stderr, "windows %s=%llu\n", property,
                     static_cast<unsigned long long>(*v));
      }
    }
    absl::StatusOr<std::string> stats =
        (*backend)->GetProperty(weir::Column::kWindows, "rocksdb.stats");
    if (stats.ok()) std::fprintf(stderr, "%s\n", stats->c_str());
  }
  return true;
}

// The reference: what the backend writes for the weir phase, as Puts, with
// no operator in front. Returns false on an error.
bool RunReference(int64_t users, size_t budget, const WeirRun& weir_run,
                  double* secs, double* cpu_secs) {
  absl::StatusOr<Db> ref_db = NewDb("weir-b6-ref", budget);
  if (!ref_db.ok()) return false;
  const weir::internal::RocksDbOpenOptions open =
      weir::internal::MakeRocksDbOpenOptions(ref_db->options);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(open.db, ref_db->options.path, open.column_families,
                         &handles, &raw)
           .ok()) {
    return false;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* windows =
      handles[1 + static_cast<int>(weir::Column::kWindows)];
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = true;

  const std::string value(
      weir::internal::kStateHeaderSize + weir_run.value_bytes, 'v');
  std::string user, window_key;
  rocksdb::WriteBatch batch;
  size_t in_batch = 0;
  bool ok = true;
  const absl::Time start = absl::Now();
  const double cpu_start = ProcessCpuSeconds();
  for (int64_t i = 0; i < users && ok; ++i) {
    UserKey(i, users, &user);
    // u32 0xFFFFFFFF ‖ u16 group ‖ i64 start ‖ entity: a daily window is
    // of fixed length, stored in time order with no timer.
    weir::internal::FixedWindowKey(0, kDayStart, user, &window_key);
    ok = batch.Put(windows, window_key, value).ok();
    if (++in_batch == weir_run.batch_entries) {
      ok = ok && db->Write(write_options, &batch).ok();
      batch.Clear();
      in_batch = 0;
    }
  }
  if (in_batch > 0) ok = ok && db->Write(write_options, &batch).ok();
  *secs = absl::ToDoubleSeconds(absl::Now() - start);
  *cpu_secs = ProcessCpuSeconds() - cpu_start;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  db->Close().PermitUncheckedError();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(argc, argv,
                                {.usage = "b6_memory: see docs/benchmarks.md"});
  const int64_t users = absl::GetFlag(FLAGS_users);
  const int64_t budget_mb = absl::GetFlag(FLAGS_budget_mb);
  const bool reference = absl::GetFlag(FLAGS_reference);
  const bool print_stats = absl::GetFlag(FLAGS_stats);
  const size_t budget = static_cast<size_t>(budget_mb) << 20;

  WeirRun run;
  if (!RunWeir(users, budget, print_stats, &run)) return 1;
  const double events_per_s = static_cast<double>(users) / run.secs;
  std::printf(
      "B6 rocksdb users=%lld peak_rss_mb=%.0f budget_mb=%lld ratio=%.2f "
      "evictions=%llu state_reads=%llu state_writes=%llu\n",
      static_cast<long long>(users), run.peak_rss_mb,
      static_cast<long long>(budget_mb),
      run.peak_rss_mb / static_cast<double>(budget_mb),
      static_cast<unsigned long long>(run.stats.cache_evictions),
      static_cast<unsigned long long>(run.stats.state_reads),
      static_cast<unsigned long long>(run.stats.state_writes));
  if (!reference) {
    std::printf("B6 speed users=%lld events_per_s=%.3g ns_per_event=%.0f\n",
                static_cast<long long>(users), events_per_s,
                1e9 * run.secs / static_cast<double>(users));
    return 0;
  }
  double ref_secs, ref_cpu_secs;
  if (!RunReference(users, budget, run, &ref_secs, &ref_cpu_secs)) return 1;
  const double ref_per_s = static_cast<double>(users) / ref_secs;
  std::printf(
      "B6 speed users=%lld events_per_s=%.3g ref_events_per_s=%.3g "
      "ratio=%.2f ns_per_event=%.0f ref_ns_per_event=%.0f\n",
      static_cast<long long>(users), events_per_s, ref_per_s,
      events_per_s / ref_per_s, 1e9 * run.secs / static_cast<double>(users),
      1e9 * ref_secs / static_cast<double>(users));
  // The same in CPU time of the process (all threads).
  std::printf(
      "B6 cpu users=%lld cpu_ns_per_event=%.0f ref_cpu_ns_per_event=%.0f "
      "ratio=%.2f\n",
      static_cast<long long>(users),
      1e9 * run.cpu_secs / static_cast<double>(users),
      1e9 * ref_cpu_secs / static_cast<double>(users),
      ref_cpu_secs / run.cpu_secs);
  return 0;
}
