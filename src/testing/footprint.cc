#include "weir/testing/footprint.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace weir {
namespace testing {

double HeapBytesInUse() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
}

const char* AllocatorName() {
  // jemalloc's control interface, which glibc does not have.
  return dlsym(RTLD_DEFAULT, "mallctl") != nullptr ? "jemalloc" : "glibc";
}

double ProcStatusMb(std::string_view field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) {
      absl::string_view value(line);
      value.remove_prefix(prefix.size());
      if (absl::EndsWith(value, "kB")) value.remove_suffix(2);
      int64_t kb = 0;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &kb)) break;
      return static_cast<double>(kb) / 1024.0;
    }
  }
  return -1;
}

}  // namespace testing
}  // namespace weir
