// -----------------------------------------------------------------------------
// File: internal/scratch_dir.h
// -----------------------------------------------------------------------------
//
// Process helpers of the service layer: a temporary directory that is
// removed with everything in it when its owner goes, and the process's peak
// resident set size.

#ifndef WEIR_INTERNAL_SCRATCH_DIR_H_
#define WEIR_INTERNAL_SCRATCH_DIR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace weir {
namespace internal {

// A fresh directory (mkdtemp), removed with its contents on destruction.
// Movable; the moved-from object removes nothing.
class ScratchDir {
 public:
  // A directory named `prefix`-XXXXXX inside `parent` (made if missing;
  // empty: the system's temporary directory, $TMPDIR or /tmp). kInternal
  // if it cannot be made.
  static absl::StatusOr<ScratchDir> Create(const std::string& parent,
                                           std::string_view prefix);

  ScratchDir() = default;
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&& other) noexcept;
  ~ScratchDir();

  // The directory's absolute path; empty for a default or moved-from one.
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  void Remove();

  std::string path_;
};

// The process's peak resident set size (VmHWM of /proc/self/status) in KiB,
// or -1 if unknown.
int64_t PeakRssKib();

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_SCRATCH_DIR_H_
