// -----------------------------------------------------------------------------
// File: object_store.h
// -----------------------------------------------------------------------------
//
// Where checkpoints live. An `ObjectStore` is a flat map from keys to
// immutable byte strings, like S3: whole objects are written, read, listed
// and deleted; there is no append and no partial update.
//
// Keys are '/'-separated relative names ("chk/p3/000042/MANIFEST"): not
// empty, at most 1024 bytes, no leading or trailing '/', no empty, "." or
// ".." segment, no NUL or '\' byte, and the first segment is not ".weir-tmp"
// (reserved for the local store's temporary files). Every call checks its key
// and returns kInvalidArgument for a bad one.
//
// Implementations:
//   - `LocalDirectoryStore` (file:///path), below: one file per key under a
//     root directory. A write goes to a temporary file that is fsync'ed and
//     then renamed into place, so a reader (or a process restarted after a
//     crash) sees either the old object, the new one, or none, never a
//     half-written one.
//   - `S3Store` (s3://bucket/prefix), in weir/s3/s3_store.h: S3 and
//     compatible servers over libcurl.
//
// Errors carry retry meaning: kNotFound for a missing key (never retried),
// kUnavailable when the store could not be reached or kept failing (retry
// later), kPermissionDenied when the store refused the credentials,
// kDataLoss when an object's bytes are not what its metadata says.
//
// Threading: every ObjectStore is safe for concurrent use from several
// threads without external synchronization (the processing thread and the
// checkpoint-upload thread share one). Concurrent writes of the same key
// leave one of the written objects. The stores start no threads.
//
// Example:
//   weir::ObjectStoreOptions options;
//   WEIR_ASSIGN_OR_RETURN(std::unique_ptr<weir::ObjectStore> store,
//                         weir::OpenObjectStore("file:///var/lib/weir/chk",
//                                               options));
//   WEIR_RETURN_IF_ERROR(store->Put("p3/000042/MANIFEST", manifest_bytes));
//   WEIR_ASSIGN_OR_RETURN(std::vector<weir::ObjectInfo> objects,
//                         store->List("p3/"));

#ifndef WEIR_OBJECT_STORE_H_
#define WEIR_OBJECT_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/env.h"

namespace weir {

// One object, as `List` reports it.
struct ObjectInfo {
  std::string key;    // relative to the store, as given to Put
  uint64_t size = 0;  // bytes

  friend bool operator==(const ObjectInfo& a, const ObjectInfo& b) {
    return a.key == b.key && a.size == b.size;
  }
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Writes `bytes` as the object `key`, replacing any object of that key.
  // When it returns OK the object is durable and visible to every reader.
  virtual absl::Status Put(std::string_view key, std::string_view bytes) = 0;

  // Writes the contents of the local file `local_path` as the object `key`,
  // streaming it (the file is never held in memory whole). kNotFound if the
  // local file does not exist.
  virtual absl::Status PutFile(std::string_view key,
                               const std::string& local_path) = 0;

  // The bytes of the object `key`; kNotFound if there is none.
  virtual absl::StatusOr<std::string> Get(std::string_view key) = 0;

  // Writes the object `key` to the local file `local_path` (streaming),
  // replacing it atomically: on error `local_path` is left as it was.
  // kNotFound if there is no such object.
  virtual absl::Status GetFile(std::string_view key,
                               const std::string& local_path) = 0;

  // The size in bytes of the object `key`; kNotFound if there is none.
  virtual absl::StatusOr<uint64_t> Head(std::string_view key) = 0;

  // Whether the object `key` exists.
  absl::StatusOr<bool> Exists(std::string_view key);

  // Every object whose key starts with `prefix` (a plain string prefix, not
  // necessarily ending in '/'; "" lists everything), sorted by key in byte
  // order.
  virtual absl::StatusOr<std::vector<ObjectInfo>> List(
      std::string_view prefix) = 0;

  // Deletes the object `key`. Deleting a key that does not exist is OK.
  virtual absl::Status Delete(std::string_view key) = 0;

  // The store's URI ("file:///var/lib/weir/chk", "s3://bucket/prefix"),
  // for logs and errors. Never contains credentials.
  virtual std::string uri() const = 0;
};

// OK if `key` is a valid object key (see the top of this file), else
// kInvalidArgument saying why.
absl::Status ValidateObjectKey(std::string_view key);

// ---- LocalDirectoryStore ----------------------------------------------------

struct LocalDirectoryStoreOptions {
  // Create the root directory (and its parents) if it does not exist.
  // Default: true
  bool create_if_missing = true;

  // fsync each written file and its directory before the write returns, so
  // that an object survives a machine crash, not only a process crash.
  // Turning it off trades that for speed (tests, scratch stores).
  // Default: true
  bool sync = true;

  // Temporary files left behind by a crashed writer and older than this are
  // removed when a store is created on the root. Younger ones may belong to
  // another live process writing to the same root.
  // Default: absl::Hours(1)
  absl::Duration stale_temp_age = absl::Hours(1);

  // The file system the store's files are written and read through. Not
  // owned; must outlive the store.
  // Default: Env::Default()
  Env* env = Env::Default();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// An object store in a local directory: the object "a/b/c" is the file
// <root>/a/b/c. Temporary files live in <root>/.weir-tmp/ and are never
// listed. Directories left empty by Delete are removed.
//
// Several processes may share one root (on one machine or on a POSIX
// network file system with atomic rename).
class LocalDirectoryStore final : public ObjectStore {
 public:
  // Opens the store rooted at `root` (an absolute or relative path).
  // kNotFound if it does not exist and `create_if_missing` is false;
  // kFailedPrecondition if it is not a directory.
  static absl::StatusOr<std::unique_ptr<LocalDirectoryStore>> Create(
      std::string root, const LocalDirectoryStoreOptions& options = {});

  absl::Status Put(std::string_view key, std::string_view bytes) override;
  absl::Status PutFile(std::string_view key,
                       const std::string& local_path) override;
  absl::StatusOr<std::string> Get(std::string_view key) override;
  absl::Status GetFile(std::string_view key,
                       const std::string& local_path) override;
  absl::StatusOr<uint64_t> Head(std::string_view key) override;
  absl::StatusOr<std::vector<ObjectInfo>> List(
      std::string_view prefix) override;
  absl::Status Delete(std::string_view key) override;
  std::string uri() const override;

  const std::string& root() const { return root_; }

 private:
  LocalDirectoryStore(std::string root, LocalDirectoryStoreOptions options)
      : root_(std::move(root)), options_(options) {}

  // Writes a temporary file with `write` and renames it to `key`'s path.
  absl::Status WriteAtomically(
      std::string_view key,
      const std::function<absl::Status(WritableFile& file)>& write);
  // Opens the object `key` for reading; kNotFound if it is not a regular
  // file. `context` prefixes errors.
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenObject(
      std::string_view key, std::string_view context);

  const std::string root_;  // absolute, without trailing '/'
  const LocalDirectoryStoreOptions options_;
};

// ---- S3 options and the URI factory -----------------------------------------

// Settings of an `S3Store` (weir/s3/s3_store.h). Plain data, declared here so
// that `OpenObjectStore` can take them without pulling in libcurl.
//
// Credentials are used to sign requests and are never printed: not in
// errors, not in logs, not by `uri()`.
struct S3StoreOptions {
  // ---- Where ----

  // Base URL of an S3-compatible server, e.g. "http://127.0.0.1:9000" for
  // MinIO or s3rver. Unset means AWS: https://s3.<region>.amazonaws.com.
  // Default: unset
  std::optional<std::string> endpoint;

  // Region the requests are signed for.
  // Default: "us-east-1"
  std::string region = "us-east-1";

  // Path-style addressing (<endpoint>/<bucket>/<key>) instead of
  // virtual-hosted style (<bucket>.<host>/<key>). Unset means path-style
  // when `endpoint` is set (what MinIO and friends expect) and
  // virtual-hosted style for AWS.
  // Default: unset
  std::optional<bool> path_style;

  // ---- Credentials ----

  // Unset fields are read from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
  // AWS_SESSION_TOKEN when the store is created. An access key and a secret
  // are required (from here or from the environment); the session token is
  // needed only for temporary credentials.
  // Default: unset
  std::optional<std::string> access_key_id;
  // Default: unset
  std::optional<std::string> secret_access_key;
  // Default: unset
  std::optional<std::string> session_token;

  // ---- Time limits and retries ----

  // Time to establish a TCP connection (and TLS handshake).
  // Default: absl::Seconds(10)
  absl::Duration connect_timeout = absl::Seconds(10);

  // Time limit of one HTTP request, transfer included. A request that
  // exceeds it is abandoned and retried. Must cover one part upload
  // (`part_size` bytes) at the slowest bandwidth you accept.
  // Default: absl::Minutes(2)
  absl::Duration request_timeout = absl::Minutes(2);

  // Attempts per request, the first one included. Network errors, time-outs,
  // HTTP 5xx, 429 and S3's RequestTimeout are retried; other errors are
  // not. After the last attempt the call returns kUnavailable.
  // Default: 5
  int max_attempts = 5;

  // Sleep before retry n (n = 1, 2, ...) is drawn uniformly from
  // [b/2, b] where b = min(max_backoff, initial_backoff * 2^(n-1)).
  // Default: absl::Milliseconds(100)
  absl::Duration initial_backoff = absl::Milliseconds(100);
  // Default: absl::Seconds(10)
  absl::Duration max_backoff = absl::Seconds(10);

  // How backoff sleeps are taken. Tests replace it to record the sleeps
  // instead of waiting. Called from the thread making the request.
  // Default: absl::SleepFor
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) {
    absl::SleepFor(d);
  };

  // ---- Sizes ----

  // PutFile uses a multipart upload for files of at least this many bytes,
  // and a single PUT below.
  // Default: 64 MiB
  uint64_t multipart_threshold = uint64_t{64} << 20;

  // Size of each part of a multipart upload (the last one may be smaller).
  // S3 requires at least 5 MiB and at most 5 GiB; the store grows it when
  // a file would need more than 10,000 parts. Larger parts mean fewer
  // requests; smaller ones mean less to resend after a failure.
  // Default: 16 MiB
  uint64_t part_size = uint64_t{16} << 20;

  // Keys per ListObjectsV2 page, 1 to 1000. Smaller pages only cost more
  // requests (tests use them to exercise continuation).
  // Default: 1000
  int list_page_size = 1000;

  // The file system of PutFile's and GetFile's local files. Not owned;
  // must outlive the store. Default: Env::Default()
  Env* env = Env::Default();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

struct ObjectStoreOptions {
  // Used for file:// URIs.
  LocalDirectoryStoreOptions local;
  // Used for s3:// URIs.
  S3StoreOptions s3;
};

// Opens the store a URI names:
//   "file:///abs/path"    -> LocalDirectoryStore rooted at /abs/path
//   "s3://bucket"         -> S3Store on the whole bucket
//   "s3://bucket/prefix"  -> S3Store whose keys live under "prefix/"
// kInvalidArgument for another scheme or a malformed URI.
//
// Because it can open S3 stores, this function is compiled into the S3
// module (weir::weir_s3; weir::weir includes it). Code that must not link
// libcurl creates a LocalDirectoryStore directly.
absl::StatusOr<std::unique_ptr<ObjectStore>> OpenObjectStore(
    std::string_view uri, const ObjectStoreOptions& options = {});

}  // namespace weir

#endif  // WEIR_OBJECT_STORE_H_
