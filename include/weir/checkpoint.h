// -----------------------------------------------------------------------------
// File: checkpoint.h
// -----------------------------------------------------------------------------
//
// The checkpoint protocol of docs/architecture.md, for one input partition:
// manifests, incremental upload of a local state checkpoint to an
// `ObjectStore`, restore with fallback to an older checkpoint, retention and
// garbage collection, and named savepoints. The module knows files and bytes
// only (no RocksDB types): a "checkpoint directory" is any flat directory of
// files, such as the one `StateBackend::CreateCheckpoint` writes.
//
// Store layout under one prefix per (pipeline, partition):
//
//   <prefix>/files/<crc32c>-<size>-<name>     data files, content-addressed
//   <prefix>/checkpoints/<20-digit id>.manifest
//   <prefix>/savepoints/<name>.manifest
//
// Data files are named by their content (CRC-32C as 8 hex digits, size in
// bytes, local file name), not by their local name alone: after a restore, a
// new RocksDB instance can create a file with an old name and different
// bytes, and the two must never be confused. A file the store already holds
// is not uploaded again, which is what makes checkpoints incremental: SST
// files are immutable, so consecutive checkpoints share most of them.
//
// A checkpoint exists if and only if its manifest does. The manifest is
// written last, in one Put (which every ObjectStore makes atomic), after all
// of its files. It lists the files with sizes and checksums, the source
// offsets, the watermark, pipeline and operator names and versions and user
// metadata, and carries a CRC-32C of its whole body, so a flipped byte is
// detected (kDataLoss) before anything is trusted.
//
// The protocol, from the pipeline's processing thread:
//   1. op->Flush(); backend->CreateCheckpoint(local_dir) (hard links: fast);
//      checkpointer->Submit({metadata, local_dir}) returns at once.
//   2. The checkpointer's upload thread uploads the files the store lacks,
//      then the manifest, then runs retention (Retain).
//   3. The processing thread calls checkpointer->Poll() in its loop; a
//      completion with an OK status means the checkpoint is published: now
//      commit the source offsets and Commit(n) the sink.
// Restore, when a partition is assigned: store->RestoreLatest(local_dir)
// returns the manifest of the newest checkpoint whose manifest and files all
// verify, downloaded into local_dir; open the backend on local_dir and seek
// the source to the manifest's offsets. kNotFound means there is no valid
// checkpoint: start fresh.
//
// Writers: one writer per prefix at a time (Kafka's group protocol gives a
// partition to one consumer). Any number of readers (the inspector) may run
// alongside.
//
// Steps: `CheckpointStore::Publish` calls `Env::ReachedStep` (env.h) of its
// options' Env at each step where a crash leaves a distinct state behind, so
// a test Env (weir/testing/fault_env.h) can kill the process there:
// "before_upload" (files hashed, nothing uploaded), "mid_upload" (after the
// first uploaded file), "after_upload" (all files uploaded, no manifest) and
// "after_manifest" (manifest written; the caller has not seen it yet, so the
// offsets are not committed). With the default Env a step costs one virtual
// call.
//
// Local files (the checkpoint directory read by Publish, the restore
// directories, Verify's scratch files) go through the options' Env; the
// object store writes the downloaded files through its own options' Env
// (give both the same one). A full disk is kResourceExhausted naming the
// file, and leaves no partial restore directory and no manifest behind.
//
// Threading: `CheckpointStore` is thread-safe. `AsyncCheckpointer` starts
// exactly one thread, "weir-ckpt-upld", and its methods are meant for one
// processing thread. `CheckpointScheduler` is not thread-safe and starts no
// threads. Parsing and serializing manifests are pure functions.
//
// Example:
//   weir::CheckpointStoreOptions store_options;
//   store_options.prefix = weir::CheckpointPrefix("payments", 3);
//   WEIR_ASSIGN_OR_RETURN(auto store, weir::CheckpointStore::Create(
//                                         object_store.get(), store_options));
//   auto restored = store->RestoreLatest("/var/lib/weir/payments-3");
//   if (!restored.ok() && !absl::IsNotFound(restored.status())) {
//     return restored.status();  // unreachable store, incompatible version
//   }
//   // ... open the backend on /var/lib/weir/payments-3, seek the source ...
//
//   weir::CheckpointerOptions options;  // interval, timeout, retained, ...
//   WEIR_ASSIGN_OR_RETURN(auto checkpointer,
//                         weir::AsyncCheckpointer::Create(store.get(),
//                                                         options));
//   WEIR_ASSIGN_OR_RETURN(auto scheduler,
//                         weir::CheckpointScheduler::Create(options));
//   WEIR_ASSIGN_OR_RETURN(uint64_t next_id, store->NextCheckpointId());
//   while (running) {
//     // ... process a batch ...
//     if (scheduler.Due()) {
//       WEIR_RETURN_IF_ERROR(op->Flush());
//       std::string dir = absl::StrCat(scratch, "/ckpt-", next_id);
//       WEIR_RETURN_IF_ERROR(backend->CreateCheckpoint(dir));
//       weir::CheckpointRequest request;
//       request.local_dir = dir;
//       request.metadata.checkpoint_id = next_id++;
//       request.metadata.source_offsets = {{"payments", 3, next_offset}};
//       WEIR_RETURN_IF_ERROR(checkpointer->Submit(std::move(request)));
//       scheduler.Started();
//     }
//     if (std::optional<weir::CheckpointCompletion> done =
//             checkpointer->Poll()) {
//       WEIR_RETURN_IF_ERROR(scheduler.Completed(done->status));
//       if (done->status.ok()) { /* commit offsets, sink->Commit(id) */ }
//     }
//   }

#ifndef WEIR_CHECKPOINT_H_
#define WEIR_CHECKPOINT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "weir/env.h"
#include "weir/object_store.h"
#include "weir/time.h"

namespace weir {

// ---- Manifests --------------------------------------------------------------

// The version written in the first line of every manifest. A manifest of
// another version is refused with kFailedPrecondition.
inline constexpr int kManifestFormatVersion = 1;

// The position to resume one source partition from.
struct SourceOffset {
  std::string topic;
  int32_t partition = 0;
  // The offset of the next record to read (Kafka's committed-offset
  // convention), not the last one processed.
  int64_t offset = 0;

  friend bool operator==(const SourceOffset&, const SourceOffset&) = default;
};

// What the processing thread knows about a checkpoint when it takes it.
struct CheckpointMetadata {
  // Checkpoints of one prefix are ordered by id; "latest" means the largest.
  // Use CheckpointStore::NextCheckpointId() after a restore.
  // Default: 0
  uint64_t checkpoint_id = 0;

  // Names and versions, for the inspector and for compatibility checks.
  // Default: ""
  std::string pipeline;
  // Default: ""
  std::string pipeline_version;
  // Default: ""
  std::string operator_name;

  // The input partition this state belongs to.
  // Default: 0
  int32_t partition = 0;

  // Where each source partition resumes after a restore.
  // Default: empty
  std::vector<SourceOffset> source_offsets;

  // The operator's watermark when the checkpoint was taken.
  // Default: unset
  std::optional<EventTime> watermark;

  // Anything else the user wants restored with the state. Values should be
  // UTF-8; other bytes are kept as they are.
  // Default: empty
  std::map<std::string, std::string> user_metadata;

  friend bool operator==(const CheckpointMetadata&,
                         const CheckpointMetadata&) = default;
};

// One data file of a checkpoint.
struct ManifestFile {
  std::string name;        // file name in the checkpoint directory
  std::string object_key;  // relative to the store prefix: "files/..."
  uint64_t size = 0;
  uint32_t crc32c = 0;

  friend bool operator==(const ManifestFile&, const ManifestFile&) = default;
};

struct CheckpointManifest {
  CheckpointMetadata metadata;
  // When the manifest was written, to the millisecond.
  absl::Time created = absl::UnixEpoch();
  // Set for a savepoint's manifest: the savepoint's name.
  std::optional<std::string> savepoint_name;
  // Sorted by name.
  std::vector<ManifestFile> files;

  uint64_t total_bytes() const;

  friend bool operator==(const CheckpointManifest&,
                         const CheckpointManifest&) = default;
};

// The manifest's bytes: one header line
//   "weir-checkpoint-manifest <version> size=<body bytes> crc32c=<8 hex>"
// followed by a JSON body (human-readable; `weir-checkpoint show` prints it).
std::string SerializeManifest(const CheckpointManifest& manifest);

// Parses what SerializeManifest wrote. kDataLoss for anything else: garbage,
// truncation, trailing bytes, a CRC that does not match, a body that is not
// the expected JSON, a file name that is not a plain file name, an object
// key that is not the file's content address. kFailedPrecondition for
// another format version. Safe on arbitrary bytes.
absl::StatusOr<CheckpointManifest> ParseManifest(std::string_view bytes);

// "files/<crc32c as 8 lowercase hex>-<size>-<name>", relative to a prefix.
std::string FileObjectKey(uint32_t crc32c, uint64_t size,
                          std::string_view name);

// OK if `name` can be a savepoint name: 1 to 128 characters of
// [A-Za-z0-9._-], not starting with '.'. kInvalidArgument otherwise.
absl::Status ValidateSavepointName(std::string_view name);

// The conventional prefix of one pipeline partition: "<pipeline>/p<partition>".
std::string CheckpointPrefix(std::string_view pipeline, int32_t partition);

// ---- CheckpointStore --------------------------------------------------------

struct CheckpointStoreOptions {
  // Where this partition's checkpoints live in the object store: a valid
  // object key (see object_store.h). Required.
  // Default: "" (unset)
  std::string prefix;

  // Receives one line per notable event (a checkpoint skipped at restore and
  // why, a corrupt manifest met by Retain). Called on the thread making the
  // call, with no lock held; must not call back into the store.
  // Default: writes "weir checkpoint: <line>" to stderr.
  std::function<void(std::string_view line)> logger;

  // Scratch space for Verify's downloads (one file at a time, removed
  // after).
  // Default: unset ($TMPDIR, else /tmp)
  std::optional<std::string> scratch_dir;

  // The file system for local files (see the top of this file); its steps
  // are where a test Env can stop the process. Not owned; must outlive the
  // store. Thread-safe, like the store.
  // Default: Env::Default()
  Env* env = Env::Default();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Lets another thread abandon a Publish in progress, and bounds it with a
// deadline. The manifest is written only if BeginCommit() succeeds; after
// that point the publish can no longer be abandoned. Thread-safe.
class PublishControl {
 public:
  // No deadline: only Abandon() stops the publish.
  PublishControl() = default;
  // Abandoned automatically once `clock->Now() >= deadline`. `clock` is not
  // owned and must outlive this object.
  PublishControl(Clock* clock, absl::Time deadline)
      : clock_(clock), deadline_(deadline) {}

  // Abandons the publish unless its manifest write has begun. Returns true
  // if the publish is (now or already) abandoned: its manifest will never be
  // written. Returns false if the manifest write has begun.
  bool Abandon();

  // True if abandoned, or past the deadline (which abandons it).
  bool abandoned();

  // Called by Publish before it writes the manifest. False if abandoned
  // (or past the deadline); true means the manifest may be written and
  // Abandon() now returns false.
  bool BeginCommit();

  // True once BeginCommit() has succeeded.
  bool committing() const;

 private:
  enum class State { kRunning, kAbandoned, kCommitting };
  bool PastDeadline() const;

  Clock* clock_ = nullptr;
  absl::Time deadline_ = absl::InfiniteFuture();
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kRunning;
};

struct PublishResult {
  CheckpointManifest manifest;
  uint64_t files_uploaded = 0;
  uint64_t bytes_uploaded = 0;
  uint64_t files_reused = 0;  // already in the store
  uint64_t bytes_reused = 0;
  absl::Duration scan_time;      // listing and checksumming local files
  absl::Duration upload_time;    // uploading data files
  absl::Duration manifest_time;  // writing the manifest
};

struct VerifyReport {
  struct Problem {
    std::string name;    // file name in the checkpoint
    absl::Status error;  // kNotFound (missing) or kDataLoss (size, crc)
  };
  uint64_t files_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<Problem> problems;
  bool ok() const { return problems.empty(); }
};

struct RetainResult {
  uint64_t manifests_deleted = 0;
  uint64_t files_deleted = 0;
  uint64_t bytes_deleted = 0;
};

// Counters since the store object was created.
struct CheckpointStoreStats {
  uint64_t checkpoints_published = 0;
  uint64_t files_uploaded = 0;
  uint64_t bytes_uploaded = 0;
  uint64_t files_reused = 0;
  // Checkpoints skipped by a restore because their manifest or a file was
  // corrupt or missing.
  uint64_t restore_fallbacks = 0;
  uint64_t restores = 0;
  uint64_t manifests_deleted = 0;
  uint64_t files_deleted = 0;
};

// The checkpoints and savepoints of one prefix in an object store.
//
// Threading: thread-safe. Publish, Savepoint, DeleteSavepoint and Retain
// run one at a time (an internal lock), so garbage collection never deletes
// a file that a concurrent publish is about to reference; reads (List*,
// Read*, Verify, Restore*) take no such lock. Starts no threads.
class CheckpointStore {
 public:
  // `store` is not owned and must outlive the CheckpointStore.
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Create(
      ObjectStore* store, CheckpointStoreOptions options);

  // Publishes the files of `local_dir` (a flat directory of regular files)
  // as checkpoint `metadata.checkpoint_id`: uploads each file the store does
  // not hold yet, then writes the manifest. The store's file list is read
  // once, on the first Publish, and tracked after that.
  //
  // kAlreadyExists if that checkpoint id is already published;
  // kInvalidArgument if `local_dir` has a subdirectory or a file name
  // outside [A-Za-z0-9._-]; kCancelled if `control` abandoned it (the
  // manifest is then not written, and the uploaded files are collected by a
  // later Retain); the store's errors otherwise (kUnavailable: retry).
  absl::StatusOr<PublishResult> Publish(const std::string& local_dir,
                                        const CheckpointMetadata& metadata,
                                        PublishControl* control = nullptr);

  // Published checkpoint ids, ascending. Keys under checkpoints/ that are
  // not "<20 digits>.manifest" are ignored.
  absl::StatusOr<std::vector<uint64_t>> ListCheckpoints();

  // Savepoint names, ascending.
  absl::StatusOr<std::vector<std::string>> ListSavepoints();

  // One more than the largest checkpoint id in the store (valid or not), or
  // 1 for an empty store.
  absl::StatusOr<uint64_t> NextCheckpointId();

  // The parsed manifest. kNotFound if absent; ParseManifest's errors.
  absl::StatusOr<CheckpointManifest> ReadCheckpoint(uint64_t id);
  absl::StatusOr<CheckpointManifest> ReadSavepoint(std::string_view name);

  // Object keys of manifests, for tools.
  std::string CheckpointKey(uint64_t id) const;
  std::string SavepointKey(std::string_view name) const;
  // Full object key of a manifest file entry.
  std::string FileKey(const ManifestFile& file) const;

  // Downloads every file of `manifest` and checks its size and CRC-32C.
  // Bad files are listed in the report; an error status means the check
  // itself could not be done (store unreachable, no scratch space).
  absl::StatusOr<VerifyReport> Verify(const CheckpointManifest& manifest);

  // Restores the newest checkpoint whose manifest parses and whose files
  // all download with the right size and CRC-32C into `local_dir` (which
  // must not exist; it is created only once everything verified, so a bad
  // checkpoint's state is never left there to be opened). A checkpoint with
  // a corrupt or missing manifest or file is skipped, counted in
  // `restore_fallbacks` and logged with its id and the reason.
  // kNotFound when no checkpoint is valid (start fresh); kFailedPrecondition
  // for a manifest of an unknown format version (never skipped silently);
  // the store's error (kUnavailable: retry) when it cannot be read, rather
  // than falling back on a transient error.
  absl::StatusOr<CheckpointManifest> RestoreLatest(
      const std::string& local_dir);

  // Restores one checkpoint or savepoint, without fallback: kDataLoss or
  // kNotFound if it does not verify.
  absl::StatusOr<CheckpointManifest> RestoreCheckpoint(
      uint64_t id, const std::string& local_dir);
  absl::StatusOr<CheckpointManifest> RestoreSavepoint(
      std::string_view name, const std::string& local_dir);

  // Makes published checkpoint `checkpoint_id` the savepoint `name` after
  // verifying its files: a manifest under savepoints/ that Retain never
  // deletes and whose files it never collects. kAlreadyExists if the name
  // is taken; kDataLoss if the checkpoint does not verify.
  absl::Status Savepoint(std::string_view name, uint64_t checkpoint_id);

  // Deletes the savepoint's manifest; its files become collectable.
  absl::Status DeleteSavepoint(std::string_view name);

  // Keeps the newest `n` checkpoints whose manifests parse (and any newer
  // ones), deletes the other checkpoint manifests, then deletes every data
  // file that no remaining checkpoint or savepoint references (files of a
  // crashed or abandoned publish included). If a savepoint's manifest is
  // corrupt, files are not collected and kDataLoss is returned, since its
  // files cannot be known. kInvalidArgument if n < 1.
  absl::StatusOr<RetainResult> Retain(int n);

  CheckpointStoreStats stats() const;

  // The Env of the options.
  Env* env() const { return options_.env; }
  const std::string& prefix() const { return options_.prefix; }
  ObjectStore* object_store() const { return store_; }

 private:
  CheckpointStore(ObjectStore* store, CheckpointStoreOptions options);

  struct LocalFile;
  absl::StatusOr<std::vector<LocalFile>> ScanLocalDir(const std::string& dir)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  absl::Status LoadKnownFilesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(op_mu_);
  absl::StatusOr<CheckpointManifest> ReadManifestKey(const std::string& key);
  absl::StatusOr<CheckpointManifest> RestoreManifest(
      const std::string& what, const std::string& manifest_key,
      const std::string& local_dir);
  absl::Status DownloadVerified(const CheckpointManifest& manifest,
                                const std::string& dir);
  void Log(const std::string& line) const;

  ObjectStore* const store_;
  const CheckpointStoreOptions options_;

  // Serializes Publish, Savepoint, DeleteSavepoint and Retain.
  absl::Mutex op_mu_;
  bool known_loaded_ ABSL_GUARDED_BY(op_mu_) = false;
  // Data files the store holds (key relative to the prefix -> size).
  absl::flat_hash_map<std::string, uint64_t> known_files_
      ABSL_GUARDED_BY(op_mu_);
  // CRC-32C of local .sst files by identity (device, inode, size, mtime,
  // name): consecutive checkpoints hard-link the same immutable files, so
  // each is read once.
  absl::flat_hash_map<std::string, uint32_t> crc_cache_ ABSL_GUARDED_BY(op_mu_);

  mutable absl::Mutex stats_mu_;
  CheckpointStoreStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

// ---- AsyncCheckpointer and CheckpointScheduler ------------------------------

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

#endif  // WEIR_CHECKPOINT_H_
