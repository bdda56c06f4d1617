// -----------------------------------------------------------------------------
// File: s3/s3_store.h
// -----------------------------------------------------------------------------
//
// `S3Store`: an `ObjectStore` (weir/object_store.h) on Amazon S3 or an
// S3-compatible server (MinIO, s3rver, Ceph RGW), over libcurl.
//
// Requests are signed with AWS Signature Version 4 (libcurl's built-in
// signer, with the payload's SHA-256 in x-amz-content-sha256). The object
// "k" of a store opened on s3://bucket/prefix is the S3 key "prefix/k".
// `PutFile` streams a file with one PUT below `multipart_threshold` and with
// a multipart upload above it; `List` pages through ListObjectsV2 with
// continuation tokens.
//
// Failures:
//   - network errors, time-outs, HTTP 5xx, 429 and S3's RequestTimeout are
//     retried with exponential backoff and jitter, up to `max_attempts`; then
//     the call returns kUnavailable;
//   - 403 returns kPermissionDenied naming the bucket and saying that the
//     credentials or signature were refused (never printing the secret);
//   - 404 returns kNotFound for a missing object, and kFailedPrecondition
//     for a missing bucket (a configuration error);
//   - other 4xx return kInvalidArgument / kFailedPrecondition with S3's error
//     code and message.
//
// Threading: thread-safe; any number of threads may call one S3Store at a
// time. Each call runs on the calling thread (blocking); the store starts no
// threads. Connections are kept in a small pool and reused.
//
// Example:
//   weir::S3StoreOptions options;
//   options.endpoint = "http://127.0.0.1:9000";  // MinIO; path-style
//   WEIR_ASSIGN_OR_RETURN(auto store,
//                         weir::S3Store::Create("checkpoints", "svc-a",
//                                               options));
//   WEIR_RETURN_IF_ERROR(store->PutFile("p3/000042.sst", "/data/000042.sst"));

#ifndef WEIR_S3_S3_STORE_H_
#define WEIR_S3_S3_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "weir/object_store.h"

namespace weir {

class S3Store final : public ObjectStore {
 public:
  // Opens the store on `bucket`, with every key under `prefix` ("" for the
  // whole bucket; a trailing '/' is optional). Validates `options` and
  // resolves the credentials (options first, then the AWS_* environment
  // variables); kInvalidArgument if there are none. Makes no request.
  static absl::StatusOr<std::unique_ptr<S3Store>> Create(
      std::string bucket, std::string prefix, S3StoreOptions options);

  ~S3Store() override;

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

  class Impl;

 private:
  explicit S3Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace internal {

// Lower-case hex SHA-256 of `data` (exposed for tests).
std::string Sha256Hex(std::string_view data);

// `s` percent-encoded as SigV4 wants: every byte but A-Z a-z 0-9 - . _ ~
// becomes %XX (upper-case hex); '/' is kept when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);

// The objects of one ListObjectsV2 response body (S3 keys, XML-unescaped),
// whether the listing is truncated, and the token for the next page.
struct ListPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_token;
};
absl::StatusOr<ListPage> ParseListObjectsV2(std::string_view xml);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_S3_S3_STORE_H_
