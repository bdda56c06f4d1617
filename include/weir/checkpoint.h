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
// alongside.//
// The parts, one header each (this header includes all three):
//   checkpoint_manifest.h  the manifest format
//   checkpoint_store.h     CheckpointStore: publish, restore, retain,
//                          savepoints; PublishControl
//   checkpointer.h         UploadPool, AsyncCheckpointer, CheckpointScheduler
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

#include "weir/checkpoint_manifest.h"  // IWYU pragma: export
#include "weir/checkpoint_store.h"     // IWYU pragma: export
#include "weir/checkpointer.h"         // IWYU pragma: export

#endif  // WEIR_CHECKPOINT_H_
