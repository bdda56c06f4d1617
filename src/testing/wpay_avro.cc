#include "weir/testing/wpay_avro.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "weir/avro/avro_decoder.h"
#include "weir/avro/schema_registry.h"
#include "weir/status_macros.h"

namespace weir {
namespace testing {
namespace {

using Type = AvroNode::Type;

void WriteLong(std::string& out, int64_t v) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  while (z >= 0x80) {
    out.push_back(static_cast<char>((z & 0x7f) | 0x80));
    z >>= 7;
  }
  out.push_back(static_cast<char>(z));
}

void WriteBytes(std::string& out, std::string_view s) {
  WriteLong(out, static_cast<int64_t>(s.size()));
  out.append(s);
}

// The fewest big-endian two's-complement bytes holding `v`.
std::string Unscaled(int64_t v) {
  std::string b;
  for (int shift = 56; shift >= 0; shift -= 8) {
    b.push_back(static_cast<char>(static_cast<uint64_t>(v) >> shift));
  }
  size_t skip = 0;
  while (skip + 1 < b.size() &&
         ((b[skip] == 0 && (b[skip + 1] & 0x80) == 0) ||
          (b[skip] == '\xff' && (b[skip + 1] & 0x80) != 0))) {
    ++skip;
  }
  return b.substr(skip);
}

absl::Status Unsupported(const AvroNode::Field& f) {
  return absl::InvalidArgumentError(
      absl::StrCat("W-PAY cannot write field ", f.name));
}

// The union branch of type `want`, or -1.
int BranchOf(const AvroSchema& schema, const AvroNode& u, Type want) {
  for (size_t i = 0; i < u.branches.size(); ++i) {
    if (schema.node(u.branches[i]).type == want) return static_cast<int>(i);
  }
  return -1;
}

// A field's default (null, boolean, int, long or string).
absl::Status WriteDefault(const AvroSchema& schema, const AvroNode::Field& f,
                          std::string& out) {
  if (!f.has_default) return Unsupported(f);
  simdjson::dom::parser parser;
  simdjson::dom::element d;
  if (parser.parse(f.default_json).get(d)) return Unsupported(f);
  const AvroNode* n = &schema.node(f.type);
  if (n->type == Type::kUnion) {  // a default is of the first branch
    out.push_back(0);
    n = &schema.node(n->branches.at(0));
  }
  switch (n->type) {
    case Type::kNull:
      return absl::OkStatus();
    case Type::kBoolean: {
      bool v;
      if (d.get_bool().get(v)) return Unsupported(f);
      out.push_back(v ? 1 : 0);
      return absl::OkStatus();
    }
    case Type::kInt:
    case Type::kLong: {
      int64_t v;
      if (d.get_int64().get(v)) return Unsupported(f);
      WriteLong(out, v);
      return absl::OkStatus();
    }
    case Type::kString: {
      std::string_view v;
      if (d.get_string().get(v)) return Unsupported(f);
      WriteBytes(out, v);
      return absl::OkStatus();
    }
    default:
      return Unsupported(f);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<WPayAvroWriter>> WPayAvroWriter::WithId(
    int32_t schema_id, const std::string& writer_schema) {
  WEIR_ASSIGN_OR_RETURN(AvroSchema schema, AvroSchema::Parse(writer_schema));
  if (schema.node(schema.root()).type != Type::kRecord) {
    return absl::InvalidArgumentError("the W-PAY writer schema is a record");
  }
  auto writer = std::unique_ptr<WPayAvroWriter>(
      new WPayAvroWriter(schema_id, std::move(schema)));
  // Every field must be writable: try one payment.
  WPayEvent probe;
  probe.amount_cents = 1;
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
  std::string body;
  for (const AvroNode::Field& f : schema_.node(schema_.root()).fields) {
    const AvroNode& n = schema_.node(f.type);
    if (f.name == "user_id" || f.name == "merchant_id") {
      if (n.type != Type::kString) return Unsupported(f);
      WriteBytes(body, f.name == "user_id" ? event.user_id : event.merchant_id);
    } else if (f.name == "event_timestamp") {
      if (n.type != Type::kLong && n.type != Type::kInt) return Unsupported(f);
      WriteLong(body, event.event_time);
    } else if (f.name == "amount") {
      const AvroNode* dec = &n;
      if (n.type == Type::kUnion) {
        const int null_branch = BranchOf(schema_, n, Type::kNull);
        const int bytes_branch = BranchOf(schema_, n, Type::kBytes);
        if (null_branch < 0 || bytes_branch < 0) return Unsupported(f);
        if (!event.amount_cents.has_value()) {
          WriteLong(body, null_branch);
          continue;
        }
        WriteLong(body, bytes_branch);
        dec = &schema_.node(n.branches[bytes_branch]);
      }
      if (dec->type != Type::kBytes || dec->logical_type != "decimal" ||
          dec->scale < 2 || dec->scale > 12 || !event.amount_cents) {
        return Unsupported(f);
      }
      int64_t unscaled = *event.amount_cents;
      for (int s = 2; s < dec->scale; ++s) unscaled *= 10;
      WriteBytes(body, Unscaled(unscaled));
    } else {
      WEIR_RETURN_IF_ERROR(WriteDefault(schema_, f, body));
    }
  }
  return AvroWireFormat(schema_id_, body);
}

}  // namespace testing
}  // namespace weir
