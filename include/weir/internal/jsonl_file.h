// -----------------------------------------------------------------------------
// File: internal/jsonl_file.h
// -----------------------------------------------------------------------------
//
// The local-file side of weir's JSON-lines files (the FileSink's feature
// file and the FileDeadLetterQueue's dead-letter file): one JSON object per
// line, appended by one writer, read back whole.
//
// Writing: `JsonlAppendFile::Open` opens (creating) the file for appending
// through an `Env` and cuts a last line that has no newline, the trace of a
// crash mid-write, so every line in the file is complete. Lines are
// collected in a pending buffer; `Append` hands the buffer to the file once
// it reaches `buffer_bytes`, `Flush` writes the rest and optionally fsyncs,
// `Close` writes what it can and closes. A write that fails part-way (a full
// disk) is cut off the file again, so the file never holds a torn line that
// a later write would continue; the lines stay pending.
//
// Reading: `ReadWholeFile` reads the file (kNotFound if it does not exist);
// `ForEachCompleteLine` walks its lines, skipping a torn last line, with the
// 1-based line number for error messages.
//
// Errors come from the Env (`ErrnoToStatus` in env.h): a full disk is
// kResourceExhausted naming the file.
//
// Threading: a JsonlAppendFile is not synchronized; the caller serializes
// the calls (FileSink and FileDeadLetterQueue hold their mutex).
//
// Example:
//   WEIR_ASSIGN_OR_RETURN(auto file, weir::internal::JsonlAppendFile::Open(
//                                        weir::Env::Default(), path));
//   WEIR_RETURN_IF_ERROR(file->Append("{\"a\":1}\n", /*buffer_bytes=*/1 <<
//   16)); WEIR_RETURN_IF_ERROR(file->Flush(/*fsync=*/true)); file->Close();
#ifndef WEIR_INTERNAL_JSONL_FILE_H_
#define WEIR_INTERNAL_JSONL_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/env.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

// ---- writing ----------------------------------------------------------------

class JsonlAppendFile {
 public:
  // Opens `path` for appending (created with mode 0644 if missing) and cuts
  // a torn last line.
  static absl::StatusOr<std::unique_ptr<JsonlAppendFile>> Open(
      Env* env, const std::string& path);

  // Closes (see Close).
  ~JsonlAppendFile();

  // Adds `lines` to the pending buffer, writing once it holds
  // `buffer_bytes` or more. If a full buffer left by an earlier call still
  // cannot be written, the error is returned and `lines` are not taken (the
  // buffer stays bounded). Otherwise `lines` are taken and OK is returned;
  // a failure to write them now leaves them pending and is reported by a
  // later call.
  absl::Status Append(std::string_view lines, size_t buffer_bytes);

  // Writes every pending line, then fsyncs if `fsync`. A failed fsync is
  // kAborted: the kernel may have dropped the unsynced pages, so only a
  // replay from the last checkpoint rewrites them for sure.
  absl::Status Flush(bool fsync);

  // Writes what is pending (without fsync, errors ignored) and closes.
  void Close();

  const std::string& pending() const { return pending_; }

 private:
  JsonlAppendFile(Env* env, std::string path,
                  std::unique_ptr<WritableFile> file, uint64_t size)
      : env_(env),
        path_(std::move(path)),
        file_(std::move(file)),
        size_(size) {}

  // Writes the pending buffer; on failure cuts what part of it reached the
  // file and keeps it all pending.
  absl::Status WritePending();
  // Cuts the file back to size_ if a failed write left bytes past it.
  absl::Status CutTornWrite();

  Env* const env_;
  const std::string path_;
  std::unique_ptr<WritableFile> file_;  // null once closed
  uint64_t size_;                       // bytes of complete lines in the file
  bool torn_ = false;                   // the file may hold bytes past size_
  std::string pending_;
};

// Cuts the bytes after the last newline of the file at `path` (all of them
// if there is no newline) and returns the size left. A file that ends in a
// newline is untouched; a missing file is size 0.
absl::StatusOr<uint64_t> TruncateTornTail(Env* env, const std::string& path);

// ---- reading ----------------------------------------------------------------

// The whole content of `path`, read through `env`. A missing file is
// kNotFound "no <kind> file <path>".
absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          std::string_view kind,
                                          Env* env = Env::Default());

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
