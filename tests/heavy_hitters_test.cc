#include "weir/heavy_hitters.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weir {
namespace {

constexpr size_t kCapacity = 1000;
constexpr int kItems = 1000000;
constexpr int kDistinct = 200000;

// Key ids 0..kDistinct-1 with P(i) proportional to 1 / (i + 1)^s, the key
// names shuffled so that rank and name order are unrelated.
std::vector<std::string> ZipfStream(int n, double s, uint64_t seed) {
  std::vector<double> cdf(kDistinct);
  double total = 0;
  for (int i = 0; i < kDistinct; ++i) {
    total += 1.0 / std::pow(i + 1, s);
    cdf[i] = total;
  }
  std::mt19937_64 rng(seed);
  std::vector<int> name(kDistinct);
  for (int i = 0; i < kDistinct; ++i) name[i] = i;
  std::shuffle(name.begin(), name.end(), rng);
  std::uniform_real_distribution<double> uniform(0, total);
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    int rank =
        std::lower_bound(cdf.begin(), cdf.end(), uniform(rng)) - cdf.begin();
    rank = std::min(rank, kDistinct - 1);
    out.push_back(absl::StrCat("card-", name[rank]));
  }
  return out;
}

using TrueCounts = absl::flat_hash_map<std::string, uint64_t>;

TrueCounts Count(const std::vector<std::string>& stream, size_t begin,
                 size_t end) {
  TrueCounts counts;
  for (size_t i = begin; i < end; ++i) ++counts[stream[i]];
  return counts;
}

// Every guarantee of heavy_hitters.h, checked against the true counts.
void ExpectGuarantees(const HeavyHitters& sketch, const TrueCounts& truth,
                      uint64_t n) {
  ASSERT_EQ(sketch.total_weight(), n);
  std::vector<HeavyHitter> top = sketch.Top(sketch.capacity());
  ASSERT_EQ(top.size(), sketch.size());
  absl::flat_hash_map<std::string, const HeavyHitter*> reported;
  for (const HeavyHitter& h : top) {
    reported[h.key] = &h;
    auto it = truth.find(h.key);
    uint64_t true_count = it == truth.end() ? 0 : it->second;
    EXPECT_LE(h.lower_bound(), true_count) << h.key;
    EXPECT_GE(h.count, true_count) << h.key;
    EXPECT_LE(h.error, sketch.min_count()) << h.key;
  }
  EXPECT_LE(sketch.min_count(), n / sketch.capacity());
  for (size_t i = 1; i < top.size(); ++i) {
    EXPECT_GE(top[i - 1].count, top[i].count);
  }
  int heavy = 0;
  for (const auto& [key, count] : truth) {
    if (count > n / sketch.capacity()) {
      ++heavy;
      EXPECT_TRUE(reported.contains(key))
          << key << " with true count " << count << " > N/k is missing";
    }
    if (!reported.contains(key)) {
      EXPECT_LE(count, sketch.min_count()) << key;
    }
  }
  EXPECT_GT(heavy, 10);  // the test stream does have heavy hitters
}

std::vector<std::string> TrueTop(const TrueCounts& truth, size_t n) {
  std::vector<std::pair<uint64_t, std::string>> all;
  for (const auto& [key, count] : truth) all.emplace_back(count, key);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first > b.first;
    return a.second < b.second;
  });
  std::vector<std::string> out;
  for (size_t i = 0; i < n && i < all.size(); ++i) out.push_back(all[i].second);
  return out;
}

std::vector<std::string> Keys(const std::vector<HeavyHitter>& hitters) {
  std::vector<std::string> out;
  for (const HeavyHitter& h : hitters) out.push_back(h.key);
  return out;
}

class HeavyHittersZipfTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stream_ = new std::vector<std::string>(ZipfStream(kItems, 1.1, 42));
    truth_ = new TrueCounts(Count(*stream_, 0, stream_->size()));
  }
  static void TearDownTestSuite() {
    delete stream_;
    delete truth_;
  }
  static std::vector<std::string>* stream_;
  static TrueCounts* truth_;
};
std::vector<std::string>* HeavyHittersZipfTest::stream_ = nullptr;
TrueCounts* HeavyHittersZipfTest::truth_ = nullptr;

TEST_F(HeavyHittersZipfTest, KeepsEveryKeyAboveNOverKWithValidBounds) {
  HeavyHitters sketch(kCapacity);
  for (const std::string& key : *stream_) sketch.Add(key);
  EXPECT_EQ(sketch.size(), kCapacity);
  ExpectGuarantees(sketch, *truth_, kItems);
}

TEST_F(HeavyHittersZipfTest, TopTenAreTheTrueTopTen) {
  HeavyHitters sketch(kCapacity);
  for (const std::string& key : *stream_) sketch.Add(key);
  EXPECT_EQ(Keys(sketch.Top(10)), TrueTop(*truth_, 10));
}

TEST_F(HeavyHittersZipfTest, MergeOfTwoHalvesKeepsTheGuarantee) {
  HeavyHitters first(kCapacity);
  HeavyHitters second(kCapacity);
  const size_t half = stream_->size() / 2;
  for (size_t i = 0; i < half; ++i) first.Add((*stream_)[i]);
  for (size_t i = half; i < stream_->size(); ++i) second.Add((*stream_)[i]);
  ExpectGuarantees(first, Count(*stream_, 0, half), half);

  ASSERT_TRUE(first.Merge(second).ok());
  EXPECT_EQ(first.size(), kCapacity);
  ExpectGuarantees(first, *truth_, kItems);
  EXPECT_EQ(Keys(first.Top(10)), TrueTop(*truth_, 10));

  // Adding after a merge keeps the guarantees too.
  for (size_t i = 0; i < half; ++i) first.Add((*stream_)[i]);
  TrueCounts more = *truth_;
  for (size_t i = 0; i < half; ++i) ++more[(*stream_)[i]];
  ExpectGuarantees(first, more, kItems + half);
}

TEST_F(HeavyHittersZipfTest, MergeOfInterleavedPartitions) {
  // Partitions see different key sets (as with a keyed Kafka topic).
  constexpr int kPartitions = 4;
  std::vector<HeavyHitters> parts(kPartitions, HeavyHitters(kCapacity));
  for (const std::string& key : *stream_) {
    parts[std::hash<std::string>()(key) % kPartitions].Add(key);
  }
  HeavyHitters all(kCapacity);
  for (const HeavyHitters& part : parts) ASSERT_TRUE(all.Merge(part).ok());
  ExpectGuarantees(all, *truth_, kItems);
  EXPECT_EQ(Keys(all.Top(10)), TrueTop(*truth_, 10));
}

TEST(HeavyHittersTest, ExactWhileNotFull) {
  HeavyHitters sketch(4);
  sketch.Add("a", 5);
  sketch.Add("b");
  sketch.Add("a");
  sketch.Add("c", 0);  // ignored
  EXPECT_EQ(sketch.size(), 2u);
  EXPECT_EQ(sketch.min_count(), 0u);
  std::vector<HeavyHitter> top = sketch.Top(10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, "a");
  EXPECT_EQ(top[0].count, 6u);
  EXPECT_EQ(top[0].error, 0u);
  EXPECT_EQ(top[1].key, "b");
  EXPECT_EQ(sketch.Find("b")->count, 1u);
  EXPECT_FALSE(sketch.Find("c").has_value());
  EXPECT_EQ(sketch.total_weight(), 7u);
}

TEST(HeavyHittersTest, NewKeyReplacesTheMinimumAndInheritsItsCount) {
  HeavyHitters sketch(2);
  sketch.Add("a", 10);
  sketch.Add("b", 3);
  sketch.Add("c", 2);  // replaces b: count 3 + 2, error 3
  EXPECT_FALSE(sketch.Find("b").has_value());
  std::optional<HeavyHitter> c = sketch.Find("c");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->count, 5u);
  EXPECT_EQ(c->error, 3u);
  EXPECT_EQ(c->lower_bound(), 2u);
  EXPECT_EQ(sketch.min_count(), 5u);
}

TEST(HeavyHittersTest, MergeRejectsDifferentCapacities) {
  HeavyHitters a(10);
  HeavyHitters b(20);
  EXPECT_EQ(a.Merge(b).code(), absl::StatusCode::kInvalidArgument);
}

TEST(HeavyHittersTest, MergeOfNotFullSketchesIsExact) {
  HeavyHitters a(10);
  HeavyHitters b(10);
  a.Add("x", 3);
  a.Add("y", 1);
  b.Add("x", 2);
  b.Add("z", 4);
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.Find("x")->count, 5u);
  EXPECT_EQ(a.Find("x")->error, 0u);
  EXPECT_EQ(a.Find("z")->count, 4u);
  EXPECT_EQ(a.total_weight(), 10u);
  // Merging with itself doubles.
  ASSERT_TRUE(a.Merge(a).ok());
  EXPECT_EQ(a.Find("x")->count, 10u);
  EXPECT_EQ(a.total_weight(), 20u);
}

TEST(HeavyHittersTest, CopyIsIndependent) {
  HeavyHitters a(2);
  a.Add("x", 3);
  HeavyHitters b = a;
  b.Add("y", 5);
  b.Add("z", 1);
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.Top(1)[0].key, "y");
  a.Clear();
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.total_weight(), 0u);
}

}  // namespace
}  // namespace weir
