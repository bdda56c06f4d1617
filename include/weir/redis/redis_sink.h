// -----------------------------------------------------------------------------
// File: redis/redis_sink.h
// -----------------------------------------------------------------------------
//
// `RedisSink` writes feature updates to Redis (standalone server, protocol
// RESP2, Redis 6 or newer) with the idempotence contract of sink.h: an
// update whose version is not newer than the stored one changes nothing, so
// replays and reordered updates leave Redis as one in-order application
// would.
//
// Layout: one hash per entity, named `<key_prefix><entity key>`. For each
// feature it holds three fields:
//   <feature>     the value as text (Value::ToString: "42", "12.34", a
//                 double in the shortest text that reads back exactly,
//                 "true", the string itself); absent when the newest
//                 update's value is null. A plain `HGET key feature` serves
//                 it.
//   <feature>@v   the version, "<version_time>:<version_offset>" in decimal,
//                 e.g. "1767225660000:42".
//   <feature>@w   the window start, in ms since the epoch.
// So feature names must not contain '@' (Write refuses them).
//
// Compare-and-set: a Lua script, loaded once per connection with SCRIPT
// LOAD and called with EVALSHA (reloaded on NOSCRIPT), reads `<feature>@v`
// and writes the three fields only when the new version is strictly newer.
// One call carries many updates; the script groups them by key, so the
// updates of one entity in a call cost one HMGET and one HSET together
// (the operator emits an entity's features together when its windows
// fire, which is the common case this serves).
// It compares versions exactly as 64-bit integers: Lua's numbers are
// doubles, exact only up to 2^53, so it compares the decimal strings (sign,
// then length, then 15-digit chunks, each exact as a double). With a TTL,
// an applied update also sets the key's expiry (PEXPIRE).
//
// Batching: one script call carries up to `updates_per_call` updates, and
// up to `batch_size` updates' calls go out in one pipelined round trip
// (write all, then read all replies). Calls touch several keys, so the sink
// is for a standalone server (or a proxy that keeps keys together), not
// Redis Cluster.
//
// Speed (bench/b5_redis_sink.cc, one connection, a 2-core machine): about
// 230k applied upserts/s when an entity's four features come together and
// 150k/s when every update is for another entity; one script call per
// update does 110k/s. That is about 0.1x redis-benchmark's pipelined SET
// (one small key, 50 connections) and 0.35x a blind pipelined HSET of the
// same fields: the compare-and-set costs a read and a write through the
// scripting engine per key, which no client-side batching removes.
//
// Buffering and backpressure: Write puts updates in a buffer of at most
// `max_buffered_updates` and sends full batches; Flush sends the rest and
// returns when Redis has applied everything. When Redis is down or slow
// (each socket operation is bounded by `command_timeout`, each connect by
// `connect_timeout`), the updates stay buffered and are sent again later,
// never dropped: Flush returns kUnavailable, and so does a Write that finds
// no room, accepting none of its updates. The caller retries the same
// updates later and pauses its input meanwhile. A batch cut short by a
// failure is sent again whole, which the compare-and-set makes harmless.
// After a failure the sink does not reconnect before a backoff has passed
// (from `reconnect_backoff_initial`, doubling to `reconnect_backoff_max`),
// so calls made meanwhile return at once.
//
// Errors: kUnavailable (retry): connection refused, reset or timed out,
// LOADING, BUSY, TRYAGAIN, MASTERDOWN, READONLY, OOM. kUnauthenticated: a
// wrong password or user, or a server that needs one and got none (the
// message never holds the password). kFailedPrecondition: a key that is not
// a hash (WRONGTYPE), a bad `db`. kDataLoss: a stored version field that is
// not "<int>:<int>".
//
// Threading: not thread-safe; one thread at a time calls every method, as
// the Sink contract says. Starts no threads: all I/O happens inside Create,
// Write and Flush, on the caller's thread. While they do I/O they block
// SIGPIPE on that thread (and discard one their writes raised), so a
// connection the server closed gives kUnavailable, not the end of the
// process; the process's signal handlers are left alone.
//
// Example:
//   weir::RedisSinkOptions options;
//   options.host = "127.0.0.1";
//   options.port = 6379;
//   options.key_prefix = "features:";
//   options.ttl = absl::Hours(48);
//   WEIR_ASSIGN_OR_RETURN(auto sink, weir::RedisSink::Create(options));
//   absl::Status s = sink->Write(updates);
//   if (absl::IsUnavailable(s)) { /* pause input, retry the same updates */ }
//   WEIR_RETURN_IF_ERROR(sink->Flush());
//   // redis-cli HGET features:u123 txn_count_1m  ->  "7"

#ifndef WEIR_REDIS_REDIS_SINK_H_
#define WEIR_REDIS_REDIS_SINK_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "weir/sink.h"
#include "weir/time.h"

struct redisContext;

namespace weir {

struct RedisSinkOptions {
  // ---- where ----

  // Server address. Ignored when `unix_socket` is set.
  // Default: "127.0.0.1"
  std::string host = "127.0.0.1";
  // REQUIRES: 1..65535 (unless `unix_socket` is set). Default: 6379
  int port = 6379;
  // Path of a Unix domain socket to connect to instead of host:port.
  // Default: unset
  std::optional<std::string> unix_socket;

  // AUTH credentials. The password is never logged nor put in a status
  // message. Default: unset (no AUTH)
  std::optional<std::string> password;
  // ACL user for AUTH (Redis 6+); needs `password`. Default: unset
  std::optional<std::string> username;

  // Database number (SELECT). REQUIRES: >= 0. Default: 0
  int db = 0;

  // ---- what ----

  // Prepended to every entity key to name its hash. Default: ""
  std::string key_prefix;

  // Expiry set on a hash (PEXPIRE) each time an update to it applies;
  // whole milliseconds. REQUIRES: >= 1ms if set. Default: unset (no expiry)
  std::optional<absl::Duration> ttl;

  // ---- performance ----

  // Updates sent per pipelined round trip. Larger amortizes the round trip
  // and holds Redis for longer per batch. REQUIRES: >= 1. Default: 500
  size_t batch_size = 500;

  // Updates per script call (EVALSHA). Larger means fewer calls and less
  // per-call overhead in Redis, and more updates of one key sharing one
  // read and one write; 1 is one call per update. REQUIRES: 1..1000 (Lua
  // passes at most a few thousand arguments to one command). Default: 100
  size_t updates_per_call = 100;

  // Most updates the sink holds that Redis has not yet acknowledged; memory
  // is about this many updates. When it is full, Write returns
  // kUnavailable. REQUIRES: >= batch_size. Default: 10000
  size_t max_buffered_updates = 10000;

  // ---- failures ----

  // Longest wait for a TCP or Unix connection. REQUIRES: > 0.
  // Default: absl::Seconds(1)
  absl::Duration connect_timeout = absl::Seconds(1);
  // Longest wait for one socket read or write of a command or its reply.
  // REQUIRES: > 0. Default: absl::Seconds(5)
  absl::Duration command_timeout = absl::Seconds(5);
  // Wait before the first reconnect after a failure; it doubles after each
  // failed attempt up to `reconnect_backoff_max`, and resets on success.
  // REQUIRES: > 0. Default: absl::Milliseconds(100)
  absl::Duration reconnect_backoff_initial = absl::Milliseconds(100);
  // REQUIRES: >= reconnect_backoff_initial. Default: absl::Seconds(5)
  absl::Duration reconnect_backoff_max = absl::Seconds(5);

  // Where the backoff reads time from. REQUIRES: non-null.
  // Default: Clock::Real()
  Clock* clock = Clock::Real();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Counters since Create.
struct RedisSinkStats {
  int64_t applied = 0;      // updates that changed Redis
  int64_t skipped = 0;      // updates whose version was not newer
  int64_t round_trips = 0;  // pipelined batches that completed
  int64_t connects = 0;     // successful connections (the first included)
  int64_t failures = 0;     // batches or connects that failed
};

class RedisSink final : public Sink {
 public:
  // Validates `options`, connects, authenticates, selects `db` and loads
  // the script. kUnavailable if Redis cannot be reached (retry), the errors
  // listed at the top otherwise.
  static absl::StatusOr<std::unique_ptr<RedisSink>> Create(
      const RedisSinkOptions& options);

  // Closes the connection. Updates still buffered are not sent: call Flush
  // first.
  ~RedisSink() override;
  RedisSink(const RedisSink&) = delete;
  RedisSink& operator=(const RedisSink&) = delete;

  // Takes `updates` into the buffer and sends full batches. If the buffer
  // has no room even after sending what it holds, takes none of them and
  // returns that failure (kUnavailable when Redis is down). A failure to
  // send after the updates were taken is reported by Flush. kInvalidArgument
  // (nothing taken) for an empty feature name or one containing '@'.
  absl::Status Write(absl::Span<const FeatureUpdate> updates) override;

  // Sends everything buffered; OK once Redis has applied it all.
  absl::Status Flush() override;

  // Updates taken but not yet acknowledged by Redis.
  size_t buffered() const { return buffer_.size(); }
  // Whether a connection is open (it may still turn out to be broken).
  bool connected() const { return context_ != nullptr; }
  const RedisSinkStats& stats() const { return stats_; }

 private:
  explicit RedisSink(const RedisSinkOptions& options);

  // Opens, authenticates, selects and loads the script, if not connected
  // and the backoff allows it.
  absl::Status EnsureConnected();
  absl::Status Connect();
  // Sends the first min(n, buffer_.size()) buffered updates as one
  // pipelined batch; pops them once Redis applied them.
  absl::Status SendBatch(size_t n);
  absl::Status SendBatchOnce(size_t n, bool* noscript);
  // Sends buffered batches while at least `min_left` updates are buffered.
  absl::Status Drain(size_t min_left);
  // Records a connection failure: closes and schedules the next attempt.
  absl::Status Fail(absl::Status status);
  void Disconnect();
  std::string Where() const;

  const RedisSinkOptions options_;
  const std::string ttl_ms_;  // "0" for none
  redisContext* context_ = nullptr;
  std::string script_sha_;
  std::deque<FeatureUpdate> buffer_;
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Duration backoff_;
  absl::Status last_error_;
  RedisSinkStats stats_;
};

namespace internal {

// The compare-and-set script (see the top of the file): KEYS[i] is the hash
// of update i; ARGV[1] the TTL in ms ("0" for none); then five arguments per
// update: feature, value ("" for null, else "=" followed by the text),
// version time, version offset, window start. Groups the updates by key:
// one HMGET of the versions and one HSET of the winners per key. Returns
// {applied, skipped}.
extern const char kRedisSinkScript[];

}  // namespace internal
}  // namespace weir

#endif  // WEIR_REDIS_REDIS_SINK_H_
