#include "weir/internal/key_filter.h"

#include <string>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weir::internal {
namespace {

uint64_t HashOf(const std::string& key) { return absl::HashOf(key); }

// Every added key is found; of keys never added, about 1% are taken for
// added ones at 100,000 keys, and more, never fewer found, past that.
TEST(KeyFilterTest, NoFalseNegativesAndFewFalsePositives) {
  KeyFilter filter;
  EXPECT_FALSE(filter.MayContain(HashOf("u1")));
  for (int i = 0; i < 100'000; ++i) filter.Add(HashOf(absl::StrCat("u", i)));
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(filter.MayContain(HashOf(absl::StrCat("u", i)))) << i;
  }
  int wrong = 0;
  for (int i = 0; i < 100'000; ++i) {
    wrong += filter.MayContain(HashOf(absl::StrCat("v", i))) ? 1 : 0;
  }
  EXPECT_LT(wrong, 2'000);  // 2%
  for (int i = 100'000; i < 400'000; ++i) {
    filter.Add(HashOf(absl::StrCat("u", i)));
  }
  for (int i = 0; i < 400'000; ++i) {
    ASSERT_TRUE(filter.MayContain(HashOf(absl::StrCat("u", i)))) << i;
  }
  int wrong_full = 0;
  for (int i = 0; i < 100'000; ++i) {
    wrong_full += filter.MayContain(HashOf(absl::StrCat("v", i))) ? 1 : 0;
  }
  EXPECT_GT(wrong_full, wrong);
  EXPECT_LT(wrong_full, 50'000);
}

// A filter is a power of two from 1 KiB to 128 KiB, the largest that fits
// the size asked for; a small one finds every key added too, and is wrong
// more often than a large one over the same keys.
TEST(KeyFilterTest, SizeIsAPowerOfTwoWithinItsBounds) {
  EXPECT_EQ(KeyFilter().bytes(), KeyFilter::kMaxBytes);
  EXPECT_EQ(KeyFilter(1 << 30).bytes(), KeyFilter::kMaxBytes);
  EXPECT_EQ(KeyFilter(100'000).bytes(), size_t{1} << 16);
  EXPECT_EQ(KeyFilter(16 << 10).bytes(), size_t{16} << 10);
  EXPECT_EQ(KeyFilter(0).bytes(), KeyFilter::kMinBytes);
  KeyFilter small(KeyFilter::kMinBytes);
  KeyFilter large;
  for (int i = 0; i < 2'000; ++i) {
    small.Add(HashOf(absl::StrCat("u", i)));
    large.Add(HashOf(absl::StrCat("u", i)));
  }
  for (int i = 0; i < 2'000; ++i) {
    ASSERT_TRUE(small.MayContain(HashOf(absl::StrCat("u", i)))) << i;
  }
  int wrong_small = 0, wrong_large = 0;
  for (int i = 0; i < 20'000; ++i) {
    wrong_small += small.MayContain(HashOf(absl::StrCat("v", i))) ? 1 : 0;
    wrong_large += large.MayContain(HashOf(absl::StrCat("v", i))) ? 1 : 0;
  }
  EXPECT_GT(wrong_small, wrong_large);
  EXPECT_LT(wrong_small, 10'000);
}

}  // namespace
}  // namespace weir::internal
