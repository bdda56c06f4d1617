// -----------------------------------------------------------------------------
// File: testing/fault_env.h
// -----------------------------------------------------------------------------
//
// A `FaultInjectionEnv` is an `EnvWrapper` (weir/env.h) for tests that
// makes the file system fail the way real ones do, without hooks in the
// library:
//   - `Fail`: operations of chosen kinds on paths containing a substring
//     fail with an errno (ENOSPC for a full disk, EIO for a broken one),
//     optionally only after a number of bytes were written to matching
//     files (a disk with that much space left: the write that crosses the
//     limit writes the part that fits, then fails);
//   - `KillAtStep`: the process sends itself SIGKILL when the library
//     reaches a named step (`Env::ReachedStep`; the checkpoint protocol's
//     steps are listed in weir/checkpoint.h).
// `Clear` removes every fault: the space returns.
//
// Threading: thread-safe, like every Env. Starts no threads.
//
// Example:
//   weir::testing::FaultInjectionEnv env;
//   env.Fail({.ops = weir::testing::kWriteOps, .path_contains = "/staging/",
//             .error = ENOSPC, .after_bytes = 4096});
//   weir::CheckpointStoreOptions options;
//   options.env = &env;
//   ...  // Publish fails with kResourceExhausted naming the file
//   env.Clear();

#ifndef WEIR_TESTING_FAULT_ENV_H_
#define WEIR_TESTING_FAULT_ENV_H_

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "weir/env.h"

namespace weir {
namespace testing {

// The operations a fault can apply to, as bits.
enum FileOp : uint32_t {
  kOpenForWrite = 1u << 0,  // NewWritableFile
  kWrite = 1u << 1,         // WritableFile::Append
  kSync = 1u << 2,          // WritableFile::Sync, SyncDirectory
  kCreateDirectory = 1u << 3,
  kRename = 1u << 4,  // matched on either path
  kLink = 1u << 5,    // matched on either path
  kTruncate = 1u << 6,
  kRemove = 1u << 7,  // RemoveFile, RemoveDirectory
  kOpenForRead = 1u << 8,
  kRead = 1u << 9,
  kList = 1u << 10,
  kStat = 1u << 11,
};

// Everything that needs free space: what fails on a full disk.
inline constexpr uint32_t kWriteOps =
    kOpenForWrite | kWrite | kSync | kCreateDirectory | kRename | kLink;

struct FileFault {
  // The FileOp bits this fault applies to. Default: kWriteOps
  uint32_t ops = kWriteOps;

  // Only paths containing this. Default: "" (every path)
  std::string path_contains;

  // The errno the operation fails with. Default: ENOSPC
  int error = ENOSPC;

  // Bytes that may still be written (kWrite) to matching files, in total,
  // before the fault starts; other operations fail only once they are
  // used up. Default: 0 (fail at once)
  uint64_t after_bytes = 0;
};

class FaultInjectionEnv : public EnvWrapper {
 public:
  // REQUIRES: target outlives this Env.
  explicit FaultInjectionEnv(Env* target = Env::Default());

  // Adds a fault; each operation checks every fault added.
  void Fail(FileFault fault);

  // Removes every fault (not the kill step).
  void Clear();

  // When ReachedStep(step) is called, writes a line naming it to stderr and
  // sends SIGKILL to the process.
  void KillAtStep(std::string step);

  // Operations failed so far.
  int64_t injected() const;

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, WriteMode mode) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(
      const std::string& path) override;
  absl::StatusOr<FileStat> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) override;
  absl::Status CreateDirectory(const std::string& dir) override;
  absl::Status SyncDirectory(const std::string& dir) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status LinkFile(const std::string& from,
                        const std::string& to) override;
  absl::Status Truncate(const std::string& path, uint64_t size) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status RemoveDirectory(const std::string& dir) override;
  void ReachedStep(std::string_view step) override;

  // For the wrapped files: the error for `op` on `path`, or OK. For kWrite,
  // `*allowed` is set to how many of `bytes` may still be written first.
  absl::Status Check(FileOp op, std::string_view operation,
                     const std::string& path, uint64_t bytes = 0,
                     uint64_t* allowed = nullptr);

 private:
  struct Fault {
    FileFault spec;
    uint64_t written = 0;  // bytes of matching writes let through
  };

  mutable absl::Mutex mu_;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> kill_step_ ABSL_GUARDED_BY(mu_);
  int64_t injected_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_FAULT_ENV_H_
