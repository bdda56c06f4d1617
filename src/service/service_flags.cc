// The standard flags of a weir service (weir/service.h, ParseServiceFlags).
// They live in the library so that every service binary has the same ones;
// docs/operations.md ("Flags") lists them. A binary that links weir_service
// but does not call ParseServiceFlags does not pull this file in (static
// libraries link only what is referenced).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "weir/internal/command_line_flags.h"
#include "weir/service.h"

ABSL_FLAG(std::string, bootstrap, "",
          "Kafka bootstrap servers, host:port[,...].");
ABSL_FLAG(std::string, topic, "", "Input topic. Default: the service's.");
ABSL_FLAG(std::string, group, "",
          "Kafka consumer group. Default: the "
          "service's.");
ABSL_FLAG(std::string, format, "json",
          "How input records are written: json, or avro (the Confluent wire "
          "format: a magic byte, the writer schema's id, the Avro body; "
          "needs --schema_registry).");
ABSL_FLAG(std::string, schema_registry, "",
          "--format=avro: the schema registry's URL, e.g. "
          "http://registry:8081. At startup the service checks that its "
          "reader schema reads the subject's latest writer schema, and "
          "refuses to start if not.");
ABSL_FLAG(std::string, schema_subject, "",
          "--format=avro: the registry subject of the input's schema. "
          "Empty: <topic>-value.");
ABSL_FLAG(std::string, state_dir, "",
          "Local working directory for live state and checkpoint staging. "
          "Empty: a fresh temporary directory, removed at exit.");
ABSL_FLAG(std::string, state_backend, "rocksdb",
          "Where live state is kept: rocksdb or memory (small state, "
          "tests, backfills).");
ABSL_FLAG(std::string, checkpoint_uri, "",
          "Where checkpoints go: file:///abs/path or s3://bucket[/prefix]. "
          "Empty: file://<state_dir>/checkpoints.");
ABSL_FLAG(std::string, s3_endpoint, "",
          "For s3:// checkpoints: the endpoint of an S3-compatible server "
          "(e.g. http://127.0.0.1:9000, path-style). Empty: AWS. "
          "Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.");
ABSL_FLAG(absl::Duration, checkpoint_interval, absl::Seconds(10),
          "Time between checkpoints.");
ABSL_FLAG(int, checkpoint_tolerated_failures, 3,
          "Checkpoints that may fail in a row (e.g. the object store is "
          "down); the next failure stops the service with an error.");
ABSL_FLAG(int, checkpoint_retained, 3,
          "Checkpoints kept per partition (older ones are deleted).");
ABSL_FLAG(absl::Duration, checkpoint_min_pause, absl::Seconds(5),
          "Least time between the end of one checkpoint and the start of "
          "the next.");
ABSL_FLAG(absl::Duration, s3_request_timeout, absl::Minutes(2),
          "Time limit of one S3 request (s3:// stores); a request past it "
          "is abandoned and retried.");
ABSL_FLAG(int, s3_max_attempts, 5,
          "Attempts per S3 request (s3:// stores), the first included.");
ABSL_FLAG(std::string, sink, "",
          "Where features go: file:PATH (JSON lines), redis://HOST:PORT or "
          "kafka:TOPIC. Empty: redis://127.0.0.1:6379 if a Redis answers "
          "there, else file:<state_dir>/features.jsonl.");
ABSL_FLAG(std::string, dlq, "kafka",
          "Dead-letter queue: kafka (the topic <topic>.dlq) or file:PATH.");
ABSL_FLAG(std::string, late_output, "",
          "Where late records go, as dead letters of type late_record "
          "(replayable with weir-dlq-replay): kafka (the topic "
          "<topic>.late) or file:PATH. Empty: counted only.");
ABSL_FLAG(int, metrics_port, 0,
          "Port of the Prometheus endpoint on 127.0.0.1 (/metrics, /healthz, "
          "/readyz): 0 picks a free one, -1 turns it off.");
ABSL_FLAG(int64_t, max_events, 0,
          "Bounded run: stop once the consumer has read this many records "
          "(summed over the assigned partitions' offsets). 0: no limit.");
ABSL_FLAG(double, max_seconds, 0,
          "Bounded run: stop after this many seconds. 0: no limit.");
ABSL_FLAG(double, idle_exit, 0,
          "Bounded run: stop once no partition has lag and nothing arrived "
          "for this many seconds. 0: never.");
ABSL_FLAG(std::string, pipeline_version, "1",
          "Recorded in checkpoint manifests and dead-letter records.");
ABSL_FLAG(std::vector<std::string>, kafka_property, {},
          "A librdkafka consumer property, key=value; repeat the flag for "
          "more (e.g. --kafka_property=auto.offset.reset=error "
          "--kafka_property=session.timeout.ms=6000).");
ABSL_FLAG(std::string, redis_key_prefix, "",
          "Redis sink: prefix of each key's hash. Default: the service's.");
ABSL_FLAG(std::string, show_users, "",
          "Keys whose features the summary reads back from the sink, "
          "comma-separated. Default: the service's.");
ABSL_FLAG(int64_t, max_pending_updates, 50000,
          "Feature updates queued in front of the sink; when full, the "
          "input pauses until half of them are written. Larger absorbs "
          "sink hiccups and uses more memory.");
ABSL_FLAG(int64_t, sink_batch_size, 1000, "Feature updates per sink write.");
ABSL_FLAG(int, checkpoint_upload_threads, 4,
          "Threads uploading checkpoints, shared by every partition (1 to "
          "64). More shortens checkpoints of many partitions on a store with "
          "high request latency (S3).");
ABSL_FLAG(int, sink_delay_ms, 0,
          "Testing/chaos only: make the sink behave like a slow store that "
          "takes this long per batch. After each accepted batch it refuses "
          "writes (kUnavailable) for this long, so updates queue up and the "
          "input pauses (backpressure); at the end of a run it waits "
          "instead of refusing. 0: off.");
ABSL_FLAG(std::string, backfill_from, "",
          "Run as a backfill (docs/operations.md, \"Backfill\"): read "
          "historical input, write its features, fire every window and "
          "end. kafka (the topic, from --backfill_start to --backfill_end) "
          "or file:PATH[,PATH...] (JSON-lines files, one per partition; a "
          "directory stands for its *.jsonl files). Empty: the live "
          "service.");
ABSL_FLAG(std::string, backfill_start, "",
          "Backfill range start: an offset (every partition) or an RFC 3339 "
          "time (e.g. 2026-01-01T00:00:00Z; only windows the time range "
          "covers completely are written). Empty: the log start.");
ABSL_FLAG(std::string, backfill_end, "",
          "Backfill range end (exclusive): an offset or an RFC 3339 time, "
          "the same kind as --backfill_start. Empty: the log end.");

ABSL_FLAG(std::optional<absl::Time>, replay_from, std::nullopt,
          "Replay from this time (RFC 3339, e.g. 2026-12-05T08:00:00Z) beside "
          "the live service: start early enough to fill every window from "
          "then on, write only windows starting at or after it. Use with a "
          "--group, --checkpoint_uri, --dlq and --redis_key_prefix (or "
          "--sink) of the replay's own (docs/operations.md, \"Replay\").");
ABSL_FLAG(bool, plan, false,
          "Instead of serving: calibrate this service's feature definition "
          "on --plan_sample and print a capacity plan for --plan_target_rate "
          "and --plan_entities (docs/operations.md, \"Capacity planning\").");
ABSL_FLAG(std::string, plan_sample, "",
          "--plan: a file of input message values, one a line (JSON).");
ABSL_FLAG(double, plan_target_rate, 0, "--plan: average input rate, events/s.");
ABSL_FLAG(int64_t, plan_entities, 0, "--plan: distinct entities (keys).");
ABSL_FLAG(double, plan_peak, 3,
          "--plan: peak rate as a multiple of the target.");
ABSL_FLAG(std::optional<absl::Duration>, plan_retention, std::nullopt,
          "--plan: how long an entity's state lives after its last event. "
          "Default: the definition's longest window plus allowed lateness.");
ABSL_FLAG(double, plan_headroom, 0.7,
          "--plan: CPU utilisation planned at the peak.");
ABSL_FLAG(int32_t, plan_cores_per_instance, 2,
          "--plan: cores of each instance.");
ABSL_FLAG(double, plan_cache_fraction, 1,
          "--plan: share of an instance's state its block cache holds.");
ABSL_FLAG(int64_t, plan_max_events, 2'000'000,
          "--plan: most sample records the calibration runs.");
ABSL_FLAG(absl::Duration, plan_max_time, absl::Seconds(5),
          "--plan: most processing time the calibration runs.");
ABSL_FLAG(bool, plan_json, false, "--plan: print the plan as one JSON object.");

namespace weir {

absl::StatusOr<ServiceOptions> ParseServiceFlags(int argc, char** argv,
                                                 const ServiceOptions& defaults,
                                                 const std::string& usage) {
  // --help lists the service flags and the binary's own, not absl's.
  internal::ShowProgramFlagsInHelp(usage);

  // The binary's defaults become the flags' values before parsing.
  absl::SetFlag(&FLAGS_topic, defaults.topic);
  absl::SetFlag(&FLAGS_group, defaults.group);
  absl::SetFlag(&FLAGS_bootstrap, defaults.bootstrap);
  absl::SetFlag(&FLAGS_redis_key_prefix, defaults.redis_key_prefix);
  absl::SetFlag(&FLAGS_show_users, absl::StrJoin(defaults.show_keys, ","));
  absl::SetFlag(&FLAGS_pipeline_version, defaults.pipeline_version);
  absl::SetFlag(&FLAGS_state_backend, defaults.state_backend);
  absl::SetFlag(&FLAGS_dlq, defaults.dlq);
  absl::SetFlag(&FLAGS_format, defaults.format);
  absl::SetFlag(&FLAGS_schema_subject, defaults.schema_subject);

  std::vector<std::string> properties =
      internal::TakeRepeatedFlag("kafka_property", argc, argv);
  absl::ParseCommandLine(argc, argv);

  ServiceOptions o = defaults;
  auto bad = [](absl::string_view flag, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
  };
  o.bootstrap = absl::GetFlag(FLAGS_bootstrap);
  o.topic = absl::GetFlag(FLAGS_topic);
  o.group = absl::GetFlag(FLAGS_group);
  o.format = absl::GetFlag(FLAGS_format);
  o.schema_registry = absl::GetFlag(FLAGS_schema_registry);
  o.schema_subject = absl::GetFlag(FLAGS_schema_subject);
  o.state_dir = absl::GetFlag(FLAGS_state_dir);
  o.state_backend = absl::GetFlag(FLAGS_state_backend);
  o.checkpoint_uri = absl::GetFlag(FLAGS_checkpoint_uri);
  o.s3_endpoint = absl::GetFlag(FLAGS_s3_endpoint);
  o.checkpoint_interval = absl::GetFlag(FLAGS_checkpoint_interval);
  o.checkpoint_tolerated_failures =
      absl::GetFlag(FLAGS_checkpoint_tolerated_failures);
  o.checkpoint_retained = absl::GetFlag(FLAGS_checkpoint_retained);
  o.checkpoint_min_pause = absl::GetFlag(FLAGS_checkpoint_min_pause);
  o.s3_request_timeout = absl::GetFlag(FLAGS_s3_request_timeout);
  o.s3_max_attempts = absl::GetFlag(FLAGS_s3_max_attempts);
  o.sink = absl::GetFlag(FLAGS_sink);
  o.dlq = absl::GetFlag(FLAGS_dlq);
  const std::string late = absl::GetFlag(FLAGS_late_output);
  if (!late.empty()) o.late_output = late;
  const int metrics_port = absl::GetFlag(FLAGS_metrics_port);
  if (metrics_port < -1 || metrics_port > 65535) {
    return bad("metrics_port", "-1, 0 or a port");
  }
  o.metrics_port =
      metrics_port == -1 ? std::nullopt : std::optional<int>(metrics_port);
  const int64_t max_events = absl::GetFlag(FLAGS_max_events);
  const double max_seconds = absl::GetFlag(FLAGS_max_seconds);
  const double idle_exit = absl::GetFlag(FLAGS_idle_exit);
  if (max_events < 0) return bad("max_events", "must not be negative");
  if (!(max_seconds >= 0) || !(idle_exit >= 0)) {
    return bad("max_seconds / --idle_exit", "must not be negative");
  }
  if (max_events > 0) o.max_events = max_events;
  if (max_seconds > 0) o.max_time = absl::Seconds(max_seconds);
  if (idle_exit > 0) o.idle_exit = absl::Seconds(idle_exit);
  o.pipeline_version = absl::GetFlag(FLAGS_pipeline_version);
  o.kafka_properties = absl::GetFlag(FLAGS_kafka_property);
  o.kafka_properties.insert(o.kafka_properties.end(), properties.begin(),
                            properties.end());
  o.redis_key_prefix = absl::GetFlag(FLAGS_redis_key_prefix);
  o.show_keys =
      absl::StrSplit(absl::GetFlag(FLAGS_show_users), ',', absl::SkipEmpty());
  o.max_pending_updates = absl::GetFlag(FLAGS_max_pending_updates);
  o.sink_batch_size = absl::GetFlag(FLAGS_sink_batch_size);
  o.checkpoint_upload_threads = absl::GetFlag(FLAGS_checkpoint_upload_threads);
  const int sink_delay_ms = absl::GetFlag(FLAGS_sink_delay_ms);
  if (sink_delay_ms < 0 || sink_delay_ms > 60000) {
    return bad("sink_delay_ms", "0 to 60000");
  }
  o.sink_delay = absl::Milliseconds(sink_delay_ms);
  o.replay_from = absl::GetFlag(FLAGS_replay_from);
  if (absl::GetFlag(FLAGS_plan)) {
    ServicePlanOptions& plan = o.plan.emplace();
    plan.sample = absl::GetFlag(FLAGS_plan_sample);
    plan.targets.target_rate = absl::GetFlag(FLAGS_plan_target_rate);
    plan.targets.entities = absl::GetFlag(FLAGS_plan_entities);
    plan.targets.peak = absl::GetFlag(FLAGS_plan_peak);
    plan.targets.headroom = absl::GetFlag(FLAGS_plan_headroom);
    plan.targets.cores_per_instance =
        absl::GetFlag(FLAGS_plan_cores_per_instance);
    plan.targets.cache_fraction = absl::GetFlag(FLAGS_plan_cache_fraction);
    plan.retention = absl::GetFlag(FLAGS_plan_retention);
    plan.calibration.max_events = absl::GetFlag(FLAGS_plan_max_events);
    plan.calibration.max_time = absl::GetFlag(FLAGS_plan_max_time);
    plan.json = absl::GetFlag(FLAGS_plan_json);
  }
  const std::string backfill_from = absl::GetFlag(FLAGS_backfill_from);
  const std::string backfill_start = absl::GetFlag(FLAGS_backfill_start);
  const std::string backfill_end = absl::GetFlag(FLAGS_backfill_end);
  if (!backfill_from.empty()) {
    BackfillOptions b;
    b.from = backfill_from;
    for (const auto& [text, is_start] :
         {std::pair(backfill_start, true), std::pair(backfill_end, false)}) {
      if (absl::Status s = ParseBackfillBound(text, is_start, b); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
      }
    }
    o.backfill = std::move(b);
  } else if (!backfill_start.empty() || !backfill_end.empty()) {
    return bad("backfill_start / --backfill_end", "need --backfill_from");
  }

  // Every other field as Validate sees it; the bootstrap may still be
  // filled in by the binary (an embedded default).
  ServiceOptions probe = o;
  if (probe.bootstrap.empty()) probe.bootstrap = "-";
  if (absl::Status s = probe.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  return o;
}

}  // namespace weir
