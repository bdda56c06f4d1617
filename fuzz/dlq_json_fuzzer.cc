// libFuzzer target: ParseDeadLetterJson on arbitrary bytes (a DLQ file is
// input that replay tools read back). Whatever it accepts must encode again
// and read back to the same record.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "absl/status/statusor.h"
#include "weir/dlq.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<weir::DeadLetterRecord> record =
      weir::ParseDeadLetterJson(text);
  if (!record.ok()) return 0;
  absl::StatusOr<weir::DeadLetterRecord> again =
      weir::ParseDeadLetterJson(record->ToJson());
  if (!again.ok()) std::abort();
  // Bytes and numbers round-trip exactly; text fields too unless they held
  // bytes that are not UTF-8 (those become U+FFFD).
  if (again->key != record->key || again->value != record->value ||
      again->category != record->category ||
      again->partition != record->partition ||
      again->offset != record->offset ||
      again->timestamp != record->timestamp ||
      again->failed_at != record->failed_at) {
    std::abort();
  }
  return 0;
}
