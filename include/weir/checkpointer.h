// -----------------------------------------------------------------------------
// File: checkpointer.h
// -----------------------------------------------------------------------------
//
// The asynchronous part of the checkpoint protocol (checkpoint.h): an
// `AsyncCheckpointer` publishes a submitted checkpoint directory to a
// `CheckpointStore` (checkpoint_store.h) on an upload thread of an
// `UploadPool`, runs retention after it, and hands the outcome back through
// `Poll()`; a `CheckpointScheduler` says when the next checkpoint is due and
// counts consecutive failures.
//
// Threading: an `UploadPool` starts its threads, "weir-ckpt-upld"; an
// `AsyncCheckpointer` given no pool starts exactly one. The checkpointer's
// methods are meant for one processing thread. `CheckpointScheduler` is not
// thread-safe and starts no threads.
//
// Example:
//   weir::CheckpointerOptions options;  // interval, timeout, retained, ...
//   WEIR_ASSIGN_OR_RETURN(auto checkpointer,
//                         weir::AsyncCheckpointer::Create(store.get(),
//                                                         options));
//   WEIR_ASSIGN_OR_RETURN(auto scheduler,
//                         weir::CheckpointScheduler::Create(options));
//   // ... when scheduler.Due(): Submit, scheduler.Started();
//   // ... in the loop: Poll(), scheduler.Completed(done->status).

#ifndef WEIR_CHECKPOINTER_H_
#define WEIR_CHECKPOINTER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "weir/checkpoint_manifest.h"
#include "weir/checkpoint_store.h"
#include "weir/time.h"

namespace weir {

struct CheckpointerOptions {
  // Time between the starts of two checkpoints. Longer means less upload
  // work and more replay after a crash.
  // Default: absl::Minutes(1)
  absl::Duration interval = absl::Minutes(1);

  // Least time between the end of one checkpoint and the start of the next,
  // so slow uploads cannot leave the processing thread checkpointing back to
  // back.
  // Default: absl::Seconds(5)
  absl::Duration min_pause = absl::Seconds(5);

  // A checkpoint not published this long after Submit is abandoned: it
  // completes with kDeadlineExceeded and its manifest is never written.
  // Default: absl::Minutes(10)
  absl::Duration timeout = absl::Minutes(10);

  // Consecutive failed checkpoints tolerated; the next failure makes
  // CheckpointScheduler::Completed return an error.
  // Default: 3
  int tolerated_failures = 3;

  // Checkpoints kept by the Retain that follows each published checkpoint.
  // REQUIRES: >= 1.
  // Default: 3
  int retained = 3;

  // Remove each request's local_dir once its upload has ended (published,
  // failed or abandoned), so hard links to old files do not pile up.
  // Default: true
  bool remove_local_dir = true;

  // Time source for the interval, pause and timeout. Not owned; must
  // outlive the users of these options.
  // Default: Clock::Real()
  Clock* clock = Clock::Real();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

struct CheckpointRequest {
  CheckpointMetadata metadata;
  // A checkpoint directory (StateBackend::CreateCheckpoint). Owned by the
  // checkpointer from Submit on (see `remove_local_dir`).
  std::string local_dir;
  // Also make the checkpoint this savepoint once it is published.
  std::optional<std::string> savepoint_name;
};

// The outcome of one submitted checkpoint.
struct CheckpointCompletion {
  uint64_t checkpoint_id = 0;
  // OK: published (and the savepoint written, if one was asked for).
  // kDeadlineExceeded: abandoned after `timeout`; no manifest.
  // Otherwise the failed step's error; no manifest unless the failure came
  // after it (the savepoint step).
  absl::Status status;
  // Set when the checkpoint was published.
  std::optional<CheckpointManifest> manifest;
  uint64_t files_uploaded = 0;
  uint64_t bytes_uploaded = 0;
  uint64_t files_reused = 0;
  uint64_t bytes_reused = 0;
  absl::Duration queue_time;     // Submit to the upload thread's start
  absl::Duration scan_time;      // checksumming local files
  absl::Duration upload_time;    // data files
  absl::Duration manifest_time;  // the manifest (and savepoint)
  absl::Duration total_time;     // Submit to completion
};

class AsyncCheckpointer;

// The threads that run checkpoint uploads, "weir-ckpt-upld". Several
// AsyncCheckpointers (one per partition of a pipeline) share a pool, so an
// instance uploads on a fixed number of threads however many partitions it
// owns. Checkpoints are started in the order submitted, except that one
// checkpointer's jobs never overlap: its next upload waits until the thread
// running its previous one (retention runs after the completion is
// delivered) is done.
//
// Threading: starts `threads` threads; the destructor joins them. Every
// AsyncCheckpointer using the pool must be destroyed first.
class UploadPool {
 public:
  // REQUIRES: threads >= 1.
  explicit UploadPool(int threads = 1);
  ~UploadPool();
  UploadPool(const UploadPool&) = delete;
  UploadPool& operator=(const UploadPool&) = delete;

 private:
  friend class AsyncCheckpointer;

  // Queues `c`, which has a job pending, for RunPending() on a thread.
  void Enqueue(AsyncCheckpointer* c);
  // Takes `c` out of the queue and waits until no thread runs its job.
  // After this the pool never touches `c` again.
  void Forget(AsyncCheckpointer* c);
  void Run();

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<AsyncCheckpointer*> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<AsyncCheckpointer*> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// Runs the asynchronous part of the protocol on an upload thread.
//
// At most one checkpoint is in flight: from an accepted Submit until Poll
// returns its completion. A Submit while one is in flight returns
// kFailedPrecondition (nothing is queued; call Poll).
//
// Completions are delivered only by Poll(), on the calling (processing)
// thread: no callbacks. Poll also enforces the timeout: once `timeout` has
// passed since Submit and the manifest write has not begun, the checkpoint
// is abandoned and Poll returns a kDeadlineExceeded completion at once,
// even if the upload thread is still stuck in the store; the upload thread
// drops that work at its next step and never writes the manifest. A
// checkpoint submitted while an abandoned upload is still stuck waits for
// the thread (its own timeout counting from Submit).
//
// After each published checkpoint the upload thread runs
// store->Retain(retained), after the completion is made available, so
// offsets can be committed without waiting for garbage collection; its
// outcome is last_retain_status().
//
// Give every Submit a new checkpoint id, also after a failure: a manifest
// write that failed on the client side may still have reached the store.
//
// Threading: uploads on `pool`, shared with other checkpointers, or, when
// none is given, on a one-thread UploadPool of its own. Submit, Poll and
// WaitForIdle are meant for one processing thread (they are safe from any
// thread). The destructor abandons what is in flight and waits for the
// store call in progress to return (bounded by the store's own request
// timeout).
class AsyncCheckpointer {
 public:
  // `store` and `pool` are not owned and must outlive the checkpointer.
  static absl::StatusOr<std::unique_ptr<AsyncCheckpointer>> Create(
      CheckpointStore* store, const CheckpointerOptions& options,
      UploadPool* pool = nullptr);
  ~AsyncCheckpointer();
  AsyncCheckpointer(const AsyncCheckpointer&) = delete;
  AsyncCheckpointer& operator=(const AsyncCheckpointer&) = delete;

  // Hands a checkpoint to the upload thread and returns at once.
  // kFailedPrecondition if one is in flight; kInvalidArgument for a bad
  // savepoint name or an empty local_dir.
  absl::Status Submit(CheckpointRequest request);

  // The completion of the checkpoint in flight, if it has completed (or
  // just timed out). Never blocks on the upload.
  std::optional<CheckpointCompletion> Poll();

  // True while a checkpoint is in flight (submitted, completion not yet
  // returned by Poll).
  bool in_flight() const;

  // Blocks until the upload thread has nothing to do (no upload, no
  // retention running) or `timeout` passes; returns whether it is idle.
  // For tests and orderly shutdown.
  bool WaitForIdle(absl::Duration timeout);

  // The result of the last retention run (OK before the first).
  absl::Status last_retain_status() const;

 private:
  friend class UploadPool;
  struct Job;
  AsyncCheckpointer(CheckpointStore* store, const CheckpointerOptions& options);
  // On the upload thread: runs the pending job, if any.
  void RunPending();
  void RunJob(Job& job);

  CheckpointStore* const store_;
  const CheckpointerOptions options_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The checkpoint in flight (until Poll returns its completion).
  std::shared_ptr<Job> in_flight_ ABSL_GUARDED_BY(mu_);
  // Submitted, not yet picked up by the upload thread.
  std::shared_ptr<Job> pending_ ABSL_GUARDED_BY(mu_);
  // True while the upload thread works (upload or retention).
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_retain_status_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<UploadPool> own_pool_;  // when none was given
  UploadPool* pool_ = nullptr;
};

// Says when the next checkpoint is due and counts consecutive failures.
// The first checkpoint is due `interval` after Create; each next one at
// max(last start + interval, last completion + min_pause).
//
// Threading: not thread-safe; used by the processing thread. Starts no
// threads.
class CheckpointScheduler {
 public:
  static absl::StatusOr<CheckpointScheduler> Create(
      const CheckpointerOptions& options);

  // True when no checkpoint is in flight and NextDue() has come.
  bool Due() const;
  // When the next checkpoint may start (meaningless while one is in flight).
  absl::Time NextDue() const;

  // A checkpoint was submitted now.
  void Started();

  // The checkpoint in flight finished with `status`. OK resets the failure
  // count. A failure is counted; once more than `tolerated_failures`
  // checkpoints in a row have failed, returns an error with the last
  // failure's code saying so (the pipeline should stop loudly). Otherwise OK.
  absl::Status Completed(const absl::Status& status);

  int consecutive_failures() const { return consecutive_failures_; }
  bool in_flight() const { return in_flight_; }

 private:
  explicit CheckpointScheduler(const CheckpointerOptions& options);

  CheckpointerOptions options_;
  absl::Time last_start_;
  absl::Time next_due_;
  bool in_flight_ = false;
  int consecutive_failures_ = 0;
};

}  // namespace weir

#endif  // WEIR_CHECKPOINTER_H_
