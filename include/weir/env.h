// -----------------------------------------------------------------------------
// File: env.h
// -----------------------------------------------------------------------------
//
// An `Env` is weir's one door to the local file system: every file and
// directory the library opens, writes, fsyncs, renames, links, lists or
// removes (checkpoint staging and downloads, manifests in a local store,
// the memory backend's checkpoint file, the JSON-lines sink and dead-letter
// files, the input file of a FileSource) goes through the `Env` of the
// options that asked for it. RocksDB writes its own files through its own
// Env and is not covered.
//
// `Env::Default()` is the POSIX file system. Tests and tools inject another
// one: an `EnvWrapper` forwards every call to a target Env, so a subclass
// overrides only the calls it changes (weir/testing/fault_env.h fails
// chosen operations with ENOSPC or EIO, or kills the process at a named
// step).
//
// Errors: every failed system call becomes a status through one mapping,
// `ErrnoToStatus`, whose message is "<operation> <path>: <strerror>" so an
// error always names the file, and whose code carries retry meaning:
//   ENOENT, ENOTDIR                       -> kNotFound
//   EEXIST, ENOTEMPTY                     -> kAlreadyExists
//   EACCES, EPERM, EROFS                  -> kPermissionDenied
//   ENOSPC, EDQUOT, EFBIG, EMFILE, ENFILE -> kResourceExhausted (the disk or
//                                            the process is full: retry once
//                                            space is freed)
//   ENAMETOOLONG, EINVAL, EISDIR, ELOOP   -> kInvalidArgument
//   EBADF, EFAULT                         -> kInternal (a bug in weir)
//   anything else (EIO, EAGAIN, ...)      -> kUnavailable
//
// Steps: code whose crash behaviour is documented calls `ReachedStep(name)`
// at each named step (the checkpoint protocol's are listed in
// checkpoint.h). The default Env does nothing there; a test Env can stop
// the process at one to check what a crash at that moment leaves behind.
//
// Threading: an Env is called from several threads at once (the processing
// thread and the checkpoint-upload threads) and must be thread-safe, as
// `Env::Default()` and `EnvWrapper` are. A file object returned by an Env is
// used by one thread at a time. An Env must outlive every object that was
// given it. Starts no threads.
//
// Example:
//   weir::Env* env = weir::Env::Default();
//   WEIR_ASSIGN_OR_RETURN(std::unique_ptr<weir::WritableFile> file,
//       env->NewWritableFile("/var/lib/app/x.tmp",
//       weir::WriteMode::kCreateNew));
//   WEIR_RETURN_IF_ERROR(file->Append("hello\n"));
//   WEIR_RETURN_IF_ERROR(file->Sync());
//   WEIR_RETURN_IF_ERROR(file->Close());
//   WEIR_RETURN_IF_ERROR(env->Rename("/var/lib/app/x.tmp", "/var/lib/app/x"));
//   WEIR_RETURN_IF_ERROR(env->SyncDirectory("/var/lib/app"));

#ifndef WEIR_ENV_H_
#define WEIR_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace weir {

// A file open for writing at its end. Not thread-safe.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes all of `data` at the end of the file. On failure a prefix of it
  // may have been written (a disk that fills up mid-write).
  virtual absl::Status Append(std::string_view data) = 0;

  // Makes what was appended durable (fsync).
  virtual absl::Status Sync() = 0;

  // Closes the file; later calls fail. The destructor closes a file that
  // was not closed and ignores the error.
  virtual absl::Status Close() = 0;
};

// A file open for reading. Not thread-safe.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;

  // Reads up to `n` bytes at the current position into `buf` and moves
  // past them. Returns the number read; 0 at the end of the file.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;

  // Reads up to `n` bytes at `offset` without moving the position.
  virtual absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buf,
                                        size_t n) = 0;
};

// How `NewWritableFile` opens its file.
enum class WriteMode {
  kCreateNew,  // create; kAlreadyExists if the file exists
  kTruncate,   // create, or empty an existing file
  kAppend,     // create, or keep an existing file and write at its end
};

enum class FileType { kRegular, kDirectory, kOther };

// What `Stat` says about a path (a symlink is not followed: kOther).
struct FileStat {
  FileType type = FileType::kOther;
  uint64_t size = 0;
  absl::Time modified = absl::InfinitePast();
  // Together with size and modified, the identity of the bytes: a hard
  // link shares them.
  uint64_t device = 0;
  uint64_t inode = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX file system. Never null; lives for the whole process.
  static Env* Default();

  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, WriteMode mode) = 0;
  virtual absl::StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(
      const std::string& path) = 0;

  virtual absl::StatusOr<FileStat> Stat(const std::string& path) = 0;
  // The names in `dir`, without "." and "..", in no particular order.
  virtual absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) = 0;

  // Creates one directory (mode 0755); kAlreadyExists if it exists.
  virtual absl::Status CreateDirectory(const std::string& dir) = 0;
  // fsyncs a directory, making the names created in it durable.
  virtual absl::Status SyncDirectory(const std::string& dir) = 0;
  // rename(2): atomically replaces `to` if it exists.
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // link(2): a second name for the bytes of `from`.
  virtual absl::Status LinkFile(const std::string& from,
                                const std::string& to) = 0;
  // Cuts (or extends with zeros) the file to `size` bytes.
  virtual absl::Status Truncate(const std::string& path, uint64_t size) = 0;
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Removes an empty directory.
  virtual absl::Status RemoveDirectory(const std::string& dir) = 0;

  // Called when the caller reaches the named step (see the top of this
  // file). Must return quickly. The default does nothing.
  virtual void ReachedStep(std::string_view step);
};

// An Env that forwards every call to `target`; subclass it and override the
// calls to change. Thread-safe if the target is.
class EnvWrapper : public Env {
 public:
  // REQUIRES: target != nullptr and outlives this wrapper.
  explicit EnvWrapper(Env* target) : target_(target) {}

  Env* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, WriteMode mode) override {
    return target_->NewWritableFile(path, mode);
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(
      const std::string& path) override {
    return target_->NewReadableFile(path);
  }
  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    return target_->Stat(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) override {
    return target_->ListDirectory(dir);
  }
  absl::Status CreateDirectory(const std::string& dir) override {
    return target_->CreateDirectory(dir);
  }
  absl::Status SyncDirectory(const std::string& dir) override {
    return target_->SyncDirectory(dir);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return target_->Rename(from, to);
  }
  absl::Status LinkFile(const std::string& from,
                        const std::string& to) override {
    return target_->LinkFile(from, to);
  }
  absl::Status Truncate(const std::string& path, uint64_t size) override {
    return target_->Truncate(path, size);
  }
  absl::Status RemoveFile(const std::string& path) override {
    return target_->RemoveFile(path);
  }
  absl::Status RemoveDirectory(const std::string& dir) override {
    return target_->RemoveDirectory(dir);
  }
  void ReachedStep(std::string_view step) override {
    target_->ReachedStep(step);
  }

 private:
  Env* const target_;
};

// ---- helpers built on the calls above ---------------------------------------

// The one errno-to-status mapping (see the top of this file):
// "<operation> <path>: <strerror(error)>".
absl::Status ErrnoToStatus(int error, std::string_view operation,
                           std::string_view path);

// The code of that mapping alone, for code that words its own message.
absl::StatusCode ErrnoToStatusCode(int error);

// Creates `dir` and its missing parents. OK if it exists as a directory
// or a symlink to one; a symlinked parent is followed.
absl::Status CreateDirectories(Env* env, const std::string& dir);

// Removes `path` and, if it is a directory, everything under it. OK if it
// does not exist.
absl::Status RemoveTree(Env* env, const std::string& path);

// True if `path` exists; an error other than kNotFound is returned.
absl::StatusOr<bool> PathExists(Env* env, const std::string& path);

// The whole content of `path`.
absl::StatusOr<std::string> ReadFileToString(Env* env, const std::string& path);

// Writes `data` as the whole content of `path`, opened with `mode`;
// fsyncs it before closing if `sync`.
absl::Status WriteStringToFile(Env* env, const std::string& path,
                               std::string_view data, WriteMode mode,
                               bool sync);

// Copies everything `in` has left to `out`.
absl::Status CopyFile(ReadableFile& in, WritableFile& out);

}  // namespace weir

#endif  // WEIR_ENV_H_
