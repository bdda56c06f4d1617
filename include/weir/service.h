// -----------------------------------------------------------------------------
// File: service.h
// -----------------------------------------------------------------------------
//
// A `Service` is a whole feature service around a `Pipeline`: given the
// feature definition, a decoder and where the input, features, dead
// letters, late records and checkpoints go, it
//   - reads a Kafka topic as a consumer group member (partitions and their
//     state move between the instances of the group through the checkpoint
//     store), in JSON or, given a `ServiceSchema` and `--format=avro`, Avro
//     with writer schemas from a schema registry, checked at startup;
//   - writes features to a file (`file:PATH`, JSON lines), Redis
//     (`redis://HOST:PORT`) or a Kafka topic (`kafka:TOPIC`);
//   - sends bad records to a dead-letter queue (`kafka`: the topic
//     `<topic>.dlq`, or `file:PATH`) and, when asked, late records to a
//     late-record output (`kafka`: the topic `<topic>.late`, or `file:PATH`;
//     weir/late_records.h), both replayable with weir-dlq-replay;
//   - checkpoints to `file:///abs/path` or `s3://bucket[/prefix]`;
//   - serves Prometheus text on 127.0.0.1 (`/metrics`, every metric
//     docs/operations.md lists: that list is a contract, checked by
//     tests/integration/service_test.cc), `/healthz` (200 while the
//     pipeline runs, 503 once it failed) and `/readyz` (200 once partitions
//     are assigned and restored and records flow, 503 before and during a
//     restore);
//   - logs its phase on stderr (`weir phase=<name>`, docs/operations.md);
//   - stops on SIGTERM / SIGINT with a final checkpoint and no firing
//     (another instance carries on), or at the end of a bounded run
//     (`max_events`, `max_time`, `idle_exit`), where every open window fires
//     and a last checkpoint is taken;
//   - prints a summary at the end (figures, peak RSS, and the features of a
//     few keys read back from the sink);
//   - or, given `backfill`, runs the same definition over historical input
//     (a Kafka range of offsets or times, or JSON-lines files) and ends
//     (weir/backfill.h).
//
// `ServiceOptions` holds the settings; `ParseServiceFlags` fills it from the
// standard command-line flags (absl flags, defined in src/service/
// service_flags.cc, so every service binary has the same ones:
// docs/operations.md lists them), next to the binary's own flags.
//
// Threading: Run() is called on one thread, which runs the pipeline. Stop(),
// metrics_url() and stats() may be called from any thread. Besides the threads
// of librdkafka, RocksDB and the pipeline's checkpoint uploads, Run starts one
// signal-watcher thread ("weir-signals", when `handle_signals`); Create
// starts the metrics HTTP thread ("weir-metrics", when `metrics_port` is
// set).
//
// Example (examples/order_features/main.cc is a whole one):
//   int main(int argc, char** argv) {
//     weir::ServiceOptions defaults;
//     defaults.name = "order_features";
//     defaults.topic = "orders";
//     defaults.group = "order-features";
//     absl::StatusOr<weir::ServiceOptions> options =
//         weir::ParseServiceFlags(argc, argv, defaults, "order features");
//     if (!options.ok()) return weir::ReportServiceError(options, 2);
//     auto decoder = weir::JsonDecoder::Create(OrderSchema());
//     if (!decoder.ok()) return weir::ReportServiceError(decoder, 1);
//     return weir::ReportServiceError(
//         weir::RunService(*std::move(options), OrderFeatures(),
//                          decoder->get()),
//         1);
//   }

#ifndef WEIR_SERVICE_H_
#define WEIR_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/backfill.h"
#include "weir/capacity_calibration.h"
#include "weir/capacity_plan.h"
#include "weir/decode.h"
#include "weir/env.h"
#include "weir/json/json_decoder.h"
#include "weir/keyed_window_operator.h"
#include "weir/pipeline.h"

namespace weir {

// What a service binary runs instead of serving when asked for a capacity
// plan (`--plan`): its own feature definition and decoder calibrated on a
// sample of its input (weir/capacity_calibration.h), then a plan printed
// for the targets (weir/capacity_plan.h; docs/operations.md, "Capacity
// planning").
struct ServicePlanOptions {
  // A file of message values, one a line, as the service's JSON decoder
  // reads them (e.g. copied from the topic). Required.
  std::string sample;
  // The deployment's targets. `targets.checkpoint_interval` is replaced by
  // the service's `checkpoint_interval`, and `targets.retention` by
  // `retention`.
  CapacityTargets targets;
  // How long an entity's state lives. Default: unset, the definition's
  // StateRetention (longest window plus allowed lateness)
  std::optional<absl::Duration> retention;
  // How long and how much the calibration runs.
  CalibrationOptions calibration;
  // Print the report as one JSON object instead of text. Default: false
  bool json = false;

  // `targets` with the service's checkpoint interval and `retention` (or,
  // when unset, `definition_retention`).
  CapacityTargets TargetsFor(absl::Duration checkpoint_interval,
                             absl::Duration definition_retention) const;
};

struct ServiceOptions {
  // ---- identity ----

  // The pipeline's name: checkpoint paths, dead-letter records and the
  // `pipeline` label of every metric. REQUIRES: [a-z0-9_]+.
  std::string name;

  // Starts each printed line and is the Kafka client.id.
  // Default: empty, which uses `name` with '_' turned into '-'
  std::string program_name;

  // Recorded in checkpoint manifests and dead-letter records. Default: "1"
  std::string pipeline_version = "1";

  // ---- input ----

  // Kafka bootstrap servers, host:port[,...]. Required.
  std::string bootstrap;
  // The input topic. Required.
  std::string topic;
  // The consumer group. Required.
  std::string group;
  // librdkafka consumer properties, "key=value" each. auto.offset.reset,
  // partition.assignment.strategy and client.id map to KafkaSourceOptions.
  std::vector<std::string> kafka_properties;
  // How input records are written: "json" or "avro" (the Confluent wire
  // format, writer schemas from `schema_registry`). Used when RunService is
  // given a ServiceSchema. Default: "json"
  std::string format = "json";
  // format "avro": the schema registry's base URL. Required then.
  std::string schema_registry;
  // format "avro": the registry subject whose latest writer schema the
  // reader schema must read at startup. Default: empty, "<topic>-value"
  std::string schema_subject;

  // ---- backfill ----

  // Runs the service as a backfill over this input and range (weir/
  // backfill.h): it reads the range, fires every window, takes a last
  // checkpoint and ends; group `<group>-backfill`, checkpoints under
  // `<checkpoint_uri>/backfill-<range>`. A file backfill needs no Kafka
  // unless a Kafka output is asked for. Default: unset (the live service)
  std::optional<BackfillOptions> backfill;

  // ---- bounded runs (unset: no limit) ----

  // Stop once the consumer's positions add up to this many records
  // (counted over the assigned partitions' offsets, so a restarted instance
  // counts what earlier runs checkpointed). REQUIRES: > 0 when set.
  std::optional<int64_t> max_events;
  // Stop after this long. REQUIRES: > 0 when set.
  std::optional<absl::Duration> max_time;
  // Stop once every assigned partition has no lag and nothing arrived for
  // this long. REQUIRES: > 0 when set.
  std::optional<absl::Duration> idle_exit;

  // ---- state and checkpoints ----

  // Local working directory for live state and checkpoint staging.
  // Default: empty, a fresh temporary directory removed at the end of Run
  std::string state_dir;
  // "rocksdb" (RocksDbBackendFactory) or "memory" (MemoryBackendFactory:
  // state in memory, checkpoints one file per partition). Default: "rocksdb"
  std::string state_backend = "rocksdb";
  // file:///abs/path or s3://bucket[/prefix].
  // Default: empty, file://<state_dir>/checkpoints
  std::string checkpoint_uri;
  // s3:// stores: the endpoint of an S3-compatible server (path-style).
  // Default: empty, AWS
  std::string s3_endpoint;
  // Time limit of one S3 request. Default: absl::Minutes(2)
  absl::Duration s3_request_timeout = absl::Minutes(2);
  // Attempts per S3 request, the first included. Default: 5
  int s3_max_attempts = 5;
  // Time between checkpoints. Default: absl::Seconds(10)
  absl::Duration checkpoint_interval = absl::Seconds(10);
  // Checkpoints that may fail in a row before Run fails. Default: 3
  int checkpoint_tolerated_failures = 3;
  // Checkpoints kept per partition. Default: 3
  int checkpoint_retained = 3;
  // Least time between the end of one checkpoint and the start of the next.
  // Default: absl::Seconds(5)
  absl::Duration checkpoint_min_pause = absl::Seconds(5);
  // Threads uploading checkpoints (1 to 64). Default: 4
  int checkpoint_upload_threads = 4;

  // ---- outputs ----

  // file:PATH, redis://HOST:PORT or kafka:TOPIC. Default: empty,
  // redis://127.0.0.1:6379 if a Redis answers there, else
  // file:<state_dir>/features.jsonl
  std::string sink;
  // Redis sink: prefix of each key's hash. Default: ""
  std::string redis_key_prefix;
  // "kafka" (the topic <topic>.dlq) or file:PATH. Default: "kafka"
  std::string dlq = "kafka";
  // Where late records go: "kafka" (the topic <topic>.late) or file:PATH,
  // each record as a dead letter of type "late_record" (weir/
  // late_records.h). Default: unset, late records are only counted
  std::optional<std::string> late_output;
  // Feature updates per sink write. Default: 1000
  int64_t sink_batch_size = 1000;
  // Feature updates queued in front of the sink; when full, the input
  // pauses. Larger absorbs sink hiccups, uses more memory. Default: 50000
  int64_t max_pending_updates = 50000;
  // Testing/chaos only: after each accepted batch the sink refuses writes
  // (kUnavailable) for this long, like a slow store; at the end of a run it
  // waits instead. Default: absl::ZeroDuration() (off)
  absl::Duration sink_delay = absl::ZeroDuration();

  // ---- operations ----

  // Port of the metrics endpoint on 127.0.0.1; 0 picks a free one.
  // Default: 0; unset turns the endpoint off
  std::optional<int> metrics_port = 0;
  // Keys whose features the summary reads back from the sink. Default: none
  std::vector<std::string> show_keys;
  // Lines the summary prints under its title (e.g. what an embedded input
  // generator did). Default: none
  std::vector<std::string> summary_notes;
  // Stop on SIGTERM / SIGINT (handlers installed during Run, reset to the
  // default after). At most one running Service per process may set
  // it. Default: true
  bool handle_signals = true;
  // The file system of the state directory (and the memory backend's
  // state in it), of checkpoints (file://, and S3's local files), and of
  // file: sinks, dead-letter queues and late output (a fault-injecting Env
  // in tests). Not owned; must outlive the Service.
  // Default: Env::Default()
  Env* env = Env::Default();
  // Called on the service's thread right after each `weir phase=<name>`
  // line, with the name ("startup", then weir::PipelinePhaseName's), e.g.
  // to export the phase elsewhere or, in crash tests, to die in a chosen
  // phase. Default: none
  std::function<void(std::string_view phase)> phase_listener;

  // ---- replay (docs/operations.md, "Replay without downtime") ----

  // Set: this instance rebuilds features from this time beside a live
  // service. A partition without a checkpoint starts at its first record
  // stamped at or after replay_from minus the definition's warm-up
  // (BackfillWarmup: longest window plus allowed lateness plus max
  // out-of-orderness), and only windows
  // starting at or after replay_from are written to the sink; earlier ones
  // are computed for the warm-up and withheld. Give the replay a group,
  // checkpoint_uri, dlq and sink (or redis_key_prefix) of its own. Every
  // service logs `weir caught_up ...` once all its partitions have no lag.
  // Default: unset
  std::optional<absl::Time> replay_from;

  // ---- capacity planning ----

  // Set: RunService calibrates the definition and prints a plan instead of
  // serving (PlanService). Only `checkpoint_interval` and `format` ("json")
  // of the other options matter then. Default: unset
  std::optional<ServicePlanOptions> plan;

  // kInvalidArgument naming the first bad field (by its flag name).
  absl::Status Validate() const;
};

class Service {
 public:
  // Opens the parts (sink, dead-letter queue, late output, checkpoint
  // store, Kafka consumer), registers the metrics and starts the metrics
  // endpoint. `decoder` is not owned and must outlive the service.
  // kInvalidArgument for bad options; the parts' errors otherwise.
  static absl::StatusOr<std::unique_ptr<Service>> Create(
      ServiceOptions options, KeyedWindowOptions features, Decoder* decoder);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Runs the pipeline until a bounded run ends or Stop() (or a signal), then
  // leaves the consumer group and prints the summary. Call once.
  absl::Status Run();

  // Asks Run to stop with a final checkpoint and no firing. Any thread.
  void Stop();

  // "http://127.0.0.1:<port>/metrics", empty when the endpoint is off.
  std::string metrics_url() const;

  // The pipeline's figures (what the summary prints). Any thread.
  PipelineStats stats() const;

  class Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Service::Create(...) and Run(); with `options.plan`, PlanService instead.
absl::Status RunService(ServiceOptions options, KeyedWindowOptions features,
                        Decoder* decoder);

// Calibrates `features` with `decoder` on `options.plan->sample` and prints
// the capacity plan for `options.plan->targets` on stdout (text, or JSON
// with `options.plan->json`). kInvalidArgument for bad options (by flag
// name) or without `options.plan`; the calibration's errors otherwise.
absl::Status PlanService(const ServiceOptions& options,
                         const KeyedWindowOptions& features, Decoder& decoder);

// RunService with `options.backfill = backfill`: the same definition over
// historical input, ending once it is read (weir/backfill.h).
absl::Status RunBackfill(ServiceOptions options, BackfillOptions backfill,
                         KeyedWindowOptions features, Decoder* decoder);

// A feature's input schema in each format a service reads (--format).
struct ServiceSchema {
  // The JSON schema; its key, event-time and value field names are also
  // the Avro reader's (ms since the epoch), value fields in the same order.
  JsonSchema json;
  // The Avro reader schema (Avro JSON, a record). Empty: JSON only.
  std::string avro_reader;
};

// The decoder `options.format` asks for. "json": a JsonDecoder of
// `schema.json`. "avro": an AvroDecoder of `schema.avro_reader` whose writer
// schemas come from `options.schema_registry` by id (cached); first it
// checks that the reader schema reads the subject's latest writer schema
// (every version under a _TRANSITIVE mode) and returns kFailedPrecondition
// naming the field and the rule when it cannot (a subject with no version
// yet passes: nothing was written). Records with an unknown or unreadable
// schema id are the decoder's schema_* dead letters
// (weir/avro/avro_decoder.h).
absl::StatusOr<std::unique_ptr<Decoder>> CreateServiceDecoder(
    const ServiceOptions& options, const ServiceSchema& schema);

// CreateServiceDecoder(options, schema), then RunService with it.
absl::Status RunService(ServiceOptions options, KeyedWindowOptions features,
                        const ServiceSchema& schema);

// Parses the command line with absl flags: the standard service flags
// (docs/operations.md, "Flags") and the binary's own ABSL_FLAGs. A flag left
// at its default keeps the value `defaults` gives (so a binary chooses its
// default topic, group, ...). `--kafka_property` may be repeated. `usage`
// heads --help. Errors (a bad value) are kInvalidArgument naming the flag.
absl::StatusOr<ServiceOptions> ParseServiceFlags(int argc, char** argv,
                                                 const ServiceOptions& defaults,
                                                 const std::string& usage);

// For main(): prints "<program>: <status>" on stderr and returns
// `exit_code`, or returns 0 for OK.
int ReportServiceError(const absl::Status& status, int exit_code,
                       const std::string& program = "");
template <typename T>
int ReportServiceError(const absl::StatusOr<T>& s, int exit_code,
                       const std::string& program = "") {
  return ReportServiceError(s.status(), exit_code, program);
}

}  // namespace weir

#endif  // WEIR_SERVICE_H_
