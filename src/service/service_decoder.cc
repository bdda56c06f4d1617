// The decoder a service's --format asks for (weir/service.h,
// CreateServiceDecoder): JSON, or Avro with writer schemas from a schema
// registry after the startup check of the reader schema against the
// subject.

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "weir/avro/avro_decoder.h"
#include "weir/avro/schema_registry.h"
#include "weir/json/json_decoder.h"
#include "weir/service.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

// An AvroDecoder with the registry client it asks for writer schemas.
class RegistryAvroDecoder final : public Decoder {
 public:
  RegistryAvroDecoder(std::unique_ptr<SchemaRegistryClient> registry,
                      std::unique_ptr<AvroDecoder> decoder)
      : registry_(std::move(registry)), decoder_(std::move(decoder)) {}

  absl::StatusOr<Event> Decode(const RawRecord& record) override {
    return decoder_->Decode(record);
  }
  absl::Status DecodeInto(const RawRecord& record, Event* event) override {
    return decoder_->DecodeInto(record, event);
  }

 private:
  std::unique_ptr<SchemaRegistryClient> registry_;  // outlives decoder_
  std::unique_ptr<AvroDecoder> decoder_;
};

// The Avro decoder's field names, from the JSON schema's.
absl::StatusOr<AvroDecoderOptions> AvroOptionsFor(const ServiceSchema& schema) {
  if (schema.avro_reader.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--format=avro: the ", schema.json.name,
                     " input has no Avro reader schema"));
  }
  AvroDecoderOptions o;
  o.reader_schema = schema.avro_reader;
  o.key_field = schema.json.key_field;
  if (schema.json.event_time_source == EventTimeSource::kField) {
    if (schema.json.event_time_type != JsonType::kTimestampMs) {
      return absl::InvalidArgumentError(
          "--format=avro: the event time must be in ms (a long)");
    }
    o.event_time_field = schema.json.event_time_field;
  }
  for (const JsonField& f : schema.json.fields)
    o.value_fields.push_back(f.name);
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> CreateServiceDecoder(
    const ServiceOptions& options, const ServiceSchema& schema) {
  if (options.format == "json") {
    WEIR_ASSIGN_OR_RETURN(std::unique_ptr<JsonDecoder> json,
                          JsonDecoder::Create(schema.json));
    return std::unique_ptr<Decoder>(std::move(json));
  }
  if (options.format != "avro") {
    return absl::InvalidArgumentError("--format: json or avro");
  }
  WEIR_ASSIGN_OR_RETURN(AvroDecoderOptions avro, AvroOptionsFor(schema));
  SchemaRegistryOptions ro;
  ro.url = options.schema_registry;
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<SchemaRegistryClient> registry,
                        SchemaRegistryClient::Create(ro));
  const std::string subject = options.schema_subject.empty()
                                  ? options.topic + "-value"
                                  : options.schema_subject;
  // The startup check: the reader schema must read what producers write.
  absl::Status check =
      CheckReaderAgainstSubject(*registry, subject, avro.reader_schema);
  if (absl::IsNotFound(check)) {
    std::fprintf(stderr,
                 "weir: schema subject %s has no version yet; records "
                 "are checked by their schema id as they come\n",
                 subject.c_str());
  } else if (!check.ok()) {
    return absl::Status(
        check.code(),
        absl::StrCat("--format=avro: refusing to start: ", check.message()));
  }
  avro.writer_schemas = registry.get();
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<AvroDecoder> decoder,
                        AvroDecoder::Create(std::move(avro)));
  return std::unique_ptr<Decoder>(std::make_unique<RegistryAvroDecoder>(
      std::move(registry), std::move(decoder)));
}

absl::Status RunService(ServiceOptions options, KeyedWindowOptions features,
                        const ServiceSchema& schema) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<Decoder> decoder,
                        CreateServiceDecoder(options, schema));
  if (options.plan.has_value()) return PlanService(options, features, *decoder);
  WEIR_ASSIGN_OR_RETURN(
      std::unique_ptr<Service> service,
      Service::Create(std::move(options), std::move(features), decoder.get()));
  return service->Run();
}

}  // namespace weir
