#include "weir/redis/redis_sink.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "redis_connection.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

const char kRedisSinkScript[] = R"lua(
-- Exact comparison of two canonical decimal int64 strings: -1, 0 or 1.
-- Lua numbers are doubles, exact below 2^53, so longer strings are compared
-- by sign, then length, then in chunks of 15 digits (each below 10^15).
local function cmp(a, b)
  if a == b then return 0 end
  if #a <= 15 and #b <= 15 then
    local x, y = tonumber(a), tonumber(b)
    if x < y then return -1 end
    return 1
  end
  local na = string.byte(a, 1) == 45
  local nb = string.byte(b, 1) == 45
  if na ~= nb then
    if na then return -1 end
    return 1
  end
  if na then
    a = string.sub(a, 2)
    b = string.sub(b, 2)
  end
  local r = 0
  if #a ~= #b then
    if #a < #b then r = -1 else r = 1 end
  else
    for i = 1, #a, 15 do
      local x = tonumber(string.sub(a, i, i + 14))
      local y = tonumber(string.sub(b, i, i + 14))
      if x ~= y then
        if x < y then r = -1 else r = 1 end
        break
      end
    end
  end
  if na then return -r end
  return r
end

local ttl = ARGV[1]
-- Group the updates by key, in order of first appearance, so that each key
-- costs one HMGET and one HSET whatever the number of its updates.
local order, groups = {}, {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local g = groups[key]
  if not g then
    g = {}
    groups[key] = g
    order[#order + 1] = key
  end
  g[#g + 1] = i
end

local applied, skipped = 0, 0
for _, key in ipairs(order) do
  local g = groups[key]
  local features, vfields, seen = {}, {}, {}
  for _, i in ipairs(g) do
    local feature = ARGV[2 + (i - 1) * 5]
    if not seen[feature] then
      seen[feature] = true
      features[#features + 1] = feature
      vfields[#vfields + 1] = feature .. '@v'
    end
  end
  local stored = redis.call('HMGET', key, unpack(vfields))
  -- feature -> time and offset of the newest version so far.
  local newest_t, newest_o = {}, {}
  for k, old in ipairs(stored) do
    if old then
      local colon = string.find(old, ':', 1, true)
      if not colon or colon == 1 or colon == #old then
        return redis.error_reply('WEIRVERSION field ' .. vfields[k] ..
                                 ' of ' .. key .. ' is not <time>:<offset>')
      end
      newest_t[features[k]] = string.sub(old, 1, colon - 1)
      newest_o[features[k]] = string.sub(old, colon + 1)
    end
  end
  -- feature -> index of the update that wins.
  local winner = {}
  for _, i in ipairs(g) do
    local j = 2 + (i - 1) * 5
    local feature = ARGV[j]
    local vt, vo = ARGV[j + 2], ARGV[j + 3]
    local ot = newest_t[feature]
    local newer = true
    if ot then
      local c = cmp(vt, ot)
      if c == 0 then c = cmp(vo, newest_o[feature]) end
      newer = c > 0
    end
    if newer then
      newest_t[feature] = vt
      newest_o[feature] = vo
      winner[feature] = i
      applied = applied + 1
    else
      skipped = skipped + 1
    end
  end
  local set, del = {}, {}
  for feature, i in pairs(winner) do
    local j = 2 + (i - 1) * 5
    local value = ARGV[j + 1]
    if value == '' then
      del[#del + 1] = feature
    else
      set[#set + 1] = feature
      set[#set + 1] = string.sub(value, 2)
    end
    set[#set + 1] = feature .. '@v'
    set[#set + 1] = ARGV[j + 2] .. ':' .. ARGV[j + 3]
    set[#set + 1] = feature .. '@w'
    set[#set + 1] = ARGV[j + 4]
  end
  if #set > 0 then
    redis.call('HSET', key, unpack(set))
    if #del > 0 then redis.call('HDEL', key, unpack(del)) end
    if ttl ~= '0' then redis.call('PEXPIRE', key, ttl) end
  end
end
return {applied, skipped}
)lua";

}  // namespace internal

namespace {

using internal::ReplyError;
using ReplyPtr = internal::RedisReplyPtr;

timeval TimevalOf(absl::Duration d) {
  return absl::ToTimeval(std::max(d, absl::Milliseconds(1)));
}

}  // namespace

namespace internal {

absl::Status ReplyError(std::string_view where, std::string_view message) {
  const std::string text =
      absl::StrCat(absl::string_view(where.data(), where.size()), ": ",
                   absl::string_view(message.data(), message.size()));
  const std::string_view code = message.substr(0, message.find(' '));
  if (code == "NOAUTH" || code == "WRONGPASS" ||
      absl::StartsWith(absl::string_view(message.data(), message.size()),
                       "ERR invalid password") ||
      absl::StrContains(absl::string_view(message.data(), message.size()),
                        "without any password configured")) {
    return absl::UnauthenticatedError(text);
  }
  if (code == "LOADING" || code == "BUSY" || code == "TRYAGAIN" ||
      code == "MASTERDOWN" || code == "READONLY" || code == "OOM" ||
      code == "CLUSTERDOWN") {
    return absl::UnavailableError(text);
  }
  if (code == "WRONGTYPE" || code == "MOVED" || code == "ASK" ||
      code == "CROSSSLOT") {
    return absl::FailedPreconditionError(text);
  }
  if (code == "WEIRVERSION") return absl::DataLossError(text);
  return absl::InternalError(text);
}

std::string RedisWhere(const RedisSinkOptions& options) {
  if (options.unix_socket.has_value()) {
    return absl::StrCat("redis unix:", *options.unix_socket);
  }
  return absl::StrCat("redis ", options.host, ":", options.port);
}

absl::StatusOr<RedisReplyPtr> RedisCommand(redisContext* c,
                                           const RedisSinkOptions& options,
                                           std::vector<std::string> args,
                                           std::string_view what) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  RedisReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(
      c, static_cast<int>(argv.size()), argv.data(), lens.data())));
  const absl::string_view what_text(what.data(), what.size());
  if (reply == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(RedisWhere(options), ": ", what_text, ": ", c->errstr));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    std::string message(reply->str, reply->len);
    if (options.password.has_value() && !options.password->empty()) {
      absl::StrReplaceAll({{*options.password, "<password>"}}, &message);
    }
    return ReplyError(absl::StrCat(RedisWhere(options), ": ", what_text),
                      message);
  }
  return reply;
}

absl::StatusOr<RedisContextPtr> ConnectRedis(const RedisSinkOptions& options) {
  const std::string where = RedisWhere(options);
  const timeval connect_tv = TimevalOf(options.connect_timeout);
  RedisContextPtr c(options.unix_socket.has_value()
                        ? redisConnectUnixWithTimeout(
                              options.unix_socket->c_str(), connect_tv)
                        : redisConnectWithTimeout(options.host.c_str(),
                                                  options.port, connect_tv));
  if (c == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": cannot allocate a connection"));
  }
  if (c->err != 0) {
    return absl::UnavailableError(
        absl::StrCat(where, ": connect: ", c->errstr));
  }
  if (redisSetTimeout(c.get(), TimevalOf(options.command_timeout)) !=
      REDIS_OK) {
    return absl::UnavailableError(
        absl::StrCat(where, ": setting the timeout: ", c->errstr));
  }
  if (!options.unix_socket.has_value()) redisEnableKeepAlive(c.get());
  if (options.password.has_value()) {
    std::vector<std::string> auth = {"AUTH"};
    if (options.username.has_value()) auth.push_back(*options.username);
    auth.push_back(*options.password);
    WEIR_ASSIGN_OR_RETURN(
        RedisReplyPtr unused,
        RedisCommand(c.get(), options, std::move(auth), "AUTH"));
  }
  if (options.db != 0) {
    absl::StatusOr<RedisReplyPtr> selected = RedisCommand(
        c.get(), options, {"SELECT", std::to_string(options.db)}, "SELECT");
    if (!selected.ok()) {
      if (absl::IsInternal(selected.status())) {
        return absl::FailedPreconditionError(selected.status().message());
      }
      return selected.status();
    }
  }
  return c;
}

}  // namespace internal

namespace {

// Keeps a write to a connection the server closed from raising SIGPIPE,
// whose default action ends the process (hiredis writes with write(2), not
// send(MSG_NOSIGNAL)). SIGPIPE from a failed write is sent to the writing
// thread, so blocking it on this thread for the duration of the I/O and
// then discarding one that became pending is enough, and leaves the
// process's signal handling alone.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~ScopedSigpipeBlock() {
    if (!blocked_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero = {0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool blocked_ = false;
};

bool IsNoScript(const redisReply* r) {
  return r->type == REDIS_REPLY_ERROR && r->len >= 8 &&
         std::memcmp(r->str, "NOSCRIPT", 8) == 0;
}

}  // namespace

absl::Status RedisSinkOptions::Validate() const {
  const auto bad = [](std::string_view field, std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RedisSinkOptions.", std::string(field), ": ", std::string(why)));
  };
  if (unix_socket.has_value()) {
    if (unix_socket->empty()) return bad("unix_socket", "must not be empty");
  } else {
    if (host.empty()) return bad("host", "must be set");
    if (port < 1 || port > 65535) return bad("port", "must be in 1..65535");
  }
  if (username.has_value() && !password.has_value()) {
    return bad("username", "needs a password");
  }
  if (db < 0) return bad("db", "must be >= 0");
  if (ttl.has_value() && *ttl < absl::Milliseconds(1)) {
    return bad("ttl", "must be at least 1ms");
  }
  if (batch_size < 1) return bad("batch_size", "must be >= 1");
  if (updates_per_call < 1 || updates_per_call > 1000) {
    return bad("updates_per_call", "must be in 1..1000");
  }
  if (max_buffered_updates < batch_size) {
    return bad("max_buffered_updates", "must be >= batch_size");
  }
  if (connect_timeout <= absl::ZeroDuration()) {
    return bad("connect_timeout", "must be > 0");
  }
  if (command_timeout <= absl::ZeroDuration()) {
    return bad("command_timeout", "must be > 0");
  }
  if (reconnect_backoff_initial <= absl::ZeroDuration()) {
    return bad("reconnect_backoff_initial", "must be > 0");
  }
  if (reconnect_backoff_max < reconnect_backoff_initial) {
    return bad("reconnect_backoff_max", "must be >= reconnect_backoff_initial");
  }
  if (clock == nullptr) return bad("clock", "must not be null");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RedisSink>> RedisSink::Create(
    const RedisSinkOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<RedisSink> sink(new RedisSink(options));
  ScopedSigpipeBlock no_sigpipe;
  absl::Status s = sink->Connect();
  if (!s.ok()) {
    sink->Disconnect();
    return s;
  }
  ++sink->stats_.connects;
  return sink;
}

RedisSink::RedisSink(const RedisSinkOptions& options)
    : options_(options),
      ttl_ms_(options.ttl.has_value()
                  ? std::to_string(absl::ToInt64Milliseconds(*options.ttl))
                  : "0"),
      backoff_(options.reconnect_backoff_initial) {}

RedisSink::~RedisSink() { Disconnect(); }

std::string RedisSink::Where() const { return internal::RedisWhere(options_); }

void RedisSink::Disconnect() {
  if (context_ != nullptr) {
    redisFree(context_);
    context_ = nullptr;
  }
}

absl::Status RedisSink::Connect() {
  Disconnect();
  WEIR_ASSIGN_OR_RETURN(internal::RedisContextPtr c,
                        internal::ConnectRedis(options_));
  WEIR_ASSIGN_OR_RETURN(
      ReplyPtr sha,
      internal::RedisCommand(c.get(), options_,
                             {"SCRIPT", "LOAD", internal::kRedisSinkScript},
                             "SCRIPT LOAD"));
  if (sha->type != REDIS_REPLY_STRING) {
    return absl::InternalError(
        absl::StrCat(Where(), ": SCRIPT LOAD did not return a digest"));
  }
  script_sha_.assign(sha->str, sha->len);
  context_ = c.release();
  return absl::OkStatus();
}

absl::Status RedisSink::Fail(absl::Status status) {
  Disconnect();
  ++stats_.failures;
  next_attempt_ = options_.clock->Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.reconnect_backoff_max);
  last_error_ = status;
  return status;
}

absl::Status RedisSink::EnsureConnected() {
  if (context_ != nullptr) return absl::OkStatus();
  const absl::Time now = options_.clock->Now();
  if (now < next_attempt_) {
    return absl::UnavailableError(absl::StrCat(
        Where(), ": not connected (", last_error_.message(),
        "); next attempt in ", absl::FormatDuration(next_attempt_ - now)));
  }
  absl::Status s = Connect();
  if (!s.ok()) return Fail(std::move(s));
  backoff_ = options_.reconnect_backoff_initial;
  ++stats_.connects;
  return absl::OkStatus();
}

absl::Status RedisSink::SendBatchOnce(size_t n, bool* noscript) {
  *noscript = false;
  redisContext* c = context_;
  // Argument storage for one call; hiredis copies the command into its
  // output buffer at append time.
  std::vector<std::string> strings;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  size_t calls = 0;
  for (size_t begin = 0; begin < n; begin += options_.updates_per_call) {
    const size_t end = std::min(n, begin + options_.updates_per_call);
    const size_t k = end - begin;
    strings.clear();
    strings.reserve(3 + k * 6 + 1);
    strings.push_back("EVALSHA");
    strings.push_back(script_sha_);
    strings.push_back(std::to_string(k));
    for (size_t i = begin; i < end; ++i) {
      strings.push_back(absl::StrCat(options_.key_prefix, buffer_[i].key));
    }
    strings.push_back(ttl_ms_);
    for (size_t i = begin; i < end; ++i) {
      const FeatureUpdate& u = buffer_[i];
      strings.push_back(u.feature);
      strings.push_back(u.value.is_null() ? std::string()
                                          : "=" + u.value.ToString());
      strings.push_back(std::to_string(u.version_time));
      strings.push_back(std::to_string(u.version_offset));
      strings.push_back(std::to_string(u.window.start));
    }
    argv.clear();
    lens.clear();
    for (const std::string& s : strings) {
      argv.push_back(s.data());
      lens.push_back(s.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(),
                               lens.data()) != REDIS_OK) {
      return Fail(absl::UnavailableError(
          absl::StrCat(Where(), ": EVALSHA: ", c->errstr)));
    }
    ++calls;
  }
  // Every reply is read, errors included, so that the connection stays in
  // step with the commands sent.
  absl::Status first_error;
  int64_t applied = 0, skipped = 0;
  for (size_t i = 0; i < calls; ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) {
      return Fail(absl::UnavailableError(
          absl::StrCat(Where(), ": EVALSHA: ", c->errstr)));
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (IsNoScript(reply.get())) {
      *noscript = true;
    } else if (reply->type == REDIS_REPLY_ERROR) {
      if (first_error.ok()) {
        first_error = ReplyError(absl::StrCat(Where(), ": EVALSHA"),
                                 std::string_view(reply->str, reply->len));
      }
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
               reply->element[0]->type == REDIS_REPLY_INTEGER &&
               reply->element[1]->type == REDIS_REPLY_INTEGER) {
      applied += reply->element[0]->integer;
      skipped += reply->element[1]->integer;
    } else if (first_error.ok()) {
      first_error = absl::InternalError(
          absl::StrCat(Where(), ": unexpected reply to EVALSHA"));
    }
  }
  if (!first_error.ok()) {
    last_error_ = first_error;
    return first_error;
  }
  if (*noscript) return absl::OkStatus();
  // The calls that did run before a NOSCRIPT are counted when the batch is
  // sent again (as skipped, then).
  stats_.applied += applied;
  stats_.skipped += skipped;
  ++stats_.round_trips;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(n));
  return absl::OkStatus();
}

absl::Status RedisSink::SendBatch(size_t n) {
  WEIR_RETURN_IF_ERROR(EnsureConnected());
  n = std::min(n, buffer_.size());
  bool noscript = false;
  WEIR_RETURN_IF_ERROR(SendBatchOnce(n, &noscript));
  if (!noscript) return absl::OkStatus();
  // The server lost its script cache (a restart, SCRIPT FLUSH): load the
  // script again and resend the batch once.
  absl::Status s = Connect();
  if (!s.ok()) return Fail(std::move(s));
  WEIR_RETURN_IF_ERROR(SendBatchOnce(n, &noscript));
  if (noscript) {
    last_error_ = absl::UnavailableError(
        absl::StrCat(Where(), ": the script vanished right after SCRIPT LOAD"));
    return last_error_;
  }
  return absl::OkStatus();
}

absl::Status RedisSink::Drain(size_t min_left) {
  min_left = std::max<size_t>(min_left, 1);
  ScopedSigpipeBlock no_sigpipe;
  while (buffer_.size() >= min_left) {
    WEIR_RETURN_IF_ERROR(SendBatch(options_.batch_size));
  }
  return absl::OkStatus();
}

absl::Status RedisSink::Write(absl::Span<const FeatureUpdate> updates) {
  for (const FeatureUpdate& u : updates) {
    if (u.feature.empty() || u.feature.find('@') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(), ": feature name \"", u.feature,
                       "\" is empty or contains '@'"));
    }
  }
  const size_t max = options_.max_buffered_updates;
  if (buffer_.size() + updates.size() > max) {
    // No room: make some by sending what is buffered.
    absl::Status s = Drain(1);
    if (buffer_.size() + updates.size() > max) {
      if (!s.ok()) return s;
      // The buffer is empty and `updates` alone exceed it: send them
      // through it in pieces. On failure none stay buffered, the caller
      // sends them all again, and the pieces already applied are skipped.
      for (size_t i = 0; i < updates.size(); i += max) {
        const size_t end = std::min(updates.size(), i + max);
        buffer_.insert(buffer_.end(), updates.begin() + i,
                       updates.begin() + end);
        absl::Status sent = Drain(1);
        if (!sent.ok()) {
          buffer_.clear();
          return sent;
        }
      }
      return absl::OkStatus();
    }
  }
  buffer_.insert(buffer_.end(), updates.begin(), updates.end());
  // The updates are taken; a failure here leaves them buffered, to be sent
  // by a later Write or Flush, which reports it.
  Drain(options_.batch_size).IgnoreError();
  return absl::OkStatus();
}

absl::Status RedisSink::Flush() { return Drain(1); }

}  // namespace weir
