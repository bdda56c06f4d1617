#include "weir/internal/json_reader.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/internal/json_string.h"

namespace weir::internal {
namespace {

using ::testing::HasSubstr;

TEST(JsonReaderTest, ReadsATreeAndKeepsNumbersAsWritten) {
  absl::StatusOr<JsonValue> doc = ReadJson(
      R"( {"a": [1, -2.50, 1e3, 123456789012345678901234567890.125],
           "s": "x\"\u00e9\ud83d\ude00", "t": true, "f": false, "n": null,
           "o": {}} )");
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_EQ(doc->type, JsonValue::Type::kObject);
  const JsonValue* a = doc->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items.size(), 4u);
  EXPECT_EQ(a->items[0].text, "1");
  EXPECT_TRUE(a->items[0].is_integer());
  EXPECT_EQ(a->items[1].text, "-2.50");
  EXPECT_FALSE(a->items[1].is_integer());
  EXPECT_EQ(a->items[2].text, "1e3");
  EXPECT_EQ(a->items[3].text, "123456789012345678901234567890.125");
  EXPECT_EQ(doc->Find("s")->text, "x\"\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_TRUE(doc->Find("t")->boolean);
  EXPECT_EQ(doc->Find("f")->type, JsonValue::Type::kBool);
  EXPECT_FALSE(doc->Find("f")->boolean);
  EXPECT_EQ(doc->Find("n")->type, JsonValue::Type::kNull);
  EXPECT_EQ(doc->Find("o")->type, JsonValue::Type::kObject);
  EXPECT_EQ(doc->Find("missing"), nullptr);
}

TEST(JsonReaderTest, ReadsScalarDocuments) {
  EXPECT_EQ(ReadJson("\"x\"")->text, "x");
  EXPECT_EQ(ReadJson(" 42 ")->text, "42");
  EXPECT_EQ(ReadJson("null")->type, JsonValue::Type::kNull);
  EXPECT_TRUE(ReadJson("true")->boolean);
}

TEST(JsonReaderTest, RefusesMalformedDocuments) {
  const std::vector<std::string> bad = {
      "",
      "nul",
      "tru",
      "{",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\" 1}",
      "{\"a\":}",
      "[1 2]",
      "{} x",
      "1 2",
      "\"unterminated",
      "{\"a\": \"\\ud800\"}",
      "{\"a\": \"\\x\"}",
      "{\"a\": 01}",
      "{\"a\": 1.}",
      "{\"a\": -}",
      "{\"a\": \"raw\ncontrol\"}",
      "{\"a\": \"\xff\"}",
      std::string(10000, '[') + std::string(10000, ']'),
  };
  for (const std::string& text : bad) {
    absl::StatusOr<JsonValue> doc = ReadJson(text);
    EXPECT_TRUE(absl::IsInvalidArgument(doc.status()))
        << text.substr(0, 40) << ": " << doc.status();
  }
}

TEST(JsonReaderTest, DepthAndDuplicateMembers) {
  const std::string nine = std::string(9, '[') + std::string(9, ']');
  EXPECT_TRUE(ReadJson(nine, {.max_depth = 8}).ok());
  const std::string ten = std::string(10, '[') + std::string(10, ']');
  absl::StatusOr<JsonValue> deep = ReadJson(ten, {.max_depth = 8});
  EXPECT_THAT(deep.status().message(), HasSubstr("nesting deeper than 8"));

  absl::StatusOr<JsonValue> twice = ReadJson(R"({"a": 1, "a": 2})");
  ASSERT_TRUE(twice.ok()) << twice.status();
  EXPECT_EQ(twice->Find("a")->text, "2");
  absl::StatusOr<JsonValue> refused =
      ReadJson(R"({"a": 1, "a": 2})", {.allow_duplicate_members = false});
  EXPECT_THAT(refused.status().message(), HasSubstr("duplicate member \"a\""));
}

TEST(JsonReaderTest, ReadsBackWhatAppendJsonStringWrites) {
  const std::string bytes = "k\x01\"\\\n\x7f\xC3\xA9";
  for (const JsonEscapeOptions options :
       {JsonEscapeOptions{}, JsonEscapeOptions{.escape_del = true}}) {
    std::string json;
    AppendJsonString(bytes, &json, options);
    absl::StatusOr<JsonValue> back = ReadJson(json);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->text, bytes);
  }
}

TEST(JsonReaderTest, AReaderIsReusable) {
  JsonReader reader;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reader.Read(R"({"k": "v"})")->Find("k")->text, "v");
    EXPECT_FALSE(reader.Read("{").ok());
  }
}

TEST(JsonReaderTest, FindTopLevelStringIsLenient) {
  JsonReader reader;
  EXPECT_EQ(reader.FindTopLevelString(R"({"a":1,"k":"v"})", "k"), "v");
  // After the key, a truncated record still gives it.
  EXPECT_EQ(reader.FindTopLevelString(R"({"seq":1,"k":"v","amount":12.)", "k"),
            "v");
  EXPECT_EQ(reader.FindTopLevelString(R"({"k":"v","note":"cut he)", "k"), "v");
  EXPECT_EQ(reader.FindTopLevelString(R"({"k":"v","m":{"a":[1,)", "k"), "v");
  EXPECT_EQ(reader.FindTopLevelString(R"({"a":1,"k":"cut)", "k"), std::nullopt);
  // Nested and non-string members of that name are passed over.
  EXPECT_EQ(reader.FindTopLevelString(
                R"({"m":{"k":"nested","l":[1,"}"]},"k":2,"k":"top"})", "k"),
            "top");
  EXPECT_EQ(reader.FindTopLevelString(
                R"({"note":"\"k\":\"fake\"","k":"\u00e9"})", "k"),
            "\xC3\xA9");
  EXPECT_EQ(reader.FindTopLevelString(R"({"a":1})", "k"), std::nullopt);
  EXPECT_EQ(reader.FindTopLevelString("not json", "k"), std::nullopt);
  EXPECT_EQ(reader.FindTopLevelString(R"(["k","v"])", "k"), std::nullopt);
  EXPECT_EQ(reader.FindTopLevelString(R"({"k":12})", "k"), std::nullopt);
}

}  // namespace
}  // namespace weir::internal
