// -----------------------------------------------------------------------------
// File: checkpoint_manifest.h
// -----------------------------------------------------------------------------
//
// The manifest of one checkpoint: what it holds and where to resume, as
// bytes. A checkpoint exists if and only if its manifest does (see
// checkpoint_store.h). The manifest lists the checkpoint's data files with
// sizes and checksums, the source offsets, the watermark, pipeline and
// operator names and versions and user metadata, and carries a CRC-32C of
// its whole body, so a flipped byte is detected (kDataLoss) before anything
// is trusted.
//
// Data files are named in the store by their content (CRC-32C as 8 hex
// digits, size in bytes, local file name: `FileObjectKey`), not by their
// local name alone: after a restore, a new RocksDB instance can create a
// file with an old name and different bytes, and the two must never be
// confused.
//
// Threading: plain values and pure functions. Starts no threads.
//
// Example:
//   weir::CheckpointManifest manifest;
//   manifest.metadata.checkpoint_id = 7;
//   manifest.metadata.source_offsets = {{"payments", 3, 1200}};
//   std::string bytes = weir::SerializeManifest(manifest);
//   WEIR_ASSIGN_OR_RETURN(weir::CheckpointManifest back,
//                         weir::ParseManifest(bytes));

#ifndef WEIR_CHECKPOINT_MANIFEST_H_
#define WEIR_CHECKPOINT_MANIFEST_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "weir/time.h"

namespace weir {

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

}  // namespace weir

#endif  // WEIR_CHECKPOINT_MANIFEST_H_
