#include "weir/internal/jsonl_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

absl::Status ErrnoStatus(int error, std::string_view what,
                         const std::string& path) {
  const std::string message =
      absl::StrCat(absl::string_view(what.data(), what.size()), " ", path, ": ",
                   std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
    case ENOTDIR:
    case EACCES:
    case EPERM:
    case EISDIR:
    case EROFS:
      return absl::FailedPreconditionError(message);
    default:
      return absl::UnavailableError(message);
  }
}

// ---- writing ----------------------------------------------------------------

absl::StatusOr<int> OpenAppendFile(const std::string& path) {
  const int fd =
      open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  absl::Status repaired = TruncateTornTail(fd, path);
  if (!repaired.ok()) {
    close(fd);
    return repaired;
  }
  return fd;
}

absl::Status TruncateTornTail(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "stat", path);
  off_t pos = st.st_size;
  char buf[4096];
  while (pos > 0) {
    const off_t begin = pos > static_cast<off_t>(sizeof(buf))
                            ? pos - static_cast<off_t>(sizeof(buf))
                            : 0;
    const size_t n = static_cast<size_t>(pos - begin);
    ssize_t got;
    do {
      got = pread(fd, buf, n, begin);
    } while (got < 0 && errno == EINTR);
    if (got != static_cast<ssize_t>(n)) {
      return ErrnoStatus(got < 0 ? errno : EIO, "read", path);
    }
    // The first block read holds the last byte: a newline there means the
    // file has no torn tail.
    if (pos == st.st_size && buf[n - 1] == '\n') return absl::OkStatus();
    for (size_t k = n; k > 0; --k) {
      if (buf[k - 1] == '\n') {
        if (ftruncate(fd, begin + static_cast<off_t>(k)) != 0) {
          return ErrnoStatus(errno, "truncate", path);
        }
        return absl::OkStatus();
      }
    }
    pos = begin;
  }
  // No newline at all: the whole file is one torn line.
  if (st.st_size > 0 && ftruncate(fd, 0) != 0) {
    return ErrnoStatus(errno, "truncate", path);
  }
  return absl::OkStatus();
}

absl::Status WritePending(int fd, const std::string& path,
                          std::string* pending) {
  size_t done = 0;
  absl::Status status;
  while (done < pending->size()) {
    const ssize_t n = write(fd, pending->data() + done, pending->size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus(errno, "write", path);
      break;
    }
    done += static_cast<size_t>(n);
  }
  pending->erase(0, done);
  return status;
}

absl::Status AppendLines(int fd, const std::string& path, size_t buffer_bytes,
                         std::string_view lines, std::string* pending) {
  // Lines an earlier call could not hand over go first; if they still
  // cannot, these lines are not taken and the buffer stays bounded.
  if (!pending->empty() && pending->size() >= buffer_bytes) {
    WEIR_RETURN_IF_ERROR(WritePending(fd, path, pending));
  }
  pending->append(lines);
  if (pending->size() >= buffer_bytes) {
    // The lines are taken either way; a failure here is reported by the
    // next call.
    WritePending(fd, path, pending).IgnoreError();
  }
  return absl::OkStatus();
}

absl::Status FlushLines(int fd, const std::string& path, bool fsync,
                        std::string* pending) {
  WEIR_RETURN_IF_ERROR(WritePending(fd, path, pending));
  if (fsync && ::fsync(fd) != 0) {
    return absl::AbortedError(
        absl::StrCat("fsync ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void CloseAppendFile(int fd, const std::string& path, std::string* pending) {
  WritePending(fd, path, pending).IgnoreError();
  close(fd);
}

// ---- reading ----------------------------------------------------------------

absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          std::string_view kind) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "no ", absl::string_view(kind.data(), kind.size()), " file ", path));
    }
    return ErrnoStatus(errno, "open", path);
  }
  std::string data;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      close(fd);
      return ErrnoStatus(error, "read", path);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

}  // namespace internal
}  // namespace weir
