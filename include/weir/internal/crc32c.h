// -----------------------------------------------------------------------------
// File: internal/crc32c.h
// -----------------------------------------------------------------------------
//
// CRC-32C (Castagnoli), the checksum weir puts on its own files (memory
// state checkpoints, and anything else that needs a cheap integrity check).
// Abseil 20220623 has no absl/crc, so weir carries this one: the SSE4.2
// instruction when the CPU has it, a table otherwise; both give the same
// result.
//
// Threading: pure functions, safe from any thread.
//
// Example:
//   uint32_t crc = weir::internal::Crc32c(header);
//   crc = weir::internal::Crc32cExtend(crc, body);  // == Crc32c(header+body)

#ifndef WEIR_INTERNAL_CRC32C_H_
#define WEIR_INTERNAL_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace weir {
namespace internal {

// The CRC-32C of the bytes whose CRC-32C is `crc`, followed by `data`.
uint32_t Crc32cExtend(uint32_t crc, std::string_view data);

// The CRC-32C of `data`. Crc32c("123456789") == 0xE3069283.
inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data); }

// The table implementation, exposed so tests can compare it with the
// hardware path.
uint32_t Crc32cExtendPortable(uint32_t crc, std::string_view data);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_CRC32C_H_
