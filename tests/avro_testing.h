// Test helpers: records encoded with Avro C (libavro), an encoder
// independent of weir's decoder, and the Confluent wire format around them.

#ifndef WEIR_TESTS_AVRO_TESTING_H_
#define WEIR_TESTS_AVRO_TESTING_H_

#include <avro.h>

#include <cstdint>
#include <functional>
#include <string>

#include "gtest/gtest.h"

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
  std::string out(5, '\0');
  out[1] = static_cast<char>(id >> 24);
  out[2] = static_cast<char>(id >> 16);
  out[3] = static_cast<char>(id >> 8);
  out[4] = static_cast<char>(id);
  return out + body;
}

}  // namespace avro_testing
}  // namespace weir

#endif  // WEIR_TESTS_AVRO_TESTING_H_
