// -----------------------------------------------------------------------------
// File: internal/checkpoint_names.h
// -----------------------------------------------------------------------------
//
// Checks and spellings of names shared by the manifest format
// (checkpoint_manifest.cc) and the checkpoint store (checkpoint_store.cc):
// plain file names, 8-hex-digit CRCs, decimal digits.

#ifndef WEIR_INTERNAL_CHECKPOINT_NAMES_H_
#define WEIR_INTERNAL_CHECKPOINT_NAMES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "weir/internal/string_view.h"

namespace weir {
namespace internal {

// [A-Za-z0-9._-]
bool IsFileNameChar(char c);

// A plain file name: [A-Za-z0-9._-]{1,255}, not "." or "..".
// kInvalidArgument otherwise.
absl::Status ValidateFileName(std::string_view name);

// `v` as 8 lowercase hex digits.
std::string Hex8(uint32_t v);

// True if `s` is one or more of [0-9].
bool AllDigits(std::string_view s);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_CHECKPOINT_NAMES_H_
