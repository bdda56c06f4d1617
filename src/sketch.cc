#include "weir/sketch.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "weir/internal/coding.h"
#include "weir/internal/crc32c.h"
#include "weir/internal/pow10.h"

namespace weir {
namespace {

// ---------------------------------------------------------------------------
// XXH64

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kP5 = 0x27D4EB2F165667C5ULL;

inline uint64_t XxRound(uint64_t acc, uint64_t input) {
  acc += input * kP2;
  acc = std::rotl(acc, 31);
  return acc * kP1;
}
inline uint64_t XxMergeRound(uint64_t acc, uint64_t v) {
  acc ^= XxRound(0, v);
  return acc * kP1 + kP4;
}

// ---------------------------------------------------------------------------
// Encoding helpers

constexpr char kHllTag = 'H';
constexpr char kQuantileTag = 'Q';

void PutVarint64(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint64(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && byte > 1) return false;
    result |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

void PutDouble(std::string* out, double d) {
  internal::PutFixed64(out, std::bit_cast<uint64_t>(d));
}
bool GetDouble(std::string_view* in, double* d) {
  uint64_t bits;
  if (!internal::GetFixed64(in, &bits)) return false;
  *d = std::bit_cast<double>(bits);
  return true;
}

void AppendCrc(std::string* out, size_t start) {
  const std::string_view body(out->data() + start, out->size() - start);
  internal::PutFixed32(out, internal::Crc32c(body));
}

// An encoding's body (the bytes between the version and the CRC) and its
// version.
struct Encoding {
  std::string_view body;
  uint8_t version;
};

// Checks the tag, version (1 to `version`) and CRC of an encoding.
absl::StatusOr<Encoding> OpenEncoding(std::string_view bytes, char tag,
                                      uint8_t version, const char* what) {
  if (bytes.size() < 2) {
    return absl::DataLossError(absl::StrCat(what, " encoding is truncated"));
  }
  if (bytes[0] != tag) {
    return absl::DataLossError(
        absl::StrCat("not a ", what, " encoding (bad type tag)"));
  }
  const auto stored_version = static_cast<uint8_t>(bytes[1]);
  if (stored_version < 1 || stored_version > version) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " encoding has version ", stored_version,
                     ", this build reads versions 1 to ", version));
  }
  if (bytes.size() < 6) {
    return absl::DataLossError(absl::StrCat(what, " encoding is truncated"));
  }
  std::string_view crc_bytes = bytes.substr(bytes.size() - 4);
  uint32_t stored_crc = 0;
  internal::GetFixed32(&crc_bytes, &stored_crc);
  if (internal::Crc32c(bytes.substr(0, bytes.size() - 4)) != stored_crc) {
    return absl::DataLossError(
        absl::StrCat(what, " encoding fails its checksum"));
  }
  return Encoding{bytes.substr(2, bytes.size() - 6), stored_version};
}

// ---------------------------------------------------------------------------
// HyperLogLog helpers

constexpr int kSparseP = HyperLogLog::kSparsePrecision;
constexpr int kSparseRankBits = 6;
constexpr uint32_t kSparseRankMask = (1u << kSparseRankBits) - 1;
constexpr size_t kMaxSparseEntries = 4096;

// A sorted list (HyperLogLog's sparse entries, a histogram's buckets)
// shorter than kAppendFrom takes each new element in its place; a longer
// one appends it, and what was appended is sorted in later, more than
// kMinAppended and more than a quarter of the sorted part at once.
constexpr size_t kAppendFrom = 16;
constexpr size_t kMinAppended = 8;

// Whether a list of `size` elements, the first `sorted` of them sorted,
// takes a new element in its place (else it appends it).
bool InsertsInPlace(size_t size, size_t sorted) {
  return sorted == size && size < kAppendFrom;
}
// Whether the appended elements of such a list are due to be sorted in.
bool SortInDue(size_t size, size_t sorted) {
  return size - sorted > std::max(kMinAppended, sorted / 4);
}

// Sorts v[sorted, end) in with the sorted v[0, sorted), then folds each
// element `same` as the one before it into that one (`fold(into, from)`),
// leaving one element per run.
template <typename V, typename Less, typename Same, typename Fold>
void SortInAppended(V& v, size_t sorted, Less less, Same same, Fold fold) {
  const auto appended = v.begin() + sorted;
  std::sort(appended, v.end(), less);
  std::inplace_merge(v.begin(), appended, v.end(), less);
  auto out = v.begin();
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (out != v.begin() && same(*(out - 1), *it)) {
      fold(*(out - 1), *it);
    } else {
      *out++ = *it;
    }
  }
  v.erase(out, v.end());
}

inline uint32_t SparseIndex(uint32_t entry) { return entry >> kSparseRankBits; }
inline uint8_t SparseRank(uint32_t entry) { return entry & kSparseRankMask; }

// The entry of `hash` at kSparsePrecision: the top 25 bits are the index, the
// rank is 1 + the number of leading zeros of the remaining 39 bits (40 if
// they are all zero).
inline uint32_t SparseEntry(uint64_t hash) {
  const auto index = static_cast<uint32_t>(hash >> (64 - kSparseP));
  const uint64_t rest = hash << kSparseP;
  const int rank = rest == 0 ? 64 - kSparseP + 1 : std::countl_zero(rest) + 1;
  return (index << kSparseRankBits) | static_cast<uint32_t>(rank);
}

// The register index and rank at precision p of a hash whose sparse entry is
// `entry`. Exact: equal to computing them from the hash itself.
inline std::pair<uint32_t, uint8_t> DenseOfSparse(uint32_t entry, int p) {
  const int extra = kSparseP - p;  // index bits below the dense index
  const uint32_t index = SparseIndex(entry);
  const uint32_t low = index & ((1u << extra) - 1);
  const int rank =
      low != 0 ? extra - std::bit_width(low) + 1 : extra + SparseRank(entry);
  return {index >> extra, static_cast<uint8_t>(rank)};
}

// sigma and tau of Ertl (2017), section 4.
double ErtlSigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0;
  double z = x;
  while (true) {
    x *= x;
    const double z_old = z;
    z += x * y;
    y += y;
    if (z == z_old) return z;
  }
}

double ErtlTau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0;
  double z = 1.0 - x;
  while (true) {
    x = std::sqrt(x);
    const double z_old = z;
    y *= 0.5;
    z -= (1.0 - x) * (1.0 - x) * y;
    if (z == z_old) return z / 3.0;
  }
}

// A register histogram: element r counts the registers holding r, for r in
// [0, 64 - p + 1]; 64 elements cover every precision.
using RegisterCounts = std::array<double, 64>;

// Ertl's improved estimator from the register histogram: counts[r] is the
// number of the m = 2^p registers holding r, for r in [0, q + 1] where
// q = 64 - p.
double ErtlEstimate(const RegisterCounts& counts, int p) {
  const double m = std::ldexp(1.0, p);
  const int q = 64 - p;
  double z = m * ErtlTau(1.0 - counts[q + 1] / m);
  for (int r = q; r >= 1; --r) z = 0.5 * (z + counts[r]);
  z += m * ErtlSigma(counts[0] / m);
  if (std::isinf(z)) return 0.0;
  const double alpha_inf = 0.5 / std::log(2.0);
  return alpha_inf * m * m / z;
}

// ---------------------------------------------------------------------------
// QuantileSketch helpers

constexpr size_t kMinLevelWidth = 8;
constexpr uint64_t kCompactionSeed = 0x6B6C6C2D77656972ULL;  // "kll-weir"
constexpr size_t kMaxLevels = 64;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// a and b sorted; returns their sorted union (a multiset merge).
template <typename Level>
Level MergeSorted(const Level& a, const Level& b) {
  Level out;
  out.reserve(a.size() + b.size());
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

constexpr int kMaxValueScale = 6;
constexpr uint8_t kRawValues = 0xFF;
// Integers of magnitude below 2^53 are exact doubles.
constexpr double kMaxExactInteger = 9007199254740992.0;

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// Whether `v` is exactly c / 10^scale for an integer c with |c| < 2^53,
// the division giving back v's bits.
bool HasScale(double v, int scale) {
  const double divisor = static_cast<double>(internal::kPow10[scale]);
  const double c = std::nearbyint(v * divisor);
  if (!(std::abs(c) < kMaxExactInteger)) return false;
  return std::bit_cast<uint64_t>(c / divisor) == std::bit_cast<uint64_t>(v);
}

// The smallest scale in [0, kMaxValueScale] every value of `levels` has
// (amounts with two decimals: 2), or nullopt.
template <typename Levels>
std::optional<int> ValueScale(const Levels& levels) {
  for (int scale = 0; scale <= kMaxValueScale; ++scale) {
    bool all = true;
    for (const auto& level : levels) {
      for (double v : level) {
        if (!HasScale(v, scale)) {
          all = false;
          break;
        }
      }
      if (!all) break;
    }
    if (all) return scale;
  }
  return std::nullopt;
}

// Writes the value form of `levels` (ValueScale's scale, or kRawValues) and
// returns it.
template <typename Levels>
uint8_t PutValueForm(std::string* out, const Levels& levels) {
  const std::optional<int> scale = ValueScale(levels);
  const auto form = static_cast<uint8_t>(scale.value_or(kRawValues));
  out->push_back(static_cast<char>(form));
  return form;
}

// Reads what PutValueForm wrote; nullptr, or why the bytes are corrupt.
const char* GetValueForm(std::string_view* in, uint8_t* form) {
  if (in->empty()) return "truncated value form";
  *form = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  if (*form != kRawValues && *form > kMaxValueScale) {
    return "unknown value form";
  }
  return nullptr;
}

// Writes `v` in value form `form`: a double, or the zigzag varint of
// c = v * 10^form, as the difference to `*previous` (the c before it) when
// `difference` (sorted values).
void PutValue(std::string* out, double v, uint8_t form, bool difference,
              int64_t* previous) {
  if (form == kRawValues) {
    PutDouble(out, v);
    return;
  }
  const auto c = static_cast<int64_t>(
      std::nearbyint(v * static_cast<double>(internal::kPow10[form])));
  PutVarint64(out, ZigZag(difference ? c - *previous : c));
  *previous = c;
}

// Reads what PutValue wrote; nullptr, or why the bytes are corrupt.
const char* GetValue(std::string_view* in, uint8_t form, bool difference,
                     int64_t* previous, double* v) {
  if (form == kRawValues)
    return GetDouble(in, v) ? nullptr : "truncated values";
  uint64_t zigzag;
  if (!GetVarint64(in, &zigzag)) return "truncated values";
  const int64_t delta = UnZigZag(zigzag);
  if (delta <= -(int64_t{1} << 54) || delta >= (int64_t{1} << 54)) {
    return "value out of range";
  }
  // |previous| < 2^53 and |delta| < 2^54: the sum cannot overflow.
  const int64_t c = difference ? *previous + delta : delta;
  if (std::abs(static_cast<double>(c)) >= kMaxExactInteger) {
    return "value out of range";
  }
  *previous = c;
  *v = static_cast<double>(c) / static_cast<double>(internal::kPow10[form]);
  return nullptr;
}

// What every Quantile checks first.
absl::Status CheckQuantileQuery(double q, uint64_t n) {
  if (!(q >= 0.0 && q <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantile ", q, " is outside [0, 1]"));
  }
  if (n == 0) {
    return absl::FailedPreconditionError("quantile of an empty sketch");
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t XxHash64(std::string_view data, uint64_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const auto* const end = p + data.size();
  uint64_t h;
  if (data.size() >= 32) {
    uint64_t v1 = seed + kP1 + kP2;
    uint64_t v2 = seed + kP2;
    uint64_t v3 = seed;
    uint64_t v4 = seed - kP1;
    const auto* const limit = end - 32;
    do {
      v1 = XxRound(v1, internal::DecodeFixed64(p));
      v2 = XxRound(v2, internal::DecodeFixed64(p + 8));
      v3 = XxRound(v3, internal::DecodeFixed64(p + 16));
      v4 = XxRound(v4, internal::DecodeFixed64(p + 24));
      p += 32;
    } while (p <= limit);
    h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) +
        std::rotl(v4, 18);
    h = XxMergeRound(h, v1);
    h = XxMergeRound(h, v2);
    h = XxMergeRound(h, v3);
    h = XxMergeRound(h, v4);
  } else {
    h = seed + kP5;
  }
  h += static_cast<uint64_t>(data.size());
  while (end - p >= 8) {
    h ^= XxRound(0, internal::DecodeFixed64(p));
    h = std::rotl(h, 27) * kP1 + kP4;
    p += 8;
  }
  if (end - p >= 4) {
    h ^= static_cast<uint64_t>(internal::DecodeFixed32(p)) * kP1;
    h = std::rotl(h, 23) * kP2 + kP3;
    p += 4;
  }
  while (p < end) {
    h ^= static_cast<uint64_t>(*p) * kP5;
    h = std::rotl(h, 11) * kP1;
    ++p;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

// ---------------------------------------------------------------------------
// HyperLogLog

HyperLogLog::HyperLogLog() : HyperLogLog(kDefaultPrecision) {}

absl::StatusOr<HyperLogLog> HyperLogLog::Create(int precision) {
  if (precision < kMinPrecision || precision > kMaxPrecision) {
    return absl::InvalidArgumentError(
        absl::StrCat("HyperLogLog precision ", precision, " is outside [",
                     kMinPrecision, ", ", kMaxPrecision, "]"));
  }
// GCC 12 reports the inline buffer of the new, empty sparse_ as "maybe
// uninitialized" when InlinedVector's move copies it whole: it holds no
// elements, so nothing uninitialized is read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
  return HyperLogLog(precision);
#pragma GCC diagnostic pop
}

double HyperLogLog::StandardError(int precision) {
  return 1.04 / std::sqrt(std::ldexp(1.0, precision));
}

namespace {
uint64_t HashFixed64(uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (8 * i));
  return XxHash64(std::string_view(bytes, sizeof(bytes)));
}
}  // namespace

void HyperLogLog::Add(int64_t value) {
  AddHash(HashFixed64(static_cast<uint64_t>(value)));
}

void HyperLogLog::Add(double value) {
  uint64_t bits;
  if (std::isnan(value)) {
    bits = 0x7FF8000000000000ULL;
  } else {
    bits = std::bit_cast<uint64_t>(value == 0.0 ? 0.0 : value);
  }
  AddHash(HashFixed64(bits));
}

size_t HyperLogLog::SparseLimit() const {
  return std::min((size_t{1} << precision_) / 4, kMaxSparseEntries);
}

void HyperLogLog::AddHash(uint64_t hash) {
  if (!dense_.empty()) {
    const auto index = static_cast<uint32_t>(hash >> (64 - precision_));
    const uint64_t rest = hash << precision_;
    const int rank =
        rest == 0 ? 64 - precision_ + 1 : std::countl_zero(rest) + 1;
    uint8_t& reg = dense_[index];
    if (rank > reg) reg = static_cast<uint8_t>(rank);
    return;
  }
  const uint32_t entry = SparseEntry(hash);
  if (InsertsInPlace(sparse_.size(), sorted_)) {
    // Entries sort by index first (the high bits), so the first entry >=
    // the index with rank 0 is the one with this index, if any.
    auto it = std::lower_bound(sparse_.begin(), sparse_.end(),
                               SparseIndex(entry) << kSparseRankBits);
    if (it != sparse_.end() && SparseIndex(*it) == SparseIndex(entry)) {
      if (entry > *it) *it = entry;
      return;
    }
    sparse_.insert(it, entry);
    sorted_ = static_cast<uint32_t>(sparse_.size());
    if (sparse_.size() > SparseLimit()) ToDense();
    return;
  }
  // A binary search of a longer list would wait for memory at most of its
  // steps when the sketch is not in the CPU's cache (most keys' sketches
  // are not): the entry is appended, which touches one line, and sorted in
  // with others later. A duplicate index is resolved then.
  sparse_.push_back(entry);
  if (SortInDue(sparse_.size(), sorted_) || sparse_.size() > SparseLimit()) {
    Normalize();
  }
}

void HyperLogLog::Normalize() {
  if (sorted_ == sparse_.size()) return;
  // Sorted, the entries of one index are adjacent, the largest rank last.
  SortInAppended(
      sparse_, sorted_, std::less<uint32_t>(),
      [](uint32_t a, uint32_t b) { return SparseIndex(a) == SparseIndex(b); },
      [](uint32_t& into, uint32_t from) { into = from; });
  sorted_ = static_cast<uint32_t>(sparse_.size());
  if (sparse_.size() > SparseLimit()) ToDense();
}

const HyperLogLog& HyperLogLog::Normalized(
    std::optional<HyperLogLog>* copy) const {
  if (sorted_ == sparse_.size()) return *this;
  copy->emplace(*this);
  (*copy)->Normalize();
  return **copy;
}

void HyperLogLog::FoldSparseEntry(uint32_t entry) {
  const auto [index, rank] = DenseOfSparse(entry, precision_);
  if (rank > dense_[index]) dense_[index] = rank;
}

void HyperLogLog::ToDense() {
  dense_.assign(size_t{1} << precision_, 0);
  for (uint32_t entry : sparse_) FoldSparseEntry(entry);
  sparse_.clear();
  sparse_.shrink_to_fit();
  sorted_ = 0;
}

absl::Status HyperLogLog::Merge(const HyperLogLog& other) {
  if (other.precision_ != precision_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot merge a HyperLogLog of precision ",
                     other.precision_, " into one of precision ", precision_));
  }
  if (other.is_sparse()) {
    Normalize();
    // Entries fold into registers in any order.
    if (!is_sparse()) {
      for (uint32_t entry : other.sparse_) FoldSparseEntry(entry);
      return absl::OkStatus();
    }
    std::optional<HyperLogLog> copy;
    const auto& theirs = other.Normalized(&copy).sparse_;
    // Union of two index-sorted lists, keeping the larger rank per index.
    decltype(sparse_) merged;
    merged.reserve(sparse_.size() + theirs.size());
    auto a = sparse_.begin();
    auto b = theirs.begin();
    while (a != sparse_.end() || b != theirs.end()) {
      if (b == theirs.end() ||
          (a != sparse_.end() && SparseIndex(*a) < SparseIndex(*b))) {
        merged.push_back(*a++);
      } else if (a == sparse_.end() || SparseIndex(*b) < SparseIndex(*a)) {
        merged.push_back(*b++);
      } else {
        merged.push_back(std::max(*a++, *b++));
      }
    }
    sparse_ = std::move(merged);
    sorted_ = static_cast<uint32_t>(sparse_.size());
    if (sparse_.size() > SparseLimit()) {
      ToDense();
    } else {
      sparse_.shrink_to_fit();
    }
    return absl::OkStatus();
  }
  if (is_sparse()) ToDense();
  for (size_t i = 0; i < dense_.size(); ++i) {
    dense_[i] = std::max(dense_[i], other.dense_[i]);
  }
  return absl::OkStatus();
}

namespace {

// The estimate of a sparse sketch from its normalized entries (one per
// index): it depends on their ranks only.
double SparseEstimate(absl::Span<const uint32_t> entries) {
  RegisterCounts counts{};
  counts[0] = std::ldexp(1.0, kSparseP) - static_cast<double>(entries.size());
  for (uint32_t entry : entries) counts[SparseRank(entry)] += 1.0;
  return ErtlEstimate(counts, kSparseP);
}

}  // namespace

double HyperLogLog::Estimate() const {
  if (is_sparse()) {
    if (sparse_.empty()) return 0.0;
    std::optional<HyperLogLog> copy;
    return SparseEstimate(Normalized(&copy).sparse_);
  }
  RegisterCounts counts{};
  for (uint8_t reg : dense_) counts[reg] += 1.0;
  return ErtlEstimate(counts, precision_);
}

double HyperLogLog::EstimateOfOneHash(uint64_t hash) {
  // One hash is one sparse entry at every precision (SparseLimit() is at
  // least 4), and a sparse sketch's estimate depends on its entries' ranks
  // only: Estimate()'s own SparseEstimate, once per rank (an entry of index
  // 0 is its rank).
  constexpr int kRanks = 64 - kSparseP + 1;
  static const std::array<double, kRanks + 1> kByRank = [] {
    std::array<double, kRanks + 1> by_rank{};
    for (uint32_t rank = 1; rank <= kRanks; ++rank) {
      by_rank[rank] = SparseEstimate({&rank, 1});
    }
    return by_rank;
  }();
  return kByRank[SparseRank(SparseEntry(hash))];
}

// Encoding, version 2:
//   'H' | version | precision (1 byte) | form (0 sparse, 1 dense) |
//   sparse: entry count (varint), then the entries as varint deltas from
//           the previous entry (the first from 0);
//   dense:  the 2^precision registers, 6 bits each (a rank is at most 61),
//           register i in bits [6i, 6i + 6) of a little-endian bit string:
//           3 bytes per 4 registers |
//   CRC-32C (fixed32) of all the bytes before it.
// Version 1 differs only in the dense form: one byte per register.
void HyperLogLog::Serialize(std::string* out) const {
  const size_t start = out->size();
  out->push_back(kHllTag);
  out->push_back(static_cast<char>(kEncodingVersion));
  out->push_back(static_cast<char>(precision_));
  if (is_sparse()) {
    std::optional<HyperLogLog> copy;
    const auto& sparse = Normalized(&copy).sparse_;
    out->push_back(0);
    PutVarint64(out, sparse.size());
    uint32_t previous = 0;
    for (uint32_t entry : sparse) {
      PutVarint64(out, entry - previous);
      previous = entry;
    }
  } else {
    out->push_back(1);
    for (size_t i = 0; i < dense_.size(); i += 4) {
      const uint32_t group = dense_[i] | (dense_[i + 1] << 6) |
                             (dense_[i + 2] << 12) | (dense_[i + 3] << 18);
      out->push_back(static_cast<char>(group));
      out->push_back(static_cast<char>(group >> 8));
      out->push_back(static_cast<char>(group >> 16));
    }
  }
  AppendCrc(out, start);
}

absl::StatusOr<HyperLogLog> HyperLogLog::Deserialize(std::string_view bytes) {
  auto encoding = OpenEncoding(bytes, kHllTag, kEncodingVersion, "HyperLogLog");
  if (!encoding.ok()) return encoding.status();
  std::string_view in = encoding->body;
  auto corrupt = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("HyperLogLog encoding: ", why));
  };
  if (in.size() < 2) return corrupt("truncated header");
  const int precision = static_cast<uint8_t>(in[0]);
  const auto form = static_cast<uint8_t>(in[1]);
  in.remove_prefix(2);
  if (precision < kMinPrecision || precision > kMaxPrecision) {
    return corrupt(absl::StrCat("precision ", precision, " out of range"));
  }
  HyperLogLog hll(precision);
  if (form == 0) {
    uint64_t count;
    if (!GetVarint64(&in, &count)) return corrupt("bad entry count");
    if (count > hll.SparseLimit()) return corrupt("too many sparse entries");
    hll.sparse_.reserve(count);
    uint64_t previous = 0;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t delta;
      if (!GetVarint64(&in, &delta)) return corrupt("truncated entries");
      const uint64_t entry = previous + delta;
      if (entry > std::numeric_limits<uint32_t>::max()) {
        return corrupt("entry out of range");
      }
      const auto e = static_cast<uint32_t>(entry);
      if (SparseRank(e) < 1 || SparseRank(e) > 64 - kSparseP + 1) {
        return corrupt("sparse rank out of range");
      }
      if (i > 0 && SparseIndex(e) <= SparseIndex(hll.sparse_.back())) {
        return corrupt("sparse entries out of order");
      }
      hll.sparse_.push_back(e);
      previous = entry;
    }
    hll.sorted_ = static_cast<uint32_t>(count);
  } else if (form == 1) {
    const size_t m = size_t{1} << precision;
    if (encoding->version == 1) {
      if (in.size() < m) return corrupt("truncated registers");
      hll.dense_.assign(in.begin(), in.begin() + m);
      in.remove_prefix(m);
    } else {
      if (in.size() < m / 4 * 3) return corrupt("truncated registers");
      hll.dense_.resize(m);
      for (size_t i = 0; i < m; i += 4) {
        const uint32_t group = static_cast<uint8_t>(in[0]) |
                               (static_cast<uint8_t>(in[1]) << 8) |
                               (static_cast<uint8_t>(in[2]) << 16);
        in.remove_prefix(3);
        for (size_t j = 0; j < 4; ++j) {
          hll.dense_[i + j] = static_cast<uint8_t>((group >> (6 * j)) & 0x3F);
        }
      }
    }
    for (uint8_t reg : hll.dense_) {
      if (reg > 64 - precision + 1) return corrupt("register out of range");
    }
  } else {
    return corrupt(absl::StrCat("unknown form ", form));
  }
  if (!in.empty()) return corrupt("trailing bytes");
  return hll;
}

size_t HyperLogLog::MemoryBytes() const {
  const size_t sparse_heap = sparse_.capacity() > kInlineSparseEntries
                                 ? sparse_.capacity() * sizeof(uint32_t)
                                 : 0;
  return sizeof(*this) + sparse_heap + dense_.capacity();
}

// ---------------------------------------------------------------------------
// QuantileSketch

QuantileSketch::QuantileSketch() : QuantileSketch(kDefaultK) {}

absl::StatusOr<QuantileSketch> QuantileSketch::Create(int k) {
  if (k < kMinK || k > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "QuantileSketch k ", k, " is outside [", kMinK, ", ", kMaxK, "]"));
  }
  return QuantileSketch(k);
}

double QuantileSketch::RankErrorBound(int k) {
  return 2.296 / std::pow(static_cast<double>(k), 0.9723);
}

std::optional<double> QuantileSketch::min() const {
  if (n_ == 0) return std::nullopt;
  return min_;
}

std::optional<double> QuantileSketch::max() const {
  if (n_ == 0) return std::nullopt;
  return max_;
}

size_t QuantileSketch::num_retained() const { return retained_; }

void QuantileSketch::LevelsChanged() {
  capacity_ = TotalCapacity(levels_.size());
  retained_ = 0;
  for (const auto& level : levels_) retained_ += level.size();
}

// max(8, round(k * (2/3)^depth)) for the level `depth` levels below the top,
// in integer arithmetic so that every platform agrees.
size_t QuantileSketch::LevelCapacity(size_t level, size_t num_levels) const {
  const size_t depth = num_levels - level - 1;
  if (depth > 40) return kMinLevelWidth;  // k * (2/3)^40 < 1
  uint64_t pow3 = 1;
  for (size_t i = 0; i < depth; ++i) pow3 *= 3;
  const uint64_t twice = (static_cast<uint64_t>(2 * k_) << depth) / pow3;
  return std::max<size_t>(kMinLevelWidth, (twice + 1) / 2);
}

size_t QuantileSketch::TotalCapacity(size_t num_levels) const {
  size_t total = 0;
  for (size_t h = 0; h < num_levels; ++h) total += LevelCapacity(h, num_levels);
  return total;
}

bool QuantileSketch::NextBit() {
  const uint64_t bits = SplitMix64(kCompactionSeed + compactions_);
  ++compactions_;
  return (bits >> 63) != 0;
}

// Halves level `level` into the level above: sorts it (level 0 only), keeps
// its smallest value if the count is odd, and promotes every other value of
// the rest, starting at a random one of the first two.
void QuantileSketch::CompactLevel(size_t level) {
  if (level + 1 == levels_.size()) {
    levels_.emplace_back();
    capacity_ = TotalCapacity(levels_.size());
  }
  Level& current = levels_[level];
  if (level == 0) std::sort(current.begin(), current.end());
  const size_t odd = current.size() % 2;
  const size_t offset = odd + (NextBit() ? 1 : 0);
  Level promoted;
  promoted.reserve(current.size() / 2);
  for (size_t i = offset; i < current.size(); i += 2) {
    promoted.push_back(current[i]);
  }
  current.resize(odd);
  // Level 0 refills at once; a higher level may stay near empty for long,
  // so it gives its memory back.
  if (level > 0) current.shrink_to_fit();
  retained_ -= promoted.size();
  Level& above = levels_[level + 1];
  if (above.empty()) {
    above = std::move(promoted);
  } else {
    above = MergeSorted(above, promoted);
  }
}

void QuantileSketch::Add(double value) {
  if (std::isnan(value)) return;
  if (value == 0.0) value = 0.0;  // -0.0 -> +0.0
  if (levels_.empty()) {
    levels_.emplace_back();
    LevelsChanged();
  }
  if (retained_ >= capacity_) {
    // Compact the lowest level at or over its capacity; one exists because
    // the levels together are at capacity.
    size_t level = 0;
    while (levels_[level].size() < LevelCapacity(level, levels_.size())) {
      ++level;
    }
    CompactLevel(level);
  }
  levels_[0].push_back(value);
  ++retained_;
  if (n_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  ++n_;
}

// One pass from the bottom level up, compacting every level at or over its
// capacity while the sketch as a whole is over capacity. Compacting the top
// level adds a level, which the pass then visits too.
void QuantileSketch::CompressAfterMerge() {
  size_t level = 0;
  while (level < levels_.size()) {
    if (retained_ < capacity_) return;
    if (levels_[level].size() >= LevelCapacity(level, levels_.size())) {
      CompactLevel(level);
    }
    ++level;
  }
}

absl::Status QuantileSketch::Merge(const QuantileSketch& other) {
  if (other.k_ != k_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot merge a QuantileSketch with k = ", other.k_,
                     " into one with k = ", k_));
  }
  if (other.n_ == 0) return absl::OkStatus();
  if (this == &other) {
    const QuantileSketch copy = other;
    return Merge(copy);
  }
  const uint64_t final_n = n_ + other.n_;
  const double final_min = n_ == 0 ? other.min_ : std::min(min_, other.min_);
  const double final_max = n_ == 0 ? other.max_ : std::max(max_, other.max_);
  for (double v : other.levels_[0]) Add(v);
  for (size_t h = 1; h < other.levels_.size(); ++h) {
    if (other.levels_[h].empty()) continue;
    if (levels_.size() <= h) levels_.resize(h + 1);
    levels_[h] = MergeSorted(levels_[h], other.levels_[h]);
  }
  n_ = final_n;
  min_ = final_min;
  max_ = final_max;
  LevelsChanged();
  CompressAfterMerge();
  return absl::OkStatus();
}

std::vector<std::pair<double, uint64_t>> QuantileSketch::SortedView() const {
  std::vector<std::pair<double, uint64_t>> view;
  view.reserve(num_retained());
  for (size_t h = 0; h < levels_.size(); ++h) {
    for (double v : levels_[h]) view.emplace_back(v, uint64_t{1} << h);
  }
  std::sort(view.begin(), view.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return view;
}

absl::StatusOr<double> QuantileSketch::Quantile(double q) const {
  if (absl::Status s = CheckQuantileQuery(q, n_); !s.ok()) return s;
  if (q == 0.0) return min_;
  if (q == 1.0) return max_;
  const double n = static_cast<double>(n_);
  if (levels_.size() == 1) {
    // Never compacted: every value once, weight 1. Sorting a copy on the
    // stack spares SortedView's allocation for the common small sketch.
    absl::InlinedVector<double, 64> sorted(levels_[0].begin(),
                                           levels_[0].end());
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i) {
      // The same test as below with cumulative = i + 1.
      if (static_cast<double>(i + 1) / n >= q) return sorted[i];
    }
    return max_;
  }
  const auto view = SortedView();
  uint64_t cumulative = 0;
  for (const auto& [value, weight] : view) {
    cumulative += weight;
    // cumulative / n is correctly rounded, so a q written as a decimal
    // fraction matches the rank it names exactly (0.07 at n = 100 is the
    // 7th value, not the 8th).
    if (static_cast<double>(cumulative) / n >= q) return value;
  }
  return max_;
}

double QuantileSketch::Rank(double x) const {
  if (n_ == 0 || std::isnan(x)) return 0.0;
  uint64_t at_or_below = 0;
  for (size_t h = 0; h < levels_.size(); ++h) {
    const auto& level = levels_[h];
    size_t count;
    if (h == 0) {
      count = std::count_if(level.begin(), level.end(),
                            [x](double v) { return v <= x; });
    } else {
      count = std::upper_bound(level.begin(), level.end(), x) - level.begin();
    }
    at_or_below += static_cast<uint64_t>(count) << h;
  }
  return static_cast<double>(at_or_below) / static_cast<double>(n_);
}

// Encoding, version 2:
//   'Q' | version | k (fixed16 LE) | n (varint) | compactions (varint) |
//   level count (1 byte) | each level's size (varint) |
//   if there are two levels or more: min, max (IEEE-754 doubles, fixed64
//   LE); with one level the sketch holds every value, which give them |
//   if n > 0: the value form (1 byte) and the values, level 0 first:
//     form s in [0, kMaxValueScale]: every value v is c / 10^s for an
//       integer c (|c| < 2^53, the division exact in IEEE-754: decoding
//       gives the same bits); level 0 as zigzag varints of c, the other
//       levels (sorted) as varints of the difference to the previous c
//       (the first from 0, zigzag);
//     form kRawValues: every value as a double (fixed64 LE) |
//   CRC-32C (fixed32) of all the bytes before it.
// Version 1 writes min and max whenever n > 0, and the values as doubles
// without a form byte.
void QuantileSketch::Serialize(std::string* out) const {
  const size_t start = out->size();
  out->push_back(kQuantileTag);
  out->push_back(static_cast<char>(kEncodingVersion));
  out->push_back(static_cast<char>(k_ & 0xFF));
  out->push_back(static_cast<char>(k_ >> 8));
  PutVarint64(out, n_);
  PutVarint64(out, compactions_);
  // The level count is part of the state (it sets the capacities); an
  // empty sketch has no levels.
  const size_t num_levels = n_ == 0 ? 0 : levels_.size();
  out->push_back(static_cast<char>(num_levels));
  for (size_t h = 0; h < num_levels; ++h) PutVarint64(out, levels_[h].size());
  if (num_levels > 1) {
    PutDouble(out, min_);
    PutDouble(out, max_);
  }
  if (n_ > 0) {
    const uint8_t form = PutValueForm(out, levels_);
    for (size_t h = 0; h < num_levels; ++h) {
      int64_t previous = 0;
      for (double v : levels_[h]) PutValue(out, v, form, h > 0, &previous);
    }
  }
  AppendCrc(out, start);
}

absl::StatusOr<QuantileSketch> QuantileSketch::Deserialize(
    std::string_view bytes) {
  auto encoding =
      OpenEncoding(bytes, kQuantileTag, kEncodingVersion, "QuantileSketch");
  if (!encoding.ok()) return encoding.status();
  std::string_view in = encoding->body;
  auto corrupt = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("QuantileSketch encoding: ", why));
  };
  if (in.size() < 2) return corrupt("truncated header");
  const int k =
      static_cast<uint8_t>(in[0]) | (static_cast<uint8_t>(in[1]) << 8);
  in.remove_prefix(2);
  if (k < kMinK || k > kMaxK) {
    return corrupt(absl::StrCat("k ", k, " out of range"));
  }
  QuantileSketch sketch(k);
  uint64_t num_levels = 0;
  if (!GetVarint64(&in, &sketch.n_) ||
      !GetVarint64(&in, &sketch.compactions_) || in.empty()) {
    return corrupt("truncated header");
  }
  num_levels = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  if (num_levels > kMaxLevels) return corrupt("too many levels");
  if ((num_levels == 0) != (sketch.n_ == 0)) {
    return corrupt("level count disagrees with the value count");
  }
  std::vector<uint64_t> sizes(num_levels);
  unsigned __int128 weight = 0;
  uint64_t retained = 0;
  for (uint64_t h = 0; h < num_levels; ++h) {
    if (!GetVarint64(&in, &sizes[h])) return corrupt("truncated level sizes");
    // Every value takes 8 bytes (version 1) or at least 1, so a size beyond
    // the remaining bytes is corrupt (and must not drive an allocation).
    const size_t min_value_bytes = encoding->version == 1 ? 8 : 1;
    if (sizes[h] > in.size() / min_value_bytes) {
      return corrupt("level size out of range");
    }
    retained += sizes[h];
    weight += static_cast<unsigned __int128>(sizes[h]) << h;
  }
  if (weight != sketch.n_) {
    return corrupt("level weights do not add up to the value count");
  }
  // Version 2 leaves out min and max of a one-level sketch: its values.
  const bool stored_extremes =
      sketch.n_ > 0 && (encoding->version == 1 || num_levels > 1);
  if (stored_extremes) {
    if (!GetDouble(&in, &sketch.min_) || !GetDouble(&in, &sketch.max_)) {
      return corrupt("truncated min/max");
    }
    if (std::isnan(sketch.min_) || std::isnan(sketch.max_) ||
        sketch.min_ > sketch.max_) {
      return corrupt("bad min/max");
    }
  }
  // Version 1 has no form byte: raw doubles.
  uint8_t form = kRawValues;
  if (encoding->version >= 2 && sketch.n_ > 0) {
    if (const char* why = GetValueForm(&in, &form)) return corrupt(why);
  }
  if (form == kRawValues ? in.size() != retained * 8 : in.size() < retained) {
    return corrupt("value bytes do not match");
  }
  sketch.levels_.resize(std::max<uint64_t>(num_levels, 1));
  for (uint64_t h = 0; h < num_levels; ++h) {
    auto& level = sketch.levels_[h];
    level.reserve(sizes[h]);
    int64_t previous = 0;
    for (uint64_t i = 0; i < sizes[h]; ++i) {
      double v;
      if (const char* why = GetValue(&in, form, h > 0, &previous, &v)) {
        return corrupt(why);
      }
      if (std::isnan(v)) return corrupt("NaN value");
      if (stored_extremes && (v < sketch.min_ || v > sketch.max_)) {
        return corrupt("value outside [min, max]");
      }
      if (h > 0 && !level.empty() && v < level.back()) {
        return corrupt("level out of order");
      }
      level.push_back(v);
    }
  }
  if (!in.empty()) return corrupt("trailing bytes");
  if (sketch.n_ > 0 && !stored_extremes) {
    const auto [min, max] =
        std::minmax_element(sketch.levels_[0].begin(), sketch.levels_[0].end());
    sketch.min_ = *min;
    sketch.max_ = *max;
  }
  sketch.LevelsChanged();
  return sketch;
}

size_t QuantileSketch::MemoryBytes() const {
  // An InlinedVector's inline elements are part of its own size.
  size_t bytes = sizeof(*this);
  if (levels_.capacity() > 1) {
    bytes += levels_.capacity() * sizeof(Level);
  }
  for (const Level& level : levels_) {
    if (level.capacity() > kInlineValues) {
      bytes += level.capacity() * sizeof(double);
    }
  }
  return bytes;
}

}  // namespace weir

// ---------------------------------------------------------------------------
// QuantileHistogram

namespace weir {
namespace {

constexpr char kHistogramTag = 'R';
constexpr int kMaxParts = 5000;  // ceil(1 / (2 * kMinRelativeError))

}  // namespace

QuantileHistogram::QuantileHistogram()
    : QuantileHistogram(*Create(kDefaultRelativeError)) {}

absl::StatusOr<QuantileHistogram> QuantileHistogram::Create(
    double relative_error) {
  if (!(relative_error >= kMinRelativeError &&
        relative_error <= kMaxRelativeError)) {
    return absl::InvalidArgumentError(
        absl::StrCat("relative error must be in [", kMinRelativeError, ", ",
                     kMaxRelativeError, "], got ", relative_error));
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // as in Deserialize
  return QuantileHistogram(BucketsPerBinade(relative_error));
#pragma GCC diagnostic pop
}

int QuantileHistogram::BucketsPerBinade(double relative_error) {
  if (!(relative_error > 0)) return kMaxParts;
  // The smallest M with 1 / (2M) <= relative_error; the tolerance keeps
  // 0.01 at 50 parts although 0.5 / 0.01 is not exact in binary.
  const double exact = 0.5 / relative_error;
  if (!(exact < kMaxParts)) return kMaxParts;
  return std::clamp(static_cast<int>(std::ceil(exact - 1e-9)), 2, kMaxParts);
}

// 1 + (biased exponent - 1) * M + part for a normal or infinite magnitude,
// where part = floor(mantissa fraction * M): integer arithmetic on the bits.
int32_t QuantileHistogram::KeyOf(double value) const {
  const auto bits = std::bit_cast<uint64_t>(value);
  const uint64_t biased = (bits >> 52) & 0x7FF;
  if (biased == 0) return 0;  // zero or subnormal
  const uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
  const auto part =
      static_cast<int64_t>((static_cast<unsigned __int128>(mantissa) *
                            static_cast<unsigned>(parts_)) >>
                           52);
  const int64_t magnitude =
      1 + static_cast<int64_t>(biased - 1) * parts_ + part;
  return static_cast<int32_t>((bits >> 63) != 0 ? -magnitude : magnitude);
}

// The middle of the bucket: 2^e * (1 + (part + 0.5) / M); infinite for the
// bucket of the infinities.
double QuantileHistogram::ValueOf(int32_t key) const {
  if (key == 0) return 0.0;
  const int64_t magnitude = std::abs(static_cast<int64_t>(key)) - 1;
  const int64_t biased = magnitude / parts_ + 1;
  const int64_t part = magnitude % parts_;
  const double v = std::ldexp(
      1.0 + (static_cast<double>(part) + 0.5) / static_cast<double>(parts_),
      static_cast<int>(biased - 1023));
  return key < 0 ? -v : v;
}

void QuantileHistogram::AddToBucket(int32_t key, uint64_t count) {
  auto it =
      std::lower_bound(buckets_.begin(), buckets_.end(), key,
                       [](const Bucket& b, int32_t k) { return b.key < k; });
  if (it != buckets_.end() && it->key == key) {
    it->count += count;
    return;
  }
  const bool extreme = it == buckets_.begin() || it == buckets_.end();
  buckets_.insert(it, Bucket{key, count});
  sorted_ = static_cast<uint32_t>(buckets_.size());
  // Only a new largest magnitude of a sign can move its fold.
  if (extreme) Bound();
}

bool QuantileHistogram::normalized() const {
  return sorted_ == (is_exact() ? values_.size() : buckets_.size());
}

void QuantileHistogram::Normalize() {
  if (normalized()) return;
  if (is_exact()) {
    const auto appended = values_.begin() + sorted_;
    std::sort(appended, values_.end());
    std::inplace_merge(values_.begin(), appended, values_.end());
    sorted_ = static_cast<uint32_t>(values_.size());
    return;
  }
  SortInAppended(
      buckets_, sorted_,
      [](const Bucket& a, const Bucket& b) { return a.key < b.key; },
      [](const Bucket& a, const Bucket& b) { return a.key == b.key; },
      [](Bucket& into, const Bucket& from) { into.count += from.count; });
  sorted_ = static_cast<uint32_t>(buckets_.size());
  Bound();
}

const QuantileHistogram& QuantileHistogram::Normalized(
    std::optional<QuantileHistogram>* copy) const {
  if (normalized()) return *this;
  copy->emplace(*this);
  (*copy)->Normalize();
  return **copy;
}

size_t QuantileHistogram::num_buckets() const {
  std::optional<QuantileHistogram> copy;
  return Normalized(&copy).buckets_.size();
}

void QuantileHistogram::ToBuckets() {
  // Sorted, the values' keys come in order.
  std::sort(values_.begin(), values_.end());
  for (double v : values_) {
    const int32_t key = KeyOf(v);
    if (!buckets_.empty() && buckets_.back().key == key) {
      ++buckets_.back().count;
    } else {
      buckets_.push_back(Bucket{key, 1});
    }
  }
  values_ = {};
  Bound();
}

// Negative keys fold toward zero into the key kMaxBinades * M - 1 above
// the most negative one; positive keys into the key kMaxBinades * M - 1
// below the largest. Both depend only on the extreme keys, so folding early and
// again later equals folding once.
void QuantileHistogram::Bound() {
  const auto by_key = [](const Bucket& b, int32_t k) { return b.key < k; };
  const int64_t span = static_cast<int64_t>(kMaxBinades) * parts_ - 1;
  if (!buckets_.empty() && buckets_.front().key < 0) {
    const auto limit = static_cast<int32_t>(buckets_.front().key + span);
    const auto end = std::lower_bound(buckets_.begin(), buckets_.end(), 0,
                                      by_key);  // first key >= 0
    auto first =
        std::upper_bound(buckets_.begin(), end, limit,
                         [](int32_t k, const Bucket& b) { return k < b.key; });
    if (first != end) {
      uint64_t folded = 0;
      for (auto it = first; it != end; ++it) folded += it->count;
      if (first != buckets_.begin() && (first - 1)->key == limit) {
        (first - 1)->count += folded;
        buckets_.erase(first, end);
      } else {
        first->key = limit;
        first->count = folded;
        buckets_.erase(first + 1, end);
      }
    }
  }
  if (!buckets_.empty() && buckets_.back().key > 0) {
    const auto limit = static_cast<int32_t>(buckets_.back().key - span);
    const auto begin = std::upper_bound(
        buckets_.begin(), buckets_.end(), 0,
        [](int32_t k, const Bucket& b) { return k < b.key; });  // key > 0
    auto kept = std::lower_bound(begin, buckets_.end(), limit, by_key);
    if (kept != begin) {
      uint64_t folded = 0;
      for (auto it = begin; it != kept; ++it) folded += it->count;
      if (kept->key == limit) {
        kept->count += folded;
        buckets_.erase(begin, kept);
      } else {
        (kept - 1)->key = limit;
        (kept - 1)->count = folded;
        buckets_.erase(begin, kept - 1);
      }
    }
  }
  sorted_ = static_cast<uint32_t>(buckets_.size());
}

void QuantileHistogram::Add(double value) {
  if (!std::isfinite(value)) return;
  if (value == 0) value = 0.0;  // -0.0 is +0.0
  if (n_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  ++n_;
  if (n_ <= kExactValues) {
    // Sorted when read (Normalize), as the buckets' later values are.
    values_.push_back(value);
    return;
  }
  if (!values_.empty()) ToBuckets();
  const int32_t key = KeyOf(value);
  if (InsertsInPlace(buckets_.size(), sorted_)) {
    AddToBucket(key, 1);
    return;
  }
  // As in HyperLogLog::AddHash: an append touches one line where a binary
  // search of a sketch out of the CPU's cache would wait at most steps.
  buckets_.push_back(Bucket{key, 1});
  if (SortInDue(buckets_.size(), sorted_)) Normalize();
}

absl::Status QuantileHistogram::Merge(const QuantileHistogram& other) {
  if (other.parts_ != parts_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot merge quantile histograms of different relative errors (",
        relative_error(), " and ", other.relative_error(), ")"));
  }
  if (other.n_ == 0) return absl::OkStatus();
  if (n_ == 0) {
    *this = other;
    return absl::OkStatus();
  }
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  const uint64_t total = n_ + other.n_;
  if (total <= kExactValues) {
    Normalize();
    std::optional<QuantileHistogram> copy;
    const auto& theirs = other.Normalized(&copy).values_;
    absl::InlinedVector<double, 2> merged;
    merged.reserve(total);
    std::merge(values_.begin(), values_.end(), theirs.begin(), theirs.end(),
               std::back_inserter(merged));
    values_ = std::move(merged);
    sorted_ = static_cast<uint32_t>(values_.size());
    n_ = total;
    return absl::OkStatus();
  }
  // ToBuckets leaves the buckets normalized.
  if (is_exact()) {
    ToBuckets();
  } else {
    Normalize();
  }
  n_ = total;
  std::vector<Bucket> theirs;
  const std::vector<Bucket>* from = &other.buckets_;
  if (other.is_exact() || !other.normalized()) {
    QuantileHistogram copy = other;
    if (copy.is_exact()) {
      copy.ToBuckets();
    } else {
      copy.Normalize();
    }
    theirs = std::move(copy.buckets_);
    from = &theirs;
  }
  std::vector<Bucket> merged;
  merged.reserve(buckets_.size() + from->size());
  auto a = buckets_.begin();
  auto b = from->begin();
  while (a != buckets_.end() || b != from->end()) {
    if (b == from->end() || (a != buckets_.end() && a->key < b->key)) {
      merged.push_back(*a++);
    } else if (a == buckets_.end() || b->key < a->key) {
      merged.push_back(*b++);
    } else {
      merged.push_back(Bucket{a->key, a->count + b->count});
      ++a;
      ++b;
    }
  }
  buckets_ = std::move(merged);
  Bound();
  return absl::OkStatus();
}

absl::StatusOr<double> QuantileHistogram::Quantile(double q) const {
  if (absl::Status s = CheckQuantileQuery(q, n_); !s.ok()) return s;
  if (q == 0.0) return min_;
  if (q == 1.0) return max_;
  const double n = static_cast<double>(n_);
  // cumulative / n is correctly rounded, so a q written as a decimal
  // fraction matches the rank it names exactly (as QuantileSketch).
  if (is_exact()) {
    // Sorted on the stack: no copy of the sketch on the heap.
    std::array<double, kExactValues> sorted;
    const auto end = std::copy(values_.begin(), values_.end(), sorted.begin());
    std::sort(sorted.begin(), end);
    for (auto it = sorted.begin(); it != end; ++it) {
      if (static_cast<double>(it - sorted.begin() + 1) / n >= q) return *it;
    }
    return max_;
  }
  std::optional<QuantileHistogram> copy;
  uint64_t cumulative = 0;
  for (const Bucket& b : Normalized(&copy).buckets_) {
    cumulative += b.count;
    if (static_cast<double>(cumulative) / n >= q) {
      return std::clamp(ValueOf(b.key), min_, max_);
    }
  }
  return max_;
}

std::optional<double> QuantileHistogram::min() const {
  if (n_ == 0) return std::nullopt;
  return min_;
}

std::optional<double> QuantileHistogram::max() const {
  if (n_ == 0) return std::nullopt;
  return max_;
}

// Encoding, version 1:
//   'R' | version | M (fixed16 LE) | n (varint) |
//   while exact (0 < n <= kExactValues): the value form (1 byte, as
//     QuantileSketch's: a scale s in [0, 6] or raw doubles) and the sorted
//     values: form s as zigzag varints of c (v = c / 10^s), the first from
//     0 and each later one as the difference to the one before; raw as
//     doubles (fixed64 LE) |
//   with buckets (n > kExactValues): min, max (doubles) | bucket count
//     (varint) | keys: the first zigzag, then each one's (positive)
//     difference to the one before (varints) | counts (varints) |
//   CRC-32C (fixed32) of all the bytes before it.
void QuantileHistogram::Serialize(std::string* out) const {
  const size_t start = out->size();
  out->push_back(kHistogramTag);
  out->push_back(static_cast<char>(kEncodingVersion));
  out->push_back(static_cast<char>(parts_ & 0xFF));
  out->push_back(static_cast<char>(parts_ >> 8));
  PutVarint64(out, n_);
  std::optional<QuantileHistogram> copy;
  const QuantileHistogram& sketch = Normalized(&copy);
  if (n_ > 0 && is_exact()) {
    const std::array<absl::Span<const double>, 1> levels = {
        absl::MakeConstSpan(sketch.values_)};
    const uint8_t form = PutValueForm(out, levels);
    int64_t previous = 0;
    for (double v : sketch.values_) PutValue(out, v, form, true, &previous);
  } else if (n_ > 0) {
    const std::vector<Bucket>& buckets = sketch.buckets_;
    PutDouble(out, min_);
    PutDouble(out, max_);
    PutVarint64(out, buckets.size());
    int32_t previous = 0;
    for (size_t i = 0; i < buckets.size(); ++i) {
      const int32_t key = buckets[i].key;
      PutVarint64(out,
                  i == 0 ? ZigZag(key) : static_cast<uint64_t>(key - previous));
      previous = key;
    }
    for (const Bucket& b : buckets) PutVarint64(out, b.count);
  }
  AppendCrc(out, start);
}

// As in HyperLogLog::Create: GCC 12 reports the inline buffer of an empty
// values_ as "maybe uninitialized" when InlinedVector's move copies it
// whole into the StatusOr; it holds no elements, so nothing is read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
absl::StatusOr<QuantileHistogram> QuantileHistogram::Deserialize(
    std::string_view bytes) {
  auto encoding =
      OpenEncoding(bytes, kHistogramTag, kEncodingVersion, "QuantileHistogram");
  if (!encoding.ok()) return encoding.status();
  std::string_view in = encoding->body;
  auto corrupt = [](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("QuantileHistogram encoding: ", why));
  };
  if (in.size() < 2) return corrupt("truncated header");
  const int parts =
      static_cast<uint8_t>(in[0]) | (static_cast<uint8_t>(in[1]) << 8);
  in.remove_prefix(2);
  if (parts < 2 || parts > kMaxParts) {
    return corrupt(absl::StrCat("bucket width 1/", parts, " out of range"));
  }
  QuantileHistogram sketch(parts);
  if (!GetVarint64(&in, &sketch.n_)) return corrupt("truncated header");
  if (sketch.n_ == 0) {
    if (!in.empty()) return corrupt("trailing bytes");
    return sketch;
  }
  if (sketch.is_exact()) {
    uint8_t form;
    if (const char* why = GetValueForm(&in, &form)) return corrupt(why);
    int64_t previous = 0;
    for (uint64_t i = 0; i < sketch.n_; ++i) {
      double v;
      if (const char* why = GetValue(&in, form, true, &previous, &v)) {
        return corrupt(why);
      }
      if (std::isnan(v)) return corrupt("NaN value");
      if (!sketch.values_.empty() && v < sketch.values_.back()) {
        return corrupt("values out of order");
      }
      sketch.values_.push_back(v);
    }
    if (!in.empty()) return corrupt("trailing bytes");
    sketch.min_ = sketch.values_.front();
    sketch.max_ = sketch.values_.back();
    sketch.sorted_ = static_cast<uint32_t>(sketch.values_.size());
    return sketch;
  }
  uint64_t num_buckets = 0;
  if (!GetDouble(&in, &sketch.min_) || !GetDouble(&in, &sketch.max_) ||
      !GetVarint64(&in, &num_buckets)) {
    return corrupt("truncated header");
  }
  if (std::isnan(sketch.min_) || std::isnan(sketch.max_) ||
      sketch.min_ > sketch.max_) {
    return corrupt("bad min/max");
  }
  // Each bucket takes at least two bytes (key and count), so a count beyond
  // that must not drive an allocation.
  const int64_t span = static_cast<int64_t>(kMaxBinades) * parts - 1;
  if (num_buckets == 0 || num_buckets > in.size() / 2 ||
      num_buckets > static_cast<uint64_t>(2 * span + 3)) {
    return corrupt("bucket count out of range");
  }
  const int64_t max_key = int64_t{2046} * parts;  // finite values only
  sketch.buckets_.resize(num_buckets);
  int64_t key = 0;
  for (uint64_t i = 0; i < num_buckets; ++i) {
    uint64_t v;
    if (!GetVarint64(&in, &v)) return corrupt("truncated keys");
    if (i == 0) {
      if (v > static_cast<uint64_t>(2 * max_key)) {
        return corrupt("key out of range");
      }
      key = UnZigZag(v);
    } else {
      if (v == 0 || v > static_cast<uint64_t>(2 * max_key)) {
        return corrupt("keys out of order");
      }
      key += static_cast<int64_t>(v);
    }
    if (key < -max_key || key > max_key) return corrupt("key out of range");
    sketch.buckets_[i].key = static_cast<int32_t>(key);
  }
  unsigned __int128 total = 0;
  for (Bucket& b : sketch.buckets_) {
    if (!GetVarint64(&in, &b.count)) return corrupt("truncated counts");
    if (b.count == 0) return corrupt("empty bucket");
    total += b.count;
  }
  if (!in.empty()) return corrupt("trailing bytes");
  if (total != sketch.n_) {
    return corrupt("bucket counts do not add up to the value count");
  }
  // The keys of each sign span at most what Bound keeps.
  const auto zero =
      std::lower_bound(sketch.buckets_.begin(), sketch.buckets_.end(), 0,
                       [](const Bucket& b, int32_t k) { return b.key < k; });
  if (zero != sketch.buckets_.begin() &&
      int64_t{(zero - 1)->key} - sketch.buckets_.front().key > span) {
    return corrupt("negative buckets span more than a sign keeps");
  }
  const auto positive =
      zero != sketch.buckets_.end() && zero->key == 0 ? zero + 1 : zero;
  if (positive != sketch.buckets_.end() &&
      int64_t{sketch.buckets_.back().key} - positive->key > span) {
    return corrupt("positive buckets span more than a sign keeps");
  }
  sketch.sorted_ = static_cast<uint32_t>(sketch.buckets_.size());
  return sketch;
}

#pragma GCC diagnostic pop

size_t QuantileHistogram::MemoryBytes() const {
  size_t bytes = sizeof(*this);
  if (values_.capacity() > 2) bytes += values_.capacity() * sizeof(double);
  bytes += buckets_.capacity() * sizeof(Bucket);
  return bytes;
}

}  // namespace weir
