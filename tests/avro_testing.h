// Test helpers: records encoded with Avro C (libavro), an encoder
// independent of weir's decoder, and the Confluent wire format around them.

#ifndef WEIR_TESTS_AVRO_TESTING_H_
#define WEIR_TESTS_AVRO_TESTING_H_

#include <avro.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "weir/avro/avro_decoder.h"
#include "weir/record.h"

namespace weir {
namespace avro_testing {

// Encodes one record of `schema` with Avro C; `fill` sets its fields.
inline std::string Encode(const std::string& schema_json,
                          const std::function<void(avro_value_t*)>& fill) {
  avro_schema_t schema;
  EXPECT_EQ(avro_schema_from_json_length(schema_json.data(), schema_json.size(),
                                         &schema),
            0)
      << avro_strerror();
  avro_value_iface_t* iface = avro_generic_class_from_schema(schema);
  avro_value_t value;
  avro_generic_value_new(iface, &value);
  fill(&value);
  std::string buf(1 << 16, '\0');
  avro_writer_t w = avro_writer_memory(buf.data(), buf.size());
  EXPECT_EQ(avro_value_write(w, &value), 0) << avro_strerror();
  buf.resize(static_cast<size_t>(avro_writer_tell(w)));
  avro_writer_free(w);
  avro_value_decref(&value);
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);
  return buf;
}

inline avro_value_t Field(avro_value_t* record, const char* name) {
  avro_value_t f;
  EXPECT_EQ(avro_value_get_by_name(record, name, &f, nullptr), 0) << name;
  return f;
}
inline void SetString(avro_value_t* r, const char* name, const std::string& s) {
  avro_value_t f = Field(r, name);
  avro_value_set_string_len(&f, s.c_str(), s.size() + 1);
}
inline void SetLong(avro_value_t* r, const char* name, int64_t v) {
  avro_value_t f = Field(r, name);
  avro_value_set_long(&f, v);
}

inline std::string Wire(int32_t id, const std::string& body) {
  return AvroWireFormat(id, body);
}

// A record with every type the decoder supports, one value each
// (FillAllTypes sets them with Avro C; AllTypesJson is the same record as
// the JSON a JavaScript Avro encoder takes, byte strings as {"$hex": ...});
// AllTypesValues is what the decoder makes of "i" to "raw".
constexpr char kAllTypes[] = R"({"type":"record","name":"All","fields":[
  {"name":"key","type":"string"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"i","type":"int"},
  {"name":"l","type":"long"},
  {"name":"f","type":"float"},
  {"name":"d","type":"double"},
  {"name":"b","type":"boolean"},
  {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":2}},
  {"name":"fdec","type":{"type":"fixed","name":"F8","size":8,"logicalType":"decimal","precision":18,"scale":3}},
  {"name":"e","type":{"type":"enum","name":"Kind","symbols":["CARD","BANK"]}},
  {"name":"opt","type":["null","string"],"default":null},
  {"name":"raw","type":"bytes"}]})";
constexpr int64_t kAllTypesTs = 1767225600123;

inline void FillAllTypes(avro_value_t* r) {
  SetString(r, "key", "u1");
  SetLong(r, "ts", kAllTypesTs);
  avro_value_t i = Field(r, "i");
  avro_value_set_int(&i, -42);
  SetLong(r, "l", int64_t{1} << 40);
  avro_value_t f = Field(r, "f");
  avro_value_set_float(&f, 1.5f);
  avro_value_t d = Field(r, "d");
  avro_value_set_double(&d, -2.25);
  avro_value_t b = Field(r, "b");
  avro_value_set_boolean(&b, 1);
  // -1234.56: unscaled -123456 = 0xFE1DC0 in two's complement.
  const char dec[] = {'\xfe', '\x1d', '\xc0'};
  avro_value_t dv = Field(r, "dec");
  avro_value_set_bytes(&dv, const_cast<char*>(dec), 3);
  // 12.345 at scale 3: 12345 = 0x3039 in 8 bytes.
  const char fdec[8] = {0, 0, 0, 0, 0, 0, '\x30', '\x39'};
  avro_value_t fd = Field(r, "fdec");
  avro_value_set_fixed(&fd, const_cast<char*>(fdec), 8);
  avro_value_t e = Field(r, "e");
  avro_value_set_enum(&e, 1);
  avro_value_t opt = Field(r, "opt");
  avro_value_t branch;
  avro_value_set_branch(&opt, 1, &branch);
  avro_value_set_string(&branch, "note");
  avro_value_t raw = Field(r, "raw");
  avro_value_set_bytes(&raw, const_cast<char*>("ab\0c"), 4);
}

constexpr char kAllTypesJson[] =
    R"({"key":"u1","ts":1767225600123,"i":-42,"l":1099511627776,"f":1.5,)"
    R"("d":-2.25,"b":true,"dec":{"$hex":"fe1dc0"},)"
    R"("fdec":{"$hex":"0000000000003039"},"e":"BANK","opt":"note",)"
    R"("raw":{"$hex":"61620063"}})";

inline std::vector<Value> AllTypesValues() {
  return {Value::Int64(-42),     Value::Int64(int64_t{1} << 40),
          Value::Double(1.5),    Value::Double(-2.25),
          Value::Bool(true),     Value::Dec(-123456, 2),
          Value::Dec(12345, 3),  Value::String("BANK"),
          Value::String("note"), Value::String(std::string("ab\0c", 4))};
}

}  // namespace avro_testing
}  // namespace weir

#endif  // WEIR_TESTS_AVRO_TESTING_H_
