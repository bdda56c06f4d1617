// OpenObjectStore (declared in weir/object_store.h) lives in the S3 module
// because it is the one place that can construct both kinds of store.

#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "weir/object_store.h"
#include "weir/s3/s3_store.h"
#include "weir/status_macros.h"

namespace weir {

absl::StatusOr<std::unique_ptr<ObjectStore>> OpenObjectStore(
    std::string_view uri, const ObjectStoreOptions& options) {
  const std::string u(uri);
  if (absl::StartsWith(u, "file://")) {
    std::string path = u.substr(7);
    if (path.empty() || path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "object store URI '", u,
          "': a file URI needs an absolute path, as in file:///var/lib/weir"));
    }
    WEIR_ASSIGN_OR_RETURN(std::unique_ptr<LocalDirectoryStore> store,
                          LocalDirectoryStore::Create(path, options.local));
    return std::unique_ptr<ObjectStore>(std::move(store));
  }
  if (absl::StartsWith(u, "s3://")) {
    std::string rest = u.substr(5);
    size_t slash = rest.find('/');
    std::string bucket = rest.substr(0, slash);
    std::string prefix =
        slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (bucket.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "object store URI '", u, "': no bucket, as in s3://bucket/prefix"));
    }
    WEIR_ASSIGN_OR_RETURN(
        std::unique_ptr<S3Store> store,
        S3Store::Create(std::move(bucket), std::move(prefix), options.s3));
    return std::unique_ptr<ObjectStore>(std::move(store));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "object store URI '", u, "': the scheme must be file:// or s3://"));
}

}  // namespace weir
