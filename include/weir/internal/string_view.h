// -----------------------------------------------------------------------------
// File: internal/string_view.h
// -----------------------------------------------------------------------------
//
// weir's API speaks std::string_view. Debian 12's Abseil (20220623) is built
// with its own absl::string_view, a distinct type, so a std::string_view
// passed to absl::StrCat, absl::SimpleAtoi, absl::StartsWith and the like
// needs converting. `Sv` is that conversion, the one place it is written.
//
// Threading: a pure function, safe from any thread.
//
// Example:
//   std::string_view name = ...;
//   return absl::InvalidArgumentError(absl::StrCat("bad name '", Sv(name),
//                                                  "'"));

#ifndef WEIR_INTERNAL_STRING_VIEW_H_
#define WEIR_INTERNAL_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace weir {
namespace internal {

// The same bytes as an absl::string_view.
inline absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_STRING_VIEW_H_
