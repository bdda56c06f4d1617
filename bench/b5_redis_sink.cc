// B5 of BENCHMARKS.md: RedisSink idempotent upserts per second, pipelined,
// against `redis-benchmark -P 100 -t set` on the same redis-server in the
// same run. The benchmark starts its own server on a free loopback port.
//
//   b5_redis_sink [--n=N] [--entities=N] [--repeat=N]
//
// N updates (default 300,000) over `entities` entities (default 100,000)
// and four features, each with a newer version than the last, so every
// update applies (the compare-and-set reads, compares and writes). The
// reference is redis-benchmark's SET rate with 100 commands per pipeline,
// N requests. Best of `repeat` runs (default 2) for each. Prints:
//   B5 redis_sink upserts_per_s=... ref_set_per_s=... ratio=...
//   B5 redis_sink_scattered upserts_per_s=... ref_set_per_s=... ratio=...
//   B5 redis_sink_call_per_update upserts_per_s=... ref_set_per_s=... ratio=...
// The first is the default sink (100 updates per script call) on the
// operator's pattern, an entity's four features in a row; the second the
// same sink with a random entity per update; the third one script call per
// update (updates_per_call = 1), the design the batched calls replace.
//   B5 redis_hset_blind_pipelined upserts_per_s=... ref_set_per_s=... ratio=...
// is redis-benchmark's pipelined HSET of one feature's three fields to a
// random entity, without any version check: the price of the same writes
// without idempotence, for context.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tools/common/command_line.h"
#include "weir/redis/redis_sink.h"
#include "weir/testing/redis_server.h"
#include "weir/testing/subprocess.h"

ABSL_FLAG(int64_t, n, 300'000, "Feature updates to write.");
ABSL_FLAG(int64_t, entities, 100'000, "Distinct entities.");
ABSL_FLAG(int64_t, repeat, 2, "Runs; the best is reported.");

namespace {

// Requests per second from redis-benchmark -q output ("SET: 612745.12
// requests per second, p50=..."), or a negative number. `args` follow
// "-P 100 -n N -q": a test selection or a command.
double RunRedisBenchmark(int port, int64_t n,
                         const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      "redis-benchmark",    "-h", "127.0.0.1", "-p",
      std::to_string(port), "-P", "100",       "-n",
      std::to_string(n),    "-q"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = weir::testing::Subprocess::Start(argv);
  if (!child.ok()) {
    std::fprintf(stderr, "redis-benchmark: %s\n",
                 child.status().ToString().c_str());
    return -1;
  }
  auto out = (*child)->ReadAll(absl::Minutes(5));
  if (!out.ok()) {
    std::fprintf(stderr, "redis-benchmark: %s\n",
                 out.status().ToString().c_str());
    return -1;
  }
  // Progress lines end in '\r'; the result is the last "<name>: <number>
  // requests per second".
  const std::string& text = *out;
  const std::string marker = " requests per second";
  const size_t end = text.rfind(marker);
  if (end == std::string::npos) {
    std::fprintf(stderr, "redis-benchmark printed: %s\n", text.c_str());
    return -1;
  }
  const size_t begin = text.rfind(": ", end);
  double rate;
  if (begin == std::string::npos ||
      !absl::SimpleAtod(text.substr(begin + 2, end - begin - 2), &rate)) {
    std::fprintf(stderr, "redis-benchmark printed: %s\n", text.c_str());
    return -1;
  }
  return rate;
}

// `n` updates. Grouped (the operator's pattern: when an entity's windows
// fire, its features come out together): a random entity's four features
// in a row. Scattered: a random entity for every update, so that updates
// of one entity rarely share a script call.
std::vector<weir::FeatureUpdate> MakeUpdates(int64_t n, int64_t entities,
                                             bool grouped) {
  static const char* const kFeatures[] = {"txn_count_1m", "amount_sum_1h",
                                          "amount_avg_1d", "txn_count_5m"};
  std::vector<weir::FeatureUpdate> updates;
  updates.reserve(static_cast<size_t>(n));
  uint64_t x = 88172645463325252ull;  // xorshift64: a fixed, cheap sequence
  const auto next = [&x]() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  uint64_t entity = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!grouped || i % 4 == 0) {
      entity = next() % static_cast<uint64_t>(entities);
    }
    const uint64_t r = next();
    weir::FeatureUpdate u;
    u.key = absl::StrCat("u", entity);
    u.feature = kFeatures[i % 4];
    u.window = weir::Window{1767225600000 + 60000 * (i / 1000),
                            1767225660000 + 60000 * (i / 1000)};
    u.value = i % 4 == 1 ? weir::Value::Dec(static_cast<int64_t>(r % 100000), 2)
                         : weir::Value::Int64(static_cast<int64_t>(r % 1000));
    u.version_time = u.window.end;
    u.version_offset = i;
    updates.push_back(std::move(u));
  }
  return updates;
}

// Upserts per second through a RedisSink, Write in pipeline-sized chunks
// then Flush; a fresh key prefix per run so that every update applies.
double RunSink(int port, const std::vector<weir::FeatureUpdate>& updates,
               size_t updates_per_call, const std::string& name) {
  weir::RedisSinkOptions options;
  options.port = port;
  options.key_prefix = absl::StrCat("b5:", name, ":");
  options.updates_per_call = updates_per_call;
  auto sink = weir::RedisSink::Create(options);
  if (!sink.ok()) {
    std::fprintf(stderr, "RedisSink: %s\n", sink.status().ToString().c_str());
    return -1;
  }
  constexpr size_t kChunk = 1000;  // what one poll's results might be
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < updates.size(); i += kChunk) {
    const size_t n = std::min(kChunk, updates.size() - i);
    absl::Status s = (*sink)->Write(absl::MakeConstSpan(updates).subspan(i, n));
    if (!s.ok()) {
      std::fprintf(stderr, "Write: %s\n", s.ToString().c_str());
      return -1;
    }
  }
  absl::Status s = (*sink)->Flush();
  const absl::Duration elapsed = absl::Now() - start;
  if (!s.ok()) {
    std::fprintf(stderr, "Flush: %s\n", s.ToString().c_str());
    return -1;
  }
  if ((*sink)->stats().applied != static_cast<int64_t>(updates.size())) {
    std::fprintf(stderr, "applied %lld of %zu updates\n",
                 static_cast<long long>((*sink)->stats().applied),
                 updates.size());
    return -1;
  }
  return static_cast<double>(updates.size()) / absl::ToDoubleSeconds(elapsed);
}

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv, {.usage = "b5_redis_sink: see docs/benchmarks.md"});
  const int64_t n = absl::GetFlag(FLAGS_n);
  const int64_t entities = absl::GetFlag(FLAGS_entities);
  const int repeat =
      static_cast<int>(std::max<int64_t>(1, absl::GetFlag(FLAGS_repeat)));
  if (n < 1 || entities < 1) {
    std::fprintf(stderr, "--n and --entities must be >= 1\n");
    return 2;
  }

  weir::testing::RedisServerOptions server_options;
  server_options.extra_config = {"appendonly no"};
  auto server = weir::testing::RedisServer::Start(server_options);
  if (!server.ok()) {
    std::fprintf(stderr, "redis-server: %s\n",
                 server.status().ToString().c_str());
    return 1;
  }
  const int port = (*server)->port();
  const std::vector<weir::FeatureUpdate> grouped =
      MakeUpdates(n, entities, /*grouped=*/true);
  const std::vector<weir::FeatureUpdate> scattered =
      MakeUpdates(n, entities, /*grouped=*/false);

  // A blind (not idempotent) pipelined HSET of one feature's three fields
  // over as many entities: what the same writes cost without the
  // compare-and-set.
  const std::vector<std::string> hset = {"-r",
                                         std::to_string(entities),
                                         "HSET",
                                         "b5:blind:u__rand_int__",
                                         "txn_count_1m",
                                         "123",
                                         "txn_count_1m@v",
                                         "1767225660000:12345",
                                         "txn_count_1m@w",
                                         "1767225600000"};
  double ref = -1, blind = -1;
  double batched = -1, batched_scattered = -1, per_update = -1;
  for (int r = 0; r < repeat; ++r) {
    ref = std::max(ref, RunRedisBenchmark(port, n, {"-t", "set"}));
    blind = std::max(blind, RunRedisBenchmark(port, n, hset));
    batched = std::max(batched,
                       RunSink(port, grouped, 100, absl::StrCat("grouped", r)));
    batched_scattered =
        std::max(batched_scattered,
                 RunSink(port, scattered, 100, absl::StrCat("scattered", r)));
    per_update = std::max(per_update,
                          RunSink(port, grouped, 1, absl::StrCat("single", r)));
  }
  if (ref <= 0 || blind <= 0 || batched <= 0 || batched_scattered <= 0 ||
      per_update <= 0) {
    return 1;
  }
  const auto print = [ref](const char* name, double rate) {
    std::printf("B5 %s upserts_per_s=%.3g ref_set_per_s=%.3g ratio=%.2f\n",
                name, rate, ref, rate / ref);
  };
  print("redis_sink", batched);
  print("redis_sink_scattered", batched_scattered);
  print("redis_sink_call_per_update", per_update);
  print("redis_hset_blind_pipelined", blind);
  return 0;
}
