// libFuzzer target: the three sketches' Deserialize on arbitrary bytes (sketch
// state is read back from checkpoints). Whatever they accept must answer
// queries, merge with itself and serialize again to the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "weir/sketch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<weir::HyperLogLog> h =
          weir::HyperLogLog::Deserialize(bytes);
      h.ok()) {
    std::string once;
    h->Serialize(&once);
    absl::StatusOr<weir::HyperLogLog> again =
        weir::HyperLogLog::Deserialize(once);
    if (!again.ok()) std::abort();
    std::string twice;
    again->Serialize(&twice);
    if (twice != once) std::abort();
    (void)h->Estimate();
    weir::HyperLogLog copy = *h;
    if (!copy.Merge(*h).ok()) std::abort();
  }
  if (absl::StatusOr<weir::QuantileSketch> q =
          weir::QuantileSketch::Deserialize(bytes);
      q.ok()) {
    std::string once;
    q->Serialize(&once);
    absl::StatusOr<weir::QuantileSketch> again =
        weir::QuantileSketch::Deserialize(once);
    if (!again.ok()) std::abort();
    std::string twice;
    again->Serialize(&twice);
    if (twice != once) std::abort();
    if (q->count() > 0) (void)q->Quantile(0.5);
    weir::QuantileSketch copy = *q;
    if (!copy.Merge(*q).ok()) std::abort();
  }
  if (absl::StatusOr<weir::QuantileHistogram> r =
          weir::QuantileHistogram::Deserialize(bytes);
      r.ok()) {
    std::string once;
    r->Serialize(&once);
    absl::StatusOr<weir::QuantileHistogram> again =
        weir::QuantileHistogram::Deserialize(once);
    if (!again.ok()) std::abort();
    std::string twice;
    again->Serialize(&twice);
    if (twice != once) std::abort();
    if (r->count() > 0) (void)r->Quantile(0.99);
    weir::QuantileHistogram copy = *r;
    if (!copy.Merge(*r).ok()) std::abort();
    if (copy.count() != 2 * r->count()) std::abort();
  }
  return 0;
}
