// ReadRedisFeatures against a real redis-server: what a RedisSink wrote
// reads back as the newest value, window and version per (entity, feature),
// nulls included; a prefix with glob characters matches only itself; a key
// under the prefix that is not weir's is kDataLoss naming it.

#include "weir/redis/redis_reader.h"

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/redis/redis_sink.h"
#include "weir/testing/redis_server.h"

namespace weir {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

FeatureUpdate Update(std::string key, std::string feature, Value value,
                     EventTime window_start, int64_t offset) {
  FeatureUpdate u;
  u.key = std::move(key);
  u.feature = std::move(feature);
  u.window = Window{window_start, window_start + 60000};
  u.value = std::move(value);
  u.version_time = window_start + 60000;
  u.version_offset = offset;
  return u;
}

TEST(RedisReaderTest, ReadsBackWhatTheSinkWrote) {
  auto server = testing::RedisServer::Start();
  if (absl::IsFailedPrecondition(server.status()) &&
      std::getenv("CI") == nullptr) {
    GTEST_SKIP() << server.status();
  }
  ASSERT_TRUE(server.ok()) << server.status();
  RedisSinkOptions options;
  options.port = (*server)->port();
  options.key_prefix = "f*[x]:";
  auto sink = RedisSink::Create(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const int64_t t0 = 1767225600000;
  const std::vector<FeatureUpdate> updates = {
      Update("u1", "count", Value::Int64(3), t0, 10),
      Update("u1", "count", Value::Int64(4), t0 + 60000, 20),  // newer
      Update("u1", "sum", Value::Dec(123450, 2), t0, 11),
      Update("u2", "min", Value::Null(), t0, 12),
  };
  ASSERT_TRUE((*sink)->Write(updates).ok());
  ASSERT_TRUE((*sink)->Flush().ok());

  // A key another prefix owns (it would match an unescaped "f*").
  timeval tv = {5, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", options.port, tv);
  ASSERT_TRUE(c != nullptr && c->err == 0);
  freeReplyObject(redisCommand(c, "HSET fother:u9 count 1"));

  absl::StatusOr<std::vector<RedisFeatureValue>> got =
      ReadRedisFeatures(options);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(3));
  EXPECT_EQ((*got)[0].entity, "u1");
  EXPECT_EQ((*got)[0].feature, "count");
  EXPECT_EQ((*got)[0].value, "4");
  EXPECT_EQ((*got)[0].window_start_ms, t0 + 60000);
  EXPECT_EQ((*got)[0].version_time, t0 + 120000);
  EXPECT_EQ((*got)[0].version_offset, 20);
  EXPECT_EQ((*got)[1].feature, "sum");
  EXPECT_EQ((*got)[1].value, "1234.50");
  EXPECT_EQ((*got)[2].entity, "u2");
  EXPECT_EQ((*got)[2].value, std::nullopt);

  // A key under the prefix that weir did not write.
  freeReplyObject(redisCommand(c, "SET f*[x]:bad 1"));
  redisFree(c);
  absl::StatusOr<std::vector<RedisFeatureValue>> bad =
      ReadRedisFeatures(options);
  EXPECT_TRUE(absl::IsDataLoss(bad.status())) << bad.status();
  EXPECT_THAT(bad.status().message(), HasSubstr("f*[x]:bad"));

  options.port = 1;  // nothing listens there
  EXPECT_TRUE(absl::IsUnavailable(ReadRedisFeatures(options).status()));
}

}  // namespace
}  // namespace weir
