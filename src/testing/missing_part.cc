#include "weir/testing/missing_part.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace weir {
namespace testing {

bool MissingPartIsFatal() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) != "" &&
         std::string_view(ci) != "0";
}

absl::Status NeedExecutable(const std::string& path, absl::string_view hint) {
  if (access(path.c_str(), X_OK) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(path, " is not there (", hint, ")"));
}

}  // namespace testing
}  // namespace weir
