#include "weir/checkpoint_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "weir/internal/checkpoint_names.h"
#include "weir/internal/crc32c.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

using internal::AllDigits;
using internal::Hex8;
using internal::Sv;
using internal::ValidateFileName;

constexpr char kManifestSuffix[] = ".manifest";
constexpr size_t kReadChunk = size_t{1} << 20;

// ---- Local files
// ---------------------------------------------------------------

struct SizeAndCrc {
  uint64_t size = 0;
  uint32_t crc = 0;
};

// Reads `path` once: its size and CRC-32C.
absl::StatusOr<SizeAndCrc> ChecksumFile(Env* env, const std::string& path) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> in,
                        env->NewReadableFile(path));
  std::string buf(kReadChunk, '\0');
  SizeAndCrc out;
  while (true) {
    WEIR_ASSIGN_OR_RETURN(const size_t n, in->Read(buf.data(), buf.size()));
    if (n == 0) return out;
    out.size += n;
    out.crc = internal::Crc32cExtend(out.crc, std::string_view(buf.data(), n));
  }
}

std::string ParentDir(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.parent_path().string();
}

}  // namespace

// ---- PublishControl ---------------------------------------------------------

bool PublishControl::PastDeadline() const {
  return clock_ != nullptr && clock_->Now() >= deadline_;
}

bool PublishControl::Abandon() {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kCommitting) return false;
  state_ = State::kAbandoned;
  return true;
}

bool PublishControl::abandoned() {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kRunning && PastDeadline()) state_ = State::kAbandoned;
  return state_ == State::kAbandoned;
}

bool PublishControl::BeginCommit() {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kRunning && PastDeadline()) state_ = State::kAbandoned;
  if (state_ == State::kAbandoned) return false;
  state_ = State::kCommitting;
  return true;
}

bool PublishControl::committing() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kCommitting;
}

// ---- CheckpointStore
// ----------------------------------------------------------

absl::Status CheckpointStoreOptions::Validate() const {
  if (prefix.empty()) {
    return absl::InvalidArgumentError("CheckpointStoreOptions.prefix is unset");
  }
  if (absl::Status s = ValidateObjectKey(prefix); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CheckpointStoreOptions.prefix: ", s.message()));
  }
  if (scratch_dir.has_value() && scratch_dir->empty()) {
    return absl::InvalidArgumentError(
        "CheckpointStoreOptions.scratch_dir is set but empty");
  }
  if (env == nullptr) {
    return absl::InvalidArgumentError(
        "CheckpointStoreOptions.env must not be null");
  }
  return absl::OkStatus();
}

struct CheckpointStore::LocalFile {
  std::string name;
  std::string path;
  uint64_t size = 0;
  uint32_t crc = 0;
  bool sst = false;
};

CheckpointStore::CheckpointStore(ObjectStore* store,
                                 CheckpointStoreOptions options)
    : store_(store), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Create(
    ObjectStore* store, CheckpointStoreOptions options) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("CheckpointStore: store is null");
  }
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (!options.logger) {
    options.logger = [](std::string_view line) {
      std::fprintf(stderr, "weir checkpoint: %.*s\n",
                   static_cast<int>(line.size()), line.data());
    };
  }
  return std::unique_ptr<CheckpointStore>(
      new CheckpointStore(store, std::move(options)));
}

void CheckpointStore::Log(const std::string& line) const {
  options_.logger(line);
}

std::string CheckpointStore::CheckpointKey(uint64_t id) const {
  return absl::StrFormat("%s/checkpoints/%020u%s", options_.prefix, id,
                         kManifestSuffix);
}

std::string CheckpointStore::SavepointKey(std::string_view name) const {
  return absl::StrCat(options_.prefix, "/savepoints/", Sv(name),
                      kManifestSuffix);
}

std::string CheckpointStore::FileKey(const ManifestFile& file) const {
  return absl::StrCat(options_.prefix, "/", file.object_key);
}

CheckpointStoreStats CheckpointStore::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

absl::Status CheckpointStore::LoadKnownFilesLocked() {
  if (known_loaded_) return absl::OkStatus();
  const std::string list_prefix = absl::StrCat(options_.prefix, "/files/");
  WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                        store_->List(list_prefix));
  known_files_.clear();
  for (const ObjectInfo& o : objects) {
    // Count an object as held only if its size is the one its name says.
    std::string_view rest(o.key);
    rest.remove_prefix(list_prefix.size());
    if (rest.size() < 10 || rest[8] != '-') continue;
    rest.remove_prefix(9);
    const size_t dash = rest.find('-');
    uint64_t size;
    if (dash == std::string_view::npos ||
        !absl::SimpleAtoi(Sv(rest.substr(0, dash)), &size) || size != o.size) {
      continue;
    }
    known_files_[o.key.substr(options_.prefix.size() + 1)] = o.size;
  }
  known_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CheckpointStore::LocalFile>>
CheckpointStore::ScanLocalDir(const std::string& dir) {
  Env* const env = options_.env;
  WEIR_ASSIGN_OR_RETURN(const std::vector<std::string> names,
                        env->ListDirectory(dir));
  std::vector<LocalFile> files;
  absl::flat_hash_map<std::string, uint32_t> seen_crcs;
  for (const std::string& name : names) {
    LocalFile f;
    f.name = name;
    f.path = absl::StrCat(dir, "/", name);
    WEIR_ASSIGN_OR_RETURN(const FileStat st, env->Stat(f.path));
    if (st.type != FileType::kRegular) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint directory ", dir, " holds ", name,
                       ", which is not a regular file"));
    }
    if (absl::Status s = ValidateFileName(name); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint directory ", dir, ": ", s.message()));
    }
    f.sst = absl::EndsWith(name, ".sst");
    // SST files are immutable and hard-linked from one checkpoint to the
    // next: the same inode with the same size and mtime is the same bytes.
    const std::string identity =
        absl::StrCat(st.device, ":", st.inode, ":", st.size, ":",
                     absl::ToUnixNanos(st.modified), ":", name);
    auto cached = crc_cache_.find(identity);
    if (f.sst && cached != crc_cache_.end()) {
      f.size = st.size;
      f.crc = cached->second;
    } else {
      WEIR_ASSIGN_OR_RETURN(const SizeAndCrc sc, ChecksumFile(env, f.path));
      f.size = sc.size;
      f.crc = sc.crc;
    }
    if (f.sst && st.size == f.size) seen_crcs[identity] = f.crc;
    files.push_back(std::move(f));
  }
  crc_cache_ = std::move(seen_crcs);
  // SST files first (the bulk), then the small files, each by name.
  std::sort(files.begin(), files.end(),
            [](const LocalFile& a, const LocalFile& b) {
              if (a.sst != b.sst) return a.sst;
              return a.name < b.name;
            });
  return files;
}

absl::StatusOr<PublishResult> CheckpointStore::Publish(
    const std::string& local_dir, const CheckpointMetadata& metadata,
    PublishControl* control) {
  const uint64_t id = metadata.checkpoint_id;
  absl::MutexLock op_lock(&op_mu_);
  const absl::Time start = absl::Now();
  const std::string manifest_key = CheckpointKey(id);
  WEIR_ASSIGN_OR_RETURN(bool exists, store_->Exists(manifest_key));
  if (exists) {
    return absl::AlreadyExistsError(absl::StrCat(
        "checkpoint ", id, " is already published under ", options_.prefix));
  }
  WEIR_RETURN_IF_ERROR(LoadKnownFilesLocked());
  WEIR_ASSIGN_OR_RETURN(std::vector<LocalFile> files, ScanLocalDir(local_dir));
  PublishResult result;
  const absl::Time scanned = absl::Now();
  result.scan_time = scanned - start;

  options_.env->ReachedStep("before_upload");
  auto abandoned_error = [&] {
    return absl::CancelledError(absl::StrCat(
        "checkpoint ", id, " abandoned before its manifest was written"));
  };
  CheckpointManifest& manifest = result.manifest;
  manifest.metadata = metadata;
  for (const LocalFile& f : files) {
    if (control != nullptr && control->abandoned()) return abandoned_error();
    ManifestFile mf;
    mf.name = f.name;
    mf.size = f.size;
    mf.crc32c = f.crc;
    mf.object_key = FileObjectKey(f.crc, f.size, f.name);
    if (known_files_.contains(mf.object_key)) {
      ++result.files_reused;
      result.bytes_reused += f.size;
    } else {
      WEIR_RETURN_IF_ERROR(store_->PutFile(FileKey(mf), f.path));
      known_files_[mf.object_key] = f.size;
      ++result.files_uploaded;
      result.bytes_uploaded += f.size;
      if (result.files_uploaded == 1) options_.env->ReachedStep("mid_upload");
    }
    manifest.files.push_back(std::move(mf));
  }
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const ManifestFile& a, const ManifestFile& b) {
              return a.name < b.name;
            });
  const absl::Time uploaded = absl::Now();
  result.upload_time = uploaded - scanned;
  options_.env->ReachedStep("after_upload");

  if (control != nullptr && !control->BeginCommit()) return abandoned_error();
  manifest.created = absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
  WEIR_RETURN_IF_ERROR(store_->Put(manifest_key, SerializeManifest(manifest)));
  options_.env->ReachedStep("after_manifest");
  result.manifest_time = absl::Now() - uploaded;
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.checkpoints_published;
    stats_.files_uploaded += result.files_uploaded;
    stats_.bytes_uploaded += result.bytes_uploaded;
    stats_.files_reused += result.files_reused;
  }
  return result;
}

absl::StatusOr<std::vector<uint64_t>> CheckpointStore::ListCheckpoints() {
  const std::string list_prefix =
      absl::StrCat(options_.prefix, "/checkpoints/");
  WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                        store_->List(list_prefix));
  std::vector<uint64_t> ids;
  for (const ObjectInfo& o : objects) {
    std::string_view rest(o.key);
    rest.remove_prefix(list_prefix.size());
    uint64_t id;
    if (rest.size() != 20 + std::strlen(kManifestSuffix) ||
        !absl::EndsWith(Sv(rest), kManifestSuffix) ||
        !AllDigits(rest.substr(0, 20)) ||
        !absl::SimpleAtoi(Sv(rest.substr(0, 20)), &id)) {
      continue;
    }
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::StatusOr<std::vector<std::string>> CheckpointStore::ListSavepoints() {
  const std::string list_prefix = absl::StrCat(options_.prefix, "/savepoints/");
  WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                        store_->List(list_prefix));
  std::vector<std::string> names;
  for (const ObjectInfo& o : objects) {
    std::string_view rest(o.key);
    rest.remove_prefix(list_prefix.size());
    if (!absl::EndsWith(Sv(rest), kManifestSuffix)) continue;
    rest.remove_suffix(std::strlen(kManifestSuffix));
    if (!ValidateSavepointName(rest).ok()) continue;
    names.emplace_back(rest);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<uint64_t> CheckpointStore::NextCheckpointId() {
  WEIR_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ListCheckpoints());
  return ids.empty() ? 1 : ids.back() + 1;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::ReadManifestKey(
    const std::string& key) {
  WEIR_ASSIGN_OR_RETURN(std::string bytes, store_->Get(key));
  absl::StatusOr<CheckpointManifest> m = ParseManifest(bytes);
  if (!m.ok()) {
    return absl::Status(m.status().code(),
                        absl::StrCat(key, ": ", m.status().message()));
  }
  return m;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::ReadCheckpoint(
    uint64_t id) {
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        ReadManifestKey(CheckpointKey(id)));
  if (m.metadata.checkpoint_id != id) {
    return absl::DataLossError(absl::StrCat(CheckpointKey(id),
                                            ": manifest says checkpoint ",
                                            m.metadata.checkpoint_id));
  }
  return m;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::ReadSavepoint(
    std::string_view name) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        ReadManifestKey(SavepointKey(name)));
  if (m.savepoint_name != std::string(name)) {
    return absl::DataLossError(
        absl::StrCat(SavepointKey(name), ": manifest names another savepoint"));
  }
  return m;
}

absl::StatusOr<VerifyReport> CheckpointStore::Verify(
    const CheckpointManifest& manifest) {
  std::string base = options_.scratch_dir.value_or("");
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  Env* const env = options_.env;
  const std::string scratch =
      absl::StrCat(base, "/weir-verify-", getpid(), "-",
                   absl::Hex(absl::Uniform<uint64_t>(absl::BitGen())));
  WEIR_RETURN_IF_ERROR(env->CreateDirectory(scratch));
  VerifyReport report;
  absl::Status status;
  for (const ManifestFile& f : manifest.files) {
    const std::string local = absl::StrCat(scratch, "/", f.name);
    const std::string key = FileKey(f);
    absl::Status got = store_->GetFile(key, local);
    if (absl::IsNotFound(got)) {
      report.problems.push_back(
          {f.name, absl::NotFoundError(absl::StrCat(key, " is missing"))});
      continue;
    }
    if (!got.ok()) {
      status = got;
      break;
    }
    absl::StatusOr<SizeAndCrc> sc = ChecksumFile(env, local);
    RemoveTree(env, local).IgnoreError();
    if (!sc.ok()) {
      status = sc.status();
      break;
    }
    ++report.files_checked;
    report.bytes_checked += sc->size;
    if (sc->size != f.size) {
      report.problems.push_back(
          {f.name, absl::DataLossError(absl::StrCat(
                       key, " has ", sc->size, " bytes, expected ", f.size))});
    } else if (sc->crc != f.crc32c) {
      report.problems.push_back({f.name, absl::DataLossError(absl::StrCat(
                                             key, " has crc32c ", Hex8(sc->crc),
                                             ", expected ", Hex8(f.crc32c)))});
    }
  }
  RemoveTree(env, scratch).IgnoreError();
  WEIR_RETURN_IF_ERROR(status);
  return report;
}

absl::Status CheckpointStore::DownloadVerified(
    const CheckpointManifest& manifest, const std::string& dir) {
  Env* const env = options_.env;
  const std::string staging = absl::StrCat(dir, ".restoring");
  WEIR_RETURN_IF_ERROR(RemoveTree(env, staging));
  WEIR_RETURN_IF_ERROR(CreateDirectories(env, staging));
  auto fetch_all = [&]() -> absl::Status {
    for (const ManifestFile& f : manifest.files) {
      const std::string local = absl::StrCat(staging, "/", f.name);
      const std::string key = FileKey(f);
      absl::Status got = store_->GetFile(key, local);
      if (absl::IsNotFound(got)) {
        return absl::NotFoundError(
            absl::StrCat("file ", f.name, " (", key, ") is missing"));
      }
      WEIR_RETURN_IF_ERROR(got);
      WEIR_ASSIGN_OR_RETURN(SizeAndCrc sc, ChecksumFile(env, local));
      if (sc.size != f.size) {
        return absl::DataLossError(absl::StrCat("file ", f.name, " (", key,
                                                ") has ", sc.size,
                                                " bytes, expected ", f.size));
      }
      if (sc.crc != f.crc32c) {
        return absl::DataLossError(absl::StrCat("file ", f.name, " (", key,
                                                ") has crc32c ", Hex8(sc.crc),
                                                ", expected ", Hex8(f.crc32c)));
      }
    }
    return absl::OkStatus();
  };
  absl::Status status = fetch_all();
  if (status.ok()) status = env->Rename(staging, dir);
  if (!status.ok()) RemoveTree(env, staging).IgnoreError();
  return status;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreManifest(
    const std::string& what, const std::string& manifest_key,
    const std::string& local_dir) {
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m, ReadManifestKey(manifest_key));
  absl::Status s = DownloadVerified(m, local_dir);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  }
  return m;
}

namespace {

absl::Status CheckRestoreTarget(Env* env, const std::string& local_dir) {
  if (local_dir.empty()) {
    return absl::InvalidArgumentError("restore: empty local directory");
  }
  WEIR_ASSIGN_OR_RETURN(const bool exists, PathExists(env, local_dir));
  if (exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("restore target ", local_dir, " already exists"));
  }
  return CreateDirectories(env, ParentDir(local_dir));
}

}  // namespace

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreLatest(
    const std::string& local_dir) {
  WEIR_RETURN_IF_ERROR(CheckRestoreTarget(options_.env, local_dir));
  WEIR_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ListCheckpoints());
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    const uint64_t id = *it;
    absl::StatusOr<CheckpointManifest> m = RestoreManifest(
        absl::StrCat("checkpoint ", id), CheckpointKey(id), local_dir);
    if (m.ok() && m->metadata.checkpoint_id != id) {
      m = absl::DataLossError(absl::StrCat("checkpoint ", id,
                                           ": manifest says checkpoint ",
                                           m->metadata.checkpoint_id));
      RemoveTree(options_.env, local_dir).IgnoreError();
    }
    if (m.ok()) {
      absl::MutexLock lock(&stats_mu_);
      ++stats_.restores;
      return m;
    }
    if (!absl::IsDataLoss(m.status()) && !absl::IsNotFound(m.status())) {
      return m.status();
    }
    {
      absl::MutexLock lock(&stats_mu_);
      ++stats_.restore_fallbacks;
    }
    Log(absl::StrCat("restore of ", options_.prefix, ": skipping checkpoint ",
                     id, ": ", m.status().message()));
  }
  return absl::NotFoundError(absl::StrCat(
      "no valid checkpoint under ", options_.prefix, " in ", store_->uri()));
}

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreCheckpoint(
    uint64_t id, const std::string& local_dir) {
  WEIR_RETURN_IF_ERROR(CheckRestoreTarget(options_.env, local_dir));
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        RestoreManifest(absl::StrCat("checkpoint ", id),
                                        CheckpointKey(id), local_dir));
  absl::MutexLock lock(&stats_mu_);
  ++stats_.restores;
  return m;
}

absl::StatusOr<CheckpointManifest> CheckpointStore::RestoreSavepoint(
    std::string_view name, const std::string& local_dir) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  WEIR_RETURN_IF_ERROR(CheckRestoreTarget(options_.env, local_dir));
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m,
                        RestoreManifest(absl::StrCat("savepoint ", Sv(name)),
                                        SavepointKey(name), local_dir));
  absl::MutexLock lock(&stats_mu_);
  ++stats_.restores;
  return m;
}

absl::Status CheckpointStore::Savepoint(std::string_view name,
                                        uint64_t checkpoint_id) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  absl::MutexLock op_lock(&op_mu_);
  const std::string key = SavepointKey(name);
  WEIR_ASSIGN_OR_RETURN(bool exists, store_->Exists(key));
  if (exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("savepoint ", Sv(name), " already exists"));
  }
  WEIR_ASSIGN_OR_RETURN(CheckpointManifest m, ReadCheckpoint(checkpoint_id));
  WEIR_ASSIGN_OR_RETURN(VerifyReport report, Verify(m));
  if (!report.ok()) {
    return absl::DataLossError(
        absl::StrCat("savepoint ", Sv(name), ": checkpoint ", checkpoint_id,
                     " does not verify: ", report.problems[0].error.message()));
  }
  m.savepoint_name = std::string(name);
  return store_->Put(key, SerializeManifest(m));
}

absl::Status CheckpointStore::DeleteSavepoint(std::string_view name) {
  WEIR_RETURN_IF_ERROR(ValidateSavepointName(name));
  absl::MutexLock op_lock(&op_mu_);
  const std::string key = SavepointKey(name);
  WEIR_ASSIGN_OR_RETURN(bool exists, store_->Exists(key));
  if (!exists) {
    return absl::NotFoundError(absl::StrCat("no savepoint ", Sv(name)));
  }
  return store_->Delete(key);
}

absl::StatusOr<RetainResult> CheckpointStore::Retain(int n) {
  if (n < 1) {
    return absl::InvalidArgumentError("Retain: n must be at least 1");
  }
  absl::MutexLock op_lock(&op_mu_);
  RetainResult result;
  absl::flat_hash_set<std::string> referenced;
  // A manifest whose file list cannot be read (unknown version, corrupt
  // savepoint) makes collecting files unsafe.
  absl::Status collect_blocked;

  WEIR_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ListCheckpoints());
  std::vector<uint64_t> doomed;
  int valid = 0;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    if (valid >= n) {
      doomed.push_back(*it);
      continue;
    }
    absl::StatusOr<CheckpointManifest> m = ReadCheckpoint(*it);
    if (m.ok()) {
      ++valid;
      for (const ManifestFile& f : m->files) referenced.insert(f.object_key);
    } else if (absl::IsDataLoss(m.status())) {
      Log(absl::StrCat(
          "retain: checkpoint ", *it,
          " is corrupt and protects no files: ", m.status().message()));
    } else if (absl::IsFailedPrecondition(m.status())) {
      collect_blocked = m.status();
    } else if (!absl::IsNotFound(m.status())) {
      return m.status();
    }
  }
  WEIR_ASSIGN_OR_RETURN(std::vector<std::string> savepoints, ListSavepoints());
  for (const std::string& name : savepoints) {
    absl::StatusOr<CheckpointManifest> m = ReadSavepoint(name);
    if (m.ok()) {
      for (const ManifestFile& f : m->files) referenced.insert(f.object_key);
    } else if (absl::IsDataLoss(m.status()) ||
               absl::IsFailedPrecondition(m.status())) {
      collect_blocked = absl::Status(
          m.status().code(),
          absl::StrCat("savepoint ", name,
                       " cannot be read, so no files were collected: ",
                       m.status().message()));
    } else if (!absl::IsNotFound(m.status())) {
      return m.status();
    }
  }

  for (uint64_t id : doomed) {
    WEIR_RETURN_IF_ERROR(store_->Delete(CheckpointKey(id)));
    ++result.manifests_deleted;
  }
  if (collect_blocked.ok()) {
    const std::string files_prefix = absl::StrCat(options_.prefix, "/files/");
    WEIR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                          store_->List(files_prefix));
    for (const ObjectInfo& o : objects) {
      const std::string rel = o.key.substr(options_.prefix.size() + 1);
      if (referenced.contains(rel)) continue;
      // Forget it first: if the delete fails half-way, the next Publish
      // uploads the file again instead of trusting it.
      known_files_.erase(rel);
      WEIR_RETURN_IF_ERROR(store_->Delete(o.key));
      ++result.files_deleted;
      result.bytes_deleted += o.size;
    }
  } else {
    Log(absl::StrCat("retain: ", collect_blocked.message()));
  }
  {
    absl::MutexLock lock(&stats_mu_);
    stats_.manifests_deleted += result.manifests_deleted;
    stats_.files_deleted += result.files_deleted;
  }
  WEIR_RETURN_IF_ERROR(collect_blocked);
  return result;
}

}  // namespace weir
