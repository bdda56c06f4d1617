// EncodeAvroFromJson against Avro C: the same record written from JSON by
// weir and from values by Avro C is the same bytes; what does not fit the
// schema is an error naming the field.

#include "weir/avro/avro_encoder.h"

#include <string>

#include "avro_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/avro/avro_schema.h"

namespace weir {
namespace {

using avro_testing::Encode;
using avro_testing::FillAllTypes;
using avro_testing::kAllTypes;
using ::testing::HasSubstr;

AvroSchema Parsed(const char* json) {
  absl::StatusOr<AvroSchema> schema = AvroSchema::Parse(json);
  EXPECT_TRUE(schema.ok()) << schema.status();
  return *schema;
}

constexpr char kAllTypesLine[] =
    R"({"key":"u1","ts":1767225600123,"i":-42,"l":1099511627776,"f":1.5,)"
    R"("d":-2.25,"b":true,"dec":-1234.56,"fdec":12.345,"e":"BANK",)"
    R"("opt":{"string":"note"},"raw":"ab\u0000c"})";

TEST(AvroEncoderTest, EveryTypeIsWhatAvroCWrites) {
  absl::StatusOr<std::string> body =
      EncodeAvroFromJson(Parsed(kAllTypes), kAllTypesLine);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, Encode(kAllTypes, FillAllTypes));
}

constexpr char kPayment[] =
    R"({"type":"record","name":"Payment","fields":[)"
    R"({"name":"user_id","type":"string"},)"
    R"({"name":"amount","type":["null",{"type":"bytes",)"
    R"("logicalType":"decimal","precision":18,"scale":2}],"default":null},)"
    R"({"name":"currency_code","type":"string","default":"USD"}]})";

TEST(AvroEncoderTest, UnionsDecimalsAndDefaults) {
  const AvroSchema schema = Parsed(kPayment);
  auto avro_c = [](bool null_amount, const char* amount, size_t size) {
    return Encode(kPayment, [&](avro_value_t* r) {
      avro_testing::SetString(r, "user_id", "u1");
      avro_value_t a = avro_testing::Field(r, "amount");
      avro_value_t branch;
      avro_value_set_branch(&a, null_amount ? 0 : 1, &branch);
      if (null_amount) {
        avro_value_set_null(&branch);
      } else {
        avro_value_set_bytes(&branch, const_cast<char*>(amount), size);
      }
      avro_testing::SetString(r, "currency_code", "USD");
    });
  };
  // 12.34 is 1234 = 0x04d2 cents; written as 1234e-2 it is the same.
  const std::string cents = avro_c(false, "\x04\xd2", 2);
  for (const char* line : {R"({"user_id":"u1","amount":12.34})",
                           R"({"user_id":"u1","amount":1234e-2,"x":[1]})",
                           R"({"user_id":"u1","amount":{"bytes":12.34}})"}) {
    absl::StatusOr<std::string> body = EncodeAvroFromJson(schema, line);
    ASSERT_TRUE(body.ok()) << line << ": " << body.status();
    EXPECT_EQ(*body, cents) << line;
  }
  absl::StatusOr<std::string> null_amount =
      EncodeAvroFromJson(schema, R"({"user_id":"u1","amount":null})");
  ASSERT_TRUE(null_amount.ok()) << null_amount.status();
  EXPECT_EQ(*null_amount, avro_c(true, nullptr, 0));
  // A missing amount takes its default, null.
  absl::StatusOr<std::string> missing =
      EncodeAvroFromJson(schema, R"({"user_id":"u1"})");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, avro_c(true, nullptr, 0));
}

TEST(AvroEncoderTest, WhatDoesNotFitNamesTheField) {
  const AvroSchema schema = Parsed(kPayment);
  struct Case {
    const char* line;
    const char* error;
  };
  for (const Case& c : {
           Case{R"({"amount":1})", "user_id: missing, and it has no default"},
           Case{R"({"user_id":7})", "user_id: want a string"},
           Case{R"({"user_id":"u1","amount":12.345})",
                "amount: 12.345 is not a decimal of scale 2"},
           Case{R"({"user_id":"u1","amount":"N/A"})", "amount: want a number"},
           Case{R"({"user_id":"u1","amount":12.3)", ""},  // not JSON
           Case{R"([1])", "the record: want an object"},
       }) {
    absl::StatusOr<std::string> body = EncodeAvroFromJson(schema, c.line);
    EXPECT_TRUE(absl::IsInvalidArgument(body.status())) << c.line;
    EXPECT_THAT(body.status().message(), HasSubstr(c.error)) << c.line;
  }
}

}  // namespace
}  // namespace weir
