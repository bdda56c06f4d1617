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

namespace {

// If `bytes` decode as a Sketch: serialize, decode and serialize again to
// the same bytes, query, and merge with itself.
template <typename Sketch, typename Query>
void Check(std::string_view bytes, Query query) {
  absl::StatusOr<Sketch> sketch = Sketch::Deserialize(bytes);
  if (!sketch.ok()) return;
  std::string once;
  sketch->Serialize(&once);
  absl::StatusOr<Sketch> again = Sketch::Deserialize(once);
  if (!again.ok()) std::abort();
  std::string twice;
  again->Serialize(&twice);
  if (twice != once) std::abort();
  query(*sketch);
  Sketch copy = *sketch;
  if (!copy.Merge(*sketch).ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Check<weir::HyperLogLog>(
      bytes, [](const weir::HyperLogLog& h) { (void)h.Estimate(); });
  Check<weir::QuantileSketch>(bytes, [](const weir::QuantileSketch& q) {
    if (q.count() > 0) (void)q.Quantile(0.5);
  });
  Check<weir::QuantileHistogram>(bytes, [](const weir::QuantileHistogram& r) {
    if (r.count() > 0) (void)r.Quantile(0.99);
  });
  return 0;
}
