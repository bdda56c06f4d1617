// -----------------------------------------------------------------------------
// File: testing/missing_part.h
// -----------------------------------------------------------------------------
//
// One policy for a test whose real part is missing: a server or program it
// starts (s3rver, redis-server, sqlite3) or an executable of the same build
// (fraud-features, weir-broker, ...). A missing part is reported by the
// part's starter as absl::StatusCode::kFailedPrecondition, with the reason
// and how to install it.
//
//   - On a developer's machine the test is skipped with that reason.
//   - When the environment variable CI is set (to anything but "" or "0"),
//     the test fails instead: CI never loses coverage silently.
//   - Any other error (the part is there but does not start) fails the test
//     everywhere.
//
// WEIR_REQUIRE_PART(status) returns from the calling function (a TEST body
// or SetUp, which return void) when `status` is not OK. Only tests include
// this header: it includes gtest.
//
// Example:
//   auto s3 = weir::testing::S3rver::Start(options);
//   WEIR_REQUIRE_PART(s3.status());
//   WEIR_REQUIRE_PART(weir::testing::NeedExecutable(
//       WEIR_BINARY_DIR "/weir-broker", "build the weir-broker target"));

#ifndef WEIR_TESTING_MISSING_PART_H_
#define WEIR_TESTING_MISSING_PART_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace weir {
namespace testing {

// Whether a missing part fails the test: the environment variable CI is set
// to something other than "" or "0".
bool MissingPartIsFatal();

// OK if `path` is an executable file, else kFailedPrecondition naming it and
// `hint` (how to get it, e.g. "build the weir-broker target").
absl::Status NeedExecutable(const std::string& path, absl::string_view hint);

}  // namespace testing
}  // namespace weir

#define WEIR_REQUIRE_PART(status_expr)                                         \
  do {                                                                         \
    const ::absl::Status weir_part_status_ = (status_expr);                    \
    if (weir_part_status_.ok()) break;                                         \
    if (weir_part_status_.code() != ::absl::StatusCode::kFailedPrecondition) { \
      GTEST_FAIL() << weir_part_status_;                                       \
    } else if (::weir::testing::MissingPartIsFatal()) {                        \
      GTEST_FAIL() << "missing part (CI is set): " << weir_part_status_;       \
    } else {                                                                   \
      GTEST_SKIP() << "missing part: " << weir_part_status_;                   \
    }                                                                          \
  } while (false)

#endif  // WEIR_TESTING_MISSING_PART_H_
