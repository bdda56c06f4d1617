// libFuzzer target: the Avro decoder on arbitrary bytes, plain and in the
// Confluent wire format (writer schema ids 1 and 2 resolve, others do not).
// Whatever the input: no crash or sanitizer report, an event with the key,
// and the reader's three values, or a classified dead-letter error.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "weir/avro/avro_decoder.h"
#include "weir/decode.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

constexpr char kV1[] = R"({"type":"record","name":"Payment","fields":[
  {"name":"user_id","type":"string"},
  {"name":"amount","type":["null","int"]},
  {"name":"ts","type":"long"},
  {"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"attrs","type":{"type":"map","values":{"type":"record","name":"R","fields":[{"name":"x","type":"double"}]}}}]})";
constexpr char kV2[] = R"({"type":"record","name":"Payment","fields":[
  {"name":"ts","type":"long"},
  {"name":"user_id","type":"string"},
  {"name":"amount","type":["null","double"]},
  {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":2},"default":"\u0000"},
  {"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B","C"]}}]})";

class Fixed : public weir::SchemaLookup {
 public:
  absl::StatusOr<std::string> WriterSchema(int32_t id) override {
    if (id == 1) return std::string(kV1);
    if (id == 2) return std::string(kV2);
    return absl::NotFoundError("unknown");
  }
};

std::unique_ptr<weir::AvroDecoder> Make(weir::SchemaLookup* lookup,
                                        const char* writer) {
  weir::AvroDecoderOptions o;
  o.reader_schema = kV2;
  o.key_field = "user_id";
  o.event_time_field = "ts";
  o.value_fields = {"amount", "price", "kind"};
  o.writer_schemas = lookup;
  if (lookup == nullptr) o.writer_schema = writer;
  return *weir::AvroDecoder::Create(o);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixed* lookup = new Fixed();
  static weir::AvroDecoder* wire = Make(lookup, nullptr).release();
  static weir::AvroDecoder* plain = Make(nullptr, kV1).release();
  weir::RawRecord r;
  r.value = std::string_view(reinterpret_cast<const char*>(data), size);
  for (weir::AvroDecoder* d : {wire, plain}) {
    absl::StatusOr<weir::Event> e = d->Decode(r);
    if (e.ok()) {
      Check(e->values.size() == 3);
    } else {
      Check(!weir::GetDecodeError(e.status()).type.empty());
    }
  }
  return 0;
}
