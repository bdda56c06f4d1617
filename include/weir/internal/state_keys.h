// -----------------------------------------------------------------------------
// File: internal/state_keys.h
// -----------------------------------------------------------------------------
//
// The keys the operator writes to its state columns (docs/architecture.md,
// "State layout"):
//
//   windows:  u32 len ‖ entity ‖ u16 group ‖ i64 start     (sessions)
//             u32 0xFFFFFFFF ‖ u16 group ‖ i64 start ‖ entity (fixed length)
//   timers:   i64 time ‖ u8 kind ‖ u16 group ‖ i64 start ‖ entity
//
// A window of fixed length (tumbling, hopping, a sliding tile) is stored in
// time order: its end and cleanup follow from its start, so one range scan
// per group fires the spilled windows that are due and one range delete
// cleans them up, with no timer. A session's end moves as it merges, so its
// windows are stored by entity and fire by their timers. No entity is
// 0xFFFFFFFF bytes long, so the two layouts never meet.
//
// Integers are big-endian with the sign bit flipped (internal/coding.h), so
// bytewise order is numeric order: one key's windows are contiguous, in
// group then start order, and timers sort by time, which makes firing a
// range scan up to the watermark. These bytes are on disk: changing them
// breaks every stored state.
//
// Threading: pure functions, safe from any thread.
//
// Example:
//   std::string key;
//   weir::internal::WindowKey("user-7", /*group=*/0, window.start, &key);
//   batch.Put(weir::Column::kWindows, key, payload);

#ifndef WEIR_INTERNAL_STATE_KEYS_H_
#define WEIR_INTERNAL_STATE_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace weir {
namespace internal {

// The kinds of timer in the timers column: fire a window at its end, delete
// it once allowed lateness (and what later windows need) has passed.
inline constexpr uint8_t kFireTimer = 0;
inline constexpr uint8_t kCleanupTimer = 1;

// Replaces *out with the windows key of (key, group, start).
void WindowKey(std::string_view key, uint16_t group, int64_t start,
               std::string* out);

// Replaces *out with the prefix every windows key of (key, group) starts
// with; the fixed 8-byte start follows it.
void WindowKeyPrefix(std::string_view key, uint16_t group, std::string* out);

// Replaces *out with the windows key of the fixed-length window (key,
// group, start).
void FixedWindowKey(uint16_t group, int64_t start, std::string_view key,
                    std::string* out);
// Replaces *out with the first fixed-length windows key of `group` with a
// start at or after `start`: the bound of a range of starts.
void FixedWindowBound(uint16_t group, int64_t start, std::string* out);
struct DecodedWindowKey {
  uint16_t group;
  int64_t start;
  std::string_view key;  // points into the decoded bytes
  bool fixed;            // laid out by FixedWindowKey
};
// Decodes what WindowKey or FixedWindowKey wrote. False if `in` is neither.
bool DecodeWindowKey(std::string_view in, DecodedWindowKey* w);

// Replaces *out with the timers key of a timer of `kind` at `time` for the
// window (key, group, start).
void TimerKey(int64_t time, uint8_t kind, uint16_t group, int64_t start,
              std::string_view key, std::string* out);

struct DecodedTimer {
  int64_t time;
  uint8_t kind;
  uint16_t group;
  int64_t start;
  std::string_view key;  // points into the decoded bytes
};

// Decodes what TimerKey wrote. False if `in` is too short to be a timer key.
bool DecodeTimerKey(std::string_view in, DecodedTimer* t);

// The smallest timer key with a time greater than `time`: a scan of the
// timers column up to it sees exactly the timers due at `time`.
std::string TimerBound(int64_t time);

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_STATE_KEYS_H_
