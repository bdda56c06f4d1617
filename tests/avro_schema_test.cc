#include "weir/avro/avro_schema.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

AvroSchema Schema(const std::string& json) {
  absl::StatusOr<AvroSchema> s = AvroSchema::Parse(json);
  EXPECT_TRUE(s.ok()) << s.status() << "\n" << json;
  return s.ok() ? *std::move(s) : *AvroSchema::Parse("\"null\"");
}

// W-PAY's payment record, version 1, with `extra` appended to its fields.
std::string Payment(const std::string& extra = "",
                    const std::string& amount_type = "\"double\"") {
  return R"({"type":"record","name":"Payment","namespace":"wpay","fields":[
      {"name":"user_id","type":"string"},
      {"name":"merchant_id","type":"string"},
      {"name":"amount","type":)" +
         amount_type + R"(},
      {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}})" +
         extra + "]}";
}

bool Compatible(const std::string& next, const std::string& prev,
                SchemaCompatibility mode) {
  const std::vector<AvroSchema> previous = {Schema(prev)};
  return CheckCompatibility(Schema(next), previous, mode).compatible;
}

// The seeds' table of schema changes, against each mode.
TEST(AvroSchemaTest, SeedsTableUnderEveryMode) {
  struct Case {
    const char* change;
    std::string before;
    std::string after;
    bool backward;
    bool forward;
  };
  const std::vector<Case> cases = {
      {"add a field with a default", Payment(),
       Payment(R"(,{"name":"currency_code","type":"string","default":"USD"})"),
       true, true},
      {"add an optional (nullable) field with a default", Payment(),
       Payment(R"(,{"name":"note","type":["null","string"],"default":null})"),
       true, true},
      {"add a required field", Payment(),
       Payment(R"(,{"name":"currency_code","type":"string"})"), false, true},
      {"remove a field", Payment(R"(,{"name":"channel","type":"string"})"),
       Payment(), true, false},
      {"remove a field that had a default",
       Payment(R"(,{"name":"channel","type":"string","default":"web"})"),
       Payment(), true, true},
      {"change int to float", Payment("", "\"int\""), Payment("", "\"float\""),
       true, false},
      {"change float to int", Payment("", "\"float\""), Payment("", "\"int\""),
       false, true},
      {"change string to long", Payment("", "\"string\""),
       Payment("", "\"long\""), false, false},
      {"rename a field", Payment(R"(,{"name":"channel","type":"string"})"),
       Payment(R"(,{"name":"sales_channel","type":"string"})"), false, false},
      {"rename a field with an alias",
       Payment(R"(,{"name":"channel","type":"string"})"),
       Payment(
           R"(,{"name":"sales_channel","type":"string","aliases":["channel"]})"),
       true, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.change);
    EXPECT_EQ(Compatible(c.after, c.before, SchemaCompatibility::kBackward),
              c.backward);
    EXPECT_EQ(Compatible(c.after, c.before, SchemaCompatibility::kForward),
              c.forward);
    EXPECT_EQ(Compatible(c.after, c.before, SchemaCompatibility::kFull),
              c.backward && c.forward);
    EXPECT_TRUE(Compatible(c.after, c.before, SchemaCompatibility::kNone));
  }
}

TEST(AvroSchemaTest, IssuesNameTheFieldAndTheRule) {
  const std::vector<AvroSchema> v1 = {Schema(Payment("", "\"int\""))};
  const CompatibilityResult r = CheckCompatibility(
      Schema(
          Payment(R"(,{"name":"currency_code","type":"string"})", "\"float\"")),
      v1, SchemaCompatibility::kFull);
  ASSERT_FALSE(r.compatible);
  const std::string text = r.ToString();
  EXPECT_THAT(text, HasSubstr("Payment.currency_code: the reader's field has "
                              "no default and the writer does not write it "
                              "(the new schema reading data of the latest "
                              "version)"));
  EXPECT_THAT(text, HasSubstr("Payment.amount: a reader of type int cannot "
                              "read the writer's float (the latest version "
                              "reading data of the new schema)"));
}

TEST(AvroSchemaTest, PromotionsFollowTheSpec) {
  const char* types[] = {"int", "long", "float", "double", "string", "bytes"};
  // reader reads writer?
  const bool want[6][6] = {
      // writer: int   long   float  double string bytes
      {true, false, false, false, false, false},  // reader int
      {true, true, false, false, false, false},   // reader long
      {true, true, true, false, false, false},    // reader float
      {true, true, true, true, false, false},     // reader double
      {false, false, false, false, true, true},   // reader string
      {false, false, false, false, true, true},   // reader bytes
  };
  for (int r = 0; r < 6; ++r) {
    for (int w = 0; w < 6; ++w) {
      EXPECT_EQ(CanRead(Schema(absl::StrCat("\"", types[r], "\"")),
                        Schema(absl::StrCat("\"", types[w], "\"")))
                    .compatible,
                want[r][w])
          << "reader " << types[r] << ", writer " << types[w];
    }
  }
}

TEST(AvroSchemaTest, UnionsResolveBranchByBranch) {
  // A reader union reads a writer type one of its branches reads.
  EXPECT_TRUE(
      CanRead(Schema(R"(["null","long"])"), Schema("\"int\"")).compatible);
  EXPECT_FALSE(
      CanRead(Schema(R"(["null","string"])"), Schema("\"int\"")).compatible);
  // Every branch of a writer union must be readable.
  EXPECT_TRUE(
      CanRead(Schema("\"double\""), Schema(R"(["int","float"])")).compatible);
  const CompatibilityResult r =
      CanRead(Schema("\"double\""), Schema(R"(["null","double"])"));
  EXPECT_FALSE(r.compatible);
  EXPECT_THAT(r.ToString(), HasSubstr("cannot read the writer's null"));
  // Union to union: each writer branch finds a reader branch.
  EXPECT_TRUE(CanRead(Schema(R"(["null","string","long"])"),
                      Schema(R"(["int","null"])"))
                  .compatible);
}

TEST(AvroSchemaTest, EnumsArraysMapsFixedAndRecursion) {
  const std::string color2 =
      R"({"type":"enum","name":"Color","symbols":["RED","GREEN"]})";
  const std::string color3 =
      R"({"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]})";
  const std::string color2_default =
      R"({"type":"enum","name":"Color","symbols":["RED","GREEN"],"default":"RED"})";
  EXPECT_TRUE(CanRead(Schema(color3), Schema(color2)).compatible);
  const CompatibilityResult r = CanRead(Schema(color2), Schema(color3));
  EXPECT_FALSE(r.compatible);
  EXPECT_THAT(r.ToString(), HasSubstr("symbol BLUE"));
  EXPECT_TRUE(CanRead(Schema(color2_default), Schema(color3)).compatible);

  EXPECT_TRUE(CanRead(Schema(R"({"type":"array","items":"long"})"),
                      Schema(R"({"type":"array","items":"int"})"))
                  .compatible);
  EXPECT_THAT(CanRead(Schema(R"({"type":"map","values":"int"})"),
                      Schema(R"({"type":"map","values":"long"})"))
                  .ToString(),
              HasSubstr("map{}"));
  EXPECT_FALSE(CanRead(Schema(R"({"type":"fixed","name":"H","size":16})"),
                       Schema(R"({"type":"fixed","name":"H","size":32})"))
                   .compatible);
  EXPECT_FALSE(CanRead(Schema(R"({"type":"record","name":"A","fields":[]})"),
                       Schema(R"({"type":"record","name":"B","fields":[]})"))
                   .compatible);
  EXPECT_TRUE(
      CanRead(
          Schema(R"({"type":"record","name":"A","aliases":["B"],"fields":[]})"),
          Schema(R"({"type":"record","name":"B","fields":[]})"))
          .compatible);
  // A recursive list, with a field added with a default.
  const std::string list1 = R"({"type":"record","name":"Node","fields":[
      {"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]})";
  const std::string list2 = R"({"type":"record","name":"Node","fields":[
      {"name":"v","type":"long"},{"name":"next","type":["null","Node"]},
      {"name":"w","type":"int","default":0}]})";
  EXPECT_TRUE(Compatible(list2, list1, SchemaCompatibility::kBackward));
  EXPECT_FALSE(Compatible(list2, list1, SchemaCompatibility::kForward));
}

TEST(AvroSchemaTest, TransitiveModesCheckEveryVersion) {
  // v1 has `channel` without a default, v2 gives it one, v3 removes it:
  // v3 is forward compatible with v2, not with v1.
  const std::vector<AvroSchema> previous = {
      Schema(Payment(R"(,{"name":"channel","type":"string"})")),
      Schema(Payment(R"(,{"name":"channel","type":"string","default":"web"})")),
  };
  const AvroSchema v3 = Schema(Payment());
  EXPECT_TRUE(CheckCompatibility(v3, previous, SchemaCompatibility::kForward)
                  .compatible);
  const CompatibilityResult r =
      CheckCompatibility(v3, previous, SchemaCompatibility::kForwardTransitive);
  EXPECT_FALSE(r.compatible);
  EXPECT_THAT(r.ToString(), HasSubstr("version 1 reading data of the new"));
  EXPECT_TRUE(CheckCompatibility(v3, {}, SchemaCompatibility::kFullTransitive)
                  .compatible);
}

TEST(AvroSchemaTest, ModesParseAsTheRegistrySpellsThem) {
  for (SchemaCompatibility m :
       {SchemaCompatibility::kNone, SchemaCompatibility::kBackward,
        SchemaCompatibility::kBackwardTransitive, SchemaCompatibility::kForward,
        SchemaCompatibility::kForwardTransitive, SchemaCompatibility::kFull,
        SchemaCompatibility::kFullTransitive}) {
    absl::StatusOr<SchemaCompatibility> back =
        ParseSchemaCompatibility(SchemaCompatibilityName(m));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, m);
  }
  EXPECT_FALSE(ParseSchemaCompatibility("backward").ok());
}

TEST(AvroSchemaTest, BadSchemasSayWhatAndWhere) {
  auto message = [](const std::string& json) {
    return std::string(AvroSchema::Parse(json).status().message());
  };
  EXPECT_THAT(message("{"), HasSubstr("not JSON"));
  EXPECT_THAT(message("\"Unknown\""), HasSubstr("unknown type \"Unknown\""));
  EXPECT_THAT(message(R"({"type":"record","name":"P","fields":[
      {"name":"a","type":"int"},{"name":"a","type":"int"}]})"),
              HasSubstr("P.a: the field is listed twice"));
  EXPECT_THAT(message(R"({"type":"record","name":"P","fields":[
      {"name":"a","type":"Missing"}]})"),
              HasSubstr("P.a: unknown type \"Missing\""));
  EXPECT_THAT(message(R"(["int","int"])"), HasSubstr("lists int twice"));
  EXPECT_THAT(message(R"({"type":"fixed","name":"F"})"), HasSubstr("size"));
  EXPECT_THAT(message(R"({"type":"enum","name":"E"})"), HasSubstr("symbols"));
  // Namespaces: a reference resolves in the namespace in force.
  const absl::StatusOr<AvroSchema> ns = AvroSchema::Parse(
      R"({"type":"record","name":"Outer","namespace":"a.b","fields":[
        {"name":"x","type":{"type":"fixed","name":"Id","size":4}},
        {"name":"y","type":"Id"},{"name":"z","type":"a.b.Id"}]})");
  ASSERT_TRUE(ns.ok()) << ns.status();
  EXPECT_EQ(ns->name(), "a.b.Outer");
}

}  // namespace
}  // namespace weir
