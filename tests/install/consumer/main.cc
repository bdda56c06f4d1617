// Counts records per key in one-minute windows on the RocksDB backend of an
// installed weir, and prints the results. Built twice by the install test:
// against weir::weir_core + weir::weir_rocksdb only, and against weir::weir.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "weir/keyed_window_operator.h"
#include "weir/rocksdb/rocksdb_state_backend.h"

int main() {
  std::string dir =
      (std::filesystem::temp_directory_path() / "weir-consumer-XXXXXX")
          .string();
  if (mkdtemp(dir.data()) == nullptr) return 1;
  auto resources = weir::RocksDbResources::Create({});
  if (!resources.ok()) return 1;
  weir::RocksDbStateBackendOptions ro;
  ro.path = dir + "/state";
  ro.resources = *resources;
  auto backend = weir::RocksDbStateBackend::Create(ro);
  if (!backend.ok()) return 1;
  weir::KeyedWindowOptions options;
  options.name = "consumer";
  options.features = {{.name = "clicks_1m",
                       .aggregate = weir::AggregateKind::kCount,
                       .window = weir::Tumbling(absl::Minutes(1))}};
  auto op = weir::KeyedWindowOperator::Create(options, backend->get());
  if (!op.ok()) {
    std::fprintf(stderr, "%s\n", op.status().ToString().c_str());
    return 1;
  }
  weir::OperatorOutput out;
  for (int64_t t : {1000, 2000, 61000}) {
    weir::Record r;
    r.key = "u1";
    r.event_time = t;
    r.offset = t;
    if (!(*op)->Process(r, &out).ok()) return 1;
  }
  if (!(*op)->AdvanceWatermark(weir::kMaxEventTime, &out).ok()) return 1;
  for (const weir::FeatureUpdate& u : out.updates) {
    std::printf("%s %s %lld %s\n", u.key.c_str(), u.feature.c_str(),
                static_cast<long long>(u.window.start),
                u.value.ToString().c_str());
  }
  backend->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
