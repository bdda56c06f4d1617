#include "weir/internal/state_format.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace weir::internal {
namespace {

TEST(DecodeLiveStateValueTest, ReturnsThePayloadUntilItExpires) {
  std::string stored;
  EncodeStateValue(/*write_time_ms=*/1000, "payload", &stored);
  std::string value;
  ASSERT_TRUE(
      DecodeLiveStateValue(stored, std::nullopt, 1'000'000, &value).ok());
  EXPECT_EQ(value, "payload");
  value.clear();
  ASSERT_TRUE(DecodeLiveStateValue(stored, 500, 1499, &value).ok());
  EXPECT_EQ(value, "payload");
  value = "untouched";
  const absl::Status expired = DecodeLiveStateValue(stored, 500, 1500, &value);
  EXPECT_EQ(expired.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(expired.message(), "state key expired");
  EXPECT_EQ(value, "untouched");
}

TEST(DecodeLiveStateValueTest, DecodingErrorsComeFirst) {
  std::string value;
  EXPECT_EQ(DecodeLiveStateValue("short", 1, 0, &value).code(),
            absl::StatusCode::kDataLoss);
  std::string stored;
  EncodeStateValue(0, "x", &stored);
  stored[0] = static_cast<char>(kStateFormatVersion + 1);
  EXPECT_EQ(DecodeLiveStateValue(stored, 1, 1'000'000, &value).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(DecodeStateValueTest, ReadsVersionOneValuesWhichHaveNoMergeOperands) {
  std::string stored;
  EncodeStateValue(1000, "v1 payload", &stored);
  EXPECT_EQ(static_cast<uint8_t>(stored[0]), kStateFormatVersion);
  stored[0] = static_cast<char>(kOldestStateFormatVersion);
  int64_t write_ms;
  std::string_view payload;
  ASSERT_TRUE(DecodeStateValue(stored, &write_ms, &payload).ok());
  EXPECT_EQ(write_ms, 1000);
  EXPECT_EQ(payload, "v1 payload");
  EXPECT_TRUE(CompactionDrops(stored, 500, 1500));
  stored[0] = static_cast<char>(kOldestStateFormatVersion - 1);
  EXPECT_EQ(DecodeStateValue(stored, &write_ms, &payload).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CompactionDropsTest, DropsOnlyExpiredValuesOfThisFormat) {
  std::string stored;
  EncodeStateValue(1000, "x", &stored);
  EXPECT_FALSE(CompactionDrops(stored, 500, 1499));
  EXPECT_TRUE(CompactionDrops(stored, 500, 1500));
  std::string other = stored;
  other[0] = static_cast<char>(kStateFormatVersion + 1);
  EXPECT_FALSE(CompactionDrops(other, 500, 1'000'000));
  EXPECT_FALSE(CompactionDrops("short", 500, 1'000'000));
}

TEST(EmptyStateIteratorTest, IsNeverValid) {
  EmptyStateIterator it;
  EXPECT_FALSE(it.Valid());
  it.Next();
  EXPECT_FALSE(it.Valid());
  EXPECT_TRUE(it.status().ok());
  EXPECT_TRUE(it.key().empty());
  EXPECT_TRUE(it.value().empty());
}

}  // namespace
}  // namespace weir::internal
