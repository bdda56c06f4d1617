// -----------------------------------------------------------------------------
// File: window.h
// -----------------------------------------------------------------------------
//
// Event-time windows and the specs that assign records to them.
//
// A `Window` is the half-open interval [start, end) of event time in
// milliseconds: a record at exactly `end` belongs to the next window.
//
// A `WindowSpec` says how a record's event time maps to windows:
//   - Tumbling(size, offset): one window per record, boundaries at
//     offset + k * size for every integer k (negative k for times before
//     1970). With no offset, windows are aligned to the Unix epoch, so a
//     daily window runs from midnight UTC to midnight UTC.
//   - Hopping(size, slide, offset): windows of `size` starting every
//     `slide`; a record belongs to size / slide windows.
//   - Session(gap): a record opens [t, t + gap); sessions of one key that
//     overlap or touch merge into one (see keyed_window_operator.h).
//   - Sliding(size, tile): "over the last `size`, as of this record". The
//     record is folded into one tile (a tumbling window of `tile`), and the
//     feature's value is the merge of the size / tile tiles ending with the
//     record's tile: the window [tile end - size, tile end). The cost per
//     record is that many tile merges, whatever the number of records.
//
// Example:
//   weir::WindowSpec minute = weir::Tumbling(absl::Minutes(1));
//   weir::WindowSpec day_in_new_york = weir::Daily(absl::Hours(5));
//   weir::Window w = minute.TumblingWindowFor(1767225600123);
//   // w == {1767225600000, 1767225660000}

#ifndef WEIR_WINDOW_H_
#define WEIR_WINDOW_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "weir/time.h"

namespace weir {

struct Window {
  EventTime start = 0;  // inclusive
  EventTime end = 0;    // exclusive

  bool Contains(EventTime t) const { return t >= start && t < end; }
  friend bool operator==(const Window& a, const Window& b) {
    return a.start == b.start && a.end == b.end;
  }
  friend bool operator<(const Window& a, const Window& b) {
    return a.start != b.start ? a.start < b.start : a.end < b.end;
  }
};

enum class WindowKind : uint8_t { kTumbling, kHopping, kSession, kSliding };

struct WindowSpec {
  WindowKind kind = WindowKind::kTumbling;

  // Length of each window (tumbling, hopping). Must be a positive whole
  // number of milliseconds.
  absl::Duration size = absl::Minutes(1);

  // Distance between window starts (hopping), or the tile (sliding).
  // REQUIRES: divides `size`.
  absl::Duration slide = absl::Minutes(1);

  // Inactivity that closes a session (session).
  absl::Duration gap = absl::Minutes(30);

  // Shifts window boundaries: they fall at offset + k * slide. Use it to
  // align daily windows to a time zone's midnight. REQUIRES: |offset| < size.
  absl::Duration offset = absl::ZeroDuration();

  // Returns kInvalidArgument naming the first bad field ("size", "slide",
  // "gap", "offset").
  absl::Status Validate() const;

  // "tumbling(1m)", "hopping(5m,1m)", "session(30m)", with "+offset" if set.
  std::string ToString() const;

  // The window of a tumbling spec holding `t`. REQUIRES: kind == kTumbling,
  // Validate() ok.
  Window TumblingWindowFor(EventTime t) const;

  // Calls fn(Window) for each window of a tumbling or hopping spec holding
  // `t`, earliest start first. For a session spec, calls it once with the
  // record's own window [t, t + gap); for a sliding spec, once with the
  // window of `size` ending with the record's tile.
  template <typename Fn>
  void ForEachWindow(EventTime t, Fn&& fn) const;

  friend bool operator==(const WindowSpec& a, const WindowSpec& b) {
    return a.kind == b.kind && a.size == b.size && a.slide == b.slide &&
           a.gap == b.gap && a.offset == b.offset;
  }
};

WindowSpec Tumbling(absl::Duration size,
                    absl::Duration offset = absl::ZeroDuration());
WindowSpec Hopping(absl::Duration size, absl::Duration slide,
                   absl::Duration offset = absl::ZeroDuration());
WindowSpec Session(absl::Duration gap);
// The last `size` as of each record, merged from tiles of `tile`.
WindowSpec Sliding(absl::Duration size, absl::Duration tile);
// One day, midnight to midnight UTC shifted by `offset`.
WindowSpec Daily(absl::Duration offset = absl::ZeroDuration());

// ---- implementation ---------------------------------------------------------

inline Window WindowSpec::TumblingWindowFor(EventTime t) const {
  const int64_t size_ms = ToMillis(size);
  const int64_t offset_ms = ToMillis(offset);
  const int64_t start = FloorTo(t - offset_ms, size_ms) + offset_ms;
  return Window{start, start + size_ms};
}

template <typename Fn>
void WindowSpec::ForEachWindow(EventTime t, Fn&& fn) const {
  switch (kind) {
    case WindowKind::kTumbling:
      fn(TumblingWindowFor(t));
      return;
    case WindowKind::kHopping: {
      const int64_t size_ms = ToMillis(size);
      const int64_t slide_ms = ToMillis(slide);
      const int64_t offset_ms = ToMillis(offset);
      const int64_t last_start = FloorTo(t - offset_ms, slide_ms) + offset_ms;
      for (int64_t start = last_start - size_ms + slide_ms; start <= last_start;
           start += slide_ms) {
        fn(Window{start, start + size_ms});
      }
      return;
    }
    case WindowKind::kSession:
      fn(Window{t, t + ToMillis(gap)});
      return;
    case WindowKind::kSliding: {
      const int64_t tile_ms = ToMillis(slide);
      const int64_t offset_ms = ToMillis(offset);
      const int64_t tile_end =
          FloorTo(t - offset_ms, tile_ms) + offset_ms + tile_ms;
      fn(Window{tile_end - ToMillis(size), tile_end});
      return;
    }
  }
}

}  // namespace weir

#endif  // WEIR_WINDOW_H_
