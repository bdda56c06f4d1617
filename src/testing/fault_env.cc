#include "weir/testing/fault_env.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "weir/status_macros.h"

namespace weir {
namespace testing {
namespace {

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionEnv* env, std::string path,
                    std::unique_ptr<WritableFile> target)
      : env_(env), path_(std::move(path)), target_(std::move(target)) {}

  absl::Status Append(std::string_view data) override {
    uint64_t allowed = data.size();
    absl::Status fault =
        env_->Check(kWrite, "write", path_, data.size(), &allowed);
    if (allowed > 0) {
      WEIR_RETURN_IF_ERROR(target_->Append(data.substr(0, allowed)));
    }
    return fault;
  }

  absl::Status Sync() override {
    WEIR_RETURN_IF_ERROR(env_->Check(kSync, "fsync", path_));
    return target_->Sync();
  }

  absl::Status Close() override { return target_->Close(); }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::unique_ptr<WritableFile> target_;
};

class FaultReadableFile final : public ReadableFile {
 public:
  FaultReadableFile(FaultInjectionEnv* env, std::string path,
                    std::unique_ptr<ReadableFile> target)
      : env_(env), path_(std::move(path)), target_(std::move(target)) {}

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    WEIR_RETURN_IF_ERROR(env_->Check(kRead, "read", path_));
    return target_->Read(buf, n);
  }

  absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    WEIR_RETURN_IF_ERROR(env_->Check(kRead, "read", path_));
    return target_->ReadAt(offset, buf, n);
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::unique_ptr<ReadableFile> target_;
};

}  // namespace

FaultInjectionEnv::FaultInjectionEnv(Env* target) : EnvWrapper(target) {}

void FaultInjectionEnv::Fail(FileFault fault) {
  absl::MutexLock lock(&mu_);
  faults_.push_back({std::move(fault)});
}

void FaultInjectionEnv::Clear() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
}

void FaultInjectionEnv::KillAtStep(std::string step) {
  absl::MutexLock lock(&mu_);
  kill_step_ = std::move(step);
}

int64_t FaultInjectionEnv::injected() const {
  absl::MutexLock lock(&mu_);
  return injected_;
}

absl::Status FaultInjectionEnv::Check(FileOp op, std::string_view operation,
                                      const std::string& path, uint64_t bytes,
                                      uint64_t* allowed) {
  absl::MutexLock lock(&mu_);
  if (allowed != nullptr) *allowed = bytes;
  for (Fault& f : faults_) {
    if ((f.spec.ops & op) == 0) continue;
    if (!absl::StrContains(path, f.spec.path_contains)) continue;
    const uint64_t left =
        f.spec.after_bytes > f.written ? f.spec.after_bytes - f.written : 0;
    if (op == kWrite) {
      const uint64_t fits = std::min(bytes, left);
      f.written += fits;
      if (fits == bytes) continue;
      if (allowed != nullptr) *allowed = std::min(*allowed, fits);
    } else if (left > 0) {
      continue;
    }
    ++injected_;
    return ErrnoToStatus(f.spec.error, operation, path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewWritableFile(const std::string& path, WriteMode mode) {
  WEIR_RETURN_IF_ERROR(Check(kOpenForWrite, "create", path));
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                        target()->NewWritableFile(path, mode));
  return std::make_unique<FaultWritableFile>(this, path, std::move(file));
}

absl::StatusOr<std::unique_ptr<ReadableFile>>
FaultInjectionEnv::NewReadableFile(const std::string& path) {
  WEIR_RETURN_IF_ERROR(Check(kOpenForRead, "open", path));
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file,
                        target()->NewReadableFile(path));
  return std::make_unique<FaultReadableFile>(this, path, std::move(file));
}

absl::StatusOr<FileStat> FaultInjectionEnv::Stat(const std::string& path) {
  WEIR_RETURN_IF_ERROR(Check(kStat, "stat", path));
  return target()->Stat(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectionEnv::ListDirectory(
    const std::string& dir) {
  WEIR_RETURN_IF_ERROR(Check(kList, "list", dir));
  return target()->ListDirectory(dir);
}

absl::Status FaultInjectionEnv::CreateDirectory(const std::string& dir) {
  WEIR_RETURN_IF_ERROR(Check(kCreateDirectory, "create directory", dir));
  return target()->CreateDirectory(dir);
}

absl::Status FaultInjectionEnv::SyncDirectory(const std::string& dir) {
  WEIR_RETURN_IF_ERROR(Check(kSync, "fsync directory", dir));
  return target()->SyncDirectory(dir);
}

absl::Status FaultInjectionEnv::Rename(const std::string& from,
                                       const std::string& to) {
  const std::string operation = absl::StrCat("rename ", from, " to");
  WEIR_RETURN_IF_ERROR(Check(kRename, operation, to));
  WEIR_RETURN_IF_ERROR(Check(kRename, operation, from));
  return target()->Rename(from, to);
}

absl::Status FaultInjectionEnv::LinkFile(const std::string& from,
                                         const std::string& to) {
  const std::string operation = absl::StrCat("link ", from, " as");
  WEIR_RETURN_IF_ERROR(Check(kLink, operation, to));
  WEIR_RETURN_IF_ERROR(Check(kLink, operation, from));
  return target()->LinkFile(from, to);
}

absl::Status FaultInjectionEnv::Truncate(const std::string& path,
                                         uint64_t size) {
  WEIR_RETURN_IF_ERROR(Check(kTruncate, "truncate", path));
  return target()->Truncate(path, size);
}

absl::Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  WEIR_RETURN_IF_ERROR(Check(kRemove, "remove", path));
  return target()->RemoveFile(path);
}

absl::Status FaultInjectionEnv::RemoveDirectory(const std::string& dir) {
  WEIR_RETURN_IF_ERROR(Check(kRemove, "remove directory", dir));
  return target()->RemoveDirectory(dir);
}

void FaultInjectionEnv::ReachedStep(std::string_view step) {
  bool kill;
  {
    absl::MutexLock lock(&mu_);
    kill = kill_step_.has_value() && *kill_step_ == step;
  }
  if (kill) {
    std::fprintf(stderr,
                 "weir fault env: reached step %.*s: killing the "
                 "process\n",
                 static_cast<int>(step.size()), step.data());
    std::fflush(stderr);
    raise(SIGKILL);
  }
  target()->ReachedStep(step);
}

}  // namespace testing
}  // namespace weir
