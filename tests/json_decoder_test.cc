#include "weir/json/json_decoder.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/decode.h"
#include "weir/dlq.h"
#include "weir/record.h"
#include "weir/time.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The W-PAY payments schema: key user_id, event time event_timestamp (ms),
// values [merchant_id, amount as decimal(2)].
JsonSchema PaymentSchema() {
  JsonSchema schema;
  schema.name = "payments";
  schema.version = 3;
  schema.key_field = "user_id";
  schema.event_time_field = "event_timestamp";
  schema.event_time_type = JsonType::kTimestampMs;
  schema.fields = {JsonField::Required("merchant_id", JsonType::kString),
                   JsonField::OptionalDecimal("amount", 2)};
  return schema;
}

RawRecord Raw(std::string_view value, int64_t offset = 7) {
  RawRecord r;
  r.topic = "payments";
  r.partition = 2;
  r.offset = offset;
  r.timestamp = 1767225699999;
  r.key = "u123";
  r.value = value;
  return r;
}

class JsonDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override { Use(PaymentSchema()); }

  void Use(JsonSchema schema) {
    absl::StatusOr<std::unique_ptr<JsonDecoder>> d =
        JsonDecoder::Create(std::move(schema));
    ASSERT_TRUE(d.ok()) << d.status();
    decoder_ = *std::move(d);
  }

  absl::StatusOr<Event> Decode(std::string_view json) {
    return decoder_->Decode(Raw(json));
  }

  // Decodes `json`, expects a failure and returns its DecodeError.
  DecodeError Fail(std::string_view json) {
    absl::StatusOr<Event> e = Decode(json);
    EXPECT_FALSE(e.ok()) << json;
    if (e.ok()) return DecodeError();
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    return GetDecodeError(e.status());
  }

  std::unique_ptr<JsonDecoder> decoder_;
};

TEST_F(JsonDecoderTest, DecodesThePaymentLine) {
  absl::StatusOr<Event> e =
      Decode(R"({"user_id":"u123","merchant_id":"m45","amount":12.34,)"
             R"("event_timestamp":1767225600123})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->key, "u123");
  EXPECT_EQ(e->event_time, 1767225600123);
  EXPECT_EQ(e->partition, 2);
  EXPECT_EQ(e->offset, 7);
  EXPECT_THAT(e->values,
              ElementsAre(Value::String("m45"), Value::Dec(1234, 2)));
}

TEST_F(JsonDecoderTest, FieldOrderWhitespaceAndUnknownFieldsDoNotMatter) {
  absl::StatusOr<Event> e = Decode(
      "  {\"extra\": {\"nested\": [1, 2.5e3, \"x\", null, true, {}]},\n"
      "   \"amount\" : 12.34 , \"event_timestamp\": 1767225600123,\n"
      "   \"merchant_id\": \"m\\u00e9\\n\", \"user_id\": \"u\\\"1\"}\n");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->key, "u\"1");
  EXPECT_THAT(e->values,
              ElementsAre(Value::String("m\xc3\xa9\n"), Value::Dec(1234, 2)));
}

TEST_F(JsonDecoderTest, AmountNullIsNull) {
  absl::StatusOr<Event> e = Decode(
      R"({"user_id":"u1","merchant_id":"m","amount":null,"event_timestamp":1})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->values, ElementsAre(Value::String("m"), Value::Null()));
}

TEST_F(JsonDecoderTest, MissingOptionalTakesItsDefault) {
  JsonSchema schema = PaymentSchema();
  schema.fields[1].default_value = Value::Dec(5, 1);  // 0.5, stored as 0.50
  Use(schema);
  absl::StatusOr<Event> e =
      Decode(R"({"user_id":"u1","merchant_id":"m","event_timestamp":1})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->values, ElementsAre(Value::String("m"), Value::Dec(50, 2)));
  e = Decode(
      R"({"user_id":"u1","merchant_id":"m","amount":null,"event_timestamp":1})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->values[1], Value::Dec(50, 2));
}

TEST_F(JsonDecoderTest, AmountAbcIsSchemaMismatchNamingAmount) {
  DecodeError error = Fail(
      R"({"user_id":"u1","merchant_id":"m","amount":"abc","event_timestamp":1})");
  EXPECT_EQ(error.category, DecodeErrorCategory::kSchemaMismatch);
  EXPECT_EQ(error.type, "wrong_type");
  EXPECT_EQ(error.field, "amount");
  EXPECT_THAT(error.message, HasSubstr("\"amount\""));
  EXPECT_THAT(error.message, HasSubstr("abc"));
  EXPECT_THAT(error.message, HasSubstr("payments v3"));
}

TEST_F(JsonDecoderTest, MissingKeyIsSchemaMismatchNamingIt) {
  DecodeError error =
      Fail(R"({"merchant_id":"m","amount":1,"event_timestamp":1})");
  EXPECT_EQ(error.category, DecodeErrorCategory::kSchemaMismatch);
  EXPECT_EQ(error.type, "missing_field");
  EXPECT_EQ(error.field, "user_id");
  EXPECT_THAT(error.message, HasSubstr("user_id"));
}

TEST_F(JsonDecoderTest, MissingRequiredValueAndTimeNameTheField) {
  DecodeError error = Fail(R"({"user_id":"u","event_timestamp":1})");
  EXPECT_EQ(error.type, "missing_field");
  EXPECT_EQ(error.field, "merchant_id");
  error = Fail(R"({"user_id":"u","merchant_id":"m"})");
  EXPECT_EQ(error.type, "missing_field");
  EXPECT_EQ(error.field, "event_timestamp");
}

TEST_F(JsonDecoderTest, NullInRequiredFieldIsSchemaMismatch) {
  for (const char* json :
       {R"({"user_id":null,"merchant_id":"m","event_timestamp":1})",
        R"({"user_id":"u","merchant_id":null,"event_timestamp":1})",
        R"({"user_id":"u","merchant_id":"m","event_timestamp":null})"}) {
    DecodeError error = Fail(json);
    EXPECT_EQ(error.category, DecodeErrorCategory::kSchemaMismatch) << json;
    EXPECT_EQ(error.type, "null_field") << json;
    EXPECT_FALSE(error.field.empty());
  }
}

TEST_F(JsonDecoderTest, BrokenJsonIsDeserialization) {
  for (
      const char* json : {
          R"({"user_id":"u1","merchant_id":"m")",   // cut short
          R"({"user_id":"u1" "merchant_id":"m"})",  // missing comma
          R"({"user_id":"u1",})",                   // trailing comma
          R"({"user_id":"u1","merchant_id":"m","event_timestamp":1}})",
          R"({"user_id":"u1","merchant_id":"m","event_timestamp":1} {})",
          R"({"user_id":"u1","x":tru,"merchant_id":"m","event_timestamp":1})",
          R"({"user_id":"u1","x":[1,,2],"merchant_id":"m","event_timestamp":1})",
          R"({"user_id":"u1","x":{"a" 1},"merchant_id":"m","event_timestamp":1})",
          R"({"user_id":"u1","x":01,"merchant_id":"m","event_timestamp":1})",
          R"({"user_id":"u1","x":"\q","merchant_id":"m","event_timestamp":1})",
          R"({"user_id":"u1","merchant_id":"m","amount":1.,"event_timestamp":1})",
          R"({"user_id":"u1","merchant_id":"m","amount":-,"event_timestamp":1})",
          "{\"user_id\":\"\xff\",\"merchant_id\":\"m\",\"event_timestamp\":1}",
          "",
          "   ",
          "[1,2]",
          "\"just a string\"",
          "42",
      }) {
    DecodeError error = Fail(json);
    EXPECT_EQ(error.category, DecodeErrorCategory::kDeserialization)
        << json << " -> " << error.type << ": " << error.message;
  }
  EXPECT_EQ(Fail("[1]").type, "not_an_object");
  EXPECT_EQ(
      Fail(R"({"user_id":"u1","merchant_id":"m","event_timestamp":1}})").type,
      "trailing_content");
  EXPECT_EQ(Fail(R"({"user_id":"u1")").type, "invalid_json");
}

TEST_F(JsonDecoderTest, NestingBeyondMaxDepthIsDeserialization) {
  std::string deep = R"({"user_id":"u","merchant_id":"m","event_timestamp":1,)";
  deep += "\"x\":" + std::string(100, '[') + std::string(100, ']') + "}";
  DecodeError error = Fail(deep);
  EXPECT_EQ(error.category, DecodeErrorCategory::kDeserialization);
  EXPECT_EQ(error.type, "too_deep");
  // Hostile depth does not overflow the stack.
  std::string hostile = R"({"x":)" + std::string(200000, '[');
  EXPECT_EQ(Fail(hostile).category, DecodeErrorCategory::kDeserialization);
}

TEST_F(JsonDecoderTest, DecimalIsExactFromTheNumberText) {
  struct Case {
    const char* amount;
    int64_t units;
  };
  for (const Case& c :
       std::vector<Case>{{"12.34", 1234},
                         {"12.3", 1230},
                         {"12", 1200},
                         {"-0.01", -1},
                         {"0", 0},
                         {"12.3400", 1234},
                         {"1234e-2", 1234},
                         {"0.1234E2", 1234},
                         {"\"12.34\"", 1234},
                         {"\"-7\"", -700},
                         {"92233720368547758.07", 9223372036854775807}}) {
    absl::StatusOr<Event> e = Decode(absl::StrCat(
        R"({"user_id":"u","merchant_id":"m","event_timestamp":1,"amount":)",
        c.amount, "}"));
    ASSERT_TRUE(e.ok()) << c.amount << ": " << e.status();
    EXPECT_EQ(e->values[1], Value::Dec(c.units, 2)) << c.amount;
  }
}

TEST_F(JsonDecoderTest, DecimalWithTooManyPlacesOrTooLargeFails) {
  DecodeError error = Fail(
      R"({"user_id":"u","merchant_id":"m","event_timestamp":1,"amount":12.345})");
  EXPECT_EQ(error.category, DecodeErrorCategory::kSchemaMismatch);
  EXPECT_EQ(error.type, "lossy_number");
  EXPECT_EQ(error.field, "amount");
  EXPECT_THAT(error.message, HasSubstr("12.345"));
  error = Fail(
      R"({"user_id":"u","merchant_id":"m","event_timestamp":1,"amount":1e30})");
  EXPECT_EQ(error.type, "number_out_of_range");
  error = Fail(
      R"({"user_id":"u","merchant_id":"m","event_timestamp":1,"amount":true})");
  EXPECT_EQ(error.type, "wrong_type");
}

class JsonTypesTest : public JsonDecoderTest {
 protected:
  void SetUp() override {
    JsonSchema schema;
    schema.name = "types";
    schema.key_field = "k";
    schema.event_time_field = "t";
    schema.fields = {JsonField::Optional("i", JsonType::kInt64),
                     JsonField::Optional("d", JsonType::kDouble),
                     JsonField::Optional("b", JsonType::kBool),
                     JsonField::Optional("s", JsonType::kString),
                     JsonField::Optional("ms", JsonType::kTimestampMs),
                     JsonField::Optional("sec", JsonType::kTimestampS)};
    Use(schema);
  }

  // Decodes {"k":"a","t":0,<member>} and returns the values.
  absl::StatusOr<std::vector<Value>> With(std::string_view member) {
    absl::StatusOr<Event> e =
        Decode(R"({"k":"a","t":0,)" + std::string(member) + "}");
    if (!e.ok()) return e.status();
    return e->values;
  }
  DecodeError FailWith(std::string_view member) {
    return Fail(R"({"k":"a","t":0,)" + std::string(member) + "}");
  }
};

TEST_F(JsonTypesTest, Int64AcceptsIntegralFloatsOnly) {
  EXPECT_EQ((*With(R"("i":5)"))[0], Value::Int64(5));
  EXPECT_EQ((*With(R"("i":-9223372036854775808)"))[0], Value::Int64(INT64_MIN));
  EXPECT_EQ((*With(R"("i":5.0)"))[0], Value::Int64(5));
  EXPECT_EQ((*With(R"("i":5e2)"))[0], Value::Int64(500));
  EXPECT_EQ((*With(R"("i":12.50e1)"))[0], Value::Int64(125));

  DecodeError error = FailWith(R"("i":5.5)");
  EXPECT_EQ(error.category, DecodeErrorCategory::kSchemaMismatch);
  EXPECT_EQ(error.type, "lossy_number");
  EXPECT_EQ(error.field, "i");
  EXPECT_THAT(error.message, HasSubstr("\"i\""));
  EXPECT_THAT(error.message, HasSubstr("5.5"));

  EXPECT_EQ(FailWith(R"("i":9223372036854775808)").type, "number_out_of_range");
  EXPECT_EQ(FailWith(R"("i":1e19)").type, "number_out_of_range");
  EXPECT_EQ(FailWith(R"("i":"5")").type, "wrong_type");
  EXPECT_EQ(FailWith(R"("i":[5])").type, "wrong_type");
}

TEST_F(JsonTypesTest, DoubleWidensIntegers) {
  EXPECT_EQ((*With(R"("d":5)"))[1], Value::Double(5.0));
  EXPECT_EQ((*With(R"("d":-2.5e-3)"))[1], Value::Double(-2.5e-3));
  EXPECT_EQ((*With(R"("d":12345678901234567890)"))[1],
            Value::Double(12345678901234567890.0));
  EXPECT_EQ(FailWith(R"("d":1e400)").type, "number_out_of_range");
  EXPECT_EQ(FailWith(R"("d":"1.5")").type, "wrong_type");
}

TEST_F(JsonTypesTest, BoolAndString) {
  EXPECT_EQ((*With(R"("b":true)"))[2], Value::Bool(true));
  EXPECT_EQ((*With(R"("b":false)"))[2], Value::Bool(false));
  EXPECT_EQ(FailWith(R"("b":1)").type, "wrong_type");
  EXPECT_EQ((*With(R"("s":"")"))[3], Value::String(""));
  EXPECT_EQ(FailWith(R"("s":1)").type, "wrong_type");
  EXPECT_EQ(FailWith(R"("s":{"a":1})").type, "wrong_type");
}

TEST_F(JsonTypesTest, Timestamps) {
  EXPECT_EQ((*With(R"("ms":1767225600123)"))[4], Value::Int64(1767225600123));
  EXPECT_EQ((*With(R"("sec":1767225600)"))[5], Value::Int64(1767225600000));
  EXPECT_EQ((*With(R"("sec":1767225600.1239)"))[5],
            Value::Int64(1767225600123));
  EXPECT_EQ((*With(R"("sec":-1.0005)"))[5], Value::Int64(-1001));
  EXPECT_EQ((*With(R"("ms":"2026-01-01T00:00:00.123Z")"))[4],
            Value::Int64(1767225600123));
  EXPECT_EQ((*With(R"("sec":"2026-01-01T01:00:00+01:00")"))[5],
            Value::Int64(1767225600000));
  EXPECT_EQ(FailWith(R"("ms":"yesterday")").type, "wrong_type");
  EXPECT_EQ(FailWith(R"("ms":true)").type, "wrong_type");
  EXPECT_EQ(FailWith(R"("sec":1e17)").type, "number_out_of_range");
}

TEST_F(JsonTypesTest, OptionalFieldsDefaultToNull) {
  absl::StatusOr<std::vector<Value>> values = With(R"("unknown":1)");
  ASSERT_TRUE(values.ok()) << values.status();
  for (const Value& v : *values) EXPECT_TRUE(v.is_null());
}

TEST_F(JsonTypesTest, KeyMustBeANonEmptyString) {
  EXPECT_EQ(Fail(R"({"k":5,"t":0})").type, "wrong_type");
  EXPECT_EQ(Fail(R"({"k":"","t":0})").type, "empty_key");
}

TEST_F(JsonTypesTest, DuplicateDeclaredFieldIsRejected) {
  DecodeError error = FailWith(R"("i":1,"i":2)");
  EXPECT_EQ(error.type, "duplicate_field");
  EXPECT_EQ(error.field, "i");
  EXPECT_EQ(Fail(R"({"k":"a","k":"b","t":0})").type, "duplicate_field");
  // Unknown members may repeat.
  EXPECT_TRUE(With(R"("z":1,"z":2)").ok());
}

TEST_F(JsonDecoderTest, EventTimeInSeconds) {
  JsonSchema schema = PaymentSchema();
  schema.event_time_type = JsonType::kTimestampS;
  Use(schema);
  absl::StatusOr<Event> e = Decode(
      R"({"user_id":"u","merchant_id":"m","event_timestamp":1767225600})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->event_time, 1767225600000);
}

TEST_F(JsonDecoderTest, EventTimeFromTheRecordTimestamp) {
  JsonSchema schema = PaymentSchema();
  schema.event_time_source = EventTimeSource::kRecordTimestamp;
  schema.event_time_field.clear();
  Use(schema);
  RawRecord raw = Raw(R"({"user_id":"u","merchant_id":"m"})");
  absl::StatusOr<Event> e = decoder_->Decode(raw);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->event_time, 1767225699999);

  raw.timestamp.reset();
  e = decoder_->Decode(raw);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(GetDecodeError(e.status()).type, "missing_timestamp");
}

TEST_F(JsonDecoderTest, KeyAndTimeFieldsMayAlsoBeValues) {
  JsonSchema schema = PaymentSchema();
  schema.fields.push_back(JsonField::Required("user_id", JsonType::kString));
  schema.fields.push_back(
      JsonField::Required("event_timestamp", JsonType::kTimestampMs));
  Use(schema);
  absl::StatusOr<Event> e = Decode(
      R"({"user_id":"u1","merchant_id":"m","event_timestamp":5,"amount":1})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->values, ElementsAre(Value::String("m"), Value::Dec(100, 2),
                                     Value::String("u1"), Value::Int64(5)));
}

TEST_F(JsonDecoderTest, DecodeIntoReusesTheEvent) {
  Event event;
  ASSERT_TRUE(decoder_
                  ->DecodeInto(Raw(R"({"user_id":"a","merchant_id":"m1",)"
                                   R"("amount":1,"event_timestamp":1})",
                                   1),
                               &event)
                  .ok());
  ASSERT_TRUE(decoder_
                  ->DecodeInto(Raw(R"({"user_id":"b","merchant_id":"m2",)"
                                   R"("event_timestamp":2})",
                                   2),
                               &event)
                  .ok());
  EXPECT_EQ(event.key, "b");
  EXPECT_EQ(event.event_time, 2);
  EXPECT_EQ(event.offset, 2);
  // The second record had no amount: its default, not the first's value.
  EXPECT_THAT(event.values, ElementsAre(Value::String("m2"), Value::Null()));
}

TEST_F(JsonDecoderTest, RecordsOverTheSizeLimitAreRejectedUnread) {
  JsonDecoderOptions options;
  options.max_record_bytes = 16;
  auto decoder = JsonDecoder::Create(PaymentSchema(), options);
  ASSERT_TRUE(decoder.ok());
  absl::StatusOr<Event> e = (*decoder)->Decode(
      Raw(R"({"user_id":"u","merchant_id":"m","event_timestamp":1})"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(GetDecodeError(e.status()).type, "too_large");
}

TEST(JsonSchemaTest, ValidateNamesTheBadField) {
  auto expect_bad = [](const JsonSchema& s, std::string_view field) {
    absl::Status status = s.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(std::string(field)));
    EXPECT_FALSE(JsonDecoder::Create(s).ok());
  };
  EXPECT_TRUE(PaymentSchema().Validate().ok());

  JsonSchema s = PaymentSchema();
  s.name.clear();
  expect_bad(s, "name");
  s = PaymentSchema();
  s.version = 0;
  expect_bad(s, "version");
  s = PaymentSchema();
  s.key_field.clear();
  expect_bad(s, "key_field");
  s = PaymentSchema();
  s.event_time_field.clear();
  expect_bad(s, "event_time_field");
  s = PaymentSchema();
  s.event_time_type = JsonType::kInt64;
  expect_bad(s, "event_time_type");
  s = PaymentSchema();
  s.fields[1].scale = 19;
  expect_bad(s, "fields[1].scale");
  s = PaymentSchema();
  s.fields[0].scale = 2;
  expect_bad(s, "fields[0].scale");
  s = PaymentSchema();
  s.fields.push_back(JsonField::Required("amount", JsonType::kDouble));
  expect_bad(s, "fields[2].name");
  s = PaymentSchema();
  s.fields[0].default_value = Value::String("x");  // required
  expect_bad(s, "fields[0].default_value");
  s = PaymentSchema();
  s.fields[1].default_value = Value::Dec(1, 3);  // 0.001 at scale 2
  expect_bad(s, "fields[1].default_value");
  s = PaymentSchema();
  s.fields[1].default_value = Value::Int64(1);
  expect_bad(s, "fields[1].default_value");
  s = PaymentSchema();
  s.fields.push_back(JsonField::Required("user_id", JsonType::kInt64));
  expect_bad(s, "fields[2].type");

  JsonDecoderOptions options;
  options.max_depth = 0;
  EXPECT_THAT(options.Validate().message(), HasSubstr("max_depth"));
}

// A user's own decoder gets the same DLQ handling as the JSON decoder.
TEST(FunctionDecoderTest, UserCallableIsADecoder) {
  std::unique_ptr<Decoder> decoder =
      MakeDecoder([](const RawRecord& r) -> absl::StatusOr<Event> {
        if (r.value == "bad") {
          return MakeDecodeError(DecodeErrorCategory::kSchemaMismatch,
                                 "wrong_type", "field \"v\": bad", "v");
        }
        if (r.value == "plain") return absl::InternalError("boom");
        if (r.value == "throw") throw std::runtime_error("thrown");
        Event e;
        e.key = std::string(r.key);
        e.values = {Value::String(std::string(r.value))};
        return e;
      });
  RawRecord raw = Raw("good", 41);
  absl::StatusOr<Event> e = decoder->Decode(raw);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->key, "u123");
  EXPECT_EQ(e->partition, 2);  // stamped by the wrapper
  EXPECT_EQ(e->offset, 41);

  DecodeError error = GetDecodeError(decoder->Decode(Raw("bad")).status());
  EXPECT_EQ(error, (DecodeError{DecodeErrorCategory::kSchemaMismatch,
                                "wrong_type", "v", "field \"v\": bad"}));

  error = GetDecodeError(decoder->Decode(Raw("plain")).status());
  EXPECT_EQ(error.category, DecodeErrorCategory::kProcessingError);
  EXPECT_EQ(error.type, "internal");
  EXPECT_EQ(error.message, "boom");

  error = GetDecodeError(decoder->Decode(Raw("throw")).status());
  EXPECT_EQ(error.category, DecodeErrorCategory::kProcessingError);
  EXPECT_EQ(error.type, "exception");
  EXPECT_EQ(error.message, "thrown");

  // Routed through the DLQ like any decoder.
  MemoryDeadLetterQueue queue;
  ManualClock clock(absl::FromUnixMillis(1767225600000));
  DeadLetterRouterOptions options;
  options.pipeline_name = "p";
  options.clock = &clock;
  auto router = DeadLetterRouter::Create(options, &queue);
  ASSERT_TRUE(router.ok());
  absl::StatusOr<std::optional<Event>> routed =
      DecodeOrRoute(*decoder, Raw("bad", 9), **router);
  ASSERT_TRUE(routed.ok());
  EXPECT_FALSE(routed->has_value());
  ASSERT_EQ(queue.records().size(), 1u);
  EXPECT_EQ(queue.records()[0].offset, 9);
  EXPECT_EQ(queue.records()[0].error_field, "v");
}

// The concept names what a decoder callable must look like.
static_assert(DecodeFunction<absl::StatusOr<Event> (*)(const RawRecord&)>);
static_assert(!DecodeFunction<int (*)(const RawRecord&)>);
static_assert(!DecodeFunction<absl::StatusOr<Event> (*)(std::string_view)>);

// W-PAY with poison records: every bad one reaches the DLQ and the rest
// decode; nothing stops.
TEST_F(JsonDecoderTest, PoisonRecordsGoToTheDlqAndTheRestDecode) {
  MemoryDeadLetterQueue queue;
  ManualClock clock(absl::FromUnixMillis(1767225600000));
  DeadLetterRouterOptions options;
  options.pipeline_name = "fraud_features";
  options.pipeline_version = "3.1.2";
  options.clock = &clock;
  auto router = DeadLetterRouter::Create(options, &queue);
  ASSERT_TRUE(router.ok());

  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i) {
    if (i % 100 == 17) {
      lines.push_back(R"({"user_id":"u1","merchant_id":"m","amount":)");
    } else if (i % 100 == 42) {
      lines.push_back(
          R"({"user_id":"u1","merchant_id":"m","amount":"x","event_timestamp":1})");
    } else {
      lines.push_back(absl::StrCat(
          R"({"user_id":"u)", i % 7, R"(","merchant_id":"m","amount":)", i,
          R"(.25,"event_timestamp":)", 1767225600000 + i, "}"));
    }
  }
  int decoded = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::StatusOr<std::optional<Event>> e = DecodeOrRoute(
        *decoder_, Raw(lines[i], static_cast<int64_t>(i)), **router);
    ASSERT_TRUE(e.ok()) << e.status();
    if (e->has_value()) {
      ++decoded;
      EXPECT_EQ((*e)->values[1],
                Value::Dec(static_cast<int64_t>(i) * 100 + 25, 2));
    }
  }
  EXPECT_EQ(decoded, 294);
  DeadLetterCounts counts = (*router)->counts();
  EXPECT_EQ(counts.deserialization, 3);
  EXPECT_EQ(counts.schema_mismatch, 3);
  EXPECT_EQ(counts.total(), 6);
  std::vector<DeadLetterRecord> records = queue.records();
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[0].offset, 17);
  EXPECT_EQ(records[0].value, lines[17]);
  EXPECT_EQ(records[1].offset, 42);
  EXPECT_EQ(records[1].error_field, "amount");
}

}  // namespace
}  // namespace weir
