// -----------------------------------------------------------------------------
// File: checkpoint_store.h
// -----------------------------------------------------------------------------
//
// The checkpoints and savepoints of one input partition in an
// `ObjectStore`: incremental upload of a local state checkpoint, restore
// with fallback to an older checkpoint, retention and garbage collection,
// and named savepoints. The module knows files and bytes only (no RocksDB
// types): a "checkpoint directory" is any flat directory of files, such as
// the one `StateBackend::CreateCheckpoint` writes. The manifest format is
// checkpoint_manifest.h; the upload thread and the scheduling of
// checkpoints are checkpointer.h.
//
// Store layout under one prefix per (pipeline, partition):
//
//   <prefix>/files/<crc32c>-<size>-<name>     data files, content-addressed
//   <prefix>/checkpoints/<20-digit id>.manifest
//   <prefix>/savepoints/<name>.manifest
//
// A file the store already holds is not uploaded again, which is what makes
// checkpoints incremental: SST files are immutable, so consecutive
// checkpoints share most of them. A checkpoint exists if and only if its
// manifest does. The manifest is written last, in one Put (which every
// ObjectStore makes atomic), after all of its files.
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
// Threading: `CheckpointStore` and `PublishControl` are thread-safe.
// Starts no threads.
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

#ifndef WEIR_CHECKPOINT_STORE_H_
#define WEIR_CHECKPOINT_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "weir/checkpoint_manifest.h"
#include "weir/env.h"
#include "weir/object_store.h"
#include "weir/time.h"

namespace weir {

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

}  // namespace weir

#endif  // WEIR_CHECKPOINT_STORE_H_
