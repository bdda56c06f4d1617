#include "weir/internal/scratch_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace weir {
namespace internal {

absl::StatusOr<ScratchDir> ScratchDir::Create(const std::string& parent,
                                              std::string_view prefix) {
  std::error_code ec;
  std::filesystem::path dir = parent;
  if (dir.empty()) {
    dir = std::filesystem::temp_directory_path(ec);
  } else {
    std::filesystem::create_directories(dir, ec);
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("directory ", dir.string(), ": ", ec.message()));
  }
  std::string pattern =
      std::filesystem::absolute(dir / (std::string(prefix) + "-XXXXXX"), ec)
          .string();
  if (ec || mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
  }
  return ScratchDir(std::move(pattern));
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept
    : path_(std::exchange(other.path_, {})) {}

ScratchDir& ScratchDir::operator=(ScratchDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

ScratchDir::~ScratchDir() { Remove(); }

void ScratchDir::Remove() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  path_.clear();
}

int64_t PeakRssKib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    long long v = 0;
    if (std::sscanf(line, "VmHWM: %lld kB", &v) == 1) {
      kib = v;
      break;
    }
  }
  std::fclose(f);
  return kib;
}

}  // namespace internal
}  // namespace weir
