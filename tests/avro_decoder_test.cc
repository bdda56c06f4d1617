// AvroDecoder against records encoded by Avro C (libavro, an independent
// encoder): every supported type, schema resolution between writer and
// reader versions, the Confluent wire format, and malformed bytes.

#include "weir/avro/avro_decoder.h"

#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "avro_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weir {
namespace {

using avro_testing::AllTypesValues;
using avro_testing::Encode;
using avro_testing::Field;
using avro_testing::FillAllTypes;
using avro_testing::kAllTypes;
using avro_testing::kAllTypesTs;
using avro_testing::SetLong;
using avro_testing::SetString;
using avro_testing::Wire;
using ::testing::HasSubstr;

class MapLookup : public SchemaLookup {
 public:
  absl::StatusOr<std::string> WriterSchema(int32_t id) override {
    ++calls[id];
    if (unavailable) return absl::UnavailableError("registry down");
    auto it = schemas.find(id);
    if (it == schemas.end()) return absl::NotFoundError("no such id");
    return it->second;
  }
  std::map<int32_t, std::string> schemas;
  std::map<int32_t, int> calls;
  bool unavailable = false;
};

RawRecord Raw(const std::string& value) {
  RawRecord r;
  r.partition = 3;
  r.offset = 77;
  r.value = value;
  return r;
}

TEST(AvroDecoderTest, EveryTypeBecomesTheSameValueTheJsonDecoderMakes) {
  AvroDecoderOptions o;
  o.reader_schema = kAllTypes;
  o.key_field = "key";
  o.event_time_field = "ts";
  o.value_fields = {"i", "l", "f", "d", "b", "dec", "fdec", "e", "opt", "raw"};
  auto decoder = AvroDecoder::Create(o);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  const std::string body = Encode(kAllTypes, FillAllTypes);
  absl::StatusOr<Event> e = (*decoder)->Decode(Raw(body));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->key, "u1");
  EXPECT_EQ(e->event_time, kAllTypesTs);
  EXPECT_EQ(e->partition, 3);
  EXPECT_EQ(e->offset, 77);
  EXPECT_EQ(e->values, AllTypesValues());
}

// W-PAY's payment, v1, and v2 with a defaulted currency_code (the seeds'
// example), its fields in another order.
constexpr char kV1[] =
    R"({"type":"record","name":"Payment","namespace":"wpay","fields":[
  {"name":"user_id","type":"string"},
  {"name":"merchant_id","type":"string"},
  {"name":"amount","type":"int"},
  {"name":"ts","type":"long"},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"attrs","type":{"type":"map","values":{"type":"record","name":"A","fields":[{"name":"x","type":"long"}]}}}]})";
constexpr char kV2[] =
    R"({"type":"record","name":"Payment","namespace":"wpay","fields":[
  {"name":"ts","type":"long"},
  {"name":"user_id","type":"string"},
  {"name":"currency_code","type":"string","default":"USD"},
  {"name":"amount","type":"double"},
  {"name":"merchant_id","type":"string"}]})";

std::string V1Body(const std::string& user, int32_t amount) {
  return Encode(kV1, [&](avro_value_t* r) {
    SetString(r, "user_id", user);
    SetString(r, "merchant_id", "m9");
    avro_value_t a = Field(r, "amount");
    avro_value_set_int(&a, amount);
    SetLong(r, "ts", 1767225600000);
    avro_value_t tags = Field(r, "tags");
    avro_value_t t;
    avro_value_append(&tags, &t, nullptr);
    avro_value_set_string(&t, "x");
    avro_value_t attrs = Field(r, "attrs");
    avro_value_t a1;
    avro_value_add(&attrs, "k", &a1, nullptr, nullptr);
    avro_value_t x = Field(&a1, "x");
    avro_value_set_long(&x, 5);
  });
}

TEST(AvroDecoderTest, OldAndNewWriterSchemasReadWithTheNewReader) {
  MapLookup registry;
  registry.schemas = {{1, kV1}, {2, kV2}};
  AvroDecoderOptions o;
  o.reader_schema = kV2;
  o.key_field = "user_id";
  o.event_time_field = "ts";
  o.value_fields = {"merchant_id", "amount", "currency_code"};
  o.writer_schemas = &registry;
  auto decoder = AvroDecoder::Create(o);
  ASSERT_TRUE(decoder.ok()) << decoder.status();

  // v1 data: amount promoted from int, currency_code from its default, the
  // array and map of records skipped.
  absl::StatusOr<Event> old =
      (*decoder)->Decode(Raw(Wire(1, V1Body("u1", 1250))));
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->key, "u1");
  EXPECT_EQ(old->event_time, 1767225600000);
  EXPECT_EQ(old->values,
            (std::vector<Value>{Value::String("m9"), Value::Double(1250),
                                Value::String("USD")}));
  // v2 data.
  const std::string v2 = Encode(kV2, [](avro_value_t* r) {
    SetLong(r, "ts", 1767225601000);
    SetString(r, "user_id", "u2");
    SetString(r, "currency_code", "EUR");
    avro_value_t a = Field(r, "amount");
    avro_value_set_double(&a, 9.75);
    SetString(r, "merchant_id", "m1");
  });
  absl::StatusOr<Event> now = (*decoder)->Decode(Raw(Wire(2, v2)));
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->values,
            (std::vector<Value>{Value::String("m1"), Value::Double(9.75),
                                Value::String("EUR")}));
  // Each id was fetched once.
  ASSERT_TRUE((*decoder)->Decode(Raw(Wire(1, V1Body("u3", 1)))).ok());
  EXPECT_EQ(registry.calls[1], 1);
  EXPECT_EQ(registry.calls[2], 1);
}

TEST(AvroDecoderTest, SchemaFailuresAreDeadLettersByType) {
  MapLookup registry;
  // A writer without merchant_id, which the reader requires (no default).
  registry.schemas = {
      {7, R"({"type":"record","name":"Payment","namespace":"wpay","fields":[
      {"name":"user_id","type":"string"},{"name":"ts","type":"long"}]})"}};
  AvroDecoderOptions o;
  o.reader_schema = kV2;
  o.key_field = "user_id";
  o.event_time_field = "ts";
  o.value_fields = {"merchant_id"};
  o.writer_schemas = &registry;
  auto decoder = AvroDecoder::Create(o);
  ASSERT_TRUE(decoder.ok()) << decoder.status();

  DecodeError e =
      GetDecodeError((*decoder)->Decode(Raw(Wire(99, "x"))).status());
  EXPECT_EQ(e.category, DecodeErrorCategory::kSchemaMismatch);
  EXPECT_EQ(e.type, "schema_unknown");
  (*decoder)->Decode(Raw(Wire(99, "x"))).IgnoreError();
  EXPECT_EQ(registry.calls[99], 1) << "an unknown id is remembered";

  e = GetDecodeError((*decoder)->Decode(Raw(Wire(7, ""))).status());
  EXPECT_EQ(e.type, "schema_incompatible");
  EXPECT_THAT(e.message, HasSubstr("Payment.merchant_id: the reader's field "
                                   "has no default"));

  registry.unavailable = true;
  e = GetDecodeError((*decoder)->Decode(Raw(Wire(8, "x"))).status());
  EXPECT_EQ(e.category, DecodeErrorCategory::kProcessingError);
  EXPECT_EQ(e.type, "schema_unavailable");
  (*decoder)->Decode(Raw(Wire(8, "x"))).IgnoreError();
  EXPECT_EQ(registry.calls[8], 2) << "an unavailable registry is asked again";

  e = GetDecodeError((*decoder)->Decode(Raw("{\"json\":1}")).status());
  EXPECT_EQ(e.category, DecodeErrorCategory::kDeserialization);
  EXPECT_EQ(e.type, "bad_magic_byte");
}

TEST(AvroDecoderTest, MalformedBytesAreDeadLettersNeverCrashes) {
  AvroDecoderOptions o;
  o.reader_schema = kV1;
  o.key_field = "user_id";
  o.event_time_field = "ts";
  o.value_fields = {"merchant_id", "amount"};
  auto decoder = AvroDecoder::Create(o);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  const std::string good = V1Body("u1", 5);
  ASSERT_TRUE((*decoder)->Decode(Raw(good)).ok());
  // Every truncation, and trailing bytes.
  for (size_t n = 0; n < good.size(); ++n) {
    const std::string cut = good.substr(0, n);
    absl::StatusOr<Event> e = (*decoder)->Decode(Raw(cut));
    ASSERT_FALSE(e.ok()) << n;
    EXPECT_EQ(GetDecodeError(e.status()).category,
              DecodeErrorCategory::kDeserialization);
  }
  EXPECT_EQ(GetDecodeError((*decoder)->Decode(Raw(good + "z")).status()).type,
            "invalid_avro");
  // A varint that never ends; a huge length.
  EXPECT_FALSE((*decoder)->Decode(Raw(std::string(20, '\xff'))).ok());
  EXPECT_FALSE((*decoder)->Decode(Raw("\xfe\xff\xff\xff\x0f")).ok());
  // Random bytes: decoded or refused, never a crash (ASan checks reads).
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k)
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    (*decoder)
        ->Decode(Raw(bytes.substr(0, rng() % (bytes.size() + 1))))
        .IgnoreError();
  }
}

TEST(AvroDecoderTest, BadOptionsNameTheField) {
  AvroDecoderOptions o;
  o.reader_schema = kV1;
  o.key_field = "user_id";
  o.value_fields = {"nope"};
  EXPECT_THAT(AvroDecoder::Create(o).status().message(),
              HasSubstr("AvroDecoderOptions.value_fields[0]: the reader "
                        "schema has no field \"nope\""));
  o.value_fields = {"tags"};
  EXPECT_THAT(AvroDecoder::Create(o).status().message(),
              HasSubstr("is a record, array or map"));
  o.value_fields = {};
  o.key_field = "";
  EXPECT_THAT(AvroDecoder::Create(o).status().message(),
              HasSubstr("AvroDecoderOptions.key_field"));
  o.key_field = "user_id";
  o.writer_schema =
      R"({"type":"record","name":"Payment","namespace":"wpay","fields":[]})";
  EXPECT_THAT(AvroDecoder::Create(o).status().message(),
              HasSubstr("AvroDecoderOptions.writer_schema"));
}

}  // namespace
}  // namespace weir
