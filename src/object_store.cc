#include "weir/object_store.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "weir/internal/string_view.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

constexpr size_t kMaxKeyBytes = 1024;
constexpr char kTempDirName[] = ".weir-tmp";

using internal::Sv;

std::string RandomSuffix() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%d-%016x", getpid(), absl::Uniform<uint64_t>(gen));
}

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos
             ? std::string(".")
             : (slash == 0 ? std::string("/") : path.substr(0, slash));
}

// Appends every regular file under `dir` (whose key prefix is `rel`, empty or
// ending in '/') whose key starts with `prefix`. Entries that vanish while
// the walk runs (a concurrent Delete) are skipped.
absl::Status Walk(Env* env, const std::string& dir, const std::string& rel,
                  std::string_view prefix, bool at_root,
                  std::vector<ObjectInfo>* out) {
  absl::StatusOr<std::vector<std::string>> names = env->ListDirectory(dir);
  if (absl::IsNotFound(names.status())) return absl::OkStatus();
  WEIR_RETURN_IF_ERROR(names.status());
  for (const std::string& name : *names) {
    if (at_root && name == kTempDirName) continue;
    std::string key = rel + name;
    // Prune subtrees that cannot contain a match.
    size_t common = std::min(key.size(), prefix.size());
    if (key.compare(0, common, prefix.substr(0, common)) != 0) continue;
    std::string path = absl::StrCat(dir, "/", name);
    absl::StatusOr<FileStat> st = env->Stat(path);
    if (absl::IsNotFound(st.status())) continue;
    WEIR_RETURN_IF_ERROR(st.status());
    if (st->type == FileType::kDirectory) {
      WEIR_RETURN_IF_ERROR(Walk(env, path, key + "/", prefix, false, out));
    } else if (st->type == FileType::kRegular &&
               absl::StartsWith(key, Sv(prefix))) {
      out->push_back({key, st->size});
    }
  }
  return absl::OkStatus();
}

// Removes temporary files older than `age` from `dir`.
void RemoveStaleTemps(Env* env, const std::string& dir, absl::Duration age) {
  absl::StatusOr<std::vector<std::string>> names = env->ListDirectory(dir);
  if (!names.ok()) return;
  const absl::Time now = absl::Now();
  for (const std::string& name : *names) {
    const std::string path = absl::StrCat(dir, "/", name);
    absl::StatusOr<FileStat> st = env->Stat(path);
    if (st.ok() && now - st->modified > age) {
      env->RemoveFile(path).IgnoreError();
    }
  }
}

// Adds `context` ("file:///root: get 'key'") in front of an error.
absl::Status InContext(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(Sv(context), ": ", status.message()));
}

}  // namespace

absl::Status ValidateObjectKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("object key is empty");
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "object key is ", key.size(), " bytes; the limit is ", kMaxKeyBytes));
  }
  if (key.find('\0') != std::string_view::npos ||
      key.find('\\') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("object key '", Sv(key), "' contains NUL or '\\'"));
  }
  bool first = true;
  for (absl::string_view segment : absl::StrSplit(Sv(key), '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "object key '", Sv(key),
          "' has an empty, '.' or '..' segment (or a leading or trailing "
          "'/')"));
    }
    if (first && segment == kTempDirName) {
      return absl::InvalidArgumentError(absl::StrCat(
          "object key '", Sv(key), "' starts with the reserved segment '",
          kTempDirName, "'"));
    }
    first = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ObjectStore::Exists(std::string_view key) {
  absl::StatusOr<uint64_t> size = Head(key);
  if (size.ok()) return true;
  if (absl::IsNotFound(size.status())) return false;
  return size.status();
}

// ---- options ----------------------------------------------------------------

absl::Status LocalDirectoryStoreOptions::Validate() const {
  if (stale_temp_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "LocalDirectoryStoreOptions.stale_temp_age must be positive");
  }
  if (env == nullptr) {
    return absl::InvalidArgumentError(
        "LocalDirectoryStoreOptions.env must not be null");
  }
  return absl::OkStatus();
}

absl::Status S3StoreOptions::Validate() const {
  auto bad = [](std::string_view field, std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3StoreOptions.", Sv(field), " ", Sv(why)));
  };
  if (endpoint.has_value() && !absl::StartsWith(*endpoint, "http://") &&
      !absl::StartsWith(*endpoint, "https://")) {
    return bad("endpoint", "must start with http:// or https://");
  }
  if (endpoint.has_value() &&
      endpoint->find_first_of("?#") != std::string::npos) {
    return bad("endpoint", "must not contain a query or fragment");
  }
  if (region.empty() ||
      region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") !=
          std::string::npos) {
    return bad("region", "must be non-empty [a-z0-9-]+, e.g. us-east-1");
  }
  if (access_key_id.has_value() && access_key_id->empty()) {
    return bad("access_key_id", "is set but empty");
  }
  if (secret_access_key.has_value() && secret_access_key->empty()) {
    return bad("secret_access_key", "is set but empty");
  }
  if (connect_timeout <= absl::ZeroDuration()) {
    return bad("connect_timeout", "must be positive");
  }
  if (request_timeout <= absl::ZeroDuration()) {
    return bad("request_timeout", "must be positive");
  }
  if (max_attempts < 1) return bad("max_attempts", "must be at least 1");
  if (initial_backoff < absl::ZeroDuration()) {
    return bad("initial_backoff", "must not be negative");
  }
  if (max_backoff < initial_backoff) {
    return bad("max_backoff", "must be at least initial_backoff");
  }
  if (!sleep) return bad("sleep", "must be set");
  if (multipart_threshold == 0) {
    return bad("multipart_threshold", "must be positive");
  }
  if (part_size < (uint64_t{5} << 20) || part_size > (uint64_t{5} << 30)) {
    return bad("part_size", "must be between 5 MiB and 5 GiB (S3's limits)");
  }
  if (list_page_size < 1 || list_page_size > 1000) {
    return bad("list_page_size", "must be between 1 and 1000");
  }
  if (env == nullptr) return bad("env", "must not be null");
  return absl::OkStatus();
}

// ---- LocalDirectoryStore ----------------------------------------------------

absl::StatusOr<std::unique_ptr<LocalDirectoryStore>>
LocalDirectoryStore::Create(std::string root,
                            const LocalDirectoryStoreOptions& options) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (root.empty()) {
    return absl::InvalidArgumentError("LocalDirectoryStore: root is empty");
  }
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(root, ec);
  if (ec) return ErrnoToStatus(ec.value(), "absolute path of", root);
  std::string path = abs.lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();

  Env* const env = options.env;
  absl::StatusOr<FileStat> st = env->Stat(path);
  if (absl::IsNotFound(st.status()) && options.create_if_missing) {
    WEIR_RETURN_IF_ERROR(CreateDirectories(env, path));
  } else if (!st.ok()) {
    return InContext(st.status(), "object store root");
  } else if (st->type != FileType::kDirectory) {
    return absl::FailedPreconditionError(
        absl::StrCat("object store root ", path, " is not a directory"));
  }
  RemoveStaleTemps(env, absl::StrCat(path, "/", kTempDirName),
                   options.stale_temp_age);
  return std::unique_ptr<LocalDirectoryStore>(
      new LocalDirectoryStore(std::move(path), options));
}

std::string LocalDirectoryStore::uri() const {
  return absl::StrCat("file://", root_);
}

absl::Status LocalDirectoryStore::WriteAtomically(
    std::string_view key,
    const std::function<absl::Status(WritableFile& file)>& write) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  Env* const env = options_.env;
  const std::string context = absl::StrCat(uri(), ": write '", Sv(key), "'");
  const std::string temp_dir = absl::StrCat(root_, "/", kTempDirName);
  WEIR_RETURN_IF_ERROR(InContext(CreateDirectories(env, temp_dir), context));
  const std::string temp = absl::StrCat(temp_dir, "/", RandomSuffix());
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env->NewWritableFile(temp, WriteMode::kCreateNew);
  if (!file.ok()) return InContext(file.status(), context);

  absl::Status status = write(**file);
  if (status.ok() && options_.sync) status = (*file)->Sync();
  if (status.ok()) status = (*file)->Close();
  file->reset();
  const std::string target = absl::StrCat(root_, "/", Sv(key));
  const std::string parent = ParentOf(target);
  // A concurrent Delete may remove the (then empty) parent directory
  // between mkdir and rename; try again a few times.
  for (int attempt = 0; status.ok(); ++attempt) {
    status = CreateDirectories(env, parent);
    if (!status.ok()) break;
    status = env->Rename(temp, target);
    if (status.ok()) {
      if (options_.sync) status = env->SyncDirectory(parent);
      return InContext(status, context);
    }
    if (!absl::IsNotFound(status) || attempt >= 5) break;
    status = absl::OkStatus();
  }
  env->RemoveFile(temp).IgnoreError();
  return InContext(status, context);
}

absl::Status LocalDirectoryStore::Put(std::string_view key,
                                      std::string_view bytes) {
  return WriteAtomically(
      key, [&](WritableFile& file) { return file.Append(bytes); });
}

absl::Status LocalDirectoryStore::PutFile(std::string_view key,
                                          const std::string& local_path) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> in,
                        options_.env->NewReadableFile(local_path));
  return WriteAtomically(
      key, [&](WritableFile& file) { return CopyFile(*in, file); });
}

// Opens the object `key` for reading; kNotFound if it is not a regular file.
absl::StatusOr<std::unique_ptr<ReadableFile>> LocalDirectoryStore::OpenObject(
    std::string_view key, std::string_view context) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string path = absl::StrCat(root_, "/", Sv(key));
  absl::StatusOr<FileStat> st = options_.env->Stat(path);
  if (!st.ok()) return InContext(st.status(), context);
  if (st->type != FileType::kRegular) {
    return absl::NotFoundError(absl::StrCat(Sv(context), ": no such object"));
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> in =
      options_.env->NewReadableFile(path);
  if (!in.ok()) return InContext(in.status(), context);
  return in;
}

absl::StatusOr<std::string> LocalDirectoryStore::Get(std::string_view key) {
  const std::string context = absl::StrCat(uri(), ": get '", Sv(key), "'");
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> in,
                        OpenObject(key, context));
  std::string out;
  char buf[64 * 1024];
  while (true) {
    absl::StatusOr<size_t> n = in->Read(buf, sizeof(buf));
    if (!n.ok()) return InContext(n.status(), context);
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

absl::Status LocalDirectoryStore::GetFile(std::string_view key,
                                          const std::string& local_path) {
  const std::string context = absl::StrCat(uri(), ": get '", Sv(key), "'");
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> in,
                        OpenObject(key, context));
  Env* const env = options_.env;
  const std::string temp =
      absl::StrCat(local_path, ".weir-tmp-", RandomSuffix());
  absl::StatusOr<std::unique_ptr<WritableFile>> out =
      env->NewWritableFile(temp, WriteMode::kCreateNew);
  if (!out.ok()) return InContext(out.status(), context);
  absl::Status status = CopyFile(*in, **out);
  if (status.ok() && options_.sync) status = (*out)->Sync();
  if (status.ok()) status = (*out)->Close();
  out->reset();
  if (status.ok()) status = env->Rename(temp, local_path);
  if (!status.ok()) env->RemoveFile(temp).IgnoreError();
  return InContext(status, context);
}

absl::StatusOr<uint64_t> LocalDirectoryStore::Head(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string context = absl::StrCat(uri(), ": head '", Sv(key), "'");
  const std::string path = absl::StrCat(root_, "/", Sv(key));
  absl::StatusOr<FileStat> st = options_.env->Stat(path);
  if (!st.ok()) return InContext(st.status(), context);
  if (st->type != FileType::kRegular) {
    return absl::NotFoundError(absl::StrCat(context, ": no such object"));
  }
  return st->size;
}

absl::StatusOr<std::vector<ObjectInfo>> LocalDirectoryStore::List(
    std::string_view prefix) {
  // Start the walk at the deepest directory the prefix names.
  size_t slash = prefix.rfind('/');
  std::string rel = slash == std::string_view::npos
                        ? ""
                        : std::string(prefix.substr(0, slash + 1));
  std::string dir = rel.empty() ? root_ : absl::StrCat(root_, "/", rel);
  if (!rel.empty()) dir.pop_back();
  if (!rel.empty() && !ValidateObjectKey(rel.substr(0, rel.size() - 1)).ok()) {
    // No valid key can start with this prefix.
    return std::vector<ObjectInfo>();
  }
  std::vector<ObjectInfo> out;
  WEIR_RETURN_IF_ERROR(
      InContext(Walk(options_.env, dir, rel, prefix, rel.empty(), &out),
                absl::StrCat(uri(), ": list")));
  std::sort(
      out.begin(), out.end(),
      [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

absl::Status LocalDirectoryStore::Delete(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  Env* const env = options_.env;
  const std::string path = absl::StrCat(root_, "/", Sv(key));
  absl::Status removed = env->RemoveFile(path);
  if (absl::IsNotFound(removed) || absl::IsInvalidArgument(removed)) {
    return absl::OkStatus();  // no such object (or a directory: EISDIR)
  }
  WEIR_RETURN_IF_ERROR(
      InContext(removed, absl::StrCat(uri(), ": delete '", Sv(key), "'")));
  // Remove the directories this left empty; stop at the first that is not.
  std::string dir = ParentOf(path);
  while (dir.size() > root_.size() && env->RemoveDirectory(dir).ok()) {
    dir = ParentOf(dir);
  }
  return absl::OkStatus();
}

}  // namespace weir
