#include "weir/sketch.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "weir/internal/coding.h"
#include "weir/internal/crc32c.h"

namespace weir {
namespace {

std::string Bytes(const HyperLogLog& hll) {
  std::string out;
  hll.Serialize(&out);
  return out;
}

std::string Bytes(const QuantileSketch& sketch) {
  std::string out;
  sketch.Serialize(&out);
  return out;
}

std::string Merchant(int i) { return absl::StrCat("merchant-", i); }

// Bytes written by the version 1 encoders (the encoders of the first
// release), kept verbatim: state written then must still restore.
std::string FromHex(std::initializer_list<const char*> parts) {
  std::string hex;
  for (const char* part : parts) hex += part;
  return absl::HexStringToBytes(hex);
}

HyperLogLog HllOfRange(int begin, int end) {
  HyperLogLog hll;
  for (int i = begin; i < end; ++i) hll.Add(Merchant(i));
  return hll;
}

// ---------------------------------------------------------------------------
// Hashing

TEST(XxHash64Test, MatchesTheReferenceImplementation) {
  // Values of the reference XXH64 (seed 0 unless given): constants, so a
  // change of hash that would make old state disagree with new state fails.
  EXPECT_EQ(XxHash64(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(XxHash64("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(XxHash64("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(XxHash64("merchant-42"), 0x3622E905E9F5F397ULL);
  // 43 and 37 bytes: the 32-byte stripe loop and every tail step.
  EXPECT_EQ(XxHash64("The quick brown fox jumps over the lazy dog"),
            0x0B242D361FDA71BCULL);
  EXPECT_EQ(XxHash64("0123456789abcdef0123456789abcdefXYZ12"),
            0x7E9AC5D176415ED5ULL);
  EXPECT_EQ(XxHash64("abc", 1234567), 0xCB54395BBF895909ULL);
}

TEST(HyperLogLogTest, NumbersHashAsTheirLittleEndianBytes) {
  auto same = [](const HyperLogLog& a, uint64_t hash) {
    HyperLogLog b;
    b.AddHash(hash);
    return Bytes(a) == Bytes(b);
  };
  HyperLogLog i42;
  i42.Add(int64_t{42});
  EXPECT_TRUE(same(i42, 0xB556806FB6D14353ULL));  // XXH64 of 2A 00 .. 00
  HyperLogLog int42;
  int42.Add(42);  // int goes through int64_t
  EXPECT_EQ(Bytes(int42), Bytes(i42));
  HyperLogLog d;
  d.Add(1.5);
  EXPECT_TRUE(same(d, 0x49F7B96B6B5CCAF9ULL));
  HyperLogLog zero;
  zero.Add(0.0);
  HyperLogLog negative_zero;
  negative_zero.Add(-0.0);
  EXPECT_EQ(Bytes(zero), Bytes(negative_zero));
  EXPECT_TRUE(same(zero, 0x34C96ACDCADB1BBBULL));
  HyperLogLog str;
  str.Add("42");
  EXPECT_NE(Bytes(str), Bytes(i42));
}

// ---------------------------------------------------------------------------
// HyperLogLog

TEST(HyperLogLogTest, CreateChecksPrecision) {
  EXPECT_EQ(HyperLogLog::Create(3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HyperLogLog::Create(19).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(HyperLogLog::Create(4).ok());
  ASSERT_TRUE(HyperLogLog::Create(18).ok());
  EXPECT_EQ(HyperLogLog().precision(), 14);
  EXPECT_EQ(HyperLogLog().Estimate(), 0.0);
  EXPECT_NEAR(HyperLogLog::StandardError(14), 0.0081, 0.0001);
}

TEST(HyperLogLogTest, ErrorStaysWithinBoundsFromTenToOneMillion) {
  HyperLogLog hll;
  const double bound = 3 * HyperLogLog::StandardError(14);  // 2.44%
  int added = 0;
  for (int n : {10, 100, 1000, 10000, 100000, 1000000}) {
    for (; added < n; ++added) hll.Add(Merchant(added));
    const double estimate = hll.Estimate();
    SCOPED_TRACE(absl::StrCat("n = ", n, ", estimate = ", estimate));
    if (n <= 1000) {
      // Sparse: 2^25 fine registers make small counts all but exact.
      EXPECT_TRUE(hll.is_sparse());
      EXPECT_LE(std::abs(estimate - n), std::max(1.0, 0.002 * n));
    } else {
      EXPECT_FALSE(hll.is_sparse());
      EXPECT_LE(std::abs(estimate / n - 1), bound);
    }
  }
}

TEST(HyperLogLogTest, PrecisionsFromEightStayWithinThreeStandardErrors) {
  for (int p : {8, 10, 12, 16, 18}) {
    auto hll = HyperLogLog::Create(p);
    ASSERT_TRUE(hll.ok());
    const int n = 200000;
    for (int i = 0; i < n; ++i) hll->Add(int64_t{i});
    EXPECT_LE(std::abs(hll->Estimate() / n - 1),
              3 * HyperLogLog::StandardError(p))
        << "p = " << p;
  }
}

TEST(HyperLogLogTest, DuplicatesAndOrderDoNotChangeTheState) {
  for (int n : {50, 20000}) {  // sparse and dense
    HyperLogLog once = HllOfRange(0, n);
    HyperLogLog repeated;
    for (int round = 0; round < 3; ++round) {
      for (int i = n - 1; i >= 0; --i) repeated.Add(Merchant(i));
    }
    EXPECT_EQ(Bytes(once), Bytes(repeated)) << n;
    EXPECT_EQ(once.Estimate(), repeated.Estimate());
  }
}

TEST(HyperLogLogTest, MergeOfDisjointPartsEqualsAddingAll) {
  struct Case {
    int split, end;
  };
  // sparse+sparse staying sparse, sparse+sparse turning dense,
  // dense+dense, sparse+dense.
  for (Case c : {Case{100, 200}, Case{3000, 6000}, Case{50000, 100000},
                 Case{10, 50000}, Case{49990, 50000}}) {
    HyperLogLog all = HllOfRange(0, c.end);
    HyperLogLog left = HllOfRange(0, c.split);
    const HyperLogLog right = HllOfRange(c.split, c.end);
    ASSERT_TRUE(left.Merge(right).ok());
    EXPECT_EQ(Bytes(left), Bytes(all)) << c.split << " " << c.end;
    EXPECT_EQ(left.Estimate(), all.Estimate());
  }
}

// A sparse list longer than a few lines takes new entries unsorted and
// sorts them in later: what every read sees in between is still the sketch
// of everything added, as a union of one-hash sketches (which never holds
// unsorted entries) builds it.
TEST(HyperLogLogTest, ReadsBetweenAddsSeeEveryHashAdded) {
  std::mt19937_64 rng(11);
  std::vector<uint64_t> hashes;
  HyperLogLog hll;
  HyperLogLog reference;
  for (int i = 0; i < 6000 && hll.is_sparse(); ++i) {
    // One in four repeats an earlier hash, a third of them with a larger
    // rank (same fine register).
    uint64_t hash = rng();
    if (!hashes.empty() && i % 4 == 0) {
      hash = hashes[rng() % hashes.size()];
      if (i % 3 == 0) hash &= ~((uint64_t{1} << 38) - 1);
    }
    hashes.push_back(hash);
    hll.AddHash(hash);
    HyperLogLog one;
    one.AddHash(hash);
    ASSERT_TRUE(reference.Merge(one).ok());
    if (i % 97 == 0 || i < 40) {
      ASSERT_EQ(Bytes(hll), Bytes(reference)) << i;
      ASSERT_EQ(hll.Estimate(), reference.Estimate()) << i;
      // A copy, and a sketch merged from it, are the same sketch.
      HyperLogLog copy = hll;
      HyperLogLog merged;
      ASSERT_TRUE(merged.Merge(hll).ok());
      ASSERT_EQ(Bytes(copy), Bytes(reference)) << i;
      ASSERT_EQ(Bytes(merged), Bytes(reference)) << i;
    }
  }
  EXPECT_FALSE(hll.is_sparse());  // it went on to turn dense
  EXPECT_EQ(Bytes(hll), Bytes(reference));
}

TEST(HyperLogLogTest, MergeIsCommutativeAndAssociative) {
  const HyperLogLog a = HllOfRange(0, 50);         // sparse
  const HyperLogLog b = HllOfRange(1000, 21000);   // dense
  const HyperLogLog c = HllOfRange(20500, 23500);  // sparse, overlaps b
  HyperLogLog ab_c = a;
  ASSERT_TRUE(ab_c.Merge(b).ok());
  ASSERT_TRUE(ab_c.Merge(c).ok());
  HyperLogLog bc = b;
  ASSERT_TRUE(bc.Merge(c).ok());
  HyperLogLog a_bc = a;
  ASSERT_TRUE(a_bc.Merge(bc).ok());
  HyperLogLog cba = c;
  ASSERT_TRUE(cba.Merge(b).ok());
  ASSERT_TRUE(cba.Merge(a).ok());
  EXPECT_EQ(Bytes(ab_c), Bytes(a_bc));
  EXPECT_EQ(Bytes(ab_c), Bytes(cba));

  HyperLogLog x = HllOfRange(0, 40);
  HyperLogLog y = HllOfRange(30, 70);
  HyperLogLog xy = x;
  ASSERT_TRUE(xy.Merge(y).ok());
  HyperLogLog yx = y;
  ASSERT_TRUE(yx.Merge(x).ok());
  EXPECT_EQ(Bytes(xy), Bytes(yx));
  EXPECT_EQ(Bytes(xy), Bytes(HllOfRange(0, 70)));
}

TEST(HyperLogLogTest, MergeRejectsAnotherPrecision) {
  HyperLogLog a;
  auto b = HyperLogLog::Create(12);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a.Merge(*b).code(), absl::StatusCode::kInvalidArgument);
}

TEST(HyperLogLogTest, SerializeRoundTripsByteEqual) {
  for (int n : {0, 5, 4000, 100000}) {
    const HyperLogLog hll = HllOfRange(0, n);
    const std::string bytes = Bytes(hll);
    auto restored = HyperLogLog::Deserialize(bytes);
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(Bytes(*restored), bytes);
    EXPECT_EQ(restored->Estimate(), hll.Estimate());
    EXPECT_EQ(restored->is_sparse(), hll.is_sparse());
    // A restored sketch goes on exactly like the original.
    HyperLogLog more = hll;
    more.Add("one more");
    restored->Add("one more");
    EXPECT_EQ(Bytes(*restored), Bytes(more));
  }
}

TEST(HyperLogLogTest, SmallSketchesAreSmall) {
  const HyperLogLog hll = HllOfRange(0, 5);
  EXPECT_TRUE(hll.is_sparse());
  EXPECT_LT(Bytes(hll).size(), 64u);
  EXPECT_LE(hll.MemoryBytes(), 128u);
  EXPECT_NEAR(hll.Estimate(), 5.0, 0.01);
  const HyperLogLog big = HllOfRange(0, 20000);
  EXPECT_GE(big.MemoryBytes(), 16384u);
  EXPECT_LT(big.MemoryBytes(), 17000u);
}

void ExpectCorruptionDetected(const std::string& good,
                              absl::StatusCode (*decode)(std::string_view)) {
  for (size_t len = 0; len < good.size(); ++len) {
    EXPECT_EQ(decode(good.substr(0, len)), absl::StatusCode::kDataLoss)
        << "prefix of " << len;
  }
  for (size_t i = 0; i < good.size(); ++i) {
    if (i == 1) continue;  // the version byte: see the version tests
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5A);
    EXPECT_EQ(decode(bad), absl::StatusCode::kDataLoss) << "byte " << i;
  }
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string garbage(rng() % 200, '\0');
    for (char& ch : garbage) ch = static_cast<char>(rng());
    if (garbage.size() > 1 && trial % 2 == 0) {
      garbage[0] = good[0];  // right tag and version, wrong body
      garbage[1] = good[1];
    }
    if (garbage.size() > 1 && garbage[0] == good[0] && garbage[1] != good[1]) {
      continue;  // an unknown version, reported as such
    }
    EXPECT_EQ(decode(garbage), absl::StatusCode::kDataLoss) << trial;
  }
  EXPECT_EQ(decode(good + "x"), absl::StatusCode::kDataLoss);
}

absl::StatusCode DecodeHll(std::string_view bytes) {
  return HyperLogLog::Deserialize(bytes).status().code();
}

TEST(HyperLogLogTest, GarbageAndTruncationAreDataLoss) {
  ExpectCorruptionDetected(Bytes(HllOfRange(0, 30)), DecodeHll);
  auto small = HyperLogLog::Create(6);  // dense at 16 entries
  ASSERT_TRUE(small.ok());
  for (int i = 0; i < 500; ++i) small->Add(int64_t{i});
  ASSERT_FALSE(small->is_sparse());
  ExpectCorruptionDetected(Bytes(*small), DecodeHll);
}

TEST(HyperLogLogTest, UnknownVersionIsFailedPrecondition) {
  std::string bytes = Bytes(HllOfRange(0, 3));
  EXPECT_EQ(bytes[1], 2);
  bytes[1] = 3;
  EXPECT_EQ(DecodeHll(bytes), absl::StatusCode::kFailedPrecondition);
  bytes[1] = 0;
  EXPECT_EQ(DecodeHll(bytes), absl::StatusCode::kFailedPrecondition);
}

TEST(HyperLogLogTest, RestoresVersionOneEncodings) {
  // Merchant(0..5) at p = 14: sparse.
  const std::string sparse_v1 = FromHex(
      {"48010e0006c3b1db41ffd9d21280fdb259bffbda8c0280a8d352c0eecde5022c",
       "e4d329"});
  auto sparse = HyperLogLog::Deserialize(sparse_v1);
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  EXPECT_TRUE(sparse->is_sparse());
  EXPECT_EQ(sparse->Estimate(), 6.000010233831679);
  EXPECT_EQ(Bytes(*sparse), Bytes(HllOfRange(0, 6)));

  // The int64 values 0..499 at p = 8: dense, one byte per register.
  const std::string dense_v1 = FromHex(
      {"4801080104060104020304010202020102000207040202050201040203020300",
       "0001020002020301000101010302020201020100020202020303010103050201",
       "0103020203010001030101020301000003010001080201020300030102050003",
       "0303030200040205020101020501030101020101020204040202040602050001",
       "030300020506030a000204030701020604000000030100020209020300030203",
       "0205010300010102030203030102030006030204030501000303020302030203",
       "0201010104020407020003040206070200010200020102000201000203020102",
       "0204040406010001010002020205030102010100030002030000020303010401",
       "03030103a86f90b1"});
  auto dense = HyperLogLog::Deserialize(dense_v1);
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_FALSE(dense->is_sparse());
  EXPECT_EQ(dense->Estimate(), 505.00382036675182);
  auto fresh = HyperLogLog::Create(8);
  ASSERT_TRUE(fresh.ok());
  for (int i = 0; i < 500; ++i) fresh->Add(int64_t{i});
  const std::string v2 = Bytes(*fresh);
  EXPECT_EQ(Bytes(*dense), v2);
  // Version 2 packs the 256 registers into 192 bytes.
  EXPECT_EQ(v2.size(), dense_v1.size() - 64);
  // A restored version 1 sketch goes on like the original.
  dense->Add(int64_t{1000});
  fresh->Add(int64_t{1000});
  EXPECT_EQ(Bytes(*dense), Bytes(*fresh));
  ExpectCorruptionDetected(dense_v1, DecodeHll);
}

// The dense registers of `hashes` at precision p, computed from the
// definition (index: the top p bits; rank: 1 + leading zeros of the rest),
// in the version 2 encoding.
std::string DenseEncodingOf(const std::vector<uint64_t>& hashes, int p) {
  std::vector<uint8_t> registers(size_t{1} << p, 0);
  for (uint64_t hash : hashes) {
    const uint64_t rest = hash << p;
    const int rank = rest == 0 ? 64 - p + 1 : std::countl_zero(rest) + 1;
    uint8_t& reg = registers[hash >> (64 - p)];
    reg = std::max(reg, static_cast<uint8_t>(rank));
  }
  std::string out = {'H', 2, static_cast<char>(p), 1};
  for (size_t i = 0; i < registers.size(); i += 4) {
    uint32_t group = 0;
    for (int j = 0; j < 4; ++j) group |= uint32_t{registers[i + j]} << (6 * j);
    for (int j = 0; j < 3; ++j)
      out.push_back(static_cast<char>(group >> (8 * j)));
  }
  internal::PutFixed32(&out, internal::Crc32c(out));
  return out;
}

TEST(HyperLogLogTest, SparseTurnsDenseAtItsLimitWithTheSameRegisters) {
  for (int p : {10, 14}) {
    SCOPED_TRACE(absl::StrCat("p = ", p));
    auto hll = HyperLogLog::Create(p);
    ASSERT_TRUE(hll.ok());
    // Sparse up to min(m / 4, 4096) entries, dense from the next one.
    const size_t limit = std::min<size_t>((size_t{1} << p) / 4, 4096);
    std::mt19937_64 rng(p);
    std::vector<uint64_t> hashes;
    // Duplicates of earlier hashes do not count towards the limit.
    while (hll->is_sparse()) {
      const uint64_t hash =
          hashes.size() > 10 && hashes.size() % 7 == 0 ? hashes[3] : rng();
      hashes.push_back(hash);
      hll->AddHash(hash);
      if (hll->is_sparse()) {
        EXPECT_LE(hll->MemoryBytes(), sizeof(HyperLogLog) + 4 * 2 * limit);
      }
    }
    // The limit counts occupied fine registers (the top 25 bits of a hash).
    std::set<uint64_t> fine;
    for (uint64_t hash : hashes) fine.insert(hash >> (64 - 25));
    EXPECT_EQ(fine.size(), limit + 1);
    EXPECT_EQ(Bytes(*hll), DenseEncodingOf(hashes, p));
    // And the dense sketch goes on from there.
    for (int i = 0; i < 1000; ++i) {
      hashes.push_back(rng());
      hll->AddHash(hashes.back());
    }
    EXPECT_EQ(Bytes(*hll), DenseEncodingOf(hashes, p));
    EXPECT_EQ(hll->MemoryBytes(), sizeof(HyperLogLog) + (size_t{1} << p));
  }
}

TEST(HyperLogLogTest, FewValuesNeedNoHeap) {
  HyperLogLog hll;
  for (size_t i = 0; i < HyperLogLog::kInlineSparseEntries; ++i) {
    hll.Add(Merchant(static_cast<int>(i)));
  }
  EXPECT_EQ(hll.MemoryBytes(), sizeof(HyperLogLog));
  hll.Add("one more");
  EXPECT_GT(hll.MemoryBytes(), sizeof(HyperLogLog));
}

TEST(HyperLogLogTest, EstimateOfOneHashEqualsTheSketchsEstimate) {
  // Every rank a sparse entry can have (1 to 40: the 39 bits after the
  // 25-bit index, all zero for the last), then random hashes; each added
  // once and twice, at the smallest, the default and the largest precision.
  std::vector<uint64_t> hashes;
  for (int zeros = 0; zeros <= 39; ++zeros) {
    const uint64_t index = uint64_t{0x1234567} << 39;
    hashes.push_back(zeros == 39 ? index
                                 : index | (uint64_t{1} << (38 - zeros)));
  }
  std::mt19937_64 rng(11);
  for (int i = 0; i < 1000; ++i) hashes.push_back(rng());
  for (int p : {HyperLogLog::kMinPrecision, HyperLogLog::kDefaultPrecision,
                HyperLogLog::kMaxPrecision}) {
    for (uint64_t hash : hashes) {
      HyperLogLog hll = *HyperLogLog::Create(p);
      hll.AddHash(hash);
      EXPECT_EQ(HyperLogLog::EstimateOfOneHash(hash), hll.Estimate())
          << "precision " << p << " hash " << hash;
      hll.AddHash(hash);
      EXPECT_EQ(HyperLogLog::EstimateOfOneHash(hash), hll.Estimate());
    }
  }
  // The ranks give different estimates (a table of one value would pass
  // the comparison above only by chance): the first and the last differ.
  EXPECT_NE(HyperLogLog::EstimateOfOneHash(hashes.front()),
            HyperLogLog::EstimateOfOneHash(hashes[39]));
}

TEST(HyperLogLogTest, ManyRandomSetsStayWithinTheDocumentedError) {
  // 300 sets of random sizes from 1 to 200,000 (log-uniform), compared
  // with their exact distinct count. Sparse sketches are all but exact;
  // dense ones stay within 3 standard errors with probability > 99%.
  std::mt19937_64 rng(2026);
  const double se = HyperLogLog::StandardError(14);
  int dense_sets = 0;
  int beyond_three_se = 0;
  for (int set = 0; set < 300; ++set) {
    const auto n = static_cast<int64_t>(
        std::exp(std::uniform_real_distribution<double>(0, 12.2)(rng)));
    HyperLogLog hll;
    const uint64_t base = rng();
    for (int64_t i = 0; i < n; ++i) {
      hll.Add(static_cast<int64_t>(base + i));  // n distinct int64 values
      if (i % 3 == 0) hll.Add(static_cast<int64_t>(base));  // duplicates
    }
    const double estimate = hll.Estimate();
    SCOPED_TRACE(absl::StrCat("n = ", n, ", estimate = ", estimate));
    if (hll.is_sparse()) {
      EXPECT_LE(std::abs(estimate - n), std::max(1.0, 0.002 * n));
    } else {
      ++dense_sets;
      const double error = std::abs(estimate / n - 1);
      EXPECT_LE(error, 4.5 * se);
      if (error > 3 * se) ++beyond_three_se;
    }
  }
  EXPECT_GT(dense_sets, 50);
  EXPECT_LE(beyond_three_se, std::max(1, dense_sets / 50));
}

// ---------------------------------------------------------------------------
// QuantileSketch

std::vector<double> Uniform(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> out(n);
  for (double& v : out) v = static_cast<double>(rng() >> 11) * 0x1p-53;
  return out;
}

// Log-normal amounts (median e^3 ≈ 20, sigma 1.5): a heavy right tail.
std::vector<double> LogNormal(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto unit = [&rng] {  // (0, 1]
    return (static_cast<double>(rng() >> 11) + 1) * 0x1p-53;
  };
  std::vector<double> out(n);
  for (double& v : out) {
    const double normal =
        std::sqrt(-2 * std::log(unit())) * std::cos(2 * M_PI * unit());
    v = std::exp(3 + 1.5 * normal);
  }
  return out;
}

// Largest normalized rank error of the sketch over the quantiles 0.01..0.99
// and 0.999 and over Rank() at the true quantiles, measured against the
// exact data.
double MaxRankError(const QuantileSketch& sketch, std::vector<double> data) {
  std::sort(data.begin(), data.end());
  const double n = static_cast<double>(data.size());
  std::vector<double> qs;
  for (int i = 1; i <= 99; ++i) qs.push_back(i / 100.0);
  qs.push_back(0.999);
  double worst = 0;
  for (double q : qs) {
    auto v = sketch.Quantile(q);
    EXPECT_TRUE(v.ok());
    if (!v.ok()) return 1;
    // True rank of v: any rank in [lo, hi] names v.
    const double lo =
        (std::lower_bound(data.begin(), data.end(), *v) - data.begin()) / n;
    const double hi =
        (std::upper_bound(data.begin(), data.end(), *v) - data.begin()) / n;
    worst = std::max({worst, lo - q, q - hi});
    const double x = data[static_cast<size_t>(q * n) - 1];
    const double true_rank =
        (std::upper_bound(data.begin(), data.end(), x) - data.begin()) / n;
    worst = std::max(worst, std::abs(sketch.Rank(x) - true_rank));
  }
  return worst;
}

TEST(QuantileSketchTest, CreateChecksK) {
  EXPECT_EQ(QuantileSketch::Create(7).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantileSketch::Create(65536).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(QuantileSketch::Create(8).ok());
  EXPECT_EQ(QuantileSketch().k(), 200);
  EXPECT_NEAR(QuantileSketch::RankErrorBound(200), 0.0133, 0.0001);
}

TEST(QuantileSketchTest, EmptySketch) {
  QuantileSketch sketch;
  EXPECT_EQ(sketch.count(), 0u);
  EXPECT_FALSE(sketch.min().has_value());
  EXPECT_FALSE(sketch.max().has_value());
  EXPECT_EQ(sketch.Quantile(0.5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sketch.Rank(1.0), 0.0);
  auto restored = QuantileSketch::Deserialize(Bytes(sketch));
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(Bytes(*restored), Bytes(sketch));
}

TEST(QuantileSketchTest, SmallInputsAreExact) {
  std::vector<double> values;
  for (int i = 1; i <= 200; ++i) values.push_back(i);
  std::shuffle(values.begin(), values.end(), std::mt19937_64(3));
  QuantileSketch sketch;
  for (double v : values) sketch.Add(v);
  EXPECT_EQ(sketch.num_retained(), 200u);
  for (int i = 1; i <= 200; ++i) {
    auto q = sketch.Quantile(i / 200.0);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(*q, i);
    EXPECT_EQ(sketch.Rank(i), i / 200.0);
    EXPECT_EQ(sketch.Rank(i + 0.5), i / 200.0);
  }
  EXPECT_EQ(*sketch.Quantile(0), 1);
  EXPECT_EQ(*sketch.Quantile(1), 200);
  EXPECT_EQ(*sketch.Quantile(0.001), 1);
  EXPECT_EQ(sketch.Rank(0.5), 0.0);
  EXPECT_EQ(*sketch.min(), 1);
  EXPECT_EQ(*sketch.max(), 200);
  EXPECT_EQ(sketch.Quantile(1.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sketch.Quantile(NAN).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(QuantileSketchTest, AHandfulOfValuesCostsAHandfulOfDoubles) {
  QuantileSketch sketch;
  for (double v : {12.5, 3.0, 99.0, 7.25, 40.0}) sketch.Add(v);
  // Header, min, max, 5 values, checksum.
  EXPECT_LE(Bytes(sketch).size(), 16 + 2 * 8 + 5 * 8u);
  EXPECT_LE(sketch.MemoryBytes(), 200u);
  EXPECT_EQ(*sketch.Quantile(0.5), 12.5);
  EXPECT_EQ(*sketch.Quantile(0.99), 99.0);
}

TEST(QuantileSketchTest, NanIsIgnoredAndNegativeZeroIsZero) {
  QuantileSketch a;
  a.Add(NAN);
  EXPECT_EQ(a.count(), 0u);
  a.Add(-0.0);
  QuantileSketch b;
  b.Add(0.0);
  EXPECT_EQ(Bytes(a), Bytes(b));
  EXPECT_FALSE(std::signbit(*a.min()));
}

TEST(QuantileSketchTest, UniformMillionStaysWithinBound) {
  const std::vector<double> data = Uniform(1000000, 11);
  QuantileSketch sketch;
  for (double v : data) sketch.Add(v);
  EXPECT_EQ(sketch.count(), data.size());
  EXPECT_EQ(*sketch.min(), *std::min_element(data.begin(), data.end()));
  EXPECT_EQ(*sketch.max(), *std::max_element(data.begin(), data.end()));
  EXPECT_LE(MaxRankError(sketch, data), QuantileSketch::RankErrorBound(200));
  // About 3k retained values plus 8 per small level.
  EXPECT_LT(sketch.num_retained(), 3u * 200 + 8 * 20);
  EXPECT_LT(sketch.MemoryBytes(), 16384u);
}

TEST(QuantileSketchTest, LogNormalMillionStaysWithinBound) {
  const std::vector<double> data = LogNormal(1000000, 12);
  QuantileSketch sketch;
  for (double v : data) sketch.Add(v);
  EXPECT_LE(MaxRankError(sketch, data), QuantileSketch::RankErrorBound(200));
}

TEST(QuantileSketchTest, SmallerKHasItsOwnBound) {
  const std::vector<double> data = LogNormal(300000, 13);
  auto sketch = QuantileSketch::Create(50);
  ASSERT_TRUE(sketch.ok());
  for (double v : data) sketch->Add(v);
  EXPECT_LE(MaxRankError(*sketch, data), QuantileSketch::RankErrorBound(50));
}

TEST(QuantileSketchTest, MergingEightPartsStaysWithinBound) {
  const std::vector<double> data = LogNormal(1000000, 14);
  std::vector<QuantileSketch> parts(8);
  // Parts of different sizes, interleaved like partitions of one stream.
  for (size_t i = 0; i < data.size(); ++i) {
    parts[(i * i + i / 3) % 8].Add(data[i]);
  }
  QuantileSketch merged;
  for (const QuantileSketch& part : parts) {
    ASSERT_TRUE(merged.Merge(part).ok());
  }
  EXPECT_EQ(merged.count(), data.size());
  EXPECT_EQ(*merged.min(), *std::min_element(data.begin(), data.end()));
  EXPECT_EQ(*merged.max(), *std::max_element(data.begin(), data.end()));
  EXPECT_LE(MaxRankError(merged, data), QuantileSketch::RankErrorBound(200));
  EXPECT_LT(merged.num_retained(), 3u * 200 + 8 * 20);

  // A tree of merges (pairs, then pairs of pairs) keeps the bound too.
  std::vector<QuantileSketch> round = parts;
  while (round.size() > 1) {
    std::vector<QuantileSketch> next;
    for (size_t i = 0; i < round.size(); i += 2) {
      ASSERT_TRUE(round[i].Merge(round[i + 1]).ok());
      next.push_back(round[i]);
    }
    round = next;
  }
  EXPECT_EQ(round[0].count(), data.size());
  EXPECT_LE(MaxRankError(round[0], data), QuantileSketch::RankErrorBound(200));
}

TEST(QuantileSketchTest, MergeRejectsAnotherK) {
  QuantileSketch a;
  auto b = QuantileSketch::Create(100);
  ASSERT_TRUE(b.ok());
  b->Add(1);
  EXPECT_EQ(a.Merge(*b).code(), absl::StatusCode::kInvalidArgument);
}

TEST(QuantileSketchTest, SmallMergesAreExact) {
  QuantileSketch a;
  QuantileSketch b;
  for (int i = 0; i < 50; ++i) a.Add(i);
  for (int i = 50; i < 100; ++i) b.Add(i);
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(*a.Quantile(0.5), 49);
  EXPECT_EQ(a.Rank(74), 0.75);
  ASSERT_TRUE(a.Merge(a).ok());  // self-merge doubles every weight
  EXPECT_EQ(a.count(), 200u);
  EXPECT_EQ(a.Rank(74), 0.75);
}

TEST(QuantileSketchTest, SameSequenceGivesByteEqualSketches) {
  const std::vector<double> data = LogNormal(200000, 15);
  QuantileSketch a;
  QuantileSketch b;
  for (double v : data) a.Add(v);
  for (double v : data) b.Add(v);
  EXPECT_EQ(Bytes(a), Bytes(b));

  // A sketch restored from a checkpoint mid-stream ends up identical.
  QuantileSketch first_half;
  for (size_t i = 0; i < data.size() / 2; ++i) first_half.Add(data[i]);
  auto restored = QuantileSketch::Deserialize(Bytes(first_half));
  ASSERT_TRUE(restored.ok()) << restored.status();
  for (size_t i = data.size() / 2; i < data.size(); ++i) {
    restored->Add(data[i]);
  }
  EXPECT_EQ(Bytes(*restored), Bytes(a));
}

TEST(QuantileSketchTest, SerializeRoundTripsByteEqual) {
  for (int n : {1, 5, 200, 201, 5000, 300000}) {
    const std::vector<double> data = Uniform(n, 16);
    QuantileSketch sketch;
    for (double v : data) sketch.Add(v);
    const std::string bytes = Bytes(sketch);
    auto restored = QuantileSketch::Deserialize(bytes);
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(Bytes(*restored), bytes);
    EXPECT_EQ(restored->count(), sketch.count());
    EXPECT_EQ(*restored->Quantile(0.99), *sketch.Quantile(0.99));
    EXPECT_EQ(restored->Rank(0.5), sketch.Rank(0.5));
  }
}

absl::StatusCode DecodeQuantile(std::string_view bytes) {
  return QuantileSketch::Deserialize(bytes).status().code();
}

TEST(QuantileSketchTest, GarbageAndTruncationAreDataLoss) {
  QuantileSketch small;
  for (double v : Uniform(20, 17)) small.Add(v);
  ExpectCorruptionDetected(Bytes(small), DecodeQuantile);
  QuantileSketch compacted;
  for (double v : Uniform(3000, 18)) compacted.Add(v);
  ExpectCorruptionDetected(Bytes(compacted), DecodeQuantile);
}

TEST(QuantileSketchTest, UnknownVersionIsFailedPrecondition) {
  QuantileSketch sketch;
  sketch.Add(1);
  std::string bytes = Bytes(sketch);
  bytes[1] = 9;
  EXPECT_EQ(DecodeQuantile(bytes), absl::StatusCode::kFailedPrecondition);
}

TEST(QuantileSketchTest, RestoresVersionOneEncodings) {
  // 12.5, 3, 99, 7.25, 40 at k = 200: one level, every value.
  const std::string small_v1 = FromHex(
      {"5101c8000500010500000000000008400000000000c058400000000000002940",
       "00000000000008400000000000c058400000000000001d400000000000004440",
       "d8979fb5"});
  auto small = QuantileSketch::Deserialize(small_v1);
  ASSERT_TRUE(small.ok()) << small.status();
  QuantileSketch fresh;
  for (double v : {12.5, 3.0, 99.0, 7.25, 40.0}) fresh.Add(v);
  EXPECT_EQ(Bytes(*small), Bytes(fresh));
  EXPECT_EQ(*small->min(), 3.0);
  EXPECT_EQ(*small->max(), 99.0);
  EXPECT_EQ(*small->Quantile(0.5), 12.5);
  // Version 2 leaves out min and max of a one-level sketch and writes the
  // values as hundredths: header 8, form 1, values 11, checksum 4.
  EXPECT_EQ(Bytes(fresh).size(), 8 + 1 + 11 + 4u);

  // (37 i) mod 100 for i in 0..99 at k = 8: compacted into several levels.
  const std::string compacted_v1 = FromHex(
      {"51010800640b040a010a0600000000000000000000000000c058400000000000",
       "003e400000000000c05040000000000000104000000000008044400000000000",
       "8053400000000000002e400000000000004a4000000000004056400000000000",
       "003a400000000000804f40000000000000f03f00000000000028400000000000",
       "0034400000000000004140000000000000434000000000000049400000000000",
       "804c400000000000c051400000000000c0534000000000008056400000000000",
       "80584000000000000026400000000000003c4000000000008045400000000000",
       "004d40000000000080514000000000000057401b17db69"});
  auto compacted = QuantileSketch::Deserialize(compacted_v1);
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  auto fresh8 = QuantileSketch::Create(8);
  ASSERT_TRUE(fresh8.ok());
  for (int i = 0; i < 100; ++i) fresh8->Add(static_cast<double>(i * 37 % 100));
  EXPECT_EQ(Bytes(*compacted), Bytes(*fresh8));
  EXPECT_EQ(compacted->num_retained(), 27u);
  EXPECT_EQ(*compacted->Quantile(0.5), 50);
  EXPECT_EQ(*compacted->Quantile(0.99), 98);
  EXPECT_EQ(compacted->Rank(50), 0.51000000000000001);
  ExpectCorruptionDetected(small_v1, DecodeQuantile);
  ExpectCorruptionDetected(compacted_v1, DecodeQuantile);
}

TEST(QuantileSketchTest, TwoValuesNeedNoHeap) {
  QuantileSketch sketch;
  sketch.Add(5);
  sketch.Add(-1);
  EXPECT_EQ(sketch.MemoryBytes(), sizeof(QuantileSketch));
  EXPECT_LE(sizeof(QuantileSketch), 128u);
  EXPECT_EQ(*sketch.Quantile(0.5), -1);
  EXPECT_EQ(*sketch.Quantile(0.51), 5);
  // Header, form, two integers as one-byte varints, checksum.
  EXPECT_EQ(Bytes(sketch).size(), 8 + 1 + 2 + 4u);
}

TEST(QuantileSketchTest, DecimalValuesSerializeCompactlyAndExactly) {
  // Amounts in cents, negative ones and an integer-valued level included,
  // through compactions; then values no decimal scale represents exactly.
  std::vector<double> amounts;
  for (double v : LogNormal(300000, 21)) {
    amounts.push_back(std::round((v - 5) * 100) / 100);
  }
  for (int n : {1, 7, 200, 5000, 300000}) {
    QuantileSketch sketch;
    for (int i = 0; i < n; ++i) sketch.Add(amounts[i]);
    const std::string bytes = Bytes(sketch);
    // At most 4 bytes a value (cents below 2^20) plus header and extremes.
    EXPECT_LE(bytes.size(), 64 + 4 * sketch.num_retained()) << n;
    auto restored = QuantileSketch::Deserialize(bytes);
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(Bytes(*restored), bytes);
    EXPECT_EQ(*restored->min(), *sketch.min());
    EXPECT_EQ(*restored->max(), *sketch.max());
    for (double q : {0.01, 0.5, 0.99}) {
      EXPECT_EQ(*restored->Quantile(q), *sketch.Quantile(q));
    }
    // A restored sketch goes on exactly like the original.
    sketch.Add(1.5);
    restored->Add(1.5);
    EXPECT_EQ(Bytes(*restored), Bytes(sketch));
    if (n == 5000) ExpectCorruptionDetected(bytes, DecodeQuantile);
  }
  QuantileSketch raw;
  for (double v : {0.1 + 0.2, 1e300, -3.0, 1.0 / 3}) raw.Add(v);
  const std::string bytes = Bytes(raw);
  EXPECT_EQ(bytes.size(), 8 + 1 + 4 * 8 + 4u);
  auto restored = QuantileSketch::Deserialize(bytes);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored->Quantile(0.5), 0.1 + 0.2);
  EXPECT_EQ(Bytes(*restored), bytes);
}

TEST(QuantileSketchTest, ExactBelowKAndWithinBoundAbove) {
  // Up to k values a sketch keeps all of them and every quantile is exact;
  // past k it compacts and stays within RankErrorBound(k).
  for (int k : {8, 50, 200}) {
    auto sketch = QuantileSketch::Create(k);
    ASSERT_TRUE(sketch.ok());
    const std::vector<double> data = LogNormal(20 * k, 19 + k);
    std::vector<double> seen;
    for (double v : data) {
      sketch->Add(v);
      seen.push_back(v);
      if (seen.size() <= static_cast<size_t>(k)) {
        ASSERT_EQ(sketch->num_retained(), seen.size());
        std::vector<double> sorted = seen;
        std::sort(sorted.begin(), sorted.end());
        for (size_t i = 0; i < sorted.size(); ++i) {
          const double q = static_cast<double>(i + 1) / sorted.size();
          ASSERT_EQ(*sketch->Quantile(q), sorted[i]) << k << " " << i;
        }
      }
    }
    EXPECT_LT(sketch->num_retained(), data.size());
    EXPECT_LE(MaxRankError(*sketch, data), QuantileSketch::RankErrorBound(k))
        << k;
  }
}

// ---------------------------------------------------------------------------
// QuantileHistogram

std::string Bytes(const QuantileHistogram& sketch) {
  std::string out;
  sketch.Serialize(&out);
  return out;
}

absl::StatusCode DecodeHistogram(std::string_view bytes) {
  return QuantileHistogram::Deserialize(bytes).status().code();
}

// The exact q-quantile as QuantileHistogram defines it: x_i for the smallest
// i with i / n >= q.
double ExactQuantile(const std::vector<double>& sorted, double q) {
  const double n = static_cast<double>(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (static_cast<double>(i + 1) / n >= q) return sorted[i];
  }
  return sorted.back();
}

// Largest relative error of the sketch's quantiles 0, 0.001..0.999, 1 over
// `data`.
double MaxRelativeError(const QuantileHistogram& sketch,
                        std::vector<double> data) {
  std::sort(data.begin(), data.end());
  double worst = 0;
  for (int i = 0; i <= 1000; ++i) {
    const double q = i / 1000.0;
    const absl::StatusOr<double> v = sketch.Quantile(q);
    EXPECT_TRUE(v.ok());
    if (!v.ok()) return 1;
    const double exact = ExactQuantile(data, q);
    const double error =
        exact == 0 ? std::abs(*v) : std::abs(*v - exact) / std::abs(exact);
    worst = std::max(worst, error);
  }
  return worst;
}

TEST(QuantileHistogramTest, CreateChecksTheRelativeError) {
  for (double bad : {0.0, 5e-5, 0.3, -0.01, std::nan("")}) {
    EXPECT_EQ(QuantileHistogram::Create(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  auto sketch = QuantileHistogram::Create(0.01);
  ASSERT_TRUE(sketch.ok());
  EXPECT_DOUBLE_EQ(sketch->relative_error(), 0.01);  // 50 parts a binade
  EXPECT_LE(QuantileHistogram::Create(0.003)->relative_error(), 0.003);
}

TEST(QuantileHistogramTest, EmptySketch) {
  QuantileHistogram sketch;
  EXPECT_EQ(sketch.count(), 0u);
  EXPECT_FALSE(sketch.min().has_value());
  EXPECT_EQ(sketch.Quantile(0.5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sketch.Quantile(1.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto back = QuantileHistogram::Deserialize(Bytes(sketch));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->count(), 0u);
}

TEST(QuantileHistogramTest, ExactUpToThirtyTwoValues) {
  const std::vector<double> data = LogNormal(200, 41);
  QuantileHistogram sketch;
  std::vector<double> seen;
  for (double v : data) {
    sketch.Add(v);
    seen.push_back(v);
    if (seen.size() > QuantileHistogram::kExactValues) break;
    ASSERT_TRUE(sketch.is_exact());
    std::vector<double> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i <= 100; ++i) {
      ASSERT_EQ(*sketch.Quantile(i / 100.0), ExactQuantile(sorted, i / 100.0))
          << seen.size() << " values, q " << i;
    }
  }
  EXPECT_FALSE(sketch.is_exact());
  EXPECT_GT(sketch.num_buckets(), 0u);
}

TEST(QuantileHistogramTest, NanAndInfinitiesAreIgnoredNegativeZeroIsZero) {
  QuantileHistogram a, b;
  a.Add(std::nan(""));
  a.Add(std::numeric_limits<double>::infinity());
  a.Add(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(a.count(), 0u);
  a.Add(-0.0);
  b.Add(0.0);
  EXPECT_EQ(Bytes(a), Bytes(b));
  EXPECT_FALSE(std::signbit(*a.Quantile(0.5)));
}

// The documented bound, on distributions with heavy tails, negative values,
// zeros, values spanning many binades and a constant.
TEST(QuantileHistogramTest, EveryQuantileIsWithinTheRelativeError) {
  std::vector<std::vector<double>> inputs = {Uniform(100000, 1),
                                             LogNormal(100000, 2)};
  std::vector<double> mixed = LogNormal(50000, 3);
  for (size_t i = 0; i < mixed.size(); i += 3) mixed[i] = -mixed[i];
  for (size_t i = 1; i < mixed.size(); i += 7) mixed[i] = 0;
  inputs.push_back(mixed);
  std::vector<double> wide;
  std::mt19937_64 rng(4);
  for (int i = 0; i < 50000; ++i) {
    wide.push_back(std::ldexp(1.0 + (rng() >> 11) * 0x1p-53,
                              static_cast<int>(rng() % 120) - 60));
  }
  inputs.push_back(wide);
  inputs.push_back(std::vector<double>(1000, 129.95));
  for (double error : {0.01, 0.001, 0.05}) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      auto sketch = QuantileHistogram::Create(error);
      ASSERT_TRUE(sketch.ok());
      for (double v : inputs[i]) sketch->Add(v);
      EXPECT_EQ(sketch->count(), inputs[i].size());
      EXPECT_LE(MaxRelativeError(*sketch, inputs[i]), error)
          << "input " << i << " error " << error;
      EXPECT_EQ(*sketch->min(),
                *std::min_element(inputs[i].begin(), inputs[i].end()));
      EXPECT_EQ(*sketch->max(),
                *std::max_element(inputs[i].begin(), inputs[i].end()));
    }
  }
}

// The state depends on the multiset alone: any order, any split into parts
// merged in any order gives the same bytes.
TEST(QuantileHistogramTest, OrderAndMergePointsDoNotChangeTheBytes) {
  std::vector<double> data = LogNormal(5000, 5);
  for (size_t i = 0; i < data.size(); i += 5) data[i] = -data[i];
  QuantileHistogram whole;
  for (double v : data) whole.Add(v);
  const std::string expected = Bytes(whole);
  std::mt19937_64 rng(6);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<double> shuffled = data;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    // Cut into parts of 1 to 80 values (many below kExactValues), merge
    // them in a random order and shape.
    std::vector<QuantileHistogram> parts;
    for (size_t at = 0; at < shuffled.size();) {
      const size_t len = std::min<size_t>(1 + rng() % 80, shuffled.size() - at);
      QuantileHistogram part;
      for (size_t i = at; i < at + len; ++i) part.Add(shuffled[i]);
      parts.push_back(std::move(part));
      at += len;
    }
    while (parts.size() > 1) {
      const size_t a = rng() % parts.size();
      size_t b = rng() % (parts.size() - 1);
      if (b >= a) ++b;
      ASSERT_TRUE(parts[a].Merge(parts[b]).ok());
      parts.erase(parts.begin() + b);
    }
    ASSERT_EQ(Bytes(parts[0]), expected) << trial;
  }
  // Small sketches merge into exact ones.
  QuantileHistogram a, b, all;
  for (int i = 0; i < 10; ++i) {
    a.Add(i * 1.5);
    b.Add(-i * 2.25);
    all.Add(i * 1.5);
    all.Add(-i * 2.25);
  }
  ASSERT_TRUE(b.Merge(a).ok());
  EXPECT_TRUE(b.is_exact());
  EXPECT_EQ(Bytes(b), Bytes(all));
}

// As HyperLogLog's: values added to buckets are merged in later, and every
// read in between sees all of them.
TEST(QuantileHistogramTest, ReadsBetweenAddsSeeEveryValueAdded) {
  std::vector<double> data = LogNormal(3000, 12);
  for (size_t i = 0; i < data.size(); i += 7) data[i] = -data[i];
  for (size_t i = 3; i < data.size(); i += 5) data[i] = data[i - 3];
  QuantileHistogram sketch;
  QuantileHistogram reference;
  for (size_t i = 0; i < data.size(); ++i) {
    sketch.Add(data[i]);
    QuantileHistogram one;
    one.Add(data[i]);
    ASSERT_TRUE(reference.Merge(one).ok());
    if (i % 89 == 0 || i < 80) {
      ASSERT_EQ(Bytes(sketch), Bytes(reference)) << i;
      ASSERT_EQ(sketch.num_buckets(), reference.num_buckets()) << i;
      for (double q : {0.01, 0.5, 0.99}) {
        ASSERT_EQ(*sketch.Quantile(q), *reference.Quantile(q)) << i;
      }
      QuantileHistogram merged;
      ASSERT_TRUE(merged.Merge(sketch).ok());
      ASSERT_EQ(Bytes(merged), Bytes(reference)) << i;
    }
  }
  EXPECT_EQ(Bytes(sketch), Bytes(reference));
}

TEST(QuantileHistogramTest, MergeRejectsAnotherRelativeError) {
  QuantileHistogram a;
  auto b = QuantileHistogram::Create(0.02);
  ASSERT_TRUE(b.ok());
  b->Add(1);
  EXPECT_EQ(a.Merge(*b).code(), absl::StatusCode::kInvalidArgument);
}

// Magnitudes over more than kMaxBinades binades fold the smallest into one;
// the fold keeps the state order-free and the large quantiles within bound.
TEST(QuantileHistogramTest, TooManyBucketsFoldTheSmallestMagnitudes) {
  std::vector<double> data;
  for (int e = -300; e <= 300; ++e) {  // 601 binades a sign
    data.push_back(std::ldexp(1.3, e));
    data.push_back(-std::ldexp(1.7, e));
  }
  QuantileHistogram whole;
  for (double v : data) whole.Add(v);
  EXPECT_LE(whole.num_buckets(), 2 * 128 * 50u);
  std::mt19937_64 rng(8);
  std::shuffle(data.begin(), data.end(), rng);
  QuantileHistogram first, second;
  for (size_t i = 0; i < data.size(); ++i) {
    (i % 2 == 0 ? first : second).Add(data[i]);
  }
  ASSERT_TRUE(first.Merge(second).ok());
  EXPECT_EQ(Bytes(first), Bytes(whole));
  std::sort(data.begin(), data.end());
  for (double q : {0.001, 0.01, 0.99, 0.999}) {
    const double exact = ExactQuantile(data, q);
    EXPECT_LE(std::abs(*whole.Quantile(q) - exact) / std::abs(exact), 0.01)
        << q;
  }
  EXPECT_EQ(*whole.Quantile(1), data.back());
  EXPECT_EQ(*whole.Quantile(0), data.front());
}

TEST(QuantileHistogramTest, SerializeRoundTripsByteEqual) {
  std::vector<QuantileHistogram> sketches(4);
  sketches[1].Add(12.34);
  for (int i = 0; i < 20; ++i) sketches[2].Add(i * 0.1 + 1e-9);  // raw form
  std::vector<double> mixed = LogNormal(3000, 9);
  mixed.push_back(-1e-310);  // subnormal: counted as 0
  for (double v : mixed) sketches[3].Add(v);
  for (const QuantileHistogram& sketch : sketches) {
    const std::string bytes = Bytes(sketch);
    auto back = QuantileHistogram::Deserialize(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(Bytes(*back), bytes);
    EXPECT_EQ(back->count(), sketch.count());
    if (sketch.count() > 0) {
      EXPECT_EQ(*back->Quantile(0.99), *sketch.Quantile(0.99));
    }
  }
}

TEST(QuantileHistogramTest, AmountsSerializeCompactly) {
  QuantileHistogram few;
  for (double v : {12.5, 3.0, 99.99}) few.Add(v);
  // Tag, version, width, count, form, three varints of cents, CRC.
  EXPECT_LE(Bytes(few).size(), 17u);
  QuantileHistogram many;
  for (double v : LogNormal(100000, 10)) many.Add(std::round(v * 100) / 100);
  EXPECT_LE(Bytes(many).size(), 4 * many.num_buckets() + 40);
  EXPECT_LE(many.num_buckets(), 27u * 50u);
}

TEST(QuantileHistogramTest, GarbageAndTruncationAreDataLoss) {
  QuantileHistogram small;
  for (double v : Uniform(20, 11)) small.Add(v);
  ExpectCorruptionDetected(Bytes(small), DecodeHistogram);
  QuantileHistogram large;
  for (double v : LogNormal(3000, 12)) large.Add(v);
  ExpectCorruptionDetected(Bytes(large), DecodeHistogram);
}

TEST(QuantileHistogramTest, UnknownVersionIsFailedPrecondition) {
  QuantileHistogram sketch;
  sketch.Add(1);
  std::string bytes = Bytes(sketch);
  bytes[1] = 2;
  EXPECT_EQ(DecodeHistogram(bytes), absl::StatusCode::kFailedPrecondition);
}

TEST(QuantileHistogramTest, TwoValuesNeedNoHeap) {
  QuantileHistogram sketch;
  sketch.Add(1);
  sketch.Add(2);
  EXPECT_EQ(sketch.MemoryBytes(), sizeof(QuantileHistogram));
}

}  // namespace
}  // namespace weir
