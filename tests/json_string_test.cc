#include "weir/internal/json_string.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weir::internal {
namespace {

std::string Escape(std::string_view s, JsonEscapeOptions options = {}) {
  std::string out;
  AppendJsonString(s, &out, options);
  return out;
}

TEST(AppendJsonStringTest, EscapesQuotesBackslashesAndControlBytes) {
  EXPECT_EQ(Escape("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(Escape("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(Escape(std::string_view("\x01\x1f\0", 3)),
            R"("\u0001\u001f\u0000")");
  EXPECT_EQ(Escape(""), R"("")");
}

TEST(AppendJsonStringTest, DelIsEscapedOnlyWhenAsked) {
  EXPECT_EQ(Escape("\x7f"), "\"\x7f\"");
  EXPECT_EQ(Escape("\x7f", {.escape_del = true}), R"("\u007f")");
}

TEST(AppendJsonStringTest, HighBytesAreCopiedOrReplacedWhenInvalid) {
  const std::string mixed = "\xC3\xA9-\xFF-\xE2\x82";  // é, a stray, torn €
  EXPECT_EQ(Escape(mixed), "\"" + mixed + "\"");
  EXPECT_EQ(Escape(mixed, {.replace_invalid_utf8 = true}),
            "\"\xC3\xA9-\xEF\xBF\xBD-\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

TEST(Utf8SequenceLengthTest, AcceptsOnlyShortestValidForms) {
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9", 0), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC", 0), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x98\x80", 0), 4u);
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF", 0), 0u);          // overlong
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0u);      // surrogate
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80", 0), 0u);  // > U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82", 0), 0u);          // short
}

TEST(AppendUtf8Test, EncodesEachLength) {
  std::string out;
  AppendUtf8(0x41, &out);
  AppendUtf8(0xE9, &out);
  AppendUtf8(0x20AC, &out);
  AppendUtf8(0x1F600, &out);
  EXPECT_EQ(out, "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

struct Read {
  JsonStringError error;
  size_t pos;
  std::string out;
};

Read ReadAt(std::string_view s, bool allow_control = false) {
  Read r;
  r.pos = 0;
  r.error = ReadJsonString(s, &r.pos, allow_control, &r.out);
  return r;
}

TEST(ReadJsonStringTest, DecodesEscapesAndSurrogatePairs) {
  const Read r = ReadAt(R"("a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"tail)");
  ASSERT_EQ(r.error, JsonStringError::kOk);
  EXPECT_EQ(r.out, "a\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(
      r.pos,
      std::string_view(R"("a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00")").size());
}

TEST(ReadJsonStringTest, RoundTripsWhatAppendJsonStringWrites) {
  const std::string bytes = "k\x01\"\\\n\x7f\xC3\xA9";
  for (const JsonEscapeOptions options :
       {JsonEscapeOptions{}, JsonEscapeOptions{.escape_del = true}}) {
    const Read r = ReadAt(Escape(bytes, options));
    ASSERT_EQ(r.error, JsonStringError::kOk);
    EXPECT_EQ(r.out, bytes);
  }
}

TEST(ReadJsonStringTest, NullOutputSkips) {
  size_t pos = 0;
  EXPECT_EQ(ReadJsonString(R"("ab\u0041",)", &pos, false, nullptr),
            JsonStringError::kOk);
  EXPECT_EQ(pos, 10u);
}

TEST(ReadJsonStringTest, ControlCharactersOnlyWhenAllowed) {
  EXPECT_EQ(ReadAt("\"a\nb\"").error, JsonStringError::kControlCharacter);
  const Read r = ReadAt("\"a\nb\"", /*allow_control=*/true);
  ASSERT_EQ(r.error, JsonStringError::kOk);
  EXPECT_EQ(r.out, "a\nb");
}

TEST(ReadJsonStringTest, ErrorsAndWhereTheyStop) {
  struct Case {
    std::string_view in;
    JsonStringError error;
    size_t pos;
  };
  const Case cases[] = {
      {R"("abc)", JsonStringError::kUnterminated, 4},
      {"\"a\\", JsonStringError::kUnterminatedEscape, 3},
      {R"("\x")", JsonStringError::kBadEscape, 3},
      {R"("\u12")", JsonStringError::kShortUnicodeEscape, 3},
      {R"("\u12g4")", JsonStringError::kBadUnicodeEscape, 6},
      {R"("\udc00")", JsonStringError::kLoneLowSurrogate, 7},
      {R"("\ud800x")", JsonStringError::kLoneHighSurrogate, 7},
      {R"("\ud800\u0041")", JsonStringError::kBadLowSurrogate, 13},
  };
  for (const Case& c : cases) {
    const Read r = ReadAt(c.in);
    EXPECT_EQ(r.error, c.error) << c.in;
    EXPECT_EQ(r.pos, c.pos) << c.in;
    EXPECT_FALSE(JsonStringErrorMessage(r.error).empty()) << c.in;
  }
  EXPECT_EQ(JsonStringErrorMessage(JsonStringError::kOk), "");
  EXPECT_EQ(JsonStringErrorMessage(JsonStringError::kShortUnicodeEscape),
            "short \\u escape");
}

}  // namespace
}  // namespace weir::internal
