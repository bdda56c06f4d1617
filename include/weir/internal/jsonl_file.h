// -----------------------------------------------------------------------------
// File: internal/jsonl_file.h
// -----------------------------------------------------------------------------
//
// The local-file side of weir's JSON-lines files (the FileSink's feature
// file and the FileDeadLetterQueue's dead-letter file): one JSON object per
// line, appended by one writer, read back whole.
//
// Writing: `OpenAppendFile` opens (creating) the file for appending and cuts
// a last line that has no newline, the trace of a crash mid-write, so every
// line in the file is complete. Lines are collected in a caller-owned
// `pending` buffer; `AppendLines` hands the buffer to the kernel once it
// reaches `buffer_bytes`, `FlushLines` writes the rest and optionally
// fsyncs, `CloseAppendFile` writes what it can and closes.
//
// Reading: `ReadWholeFile` reads the file (kNotFound if it does not exist);
// `ForEachCompleteLine` walks its lines, skipping a torn last line, with the
// 1-based line number for error messages.
//
// Errors: `ErrnoStatus` maps errno to a status code with retry meaning:
// ENOSPC/EDQUOT -> kResourceExhausted; ENOENT, ENOTDIR, EACCES, EPERM,
// EISDIR, EROFS -> kFailedPrecondition; anything else -> kUnavailable.
//
// Threading: the functions are not synchronized; the caller serializes the
// calls on one file (FileSink and FileDeadLetterQueue hold their mutex).
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(int fd, weir::internal::OpenAppendFile(path));
//   std::string pending;
//   WEIR_RETURN_IF_ERROR(weir::internal::AppendLines(
//       fd, path, /*buffer_bytes=*/1 << 16, "{\"a\":1}\n", &pending));
//   WEIR_RETURN_IF_ERROR(
//       weir::internal::FlushLines(fd, path, /*fsync=*/true, &pending));
//   weir::internal::CloseAppendFile(fd, path, &pending);

#ifndef WEIR_INTERNAL_JSONL_FILE_H_
#define WEIR_INTERNAL_JSONL_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

// "<what> <path>: <strerror(error)>" with the code described above.
absl::Status ErrnoStatus(int error, std::string_view what,
                         const std::string& path);

// ---- writing ----------------------------------------------------------------

// Opens `path` for appending (O_RDWR | O_CREAT | O_APPEND, mode 0644) and
// truncates a torn last line. Returns the descriptor; the caller closes it.
absl::StatusOr<int> OpenAppendFile(const std::string& path);

// Cuts the bytes after the last newline of the file open at `fd` (all of
// them if there is no newline). A file that ends in a newline is untouched.
absl::Status TruncateTornTail(int fd, const std::string& path);

// Writes `*pending` to `fd`, retrying on EINTR. On failure the bytes not
// written stay in `*pending` and the error is returned.
absl::Status WritePending(int fd, const std::string& path,
                          std::string* pending);

// Adds `lines` to `*pending`, writing once it holds `buffer_bytes` or more.
// If a full buffer left by an earlier call still cannot be written, the
// error is returned and `lines` are not taken (the buffer stays bounded).
// Otherwise `lines` are taken and OK is returned; a failure to write them
// now stays in `*pending` and is reported by a later call.
absl::Status AppendLines(int fd, const std::string& path, size_t buffer_bytes,
                         std::string_view lines, std::string* pending);

// Writes `*pending`, then fsyncs if `fsync`. A failed fsync is kAborted:
// the kernel may have dropped the unsynced pages, so only a replay from the
// last checkpoint rewrites them for sure.
absl::Status FlushLines(int fd, const std::string& path, bool fsync,
                        std::string* pending);

// Writes `*pending` (without fsync, errors ignored) and closes `fd`.
void CloseAppendFile(int fd, const std::string& path, std::string* pending);

// ---- reading ----------------------------------------------------------------

// The whole content of `path`, reading through EINTR. A missing file is
// kNotFound "no <kind> file <path>"; other errors map as ErrnoStatus.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          std::string_view kind);

// Calls `fn(line_number, line)` (int64_t, std::string_view without the
// newline) for each newline-terminated line of `data`, numbered from 1.
// A last line without a newline (a torn write) is skipped. Stops at, and
// returns, the first error `fn` returns.
template <typename Fn>
absl::Status ForEachCompleteLine(std::string_view data, Fn&& fn) {
  int64_t line_number = 0;
  while (!data.empty()) {
    ++line_number;
    const size_t newline = data.find('\n');
    if (newline == std::string_view::npos) break;  // a torn last line
    const std::string_view line = data.substr(0, newline);
    data.remove_prefix(newline + 1);
    WEIR_RETURN_IF_ERROR(fn(line_number, line));
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_JSONL_FILE_H_
