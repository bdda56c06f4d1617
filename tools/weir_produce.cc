// -----------------------------------------------------------------------------
// File: weir_produce.cc (the `weir-produce` tool)
// -----------------------------------------------------------------------------
//
// Writes lines (W-PAY events, one JSON object per line) into a Kafka topic:
// each line of stdin or --input becomes one message, keyed by the value of
// a top-level JSON string field (--key-field, default user_id). A line
// without that field, or one that is not JSON at all, is still produced,
// with a null key: malformed records must reach the topic like any other,
// so that the pipeline's dead-letter path sees them.
//
// Produces with lz4, acks=all, a Java-compatible murmur2 partitioner (so a
// key lands on the partition a Java client would pick) and linger/batch
// settings for throughput; waits for the delivery of every message. Prints
// `produced=N` (messages delivered) on stdout. Exits 0 when all were
// delivered, 1 when any delivery failed (with the first error on stderr),
// 2 on bad arguments or unreadable input.
//
// Example:
//   $ weir-produce --bootstrap=127.0.0.1:40123 --topic=payments < wpay.jsonl
//   produced=100000
//   $ weir-produce --bootstrap=... --topic=payments --input=wpay.jsonl \
//       -X enable.idempotence=true
//
// Threading: the main thread reads and produces; librdkafka sends on its
// own threads and reports deliveries on the main thread through rd_kafka_poll.

#include <librdkafka/rdkafka.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "weir/internal/json_string.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/status_macros.h"

namespace {

constexpr char kUsage[] =
    R"(usage: weir-produce --bootstrap=HOST:PORT[,...] --topic=TOPIC
                    [--input=FILE] [--key-field=NAME]
                    [--partitioner=NAME] [--delivery-timeout-ms=MS]
                    [-X key=value]...

Produces each line of stdin (or FILE) as one message, keyed by the JSON
string field NAME (default user_id; lines without it get a null key and are
still produced). lz4, acks=all. Prints produced=N. Exit 0: all delivered;
1: some delivery failed; 2: bad arguments or input.

  --partitioner=NAME        librdkafka partitioner (default murmur2_random,
                            Java-compatible; null keys go to a random
                            partition)
  --delivery-timeout-ms=MS  give up on a message after MS (default 120000)
  -X key=value              any librdkafka producer property, e.g.
                            -X enable.idempotence=true (repeatable;
                            overrides the defaults above)
)";

struct Flags {
  std::string bootstrap;
  std::string topic;
  std::string input;
  std::string key_field = "user_id";
  std::string partitioner = "murmur2_random";
  int delivery_timeout_ms = 120000;
  std::vector<std::pair<std::string, std::string>> properties;
};

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "-X" || absl::ConsumePrefix(&arg, "--property=") ||
        absl::ConsumePrefix(&arg, "-X")) {
      if (arg == "-X") {
        if (i + 1 >= argc) return absl::InvalidArgumentError("-X: no value");
        arg = argv[++i];
      }
      size_t eq = arg.find('=');
      if (eq == absl::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("-X wants key=value, got '", arg, "'"));
      }
      flags.properties.emplace_back(std::string(arg.substr(0, eq)),
                                    std::string(arg.substr(eq + 1)));
    } else if (absl::ConsumePrefix(&arg, "--bootstrap=")) {
      flags.bootstrap = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--topic=")) {
      flags.topic = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--input=")) {
      flags.input = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--key-field=")) {
      flags.key_field = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--partitioner=")) {
      flags.partitioner = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--delivery-timeout-ms=")) {
      if (!absl::SimpleAtoi(arg, &flags.delivery_timeout_ms) ||
          flags.delivery_timeout_ms < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--delivery-timeout-ms wants a positive integer, got '", arg, "'"));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown argument '", arg, "'"));
    }
  }
  if (flags.bootstrap.empty()) {
    return absl::InvalidArgumentError("--bootstrap is required");
  }
  if (flags.topic.empty()) {
    return absl::InvalidArgumentError("--topic is required");
  }
  if (flags.key_field.empty()) {
    return absl::InvalidArgumentError("--key-field may not be empty");
  }
  return flags;
}

// ---- Key extraction --------------------------------------------------------
//
// A small scanner over the top level of one JSON object: it walks member by
// member, skipping values (nested objects, arrays and strings included,
// escapes respected), and returns the first member named `field` whose value
// is a string, decoded. It stops at the first syntax error; a key found
// before the error is still returned, so a truncated record keeps its
// partition. Anything else (not an object, no such member, a non-string
// value) yields no key.

class KeyScanner {
 public:
  explicit KeyScanner(absl::string_view text) : text_(text) {}

  std::optional<std::string> Find(absl::string_view field) {
    SkipSpace();
    if (!Consume('{')) return std::nullopt;
    SkipSpace();
    if (Consume('}')) return std::nullopt;
    while (true) {
      SkipSpace();
      std::string name;
      if (!ReadString(&name)) return std::nullopt;
      SkipSpace();
      if (!Consume(':')) return std::nullopt;
      SkipSpace();
      if (name == field && Peek() == '"') {
        std::string value;
        if (!ReadString(&value)) return std::nullopt;
        return value;
      }
      if (!SkipValue()) return std::nullopt;
      SkipSpace();
      if (Consume(',')) continue;
      return std::nullopt;  // '}' (field absent) or a syntax error.
    }
  }

 private:
  static constexpr int kMaxDepth = 256;

  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool AtEnd() const { return pos_ >= text_.size(); }

  bool Consume(char c) {
    if (Peek() != c || AtEnd()) return false;
    ++pos_;
    return true;
  }

  void SkipSpace() {
    while (!AtEnd() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                        text_[pos_] == '\r' || text_[pos_] == '\n')) {
      ++pos_;
    }
  }

  // Reads a JSON string at the cursor into `out` (decoded), or skips it
  // when `out` is null.
  bool ReadString(std::string* out) {
    if (Peek() != '"' || AtEnd()) return false;
    return weir::internal::ReadJsonString(
               std::string_view(text_.data(), text_.size()), &pos_,
               /*allow_control_characters=*/false,
               out) == weir::internal::JsonStringError::kOk;
  }

  // Skips one value of any type, nested ones included.
  bool SkipValue() {
    char c = Peek();
    if (c == '"') return ReadString(nullptr);
    if (c == '{' || c == '[') {
      int depth = 0;
      while (!AtEnd()) {
        c = Peek();
        if (c == '"') {
          if (!ReadString(nullptr)) return false;
          continue;
        }
        ++pos_;
        if (c == '{' || c == '[') {
          if (++depth > kMaxDepth) return false;
        } else if (c == '}' || c == ']') {
          if (--depth == 0) return true;
        }
      }
      return false;
    }
    // A number or a literal: up to the next delimiter.
    size_t start = pos_;
    while (!AtEnd() && text_[pos_] != ',' && text_[pos_] != '}' &&
           text_[pos_] != ']' && text_[pos_] != ' ' && text_[pos_] != '\t' &&
           text_[pos_] != '\r' && text_[pos_] != '\n') {
      ++pos_;
    }
    return pos_ > start;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

// ---- Producing -------------------------------------------------------------

struct DeliveryState {
  int64_t delivered = 0;
  int64_t failed = 0;
  std::string first_error;
};

void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message,
                void* opaque) {
  auto* state = static_cast<DeliveryState*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++state->delivered;
    return;
  }
  if (state->failed++ == 0) {
    state->first_error = absl::StrCat(rd_kafka_err2name(message->err), ": ",
                                      rd_kafka_err2str(message->err));
  }
}

absl::StatusOr<rd_kafka_t*> NewProducer(const Flags& flags,
                                        DeliveryState* state) {
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"bootstrap.servers", flags.bootstrap},
      {"compression.codec", "lz4"},
      {"acks", "all"},
      // Fill large batches: bulk loads care about throughput, and a few
      // milliseconds of linger cost nothing here.
      {"linger.ms", "20"},
      {"batch.num.messages", "10000"},
      {"batch.size", "1000000"},
      {"queue.buffering.max.messages", "500000"},
      {"message.timeout.ms", absl::StrCat(flags.delivery_timeout_ms)},
      {"partitioner", flags.partitioner},
  };
  std::map<std::string, std::string> properties;
  for (const auto& [key, value] : flags.properties) properties[key] = value;
  WEIR_ASSIGN_OR_RETURN(
      weir::internal::KafkaConfPtr conf,
      weir::internal::NewKafkaConf("weir-produce", defaults, properties));
  rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
  rd_kafka_conf_set_opaque(conf.get(), state);
  char errstr[512];
  rd_kafka_t* rk =
      rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("rd_kafka_new: ", errstr));
  }
  conf.release();  // rd_kafka_new took it
  return rk;
}

// Queues one message, waiting for room in the local queue when it is full.
absl::Status Produce(rd_kafka_t* rk, rd_kafka_topic_t* topic,
                     absl::string_view value,
                     const std::optional<std::string>& key) {
  while (true) {
    int r = rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                             const_cast<char*>(value.data()), value.size(),
                             key.has_value() ? key->data() : nullptr,
                             key.has_value() ? key->size() : 0, nullptr);
    if (r == 0) return absl::OkStatus();
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::InternalError(absl::StrCat(
          "produce: ", rd_kafka_err2name(err), ": ", rd_kafka_err2str(err)));
    }
    // Deliveries free room in the queue; serve them before retrying.
    rd_kafka_poll(rk, 100);
  }
}

int Run(const Flags& flags) {
  FILE* in = stdin;
  if (!flags.input.empty()) {
    in = std::fopen(flags.input.c_str(), "rb");
    if (in == nullptr) {
      std::fprintf(stderr, "weir-produce: --input=%s: %s\n",
                   flags.input.c_str(), std::strerror(errno));
      return 2;
    }
  }

  DeliveryState state;
  absl::StatusOr<rd_kafka_t*> producer = NewProducer(flags, &state);
  if (!producer.ok()) {
    std::fprintf(stderr, "weir-produce: %s\n",
                 std::string(producer.status().message()).c_str());
    if (in != stdin) std::fclose(in);
    return 2;
  }
  rd_kafka_t* rk = *producer;
  rd_kafka_topic_t* topic =
      rd_kafka_topic_new(rk, flags.topic.c_str(), nullptr);
  if (topic == nullptr) {
    std::fprintf(stderr, "weir-produce: --topic=%s: %s\n", flags.topic.c_str(),
                 rd_kafka_err2str(rd_kafka_last_error()));
    rd_kafka_destroy(rk);
    if (in != stdin) std::fclose(in);
    return 2;
  }

  int exit_code = 0;
  int64_t queued = 0;
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t length;
  while ((length = getline(&line, &capacity, in)) >= 0) {
    absl::string_view value(line, static_cast<size_t>(length));
    absl::ConsumeSuffix(&value, "\n");
    std::optional<std::string> key = KeyScanner(value).Find(flags.key_field);
    if (absl::Status s = Produce(rk, topic, value, key); !s.ok()) {
      std::fprintf(stderr, "weir-produce: %s\n",
                   std::string(s.message()).c_str());
      exit_code = 1;
      break;
    }
    ++queued;
    rd_kafka_poll(rk, 0);
  }
  if (std::ferror(in)) {
    std::fprintf(stderr, "weir-produce: reading input: %s\n",
                 std::strerror(errno));
    exit_code = 2;
  }
  std::free(line);
  if (in != stdin) std::fclose(in);

  // Every queued message ends in a delivery report within
  // message.timeout.ms; flush until all are accounted for.
  while (state.delivered + state.failed < queued) {
    rd_kafka_flush(rk, 1000);
  }
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(rk);

  std::printf("produced=%lld\n", static_cast<long long>(state.delivered));
  std::fflush(stdout);
  if (state.failed > 0) {
    std::fprintf(stderr,
                 "weir-produce: %lld of %lld messages were not delivered to "
                 "topic %s; first error: %s\n",
                 static_cast<long long>(state.failed),
                 static_cast<long long>(queued), flags.topic.c_str(),
                 state.first_error.c_str());
    return 1;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  absl::StatusOr<Flags> flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "weir-produce: %s\n\n%s",
                 std::string(flags.status().message()).c_str(), kUsage);
    return 2;
  }
  return Run(*flags);
}
