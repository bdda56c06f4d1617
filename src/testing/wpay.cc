#include "weir/testing/wpay.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace weir {
namespace testing {
namespace {

// SplitMix64 (Steele, Lea, Flood 2014): the k-th output of the stream with
// state `key` is Mix64(key + (k + 1) * kGamma). It is counter-based, so any
// draw of any event can be computed directly.
constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;

inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Draws per event, each with a fixed role so that changing one option does
// not shift the draws of another property.
enum Draw : uint64_t {
  kDrawUser = 0,
  kDrawMerchant,
  kDrawAmount,
  kDrawNull,
  kDrawTimeClass,
  kDrawTimeDelay,
  kDrawMalformed,
  kDrawMalformedDetail,
  kDrawsPerEvent = 8,
};

inline uint64_t DrawBits(uint64_t key, int64_t seq, uint64_t draw) {
  return Mix64(key + (static_cast<uint64_t>(seq) * kDrawsPerEvent + draw + 1) *
                         kGamma);
}

// The top 53 bits of `bits`, as an integer in [0, 2^53).
inline uint64_t Top53(uint64_t bits) { return bits >> 11; }

constexpr double kTwoPow53 = 9007199254740992.0;

// A probability as a threshold on Top53(bits): P(Top53 < threshold) = p.
uint64_t ThresholdFor(double p) {
  if (p <= 0) return 0;
  if (p >= 1) return uint64_t{1} << 53;
  return static_cast<uint64_t>(p * kTwoPow53);
}

// An integer uniform in [lo, hi] (hi - lo < 2^63), by multiply-shift.
inline int64_t UniformIn(uint64_t bits, int64_t lo, int64_t hi) {
  uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
  uint64_t r = static_cast<uint64_t>(
      (static_cast<unsigned __int128>(bits) * range) >> 64);
  return lo + static_cast<int64_t>(r);
}

// Appends the decimal digits of `v`.
inline void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  char* end = buf + sizeof(buf);
  char* p = end;
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    *--p = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) *--p = '-';
  out.append(p, end - p);
}

// Sets `out` to `prefix` followed by the digits of `n` (n >= 0).
inline void SetId(std::string& out, char prefix, int64_t n) {
  out.clear();
  out.push_back(prefix);
  AppendInt(out, n);
}

// Appends 12.34 for 1234 cents.
inline void AppendCents(std::string& out, int64_t cents) {
  AppendInt(out, cents / 100);
  int64_t frac = cents % 100;
  out.push_back('.');
  out.push_back(static_cast<char>('0' + frac / 10));
  out.push_back(static_cast<char>('0' + frac % 10));
}

bool WholeMillis(absl::Duration d) {
  return d == absl::Floor(d, absl::Milliseconds(1));
}

absl::Status CheckFraction(const char* name, double v) {
  if (!(v >= 0.0 && v <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be in [0, 1], got ", v));
  }
  return absl::OkStatus();
}

}  // namespace

const char* MalformedKindName(MalformedKind kind) {
  switch (kind) {
    case MalformedKind::kNone:
      return "none";
    case MalformedKind::kBrokenJson:
      return "broken_json";
    case MalformedKind::kAmountNotNumeric:
      return "amount_not_numeric";
    case MalformedKind::kMissingUserId:
      return "missing_user_id";
    case MalformedKind::kIntegerBecameFloat:
      return "integer_became_float";
  }
  return "unknown";
}

uint32_t KafkaMurmur2(std::string_view key) {
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const size_t length = key.size();
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  uint32_t h = 0x9747b28cU ^ static_cast<uint32_t>(length);
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(data[i4]) |
                 (static_cast<uint32_t>(data[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(data[i4 + 2]) << 16) |
                 (static_cast<uint32_t>(data[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = length & ~size_t{3};
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(data[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(data[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(data[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

int32_t WPayPartitionFor(std::string_view key, int32_t num_partitions) {
  if (num_partitions <= 1) return 0;
  return static_cast<int32_t>((KafkaMurmur2(key) & 0x7fffffffU) %
                              static_cast<uint32_t>(num_partitions));
}

absl::Status WPayOptions::Validate() const {
  if (num_events < 0) {
    return absl::InvalidArgumentError("num_events must be >= 0");
  }
  if (num_users < 1) {
    return absl::InvalidArgumentError("num_users must be >= 1");
  }
  if (num_merchants < 1) {
    return absl::InvalidArgumentError("num_merchants must be >= 1");
  }
  if (!(zipf_exponent >= 0.0 && zipf_exponent <= 10.0)) {
    return absl::InvalidArgumentError("zipf_exponent must be in [0, 10]");
  }
  if (num_partitions < 1) {
    return absl::InvalidArgumentError("num_partitions must be >= 1");
  }
  // Keep every in-order and moved-back time far from the int64 limits.
  constexpr int64_t kTimeLimit = int64_t{1} << 61;
  if (start < -kTimeLimit || start > kTimeLimit) {
    return absl::InvalidArgumentError("start must be within +-2^61 ms");
  }
  if (events_per_millisecond < 1) {
    return absl::InvalidArgumentError("events_per_millisecond must be >= 1");
  }
  if (auto s = CheckFraction("disorder_fraction", disorder_fraction); !s.ok()) {
    return s;
  }
  if (max_disorder < absl::Milliseconds(1) || !WholeMillis(max_disorder) ||
      max_disorder > absl::Hours(24 * 365)) {
    return absl::InvalidArgumentError(
        "max_disorder must be a whole number of ms in [1 ms, 365 days]");
  }
  if (auto s = CheckFraction("late_fraction", late_fraction); !s.ok()) {
    return s;
  }
  if (late_fraction + disorder_fraction > 1.0) {
    return absl::InvalidArgumentError(
        "late_fraction + disorder_fraction must be <= 1");
  }
  if (min_lateness < absl::Milliseconds(1) || !WholeMillis(min_lateness) ||
      min_lateness > absl::Hours(24 * 365)) {
    return absl::InvalidArgumentError(
        "min_lateness must be a whole number of ms in [1 ms, 365 days]");
  }
  if (max_lateness < min_lateness || !WholeMillis(max_lateness) ||
      max_lateness > absl::Hours(24 * 365)) {
    return absl::InvalidArgumentError(
        "max_lateness must be a whole number of ms in [min_lateness, 365 "
        "days]");
  }
  if (auto s = CheckFraction("null_amount_fraction", null_amount_fraction);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckFraction("malformed_fraction", malformed_fraction);
      !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

weir::RawRecord WPayEvent::ToRawRecord(std::string_view topic) const {
  weir::RawRecord record;
  record.topic = topic;
  record.partition = partition;
  record.offset = offset;
  record.key = user_id;
  record.value = json;
  return record;
}

weir::Event WPayEvent::ToEvent() const {
  weir::Event e;
  e.key = user_id;
  e.event_time = event_time;
  e.partition = partition;
  e.offset = offset;
  e.values.reserve(2);
  e.values.push_back(weir::Value::String(merchant_id));
  e.values.push_back(amount_cents.has_value()
                         ? weir::Value::Dec(*amount_cents, 2)
                         : weir::Value::Null());
  return e;
}

// The Zipf law over ranks 1..n, sampled by inversion: rank k is the first
// with cdf(k) > u for u uniform in [0, 1), where cdf(k) is the running sum
// of the weights 1/j^s up to k over their total (and cdf(n) = 1).
//
// The whole cdf would be 8 bytes per user (80 MB for B7's 10 M users, in
// the benchmark's own memory). Only the running sum at the start of every
// block of kBlock ranks is kept; a sample finds its block with a guide
// table of G = 2^g buckets (guide[b] = first block whose last cdf exceeds
// b / G) and a binary search among the few blocks of its bucket, then adds
// the block's weights in the same order as the running sum was taken, so
// every cdf value, and so every sample, is the same bits a full table
// gives.
struct WPayGenerator::ZipfTable {
  static constexpr int64_t kBlock = 16;

  ZipfTable(int64_t n, double s) : n_(n), s_(s) {
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    sums_.resize(blocks + 1);
    double total = 0;
    for (int64_t k = 1; k <= n; ++k) {
      if ((k - 1) % kBlock == 0) sums_[(k - 1) / kBlock] = total;
      total += Weight(k);
    }
    sums_[blocks] = total;
    total_ = total;

    while (guide_bits_ < 16 && (int64_t{1} << guide_bits_) < blocks) {
      ++guide_bits_;
    }
    const int64_t g = int64_t{1} << guide_bits_;
    guide_.resize(g + 1);
    int64_t b = 0;
    for (int64_t i = 0; i < g; ++i) {
      const double lo = static_cast<double>(i) / static_cast<double>(g);
      while (b < blocks - 1 && !(LastCdf(b) > lo)) ++b;
      guide_[i] = static_cast<uint32_t>(b);
    }
    guide_[g] = static_cast<uint32_t>(blocks - 1);
  }

  // The 0-based rank for 53 random bits.
  int64_t Sample(uint64_t top53) const {
    const double u = static_cast<double>(top53) / kTwoPow53;
    const uint64_t i = top53 >> (53 - guide_bits_);
    // The first block whose last cdf exceeds u.
    int64_t lo = guide_[i];
    int64_t hi = guide_[i + 1];
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (LastCdf(mid) > u) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    double sum = sums_[lo];
    const int64_t last = std::min(n_, (lo + 1) * kBlock);
    for (int64_t k = lo * kBlock + 1; k < last; ++k) {
      sum += Weight(k);
      if (sum / total_ > u) return k - 1;
    }
    return last - 1;  // the block's last cdf exceeds u
  }

 private:
  double Weight(int64_t k) const {
    return s_ == 0.0   ? 1.0
           : s_ == 1.0 ? 1.0 / static_cast<double>(k)
                       : std::pow(static_cast<double>(k), -s_);
  }
  // cdf of block b's last rank.
  double LastCdf(int64_t b) const {
    return (b + 1) * kBlock >= n_ ? 1.0 : sums_[b + 1] / total_;
  }

  int64_t n_;
  double s_;
  double total_ = 0;
  std::vector<double> sums_;     // per block, the running sum before it
  std::vector<uint32_t> guide_;  // G + 1 entries
  int guide_bits_ = 0;
};

WPayGenerator::WPayGenerator(const WPayOptions& options,
                             std::unique_ptr<ZipfTable> zipf)
    : options_(options),
      zipf_(std::move(zipf)),
      next_offset_(options.num_partitions, 0) {
  late_threshold_ = ThresholdFor(options.late_fraction);
  disorder_threshold_ =
      ThresholdFor(options.late_fraction + options.disorder_fraction);
  null_threshold_ = ThresholdFor(options.null_amount_fraction);
  malformed_threshold_ = ThresholdFor(options.malformed_fraction);
  max_disorder_ms_ = ToMillis(options.max_disorder);
  min_lateness_ms_ = ToMillis(options.min_lateness);
  max_lateness_ms_ = ToMillis(options.max_lateness);
}

WPayGenerator::~WPayGenerator() = default;

absl::StatusOr<std::unique_ptr<WPayGenerator>> WPayGenerator::Create(
    const WPayOptions& options) {
  if (auto s = options.Validate(); !s.ok()) return s;
  if (options.num_users > (int64_t{1} << 31)) {
    return absl::InvalidArgumentError("num_users must be <= 2^31");
  }
  auto zipf =
      std::make_unique<ZipfTable>(options.num_users, options.zipf_exponent);
  return std::unique_ptr<WPayGenerator>(
      new WPayGenerator(options, std::move(zipf)));
}

absl::StatusOr<std::vector<WPayEvent>> WPayGenerator::GenerateAll(
    const WPayOptions& options) {
  auto gen = Create(options);
  if (!gen.ok()) return gen.status();
  std::vector<WPayEvent> events(options.num_events);
  for (WPayEvent& e : events) (*gen)->Next(e);
  return events;
}

int64_t WPayGenerator::SampleUser(uint64_t bits) const {
  return zipf_->Sample(Top53(bits)) + 1;
}

bool WPayGenerator::Next(WPayEvent& event) {
  if (next_seq_ >= options_.num_events) return false;
  const int64_t seq = next_seq_++;
  const uint64_t key = Mix64(options_.seed);

  event.seq = seq;
  SetId(event.user_id, 'u', SampleUser(DrawBits(key, seq, kDrawUser)));
  SetId(
      event.merchant_id, 'm',
      UniformIn(DrawBits(key, seq, kDrawMerchant), 1, options_.num_merchants));

  // Malformed kind first: a float-written amount is never null.
  event.malformed = MalformedKind::kNone;
  uint64_t detail = 0;
  if (malformed_threshold_ != 0 &&
      Top53(DrawBits(key, seq, kDrawMalformed)) < malformed_threshold_) {
    detail = DrawBits(key, seq, kDrawMalformedDetail);
    event.malformed = static_cast<MalformedKind>(1 + (detail >> 62));
  }
  const bool null_amount =
      event.malformed != MalformedKind::kIntegerBecameFloat &&
      null_threshold_ != 0 &&
      Top53(DrawBits(key, seq, kDrawNull)) < null_threshold_;
  if (null_amount) {
    event.amount_cents.reset();
  } else {
    event.amount_cents = UniformIn(DrawBits(key, seq, kDrawAmount), 1, 100000);
  }

  const EventTime in_order =
      options_.start + seq / options_.events_per_millisecond;
  event.event_time = in_order;
  event.late = false;
  if (disorder_threshold_ != 0) {
    const uint64_t cls = Top53(DrawBits(key, seq, kDrawTimeClass));
    if (cls < late_threshold_) {
      event.late = true;
      event.event_time =
          in_order - UniformIn(DrawBits(key, seq, kDrawTimeDelay),
                               min_lateness_ms_, max_lateness_ms_);
    } else if (cls < disorder_threshold_) {
      event.event_time =
          in_order -
          UniformIn(DrawBits(key, seq, kDrawTimeDelay), 1, max_disorder_ms_);
    }
  }

  event.partition = WPayPartitionFor(event.user_id, options_.num_partitions);
  event.offset = next_offset_[event.partition]++;

  std::string& j = event.json;
  j.clear();
  if (!options_.build_json) return true;
  if (event.malformed != MalformedKind::kMissingUserId) {
    j.append("{\"user_id\":\"");
    j.append(event.user_id);
    j.append("\",\"merchant_id\":\"");
  } else {
    j.append("{\"merchant_id\":\"");
  }
  j.append(event.merchant_id);
  j.append("\",\"amount\":");
  if (event.malformed == MalformedKind::kAmountNotNumeric) {
    j.append("\"N/A\"");
  } else if (event.malformed == MalformedKind::kIntegerBecameFloat) {
    AppendInt(j, *event.amount_cents);
    j.append("e-2");
  } else if (event.amount_cents.has_value()) {
    AppendCents(j, *event.amount_cents);
  } else {
    j.append("null");
  }
  j.append(",\"event_timestamp\":");
  AppendInt(j, event.event_time);
  j.push_back('}');
  if (event.malformed == MalformedKind::kBrokenJson) {
    // A proper non-empty prefix; the low bits of `detail` pick its length
    // (the top two picked the kind).
    const int64_t cut =
        UniformIn(detail << 2, 1, static_cast<int64_t>(j.size()) - 1);
    j.resize(cut);
  }
  return true;
}

}  // namespace testing
}  // namespace weir
