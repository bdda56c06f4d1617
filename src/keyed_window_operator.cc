#include "weir/keyed_window_operator.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "weir/internal/accumulators.h"
#include "weir/internal/coding.h"
#include "weir/internal/key_filter.h"
#include "weir/internal/state_keys.h"
#include "weir/internal/timer_queue.h"
#include "weir/internal/window_cache.h"
#include "weir/internal/window_state.h"
#include "weir/sketch.h"
#include "weir/status_macros.h"
#include "weir/watermark.h"

namespace weir {
namespace {

// 2: fixed-length windows stored in time order (internal/state_keys.h),
// the firing horizon in the metadata. 1: every window stored by entity,
// with timers; moved to version 2 when restored (MoveToTimeOrder).
constexpr uint8_t kMetaVersion = 2;
constexpr uint8_t kEntityOrderMetaVersion = 1;
// Flush() writes the cache to the backend in batches of this many writes.
constexpr size_t kFlushBatchEntries = 4096;

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

using internal::DecodedTimer;
using internal::DecodedWindowKey;
using internal::DecodeTimerKey;
using internal::DecodeWindowKey;
using internal::FixedWindowBound;
using internal::FixedWindowKey;
using internal::kCleanupTimer;
using internal::kFireTimer;
using internal::TimerBound;
using internal::TimerKey;
using internal::WindowKey;
using internal::WindowKeyPrefix;

}  // namespace

absl::Status KeyedWindowOptions::Validate() const {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name: must match [a-z0-9_]+ (up to 200 characters), got '", name,
        "'"));
  }
  if (features.empty() || features.size() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "features: need 1 to 65535 features, got ", features.size()));
  }
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < features.size(); ++i) {
    const FeatureSpec& f = features[i];
    const std::string where = absl::StrCat("features[", i, "]");
    if (!ValidName(f.name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".name: must match [a-z0-9_]+, got '", f.name, "'"));
    }
    if (!names.insert(f.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".name: '", f.name, "' is used twice"));
    }
    if (internal::AccSize(f.aggregate) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".aggregate: unknown aggregate kind"));
    }
    if (!f.window.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".window: is required"));
    }
    absl::Status s = f.window->Validate();
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".", s.message()));
    }
    if (f.field < -1 ||
        (f.field == -1 && f.aggregate != AggregateKind::kCount)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".field: ", AggregateKindName(f.aggregate),
                       " needs a field index >= 0, got ", f.field));
    }
    s = f.aggregator.Validate();
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".aggregator.", s.message()));
    }
  }
  if (max_out_of_orderness < absl::ZeroDuration() ||
      absl::Floor(max_out_of_orderness, absl::Milliseconds(1)) !=
          max_out_of_orderness) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_out_of_orderness: must be whole milliseconds >= 0, got ",
        absl::FormatDuration(max_out_of_orderness)));
  }
  if (allowed_lateness < absl::ZeroDuration() ||
      absl::Floor(allowed_lateness, absl::Milliseconds(1)) !=
          allowed_lateness) {
    return absl::InvalidArgumentError(
        absl::StrCat("allowed_lateness: must be whole milliseconds >= 0, got ",
                     absl::FormatDuration(allowed_lateness)));
  }
  if (idle_timeout.has_value() && *idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "idle_timeout: must be positive when set");
  }
  if (state_ttl.has_value() && *state_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("state_ttl: must be positive when set");
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock: is null");
  if (cache_max_entries < 1 || cache_max_entries > (size_t{1} << 31)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cache_max_entries: must be in 1..2^31, got ", cache_max_entries));
  }
  if (cache_max_bytes != 0 && cache_max_bytes < kMinCacheBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache_max_bytes: must be 0 (no byte bound) or at least ",
                     kMinCacheBytes, ", got ", cache_max_bytes));
  }
  return absl::OkStatus();
}

// -----------------------------------------------------------------------------

class KeyedWindowOperator::Impl {
 public:
  Impl(const KeyedWindowOptions& options, StateBackend* backend);
  ~Impl() {
    if (!cache_.has_value()) return;
    for (uint32_t slot = 0; slot < cache_->slot_count(); ++slot) {
      Entry& e = cache_->entry(slot);
      if (e.live) DestroyAccs(e.group, e.acc_data());
    }
  }

  absl::Status Init();
  absl::Status Process(const Record& record, OperatorOutput* out);
  absl::Status AdvanceWatermark(EventTime watermark, OperatorOutput* out);
  absl::Status Flush();
  EventTime watermark() const { return watermark_; }
  bool firing_pending() const { return firing_pending_; }
  OperatorStats stats() const {
    OperatorStats s = stats_;
    s.cache_entries = cache_.has_value() ? cache_->live() : 0;
    s.cache_bytes = cache_.has_value() ? CacheBytes() : 0;
    s.cache_sketch_bytes = sketch_bytes_;
    s.cache_chunks_given_back =
        cache_.has_value() ? cache_->chunks_given_back() : 0;
    return s;
  }

 private:
  struct Feature {
    std::string name;
    AggregateKind kind;
    AggregatorOptions opts;
    int field;
    size_t acc_offset;  // within the group's accumulator block
  };

  struct Group {
    WindowSpec spec;
    WindowKind kind;
    int64_t size_ms = 0;
    int64_t offset_ms = 0;
    int64_t gap_ms = 0;
    int64_t tile_ms = 0;  // sliding: the tile
    // Fixed-length kinds: the distance between window ends (a tile, the
    // hop, or the size of a tumbling window).
    int64_t slide_ms = 0;
    // Fixed-length kinds: the smallest window start the backend may hold
    // (kMinEventTime after a restore: any), kMaxEventTime if none. With the
    // spill horizon, it bounds what the firing scan and the cleanup's
    // range delete cover.
    EventTime backend_floor = kMaxEventTime;
    // How long after its end a window's state is still needed, before
    // allowed lateness: size - tile for a sliding tile (later windows merge
    // it), 0 otherwise.
    int64_t keep_ms = 0;
    // Sliding: the largest tile end any record reached. A record in that
    // tile (the common, in-order case) has no later tile to re-emit.
    EventTime max_tile_end = kMinEventTime;
    // Sliding: per tile start, the keys whose tile of that start was
    // written to the backend by this operator (MayHaveSpilled); and the
    // spill horizon it was created with, at or before which any key's
    // tile may be there.
    absl::flat_hash_map<int64_t, internal::KeyFilter> spilled;
    int64_t restored_horizon = kMinEventTime;
    // Some feature keeps a sketch on the heap: accumulators must be
    // destroyed, not just dropped.
    bool has_sketch = false;
    // Where in an entry's block each sketch's accumulator is.
    std::vector<size_t> sketch_offsets;
    std::vector<int> features;  // indices into features_
    size_t acc_size = 0;        // bytes of all accumulators
    // Sliding, accumulators without heap, no TTL, and room in the entry:
    // each tile's block keeps, after the accumulators, a memo of the
    // window that ends with the tile: the merge of the tiles before it
    // (EmitSlidingWindow), and that window's end (kMinEventTime: none). A
    // record then merges the memo and its tile instead of every tile.
    bool has_memo = false;
    size_t block_size = 0;  // bytes of an entry's block: acc_size, the memo
  };

  using Entry = internal::CacheEntry;
  using SlotRef = internal::SlotRef;

  // True if `e` was last folded more than state_ttl ago.
  bool Expired(const Entry& e) const {
    return ttl_ms_.has_value() && now_ms_ - e.touched_ms >= *ttl_ms_;
  }
  void RefreshNow() {
    if (ttl_ms_.has_value()) now_ms_ = ToEventTime(options_.clock->Now());
  }

  // When a window's state is deleted: its end plus what later windows need
  // (sliding tiles) plus allowed lateness.
  EventTime CleanupTime(uint16_t g, EventTime end) const {
    return SaturatingAdd(SaturatingAdd(end, groups_[g].keep_ms), lateness_ms_);
  }
  // The end of the window of `g` that starts at `start`, for every kind
  // but sessions (whose end is in their state).
  EventTime FixedEnd(uint16_t g, EventTime start) const {
    return SaturatingAdd(start, FixedLen(g));
  }
  // The first window start of fixed-length group `g` at or after `t`:
  // starts (and so ends) fall at offset + k * slide.
  EventTime FirstStartAtOrAfter(uint16_t g, EventTime t) const {
    const Group& group = groups_[g];
    if (t == kMinEventTime || t == kMaxEventTime) return t;
    return SaturatingAdd(
        FloorTo(SaturatingAdd(t, group.slide_ms - 1 - group.offset_ms),
                group.slide_ms),
        group.offset_ms);
  }
  int64_t FixedLen(uint16_t g) const {
    const Group& group = groups_[g];
    return group.kind == WindowKind::kSliding ? group.tile_ms : group.size_ms;
  }
  // Sliding tiles never fire on their own: they are emitted merged, per
  // record.
  bool Fires(uint16_t g) const {
    return groups_[g].kind != WindowKind::kSliding;
  }
  // Every kind but sessions: stored in time order, with no timer.
  bool FixedLength(uint16_t g) const {
    return groups_[g].kind != WindowKind::kSession;
  }
  // Replaces *out with the windows key of (key, g, start) in g's layout.
  void StateKey(uint16_t g, std::string_view key, int64_t start,
                std::string* out) const {
    if (FixedLength(g)) {
      FixedWindowKey(g, start, key, out);
    } else {
      WindowKey(key, g, start, out);
    }
  }
  // When the firing scan next has work in fixed-length group `g`'s stored
  // windows: the first window end past fired_through_ (if `g` fires and
  // windows ending there may be stored), or the cleanup of its oldest
  // stored window; kMaxEventTime if nothing is stored.
  EventTime FixedDue(uint16_t g) const;
  // A window of fixed-length group `g` starting at `start` was written.
  void NoteFixedWritten(uint16_t g, EventTime start) {
    Group& group = groups_[g];
    group.backend_floor = std::min(group.backend_floor, start);
    next_due_ = std::min(next_due_, FixedDue(g));
  }

  // Releases the heap state of a group's accumulator block (sketches).
  void DestroyAccs(uint16_t g, char* acc) const {
    if (!groups_[g].has_sketch) return;
    for (int i : groups_[g].features) {
      internal::AccDestroy(features_[i].kind, acc + features_[i].acc_offset);
    }
  }

  // The memo of a tile (Group::has_memo): the end of the window it is for,
  // and the merge of that window's tiles before this one.
  EventTime MemoEnd(const Entry& e) const {
    EventTime end;
    std::memcpy(
        &end,
        reinterpret_cast<const char*>(e.acc.data()) + groups_[e.group].acc_size,
        sizeof(end));
    return end;
  }
  void SetMemoEnd(Entry& e, EventTime end) {
    std::memcpy(e.acc_data() + groups_[e.group].acc_size, &end, sizeof(end));
  }
  char* MemoAcc(Entry& e) {
    return e.acc_data() + groups_[e.group].acc_size + sizeof(EventTime);
  }
  // Drops the memos of `node`'s tiles of `g` after `start`: a record folded
  // into the tile at `start` changed the windows they are for.
  void ForgetLaterMemos(uint16_t g, uint32_t node, EventTime start) {
    for (const internal::WindowRef& w : cache_->node(node).windows) {
      if (w.group == g && w.start > start) {
        SetMemoEnd(cache_->entry(w.slot), kMinEventTime);
      }
    }
  }

  // Counts the heap of a cached entry's sketches again, after anything
  // changed them: sketch_bytes_ is the sum of the live entries'
  // sketch_bytes.
  void CountSketches(Entry& e) {
    if (!groups_[e.group].has_sketch) return;
    size_t bytes = 0;
    for (int i : groups_[e.group].features) {
      bytes += internal::AccHeapBytes(features_[i].kind,
                                      e.acc_data() + features_[i].acc_offset);
    }
    bytes = std::min<size_t>(bytes, UINT32_MAX);
    sketch_bytes_ = sketch_bytes_ - e.sketch_bytes + bytes;
    e.sketch_bytes = static_cast<uint32_t>(bytes);
  }
  // What the cache holds (KeyedWindowOptions::cache_max_bytes), with the
  // spilled-tile filters.
  size_t CacheBytes() const {
    return cache_->HeldBytes() + sketch_bytes_ +
           spilled_filters_ * filter_bytes_;
  }

  // False if the backend surely holds no window of group `g` starting at
  // `start` for `node`'s key. Sliding groups keep a filter per tile start
  // of the keys whose tile was spilled, so a merge of a key's tiles reads
  // only what can be there, and a tile made again in the cache is complete
  // (nothing to read) unless its key's tile may have been spilled. Other
  // groups go by the group's spill horizon alone: a filter is 128 KiB of
  // the cache's bytes, and a sliding group's tiles are where the reads
  // were.
  bool Filtered(uint16_t g) const {
    return groups_[g].kind == WindowKind::kSliding;
  }
  bool MayHaveSpilled(uint16_t g, uint32_t node, int64_t start) const {
    if (cache_->CompleteInMemory(g, start)) return false;
    const Group& group = groups_[g];
    if (!Filtered(g) || start <= group.restored_horizon) return true;
    auto it = group.spilled.find(start);
    return it != group.spilled.end() &&
           it->second.MayContain(cache_->node(node).hash);
  }
  // Drops the filters of tiles whose cleanup has passed: no record reads
  // or makes them any more.
  void DropSpilledFilters();
  bool OverByteBound() const { return OverByteBound(0); }
  // True if the cache would reach its byte bound holding `growth` bytes
  // more.
  bool OverByteBound(size_t growth) const {
    return options_.cache_max_bytes != 0 &&
           CacheBytes() + growth >= options_.cache_max_bytes;
  }
  // Makes room under the byte bound for `growth` bytes more (the chunk a
  // new window's slot or a new key's node would commit; 0 to meet the
  // bound): gives back free chunks first, and evicts only if that is not
  // enough. A slot or node freed by eviction or firing is taken again at
  // no cost in bytes, so a cache at its bound evicts a batch and fills the
  // freed slots, instead of giving their memory back and committing it
  // again. One slab grows into the other's free chunks only while that
  // one keeps a chunk free: else the two would trade the same chunk back
  // and forth.
  absl::Status MakeRoom(size_t growth) {
    if (OverByteBound(growth) &&
        (!ShrinkCache(growth, growth == 0 ? 0 : cache_->chunk_slots()) ||
         OverByteBound(growth))) {
      return EvictSome();
    }
    return absl::OkStatus();
  }

  // Cache.
  // `node` is the key's node in the cache, held for the record.
  absl::StatusOr<uint32_t> FindOrInsert(uint16_t g, uint32_t node,
                                        const Window& w);
  absl::StatusOr<uint32_t> AllocSlot(uint16_t g, uint32_t node, const Window& w,
                                     bool complete);
  void FreeSlot(uint32_t slot);
  absl::Status EvictSome();
  // A cache bounded in bytes counts its free slots and nodes (they stay
  // allocated): when it would be over its bound holding `growth` bytes
  // more, gives back the chunks of as many as that needs, moving the
  // entries that can move (not pinned or queued for re-emission) out of
  // the last chunks, with their timers and session lists; each slab keeps
  // `keep_free` free elements. True if the cache holds less after.
  bool ShrinkCache(size_t growth = 0, size_t keep_free = 0);
  // Evicts until the cache is within cache_max_bytes, or nothing more can
  // go.
  absl::Status EvictToByteBound();
  void ScheduleTimer(uint32_t slot);

  // Backend transfer.
  //
  // Merges what the backend holds of `e`'s window into it, unless it is
  // complete already (the common case, checked inline).
  absl::Status MakeComplete(Entry& e) {
    return e.complete ? absl::OkStatus() : MergeStoredPart(e);
  }
  absl::Status MergeStoredPart(Entry& e);
  absl::Status Persist(Entry& e);
  void DeleteFromBackend(const Entry& e);
  void EncodePayload(Entry& e, std::string* out) const;
  absl::Status DecodePayload(uint16_t g, std::string_view stored, int64_t* end,
                             int64_t* max_offset, char* acc) const;
  absl::Status ApplyBatch();
  // Applies the batch once it holds kFlushBatchEntries writes: loops that
  // write per window (flushing, evicting, firing, cleaning up) write in
  // slices, so a batch never holds a write per window of a whole group.
  absl::Status ApplyFullBatch() {
    return batch_.size() >= kFlushBatchEntries ? ApplyBatch()
                                               : absl::OkStatus();
  }

  // Firing.
  // Fires what is due, one step of max_fire_updates if `bounded`.
  absl::Status FireDue(OperatorOutput* out, bool bounded);
  absl::Status FireEntry(uint32_t slot, OperatorOutput* out);
  // Fires and cleans up spilled windows by their backend timers until `out`
  // holds `limit` updates; `*done` says whether it got through all that are
  // due.
  absl::Status ScanBackendTimers(OperatorOutput* out, size_t limit, bool* done);
  // Fires the stored fixed-length windows that ended since fired_through_
  // and deletes those whose cleanup is due, one range per group, until
  // `out` holds `limit` updates; `*done` as above.
  absl::Status ScanFixedWindows(OperatorOutput* out, size_t limit, bool* done);
  // Restored state of meta version 1: moves the fixed-length windows into
  // time order and drops their timers, windows with fire timers still due
  // firing as they would have.
  absl::Status MoveToTimeOrder();
  absl::Status RefreshBackendTimerMin();
  void Emit(uint16_t g, std::string_view key, const Window& w,
            int64_t max_offset, const char* acc, OperatorOutput* out);
  absl::Status EmitReemits(OperatorOutput* out);
  void UpdateNextDue();

  // Folding.
  // Converts the record's values into inputs_; kInvalidArgument if one
  // cannot be taken.
  absl::Status PrepareInputs(const Record& r);
  // Starts loading the sketches of the key's cached windows.
  void PrefetchSketches(uint32_t node);
  absl::Status FoldRecord(uint32_t node, const Record& r, EventTime late_ref,
                          OperatorOutput* out);
  absl::Status FoldWindow(uint16_t g, uint32_t node, const Record& r,
                          const Window& w);
  absl::Status EmitSliding(uint16_t g, uint32_t node, const Record& r,
                           const Window& tile, OperatorOutput* out);
  absl::Status EmitSlidingWindow(uint16_t g, uint32_t node,
                                 std::string_view key, EventTime end,
                                 int64_t offset, OperatorOutput* out);
  // Caches the tiles EmitSlidingWindow read back for the key at `node`.
  absl::Status CacheReadBack(uint16_t g, uint32_t node);
  absl::Status TileExists(uint16_t g, uint32_t node, std::string_view key,
                          EventTime start, bool* exists);
  absl::Status FoldSession(uint16_t g, uint32_t node, const Record& r);
  absl::Status MergeSessions(uint16_t g, uint32_t node, const Record& r,
                             const std::pair<uint16_t, std::string>& key);
  absl::Status LoadSessions(uint16_t g, uint32_t node, std::string_view key);
  void FoldInputs(Entry& e, const Group& group, const Record& r);
  void QueueReemit(uint32_t slot);

  std::string Signature() const;
  std::string MetaKey() const { return absl::StrCat("op/", options_.name); }
  absl::Status WriteMeta();

  KeyedWindowOptions options_;
  StateBackend* backend_;
  int64_t lateness_ms_;
  std::optional<int64_t> ttl_ms_;
  int64_t now_ms_ = 0;  // processing time, refreshed per call when TTL is on
  std::vector<Feature> features_;
  std::vector<Group> groups_;
  size_t max_group_size_ = 0;               // features in the largest group
  bool any_sketch_ = false;                 // some group has_sketch
  std::vector<internal::AggInput> inputs_;  // per feature, reused per record
  std::vector<int> valued_;                 // the features with a field

  WatermarkTracker tracker_;
  EventTime watermark_ = kMinEventTime;
  EventTime next_due_ = kMaxEventTime;
  EventTime backend_timer_min_ = kMaxEventTime;
  // The last FireDue ended a step with windows still due, and if it ended
  // in the backend's timers, the first timer key left.
  bool firing_pending_ = false;
  std::string scan_resume_;
  std::vector<std::string> visited_timers_;  // ScanBackendTimers', reused
  // Every fixed-length window that ends at or before this has fired: the
  // watermark when the scan of stored fixed-length windows last finished.
  EventTime fired_through_ = kMinEventTime;
  // Where a firing step that ended in the fixed-length windows goes on.
  uint16_t fixed_scan_group_ = 0;
  std::string fixed_resume_;
  // Restored from a checkpoint taken between two firing steps: the windows
  // keys of fixed-length windows that fired from the cache before it, which
  // the scan must not fire again. Cleared when that scan finishes.
  absl::flat_hash_set<std::string> fired_before_checkpoint_;
  std::string FiringMetaKey() const { return MetaKey() + "/firing"; }
  // Between two firing steps, Flush writes where firing stands: the fixed
  // scan's place and the windows that fired from the cache meanwhile.
  void WriteFiringState();
  absl::Status ReadFiringState();
  // Every backend timer at or before this time is deleted: scans of the
  // timers start after it, not at the tombstones of every timer that ever
  // fired (kMinEventTime: from the first key).
  EventTime timers_deleted_to_ = kMinEventTime;
  std::string TimerFloorKey() const {
    return timers_deleted_to_ == kMinEventTime ? std::string()
                                               : TimerBound(timers_deleted_to_);
  }
  // A timer at `when` is written to the backend.
  void NoteBackendTimer(EventTime when) {
    backend_timer_min_ = std::min(backend_timer_min_, when);
    if (when <= timers_deleted_to_) {
      timers_deleted_to_ = when == kMinEventTime ? kMinEventTime : when - 1;
    }
  }

  // Set by Init, once the groups are known.
  std::optional<internal::WindowCache> cache_;
  size_t sketch_bytes_ = 0;     // heap of the cached entries' sketches
  size_t spilled_filters_ = 0;  // Group::spilled, all groups
  // A spilled-tile filter's size: the largest, or under a byte bound at
  // most a 64th of it, so that a small cache is not all filters.
  size_t filter_bytes_ = internal::KeyFilter::kMaxBytes;
  // Session groups only: (group, key) -> open sessions in the cache.
  using SessionMap = absl::flat_hash_map<std::pair<uint16_t, std::string>,
                                         absl::InlinedVector<uint32_t, 2>>;
  SessionMap sessions_;
  // The open sessions of a session entry's group and key.
  SessionMap::iterator FindSessions(const Entry& e) {
    return sessions_.find(
        std::make_pair(e.group, std::string(cache_->KeyOf(e))));
  }
  bool session_backend_maybe_ = false;
  // The in-memory timers of cached entries.
  auto TimerHandleOf() {
    return [this](uint32_t slot) { return &cache_->entry(slot).timer; };
  }
  // `e` is the entry in `slot`.
  void AddTimer(bool cleanup, EventTime when, uint32_t slot, Entry& e) {
    timers_.Add(cleanup, when, SlotRef{slot, e.generation}, &e.timer);
    next_due_ = std::min(next_due_, when);
  }
  void RemoveTimer(Entry& e) {
    if (e.timer.set) timers_.Remove(&e.timer, TimerHandleOf());
  }
  internal::TimerQueue timers_;
  std::vector<SlotRef> reemit_;

  StateWriteBatch batch_;
  std::string scratch_key_;
  std::string scratch_value_;
  std::string scratch_read_;
  std::vector<uint64_t> scratch_acc_;
  std::vector<uint64_t> sliding_acc_;
  std::vector<internal::WindowRef> tiles_;  // EmitSlidingWindow's, reused
  // The payloads of the tiles EmitSlidingWindow read back, to cache
  // (CacheReadBack): the first read_back_count_ are this call's.
  std::vector<std::string> read_back_;
  size_t read_back_count_ = 0;
  OperatorStats stats_;
};

KeyedWindowOperator::Impl::Impl(const KeyedWindowOptions& options,
                                StateBackend* backend)
    : options_(options),
      backend_(backend),
      lateness_ms_(ToMillis(options.allowed_lateness)),
      ttl_ms_(options.state_ttl.has_value()
                  ? std::optional<int64_t>(ToMillis(*options.state_ttl))
                  : std::nullopt),
      tracker_(WatermarkOptions{options.max_out_of_orderness,
                                options.idle_timeout, options.clock}) {}

absl::Status KeyedWindowOperator::Impl::Init() {
  for (size_t i = 0; i < options_.features.size(); ++i) {
    const FeatureSpec& f = options_.features[i];
    size_t g = 0;
    while (g < groups_.size() && !(groups_[g].spec == *f.window)) ++g;
    if (g == groups_.size()) {
      Group group;
      group.spec = *f.window;
      group.kind = f.window->kind;
      group.size_ms = ToMillis(f.window->size);
      group.offset_ms = ToMillis(f.window->offset);
      if (group.kind == WindowKind::kSliding) {
        group.tile_ms = ToMillis(f.window->slide);
        group.keep_ms = group.size_ms - group.tile_ms;
      }
      group.gap_ms = ToMillis(f.window->gap);
      group.slide_ms = group.kind == WindowKind::kTumbling
                           ? group.size_ms
                           : ToMillis(f.window->slide);
      groups_.push_back(group);
    }
    Group& group = groups_[g];
    features_.push_back(
        Feature{f.name, f.aggregate, f.aggregator, f.field, group.acc_size});
    group.acc_size += internal::AccSize(f.aggregate);
    if (internal::IsSketch(f.aggregate)) {
      group.has_sketch = true;
      group.sketch_offsets.push_back(features_.back().acc_offset);
      any_sketch_ = true;
    }
    group.features.push_back(static_cast<int>(i));
  }
  // A feature with no field always takes the default input.
  inputs_.resize(features_.size());
  for (size_t i = 0; i < features_.size(); ++i) {
    if (features_[i].field >= 0) valued_.push_back(static_cast<int>(i));
  }
  size_t max_acc = 0;
  for (Group& g : groups_) {
    const size_t with_memo = 2 * g.acc_size + sizeof(EventTime);
    g.has_memo = g.kind == WindowKind::kSliding && !g.has_sketch &&
                 !ttl_ms_.has_value() &&
                 with_memo <= internal::CacheEntry::kInlineAccBytes;
    g.block_size = g.has_memo ? with_memo : g.acc_size;
    max_acc = std::max(max_acc, g.acc_size);
    max_group_size_ = std::max(max_group_size_, g.features.size());
  }
  scratch_acc_.resize(max_acc / 8 + 1);
  sliding_acc_.resize(max_acc / 8 + 1);
  cache_.emplace(groups_.size(), options_.cache_max_bytes,
                 options_.cache_max_entries);
  if (!cache_->reserved()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cache: cannot reserve ", cache_->ReservedBytes(),
                     " bytes of address space for cache_max_entries ",
                     options_.cache_max_entries,
                     " (is the process's address space "
                     "limited? RLIMIT_AS)"));
  }
  if (options_.cache_max_bytes != 0) {
    filter_bytes_ = internal::KeyFilter(options_.cache_max_bytes / 64).bytes();
  }

  // Resume from the backend.
  absl::Status s = backend_->Get(Column::kMeta, MetaKey(), &scratch_read_);
  if (absl::IsNotFound(s)) return absl::OkStatus();
  WEIR_RETURN_IF_ERROR(s);
  std::string_view in = scratch_read_;
  uint32_t sig_len;
  const uint8_t version = in.empty() ? 0 : static_cast<uint8_t>(in[0]);
  if (version != kMetaVersion && version != kEntityOrderMetaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "operator '", options_.name,
        "': stored operator metadata has an unknown format version"));
  }
  in.remove_prefix(1);
  if (!internal::GetFixed32(&in, &sig_len) || in.size() < sig_len) {
    return absl::DataLossError("operator metadata is truncated");
  }
  const std::string_view sig = in.substr(0, sig_len);
  in.remove_prefix(sig_len);
  if (sig != Signature()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "operator '", options_.name,
        "': the state was written by feature set [", std::string(sig),
        "] but this operator declares [", Signature(),
        "]; restore with the original features or start from empty state"));
  }
  uint32_t n_groups;
  if (!internal::GetFixed32(&in, &n_groups) || n_groups != groups_.size()) {
    return absl::DataLossError("operator metadata is truncated");
  }
  for (uint16_t g = 0; g < groups_.size(); ++g) {
    uint64_t h;
    if (!internal::GetFixed64(&in, &h)) {
      return absl::DataLossError("operator metadata is truncated");
    }
    cache_->set_horizon(g, static_cast<int64_t>(h));
    groups_[g].restored_horizon = cache_->horizon(g);
    if (FixedLength(g) && cache_->horizon(g) != kMinEventTime) {
      groups_[g].backend_floor = kMinEventTime;
    }
    if (groups_[g].kind == WindowKind::kSession &&
        cache_->horizon(g) != kMinEventTime) {
      session_backend_maybe_ = true;
    }
  }
  uint64_t wm;
  if (!internal::GetFixed64(&in, &wm)) {
    return absl::DataLossError("operator metadata is truncated");
  }
  watermark_ = static_cast<EventTime>(wm);
  if (version == kMetaVersion) {
    uint64_t fired;
    if (!internal::GetFixed64(&in, &fired)) {
      return absl::DataLossError("operator metadata is truncated");
    }
    fired_through_ = static_cast<EventTime>(fired);
  }
  WEIR_RETURN_IF_ERROR(tracker_.Decode(in));
  if (version == kEntityOrderMetaVersion) {
    WEIR_RETURN_IF_ERROR(MoveToTimeOrder());
  } else {
    WEIR_RETURN_IF_ERROR(ReadFiringState());
  }
  WEIR_RETURN_IF_ERROR(RefreshBackendTimerMin());
  UpdateNextDue();
  // Flushed between two firing steps: the rest fires before any record.
  firing_pending_ = firing_pending_ || next_due_ <= watermark_;
  return absl::OkStatus();
}

void KeyedWindowOperator::Impl::WriteFiringState() {
  if (!firing_pending_) {
    batch_.Delete(Column::kMeta, FiringMetaKey());
    return;
  }
  std::string state;
  internal::PutFixed32(&state, fixed_scan_group_);
  internal::PutFixed32(&state, static_cast<uint32_t>(fixed_resume_.size()));
  state.append(fixed_resume_);
  auto add = [&](std::string_view key) {
    internal::PutFixed32(&state, static_cast<uint32_t>(key.size()));
    state.append(key);
  };
  for (const std::string& key : fired_before_checkpoint_) add(key);
  // A cached window that ended after fired_through_ and has fired: from
  // the cache, in a step before this one. Restored, it is in the backend
  // only, where the scan would find it due.
  std::string key;
  for (uint32_t slot = 0; slot < cache_->slot_count(); ++slot) {
    const Entry& e = cache_->entry(slot);
    if (!e.live || !Fires(e.group) || !FixedLength(e.group) ||
        e.end <= fired_through_ || e.end > watermark_ ||
        (e.timer.set && !e.timer.cleanup)) {
      continue;
    }
    FixedWindowKey(e.group, e.start, cache_->KeyOf(e), &key);
    if (!fired_before_checkpoint_.contains(key)) add(key);
  }
  batch_.Put(Column::kMeta, FiringMetaKey(), state);
}

absl::Status KeyedWindowOperator::Impl::ReadFiringState() {
  absl::Status s =
      backend_->Get(Column::kMeta, FiringMetaKey(), &scratch_read_);
  if (absl::IsNotFound(s)) return absl::OkStatus();
  WEIR_RETURN_IF_ERROR(s);
  std::string_view in = scratch_read_;
  uint32_t group, len;
  if (!internal::GetFixed32(&in, &group) || group > groups_.size() ||
      !internal::GetFixed32(&in, &len) || in.size() < len) {
    return absl::DataLossError("operator firing state is truncated");
  }
  fixed_scan_group_ = static_cast<uint16_t>(group);
  fixed_resume_.assign(in.substr(0, len));
  in.remove_prefix(len);
  while (!in.empty()) {
    if (!internal::GetFixed32(&in, &len) || in.size() < len) {
      return absl::DataLossError("operator firing state is truncated");
    }
    fired_before_checkpoint_.emplace(in.substr(0, len));
    in.remove_prefix(len);
  }
  firing_pending_ = true;
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::MoveToTimeOrder() {
  // A window whose fire timer is still stored has not fired: firing goes on
  // from before the earliest. (A window of a step that fired before the
  // checkpoint, with a later end than that, fires again: the same update.)
  fired_through_ = watermark_;
  std::unique_ptr<StateIterator> it = backend_->Scan(Column::kTimers, "", "");
  for (; it->Valid(); it->Next()) {
    DecodedTimer t;
    if (!DecodeTimerKey(it->key(), &t) || t.group >= groups_.size()) {
      return absl::DataLossError(absl::StrCat("operator '", options_.name,
                                              "': undecodable timer key"));
    }
    if (t.kind == kFireTimer && FixedLength(t.group)) {
      fired_through_ = std::min(fired_through_, SaturatingAdd(t.time, -1));
    }
  }
  WEIR_RETURN_IF_ERROR(it->status());
  // Each slice moves whole windows (a put and a delete), so a move cut
  // short goes on from where it stopped: the windows still stored by
  // entity are the ones to move, and the timers are still all there.
  std::string moved, session_end;
  FixedWindowBound(0, kMinEventTime, &session_end);
  it = backend_->Scan(Column::kWindows, "", session_end);
  for (; it->Valid(); it->Next()) {
    DecodedWindowKey w;
    if (!DecodeWindowKey(it->key(), &w) || w.group >= groups_.size()) {
      return absl::DataLossError(absl::StrCat("operator '", options_.name,
                                              "': undecodable window key"));
    }
    if (!FixedLength(w.group)) continue;
    FixedWindowKey(w.group, w.start, w.key, &moved);
    batch_.Put(Column::kWindows, moved, it->value());
    batch_.Delete(Column::kWindows, it->key());
    Group& group = groups_[w.group];
    group.backend_floor = std::min(group.backend_floor, w.start);
    WEIR_RETURN_IF_ERROR(ApplyFullBatch());
  }
  WEIR_RETURN_IF_ERROR(it->status());
  it.reset();
  WEIR_RETURN_IF_ERROR(WriteMeta());
  WEIR_RETURN_IF_ERROR(ApplyBatch());
  // The fixed-length windows' timers are not read any more (a firing scan
  // would pass over them): dropped.
  it = backend_->Scan(Column::kTimers, "", "");
  for (; it->Valid(); it->Next()) {
    DecodedTimer t;
    if (DecodeTimerKey(it->key(), &t) && t.group < groups_.size() &&
        FixedLength(t.group)) {
      batch_.Delete(Column::kTimers, it->key());
      WEIR_RETURN_IF_ERROR(ApplyFullBatch());
    }
  }
  WEIR_RETURN_IF_ERROR(it->status());
  return ApplyBatch();
}

std::string KeyedWindowOperator::Impl::Signature() const {
  std::vector<std::string> parts;
  for (const Group& g : groups_) {
    std::vector<std::string> fs;
    for (int i : g.features) {
      const Feature& f = features_[i];
      std::string sig = absl::StrCat(f.name, ":", AggregateKindName(f.kind),
                                     ":", f.opts.decimal_scale, ":",
                                     static_cast<int>(f.opts.null_policy));
      // A sketch merges only with sketches of its own parameter. The
      // default precision adds nothing, so state written before it was
      // part of the signature still restores.
      if (f.kind == AggregateKind::kDistinctCount &&
          f.opts.hll_precision != HyperLogLog::kDefaultPrecision) {
        absl::StrAppend(&sig, ":p", f.opts.hll_precision);
      }
      if (f.kind == AggregateKind::kQuantile) {
        absl::StrAppend(&sig, ":m",
                        QuantileHistogram::BucketsPerBinade(
                            f.opts.quantile_relative_error));
      }
      fs.push_back(std::move(sig));
    }
    parts.push_back(
        absl::StrCat(g.spec.ToString(), "{", absl::StrJoin(fs, ","), "}"));
  }
  return absl::StrJoin(parts, ";");
}

absl::Status KeyedWindowOperator::Impl::WriteMeta() {
  std::string meta;
  meta.push_back(static_cast<char>(kMetaVersion));
  const std::string sig = Signature();
  internal::PutFixed32(&meta, static_cast<uint32_t>(sig.size()));
  meta.append(sig);
  internal::PutFixed32(&meta, static_cast<uint32_t>(groups_.size()));
  for (uint16_t g = 0; g < groups_.size(); ++g) {
    internal::PutFixed64(&meta, static_cast<uint64_t>(cache_->horizon(g)));
  }
  internal::PutFixed64(&meta, static_cast<uint64_t>(watermark_));
  internal::PutFixed64(&meta, static_cast<uint64_t>(fired_through_));
  meta.append(tracker_.Encode());
  batch_.Put(Column::kMeta, MetaKey(), meta);
  WriteFiringState();
  return absl::OkStatus();
}

// ---- processing -------------------------------------------------------------

absl::Status KeyedWindowOperator::Impl::Process(const Record& r,
                                                OperatorOutput* out) {
  ++stats_.records_in;
  RefreshNow();
  // Due windows fire before the record folds, however many steps the
  // caller left (max_fire_updates).
  if (firing_pending_) WEIR_RETURN_IF_ERROR(FireDue(out, /*bounded=*/false));
  // A new key's node that would commit a chunk past the byte bound: room
  // first, as for a window (MakeRoom).
  if (options_.cache_max_bytes != 0 && cache_->NodeGrowthBytes() != 0 &&
      OverByteBound(cache_->NodeGrowthBytes()) &&
      !cache_->FindKey(r.key).has_value()) {
    WEIR_RETURN_IF_ERROR(MakeRoom(cache_->NodeGrowthBytes()));
  }
  // One lookup of the key serves every group's windows. Its entries load
  // while the values are converted.
  const uint32_t node = cache_->Hold(r.key);
  cache_->Prefetch(node);
  absl::Status s = PrepareInputs(r);
  if (s.ok()) {
    if (any_sketch_) PrefetchSketches(node);
    const EventTime late_ref =
        std::max(tracker_.PartitionWatermark(r.partition), watermark_);
    s = FoldRecord(node, r, late_ref, out);
  } else {
    ++stats_.records_failed;
  }
  cache_->Release(node);
  WEIR_RETURN_IF_ERROR(s);
  if (!reemit_.empty()) WEIR_RETURN_IF_ERROR(EmitReemits(out));
  // Sketches grow without taking a slot: the byte bound is checked here
  // too, and met before the next record unless nothing can be evicted.
  // (After the re-emissions: an entry queued for one can neither be
  // evicted nor move.)
  if (OverByteBound()) WEIR_RETURN_IF_ERROR(EvictToByteBound());

  tracker_.Observe(r.partition, r.event_time);
  watermark_ = std::max(watermark_, tracker_.Combined());
  if (watermark_ >= next_due_) {
    WEIR_RETURN_IF_ERROR(FireDue(out, /*bounded=*/true));
  }
  return absl::OkStatus();
}

// The per-record steps (PrepareInputs, FoldWindow, FindOrInsert,
// FoldInputs) are inlined into Process and FoldRecord: as calls, their
// frames and Status returns were a tenth of a record's instructions.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status
KeyedWindowOperator::Impl::PrepareInputs(const Record& r) {
  // Validate and convert every value before touching any state.
  for (int i : valued_) {
    const Feature& f = features_[i];
    if (static_cast<size_t>(f.field) >= r.values.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature '", f.name, "' reads field ", f.field,
                       " but the record has ", r.values.size(), " values"));
    }
    absl::Status s =
        internal::Prepare(f.kind, f.opts, r.values[f.field], &inputs_[i]);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature '", f.name, "': ", s.message()));
    }
  }
  return absl::OkStatus();
}

void KeyedWindowOperator::Impl::PrefetchSketches(uint32_t node) {
  for (const internal::WindowRef& w : cache_->node(node).windows) {
    const Group& group = groups_[w.group];
    if (!group.has_sketch) continue;
    const char* acc = cache_->entry(w.slot).acc_data();
    for (size_t offset : group.sketch_offsets) {
      // An inline value needs no prefetch (sketch() is null).
      __builtin_prefetch(
          reinterpret_cast<const internal::SketchAcc*>(acc + offset)->sketch());
    }
  }
}

absl::Status KeyedWindowOperator::Impl::FoldRecord(uint32_t node,
                                                   const Record& r,
                                                   EventTime late_ref,
                                                   OperatorOutput* out) {
  const EventTime t = r.event_time;
  LateRecord* late = nullptr;
  for (uint16_t g = 0; g < groups_.size(); ++g) {
    const Group& group = groups_[g];
    bool missed = false;
    switch (group.kind) {
      case WindowKind::kTumbling: {
        const int64_t start =
            FloorTo(t - group.offset_ms, group.size_ms) + group.offset_ms;
        const Window w{start, start + group.size_ms};
        if (SaturatingAdd(w.end, lateness_ms_) <= late_ref) {
          missed = true;
        } else {
          WEIR_RETURN_IF_ERROR(FoldWindow(g, node, r, w));
        }
        break;
      }
      case WindowKind::kHopping: {
        absl::Status s;
        group.spec.ForEachWindow(t, [&](const Window& w) {
          if (!s.ok()) return;
          if (SaturatingAdd(w.end, lateness_ms_) <= late_ref) {
            missed = true;
          } else {
            s = FoldWindow(g, node, r, w);
          }
        });
        WEIR_RETURN_IF_ERROR(s);
        break;
      }
      case WindowKind::kSliding: {
        const int64_t start =
            FloorTo(t - group.offset_ms, group.tile_ms) + group.offset_ms;
        const Window tile{start, start + group.tile_ms};
        if (SaturatingAdd(tile.end, lateness_ms_) <= late_ref) {
          missed = true;
        } else {
          WEIR_RETURN_IF_ERROR(FoldWindow(g, node, r, tile));
          // Only a record behind the latest tile (of any key) can have
          // later tiles of its key.
          if (group.has_memo && tile.end < group.max_tile_end) {
            ForgetLaterMemos(g, node, tile.start);
          }
          WEIR_RETURN_IF_ERROR(EmitSliding(g, node, r, tile, out));
        }
        break;
      }
      case WindowKind::kSession:
        if (SaturatingAdd(SaturatingAdd(t, group.gap_ms), lateness_ms_) <=
            late_ref) {
          missed = true;
        } else {
          WEIR_RETURN_IF_ERROR(FoldSession(g, node, r));
        }
        break;
    }
    if (missed) {
      if (late == nullptr) {
        out->late.push_back(LateRecord{
            std::string(r.key), t, r.partition, r.offset, late_ref, {}});
        late = &out->late.back();
        ++stats_.records_late;
      }
      for (int i : group.features) late->features.push_back(features_[i].name);
    }
  }
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::AdvanceWatermark(EventTime wm,
                                                         OperatorOutput* out) {
  RefreshNow();
  tracker_.AdvanceTo(wm);
  watermark_ = std::max(watermark_, tracker_.Combined());
  if (watermark_ >= next_due_) {
    WEIR_RETURN_IF_ERROR(FireDue(out, /*bounded=*/true));
  }
  return absl::OkStatus();
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void KeyedWindowOperator::Impl::FoldInputs(
    Entry& e, const Group& group, const Record& r) {
  char* acc = e.acc_data();
  for (int i : group.features) {
    const Feature& f = features_[i];
    internal::Fold(f.kind, f.opts, acc + f.acc_offset, inputs_[i], r.event_time,
                   r.offset);
  }
  e.max_offset = std::max(e.max_offset, r.offset);
  CountSketches(e);
  // Only TTL reads it, and it sits on the entry's second line.
  if (ttl_ms_.has_value()) e.touched_ms = now_ms_;
  e.dirty = true;
  e.referenced = true;
}

void KeyedWindowOperator::Impl::QueueReemit(uint32_t slot) {
  Entry& e = cache_->entry(slot);
  if (!e.reemit) {
    e.reemit = true;
    reemit_.push_back(cache_->RefOf(slot));
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status
KeyedWindowOperator::Impl::FoldWindow(uint16_t g, uint32_t node,
                                      const Record& r, const Window& w) {
  WEIR_ASSIGN_OR_RETURN(uint32_t slot, FindOrInsert(g, node, w));
  FoldInputs(cache_->entry(slot), groups_[g], r);
  if (w.end <= watermark_ && Fires(g)) QueueReemit(slot);  // fired: re-emit
  return absl::OkStatus();
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::StatusOr<uint32_t>
KeyedWindowOperator::Impl::FindOrInsert(uint16_t g, uint32_t node,
                                        const Window& w) {
  if (std::optional<uint32_t> found = cache_->FindIn(node, w.start, g)) {
    return *found;
  }
  WEIR_ASSIGN_OR_RETURN(
      uint32_t slot, AllocSlot(g, node, w, !MayHaveSpilled(g, node, w.start)));
  ScheduleTimer(slot);
  return slot;
}

absl::StatusOr<uint32_t> KeyedWindowOperator::Impl::AllocSlot(uint16_t g,
                                                              uint32_t node,
                                                              const Window& w,
                                                              bool complete) {
  if (cache_->live() >= options_.cache_max_entries) {
    WEIR_RETURN_IF_ERROR(EvictSome());
  } else if (options_.cache_max_bytes != 0) {
    WEIR_RETURN_IF_ERROR(MakeRoom(cache_->EntryGrowthBytes()));
  }
  const Group& group = groups_[g];
  const uint32_t slot =
      cache_->Insert(node, g, w, complete, group.block_size / 8, now_ms_);
  Entry& e = cache_->entry(slot);
  char* acc = e.acc_data();
  for (int i : group.features) {
    internal::AccInit(features_[i].kind, acc + features_[i].acc_offset);
  }
  if (group.has_memo) SetMemoEnd(e, kMinEventTime);
  if (group.kind == WindowKind::kSession) {
    sessions_[{g, std::string(cache_->KeyOf(e))}].push_back(slot);
  }
  return slot;
}

void KeyedWindowOperator::Impl::ScheduleTimer(uint32_t slot) {
  Entry& e = cache_->entry(slot);
  RemoveTimer(e);
  if (e.end > watermark_ && Fires(e.group)) {
    AddTimer(/*cleanup=*/false, e.end, slot, e);
  } else {
    AddTimer(/*cleanup=*/true, CleanupTime(e.group, e.end), slot, e);
  }
}

void KeyedWindowOperator::Impl::FreeSlot(uint32_t slot) {
  Entry& e = cache_->entry(slot);
  RemoveTimer(e);
  sketch_bytes_ -= e.sketch_bytes;
  e.sketch_bytes = 0;
  DestroyAccs(e.group, e.acc_data());
  if (groups_[e.group].kind == WindowKind::kSession) {
    auto it = FindSessions(e);
    if (it != sessions_.end()) {
      auto& v = it->second;
      v.erase(std::remove(v.begin(), v.end(), slot), v.end());
      if (v.empty()) sessions_.erase(it);
    }
  }
  cache_->Erase(slot);
}

bool KeyedWindowOperator::Impl::ShrinkCache(size_t growth, size_t keep_free) {
  if (!OverByteBound(growth)) return false;
  const size_t before = cache_->HeldBytes();
  cache_->ShrinkBy(
      CacheBytes() + growth - options_.cache_max_bytes + 1, keep_free,
      [this](uint32_t slot) {
        const Entry& e = cache_->entry(slot);
        return !e.pinned && !e.reemit;
      },
      [this](uint32_t from, uint32_t to) {
        const Entry& e = cache_->entry(to);
        timers_.Retarget(e.timer, cache_->RefOf(to));
        if (groups_[e.group].kind == WindowKind::kSession) {
          auto it = FindSessions(e);
          if (it != sessions_.end()) {
            std::replace(it->second.begin(), it->second.end(), from, to);
          }
        }
      });
  return cache_->HeldBytes() < before;
}

absl::Status KeyedWindowOperator::Impl::EvictToByteBound() {
  while (OverByteBound()) {
    if (ShrinkCache()) continue;
    const size_t live = cache_->live();
    WEIR_RETURN_IF_ERROR(EvictSome());
    if (cache_->live() == live) break;
  }
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::EvictSome() {
  // A 64th of the cache at a time: of its entry bound, or of what it holds
  // when its byte bound is the one reached.
  const size_t target = std::max<size_t>(
      1, std::min(options_.cache_max_entries, cache_->live()) / 64);
  WEIR_RETURN_IF_ERROR(
      cache_->EvictSome(target, [this](uint32_t slot) -> absl::Status {
        Entry& e = cache_->entry(slot);
        if (e.dirty) WEIR_RETURN_IF_ERROR(Persist(e));
        FreeSlot(slot);
        ++stats_.cache_evictions;
        return ApplyFullBatch();
      }));
  return ApplyBatch();
}

// ---- backend transfer
// ---------------------------------------------------------

void KeyedWindowOperator::Impl::EncodePayload(Entry& e,
                                              std::string* out) const {
  out->clear();
  out->push_back(static_cast<char>(internal::kWindowPayloadVersion));
  internal::PutFixed64(out, static_cast<uint64_t>(e.end));
  internal::PutFixed64(out, static_cast<uint64_t>(e.max_offset));
  const Group& group = groups_[e.group];
  const char* acc = e.acc_data();
  for (int i : group.features) {
    internal::EncodeAcc(features_[i].kind, acc + features_[i].acc_offset, out);
  }
}

absl::Status KeyedWindowOperator::Impl::DecodePayload(uint16_t g,
                                                      std::string_view in,
                                                      int64_t* end,
                                                      int64_t* max_offset,
                                                      char* acc) const {
  if (in.empty() ||
      static_cast<uint8_t>(in[0]) != internal::kWindowPayloadVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("operator '", options_.name,
                     "': window state has an unknown payload version"));
  }
  in.remove_prefix(1);
  uint64_t e, o;
  if (!internal::GetFixed64(&in, &e) || !internal::GetFixed64(&in, &o)) {
    return absl::DataLossError("window state is truncated");
  }
  *end = static_cast<int64_t>(e);
  *max_offset = static_cast<int64_t>(o);
  for (int i : groups_[g].features) {
    WEIR_RETURN_IF_ERROR(internal::DecodeAcc(features_[i].kind, &in,
                                             acc + features_[i].acc_offset));
  }
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::MergeStoredPart(Entry& e) {
  StateKey(e.group, cache_->KeyOf(e), e.start, &scratch_key_);
  ++stats_.state_reads;
  absl::Status s =
      backend_->Get(Column::kWindows, scratch_key_, &scratch_read_);
  if (absl::IsNotFound(s)) {
    e.complete = true;
    return absl::OkStatus();
  }
  WEIR_RETURN_IF_ERROR(s);
  char* stored = reinterpret_cast<char*>(scratch_acc_.data());
  int64_t end, max_offset;
  WEIR_RETURN_IF_ERROR(
      DecodePayload(e.group, scratch_read_, &end, &max_offset, stored));
  char* acc = e.acc_data();
  for (int i : groups_[e.group].features) {
    const Feature& f = features_[i];
    internal::Merge(f.kind, acc + f.acc_offset, stored + f.acc_offset);
  }
  DestroyAccs(e.group, stored);
  CountSketches(e);
  e.max_offset = std::max(e.max_offset, max_offset);
  e.complete = true;
  e.in_backend = true;
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::Persist(Entry& e) {
  StateKey(e.group, cache_->KeyOf(e), e.start, &scratch_key_);
  EncodePayload(e, &scratch_value_);
  if (e.complete) {
    batch_.Put(Column::kWindows, scratch_key_, scratch_value_);
  } else {
    // The backend may hold an earlier part of this window. Rather than read
    // it back (a read per spill, the cost that grew with the state), add
    // this part to it blind, as a merge operand; the backend merges the
    // parts when the window is read. The entry then holds only what is
    // folded after this point, so no part is written twice.
    batch_.Merge(Column::kWindows, scratch_key_, scratch_value_);
    char* acc = e.acc_data();
    DestroyAccs(e.group, acc);
    for (int i : groups_[e.group].features) {
      internal::AccInit(features_[i].kind, acc + features_[i].acc_offset);
    }
    CountSketches(e);
  }
  cache_->NoteSpilled(e.group, e.start);
  if (FixedLength(e.group)) {
    // Fired by the scan of its group's windows, in time order.
    NoteFixedWritten(e.group, e.start);
    e.in_backend = true;
  } else if (!e.in_backend) {
    // Not yet fired: its fire timer is still queued (past the watermark,
    // or due in a firing step still pending).
    const bool fired = !(e.timer.set && !e.timer.cleanup);
    const EventTime when = fired ? CleanupTime(e.group, e.end) : e.end;
    TimerKey(when, fired ? kCleanupTimer : kFireTimer, e.group, e.start,
             cache_->KeyOf(e), &scratch_key_);
    batch_.Put(Column::kTimers, scratch_key_, "");
    NoteBackendTimer(when);
    e.in_backend = true;
  }
  if (Filtered(e.group)) {
    auto [it, added] =
        groups_[e.group].spilled.try_emplace(e.start, filter_bytes_);
    if (added) ++spilled_filters_;
    it->second.Add(cache_->node(e.key_node).hash);
  }
  if (groups_[e.group].kind == WindowKind::kSession) {
    session_backend_maybe_ = true;
  }
  e.dirty = false;
  return absl::OkStatus();
}

void KeyedWindowOperator::Impl::DeleteFromBackend(const Entry& e) {
  StateKey(e.group, cache_->KeyOf(e), e.start, &scratch_key_);
  batch_.Delete(Column::kWindows, scratch_key_);
  if (FixedLength(e.group)) return;  // no timers
  TimerKey(e.end, kFireTimer, e.group, e.start, cache_->KeyOf(e),
           &scratch_key_);
  batch_.Delete(Column::kTimers, scratch_key_);
  TimerKey(CleanupTime(e.group, e.end), kCleanupTimer, e.group, e.start,
           cache_->KeyOf(e), &scratch_key_);
  batch_.Delete(Column::kTimers, scratch_key_);
}

absl::Status KeyedWindowOperator::Impl::ApplyBatch() {
  if (batch_.empty()) return absl::OkStatus();
  stats_.state_writes += batch_.size();
  absl::Status s = backend_->Write(batch_);
  batch_.Clear();
  return s;
}

absl::Status KeyedWindowOperator::Impl::Flush() {
  RefreshNow();
  for (uint32_t slot = 0; slot < cache_->slot_count(); ++slot) {
    Entry& e = cache_->entry(slot);
    if (!e.live || !e.dirty) continue;
    WEIR_RETURN_IF_ERROR(Persist(e));
    // In slices: one batch of the whole cache would hold a second copy of
    // it in memory.
    WEIR_RETURN_IF_ERROR(ApplyFullBatch());
  }
  WEIR_RETURN_IF_ERROR(WriteMeta());
  return ApplyBatch();
}

// ---- firing
// -------------------------------------------------------------------

namespace {

// Arguments of emplace_back that convert to a FeatureUpdate's members where
// the update is constructed: its key and value are then built in place in
// the vector, rather than built as temporaries and moved in.
struct KeyArg {
  std::string_view key;
  operator std::string() const { return std::string(key); }
};
struct ResultArg {
  AggregateKind kind;
  const AggregatorOptions& opts;
  const char* acc;
  operator Value() const { return internal::Result(kind, opts, acc); }
};

}  // namespace

void KeyedWindowOperator::Impl::Emit(uint16_t g, std::string_view key,
                                     const Window& w, int64_t max_offset,
                                     const char* acc, OperatorOutput* out) {
  for (int i : groups_[g].features) {
    const Feature& f = features_[i];
    out->updates.emplace_back(KeyArg{key}, f.name, w,
                              ResultArg{f.kind, f.opts, acc + f.acc_offset},
                              w.end, max_offset);
  }
  stats_.updates_emitted += groups_[g].features.size();
}

absl::Status KeyedWindowOperator::Impl::EmitReemits(OperatorOutput* out) {
  for (SlotRef ref : reemit_) {
    if (!cache_->Valid(ref)) continue;
    Entry& e = cache_->entry(ref.slot);
    e.reemit = false;
    WEIR_RETURN_IF_ERROR(MakeComplete(e));
    Emit(e.group, cache_->KeyOf(e), Window{e.start, e.end}, e.max_offset,
         e.acc_data(), out);
  }
  reemit_.clear();
  return absl::OkStatus();
}

// Inlined into FireDue's loop, which calls it once per fired window.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status
KeyedWindowOperator::Impl::FireEntry(uint32_t slot, OperatorOutput* out) {
  Entry& e = cache_->entry(slot);
  if (Expired(e)) {
    if (e.in_backend || !e.complete) DeleteFromBackend(e);
    FreeSlot(slot);
    return absl::OkStatus();
  }
  if (!e.complete && FixedLength(e.group)) {
    // The backend holds earlier parts of this window. Rather than read them
    // back (a point read), add this part to them blind and free the entry:
    // the scan of the stored windows, later in this call, fires the whole
    // window from its iterator.
    if (e.dirty) WEIR_RETURN_IF_ERROR(Persist(e));
    FreeSlot(slot);
    return absl::OkStatus();
  }
  if (!e.complete) WEIR_RETURN_IF_ERROR(MakeComplete(e));
  Emit(e.group, cache_->KeyOf(e), Window{e.start, e.end}, e.max_offset,
       e.acc_data(), out);
  ++stats_.windows_fired;
  if (CleanupTime(e.group, e.end) <= watermark_) {
    if (e.in_backend) DeleteFromBackend(e);
    FreeSlot(slot);
    return absl::OkStatus();
  }
  // Kept for allowed lateness.
  if (e.in_backend && !FixedLength(e.group)) {
    TimerKey(e.end, kFireTimer, e.group, e.start, cache_->KeyOf(e),
             &scratch_key_);
    batch_.Delete(Column::kTimers, scratch_key_);
    const EventTime cleanup = CleanupTime(e.group, e.end);
    TimerKey(cleanup, kCleanupTimer, e.group, e.start, cache_->KeyOf(e),
             &scratch_key_);
    batch_.Put(Column::kTimers, scratch_key_, "");
    NoteBackendTimer(cleanup);
  }
  ScheduleTimer(slot);
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::FireDue(OperatorOutput* out,
                                                bool bounded) {
  // A step ends once it has emitted `limit` updates; the windows still due
  // keep next_due_ at or below the watermark.
  firing_pending_ = true;
  const size_t limit = bounded && options_.max_fire_updates != 0
                           ? out->updates.size() + options_.max_fire_updates
                           : SIZE_MAX;
  // One reference at a time, so that a step can end anywhere and the next
  // goes on in the same order.
  while (timers_.Due(/*cleanup=*/false, watermark_)) {
    if (out->updates.size() >= limit) return ApplyBatch();
    if (out->updates.size() == out->updates.capacity()) {
      // A bucket is often a whole window of keys: make room for its
      // updates at once rather than growing (and moving every update)
      // step by step.
      const size_t entries = std::min(timers_.FirstSize(/*cleanup=*/false),
                                      (limit - out->updates.size()));
      out->updates.reserve(
          std::max(out->updates.size() + entries * max_group_size_,
                   2 * out->updates.capacity()));
    }
    const SlotRef ref = timers_.TakeLast(/*cleanup=*/false, TimerHandleOf());
    if (cache_->Valid(ref)) WEIR_RETURN_IF_ERROR(FireEntry(ref.slot, out));
    WEIR_RETURN_IF_ERROR(ApplyFullBatch());
  }
  // One reference at a time here too: taking a whole bucket would touch
  // each entry's timer handle in one pass and the entry again in the next,
  // and a bucket of a million keys' windows pushes the first out of the
  // first-level cache before the second.
  while (timers_.Due(/*cleanup=*/true, watermark_)) {
    const SlotRef ref = timers_.TakeLast(/*cleanup=*/true, TimerHandleOf());
    if (!cache_->Valid(ref)) continue;
    Entry& e = cache_->entry(ref.slot);
    // The backend's copy of a fixed-length window has a cleanup timer of
    // the same time, which the scan below deletes it by, without a read:
    // deleting it here too would cost three writes instead of one.
    if ((e.in_backend || !e.complete) &&
        (groups_[e.group].kind == WindowKind::kSession || Expired(e))) {
      DeleteFromBackend(e);
    }
    FreeSlot(ref.slot);
    WEIR_RETURN_IF_ERROR(ApplyFullBatch());
  }
  WEIR_RETURN_IF_ERROR(ApplyBatch());
  bool done = false;
  WEIR_RETURN_IF_ERROR(ScanFixedWindows(out, limit, &done));
  if (!done) return absl::OkStatus();
  if (backend_timer_min_ <= watermark_) {
    WEIR_RETURN_IF_ERROR(ScanBackendTimers(out, limit, &done));
    if (!done) return absl::OkStatus();
  }
  firing_pending_ = false;
  DropSpilledFilters();
  UpdateNextDue();
  // Merging spilled parts into cached entries as they fired grew their
  // sketches. (Not between steps: a due entry fires from memory, in order.)
  return EvictToByteBound();
}

EventTime KeyedWindowOperator::Impl::FixedDue(uint16_t g) const {
  const Group& group = groups_[g];
  if (!FixedLength(g) || group.backend_floor == kMaxEventTime) {
    return kMaxEventTime;
  }
  const EventTime oldest_end = FixedEnd(g, group.backend_floor);
  EventTime due = CleanupTime(g, oldest_end);
  if (Fires(g) && FixedEnd(g, cache_->horizon(g)) > fired_through_) {
    // Window ends fall on the grid of window starts: the first after
    // fired_through_.
    const EventTime next =
        fired_through_ == kMinEventTime
            ? kMinEventTime
            : FirstStartAtOrAfter(g, SaturatingAdd(fired_through_, 1));
    due = std::min(due, std::max(next, oldest_end));
  }
  return due;
}

absl::Status KeyedWindowOperator::Impl::ScanFixedWindows(OperatorOutput* out,
                                                         size_t limit,
                                                         bool* done) {
  char* acc = reinterpret_cast<char*>(scratch_acc_.data());
  std::string begin, end;
  for (; fixed_scan_group_ < groups_.size();
       ++fixed_scan_group_, fixed_resume_.clear()) {
    const uint16_t g = fixed_scan_group_;
    Group& group = groups_[g];
    if (!FixedLength(g) || group.backend_floor == kMaxEventTime) continue;
    const int64_t len = FixedLen(g);
    if (Fires(g)) {
      // The stored windows that ended after fired_through_, up to the
      // watermark: starts in [lo, hi).
      const EventTime lo = std::max(
          group.backend_floor, fired_through_ == kMinEventTime
                                   ? kMinEventTime
                                   : SaturatingAdd(fired_through_, 1 - len));
      const EventTime hi = std::min(SaturatingAdd(cache_->horizon(g), 1),
                                    SaturatingAdd(watermark_, 1 - len));
      if (lo < hi) {
        if (fixed_resume_.empty()) {
          FixedWindowBound(g, lo, &begin);
        } else {
          begin = fixed_resume_;
        }
        FixedWindowBound(g, hi, &end);
        std::unique_ptr<StateIterator> it =
            backend_->Scan(Column::kWindows, begin, end);
        for (; it->Valid(); it->Next()) {
          if (out->updates.size() >= limit) {
            fixed_resume_.assign(it->key().data(), it->key().size());
            *done = false;
            return ApplyBatch();
          }
          DecodedWindowKey w;
          if (!DecodeWindowKey(it->key(), &w) || !w.fixed || w.group != g) {
            return absl::DataLossError(absl::StrCat(
                "operator '", options_.name, "': undecodable window key"));
          }
          // A cached entry owns its window: it fired from memory.
          if (cache_->Contains(w.key, w.start, g) ||
              (!fired_before_checkpoint_.empty() &&
               fired_before_checkpoint_.contains(
                   absl::string_view(it->key().data(), it->key().size())))) {
            continue;
          }
          int64_t window_end, max_offset;
          WEIR_RETURN_IF_ERROR(
              DecodePayload(g, it->value(), &window_end, &max_offset, acc));
          Emit(g, w.key, Window{w.start, window_end}, max_offset, acc, out);
          ++stats_.windows_fired;
          DestroyAccs(g, acc);
        }
        WEIR_RETURN_IF_ERROR(it->status());
      }
    }
    // Every stored window whose cleanup is due goes in one range delete:
    // those starting before `cleaned`, the first start whose cleanup is
    // after the watermark. (Their cached entries, if any, were freed by
    // their own cleanup timers before this scan.)
    const EventTime cleaned = FirstStartAtOrAfter(
        g, SaturatingAdd(SaturatingAdd(SaturatingAdd(watermark_, 1 - len),
                                       -group.keep_ms),
                         -lateness_ms_));
    if (group.backend_floor < cleaned) {
      FixedWindowBound(g, group.backend_floor, &begin);
      FixedWindowBound(g, cleaned, &end);
      batch_.DeleteRange(Column::kWindows, begin, end);
      group.backend_floor =
          cache_->horizon(g) >= cleaned ? cleaned : kMaxEventTime;
    }
  }
  // Every fixed-length window that ends by the watermark has fired: from
  // the cache before this scan, or in it. (So a checkpoint taken while the
  // sessions' timers fire in steps, or a watermark raised meanwhile, starts
  // the next scan here.)
  fixed_scan_group_ = 0;
  fired_through_ = watermark_;
  fired_before_checkpoint_.clear();
  *done = true;
  return ApplyBatch();
}

absl::Status KeyedWindowOperator::Impl::ScanBackendTimers(OperatorOutput* out,
                                                          size_t limit,
                                                          bool* done) {
  char* acc = reinterpret_cast<char*>(scratch_acc_.data());
  std::string wkey;
  std::string tkey;
  // A step that ends here leaves the rest of the timers in the backend: the
  // next step's scan starts at the first of them. (Everything before it was
  // deleted; starting there skips their tombstones.)
  //
  // Every timer the scan visits is deleted: a few with a point delete each,
  // more with one range delete at the end. (RocksDB 7.8 sorts a memtable's
  // range tombstones again for every iterator it opens on the column, so a
  // range delete per scan, when sessions fire on most records, made each
  // scan cost more than the one before.) Nothing else writes into that
  // range meanwhile: the cleanup timers written here are past the
  // watermark, and an entry spilled between steps has fired (its timer is
  // a cleanup timer) or is not due.
  constexpr size_t kPointDeletes = 64;
  size_t visited = 0;
  const std::string begin =
      scan_resume_.empty() ? TimerFloorKey() : scan_resume_;
  const std::string bound = TimerBound(watermark_);
  std::unique_ptr<StateIterator> it =
      backend_->Scan(Column::kTimers, begin, bound);
  for (; it->Valid() && out->updates.size() < limit; it->Next()) {
    if (visited < kPointDeletes) {
      if (visited_timers_.size() == visited) visited_timers_.emplace_back();
      visited_timers_[visited].assign(it->key().data(), it->key().size());
    }
    ++visited;
    DecodedTimer t;
    if (!DecodeTimerKey(it->key(), &t) || t.group >= groups_.size()) {
      return absl::DataLossError(absl::StrCat("operator '", options_.name,
                                              "': undecodable timer key"));
    }
    if (cache_->Contains(t.key, t.start, t.group)) {
      continue;  // the cached entry owns this window now
    }
    // Only sessions have timers: a session's end moves as it merges, so
    // its state is read to find out whether the timer is stale.
    WindowKey(t.key, t.group, t.start, &wkey);
    ++stats_.state_reads;
    absl::Status s = backend_->Get(Column::kWindows, wkey, &scratch_read_);
    if (absl::IsNotFound(s)) continue;  // expired by TTL
    WEIR_RETURN_IF_ERROR(s);
    int64_t end, max_offset;
    WEIR_RETURN_IF_ERROR(
        DecodePayload(t.group, scratch_read_, &end, &max_offset, acc));
    const EventTime cleanup = CleanupTime(t.group, end);
    if (t.kind == kFireTimer) {
      Emit(t.group, t.key, Window{t.start, end}, max_offset, acc, out);
      ++stats_.windows_fired;
    }
    DestroyAccs(t.group, acc);
    if (cleanup <= watermark_) {
      batch_.Delete(Column::kWindows, wkey);
    } else {
      TimerKey(cleanup, kCleanupTimer, t.group, t.start, t.key, &tkey);
      batch_.Put(Column::kTimers, tkey, "");
    }
    // In slices, as Flush writes: when a whole group's windows fire at
    // once (every key's daily window at midnight), one batch would hold a
    // write per spilled window. The scan does not see the writes (a
    // cleanup timer lands past the watermark, past its end).
    WEIR_RETURN_IF_ERROR(ApplyFullBatch());
  }
  WEIR_RETURN_IF_ERROR(it->status());
  *done = !it->Valid();
  const std::string_view end = *done ? std::string_view(bound) : it->key();
  if (visited <= kPointDeletes) {
    for (size_t i = 0; i < visited; ++i) {
      batch_.Delete(Column::kTimers, visited_timers_[i]);
    }
  } else if (begin < end) {
    batch_.DeleteRange(Column::kTimers, begin, end);
  }
  if (*done) {
    scan_resume_.clear();
    // Every timer up to the watermark is gone (the cleanup timers this
    // scan wrote are later).
    timers_deleted_to_ = watermark_;
  } else {
    scan_resume_.assign(it->key().data(), it->key().size());
  }
  it.reset();
  WEIR_RETURN_IF_ERROR(ApplyBatch());
  // A step that ended early leaves backend_timer_min_ at or below the
  // watermark: the rest is due.
  return *done ? RefreshBackendTimerMin() : absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::RefreshBackendTimerMin() {
  std::unique_ptr<StateIterator> it =
      backend_->Scan(Column::kTimers, TimerFloorKey(), "");
  backend_timer_min_ = kMaxEventTime;
  if (it->Valid()) {
    DecodedTimer t;
    if (!DecodeTimerKey(it->key(), &t)) {
      return absl::DataLossError(absl::StrCat("operator '", options_.name,
                                              "': undecodable timer key"));
    }
    backend_timer_min_ = t.time;
  }
  return it->status();
}

void KeyedWindowOperator::Impl::UpdateNextDue() {
  next_due_ = std::min(backend_timer_min_, timers_.Earliest());
  for (uint16_t g = 0; g < groups_.size(); ++g) {
    next_due_ = std::min(next_due_, FixedDue(g));
  }
}

// ---- sliding windows

absl::Status KeyedWindowOperator::Impl::EmitSliding(uint16_t g, uint32_t node,
                                                    const Record& r,
                                                    const Window& tile,
                                                    OperatorOutput* out) {
  Group& group = groups_[g];
  WEIR_RETURN_IF_ERROR(
      EmitSlidingWindow(g, node, r.key, tile.end, r.offset, out));
  if (tile.end >= group.max_tile_end) {
    group.max_tile_end = tile.end;
    return absl::OkStatus();
  }
  // An out-of-order record also changes the key's latest window, if that
  // one still covers the record's tile: emit it too, so that the newest
  // version the sink keeps includes the record.
  for (EventTime end = SaturatingAdd(tile.end, group.keep_ms); end > tile.end;
       end -= group.tile_ms) {
    bool exists = false;
    WEIR_RETURN_IF_ERROR(
        TileExists(g, node, r.key, end - group.tile_ms, &exists));
    if (exists) return EmitSlidingWindow(g, node, r.key, end, r.offset, out);
  }
  return absl::OkStatus();
}

void KeyedWindowOperator::Impl::DropSpilledFilters() {
  spilled_filters_ = 0;
  for (uint16_t g = 0; g < groups_.size(); ++g) {
    Group& group = groups_[g];
    absl::erase_if(group.spilled, [&](const auto& filter) {
      return CleanupTime(g, FixedEnd(g, filter.first)) <= watermark_;
    });
    spilled_filters_ += group.spilled.size();
  }
}

absl::Status KeyedWindowOperator::Impl::TileExists(uint16_t g, uint32_t node,
                                                   std::string_view key,
                                                   EventTime start,
                                                   bool* exists) {
  *exists = cache_->FindIn(node, start, g).has_value();
  if (*exists || !MayHaveSpilled(g, node, start)) return absl::OkStatus();
  FixedWindowKey(g, start, key, &scratch_key_);
  ++stats_.state_reads;
  absl::Status s =
      backend_->Get(Column::kWindows, scratch_key_, &scratch_read_);
  if (absl::IsNotFound(s)) return absl::OkStatus();
  WEIR_RETURN_IF_ERROR(s);
  *exists = true;
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::EmitSlidingWindow(
    uint16_t g, uint32_t node, std::string_view key, EventTime end,
    int64_t offset, OperatorOutput* out) {
  const Group& group = groups_[g];
  read_back_count_ = 0;
  char* acc = reinterpret_cast<char*>(sliding_acc_.data());
  for (int i : group.features) {
    internal::AccInit(features_[i].kind, acc + features_[i].acc_offset);
  }
  auto merge = [&](const char* tile_acc) {
    for (int i : group.features) {
      const Feature& f = features_[i];
      internal::Merge(f.kind, acc + f.acc_offset, tile_acc + f.acc_offset);
    }
  };
  const EventTime first = end - group.size_ms;
  const EventTime last = end - group.tile_ms;
  // The window's last tile, if cached, and whether its memo is for this
  // window: then the memo and the tile are the whole window.
  Entry* last_entry = nullptr;
  if (group.has_memo) {
    if (std::optional<uint32_t> slot = cache_->FindIn(node, last, g)) {
      last_entry = &cache_->entry(*slot);
      if (MemoEnd(*last_entry) == end) {
        WEIR_RETURN_IF_ERROR(MakeComplete(*last_entry));
        std::memcpy(acc, MemoAcc(*last_entry), group.acc_size);
        merge(last_entry->acc_data());
        last_entry->referenced = true;
        Emit(g, key, Window{first, end}, offset, acc, out);
        return absl::OkStatus();
      }
    }
  }
  // The key's cached tiles of the window, from its node, in start order:
  // tiles merge oldest first whether cached or read back.
  tiles_.clear();
  for (const internal::WindowRef& w : cache_->node(node).windows) {
    if (w.group == g && w.start >= first && w.start < end) tiles_.push_back(w);
  }
  std::sort(tiles_.begin(), tiles_.end(),
            [](const internal::WindowRef& a, const internal::WindowRef& b) {
              return a.start < b.start;
            });
  auto cached = tiles_.begin();
  for (EventTime start = first; start < end; start += group.tile_ms) {
    if (start == last && last_entry != nullptr) {
      // The tiles before the last, merged: the last tile's memo.
      std::memcpy(MemoAcc(*last_entry), acc, group.acc_size);
      SetMemoEnd(*last_entry, end);
    }
    if (cached != tiles_.end() && cached->start == start) {
      Entry& e = cache_->entry((cached++)->slot);
      if (Expired(e)) continue;
      WEIR_RETURN_IF_ERROR(MakeComplete(e));
      merge(e.acc_data());
      // Read on every record of the key while the window covers it (with
      // a memo, on the first record of each later tile): as much in use
      // as the tile a record folds into, and as costly to read back once
      // spilled.
      e.referenced = true;
      continue;
    }
    // Never spilled: no such tile.
    if (!MayHaveSpilled(g, node, start)) continue;
    FixedWindowKey(g, start, key, &scratch_key_);
    ++stats_.state_reads;
    absl::Status s =
        backend_->Get(Column::kWindows, scratch_key_, &scratch_read_);
    if (absl::IsNotFound(s)) continue;
    WEIR_RETURN_IF_ERROR(s);
    char* stored = reinterpret_cast<char*>(scratch_acc_.data());
    int64_t tile_end, max_offset;
    WEIR_RETURN_IF_ERROR(
        DecodePayload(g, scratch_read_, &tile_end, &max_offset, stored));
    merge(stored);
    DestroyAccs(g, stored);
    if (!ttl_ms_.has_value()) {
      if (read_back_.size() == read_back_count_) read_back_.emplace_back();
      read_back_[read_back_count_++].swap(scratch_read_);
    }
  }
  Emit(g, key, Window{first, end}, offset, acc, out);
  DestroyAccs(g, acc);
  return CacheReadBack(g, node);
}

absl::Status KeyedWindowOperator::Impl::CacheReadBack(uint16_t g,
                                                      uint32_t node) {
  // Every later record of the key reads the same tiles while the window
  // covers them (a hot key's older tiles, evicted while only the newest
  // was folded into, were read back a dozen times each), so a tile read
  // back stays cached: complete, clean, its backend copy and timer left
  // as they are. Without a TTL only: a cached copy would look written now.
  const size_t count = std::exchange(read_back_count_, 0);
  for (size_t i = 0; i < count; ++i) {
    const std::string& payload = read_back_[i];
    char* stored = reinterpret_cast<char*>(scratch_acc_.data());
    int64_t tile_end, max_offset;
    WEIR_RETURN_IF_ERROR(
        DecodePayload(g, payload, &tile_end, &max_offset, stored));
    const int64_t start = tile_end - groups_[g].tile_ms;
    if (cache_->FindIn(node, start, g).has_value()) {
      DestroyAccs(g, stored);
      continue;
    }
    absl::StatusOr<uint32_t> slot =
        AllocSlot(g, node, Window{start, tile_end}, /*complete=*/true);
    if (!slot.ok()) {
      DestroyAccs(g, stored);
      return slot.status();
    }
    Entry& e = cache_->entry(*slot);
    DestroyAccs(g, e.acc_data());
    std::memcpy(e.acc_data(), stored, groups_[g].acc_size);
    e.max_offset = max_offset;
    e.in_backend = true;
    CountSketches(e);
    ScheduleTimer(*slot);
  }
  return absl::OkStatus();
}

// ---- sessions
// -------------------------------------------------------------------

absl::Status KeyedWindowOperator::Impl::LoadSessions(uint16_t g, uint32_t node,
                                                     std::string_view key) {
  std::string prefix;
  WindowKeyPrefix(key, g, &prefix);
  std::string end = prefix;
  // Every key with this prefix sorts below prefix + 0xff...: the suffix is a
  // fixed 8-byte start.
  end.append(9, '\xff');
  std::unique_ptr<StateIterator> it =
      backend_->Scan(Column::kWindows, prefix, end);
  ++stats_.state_reads;
  struct Loaded {
    int64_t start;
    std::string stored;
  };
  std::vector<Loaded> loaded;
  for (; it->Valid(); it->Next()) {
    std::string_view k = it->key();
    k.remove_prefix(prefix.size());
    int64_t start;
    if (!internal::GetOrderedI64(&k, &start)) {
      return absl::DataLossError("undecodable session window key");
    }
    loaded.push_back(Loaded{start, std::string(it->value())});
  }
  WEIR_RETURN_IF_ERROR(it->status());
  it.reset();
  for (Loaded& l : loaded) {
    if (cache_->FindIn(node, l.start, g)) continue;
    int64_t end_time, max_offset;
    // Not scratch_acc_: AllocSlot may evict, and eviction reads state.
    std::vector<uint64_t> acc(groups_[g].acc_size / 8 + 1);
    char* tmp = reinterpret_cast<char*>(acc.data());
    WEIR_RETURN_IF_ERROR(
        DecodePayload(g, l.stored, &end_time, &max_offset, tmp));
    WEIR_ASSIGN_OR_RETURN(uint32_t slot,
                          AllocSlot(g, node, Window{l.start, end_time},
                                    /*complete=*/true));
    Entry& e = cache_->entry(slot);
    std::memcpy(e.acc_data(), tmp, groups_[g].acc_size);
    CountSketches(e);
    e.max_offset = max_offset;
    e.in_backend = true;
    e.pinned = true;
    ScheduleTimer(slot);
  }
  return absl::OkStatus();
}

absl::Status KeyedWindowOperator::Impl::FoldSession(uint16_t g, uint32_t node,
                                                    const Record& r) {
  const auto session_key = std::make_pair(g, std::string(r.key));
  // Pin the key's sessions while they merge: loading more of them must not
  // evict one already gathered.
  auto set_pins = [&](bool pinned) {
    auto it = sessions_.find(session_key);
    if (it == sessions_.end()) return;
    for (uint32_t slot : it->second) cache_->entry(slot).pinned = pinned;
  };
  set_pins(true);
  if (session_backend_maybe_) {
    absl::Status s = LoadSessions(g, node, r.key);
    if (!s.ok()) {
      set_pins(false);
      return s;
    }
  }
  absl::Status s = MergeSessions(g, node, r, session_key);
  set_pins(false);
  return s;
}

absl::Status KeyedWindowOperator::Impl::MergeSessions(
    uint16_t g, uint32_t node, const Record& r,
    const std::pair<uint16_t, std::string>& session_key) {
  const Group& group = groups_[g];
  Window merged{r.event_time, SaturatingAdd(r.event_time, group.gap_ms)};
  // Gather every cached session of the key that overlaps or touches the
  // growing merged window, until no more join.
  absl::InlinedVector<uint32_t, 4> parts;
  auto it = sessions_.find(session_key);
  if (it != sessions_.end()) {
    bool grew = true;
    while (grew) {
      grew = false;
      for (uint32_t slot : it->second) {
        if (std::find(parts.begin(), parts.end(), slot) != parts.end())
          continue;
        const Entry& e = cache_->entry(slot);
        if (e.start <= merged.end && merged.start <= e.end) {
          parts.push_back(slot);
          merged.start = std::min(merged.start, e.start);
          merged.end = std::max(merged.end, e.end);
          grew = true;
        }
      }
    }
  }
  uint32_t target;
  if (parts.size() == 1 && cache_->entry(parts[0]).start == merged.start &&
      cache_->entry(parts[0]).end == merged.end) {
    target = parts[0];
  } else {
    // Collect the parts' accumulators before freeing their slots.
    const size_t words = group.acc_size / 8;
    std::vector<uint64_t> sum(words);
    char* sum_acc = reinterpret_cast<char*>(sum.data());
    for (int i : group.features) {
      internal::AccInit(features_[i].kind, sum_acc + features_[i].acc_offset);
    }
    int64_t max_offset = -1;
    for (uint32_t slot : parts) {
      Entry& e = cache_->entry(slot);
      for (int i : group.features) {
        const Feature& f = features_[i];
        internal::Merge(f.kind, sum_acc + f.acc_offset,
                        e.acc_data() + f.acc_offset);
      }
      max_offset = std::max(max_offset, e.max_offset);
      if (e.in_backend) DeleteFromBackend(e);
      FreeSlot(slot);
    }
    WEIR_RETURN_IF_ERROR(ApplyBatch());
    WEIR_ASSIGN_OR_RETURN(target,
                          AllocSlot(g, node, merged, /*complete=*/true));
    Entry& e = cache_->entry(target);
    std::memcpy(e.acc_data(), sum_acc, group.acc_size);
    e.max_offset = max_offset;
    e.dirty = true;
    ScheduleTimer(target);
  }
  FoldInputs(cache_->entry(target), group, r);
  if (cache_->entry(target).end <= watermark_) QueueReemit(target);
  return absl::OkStatus();
}

// ---- public
// -------------------------------------------------------------------

KeyedWindowOperator::KeyedWindowOperator(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
KeyedWindowOperator::~KeyedWindowOperator() = default;

absl::StatusOr<std::unique_ptr<KeyedWindowOperator>>
KeyedWindowOperator::Create(const KeyedWindowOptions& options,
                            StateBackend* backend) {
  WEIR_RETURN_IF_ERROR(options.Validate());
  if (backend == nullptr) return absl::InvalidArgumentError("backend: is null");
  auto impl = std::make_unique<Impl>(options, backend);
  WEIR_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<KeyedWindowOperator>(
      new KeyedWindowOperator(std::move(impl)));
}

absl::Status KeyedWindowOperator::Process(const Record& record,
                                          OperatorOutput* out) {
  return impl_->Process(record, out);
}

absl::Status KeyedWindowOperator::AdvanceWatermark(EventTime watermark,
                                                   OperatorOutput* out) {
  return impl_->AdvanceWatermark(watermark, out);
}

absl::Status KeyedWindowOperator::Flush() { return impl_->Flush(); }

EventTime KeyedWindowOperator::watermark() const { return impl_->watermark(); }

bool KeyedWindowOperator::firing_pending() const {
  return impl_->firing_pending();
}

OperatorStats KeyedWindowOperator::stats() const { return impl_->stats(); }

}  // namespace weir
