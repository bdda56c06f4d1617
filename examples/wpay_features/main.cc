// wpay-features: the fraud-feature computation of weir on a generated
// payment stream, start to finish in one process.
//
// It generates W-PAY events (JSON, with disorder, late and malformed
// records), decodes them with the schema-driven JSON decoder (bad records go
// to a dead-letter file with their bytes), computes per-user features over
// event-time windows on RocksDB state, and prints a summary and the
// features of the busiest users.
//
//   wpay-features [--events=N] [--users=N] [--seed=N]
//   [--backend=rocksdb|memory]
//                 [--dir=PATH]

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "../fraud_features/fraud_features.h"
#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tools/common/command_line.h"
#include "weir/dlq.h"
#include "weir/json/json_decoder.h"
#include "weir/keyed_window_operator.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/status_macros.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

ABSL_FLAG(int64_t, events, 500'000, "Payments to generate.");
ABSL_FLAG(int64_t, users, 100'000, "Distinct users.");
ABSL_FLAG(int64_t, seed, 1, "Random seed of the generator.");
ABSL_FLAG(std::string, backend, "rocksdb", "State backend: rocksdb or memory.");
ABSL_FLAG(std::string, dir, "",
          "Keep state and the dead-letter file here (default: a temporary "
          "directory).");

namespace {

struct Flags {
  int64_t events = 0;
  int64_t users = 0;
  int64_t seed = 0;
  std::string backend;
  std::string dir;
};

absl::StatusOr<Flags> FlagsFromCommandLine(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv,
      {.usage = "generates W-PAY payments, decodes them, computes per-user "
                "features over event-time windows and prints them.\n"
                "usage: wpay-features [--events=N] [--users=N] [--seed=N] "
                "[--backend=rocksdb|memory] [--dir=PATH]"});
  Flags f;
  f.events = absl::GetFlag(FLAGS_events);
  f.users = absl::GetFlag(FLAGS_users);
  f.seed = absl::GetFlag(FLAGS_seed);
  f.backend = absl::GetFlag(FLAGS_backend);
  f.dir = absl::GetFlag(FLAGS_dir);
  if (f.events <= 0) {
    return absl::InvalidArgumentError("--events: a positive integer");
  }
  if (f.users <= 0) {
    return absl::InvalidArgumentError("--users: a positive integer");
  }
  if (f.backend != "rocksdb" && f.backend != "memory") {
    return absl::InvalidArgumentError("--backend: rocksdb or memory");
  }
  return f;
}

weir::FeatureSpec Feature(std::string name, weir::AggregateKind kind,
                          weir::WindowSpec window, int field) {
  weir::FeatureSpec f;
  f.name = std::move(name);
  f.aggregate = kind;
  f.window = window;
  f.field = field;
  return f;
}

std::string Time(weir::EventTime t) {
  return absl::FormatTime("%Y-%m-%d %H:%M", weir::FromEventTime(t),
                          absl::UTCTimeZone());
}

absl::Status Run(const Flags& flags) {
  // Where state and dead letters go.
  std::optional<weir::testing::TempDir> tmp;
  std::string dir = flags.dir;
  if (dir.empty()) {
    WEIR_ASSIGN_OR_RETURN(tmp, weir::testing::TempDir::Create("wpay-features"));
    dir = tmp->path();
  }

  // Decoding: the W-PAY schema; failures go to the dead-letter file.
  WEIR_ASSIGN_OR_RETURN(auto decoder,
                        weir::JsonDecoder::Create(fraud::WPaySchema()));
  const std::string dlq_path = absl::StrCat(dir, "/dead_letters.jsonl");
  weir::FileDeadLetterQueueOptions dlq_options;
  dlq_options.path = dlq_path;
  WEIR_ASSIGN_OR_RETURN(auto dlq,
                        weir::FileDeadLetterQueue::Create(dlq_options));
  weir::DeadLetterRouterOptions router_options;
  router_options.pipeline_name = "wpay_features";
  router_options.pipeline_version = "1";
  WEIR_ASSIGN_OR_RETURN(
      auto router, weir::DeadLetterRouter::Create(router_options, dlq.get()));

  // State.
  std::unique_ptr<weir::StateBackend> backend;
  if (flags.backend == "rocksdb") {
    WEIR_ASSIGN_OR_RETURN(auto resources, weir::RocksDbResources::Create({}));
    weir::RocksDbStateBackendOptions o;
    o.path = absl::StrCat(dir, "/state");
    o.resources = resources;
    WEIR_ASSIGN_OR_RETURN(backend, weir::RocksDbStateBackend::Create(o));
  } else {
    WEIR_ASSIGN_OR_RETURN(backend, weir::MemoryStateBackend::Create({}));
  }

  // Features: F-FRAUD's windowed core.
  using weir::AggregateKind;
  const int amount = 1;  // schema.fields[1]
  weir::KeyedWindowOptions options;
  options.name = "wpay_features";
  options.features = {
      Feature("txn_count_1m", AggregateKind::kCount,
              weir::Tumbling(absl::Minutes(1)), -1),
      Feature("amount_sum_1h", AggregateKind::kDecimalSum,
              weir::Tumbling(absl::Hours(1)), amount),
      Feature("amount_max_1h", AggregateKind::kMax,
              weir::Tumbling(absl::Hours(1)), amount),
      Feature("amount_avg_1d", AggregateKind::kMean, weir::Daily(), amount),
  };
  options.max_out_of_orderness = absl::Seconds(5);
  options.allowed_lateness = absl::Minutes(1);
  WEIR_ASSIGN_OR_RETURN(
      auto op, weir::KeyedWindowOperator::Create(options, backend.get()));

  // The stream.
  weir::testing::WPayOptions w;
  w.num_events = flags.events;
  w.num_users = flags.users;
  w.seed = static_cast<uint64_t>(flags.seed);
  WEIR_ASSIGN_OR_RETURN(auto gen, weir::testing::WPayGenerator::Create(w));

  // What an idempotent store would hold: the newest update per
  // (user, feature).
  absl::flat_hash_map<std::pair<std::string, std::string>, weir::FeatureUpdate>
      store;
  absl::flat_hash_map<std::string, int64_t> per_user;
  int64_t updates = 0;
  weir::OperatorOutput out;
  auto drain = [&] {
    for (weir::FeatureUpdate& u : out.updates) {
      ++updates;
      auto key = std::make_pair(u.key, u.feature);
      auto it = store.find(key);
      if (it == store.end()) {
        store.emplace(std::move(key), std::move(u));
      } else if (u.NewerThan(it->second)) {
        it->second = std::move(u);
      }
    }
    out.updates.clear();
  };

  const absl::Time start = absl::Now();
  weir::testing::WPayEvent e;
  int64_t decoded = 0;
  int64_t late = 0;
  while (gen->Next(e)) {
    const weir::RawRecord raw = e.ToRawRecord("payments");
    WEIR_ASSIGN_OR_RETURN(std::optional<weir::Event> event,
                          weir::DecodeOrRoute(*decoder, raw, *router));
    if (!event.has_value()) continue;
    ++decoded;
    ++per_user[event->key];
    absl::Status s = op->Process(event->view(), &out);
    if (absl::IsInvalidArgument(s)) {
      WEIR_RETURN_IF_ERROR(router->Route(raw, s));
      continue;
    }
    WEIR_RETURN_IF_ERROR(s);
    late += static_cast<int64_t>(out.late.size());
    out.late.clear();
    drain();
  }
  WEIR_RETURN_IF_ERROR(op->AdvanceWatermark(weir::kMaxEventTime, &out));
  drain();
  WEIR_RETURN_IF_ERROR(router->Flush());
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);

  const weir::DeadLetterCounts dead = router->counts();
  const weir::OperatorStats stats = op->stats();
  std::printf(
      "weir wpay-features: %lld W-PAY payments (seed %lld, %lld users), "
      "%s state\n",
      static_cast<long long>(flags.events), static_cast<long long>(flags.seed),
      static_cast<long long>(flags.users), flags.backend.c_str());
  std::printf("  decoded          %lld\n", static_cast<long long>(decoded));
  std::printf(
      "  dead-lettered    %lld (deserialization %lld, schema_mismatch "
      "%lld, processing %lld) -> %s\n",
      static_cast<long long>(dead.deserialization + dead.schema_mismatch +
                             dead.processing_error),
      static_cast<long long>(dead.deserialization),
      static_cast<long long>(dead.schema_mismatch),
      static_cast<long long>(dead.processing_error), dlq_path.c_str());
  std::printf(
      "  late records     %lld (beyond 1 min allowed lateness; to the "
      "late output, not dropped)\n",
      static_cast<long long>(late));
  std::printf("  windows fired    %llu, feature updates %lld\n",
              static_cast<unsigned long long>(stats.windows_fired),
              static_cast<long long>(updates));
  std::printf(
      "  throughput       %.0f events/s (decode + features, one "
      "thread)\n",
      static_cast<double>(flags.events) / secs);

  // The busiest users' latest features.
  std::vector<std::pair<int64_t, std::string>> busiest;
  for (const auto& [user, n] : per_user) busiest.emplace_back(n, user);
  std::sort(busiest.rbegin(), busiest.rend());
  std::printf("\n  latest features of the busiest users:\n");
  for (size_t i = 0; i < std::min<size_t>(5, busiest.size()); ++i) {
    const std::string& user = busiest[i].second;
    std::printf("  %-8s", user.c_str());
    for (const weir::FeatureSpec& f : options.features) {
      auto it = store.find({user, f.name});
      if (it == store.end()) continue;
      std::string value = it->second.value.ToString();
      if (it->second.value.type() == weir::Value::Type::kDouble) {
        value = absl::StrFormat("%.2f", it->second.value.double_value());
      }
      std::printf("  %s[%s]=%s", f.name.c_str(),
                  Time(it->second.window.start).c_str(), value.c_str());
    }
    std::printf("\n");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<Flags> flags = FlagsFromCommandLine(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "wpay-features: %s\n",
                 flags.status().ToString().c_str());
    return 2;
  }
  absl::Status s = Run(*flags);
  if (!s.ok()) {
    std::fprintf(stderr, "wpay-features: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
