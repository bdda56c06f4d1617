// -----------------------------------------------------------------------------
// File: weir_produce.cc (the `weir-produce` tool)
// -----------------------------------------------------------------------------
//
// Writes lines (W-PAY events, one JSON object per line) into a Kafka topic:
// each line of stdin or --input becomes one message, keyed by the value of
// a top-level JSON string field (--key_field, default user_id). A line
// without that field, or one that is not JSON at all, is still produced,
// with a null key: malformed records must reach the topic like any other,
// so that the pipeline's dead-letter path sees them.
//
// With --format=avro each line is written as Avro instead, in the Confluent
// wire format: the tool registers the writer schema (--schema, an .avsc
// file) under the subject (--schema_subject, default <topic>-value) at
// --schema_registry, then writes each line as the magic byte, the schema id
// and the Avro body (weir/avro/avro_encoder.h says how JSON values map; a
// field missing from a line takes its default). A line that does not fit
// the schema cannot be written as Avro: it is skipped and counted
// (`skipped=N`, the first reason on stderr, exit 1). A schema the registry
// refuses as incompatible stops the tool before anything is produced.
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
//   $ weir-produce --bootstrap=... --topic=payments --format=avro \
//       --schema_registry=http://registry:8081 --schema=payment_v2.avsc \
//       < wpay.jsonl
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

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tools/common/command_line.h"
#include "weir/avro/avro_decoder.h"
#include "weir/avro/avro_encoder.h"
#include "weir/avro/avro_schema.h"
#include "weir/avro/schema_registry.h"
#include "weir/internal/json_reader.h"
#include "weir/kafka/internal/kafka_conf.h"
#include "weir/status_macros.h"

ABSL_FLAG(std::string, bootstrap, "",
          "Kafka bootstrap servers, HOST:PORT[,...]. Required.");
ABSL_FLAG(std::string, topic, "", "The topic to produce to. Required.");
ABSL_FLAG(std::string, input, "",
          "Read lines from this file instead of stdin.");
ABSL_FLAG(std::string, key_field, "user_id",
          "The top-level JSON string member whose value keys a message (lines "
          "without it get a null key and are still produced).");
ABSL_FLAG(std::string, partitioner, "murmur2_random",
          "librdkafka partitioner (murmur2_random is Java-compatible; null "
          "keys go to a random partition).");
ABSL_FLAG(int, delivery_timeout_ms, 120000,
          "Give up on a message after this many ms.");
ABSL_FLAG(std::string, format, "json",
          "json: each line as it is; avro: each line written as Avro with "
          "--schema, in the Confluent wire format.");
ABSL_FLAG(std::string, schema_registry, "",
          "--format=avro: the schema registry's URL (the schema is "
          "registered there).");
ABSL_FLAG(std::string, schema, "",
          "--format=avro: the writer schema, an Avro schema (.avsc) file.");
ABSL_FLAG(std::string, schema_subject, "",
          "--format=avro: the subject to register under. Empty: "
          "<topic>-value.");

namespace {

constexpr char kUsage[] =
    R"(produces each line of stdin (or --input) as one Kafka message, keyed by
a JSON string member. lz4, acks=all. Prints produced=N. Exit 0: all
delivered; 1: some delivery failed; 2: bad arguments or input.

usage: weir-produce --bootstrap=HOST:PORT[,...] --topic=TOPIC
                    [--input=FILE] [--key_field=NAME]
                    [--format=avro --schema_registry=URL --schema=FILE
                     [--schema_subject=NAME]]
                    [--partitioner=NAME] [--delivery_timeout_ms=MS]
                    [-X key=value]...
  -X key=value  any librdkafka producer property, e.g.
                -X enable.idempotence=true (repeatable; overrides the
                defaults))";

struct Flags {
  std::string bootstrap;
  std::string topic;
  std::string input;
  std::string key_field;
  std::string partitioner;
  int delivery_timeout_ms = 0;
  std::string format;
  std::string schema_registry;
  std::string schema_file;
  std::string schema_subject;
  std::vector<std::pair<std::string, std::string>> properties;
};

absl::StatusOr<Flags> FlagsFromCommandLine(int argc, char** argv) {
  Flags flags;
  flags.properties = weir::tools::ParseCommandLine(
                         argc, argv, {.usage = kUsage, .properties = true})
                         .properties;
  flags.bootstrap = absl::GetFlag(FLAGS_bootstrap);
  flags.topic = absl::GetFlag(FLAGS_topic);
  flags.input = absl::GetFlag(FLAGS_input);
  flags.key_field = absl::GetFlag(FLAGS_key_field);
  flags.partitioner = absl::GetFlag(FLAGS_partitioner);
  flags.delivery_timeout_ms = absl::GetFlag(FLAGS_delivery_timeout_ms);
  flags.format = absl::GetFlag(FLAGS_format);
  flags.schema_registry = absl::GetFlag(FLAGS_schema_registry);
  flags.schema_file = absl::GetFlag(FLAGS_schema);
  flags.schema_subject = absl::GetFlag(FLAGS_schema_subject);
  if (flags.format != "json" && flags.format != "avro") {
    return absl::InvalidArgumentError("--format: json or avro");
  }
  if (flags.format == "avro" &&
      (flags.schema_registry.empty() || flags.schema_file.empty())) {
    return absl::InvalidArgumentError(
        "--format=avro needs --schema_registry and --schema");
  }
  if (flags.bootstrap.empty()) {
    return absl::InvalidArgumentError("--bootstrap is required");
  }
  if (flags.topic.empty()) {
    return absl::InvalidArgumentError("--topic is required");
  }
  if (flags.key_field.empty()) {
    return absl::InvalidArgumentError("--key_field may not be empty");
  }
  if (flags.delivery_timeout_ms < 1) {
    return absl::InvalidArgumentError(
        "--delivery_timeout_ms wants a positive integer");
  }
  return flags;
}

// ---- Key extraction --------------------------------------------------------
//
// A line's key is the first top-level member named --key_field whose value is
// a string (JsonReader::FindTopLevelString): nested members and members
// before it are passed over, and a syntax error after it does not matter, so
// a truncated record keeps its partition. Anything else (not an object, no
// such member, a non-string value, invalid UTF-8) yields no key.

// ---- Producing -------------------------------------------------------------

// ---- Avro
// --------------------------------------------------------------------

// The writer schema, registered: what each line is written with.
struct AvroWriter {
  weir::AvroSchema schema;
  int32_t id = 0;
};

absl::StatusOr<AvroWriter> RegisterSchema(const Flags& flags) {
  FILE* f = std::fopen(flags.schema_file.c_str(), "rb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--schema=", flags.schema_file, ": ", std::strerror(errno)));
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  std::fclose(f);
  AvroWriter writer;
  absl::StatusOr<weir::AvroSchema> schema = weir::AvroSchema::Parse(text);
  if (!schema.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--schema=", flags.schema_file, ": ", schema.status().message()));
  }
  writer.schema = *std::move(schema);
  weir::SchemaRegistryOptions o;
  o.url = flags.schema_registry;
  WEIR_ASSIGN_OR_RETURN(auto registry, weir::SchemaRegistryClient::Create(o));
  const std::string subject = flags.schema_subject.empty()
                                  ? flags.topic + "-value"
                                  : flags.schema_subject;
  WEIR_ASSIGN_OR_RETURN(writer.id, registry->Register(subject, text));
  return writer;
}

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

  std::optional<AvroWriter> avro;
  if (flags.format == "avro") {
    absl::StatusOr<AvroWriter> registered = RegisterSchema(flags);
    if (!registered.ok()) {
      std::fprintf(stderr, "weir-produce: %s\n",
                   registered.status().ToString().c_str());
      rd_kafka_topic_destroy(topic);
      rd_kafka_destroy(rk);
      if (in != stdin) std::fclose(in);
      return absl::IsInvalidArgument(registered.status()) ? 2 : 1;
    }
    avro = *std::move(registered);
  }

  int exit_code = 0;
  int64_t queued = 0;
  int64_t skipped = 0;
  std::string first_skip;
  std::string encoded;
  weir::internal::JsonReader reader;
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t length;
  while ((length = getline(&line, &capacity, in)) >= 0) {
    absl::string_view value(line, static_cast<size_t>(length));
    absl::ConsumeSuffix(&value, "\n");
    std::optional<std::string> key = reader.FindTopLevelString(
        std::string_view(value.data(), value.size()), flags.key_field);
    if (avro.has_value()) {
      absl::StatusOr<std::string> body = weir::EncodeAvroFromJson(
          avro->schema, std::string_view(value.data(), value.size()));
      if (!body.ok()) {
        if (skipped++ == 0) {
          first_skip = absl::StrCat("line ", queued + skipped, ": ",
                                    body.status().message());
        }
        continue;
      }
      encoded = weir::AvroWireFormat(avro->id, *body);
      value = encoded;
    }
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
  if (skipped > 0) {
    std::printf("skipped=%lld\n", static_cast<long long>(skipped));
  }
  std::fflush(stdout);
  if (skipped > 0) {
    std::fprintf(stderr,
                 "weir-produce: %lld lines do not fit the Avro schema and "
                 "were not produced; first: %s\n",
                 static_cast<long long>(skipped), first_skip.c_str());
    if (exit_code == 0) exit_code = 1;
  }
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
  absl::StatusOr<Flags> flags = FlagsFromCommandLine(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "weir-produce: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  return Run(*flags);
}
