// -----------------------------------------------------------------------------
// File: time.h
// -----------------------------------------------------------------------------
//
// Event time and processing time in weir.
//
// Event time is an `EventTime`: milliseconds since the Unix epoch, UTC, the
// unit Kafka stamps records with. It may be negative (before 1970). Options
// take durations as `absl::Duration`; the engine converts them to
// milliseconds once, at `Create`.
//
// Processing time (TTL, idle partitions, checkpoint intervals) is read from a
// `Clock`, injected wherever it is used, so that tests drive a `ManualClock`
// instead of sleeping.
//
// Example:
//   weir::ManualClock clock(absl::FromUnixMillis(1767225600000));
//   clock.Advance(absl::Minutes(5));
//   weir::EventTime now = weir::ToEventTime(clock.Now());

#ifndef WEIR_TIME_H_
#define WEIR_TIME_H_

#include <cstdint>
#include <limits>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace weir {

// Milliseconds since 1970-01-01T00:00:00Z. Negative values are before 1970.
using EventTime = int64_t;

inline constexpr EventTime kMinEventTime = std::numeric_limits<int64_t>::min();
inline constexpr EventTime kMaxEventTime = std::numeric_limits<int64_t>::max();

// Whole milliseconds of `d`, rounded toward negative infinity.
inline int64_t ToMillis(absl::Duration d) {
  return absl::ToInt64Milliseconds(absl::Floor(d, absl::Milliseconds(1)));
}

inline EventTime ToEventTime(absl::Time t) { return absl::ToUnixMillis(t); }
inline absl::Time FromEventTime(EventTime t) { return absl::FromUnixMillis(t); }

// floor(a / b) for b > 0, correct for negative `a` (times before 1970).
inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// a - (a mod b) rounded toward negative infinity, for b > 0.
inline int64_t FloorTo(int64_t a, int64_t b) { return FloorDiv(a, b) * b; }

// a + b, saturating at the int64 limits instead of overflowing.
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max()
                 : std::numeric_limits<int64_t>::min();
  }
  return r;
}

// A source of processing time.
//
// Threading: implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // The process-wide wall clock. Never null, never deleted.
  static Clock* Real();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weir

#endif  // WEIR_TIME_H_
