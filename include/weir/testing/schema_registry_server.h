// -----------------------------------------------------------------------------
// File: testing/schema_registry_server.h
// -----------------------------------------------------------------------------
//
// A TEST server speaking the subset of the Confluent schema registry REST
// API that weir and Confluent's serializers use, on 127.0.0.1 (a free port), in
// memory: registering a version (POST /subjects/{s}/versions, refused with 409
// when the subject's compatibility mode forbids it, as the registry does),
// schemas by id (GET /schemas/ids/{id}), a subject's versions (GET
// /subjects/{s}/versions, GET /subjects/{s}/versions/{n|latest}), looking a
// schema up under a subject (POST /subjects/{s}), compatibility configuration
// (GET/PUT /config and /config/{s}; BACKWARD by default, as the registry's)
// and the compatibility check (POST /compatibility/subjects/{s}/versions/
// latest). The real registry is a JVM service Debian does not package; the
// client is also tested against recorded real-registry answers.
//
// Its compatibility answers come from weir's own rules
// (weir/avro/avro_schema.h), so it cannot check those rules; it checks the
// client, the REST formats and the service's behaviour around them.
//
// Threading: the server answers on its own thread; the methods are
// thread-safe.

#ifndef WEIR_TESTING_SCHEMA_REGISTRY_SERVER_H_
#define WEIR_TESTING_SCHEMA_REGISTRY_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace weir {
namespace testing {

class SchemaRegistryServer {
 public:
  static absl::StatusOr<std::unique_ptr<SchemaRegistryServer>> Start();
  ~SchemaRegistryServer();

  // "http://127.0.0.1:<port>"
  std::string url() const;
  // Requests answered so far.
  int requests() const;
  // The next `n` requests are answered 503 (to test retries).
  void FailNext(int n);

  class Impl;

 private:
  explicit SchemaRegistryServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_SCHEMA_REGISTRY_SERVER_H_
