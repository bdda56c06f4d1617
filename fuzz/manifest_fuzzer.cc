// libFuzzer target: ParseManifest on arbitrary bytes (a manifest is read
// back from an object store that may hold anything). Whatever it accepts
// must serialize again and read back to the same manifest.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "weir/checkpoint_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<weir::CheckpointManifest> manifest =
      weir::ParseManifest(bytes);
  if (!manifest.ok()) return 0;
  const std::string once = weir::SerializeManifest(*manifest);
  absl::StatusOr<weir::CheckpointManifest> again = weir::ParseManifest(once);
  if (!again.ok()) std::abort();
  if (weir::SerializeManifest(*again) != once) std::abort();
  return 0;
}
