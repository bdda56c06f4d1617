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
// The parts, one header each (this header includes all three; each part's
// header is its manual):
//   checkpoint_manifest.h  the manifest format
//   checkpoint_store.h     CheckpointStore: store layout, publish, restore,
//                          retain, savepoints; PublishControl
//   checkpointer.h         UploadPool, AsyncCheckpointer, CheckpointScheduler
//
// Threading: `CheckpointStore` is thread-safe. An `UploadPool` starts its
// threads, "weir-ckpt-upld"; an `AsyncCheckpointer` given no pool starts one
// of its own, and its methods are meant for one processing thread.
// `CheckpointScheduler` is not thread-safe and starts no threads. Parsing
// and serializing manifests are pure functions.
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
