#include "weir/internal/state_keys.h"

#include "weir/internal/coding.h"
#include "weir/time.h"

namespace weir {
namespace internal {

void WindowKey(std::string_view key, uint16_t group, int64_t start,
               std::string* out) {
  out->clear();
  PutOrderedU32(out, static_cast<uint32_t>(key.size()));
  out->append(key);
  PutOrderedU16(out, group);
  PutOrderedI64(out, start);
}

void WindowKeyPrefix(std::string_view key, uint16_t group, std::string* out) {
  out->clear();
  PutOrderedU32(out, static_cast<uint32_t>(key.size()));
  out->append(key);
  PutOrderedU16(out, group);
}

void TimerKey(int64_t time, uint8_t kind, uint16_t group, int64_t start,
              std::string_view key, std::string* out) {
  out->clear();
  PutOrderedI64(out, time);
  out->push_back(static_cast<char>(kind));
  PutOrderedU16(out, group);
  PutOrderedI64(out, start);
  out->append(key);
}

bool DecodeTimerKey(std::string_view in, DecodedTimer* t) {
  if (!GetOrderedI64(&in, &t->time) || in.empty()) return false;
  t->kind = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  if (!GetOrderedU16(&in, &t->group) || !GetOrderedI64(&in, &t->start)) {
    return false;
  }
  t->key = in;
  return true;
}

std::string TimerBound(int64_t time) {
  std::string out;
  PutOrderedI64(&out, SaturatingAdd(time, 1));
  return out;
}

}  // namespace internal
}  // namespace weir
