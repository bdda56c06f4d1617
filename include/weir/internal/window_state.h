// -----------------------------------------------------------------------------
// File: internal/window_state.h
// -----------------------------------------------------------------------------
//
// The payload of a "windows" state entry and its merge law, shared by the
// operator (which writes and reads payloads) and the backends (which combine
// merge operands with what a key holds, see StateWriteBatch::Merge):
//
//   byte 0        payload version (kWindowPayloadVersion)
//   bytes 1..8    window end, int64, little-endian
//   bytes 9..16   largest source offset folded, int64, little-endian
//   bytes 17..    one accumulator per feature of the window's group, in
//                 feature order, as internal::EncodeAcc writes it (each
//                 starts with its aggregate kind, so the payload describes
//                 itself and merges without the operator's feature list)
//
// Two payloads of one window merge accumulator by accumulator with the
// aggregate's merge law (internal::Merge), the largest offset wins, and the
// window end must agree. The law is associative and commutative, so an
// evicted partial aggregate can be written blind, as a merge operand, and
// combined with the rest of the window only when it is read.
//
// Threading: pure functions, safe from any thread.
//
// Example:
//   std::string merged;
//   std::string_view parts[] = {older_stored, newer_stored};
//   WEIR_RETURN_IF_ERROR(weir::internal::MergeStoredWindowValues(
//       nullptr, parts, ttl_ms, &merged));

#ifndef WEIR_INTERNAL_WINDOW_STATE_H_
#define WEIR_INTERNAL_WINDOW_STATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace weir {
namespace internal {

inline constexpr uint8_t kWindowPayloadVersion = 1;

// Merges the window payloads `parts` (at least one) into `*out`. Returns
// kFailedPrecondition for an unknown payload or accumulator version or
// accumulators of different kinds, kDataLoss for a truncated payload or
// parts of different windows.
absl::Status MergeWindowPayloads(absl::Span<const std::string_view> parts,
                                 std::string* out);

// Combines the stored values of one "windows" key (each with its
// state_format.h header) in write order: `existing` (nullptr if the key
// holds nothing) and then `operands`. A part written `ttl_ms` or more
// before the part after it had expired when that one was written, and is
// dropped with everything before it, as a read at that time would have.
// The result carries the newest write time. Errors as for
// MergeWindowPayloads, and those of DecodeStateValue.
absl::Status MergeStoredWindowValues(
    const std::string_view* existing,
    absl::Span<const std::string_view> operands, std::optional<int64_t> ttl_ms,
    std::string* out);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_WINDOW_STATE_H_
