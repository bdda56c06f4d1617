// RedisSink against a real redis-server: the state after shuffled,
// duplicated and outdated updates equals one in-order application, key by
// key; exact version comparison beyond 2^53; TTL; outages (server killed,
// server hung) with a bounded buffer and recovery; password auth.

#include "weir/redis/redis_sink.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/sinks.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/redis_server.h"

namespace weir {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// A plain hiredis connection to look at what the sink wrote.
class Client {
 public:
  explicit Client(int port, const std::string& password = "") {
    timeval tv = {5, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c_ != nullptr && c_->err == 0 && !password.empty()) {
      Command({"AUTH", password});
    }
  }
  ~Client() {
    if (c_ != nullptr) redisFree(c_);
  }
  bool ok() const { return c_ != nullptr && c_->err == 0; }

  Reply Command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(redisCommandArgv(
        c_, static_cast<int>(argv.size()), argv.data(), lens.data())));
  }

  // HGETALL as a map; empty if the key does not exist.
  std::map<std::string, std::string> HGetAll(const std::string& key) {
    std::map<std::string, std::string> out;
    Reply r = Command({"HGETALL", key});
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      out[std::string(r->element[i]->str, r->element[i]->len)] =
          std::string(r->element[i + 1]->str, r->element[i + 1]->len);
    }
    return out;
  }

  std::optional<std::string> HGet(const std::string& key,
                                  const std::string& field) {
    Reply r = Command({"HGET", key, field});
    if (r == nullptr || r->type != REDIS_REPLY_STRING) return std::nullopt;
    return std::string(r->str, r->len);
  }

  long long Integer(const std::vector<std::string>& args) {
    Reply r = Command(args);
    return r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer
                                                          : -999999;
  }

 private:
  redisContext* c_ = nullptr;
};

FeatureUpdate Update(std::string key, std::string feature, Value value,
                     EventTime version_time, int64_t version_offset) {
  FeatureUpdate u;
  u.key = std::move(key);
  u.feature = std::move(feature);
  // A minute ending at version_time (from the smallest time, for versions
  // within a minute of it).
  u.window = Window{version_time < kMinEventTime + 60000 ? kMinEventTime
                                                         : version_time - 60000,
                    version_time};
  u.value = std::move(value);
  u.version_time = version_time;
  u.version_offset = version_offset;
  return u;
}

// The hash fields `expected` (one in-order application) implies for each
// key.
std::map<std::string, std::map<std::string, std::string>> ExpectedHashes(
    const MemorySink& expected, const std::string& prefix) {
  std::map<std::string, std::map<std::string, std::string>> out;
  for (const FeatureUpdate& u : expected.Snapshot()) {
    auto& fields = out[prefix + u.key];
    if (!u.value.is_null()) fields[u.feature] = u.value.ToString();
    fields[u.feature + "@v"] =
        absl::StrCat(u.version_time, ":", u.version_offset);
    fields[u.feature + "@w"] = absl::StrCat(u.window.start);
  }
  return out;
}

// Every key of `expected` holds exactly the expected fields, and the
// database holds no other key.
void ExpectRedisEquals(Client& client, const MemorySink& expected,
                       const std::string& prefix) {
  const auto hashes = ExpectedHashes(expected, prefix);
  size_t mismatches = 0;
  for (const auto& [key, fields] : hashes) {
    const auto actual = client.HGetAll(key);
    if (actual != fields && ++mismatches <= 5) {
      ADD_FAILURE() << "hash " << key << " differs from in-order application";
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(client.Integer({"DBSIZE"}), static_cast<long long>(hashes.size()));
}

Value RandomValue(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0:
      return Value::Int64(static_cast<int64_t>(rng() >> 1) - (1LL << 62));
    case 1:
      return Value::Dec(static_cast<int64_t>(rng() % 100000000) - 50000000, 2);
    case 2:
      return Value::Double(
          std::uniform_real_distribution<double>(-1e6, 1e6)(rng));
    case 3:
      return Value::String(absl::StrCat("m", rng() % 1000, " \"x\"\n"));
    case 4:
      return Value::Bool(rng() % 2 == 0);
    default:
      return Value::Null();
  }
}

class RedisSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = testing::RedisServer::Start();
    if (!server.ok()) {
      status_ = new absl::Status(server.status());
      return;
    }
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete status_;
    server_ = nullptr;
    status_ = nullptr;
  }

  void SetUp() override {
    if (status_ != nullptr) WEIR_REQUIRE_PART(*status_);
    ASSERT_NE(server_, nullptr);
    client_ = std::make_unique<Client>(server_->port());
    ASSERT_TRUE(client_->ok());
    client_->Command({"FLUSHALL"});
  }

  RedisSinkOptions Options(int port) {
    RedisSinkOptions options;
    options.port = port;
    options.key_prefix = "f:";
    options.clock = &clock_;
    return options;
  }

  std::unique_ptr<RedisSink> Open(const RedisSinkOptions& options) {
    auto sink = RedisSink::Create(options);
    EXPECT_TRUE(sink.ok()) << sink.status();
    return sink.ok() ? std::move(*sink) : nullptr;
  }

  static testing::RedisServer* server_;
  static absl::Status* status_;  // why the server did not start
  ManualClock clock_{absl::FromUnixSeconds(1767225600)};
  std::unique_ptr<Client> client_;
};

testing::RedisServer* RedisSinkTest::server_ = nullptr;
absl::Status* RedisSinkTest::status_ = nullptr;

TEST_F(RedisSinkTest, ShuffledDuplicatedAndOutdatedUpdatesEqualInOrderState) {
  constexpr int kUpdates = 100000;
  constexpr int kKeys = 5000;
  const std::vector<std::string> features = {"txn_count_1m", "amount_sum_1h",
                                             "amount_avg_1d", "last_merchant"};
  std::mt19937_64 rng(20260101);
  std::vector<FeatureUpdate> updates;
  updates.reserve(kUpdates);
  for (int i = 0; i < kUpdates; ++i) {
    // About five versions per (key, feature); the offset makes each
    // version unique, the time repeats so that offsets break ties.
    updates.push_back(Update(
        absl::StrCat("u", rng() % kKeys), features[rng() % features.size()],
        RandomValue(rng), 1767225600000 + 60000 * (rng() % 20), i));
  }
  MemorySink expected;
  {
    std::vector<FeatureUpdate> in_order = updates;
    std::sort(in_order.begin(), in_order.end(),
              [](const FeatureUpdate& a, const FeatureUpdate& b) {
                return b.NewerThan(a);
              });
    ASSERT_TRUE(expected.Write(in_order).ok());
    ASSERT_EQ(expected.skipped(), 0);
  }
  // Everything twice, shuffled: older versions arrive after newer ones.
  std::vector<FeatureUpdate> shuffled = updates;
  shuffled.insert(shuffled.end(), updates.begin(), updates.end());
  std::shuffle(shuffled.begin(), shuffled.end(), rng);

  RedisSinkOptions options = Options(server_->port());
  auto sink = Open(options);
  ASSERT_NE(sink, nullptr);
  for (size_t i = 0; i < shuffled.size();) {
    const size_t n = std::min<size_t>(shuffled.size() - i, 1 + rng() % 2000);
    ASSERT_TRUE(sink->Write(absl::MakeConstSpan(shuffled).subspan(i, n)).ok());
    ASSERT_LE(sink->buffered(), options.max_buffered_updates);
    i += n;
  }
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(sink->buffered(), 0u);
  EXPECT_EQ(sink->stats().applied + sink->stats().skipped, 2 * kUpdates);
  EXPECT_GE(sink->stats().skipped, kUpdates);  // every duplicate at least
  ExpectRedisEquals(*client_, expected, "f:");
}

TEST_F(RedisSinkTest, EqualAndOlderVersionsAreSkipped) {
  auto sink = Open(Options(server_->port()));
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(
      sink->Write({Update("u1", "count", Value::Int64(1), 2000, 5)}).ok());
  ASSERT_TRUE(sink->Flush().ok());
  ASSERT_TRUE(sink->Write({Update("u1", "count", Value::Int64(99), 2000, 5),
                           Update("u1", "count", Value::Int64(98), 1999, 100),
                           Update("u1", "count", Value::Int64(97), 2000, 4)})
                  .ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(client_->HGet("f:u1", "count"), "1");
  EXPECT_EQ(client_->HGet("f:u1", "count@v"), "2000:5");
  EXPECT_EQ(client_->HGet("f:u1", "count@w"), "-58000");
  EXPECT_EQ(sink->stats().applied, 1);
  EXPECT_EQ(sink->stats().skipped, 3);

  ASSERT_TRUE(
      sink->Write({Update("u1", "count", Value::Int64(2), 2000, 6)}).ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(client_->HGet("f:u1", "count"), "2");
  EXPECT_EQ(client_->HGet("f:u1", "count@v"), "2000:6");
}

TEST_F(RedisSinkTest, VersionsCompareExactlyAsInt64) {
  constexpr int64_t k53 = int64_t{1} << 53;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  // Each pair is (lower, higher); doubles cannot tell most of them apart.
  const std::vector<std::pair<int64_t, int64_t>> pairs = {
      {k53, k53 + 1},
      {k53 + 1, k53 + 2},
      {kMax - 1, kMax},
      {kMin, kMin + 1},
      {-(k53 + 2), -(k53 + 1)},
      {-10, -5},
      {-1, 0},
      {999999999999999, 1000000000000000},
      {-1000000000000000, -999999999999999},
      {1000000000000000000, 1000000000000000001},
      {kMin, kMax},
  };
  auto sink = Open(Options(server_->port()));
  ASSERT_NE(sink, nullptr);
  int n = 0;
  for (const auto& [lo, hi] : pairs) {
    for (const bool in_time : {true, false}) {
      const std::string key = absl::StrCat("k", n++);
      const auto make = [&](int64_t v, int64_t value) {
        return in_time ? Update(key, "f", Value::Int64(value), v, 7)
                       : Update(key, "f", Value::Int64(value), 1000, v);
      };
      // Newer first, then the older one: the older must be skipped.
      ASSERT_TRUE(sink->Write({make(hi, 2), make(lo, 1)}).ok());
      ASSERT_TRUE(sink->Flush().ok());
      EXPECT_EQ(client_->HGet("f:" + key, "f"), "2")
          << lo << " < " << hi << (in_time ? " (time)" : " (offset)");
      // Older first on a fresh feature: the newer must apply.
      const auto make2 = [&](int64_t v, int64_t value) {
        FeatureUpdate u = make(v, value);
        u.feature = "g";
        return u;
      };
      ASSERT_TRUE(sink->Write({make2(lo, 1), make2(hi, 2)}).ok());
      ASSERT_TRUE(sink->Flush().ok());
      EXPECT_EQ(client_->HGet("f:" + key, "g"), "2")
          << lo << " < " << hi << (in_time ? " (time)" : " (offset)");
      EXPECT_EQ(client_->HGet("f:" + key, "g@v"),
                in_time ? absl::StrCat(hi, ":7") : absl::StrCat("1000:", hi));
    }
  }
  EXPECT_EQ(sink->stats().applied, 3 * static_cast<int64_t>(2 * pairs.size()));
  EXPECT_EQ(sink->stats().skipped, static_cast<int64_t>(2 * pairs.size()));
}

TEST_F(RedisSinkTest, NullValueRemovesTheValueFieldAndKeepsTheVersion) {
  auto sink = Open(Options(server_->port()));
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Write({Update("u1", "avg", Value::Dec(1250, 2), 1000, 1),
                           Update("u1", "avg", Value::Null(), 2000, 1)})
                  .ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(client_->HGet("f:u1", "avg"), std::nullopt);
  EXPECT_EQ(client_->HGet("f:u1", "avg@v"), "2000:1");
  ASSERT_TRUE(
      sink->Write({Update("u1", "avg", Value::Dec(1250, 2), 3000, 1)}).ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(client_->HGet("f:u1", "avg"), "12.50");
}

TEST_F(RedisSinkTest, TtlIsSetOnAppliedUpdates) {
  RedisSinkOptions options = Options(server_->port());
  options.ttl = absl::Hours(1);
  auto with_ttl = Open(options);
  ASSERT_NE(with_ttl, nullptr);
  ASSERT_TRUE(
      with_ttl->Write({Update("u1", "f", Value::Int64(1), 1000, 1)}).ok());
  ASSERT_TRUE(with_ttl->Flush().ok());
  const long long pttl = client_->Integer({"PTTL", "f:u1"});
  EXPECT_GT(pttl, 3600000 - 60000);
  EXPECT_LE(pttl, 3600000);

  auto without = Open(Options(server_->port()));
  ASSERT_NE(without, nullptr);
  ASSERT_TRUE(
      without->Write({Update("u2", "f", Value::Int64(1), 1000, 1)}).ok());
  ASSERT_TRUE(without->Flush().ok());
  EXPECT_EQ(client_->Integer({"PTTL", "f:u2"}), -1);
}

TEST_F(RedisSinkTest, ReloadsTheScriptAfterNoScript) {
  auto sink = Open(Options(server_->port()));
  ASSERT_NE(sink, nullptr);
  client_->Command({"SCRIPT", "FLUSH"});
  ASSERT_TRUE(sink->Write({Update("u1", "f", Value::Int64(1), 1000, 1)}).ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(client_->HGet("f:u1", "f"), "1");
}

TEST_F(RedisSinkTest, UnixSocketWorks) {
  RedisSinkOptions options = Options(0);
  options.unix_socket = server_->unix_socket();
  auto sink = Open(options);
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Write({Update("u1", "f", Value::Int64(5), 1000, 1)}).ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(client_->HGet("f:u1", "f"), "5");
}

TEST_F(RedisSinkTest, SelectsTheDatabase) {
  RedisSinkOptions options = Options(server_->port());
  options.db = 3;
  auto sink = Open(options);
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Write({Update("u1", "f", Value::Int64(5), 1000, 1)}).ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(client_->HGet("f:u1", "f"), std::nullopt);  // db 0
  client_->Command({"SELECT", "3"});
  EXPECT_EQ(client_->HGet("f:u1", "f"), "5");
  client_->Command({"SELECT", "0"});

  options.db = 100000;
  EXPECT_TRUE(absl::IsFailedPrecondition(RedisSink::Create(options).status()));
}

TEST_F(RedisSinkTest, BadStoredStateIsReported) {
  auto sink = Open(Options(server_->port()));
  ASSERT_NE(sink, nullptr);
  client_->Command({"SET", "f:str", "not a hash"});
  ASSERT_TRUE(sink->Write({Update("str", "f", Value::Int64(1), 1, 1)}).ok());
  absl::Status s = sink->Flush();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(sink->buffered(), 1u);  // kept, not dropped
  client_->Command({"DEL", "f:str"});
  EXPECT_TRUE(sink->Flush().ok());

  client_->Command({"HSET", "f:bad", "f@v", "garbage"});
  ASSERT_TRUE(sink->Write({Update("bad", "f", Value::Int64(1), 1, 1)}).ok());
  s = sink->Flush();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("f@v"));
}

TEST_F(RedisSinkTest, RejectsFeatureNamesWithAt) {
  auto sink = Open(Options(server_->port()));
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(
      sink->Write({Update("u1", "f@v", Value::Int64(1), 1, 1)})));
  EXPECT_TRUE(absl::IsInvalidArgument(
      sink->Write({Update("u1", "", Value::Int64(1), 1, 1)})));
  EXPECT_EQ(sink->buffered(), 0u);
}

TEST(RedisSinkOptionsTest, ValidateNamesTheFirstBadField) {
  const auto message = [](const RedisSinkOptions& o) {
    return std::string(o.Validate().message());
  };
  RedisSinkOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.port = 0;
  EXPECT_THAT(message(o), HasSubstr("port"));
  o = {};
  o.batch_size = 0;
  EXPECT_THAT(message(o), HasSubstr("batch_size"));
  o = {};
  o.max_buffered_updates = 10;
  EXPECT_THAT(message(o), HasSubstr("max_buffered_updates"));
  o = {};
  o.ttl = absl::ZeroDuration();
  EXPECT_THAT(message(o), HasSubstr("ttl"));
  o = {};
  o.reconnect_backoff_max = absl::Milliseconds(1);
  EXPECT_THAT(message(o), HasSubstr("reconnect_backoff_max"));
  o = {};
  o.username = "app";
  EXPECT_THAT(message(o), HasSubstr("username"));
  o = {};
  o.clock = nullptr;
  EXPECT_THAT(message(o), HasSubstr("clock"));
}

TEST(RedisSinkCreateTest, NothingListeningIsUnavailable) {
  auto port = testing::PickFreePort();
  ASSERT_TRUE(port.ok());
  RedisSinkOptions options;
  options.port = *port;
  auto sink = RedisSink::Create(options);
  EXPECT_TRUE(absl::IsUnavailable(sink.status())) << sink.status();
}

// ---- outages ------------------------------------------------------------

class RedisSinkOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::RedisServerOptions options;
    options.appendonly = true;  // state survives Kill and Restart
    auto server = testing::RedisServer::Start(options);
    WEIR_REQUIRE_PART(server.status());
    server_ = std::move(*server);
  }

  RedisSinkOptions Options() {
    RedisSinkOptions options;
    options.port = server_->port();
    options.key_prefix = "f:";
    options.batch_size = 100;
    options.updates_per_call = 50;
    options.max_buffered_updates = 1000;
    // Short enough for a hung server to be detected well within the
    // tests' 3 s bounds; long enough for a live one to answer on a loaded,
    // sanitized machine.
    options.connect_timeout = absl::Seconds(1);
    options.command_timeout = absl::Seconds(1);
    options.clock = &clock_;
    return options;
  }

  std::unique_ptr<testing::RedisServer> server_;
  ManualClock clock_{absl::FromUnixSeconds(1767225600)};
};

std::vector<FeatureUpdate> ManyUpdates(int n, int first_offset) {
  std::vector<FeatureUpdate> out;
  for (int i = 0; i < n; ++i) {
    const int o = first_offset + i;
    out.push_back(Update(absl::StrCat("u", o % 300), "count", Value::Int64(o),
                         1767225600000 + o, o));
  }
  return out;
}

TEST_F(RedisSinkOutageTest, KilledServerGivesUnavailableBoundedThenRecovers) {
  const RedisSinkOptions options = Options();
  auto created = RedisSink::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  RedisSink& sink = **created;
  MemorySink expected;

  const std::vector<FeatureUpdate> before = ManyUpdates(250, 0);
  ASSERT_TRUE(sink.Write(before).ok());
  ASSERT_TRUE(sink.Flush().ok());
  ASSERT_TRUE(expected.Write(before).ok());

  server_->Kill();

  // Writes are taken until the buffer is full, then refused; nothing blocks
  // past the timeouts and the buffer never exceeds its bound.
  std::vector<std::vector<FeatureUpdate>> refused;
  int offset = 250;
  for (int i = 0; i < 30; ++i) {
    std::vector<FeatureUpdate> chunk = ManyUpdates(100, offset);
    offset += 100;
    const absl::Time start = absl::Now();
    absl::Status s = sink.Write(chunk);
    EXPECT_LT(absl::Now() - start, absl::Seconds(3));
    EXPECT_LE(sink.buffered(), options.max_buffered_updates);
    ASSERT_TRUE(expected.Write(chunk).ok());
    if (!s.ok()) {
      EXPECT_TRUE(absl::IsUnavailable(s)) << s;
      refused.push_back(std::move(chunk));
    }
    clock_.Advance(absl::Milliseconds(50));  // some reconnects are due
  }
  EXPECT_FALSE(refused.empty());
  EXPECT_EQ(sink.buffered(), options.max_buffered_updates);
  const absl::Time start = absl::Now();
  absl::Status flushed = sink.Flush();
  EXPECT_TRUE(absl::IsUnavailable(flushed)) << flushed;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_FALSE(sink.connected());

  // Back on the same port with the same data; once the backoff has passed
  // the sink reconnects, the buffered updates apply and so do the refused
  // ones the caller sends again.
  ASSERT_TRUE(server_->Restart().ok());
  clock_.Advance(options.reconnect_backoff_max);
  ASSERT_TRUE(sink.Flush().ok());
  EXPECT_EQ(sink.buffered(), 0u);
  for (const auto& chunk : refused) ASSERT_TRUE(sink.Write(chunk).ok());
  ASSERT_TRUE(sink.Flush().ok());
  EXPECT_GE(sink.stats().connects, 2);

  Client client(server_->port());
  ASSERT_TRUE(client.ok());
  ExpectRedisEquals(client, expected, "f:");
}

TEST_F(RedisSinkOutageTest, WritingToADeadConnectionDoesNotRaiseSigpipe) {
  RedisSinkOptions options = Options();
  auto created = RedisSink::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  server_->Kill();
  // A batch of several megabytes takes more than one write(2): the first
  // draws a reset from the dead peer, the next fails with EPIPE, which by
  // default would also raise SIGPIPE and end the process.
  std::vector<FeatureUpdate> big;
  for (int i = 0; i < 100; ++i) {
    big.push_back(Update(absl::StrCat("u", i), "blob",
                         Value::String(std::string(64 << 10, 'x')), 1000, i));
  }
  ASSERT_TRUE((*created)->Write(big).ok());
  absl::Status s = (*created)->Flush();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ((*created)->buffered(), big.size());
}

TEST_F(RedisSinkOutageTest, HungServerTimesOutAndRecovers) {
  const RedisSinkOptions options = Options();
  auto created = RedisSink::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  RedisSink& sink = **created;

  ASSERT_TRUE(server_->Pause().ok());
  const std::vector<FeatureUpdate> updates = ManyUpdates(50, 0);
  ASSERT_TRUE(sink.Write(updates).ok());  // fewer than a batch: buffered
  const absl::Time start = absl::Now();
  absl::Status s = sink.Flush();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(sink.buffered(), updates.size());

  // During the backoff, calls answer at once without touching the network.
  s = sink.Flush();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("next attempt"));

  ASSERT_TRUE(server_->Resume().ok());
  clock_.Advance(options.reconnect_backoff_initial);
  ASSERT_TRUE(sink.Flush().ok());
  MemorySink expected;
  ASSERT_TRUE(expected.Write(updates).ok());
  Client client(server_->port());
  ExpectRedisEquals(client, expected, "f:");
}

TEST_F(RedisSinkOutageTest, UpdatesLargerThanTheBufferGoThroughInPieces) {
  const RedisSinkOptions options = Options();
  auto created = RedisSink::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::vector<FeatureUpdate> updates = ManyUpdates(2500, 0);
  ASSERT_TRUE((*created)->Write(updates).ok());
  EXPECT_LE((*created)->buffered(), options.max_buffered_updates);
  ASSERT_TRUE((*created)->Flush().ok());
  MemorySink expected;
  ASSERT_TRUE(expected.Write(updates).ok());
  Client client(server_->port());
  ExpectRedisEquals(client, expected, "f:");
}

// ---- auth ---------------------------------------------------------------

TEST(RedisSinkAuthTest, PasswordWorksAndWrongOnesAreClearAndSecret) {
  constexpr char kPassword[] = "correct-horse-battery";
  constexpr char kWrong[] = "wrong-staple-guess";
  testing::RedisServerOptions server_options;
  server_options.password = kPassword;
  auto server = testing::RedisServer::Start(server_options);
  WEIR_REQUIRE_PART(server.status());

  RedisSinkOptions options;
  options.port = (*server)->port();
  options.password = kPassword;
  auto sink = RedisSink::Create(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write({Update("u1", "f", Value::Int64(1), 1, 1)}).ok());
  ASSERT_TRUE((*sink)->Flush().ok());
  Client client((*server)->port(), kPassword);
  EXPECT_EQ(client.HGet("u1", "f"), "1");

  options.password = kWrong;
  auto wrong = RedisSink::Create(options);
  EXPECT_TRUE(absl::IsUnauthenticated(wrong.status())) << wrong.status();
  EXPECT_THAT(std::string(wrong.status().message()), Not(HasSubstr(kWrong)));
  EXPECT_THAT(std::string(wrong.status().message()), Not(HasSubstr(kPassword)));

  options.username = "nobody";
  wrong = RedisSink::Create(options);
  EXPECT_TRUE(absl::IsUnauthenticated(wrong.status())) << wrong.status();

  options.username.reset();
  options.password.reset();
  auto none = RedisSink::Create(options);
  EXPECT_TRUE(absl::IsUnauthenticated(none.status())) << none.status();
}

}  // namespace
}  // namespace weir
