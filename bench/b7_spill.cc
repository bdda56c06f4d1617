// B7 of BENCHMARKS.md: state larger than memory on the real feature set.
// F-FRAUD over W-PAY with many users (Zipf 1.0) on RocksDB under one memory
// budget, split by --cache_fraction: by default three quarters to the
// operator's write-back cache (its byte bound,
// KeyedWindowOptions::cache_max_bytes, sketches included) and a quarter to
// RocksDB (block cache and memtables), so the cache spills and windows
// read their spilled parts back when they fire. docs/benchmarks.md gives
// what other splits do.
//
//   b7_spill [--users=N] [--events=N] [--budget_mb=N] [--repeat=N]
//            [--check=0|1] [--check_events=N] [--memory=0|1] [--fire_step=N]
//            [--reference=0|1] [--cache_fraction=F]
//
// The full size is --users=10000000 --events=10000000. Events are generated
// while the operator runs (10 M events held in memory would dwarf the
// budget); the reference is generated the same way, so both pay the same.
// Phases, in this order so that the peak RSS is the spill phase's:
//   1. spill, --repeat times: events/s, peak RSS (VmHWM of the process, the
//      generator's Zipf table of 8 bytes per user included; harness_rss_mb
//      is the RSS before the first operator starts), state reads per event
//      (the operator's backend reads), and the state bytes per active user
//      (every window open at the end of the input, flushed; not timed).
//   2. reference, --repeat times: B2, the same features and event count on
//      B2's W-PAY (1 M users) with B2's cache (4 M entries: nothing spills)
//      and RocksDB's default resources.
//   3. check (--check=1, the default): on --check_events events of the same
//      stream, an operator whose cache spills (10,000 entries or 2 MiB,
//      whichever it reaches first) and fires in steps of 1,000 updates, and
//      one whose cache never spills and which fires all that is due at
//      once, must emit the same updates for every record, to the last bit
//      (every F-FRAUD feature is order-free). Exits 1 and says why
//      otherwise.
// Both timed phases fire in steps of --fire_step updates
// (KeyedWindowOptions::max_fire_updates), each step's updates dropped
// before the next, as a pipeline hands them to its sink.
//
// Prints:
//   B7 rocksdb users=... events_per_s=... ref_events_per_s=... ratio=...
//   B7 memory peak_rss_mb=... budget_mb=... ratio=... harness_rss_mb=...
//             generator_mb=... ratio_without_generator=...
//             cache_max_mb=... cache_peak_mb=... (the cache's own count)
//             allocator=glibc|jemalloc (the RSS depends on it:
//             docs/operations.md, "Memory")
//   B7 state reads_per_event=... bytes_per_active_user=... active_users=...
//   B7 check events=... updates=... evictions=... state_reads=... ok
// Goals: speed ratio >= 0.5, memory ratio <= 1.3. --memory=1 prints the
// RSS, heap, glibc's arenas and RocksDB's memory properties at the end of
// the first spill run's input to stderr.

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../examples/fraud_features/fraud_features.h"
#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench_state.h"
#include "tools/common/command_line.h"
#include "weir/keyed_window_operator.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(int64_t, users, 2'000'000, "W-PAY users (Zipf 1.0).");
ABSL_FLAG(int64_t, events, 2'000'000, "W-PAY events.");
ABSL_FLAG(int64_t, budget_mb, 256, "The memory budget in MB.");
ABSL_FLAG(double, cache_fraction, 0.75,
          "The operator's cache's share of the budget, in (0, 1); RocksDB "
          "has the rest.");
ABSL_FLAG(int64_t, repeat, 1, "Spill runs (the median is reported).");
ABSL_FLAG(bool, check, true,
          "Check the spilling run's output against one that never spills.");
ABSL_FLAG(bool, memory, false,
          "Print RSS, heap and RocksDB memory properties.");
ABSL_FLAG(int64_t, check_events, 300'000, "Events of the output check.");
ABSL_FLAG(bool, reference, true,
          "Run the B2 reference (0: the spill runs alone, e.g. to profile "
          "them; no ratio is printed).");
ABSL_FLAG(int64_t, fire_step, 16'384,
          "Most updates one call emits from firing "
          "(KeyedWindowOptions::max_fire_updates; 0: no bound).");

namespace {

// B2's cache: large enough that B2's input never spills.
constexpr size_t kB2CacheEntries = 4'000'000;
constexpr int64_t kB2Users = 1'000'000;

// F-FRAUD (examples/fraud_features/fraud_features.h), on the W-PAY schema
// layout (values[0] merchant, values[1] amount), as B2 runs it.
// The operator cache: at most `entries` entries and, unless 0, `bytes`
// bytes.
struct CacheBound {
  size_t entries = 0;
  size_t bytes = 0;
};

weir::KeyedWindowOptions FraudFeatures(CacheBound cache, size_t fire_step) {
  weir::KeyedWindowOptions o = fraud::FraudFeatures();
  o.name = "b7";
  o.cache_max_entries = cache.entries;
  o.cache_max_bytes = cache.bytes;
  o.max_fire_updates = fire_step;
  return o;
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "B7 FAILED: %s\n", what.c_str());
  std::exit(1);
}

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) Fail(absl::StrCat(what, ": ", s.ToString()));
}

// Fires the steps the last call left pending, as a pipeline does; `take`
// hands each step's updates on before the next.
template <typename Take>
void FinishSteps(weir::KeyedWindowOperator& op, weir::OperatorOutput& out,
                 Take take) {
  Check(weir::bench::FinishSteps(op, out, take), "firing a step");
}

std::unique_ptr<weir::testing::WPayGenerator> Generator(int64_t events,
                                                        int64_t users) {
  weir::testing::WPayOptions w;
  w.num_events = events;
  w.num_users = users;
  w.malformed_fraction = 0;  // B7 measures the operator, not the decoder
  w.build_json = false;
  auto gen = weir::testing::WPayGenerator::Create(w);
  Check(gen.status(), "W-PAY generator");
  return *std::move(gen);
}

struct RunResult {
  double events_per_s = 0;
  weir::OperatorStats stats;
  weir::bench::StateFootprint state;  // spill runs only
  double cache_peak_bytes = 0;        // sampled every 4096 events
};

// Runs F-FRAUD over `events` W-PAY events of `users` users, generated as it
// goes, on a new RocksDB backend in `dir`, and fires every window at the
// end. With `measure_state`, measures the state at the end of the input
// (flushed, outside the timed part) before the last firing, and with
// `print_memory` also prints where the memory is then.
RunResult Run(int64_t events, int64_t users, const std::string& dir,
              const weir::RocksDbResourcesOptions& resources_options,
              CacheBound cache, bool measure_state, bool print_memory = false) {
  auto gen = Generator(events, users);
  auto resources = weir::RocksDbResources::Create(resources_options);
  Check(resources.status(), "RocksDB resources");
  weir::RocksDbStateBackendOptions ro;
  ro.path = dir;
  ro.resources = *resources;
  auto backend = weir::RocksDbStateBackend::Create(ro);
  Check(backend.status(), "RocksDB backend");
  auto op = weir::KeyedWindowOperator::Create(
      FraudFeatures(cache, absl::GetFlag(FLAGS_fire_step)), backend->get());
  Check(op.status(), "operator");

  RunResult result;
  weir::OperatorOutput out;
  auto drop = [](weir::OperatorOutput& o) { o.Clear(); };
  // After each firing step.
  double firing_cache_peak = 0;
  auto drop_firing = [&](weir::OperatorOutput& o) {
    o.Clear();
    firing_cache_peak = std::max(
        firing_cache_peak, static_cast<double>((*op)->stats().cache_bytes));
  };
  weir::testing::WPayEvent e;
  absl::Duration elapsed;
  absl::Time start = absl::Now();
  while (gen->Next(e)) {
    const weir::Event event = e.ToEvent();
    Check((*op)->Process(event.view(), &out), "Process");
    FinishSteps(**op, out, drop);
    if ((e.seq & 4095) == 0) {
      result.cache_peak_bytes =
          std::max(result.cache_peak_bytes,
                   static_cast<double>((*op)->stats().cache_bytes));
    }
  }
  if (measure_state) {
    elapsed += absl::Now() - start;
    if (print_memory) {
      // Where the memory is at the end of the input (stderr).
      std::fprintf(stderr,
                   "rss_mb=%.0f (anonymous %.0f, files %.0f) heap_mb=%.0f\n",
                   weir::bench::RssMb(), weir::bench::ProcStatusMb("RssAnon"),
                   weir::bench::ProcStatusMb("RssFile"),
                   weir::bench::HeapBytesInUse() / (1 << 20));
      for (const char* property :
           {"rocksdb.block-cache-usage", "rocksdb.block-cache-pinned-usage",
            "rocksdb.cur-size-all-mem-tables",
            "rocksdb.estimate-table-readers-mem", "rocksdb.num-snapshots",
            "rocksdb.num-running-compactions",
            "rocksdb.estimate-pending-compaction-bytes"}) {
        for (weir::Column column :
             {weir::Column::kWindows, weir::Column::kTimers}) {
          absl::StatusOr<uint64_t> v =
              (*backend)->GetIntProperty(column, property);
          if (v.ok()) {
            std::fprintf(stderr, "%s %s=%llu\n", weir::ColumnName(column),
                         property, static_cast<unsigned long long>(*v));
          }
        }
      }
    }
    // glibc's own account per arena: what it holds from the system
    // against what is in use (the difference is the allocator's).
    if (print_memory) malloc_stats();
    Check((*op)->Flush(), "Flush");
    result.state = weir::bench::MeasureState(backend->get());
    if (!result.state.ok) Fail("state scan failed");
    if (print_memory) {
      std::fprintf(stderr,
                   "after flush and scan: rss_mb=%.0f peak_rss_mb=%.0f\n",
                   weir::bench::RssMb(), weir::bench::PeakRssMb());
    }
    start = absl::Now();
  }
  // Fire the rest a minute at a time up to the end of the last daily window,
  // so that the updates of one step, not of all the state at once, are in
  // memory (a sink would take them step by step).
  const weir::EventTime end =
      weir::FloorTo((*op)->watermark(), 86'400'000) + 86'400'000 + 120'000;
  for (weir::EventTime t = (*op)->watermark(); t < end; t += 60'000) {
    Check((*op)->AdvanceWatermark(t, &out), "firing");
    FinishSteps(**op, out, drop_firing);
  }
  Check((*op)->AdvanceWatermark(weir::kMaxEventTime, &out), "final firing");
  FinishSteps(**op, out, drop_firing);
  elapsed += absl::Now() - start;
  if (print_memory) {
    std::fprintf(stderr,
                 "after firing: rss_mb=%.0f peak_rss_mb=%.0f heap_mb=%.0f "
                 "cache_peak_mb=%.0f (while firing)\n",
                 weir::bench::RssMb(), weir::bench::PeakRssMb(),
                 weir::bench::HeapBytesInUse() / (1 << 20),
                 firing_cache_peak / 1048576.0);
  }
  result.events_per_s =
      static_cast<double>(events) / absl::ToDoubleSeconds(elapsed);
  result.stats = (*op)->stats();
  return result;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---------------------------------------------------------------------------
// The check: a spilling and a non-spilling operator, record by record.

using UpdateKey = std::tuple<std::string, std::string, weir::EventTime,
                             weir::EventTime, int64_t>;
UpdateKey KeyOf(const weir::FeatureUpdate& u) {
  return {u.key, u.feature, u.window.start, u.version_time, u.version_offset};
}

void SortUpdates(std::vector<weir::FeatureUpdate>* updates) {
  std::sort(updates->begin(), updates->end(),
            [](const auto& a, const auto& b) { return KeyOf(a) < KeyOf(b); });
}

// Feeds `events` events of `users` users to both operators and compares
// what each record makes them emit; exits 1 on any difference, to the last
// bit: every F-FRAUD feature is order-free, spilled or not.
void RunCheck(int64_t events, int64_t users, const std::string& dir) {
  auto gen = Generator(events, users);
  auto resources = weir::RocksDbResources::Create({});
  Check(resources.status(), "RocksDB resources");
  std::unique_ptr<weir::StateBackend> backends[2];
  std::unique_ptr<weir::KeyedWindowOperator> ops[2];
  // The spilling cache reaches either bound, by turns, and fires in steps
  // of at most 1,000 updates; the other fires every call's due windows at
  // once.
  const CacheBound caches[2] = {{10'000, 2 << 20}, {1'000'000'000, 0}};
  const size_t fire_steps[2] = {1'000, 0};
  for (int i = 0; i < 2; ++i) {
    weir::RocksDbStateBackendOptions ro;
    ro.path = absl::StrCat(dir, "/check", i);
    ro.resources = *resources;
    auto backend = weir::RocksDbStateBackend::Create(ro);
    Check(backend.status(), "RocksDB backend");
    backends[i] = *std::move(backend);
    auto op = weir::KeyedWindowOperator::Create(
        FraudFeatures(caches[i], fire_steps[i]), backends[i].get());
    Check(op.status(), "operator");
    ops[i] = *std::move(op);
  }
  uint64_t updates = 0;
  weir::OperatorOutput out[2];
  auto compare = [&](int64_t seq) {
    SortUpdates(&out[0].updates);
    SortUpdates(&out[1].updates);
    if (out[0].updates.size() != out[1].updates.size()) {
      Fail(absl::StrCat("event ", seq, ": ", out[0].updates.size(),
                        " updates with spills, ", out[1].updates.size(),
                        " without"));
    }
    for (size_t j = 0; j < out[0].updates.size(); ++j) {
      const weir::FeatureUpdate& a = out[0].updates[j];
      const weir::FeatureUpdate& b = out[1].updates[j];
      if (KeyOf(a) != KeyOf(b) || a.window != b.window) {
        Fail(absl::StrCat("event ", seq, ": update for ", a.key, " ", a.feature,
                          " where the run without spills has ", b.key, " ",
                          b.feature));
      }
      if (a.value != b.value) {
        Fail(absl::StrCat("event ", seq, ": ", a.key, " ", a.feature,
                          " window ", a.window.start, " is ",
                          a.value.ToString(), " with spills and ",
                          b.value.ToString(), " without"));
      }
    }
    updates += out[0].updates.size();
    out[0].Clear();
    out[1].Clear();
  };
  weir::testing::WPayEvent e;
  while (gen->Next(e)) {
    const weir::Event event = e.ToEvent();
    for (int i = 0; i < 2; ++i) {
      const absl::Status s = ops[i]->Process(event.view(), &out[i]);
      Check(s, "Process");
      out[i].late.clear();
      FinishSteps(*ops[i], out[i], [](weir::OperatorOutput&) {});
    }
    compare(e.seq);
  }
  for (int i = 0; i < 2; ++i) {
    Check(ops[i]->AdvanceWatermark(weir::kMaxEventTime, &out[i]),
          "final firing");
    FinishSteps(*ops[i], out[i], [](weir::OperatorOutput&) {});
  }
  compare(events);
  const uint64_t evictions = ops[0]->stats().cache_evictions;
  if (evictions == 0) Fail("the check's small cache never spilled");
  if (ops[1]->stats().cache_evictions != 0) Fail("the large cache spilled");
  std::printf(
      "B7 check events=%lld updates=%llu evictions=%llu "
      "state_reads=%llu ok\n",
      static_cast<long long>(events), static_cast<unsigned long long>(updates),
      static_cast<unsigned long long>(evictions),
      static_cast<unsigned long long>(ops[0]->stats().state_reads));
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(argc, argv,
                                {.usage = "b7_spill: see docs/benchmarks.md"});
  const int64_t users = absl::GetFlag(FLAGS_users);
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t budget_mb = absl::GetFlag(FLAGS_budget_mb);
  const int repeat = static_cast<int>(absl::GetFlag(FLAGS_repeat));
  const bool check = absl::GetFlag(FLAGS_check);
  const bool print_memory = absl::GetFlag(FLAGS_memory);
  const int64_t check_events = absl::GetFlag(FLAGS_check_events);
  const size_t budget = static_cast<size_t>(budget_mb) << 20;

  auto tmp = weir::testing::TempDir::Create("weir-b7");
  Check(tmp.status(), "temporary directory");

  // 1. Spill runs.
  weir::RocksDbResourcesOptions spill_resources;
  const double cache_fraction = absl::GetFlag(FLAGS_cache_fraction);
  if (!(cache_fraction > 0 && cache_fraction < 1)) {
    Fail("--cache_fraction must be in (0, 1)");
  }
  const size_t cache_bytes =
      static_cast<size_t>(static_cast<double>(budget) * cache_fraction);
  spill_resources.memory_budget_bytes = budget - cache_bytes;
  const CacheBound spill_cache{size_t{1} << 31, cache_bytes};
  const double harness_rss_mb = weir::bench::RssMb();
  std::vector<double> spill_rates;
  RunResult spill;
  for (int r = 0; r < repeat; ++r) {
    spill = Run(events, users, absl::StrCat(tmp->path(), "/spill", r),
                spill_resources, spill_cache, /*measure_state=*/true,
                print_memory && r == 0);
    spill_rates.push_back(spill.events_per_s);
  }
  const double peak_rss_mb = weir::bench::PeakRssMb();

  // 2. B2, the reference.
  std::vector<double> ref_rates;
  for (int r = 0; r < repeat && absl::GetFlag(FLAGS_reference); ++r) {
    const RunResult ref =
        Run(events, kB2Users, absl::StrCat(tmp->path(), "/b2_", r), {},
            CacheBound{kB2CacheEntries, 0}, /*measure_state=*/false);
    if (ref.stats.cache_evictions != 0) Fail("the B2 reference spilled");
    ref_rates.push_back(ref.events_per_s);
  }

  const double x = Median(spill_rates);
  const double ref = ref_rates.empty() ? NAN : Median(ref_rates);
  std::printf(
      "B7 rocksdb users=%lld events=%lld events_per_s=%.3g "
      "ref_events_per_s=%.3g ratio=%.2f\n",
      static_cast<long long>(users), static_cast<long long>(events), x, ref,
      x / ref);
  // The generator's Zipf table (a double per 16 users and a 256 KiB guide)
  // is the bench's input, not weir's state: the second ratio leaves it out.
  const double generator_mb =
      (static_cast<double>(users) / 2 + (256 << 10)) / (1 << 20);
  std::printf(
      "B7 memory peak_rss_mb=%.0f budget_mb=%lld ratio=%.2f "
      "harness_rss_mb=%.0f generator_mb=%.0f ratio_without_generator=%.2f "
      "cache_max_mb=%zu cache_peak_mb=%.0f allocator=%s\n",
      peak_rss_mb, static_cast<long long>(budget_mb),
      peak_rss_mb / static_cast<double>(budget_mb), harness_rss_mb,
      generator_mb,
      (peak_rss_mb - generator_mb) / static_cast<double>(budget_mb),
      spill_cache.bytes >> 20, spill.cache_peak_bytes / 1048576.0,
      weir::bench::AllocatorName());
  std::printf(
      "B7 state reads_per_event=%.3f writes_per_event=%.3f evictions=%llu "
      "bytes_per_active_user=%.0f active_users=%llu state_mb=%.0f\n",
      static_cast<double>(spill.stats.state_reads) /
          static_cast<double>(events),
      static_cast<double>(spill.stats.state_writes) /
          static_cast<double>(events),
      static_cast<unsigned long long>(spill.stats.cache_evictions),
      spill.state.BytesPerEntity(),
      static_cast<unsigned long long>(spill.state.entities),
      static_cast<double>(spill.state.window_bytes + spill.state.timer_bytes) /
          (1 << 20));

  // 3. The check.
  if (check) {
    RunCheck(std::min(events, check_events), users, tmp->path());
  }
  return 0;
}
