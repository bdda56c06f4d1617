// Private to weir_redis: one connection to Redis as the RedisSink and the
// feature reader (weir/redis/redis_reader.h) open it, and one command with
// its error reply classified.

#ifndef WEIR_SRC_REDIS_REDIS_CONNECTION_H_
#define WEIR_SRC_REDIS_REDIS_CONNECTION_H_

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/redis/redis_sink.h"

namespace weir {
namespace internal {

struct RedisReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

struct RedisContextDeleter {
  void operator()(redisContext* c) const {
    if (c != nullptr) redisFree(c);
  }
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;

// "redis HOST:PORT" or "redis unix:PATH", for messages.
std::string RedisWhere(const RedisSinkOptions& options);

// The status of an error reply, by its error code (the first word).
absl::Status ReplyError(std::string_view where, std::string_view message);

// Sends `args` and reads the reply. An I/O failure is kUnavailable; an
// error reply is classified by ReplyError. `what` names the command in
// messages, never its arguments (they may hold the password, which is also
// scrubbed from error replies).
absl::StatusOr<RedisReplyPtr> RedisCommand(redisContext* c,
                                           const RedisSinkOptions& options,
                                           std::vector<std::string> args,
                                           std::string_view what);

// Connects with the options' timeouts, authenticates and selects `db`.
absl::StatusOr<RedisContextPtr> ConnectRedis(const RedisSinkOptions& options);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_SRC_REDIS_REDIS_CONNECTION_H_
