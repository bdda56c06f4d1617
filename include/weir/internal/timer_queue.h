// -----------------------------------------------------------------------------
// File: internal/timer_queue.h
// -----------------------------------------------------------------------------
//
// The operator's in-memory timers: two queues (fire a window at its end,
// clean it up once allowed lateness has passed) of buckets by time, each
// bucket a list of references to cache slots (internal/window_cache.h).
// Buckets come out in time order, one reference at a time; within a bucket
// the last added comes out first, except that a removal moves the bucket's
// last reference into the freed place.
//
// Each slot has at most one timer, and the slot's `TimerHandle` records
// where it is, so removing a slot's timer is a lookup of its bucket and a
// swap, and buckets never fill up with dead references. The queue does not
// own the handles: calls that move references take `handle_of`, a callable
// `TimerHandle*(uint32_t slot)` giving the handle of a slot, so a handle can
// sit inside the cache entry it belongs to.
//
// Threading: not thread-safe; the operator's thread uses it. Starts no
// threads.
//
// Example:
//   weir::internal::TimerQueue timers;
//   timers.Add(/*cleanup=*/false, window.end, ref, &entry.timer);
//   while (timers.Due(/*cleanup=*/false, watermark)) {
//     const SlotRef r = timers.TakeLast(/*cleanup=*/false, handle_of);
//     ...
//   }

#ifndef WEIR_INTERNAL_TIMER_QUEUE_H_
#define WEIR_INTERNAL_TIMER_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "weir/time.h"

namespace weir {
namespace internal {

// A cache slot as it was when the reference was taken: valid only while the
// slot's generation is the same (a freed and reused slot has a new one).
struct SlotRef {
  uint32_t slot;
  uint32_t generation;
};

// Where a slot's one timer is: the queue, the bucket's time and the
// position in the bucket.
struct TimerHandle {
  EventTime time = 0;
  uint32_t pos = 0;
  bool set = false;
  bool cleanup = false;
};

class TimerQueue {
 public:
  TimerQueue() = default;
  // Not copyable or movable: it keeps iterators into its own maps.
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Adds `ref` to the bucket of `when` in the fire (or cleanup) queue and
  // records where in `*handle`. REQUIRES: the slot has no timer.
  void Add(bool cleanup, EventTime when, SlotRef ref, TimerHandle* handle) {
    TimerMap& timers = cleanup ? cleanup_ : fire_;
    TimerMap::iterator& last = cleanup ? last_cleanup_ : last_fire_;
    // std::map keeps the last-used bucket's address stable, so consecutive
    // entries of one window skip the lookup.
    if (last == timers.end() || last->first != when) {
      last = timers.try_emplace(when).first;
      if (last->second.capacity() == 0) last->second.swap(spare_);
    }
    handle->set = true;
    handle->cleanup = cleanup;
    handle->time = when;
    handle->pos = static_cast<uint32_t>(last->second.size());
    last->second.push_back(ref);
  }

  // Takes the reference `*handle` records out of its bucket (swapped with
  // the bucket's last, whose handle `handle_of` gives). Does nothing if the
  // slot has no timer.
  template <typename HandleOf>
  void Remove(TimerHandle* handle, HandleOf handle_of) {
    if (!handle->set) return;
    handle->set = false;
    TimerMap& timers = handle->cleanup ? cleanup_ : fire_;
    TimerMap::iterator& last = handle->cleanup ? last_cleanup_ : last_fire_;
    auto bucket = timers.find(handle->time);
    if (bucket == timers.end()) return;
    std::vector<SlotRef>& refs = bucket->second;
    const SlotRef moved = refs.back();
    refs[handle->pos] = moved;
    handle_of(moved.slot)->pos = handle->pos;
    refs.pop_back();
    if (refs.empty()) {
      if (last == bucket) last = timers.end();
      KeepSpare(refs);
      timers.erase(bucket);
    }
  }

  // Points the reference `handle` records at `ref` instead (its slot's
  // entry moved to ref.slot). Does nothing if the slot has no timer.
  void Retarget(const TimerHandle& handle, SlotRef ref) {
    if (!handle.set) return;
    TimerMap& timers = handle.cleanup ? cleanup_ : fire_;
    auto bucket = timers.find(handle.time);
    if (bucket != timers.end()) bucket->second[handle.pos] = ref;
  }

  // True if the fire (or cleanup) queue has a bucket at or before `time`.
  bool Due(bool cleanup, EventTime time) const {
    const TimerMap& timers = cleanup ? cleanup_ : fire_;
    return !timers.empty() && timers.begin()->first <= time;
  }

  // Takes the last reference out of the earliest bucket of the fire (or
  // cleanup) queue; its slot no longer has a timer. Taken this way, a
  // bucket comes out last-added first, one reference at a time, so a caller
  // can stop anywhere and go on later in the same order. REQUIRES: that
  // queue is not empty.
  template <typename HandleOf>
  SlotRef TakeLast(bool cleanup, HandleOf handle_of) {
    TimerMap& timers = cleanup ? cleanup_ : fire_;
    TimerMap::iterator& last = cleanup ? last_cleanup_ : last_fire_;
    std::vector<SlotRef>& refs = timers.begin()->second;
    const SlotRef ref = refs.back();
    refs.pop_back();
    if (refs.empty()) {
      if (last == timers.begin()) last = timers.end();
      KeepSpare(refs);
      timers.erase(timers.begin());
    }
    handle_of(ref.slot)->set = false;
    return ref;
  }

  // References in the earliest bucket of the fire (or cleanup) queue.
  // REQUIRES: that queue is not empty.
  size_t FirstSize(bool cleanup) const {
    return (cleanup ? cleanup_ : fire_).begin()->second.size();
  }

  // The earliest time of both queues, or kMaxEventTime if both are empty.
  EventTime Earliest() const {
    EventTime t = kMaxEventTime;
    if (!fire_.empty()) t = std::min(t, fire_.begin()->first);
    if (!cleanup_.empty()) t = std::min(t, cleanup_.begin()->first);
    return t;
  }

  bool empty() const { return fire_.empty() && cleanup_.empty(); }

 private:
  using TimerMap = std::map<EventTime, std::vector<SlotRef>>;

  // Keeps the storage of `refs`, a bucket emptied for good, for the next
  // new bucket if it is larger than the spare's and at most a few
  // megabytes: a bucket is often a window of every key, and one grown
  // afresh for each (doubling, each time on new pages) cost 6% of the page
  // faults of B7's operator at its byte bound.
  void KeepSpare(std::vector<SlotRef>& refs) {
    constexpr size_t kMaxSpare = size_t{1} << 18;  // 2 MiB of references
    if (refs.capacity() > spare_.capacity() && refs.capacity() <= kMaxSpare) {
      spare_.swap(refs);
    }
  }

  TimerMap fire_;
  TimerMap cleanup_;
  TimerMap::iterator last_fire_ = fire_.end();
  TimerMap::iterator last_cleanup_ = cleanup_.end();
  std::vector<SlotRef> spare_;  // empty; see KeepSpare
};

}  // namespace internal
}  // namespace weir

#endif  // WEIR_INTERNAL_TIMER_QUEUE_H_
