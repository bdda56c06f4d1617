// -----------------------------------------------------------------------------
// File: testing/s3rver.h
// -----------------------------------------------------------------------------
//
// An S3-compatible server for tests: s3rver (the npm package, installed in
// the repository's node_modules by `npm ci`) run by node on 127.0.0.1, on a
// port it picks itself, with its data in a fresh temporary directory, the
// configured buckets created and one known access key.
//
// s3rver 3.7 parses SigV4 Authorization headers but does not check the
// signature. The launcher adds the check in front of s3rver's routes (the
// canonical request, string to sign and HMAC chain of AWS Signature Version
// 4, over the headers the client signed), so a wrong secret is refused with
// 403 SignatureDoesNotMatch as S3 would. The payload hash is taken from
// x-amz-content-sha256 as sent; the body itself is not hashed.
//
// The destructor stops the server (SIGTERM, then SIGKILL) and removes its
// data.
//
// Threading: one thread owns an S3rver; the server is a separate process.
//
// Example:
//   weir::testing::S3rverOptions options;
//   options.node_modules_dir = WEIR_SOURCE_DIR "/node_modules";
//   WEIR_ASSIGN_OR_RETURN(auto s3rver, weir::testing::S3rver::Start(options));
//   weir::S3StoreOptions s3;
//   s3.endpoint = s3rver->endpoint();
//   s3.access_key_id = s3rver->access_key_id();
//   s3.secret_access_key = s3rver->secret_access_key();

#ifndef WEIR_TESTING_S3RVER_H_
#define WEIR_TESTING_S3RVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace testing {

struct S3rverOptions {
  // Buckets created at start.
  // Default: {"weir-test"}
  std::vector<std::string> buckets = {"weir-test"};

  // The one access key the server accepts.
  // Default: "WEIRTESTACCESSKEY"
  std::string access_key_id = "WEIRTESTACCESSKEY";
  // Default: "weir-test-secret-key"
  std::string secret_access_key = "weir-test-secret-key";

  // Check SigV4 signatures (see the top of this file).
  // Default: true
  bool verify_signatures = true;

  // The node_modules directory holding s3rver. Unset means
  // $WEIR_NODE_MODULES, else the first node_modules/s3rver found walking up
  // from the current directory.
  // Default: unset
  std::optional<std::string> node_modules_dir;

  // The node executable (searched in PATH).
  // Default: "node"
  std::string node = "node";

  // How long to wait for the server to listen.
  // Default: absl::Seconds(30)
  absl::Duration startup_timeout = absl::Seconds(30);
};

class S3rver {
 public:
  static absl::StatusOr<std::unique_ptr<S3rver>> Start(
      const S3rverOptions& options = {});
  ~S3rver();

  int port() const { return port_; }
  // "http://127.0.0.1:<port>"
  std::string endpoint() const;
  const std::string& access_key_id() const { return options_.access_key_id; }
  const std::string& secret_access_key() const {
    return options_.secret_access_key;
  }
  // Where s3rver keeps the buckets' files.
  std::string data_dir() const;

 private:
  S3rver(S3rverOptions options, TempDir dir, std::unique_ptr<Subprocess> child,
         int port)
      : options_(std::move(options)),
        dir_(std::move(dir)),
        child_(std::move(child)),
        port_(port) {}

  S3rverOptions options_;
  TempDir dir_;
  std::unique_ptr<Subprocess> child_;
  int port_;
};

}  // namespace testing
}  // namespace weir

#endif  // WEIR_TESTING_S3RVER_H_
