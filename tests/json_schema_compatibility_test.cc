#include "weir/json/json_schema_compatibility.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

JsonSchema Payments(std::vector<JsonField> extra = {},
                    JsonType amount = JsonType::kDecimal, int32_t scale = 2) {
  JsonSchema s;
  s.name = "payments";
  s.key_field = "user_id";
  s.event_time_field = "ts";
  JsonField a = JsonField::Required("amount", amount);
  a.scale = amount == JsonType::kDecimal ? scale : 0;
  s.fields = {JsonField::Required("merchant_id", JsonType::kString), a};
  for (JsonField& f : extra) s.fields.push_back(std::move(f));
  return s;
}

bool Compatible(const JsonSchema& next, const JsonSchema& prev,
                SchemaCompatibility mode) {
  const std::vector<JsonSchema> previous = {prev};
  return CheckJsonSchemaCompatibility(next, previous, mode).compatible;
}

TEST(JsonSchemaCompatibilityTest, SeedsTableUnderEveryMode) {
  struct Case {
    const char* change;
    JsonSchema before;
    JsonSchema after;
    bool backward;
    bool forward;
  };
  const std::vector<Case> cases = {
      {"add an optional field with a default", Payments(),
       Payments({JsonField::Optional("currency_code", JsonType::kString,
                                     Value::String("USD"))}),
       true, true},
      {"add a required field", Payments(),
       Payments({JsonField::Required("currency_code", JsonType::kString)}),
       false, true},
      {"remove a required field",
       Payments({JsonField::Required("channel", JsonType::kString)}),
       Payments(), true, false},
      {"remove an optional field",
       Payments({JsonField::Optional("channel", JsonType::kString)}),
       Payments(), true, true},
      {"int64 to double", Payments({}, JsonType::kInt64),
       Payments({}, JsonType::kDouble), true, false},
      {"decimal(2) to decimal(4)", Payments({}, JsonType::kDecimal, 2),
       Payments({}, JsonType::kDecimal, 4), true, false},
      {"decimal to string", Payments(), Payments({}, JsonType::kString), false,
       false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.change);
    EXPECT_EQ(Compatible(c.after, c.before, SchemaCompatibility::kBackward),
              c.backward);
    EXPECT_EQ(Compatible(c.after, c.before, SchemaCompatibility::kForward),
              c.forward);
    EXPECT_EQ(Compatible(c.after, c.before, SchemaCompatibility::kFull),
              c.backward && c.forward);
  }
}

TEST(JsonSchemaCompatibilityTest, IssuesNameTheFieldAndTheRule) {
  JsonSchema v2 = Payments({}, JsonType::kInt64);
  v2.fields[0].required = false;
  v2.key_field = "account_id";
  const std::vector<JsonSchema> v1 = {Payments()};
  const std::string text =
      CheckJsonSchemaCompatibility(v2, v1, SchemaCompatibility::kFull)
          .ToString();
  EXPECT_THAT(text, HasSubstr("payments.account_id: the reader's key field "
                              "is not the writer's (user_id)"));
  EXPECT_THAT(text, HasSubstr("payments.amount: a reader of type int64 cannot "
                              "read the writer's decimal(2) (the new schema "
                              "reading data of the latest version)"));
  EXPECT_THAT(text, HasSubstr("payments.merchant_id: the writer may leave the "
                              "field out; the reader requires it (the latest "
                              "version reading data of the new schema)"));
}

TEST(JsonSchemaCompatibilityTest, EventTimeUnitMatters) {
  JsonSchema seconds = Payments();
  seconds.event_time_type = JsonType::kTimestampS;
  EXPECT_FALSE(Compatible(seconds, Payments(), SchemaCompatibility::kBackward));
  EXPECT_TRUE(
      Compatible(Payments(), Payments(), SchemaCompatibility::kFullTransitive));
}

}  // namespace
}  // namespace weir
