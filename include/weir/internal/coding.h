// -----------------------------------------------------------------------------
// File: internal/coding.h
// -----------------------------------------------------------------------------
//
// Fixed-width little-endian integers for encodings, and big-endian
// order-preserving integers for keys (a signed value has its sign bit
// flipped so that byte order equals numeric order, negatives included).

#ifndef WEIR_INTERNAL_CODING_H_
#define WEIR_INTERNAL_CODING_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace weir {
namespace internal {

inline void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
// The little-endian integer at `p` (4 or 8 bytes), read as one load.
template <typename T>
inline T DecodeFixed(const void* p) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  T v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) {
    if constexpr (sizeof(T) == 8) {
      v = __builtin_bswap64(v);
    } else {
      v = __builtin_bswap32(v);
    }
  }
  return v;
}
inline uint32_t DecodeFixed32(const void* p) {
  return DecodeFixed<uint32_t>(p);
}
inline uint64_t DecodeFixed64(const void* p) {
  return DecodeFixed<uint64_t>(p);
}
inline bool GetFixed32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = DecodeFixed32(in->data());
  in->remove_prefix(4);
  return true;
}
inline bool GetFixed64(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = DecodeFixed64(in->data());
  in->remove_prefix(8);
  return true;
}

// Order-preserving big-endian encodings for keys.
inline void PutOrderedU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}
inline void PutOrderedU32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutOrderedI64(std::string* out, int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(u >> (8 * i)));
}
inline bool GetOrderedU16(std::string_view* in, uint16_t* v) {
  if (in->size() < 2) return false;
  *v = static_cast<uint16_t>((static_cast<uint8_t>((*in)[0]) << 8) |
                             static_cast<uint8_t>((*in)[1]));
  in->remove_prefix(2);
  return true;
}
inline bool GetOrderedU32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) {
    *v = (*v << 8) | static_cast<uint8_t>((*in)[i]);
  }
  in->remove_prefix(4);
  return true;
}
inline bool GetOrderedI64(std::string_view* in, int64_t* v) {
  if (in->size() < 8) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>((*in)[i]);
  *v = static_cast<int64_t>(u ^ (uint64_t{1} << 63));
  in->remove_prefix(8);
  return true;
}

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_CODING_H_
