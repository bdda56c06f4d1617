// -----------------------------------------------------------------------------
// File: redis/redis_reader.h
// -----------------------------------------------------------------------------
//
// Reads back what a `RedisSink` wrote: every hash under the options'
// `key_prefix` (one per entity), as one value per (entity, feature) with
// its window start and version (docs/sinks.md, "Layout"). For shadow
// comparisons (weir/shadow.h) and audits of an online store.
//
// It walks the keyspace with SCAN (MATCH <prefix>*) and reads each hash with
// HGETALL, so it never blocks Redis for long; a store changing meanwhile is
// read as it is at each hash. A key under the prefix that is not a hash, or
// a hash without weir's `@v`/`@w` fields, is kDataLoss naming the key.
//
// Threading: a function of its arguments; opens its own connection.
//
// Example:
//   weir::RedisSinkOptions where;
//   where.key_prefix = "features:";
//   WEIR_ASSIGN_OR_RETURN(std::vector<weir::RedisFeatureValue> values,
//                         weir::ReadRedisFeatures(where));

#ifndef WEIR_REDIS_REDIS_READER_H_
#define WEIR_REDIS_REDIS_READER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "weir/redis/redis_sink.h"

namespace weir {

struct RedisFeatureValue {
  std::string entity;  // the key without the prefix
  std::string feature;
  int64_t window_start_ms = 0;
  std::optional<std::string> value;  // nullopt: the newest value is null
  int64_t version_time = 0;
  int64_t version_offset = 0;
};

// Every feature value under `options.key_prefix` (only the connection
// fields and the prefix of the options are used), sorted by (entity,
// feature). kUnavailable if Redis cannot be reached.
absl::StatusOr<std::vector<RedisFeatureValue>> ReadRedisFeatures(
    const RedisSinkOptions& options);

}  // namespace weir

#endif  // WEIR_REDIS_REDIS_READER_H_
