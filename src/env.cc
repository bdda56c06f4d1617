#include "weir/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

using internal::Sv;

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(std::string_view data) override {
    if (fd_ < 0) return ErrnoToStatus(EBADF, "write", path_);
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "write", path_);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (fd_ < 0) return ErrnoToStatus(EBADF, "fsync", path_);
    if (::fsync(fd_) != 0) return ErrnoToStatus(errno, "fsync", path_);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return ErrnoToStatus(EBADF, "close", path_);
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoToStatus(errno, "close", path_);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  int fd_;
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    while (true) {
      const ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoToStatus(errno, "read", path_);
    }
  }

  absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    while (true) {
      const ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(offset));
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoToStatus(errno, "read", path_);
    }
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, WriteMode mode) override {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    switch (mode) {
      case WriteMode::kCreateNew:
        flags |= O_EXCL;
        break;
      case WriteMode::kTruncate:
        flags |= O_TRUNC;
        break;
      case WriteMode::kAppend:
        flags |= O_APPEND;
        break;
    }
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return ErrnoToStatus(errno, "create", path);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(
      const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "open", path);
    return std::make_unique<PosixReadableFile>(path, fd);
  }

  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      return ErrnoToStatus(errno, "stat", path);
    }
    FileStat out;
    out.type = S_ISREG(st.st_mode)   ? FileType::kRegular
               : S_ISDIR(st.st_mode) ? FileType::kDirectory
                                     : FileType::kOther;
    out.size = static_cast<uint64_t>(st.st_size);
    out.modified = absl::TimeFromTimespec(st.st_mtim);
    out.device = static_cast<uint64_t>(st.st_dev);
    out.inode = static_cast<uint64_t>(st.st_ino);
    return out;
  }

  absl::StatusOr<std::vector<std::string>> ListDirectory(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoToStatus(errno, "list", dir);
    std::vector<std::string> names;
    while (true) {
      errno = 0;
      const dirent* e = ::readdir(d);
      if (e == nullptr) break;
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int error = errno;
    ::closedir(d);
    if (error != 0) return ErrnoToStatus(error, "list", dir);
    return names;
  }

  absl::Status CreateDirectory(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return ErrnoToStatus(errno, "create directory", dir);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDirectory(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "open directory", dir);
    const int rc = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (rc != 0) return ErrnoToStatus(error, "fsync directory", dir);
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("rename ", from, " to"), to);
    }
    return absl::OkStatus();
  }

  absl::Status LinkFile(const std::string& from,
                        const std::string& to) override {
    if (::link(from.c_str(), to.c_str()) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("link ", from, " as"), to);
    }
    return absl::OkStatus();
  }

  absl::Status Truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return ErrnoToStatus(errno, "truncate", path);
    }
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0)
      return ErrnoToStatus(errno, "remove", path);
    return absl::OkStatus();
  }

  absl::Status RemoveDirectory(const std::string& dir) override {
    if (::rmdir(dir.c_str()) != 0) {
      return ErrnoToStatus(errno, "remove directory", dir);
    }
    return absl::OkStatus();
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv();
  return env;
}

void Env::ReachedStep(std::string_view step) {}

absl::StatusCode ErrnoToStatusCode(int error) {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EEXIST:
    case ENOTEMPTY:
      return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
      return absl::StatusCode::kResourceExhausted;
    case ENAMETOOLONG:
    case EINVAL:
    case EISDIR:
    case ELOOP:
      return absl::StatusCode::kInvalidArgument;
    case EBADF:
    case EFAULT:
      return absl::StatusCode::kInternal;
    default:
      return absl::StatusCode::kUnavailable;
  }
}

absl::Status ErrnoToStatus(int error, std::string_view operation,
                           std::string_view path) {
  return absl::Status(
      ErrnoToStatusCode(error),
      absl::StrCat(Sv(operation), " ", Sv(path), ": ", std::strerror(error)));
}

absl::Status CreateDirectories(Env* env, const std::string& dir) {
  if (dir.empty()) return absl::OkStatus();
  absl::StatusOr<FileStat> st = env->Stat(dir);
  if (st.ok()) {
    if (st->type == FileType::kDirectory) return absl::OkStatus();
    // Stat does not follow a symlink: one that leads to a directory (a
    // state directory on another volume) is a directory here.
    if (st->type == FileType::kOther && env->ListDirectory(dir).ok()) {
      return absl::OkStatus();
    }
    return ErrnoToStatus(ENOTDIR, "create directory", dir);
  }
  if (!absl::IsNotFound(st.status())) return st.status();
  std::string parent = dir;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  const size_t slash = parent.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    WEIR_RETURN_IF_ERROR(CreateDirectories(env, parent.substr(0, slash)));
  }
  absl::Status created = env->CreateDirectory(dir);
  // Another thread or process may have created it meanwhile.
  if (absl::IsAlreadyExists(created)) return absl::OkStatus();
  return created;
}

absl::Status RemoveTree(Env* env, const std::string& path) {
  absl::StatusOr<FileStat> st = env->Stat(path);
  if (absl::IsNotFound(st.status())) return absl::OkStatus();
  WEIR_RETURN_IF_ERROR(st.status());
  if (st->type != FileType::kDirectory) {
    absl::Status removed = env->RemoveFile(path);
    return absl::IsNotFound(removed) ? absl::OkStatus() : removed;
  }
  absl::StatusOr<std::vector<std::string>> names = env->ListDirectory(path);
  if (absl::IsNotFound(names.status())) return absl::OkStatus();
  WEIR_RETURN_IF_ERROR(names.status());
  for (const std::string& name : *names) {
    WEIR_RETURN_IF_ERROR(RemoveTree(env, absl::StrCat(path, "/", name)));
  }
  absl::Status removed = env->RemoveDirectory(path);
  return absl::IsNotFound(removed) ? absl::OkStatus() : removed;
}

absl::StatusOr<bool> PathExists(Env* env, const std::string& path) {
  absl::StatusOr<FileStat> st = env->Stat(path);
  if (st.ok()) return true;
  if (absl::IsNotFound(st.status())) return false;
  return st.status();
}

absl::StatusOr<std::string> ReadFileToString(Env* env,
                                             const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file,
                        env->NewReadableFile(path));
  std::string data;
  char buf[1 << 16];
  while (true) {
    WEIR_ASSIGN_OR_RETURN(const size_t n, file->Read(buf, sizeof(buf)));
    if (n == 0) return data;
    data.append(buf, n);
  }
}

absl::Status WriteStringToFile(Env* env, const std::string& path,
                               std::string_view data, WriteMode mode,
                               bool sync) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                        env->NewWritableFile(path, mode));
  WEIR_RETURN_IF_ERROR(file->Append(data));
  if (sync) WEIR_RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

absl::Status CopyFile(ReadableFile& in, WritableFile& out) {
  std::string buf(size_t{1} << 20, '\0');
  while (true) {
    WEIR_ASSIGN_OR_RETURN(const size_t n, in.Read(buf.data(), buf.size()));
    if (n == 0) return absl::OkStatus();
    WEIR_RETURN_IF_ERROR(out.Append(std::string_view(buf.data(), n)));
  }
}

}  // namespace weir
