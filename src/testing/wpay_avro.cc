#include "weir/testing/wpay_avro.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "weir/avro/avro_decoder.h"
#include "weir/avro/avro_encoder.h"
#include "weir/avro/schema_registry.h"
#include "weir/status_macros.h"

namespace weir {
namespace testing {

absl::StatusOr<std::unique_ptr<WPayAvroWriter>> WPayAvroWriter::WithId(
    int32_t schema_id, const std::string& writer_schema) {
  WEIR_ASSIGN_OR_RETURN(AvroSchema schema, AvroSchema::Parse(writer_schema));
  if (schema.node(schema.root()).type != AvroNode::Type::kRecord) {
    return absl::InvalidArgumentError("the W-PAY writer schema is a record");
  }
  auto writer = std::unique_ptr<WPayAvroWriter>(
      new WPayAvroWriter(schema_id, std::move(schema)));
  // Every field must be writable: try one payment.
  WPayEvent probe;
  probe.json = R"({"user_id":"u1","merchant_id":"m1","amount":0.01,)"
               R"("event_timestamp":1767225600000})";
  WEIR_RETURN_IF_ERROR(writer->Encode(probe).status());
  return writer;
}

absl::StatusOr<std::unique_ptr<WPayAvroWriter>> WPayAvroWriter::Create(
    const std::string& registry_url, const std::string& subject,
    const std::string& writer_schema) {
  // Checked before it is registered.
  WEIR_RETURN_IF_ERROR(WithId(0, writer_schema).status());
  SchemaRegistryOptions o;
  o.url = registry_url;
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<SchemaRegistryClient> registry,
                        SchemaRegistryClient::Create(o));
  WEIR_ASSIGN_OR_RETURN(int32_t id, registry->Register(subject, writer_schema));
  return WithId(id, writer_schema);
}

absl::StatusOr<std::string> WPayAvroWriter::Encode(
    const WPayEvent& event) const {
  if (event.json.empty()) {
    return absl::InvalidArgumentError("the W-PAY event has no JSON line");
  }
  WEIR_ASSIGN_OR_RETURN(std::string body,
                        EncodeAvroFromJson(schema_, event.json));
  return AvroWireFormat(schema_id_, body);
}

}  // namespace testing
}  // namespace weir
