#include "weir/internal/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace weir::internal {
namespace {

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  // RFC 3720 (iSCSI) B.4 test patterns.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32cTest, ExtendEqualsWholeAndPortableAgrees) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 131));
  const uint32_t whole = Crc32c(data);
  EXPECT_EQ(Crc32cExtendPortable(0, data), whole);
  for (size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    const std::string_view v(data);
    EXPECT_EQ(Crc32cExtend(Crc32c(v.substr(0, split)), v.substr(split)), whole)
        << split;
    EXPECT_EQ(Crc32cExtendPortable(Crc32cExtendPortable(0, v.substr(0, split)),
                                   v.substr(split)),
              whole)
        << split;
  }
}

TEST(Crc32cTest, DetectsAFlippedBit) {
  std::string data(100, 'a');
  const uint32_t before = Crc32c(data);
  data[42] ^= 0x10;
  EXPECT_NE(Crc32c(data), before);
}

}  // namespace
}  // namespace weir::internal
