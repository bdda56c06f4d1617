// -----------------------------------------------------------------------------
// File: avro/schema_registry.h
// -----------------------------------------------------------------------------
//
// A client of a Confluent-compatible schema registry's REST API: writer
// schemas by id (it is the `SchemaLookup` an AvroDecoder asks), subjects and
// their versions, the compatibility mode per subject (or the global one),
// registration, and the registry's own compatibility check.
//
// Schemas by id are cached for the life of the client (an id's schema never
// changes); everything else is asked each time. Requests time out after
// `request_timeout` and are retried on connection failures, time-outs and
// 5xx answers, up to `max_attempts`. Status codes carry retry meaning:
// kUnavailable (the registry could not be reached or answered 5xx: retry),
// kNotFound (no such subject, version or id), kFailedPrecondition (the
// registry refused: 409 incompatible schema, 422 invalid schema, with its
// message), kPermissionDenied (401/403).
//
// `CheckReaderAgainstSubject` is the startup check a service makes before it
// consumes: can its reader schema read the subject's latest writer schema
// (and every earlier one under a _TRANSITIVE mode)? Its error names the
// field and the rule.
//
// Threading: thread-safe; each call makes its own requests.
//
// Example:
//   weir::SchemaRegistryOptions o;
//   o.url = "http://registry:8081";
//   WEIR_ASSIGN_OR_RETURN(auto registry,
//   weir::SchemaRegistryClient::Create(o));
//   WEIR_RETURN_IF_ERROR(weir::CheckReaderAgainstSubject(
//       *registry, "payments-value", reader_schema_json));
//   decoder_options.writer_schemas = registry.get();

#ifndef WEIR_AVRO_SCHEMA_REGISTRY_H_
#define WEIR_AVRO_SCHEMA_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "weir/avro/avro_decoder.h"
#include "weir/schema_compatibility.h"

namespace weir {

struct SchemaRegistryOptions {
  // The registry's base URL, e.g. "http://127.0.0.1:8081". Required.
  std::string url;

  // HTTP basic authentication "user:password"; never put in a message.
  // Default: unset
  std::optional<std::string> basic_auth;

  // Longest wait for one request. REQUIRES: > 0. Default: absl::Seconds(5)
  absl::Duration request_timeout = absl::Seconds(5);

  // Tries of one request before kUnavailable. REQUIRES: >= 1. Default: 3
  int max_attempts = 3;

  // Wait before the second try, doubling after. REQUIRES: >= 0.
  // Default: absl::Milliseconds(100)
  absl::Duration retry_backoff = absl::Milliseconds(100);

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// One version of a subject.
struct RegisteredSchema {
  std::string subject;
  int32_t version = 0;
  int32_t id = 0;
  std::string schema;  // Avro JSON
};

class SchemaRegistryClient final : public SchemaLookup {
 public:
  static absl::StatusOr<std::unique_ptr<SchemaRegistryClient>> Create(
      SchemaRegistryOptions options);

  // GET /schemas/ids/{id}, cached.
  absl::StatusOr<std::string> WriterSchema(int32_t id) override;

  // GET /subjects/{subject}/versions.
  absl::StatusOr<std::vector<int32_t>> Versions(const std::string& subject);
  // GET /subjects/{subject}/versions/{version}; nullopt for "latest".
  absl::StatusOr<RegisteredSchema> Version(const std::string& subject,
                                           std::optional<int32_t> version);
  // POST /subjects/{subject}/versions; the schema's id.
  absl::StatusOr<int32_t> Register(const std::string& subject,
                                   const std::string& schema);
  // GET /config/{subject}, falling back to the global GET /config.
  absl::StatusOr<SchemaCompatibility> Compatibility(const std::string& subject);
  // PUT /config/{subject}.
  absl::Status SetCompatibility(const std::string& subject,
                                SchemaCompatibility mode);
  // POST /compatibility/subjects/{subject}/versions/latest: the registry's
  // own answer.
  absl::StatusOr<bool> TestCompatibility(const std::string& subject,
                                         const std::string& schema);

 private:
  struct Response {
    long status = 0;
    std::string body;
  };
  explicit SchemaRegistryClient(SchemaRegistryOptions options);
  // One request with retries; a non-2xx answer becomes a status.
  absl::StatusOr<std::string> Call(const std::string& method,
                                   const std::string& path,
                                   const std::string& body);
  absl::StatusOr<Response> Once(const std::string& method,
                                const std::string& path,
                                const std::string& body);

  const SchemaRegistryOptions options_;
  absl::Mutex mu_;
  std::map<int32_t, std::string> by_id_ ABSL_GUARDED_BY(mu_);
};

// kFailedPrecondition naming the field and the rule when `reader_schema`
// cannot read the subject's latest version (or, under a _TRANSITIVE mode,
// any version) as the subject's compatibility mode requires a consumer to;
// kNotFound if the subject has no version. Errors of the registry pass
// through.
absl::Status CheckReaderAgainstSubject(SchemaRegistryClient& registry,
                                       const std::string& subject,
                                       const std::string& reader_schema);

}  // namespace weir

#endif  // WEIR_AVRO_SCHEMA_REGISTRY_H_
