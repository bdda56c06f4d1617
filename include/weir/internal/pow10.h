// -----------------------------------------------------------------------------
// File: internal/pow10.h
// -----------------------------------------------------------------------------
//
// Powers of ten that fit in int64, for exact decimal arithmetic (Decimal and
// the exact decimal sum).

#ifndef WEIR_INTERNAL_POW10_H_
#define WEIR_INTERNAL_POW10_H_

#include <cstdint>

namespace weir {
namespace internal {

// The largest decimal scale weir supports: 10^18 is the largest power of
// ten in int64.
inline constexpr int32_t kMaxDecimalScale = 18;

inline constexpr int64_t kPow10[kMaxDecimalScale + 1] = {1LL,
                                                         10LL,
                                                         100LL,
                                                         1000LL,
                                                         10000LL,
                                                         100000LL,
                                                         1000000LL,
                                                         10000000LL,
                                                         100000000LL,
                                                         1000000000LL,
                                                         10000000000LL,
                                                         100000000000LL,
                                                         1000000000000LL,
                                                         10000000000000LL,
                                                         100000000000000LL,
                                                         1000000000000000LL,
                                                         10000000000000000LL,
                                                         100000000000000000LL,
                                                         1000000000000000000LL};

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_POW10_H_
