// B6 of BENCHMARKS.md: memory. N distinct users each add state to a daily
// window (nothing fires, so state only grows) on the RocksDB backend under
// one memory budget; the reference is the budget itself. Peak RSS (VmHWM)
// of the whole process is compared against it.
//
//   b6_memory [--users=N] [--budget_mb=N]
//
// Prints:
//   B6 rocksdb users=... peak_rss_mb=... budget_mb=... ratio=...
// Goal: ratio <= 1.3 (the full size is --users=10000000).

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_flags.h"
#include "weir/keyed_window_operator.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/testing/subprocess.h"

namespace {

using ::weir::bench::Flag;

// Peak resident set size of this process, in MiB (VmHWM).
double PeakRssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kb = 0;
      absl::SimpleAtoi(
          absl::StripAsciiWhitespace(line.substr(6, line.size() - 6 - 3)), &kb);
      return static_cast<double>(kb) / 1024.0;
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t users = Flag(argc, argv, "users", 2'000'000);
  const int64_t budget_mb = Flag(argc, argv, "budget_mb", 256);
  const size_t budget = static_cast<size_t>(budget_mb) << 20;

  auto tmp = weir::testing::TempDir::Create("weir-b6");
  // The budget is split: three quarters to RocksDB (block cache and
  // memtables), a quarter to the operator's write-back cache.
  weir::RocksDbResourcesOptions ro;
  ro.memory_budget_bytes = budget * 3 / 4;
  auto resources = weir::RocksDbResources::Create(ro);
  if (!tmp.ok() || !resources.ok()) return 1;
  weir::RocksDbStateBackendOptions bo;
  bo.path = tmp->path() + "/db";
  bo.resources = *resources;
  auto backend = weir::RocksDbStateBackend::Create(bo);
  if (!backend.ok()) return 1;

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
  auto op = weir::KeyedWindowOperator::Create(options, backend->get());
  if (!op.ok()) {
    std::fprintf(stderr, "%s\n", op.status().ToString().c_str());
    return 1;
  }

  weir::OperatorOutput out;
  const weir::Value amount[1] = {weir::Value::Dec(1234, 2)};
  std::string key;
  const absl::Time start = absl::Now();
  uint64_t x = 88172645463325252ull;
  for (int64_t i = 0; i < users; ++i) {
    // Each user once, in a scrambled order (an odd multiplier is a
    // permutation modulo 2^64; the modulo keeps ids below `users`).
    x = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    key = absl::StrCat("u", x % static_cast<uint64_t>(users * 4));
    weir::Record r;
    r.key = key;
    r.event_time = 1767225600000 + i / 100;  // all in one day
    r.offset = i;
    r.values = amount;
    if (!(*op)->Process(r, &out).ok()) return 1;
    out.Clear();
  }
  if (!(*op)->Flush().ok()) return 1;
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const double peak = PeakRssMb();
  std::printf(
      "B6 rocksdb users=%lld peak_rss_mb=%.0f budget_mb=%lld ratio=%.2f "
      "events_per_s=%.3g evictions=%llu\n",
      static_cast<long long>(users), peak, static_cast<long long>(budget_mb),
      peak / static_cast<double>(budget_mb), static_cast<double>(users) / secs,
      static_cast<unsigned long long>((*op)->stats().cache_evictions));
  return 0;
}
