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

}  // namespace
}  // namespace weir::internal
