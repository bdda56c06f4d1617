#include "weir/internal/jsonl_file.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace internal {

// ---- writing ----------------------------------------------------------------

absl::StatusOr<uint64_t> TruncateTornTail(Env* env, const std::string& path) {
  absl::StatusOr<FileStat> st = env->Stat(path);
  if (absl::IsNotFound(st.status())) return 0;
  WEIR_RETURN_IF_ERROR(st.status());
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> in,
                        env->NewReadableFile(path));
  uint64_t pos = st->size;
  char buf[4096];
  while (pos > 0) {
    const uint64_t begin = pos > sizeof(buf) ? pos - sizeof(buf) : 0;
    const size_t n = static_cast<size_t>(pos - begin);
    size_t got = 0;
    while (got < n) {
      WEIR_ASSIGN_OR_RETURN(const size_t r,
                            in->ReadAt(begin + got, buf + got, n - got));
      if (r == 0) {
        return absl::UnavailableError(
            absl::StrCat("read ", path, ": the file shrank while being read"));
      }
      got += r;
    }
    // The first block read holds the last byte: a newline there means the
    // file has no torn tail.
    if (pos == st->size && buf[n - 1] == '\n') return st->size;
    for (size_t k = n; k > 0; --k) {
      if (buf[k - 1] == '\n') {
        WEIR_RETURN_IF_ERROR(env->Truncate(path, begin + k));
        return begin + k;
      }
    }
    pos = begin;
  }
  // No newline at all: the whole file is one torn line.
  if (st->size > 0) WEIR_RETURN_IF_ERROR(env->Truncate(path, 0));
  return 0;
}

absl::StatusOr<std::unique_ptr<JsonlAppendFile>> JsonlAppendFile::Open(
    Env* env, const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                        env->NewWritableFile(path, WriteMode::kAppend));
  WEIR_ASSIGN_OR_RETURN(const uint64_t size, TruncateTornTail(env, path));
  return std::unique_ptr<JsonlAppendFile>(
      new JsonlAppendFile(env, path, std::move(file), size));
}

JsonlAppendFile::~JsonlAppendFile() { Close(); }

absl::Status JsonlAppendFile::CutTornWrite() {
  WEIR_ASSIGN_OR_RETURN(const FileStat st, env_->Stat(path_));
  if (st.size > size_) WEIR_RETURN_IF_ERROR(env_->Truncate(path_, size_));
  torn_ = false;
  return absl::OkStatus();
}

absl::Status JsonlAppendFile::WritePending() {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  }
  // Cut the part of an earlier failed write before writing it again.
  if (torn_) WEIR_RETURN_IF_ERROR(CutTornWrite());
  if (pending_.empty()) return absl::OkStatus();
  absl::Status status = file_->Append(pending_);
  if (status.ok()) {
    size_ += pending_.size();
    pending_.clear();
    return status;
  }
  torn_ = true;
  CutTornWrite().IgnoreError();
  return status;
}

absl::Status JsonlAppendFile::Append(std::string_view lines,
                                     size_t buffer_bytes) {
  // Lines an earlier call could not hand over go first; if they still
  // cannot, these lines are not taken and the buffer stays bounded.
  if (!pending_.empty() && pending_.size() >= buffer_bytes) {
    WEIR_RETURN_IF_ERROR(WritePending());
  }
  pending_.append(lines);
  if (pending_.size() >= buffer_bytes) {
    // The lines are taken either way; a failure here is reported by the
    // next call.
    WritePending().IgnoreError();
  }
  return absl::OkStatus();
}

absl::Status JsonlAppendFile::Flush(bool fsync) {
  WEIR_RETURN_IF_ERROR(WritePending());
  if (fsync) {
    absl::Status synced = file_->Sync();
    if (!synced.ok()) return absl::AbortedError(synced.message());
  }
  return absl::OkStatus();
}

void JsonlAppendFile::Close() {
  if (file_ == nullptr) return;
  WritePending().IgnoreError();
  file_->Close().IgnoreError();
  file_.reset();
}

// ---- reading ----------------------------------------------------------------

absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          std::string_view kind, Env* env) {
  absl::StatusOr<std::string> data = ReadFileToString(env, path);
  if (absl::IsNotFound(data.status())) {
    return absl::NotFoundError(absl::StrCat(
        "no ", absl::string_view(kind.data(), kind.size()), " file ", path));
  }
  return data;
}

}  // namespace internal
}  // namespace weir
