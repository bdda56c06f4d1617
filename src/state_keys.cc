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

namespace {
constexpr uint32_t kFixedMarker = 0xFFFFFFFF;
}  // namespace

void FixedWindowKey(uint16_t group, int64_t start, std::string_view key,
                    std::string* out) {
  FixedWindowBound(group, start, out);
  out->append(key);
}

void FixedWindowBound(uint16_t group, int64_t start, std::string* out) {
  out->clear();
  PutOrderedU32(out, kFixedMarker);
  PutOrderedU16(out, group);
  PutOrderedI64(out, start);
}

bool DecodeWindowKey(std::string_view in, DecodedWindowKey* w) {
  uint32_t len;
  if (!GetOrderedU32(&in, &len)) return false;
  w->fixed = len == kFixedMarker;
  if (w->fixed) {
    if (!GetOrderedU16(&in, &w->group) || !GetOrderedI64(&in, &w->start)) {
      return false;
    }
    w->key = in;
    return true;
  }
  if (in.size() < len) return false;
  w->key = in.substr(0, len);
  in.remove_prefix(len);
  return GetOrderedU16(&in, &w->group) && GetOrderedI64(&in, &w->start) &&
         in.empty();
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
