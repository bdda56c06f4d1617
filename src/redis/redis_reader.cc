// Implementation of weir/redis/redis_reader.h.

#include "weir/redis/redis_reader.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "redis_connection.h"
#include "weir/status_macros.h"

namespace weir {

namespace {

// `prefix` with the glob characters of SCAN's MATCH escaped, then "*".
std::string MatchPattern(const std::string& prefix) {
  std::string out;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  out.push_back('*');
  return out;
}

std::string Text(const redisReply* r) { return std::string(r->str, r->len); }

}  // namespace

absl::StatusOr<std::vector<RedisFeatureValue>> ReadRedisFeatures(
    const RedisSinkOptions& options) {
  WEIR_ASSIGN_OR_RETURN(internal::RedisContextPtr c,
                        internal::ConnectRedis(options));
  const std::string where = internal::RedisWhere(options);
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    WEIR_ASSIGN_OR_RETURN(
        internal::RedisReplyPtr reply,
        internal::RedisCommand(
            c.get(), options,
            {"SCAN", cursor, "MATCH", MatchPattern(options.key_prefix), "COUNT",
             "1000"},
            "SCAN"));
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
      return absl::InternalError(absl::StrCat(where, ": SCAN: bad reply"));
    }
    cursor = Text(reply->element[0]);
    const redisReply* batch = reply->element[1];
    for (size_t i = 0; i < batch->elements; ++i) {
      keys.push_back(Text(batch->element[i]));
    }
  } while (cursor != "0");
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

  std::vector<RedisFeatureValue> out;
  for (const std::string& key : keys) {
    const absl::Status not_weirs = absl::DataLossError(
        absl::StrCat(where, ": ", key, " is not a hash of weir features"));
    absl::StatusOr<internal::RedisReplyPtr> hash =
        internal::RedisCommand(c.get(), options, {"HGETALL", key}, "HGETALL");
    if (absl::IsFailedPrecondition(hash.status()))
      return not_weirs;  // WRONGTYPE
    WEIR_RETURN_IF_ERROR(hash.status());
    const internal::RedisReplyPtr& reply = *hash;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
      return not_weirs;
    }
    std::map<std::string, std::string> fields;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
      fields[Text(reply->element[i])] = Text(reply->element[i + 1]);
    }
    const std::string entity = key.substr(options.key_prefix.size());
    const size_t before = out.size();
    for (const auto& [field, version] : fields) {
      const size_t at = field.rfind("@v");
      if (at == std::string::npos || at + 2 != field.size()) continue;
      RedisFeatureValue v;
      v.entity = entity;
      v.feature = field.substr(0, at);
      const absl::string_view text = version;
      const size_t colon = text.find(':');
      auto window = fields.find(v.feature + "@w");
      if (colon == absl::string_view::npos ||
          !absl::SimpleAtoi(text.substr(0, colon), &v.version_time) ||
          !absl::SimpleAtoi(text.substr(colon + 1), &v.version_offset) ||
          window == fields.end() ||
          !absl::SimpleAtoi(window->second, &v.window_start_ms)) {
        return absl::DataLossError(
            absl::StrCat(where, ": ", key, " field ", v.feature,
                         ": the version or window start is not weir's"));
      }
      if (auto value = fields.find(v.feature); value != fields.end()) {
        v.value = value->second;
      }
      out.push_back(std::move(v));
    }
    if (out.size() == before) return not_weirs;
  }
  return out;
}

}  // namespace weir
