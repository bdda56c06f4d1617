#include "weir/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "weir/status_macros.h"

namespace weir {
namespace {

constexpr size_t kMaxKeyBytes = 1024;
constexpr char kTempDirName[] = ".weir-tmp";
constexpr size_t kCopyChunk = size_t{1} << 20;

absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

// Maps an errno from a file operation to a status with retry meaning.
absl::Status ErrnoStatus(int err, std::string_view context) {
  std::string msg = absl::StrCat(Sv(context), ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(msg);
    case EIO:
    case EAGAIN:
    case EINTR:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Closes an fd when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  // Closes now; returns errno of a failed close, or 0.
  int Reset() {
    int err = 0;
    if (fd_ >= 0 && close(fd_) != 0) err = errno;
    fd_ = -1;
    return err;
  }

 private:
  int fd_;
};

absl::Status WriteAll(int fd, std::string_view bytes, std::string_view what) {
  while (!bytes.empty()) {
    ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat(Sv(what), ": write"));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Copies everything from `in` to `out`.
absl::Status CopyFd(int in, int out, std::string_view what) {
  std::string buf(kCopyChunk, '\0');
  while (true) {
    ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat(Sv(what), ": read"));
    }
    if (n == 0) return absl::OkStatus();
    WEIR_RETURN_IF_ERROR(WriteAll(
        out, std::string_view(buf.data(), static_cast<size_t>(n)), what));
  }
}

absl::Status SyncDirectory(const std::string& dir) {
  Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, absl::StrCat("open ", dir));
  if (fsync(fd.get()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fsync ", dir));
  }
  return absl::OkStatus();
}

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

absl::Status MakeDirectories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), absl::StrCat("mkdir ", dir));
  return absl::OkStatus();
}

// Appends every regular file under `dir` (whose key prefix is `rel`, empty or
// ending in '/') whose key starts with `prefix`. Entries that vanish while
// the walk runs (a concurrent Delete) are skipped.
absl::Status Walk(const std::string& dir, const std::string& rel,
                  std::string_view prefix, bool at_root,
                  std::vector<ObjectInfo>* out) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("list ", dir));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (at_root && name == kTempDirName) continue;
    names.emplace_back(name);
  }
  closedir(d);
  for (const std::string& name : names) {
    std::string key = rel + name;
    // Prune subtrees that cannot contain a match.
    size_t common = std::min(key.size(), prefix.size());
    if (key.compare(0, common, prefix.substr(0, common)) != 0) continue;
    std::string path = absl::StrCat(dir, "/", name);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus(errno, absl::StrCat("stat ", path));
    }
    if (S_ISDIR(st.st_mode)) {
      WEIR_RETURN_IF_ERROR(Walk(path, key + "/", prefix, false, out));
    } else if (S_ISREG(st.st_mode) && absl::StartsWith(key, Sv(prefix))) {
      out->push_back({key, static_cast<uint64_t>(st.st_size)});
    }
  }
  return absl::OkStatus();
}

// Removes temporary files older than `age` from `dir`.
void RemoveStaleTemps(const std::string& dir, absl::Duration age) {
  std::error_code ec;
  const auto now = std::filesystem::file_time_type::clock::now();
  const auto limit = absl::ToChronoSeconds(age);
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code e2;
    auto mtime = entry.last_write_time(e2);
    if (!e2 && now - mtime > limit) std::filesystem::remove(entry.path(), e2);
  }
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
  if (ec)
    return ErrnoStatus(ec.value(), absl::StrCat("absolute path of ", root));
  std::string path = abs.lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();

  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || !options.create_if_missing) {
      return ErrnoStatus(errno, absl::StrCat("object store root ", path));
    }
    WEIR_RETURN_IF_ERROR(MakeDirectories(path));
  } else if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("object store root ", path, " is not a directory"));
  }
  RemoveStaleTemps(absl::StrCat(path, "/", kTempDirName),
                   options.stale_temp_age);
  return std::unique_ptr<LocalDirectoryStore>(
      new LocalDirectoryStore(std::move(path), options));
}

std::string LocalDirectoryStore::uri() const {
  return absl::StrCat("file://", root_);
}

absl::Status LocalDirectoryStore::WriteAtomically(
    std::string_view key, const std::function<absl::Status(int fd)>& write) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string context = absl::StrCat(uri(), ": write '", Sv(key), "'");
  const std::string temp_dir = absl::StrCat(root_, "/", kTempDirName);
  WEIR_RETURN_IF_ERROR(MakeDirectories(temp_dir));
  const std::string temp = absl::StrCat(temp_dir, "/", RandomSuffix());
  Fd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(errno, context);

  absl::Status status = write(fd.get());
  if (status.ok() && options_.sync && fsync(fd.get()) != 0) {
    status = ErrnoStatus(errno, absl::StrCat(context, ": fsync"));
  }
  if (int err = fd.Reset(); status.ok() && err != 0) {
    status = ErrnoStatus(err, absl::StrCat(context, ": close"));
  }
  const std::string target = absl::StrCat(root_, "/", Sv(key));
  const std::string parent = ParentOf(target);
  // A concurrent Delete may remove the (then empty) parent directory
  // between mkdir and rename; try again a few times.
  for (int attempt = 0; status.ok(); ++attempt) {
    status = MakeDirectories(parent);
    if (!status.ok()) break;
    if (rename(temp.c_str(), target.c_str()) == 0) {
      if (options_.sync) status = SyncDirectory(parent);
      return status;
    }
    if (errno != ENOENT || attempt >= 5) {
      status = ErrnoStatus(errno, absl::StrCat(context, ": rename"));
    }
  }
  unlink(temp.c_str());
  return status;
}

absl::Status LocalDirectoryStore::Put(std::string_view key,
                                      std::string_view bytes) {
  return WriteAtomically(key, [&](int fd) {
    return WriteAll(fd, bytes, absl::StrCat(uri(), ": put"));
  });
}

absl::Status LocalDirectoryStore::PutFile(std::string_view key,
                                          const std::string& local_path) {
  Fd in(open(local_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    return ErrnoStatus(errno, absl::StrCat("PutFile: open ", local_path));
  }
  return WriteAtomically(key, [&](int fd) {
    return CopyFd(in.get(), fd, absl::StrCat("PutFile ", local_path));
  });
}

absl::StatusOr<std::string> LocalDirectoryStore::Get(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string context = absl::StrCat(uri(), ": get '", Sv(key), "'");
  const std::string path = absl::StrCat(root_, "/", Sv(key));
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, context);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, context);
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(context, ": no such object"));
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[64 * 1024];
  while (true) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, context);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status LocalDirectoryStore::GetFile(std::string_view key,
                                          const std::string& local_path) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string context = absl::StrCat(uri(), ": get '", Sv(key), "'");
  const std::string path = absl::StrCat(root_, "/", Sv(key));
  Fd in(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus(errno, context);
  struct stat st;
  if (fstat(in.get(), &st) != 0) return ErrnoStatus(errno, context);
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(context, ": no such object"));
  }
  const std::string temp =
      absl::StrCat(local_path, ".weir-tmp-", RandomSuffix());
  Fd out(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (out.get() < 0) {
    return ErrnoStatus(errno, absl::StrCat(context, ": create ", temp));
  }
  absl::Status status = CopyFd(in.get(), out.get(), context);
  if (status.ok() && options_.sync && fsync(out.get()) != 0) {
    status = ErrnoStatus(errno, absl::StrCat(context, ": fsync ", temp));
  }
  if (int err = out.Reset(); status.ok() && err != 0) {
    status = ErrnoStatus(err, absl::StrCat(context, ": close ", temp));
  }
  if (status.ok() && rename(temp.c_str(), local_path.c_str()) != 0) {
    status =
        ErrnoStatus(errno, absl::StrCat(context, ": rename to ", local_path));
  }
  if (!status.ok()) unlink(temp.c_str());
  return status;
}

absl::StatusOr<uint64_t> LocalDirectoryStore::Head(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string context = absl::StrCat(uri(), ": head '", Sv(key), "'");
  const std::string path = absl::StrCat(root_, "/", Sv(key));
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, context);
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(context, ": no such object"));
  }
  return static_cast<uint64_t>(st.st_size);
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
  WEIR_RETURN_IF_ERROR(Walk(dir, rel, prefix, rel.empty(), &out));
  std::sort(
      out.begin(), out.end(),
      [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

absl::Status LocalDirectoryStore::Delete(std::string_view key) {
  WEIR_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string path = absl::StrCat(root_, "/", Sv(key));
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) {
      return absl::OkStatus();
    }
    return ErrnoStatus(errno, absl::StrCat(uri(), ": delete '", Sv(key), "'"));
  }
  // Remove the directories this left empty; stop at the first that is not.
  std::string dir = ParentOf(path);
  while (dir.size() > root_.size() && rmdir(dir.c_str()) == 0) {
    dir = ParentOf(dir);
  }
  return absl::OkStatus();
}

}  // namespace weir
