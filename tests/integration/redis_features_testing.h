// -----------------------------------------------------------------------------
// File: tests/integration/redis_features_testing.h
// -----------------------------------------------------------------------------
//
// Helpers for the tests that run the `fraud-features` service with
// `--sink=redis://...` (redis_outage_test, redis_crash_soak_test): read the
// whole content of a Redis the service wrote (HGETALL of every key under a
// prefix), compare two contents field by field, turn a FileSink log into
// the content a RedisSink would hold for it, and read a process's peak
// resident set size.
//
// Threading: each helper is called from the test's thread; none starts
// threads.
//
// Example:
//   absl::StatusOr<RedisContent> golden = DumpRedis(redis->port(), "fraud:");
//   ...
//   absl::StatusOr<RedisContent> got = DumpRedis(redis->port(), "fraud:");
//   EXPECT_EQ(CompareRedis(*golden, *got), "");

#ifndef WEIR_TESTS_INTEGRATION_REDIS_FEATURES_TESTING_H_
#define WEIR_TESTS_INTEGRATION_REDIS_FEATURES_TESTING_H_

#include <hiredis/hiredis.h>
#include <sys/types.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fraud_features_testing.h"
#include "weir/sink.h"
#include "weir/sinks.h"

namespace weir {
namespace redis_features_testing {

// key -> (field -> value): the hashes RedisSink writes.
using RedisContent = std::map<std::string, std::map<std::string, std::string>>;

// HGETALL of every key that starts with `prefix` (found with SCAN), on
// 127.0.0.1:`port`; HGETALLs are pipelined 1000 at a time.
inline absl::StatusOr<RedisContent> DumpRedis(int port,
                                              const std::string& prefix) {
  const timeval tv = {10, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err != 0) {
    const std::string why = c != nullptr ? c->errstr : "out of memory";
    if (c != nullptr) redisFree(c);
    return absl::UnavailableError(absl::StrCat("redis connect: ", why));
  }
  redisSetTimeout(c, tv);
  std::vector<std::string> keys;
  std::string cursor = "0";
  absl::Status status;
  const std::string pattern = prefix + "*";
  do {
    auto* r = static_cast<redisReply*>(
        redisCommand(c, "SCAN %s MATCH %b COUNT 1000", cursor.c_str(),
                     pattern.data(), pattern.size()));
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      status = absl::UnavailableError(
          absl::StrCat("SCAN failed: ", r == nullptr ? c->errstr : "reply"));
      if (r != nullptr) freeReplyObject(r);
      break;
    }
    cursor = std::string(r->element[0]->str, r->element[0]->len);
    for (size_t i = 0; i < r->element[1]->elements; ++i) {
      const redisReply* k = r->element[1]->element[i];
      keys.emplace_back(k->str, k->len);
    }
    freeReplyObject(r);
  } while (cursor != "0");
  // SCAN may return a key more than once.
  std::set<std::string> unique(keys.begin(), keys.end());
  keys.assign(unique.begin(), unique.end());

  RedisContent out;
  for (size_t begin = 0; begin < keys.size() && status.ok(); begin += 1000) {
    const size_t end = std::min(keys.size(), begin + 1000);
    for (size_t i = begin; i < end; ++i) {
      redisAppendCommand(c, "HGETALL %b", keys[i].data(), keys[i].size());
    }
    for (size_t i = begin; i < end; ++i) {
      void* reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK || reply == nullptr) {
        status =
            absl::UnavailableError(absl::StrCat("HGETALL failed: ", c->errstr));
        break;
      }
      auto* r = static_cast<redisReply*>(reply);
      if (r->type == REDIS_REPLY_ARRAY) {
        auto& fields = out[keys[i]];
        for (size_t j = 0; j + 1 < r->elements; j += 2) {
          fields[std::string(r->element[j]->str, r->element[j]->len)] =
              std::string(r->element[j + 1]->str, r->element[j + 1]->len);
        }
      } else if (status.ok()) {
        status = absl::FailedPreconditionError(
            absl::StrCat(keys[i], " is not a hash"));
      }
      freeReplyObject(r);
    }
  }
  redisFree(c);
  if (!status.ok()) return status;
  return out;
}

// The content a RedisSink with `prefix` holds after taking `updates` in any
// order (docs/sinks.md): per (key, feature) the newest version's value
// (Value::ToString; absent when null), "<feature>@v" =
// "<version_time>:<version_offset>", "<feature>@w" = the window start.
inline RedisContent ExpectedRedisContent(
    const std::vector<FeatureUpdate>& updates, const std::string& prefix) {
  RedisContent out;
  for (const FeatureUpdate& u : LatestFeatureUpdates(updates)) {
    auto& fields = out[prefix + u.key];
    if (!u.value.is_null()) fields[u.feature] = u.value.ToString();
    fields[u.feature + "@v"] =
        absl::StrCat(u.version_time, ":", u.version_offset);
    fields[u.feature + "@w"] = absl::StrCat(u.window.start);
  }
  return out;
}

// Describes the first differences between two contents; empty if they are
// equal field by field, byte for byte. Every F-FRAUD feature is a function
// of its window's values alone (docs/semantics.md), so a restart, a spill or
// a replay writes the same bytes.
inline std::string CompareRedis(const RedisContent& want,
                                const RedisContent& got) {
  std::string diff;
  int shown = 0;
  auto note = [&](const std::string& line) {
    if (shown++ < 10) absl::StrAppend(&diff, line, "\n");
  };
  auto same = [](const std::string&, const std::string& a,
                 const std::string& b) { return a == b; };
  for (const auto& [key, fields] : want) {
    auto it = got.find(key);
    if (it == got.end()) {
      note(absl::StrCat("missing key ", key));
      continue;
    }
    for (const auto& [field, value] : fields) {
      auto f = it->second.find(field);
      if (f == it->second.end()) {
        note(absl::StrCat("missing ", key, " ", field));
      } else if (!same(field, value, f->second)) {
        note(absl::StrCat("differs ", key, " ", field, ": want ", value,
                          " got ", f->second));
      }
    }
    for (const auto& [field, value] : it->second) {
      if (!fields.count(field)) note(absl::StrCat("extra ", key, " ", field));
    }
  }
  for (const auto& [key, fields] : got) {
    if (!want.count(key)) note(absl::StrCat("extra key ", key));
  }
  if (shown > 10) absl::StrAppend(&diff, "... ", shown - 10, " more\n");
  return diff;
}

// A memory line of /proc/<pid>/status ("VmHWM:", "VmRSS:") in KiB, or -1
// if the process is gone.
inline int64_t StatusKib(pid_t pid, std::string_view field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) != 0) continue;
    int64_t kib = -1;
    std::string digits;
    for (char ch : line) {
      if (ch >= '0' && ch <= '9') digits.push_back(ch);
    }
    if (absl::SimpleAtoi(digits, &kib)) return kib;
  }
  return -1;
}

// Peak resident set size (VmHWM) of `pid` in KiB, or -1.
inline int64_t PeakRssKib(pid_t pid) { return StatusKib(pid, "VmHWM:"); }
// Resident set size now (VmRSS) of `pid` in KiB, or -1.
inline int64_t RssKib(pid_t pid) { return StatusKib(pid, "VmRSS:"); }

}  // namespace redis_features_testing
}  // namespace weir

#endif  // WEIR_TESTS_INTEGRATION_REDIS_FEATURES_TESTING_H_
