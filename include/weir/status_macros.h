// -----------------------------------------------------------------------------
// File: status_macros.h
// -----------------------------------------------------------------------------
//
// The two macros every fallible weir call uses to pass an error up.
// Abseil 20220623 ships neither, so weir defines them once, here.
//
// Example:
//   absl::Status Load(Store& store) {
//     WEIR_ASSIGN_OR_RETURN(std::string bytes, store.Get("manifest"));
//     WEIR_RETURN_IF_ERROR(Parse(bytes));
//     return absl::OkStatus();
//   }

#ifndef WEIR_STATUS_MACROS_H_
#define WEIR_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function if it is not OK.
#define WEIR_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status weir_status_ = (expr);        \
    if (!weir_status_.ok()) return weir_status_; \
  } while (false)

#define WEIR_STATUS_CONCAT_INNER_(a, b) a##b
#define WEIR_STATUS_CONCAT_(a, b) WEIR_STATUS_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from
// the enclosing function, otherwise moves the value into `lhs`, which may be
// a declaration (`auto x`, `std::string s`) or an existing variable.
#define WEIR_ASSIGN_OR_RETURN(lhs, rexpr)                                     \
  auto WEIR_STATUS_CONCAT_(weir_statusor_, __LINE__) = (rexpr);               \
  if (!WEIR_STATUS_CONCAT_(weir_statusor_, __LINE__).ok())                    \
    return std::move(WEIR_STATUS_CONCAT_(weir_statusor_, __LINE__)).status(); \
  lhs = std::move(WEIR_STATUS_CONCAT_(weir_statusor_, __LINE__)).value()

#endif  // WEIR_STATUS_MACROS_H_
