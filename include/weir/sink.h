// -----------------------------------------------------------------------------
// File: sink.h
// -----------------------------------------------------------------------------
//
// Where features go. A `Sink` receives `FeatureUpdate`s: the value of one
// feature of one entity for one window, with a version.
//
// The idempotence contract. Versions are ordered by (version_time,
// version_offset). Applying an update whose version is lower than or equal
// to the one the store holds for the same (key, feature) must change
// nothing. So a replay after a crash, which re-emits the same updates with
// the same versions, and a reordering of updates, leave the store as one
// in-order application would. For window results the version is (window
// end, largest source offset folded into the window): a later window
// supersedes an earlier one, and a re-emission after a late record
// supersedes the first emission.
//
// Threading: a sink is called from one thread at a time (the pipeline's
// processing thread). It may run its own I/O threads; it documents them.
// Write and Flush must not throw.

#ifndef WEIR_SINK_H_
#define WEIR_SINK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "weir/record.h"
#include "weir/window.h"

namespace weir {

struct FeatureUpdate {
  std::string key;      // the entity, e.g. "u123"
  std::string feature;  // the feature's name, e.g. "txn_count_1m"
  Window window;        // the window the value is for
  Value value;          // the result; null when nothing was folded
  EventTime version_time = 0;
  int64_t version_offset = 0;

  // True when `this` supersedes `other` (strictly newer version).
  bool NewerThan(const FeatureUpdate& other) const {
    return version_time != other.version_time
               ? version_time > other.version_time
               : version_offset > other.version_offset;
  }

  friend bool operator==(const FeatureUpdate& a, const FeatureUpdate& b) {
    return a.key == b.key && a.feature == b.feature && a.window == b.window &&
           a.value == b.value && a.version_time == b.version_time &&
           a.version_offset == b.version_offset;
  }
};

class Sink {
 public:
  virtual ~Sink() = default;

  // Hands `updates` to the sink. May buffer. Returns kUnavailable when the
  // store cannot take them now (the caller retries the same updates later
  // and applies backpressure meanwhile).
  virtual absl::Status Write(absl::Span<const FeatureUpdate> updates) = 0;

  // Makes everything written so far durable in the store.
  virtual absl::Status Flush() = 0;

  // Checkpoint hooks for sinks that can use them. PreCommit(n) is called on
  // the processing thread while checkpoint n is taken, Commit(n) once its
  // manifest is published, Abort(n) when it failed. The defaults flush.
  virtual absl::Status PreCommit(int64_t checkpoint_id) { return Flush(); }
  virtual absl::Status Commit(int64_t checkpoint_id) {
    return absl::OkStatus();
  }
  virtual absl::Status Abort(int64_t checkpoint_id) { return absl::OkStatus(); }
};

}  // namespace weir

#endif  // WEIR_SINK_H_
