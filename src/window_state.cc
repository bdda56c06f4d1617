#include "weir/internal/window_state.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "weir/internal/accumulators.h"
#include "weir/internal/coding.h"
#include "weir/internal/state_format.h"
#include "weir/status_macros.h"
#include "weir/time.h"

namespace weir {
namespace internal {
namespace {

// One decoded accumulator, 8-aligned, with its kind.
struct DecodedAcc {
  AggregateKind kind;
  std::vector<uint64_t> words;
  char* data() { return reinterpret_cast<char*>(words.data()); }
};

// Reads the accumulator at the front of `*in` into `*acc`.
absl::Status DecodeNextAcc(std::string_view* in, DecodedAcc* acc) {
  acc->kind = static_cast<AggregateKind>((*in)[0]);
  const size_t size = AccSize(acc->kind);
  if (size == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("window state holds an accumulator of unknown kind ",
                     static_cast<int>(acc->kind)));
  }
  acc->words.assign(size / 8 + 1, 0);
  return DecodeAcc(acc->kind, in, acc->data());
}

// The running merge of a window's payloads.
class PayloadMerge {
 public:
  PayloadMerge() = default;
  PayloadMerge(const PayloadMerge&) = delete;
  PayloadMerge& operator=(const PayloadMerge&) = delete;
  ~PayloadMerge() { Reset(); }

  void Reset() {
    for (DecodedAcc& acc : accs_) AccDestroy(acc.kind, acc.data());
    accs_.clear();
    started_ = false;
  }

  absl::Status Add(std::string_view in) {
    if (in.empty() || static_cast<uint8_t>(in[0]) != kWindowPayloadVersion) {
      return absl::FailedPreconditionError(
          "window state has an unknown payload version");
    }
    in.remove_prefix(1);
    uint64_t end, max_offset;
    if (!GetFixed64(&in, &end) || !GetFixed64(&in, &max_offset)) {
      return absl::DataLossError("window state is truncated");
    }
    if (!started_) {
      started_ = true;
      end_ = static_cast<int64_t>(end);
      max_offset_ = static_cast<int64_t>(max_offset);
      while (!in.empty()) {
        accs_.emplace_back();
        absl::Status s = DecodeNextAcc(&in, &accs_.back());
        if (!s.ok()) {
          accs_.pop_back();  // DecodeAcc holds nothing on failure
          return s;
        }
      }
      return absl::OkStatus();
    }
    if (static_cast<int64_t>(end) != end_) {
      return absl::DataLossError(
          absl::StrCat("window state parts disagree on the window end: ", end_,
                       " and ", static_cast<int64_t>(end)));
    }
    max_offset_ = std::max(max_offset_, static_cast<int64_t>(max_offset));
    DecodedAcc other;
    for (DecodedAcc& acc : accs_) {
      if (in.empty()) {
        return absl::DataLossError("window state part has fewer accumulators");
      }
      if (static_cast<AggregateKind>(in[0]) != acc.kind) {
        return absl::FailedPreconditionError(
            "window state parts hold accumulators of different kinds");
      }
      WEIR_RETURN_IF_ERROR(DecodeNextAcc(&in, &other));
      Merge(acc.kind, acc.data(), other.data());
      AccDestroy(other.kind, other.data());
    }
    if (!in.empty()) {
      return absl::DataLossError("window state part has more accumulators");
    }
    return absl::OkStatus();
  }

  void Encode(std::string* out) {
    out->push_back(static_cast<char>(kWindowPayloadVersion));
    PutFixed64(out, static_cast<uint64_t>(end_));
    PutFixed64(out, static_cast<uint64_t>(max_offset_));
    for (DecodedAcc& acc : accs_) EncodeAcc(acc.kind, acc.data(), out);
  }

 private:
  bool started_ = false;
  int64_t end_ = 0;
  int64_t max_offset_ = 0;
  std::vector<DecodedAcc> accs_;
};

}  // namespace

absl::Status MergeWindowPayloads(absl::Span<const std::string_view> parts,
                                 std::string* out) {
  PayloadMerge merge;
  for (std::string_view part : parts) WEIR_RETURN_IF_ERROR(merge.Add(part));
  out->clear();
  merge.Encode(out);
  return absl::OkStatus();
}

absl::Status MergeStoredWindowValues(
    const std::string_view* existing,
    absl::Span<const std::string_view> operands, std::optional<int64_t> ttl_ms,
    std::string* out) {
  // The parts that survive TTL: the suffix after the last expired one.
  size_t first = 0;
  const size_t n = operands.size() + (existing != nullptr ? 1 : 0);
  auto part = [&](size_t i) {
    return existing == nullptr ? operands[i]
                               : (i == 0 ? *existing : operands[i - 1]);
  };
  std::vector<int64_t> times(n);
  int64_t newest = kMinEventTime;
  for (size_t i = 0; i < n; ++i) {
    std::string_view payload;
    WEIR_RETURN_IF_ERROR(DecodeStateValue(part(i), &times[i], &payload));
    if (i > 0 && StateExpired(times[i - 1], ttl_ms, times[i])) first = i;
    newest = std::max(newest, times[i]);
  }
  if (n - first == 1) {
    out->assign(part(first));  // one part: nothing to merge
    return absl::OkStatus();
  }
  PayloadMerge merge;
  for (size_t i = first; i < n; ++i) {
    int64_t write_ms;
    std::string_view payload;
    WEIR_RETURN_IF_ERROR(DecodeStateValue(part(i), &write_ms, &payload));
    WEIR_RETURN_IF_ERROR(merge.Add(payload));
  }
  std::string merged;
  merge.Encode(&merged);
  EncodeStateValue(newest, merged, out);
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace weir
