// -----------------------------------------------------------------------------
// File: sinks.h
// -----------------------------------------------------------------------------
//
// The two sinks of the core, next to the `Sink` contract of sink.h:
//
//   - `MemorySink` keeps, per (key, feature), the newest `FeatureUpdate`
//     under the idempotence contract, and counts the updates it applied and
//     skipped. Tests read it back, and use it as the in-order reference a
//     real store is compared with. It can be told to fail, to test
//     backpressure paths.
//   - `FileSink` appends one JSON object per update to a local file (JSON
//     lines). It is an append log, not a store: a replay after a crash
//     appends the replayed updates again, so the file may hold duplicates
//     and older versions after newer ones. Readers keep the newest version
//     per (key, feature); `ReadFeatureFile` and `LatestFeatureUpdates` do
//     exactly that.
//
// The line format (one line per update, members in this order):
//   {"key":"u1","feature":"txn_count_1m","window_start":1767225600000,
//    "window_end":1767225660000,"type":"int64","value":3,
//    "version_time":1767225660000,"version_offset":42}
// `type` is the value's type name (record.h: null, bool, int64, double,
// decimal, string). Numbers are written exactly: decimals with their own
// scale ("12.50"), doubles in the shortest text that reads back to the same
// double; a non-finite double is the string "nan", "inf" or "-inf".
//
// Threading: both sinks are thread-safe (one mutex each) and start no
// threads; the pipeline calls them from one thread, tests may read a
// MemorySink from another.
//
// Example:
//   weir::MemorySink expected;
//   WEIR_RETURN_IF_ERROR(expected.Write(updates));
//   std::optional<weir::FeatureUpdate> u = expected.Get("u1", "txn_count_1m");
//
//   WEIR_ASSIGN_OR_RETURN(auto file, weir::FileSink::Create(
//                                        {.path = "/var/lib/app/out.jsonl"}));
//   WEIR_RETURN_IF_ERROR(file->Write(updates));
//   WEIR_RETURN_IF_ERROR(file->Flush());  // write + fsync
//   WEIR_ASSIGN_OR_RETURN(std::vector<weir::FeatureUpdate> all,
//                         weir::ReadFeatureFile("/var/lib/app/out.jsonl"));
//   std::vector<weir::FeatureUpdate> latest = weir::LatestFeatureUpdates(all);

#ifndef WEIR_SINKS_H_
#define WEIR_SINKS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "weir/env.h"
#include "weir/sink.h"

namespace weir {
namespace internal {
class JsonlAppendFile;
}  // namespace internal

// Keeps the newest update per (key, feature) in memory.
class MemorySink final : public Sink {
 public:
  MemorySink() = default;
  MemorySink(const MemorySink&) = delete;
  MemorySink& operator=(const MemorySink&) = delete;

  // Applies each update that is newer than the stored one for its (key,
  // feature); counts the others as skipped. Returns the injected error
  // instead, applying nothing, while one is set (see InjectError).
  absl::Status Write(absl::Span<const FeatureUpdate> updates) override;
  // OK, or the injected error.
  absl::Status Flush() override;

  // The stored update of (key, feature), if any.
  std::optional<FeatureUpdate> Get(std::string_view key,
                                   std::string_view feature) const;
  // Every stored update, sorted by (key, feature).
  std::vector<FeatureUpdate> Snapshot() const;
  // Number of stored (key, feature) pairs.
  size_t size() const;

  // Updates that changed the store, and updates skipped because their
  // version was not newer than the stored one.
  int64_t applied() const;
  int64_t skipped() const;

  // Makes Write and Flush return `status` (accepting nothing) until called
  // again with absl::OkStatus(); for testing error and backpressure paths.
  void InjectError(absl::Status status);

  // Forgets every update and zeroes the counters.
  void Clear();

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::pair<std::string, std::string>, FeatureUpdate>
      updates_ ABSL_GUARDED_BY(mu_);
  int64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t skipped_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status injected_ ABSL_GUARDED_BY(mu_);
};

struct FileSinkOptions {
  // The JSON-lines file; created if missing, appended to otherwise.
  // REQUIRES: non-empty. Default: ""
  std::string path;

  // Lines are buffered in memory and written once this many bytes are
  // pending (and on Flush). Larger means fewer write calls and more memory;
  // 0 writes every Write at once. Default: 1 MiB
  size_t buffer_bytes = size_t{1} << 20;

  // Whether Flush calls fsync. Without it Flush only hands lines to the
  // operating system, which survives a process crash but not a power loss.
  // Default: true
  bool fsync = true;

  // The file system the file is written through. Not owned; must outlive
  // the object. Default: Env::Default()
  Env* env = Env::Default();

  // Returns kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Appends updates to a local file, one JSON line each (format at the top).
//
// Write takes the updates once their lines are in the sink's buffer; a
// failure to hand the buffer to the file is reported by the next Write
// (which then takes nothing, while the buffer stays full) or Flush, and the
// buffered lines are retried, never dropped. On Create, a torn last line
// (one a crash cut short, without its newline) is cut off: it was never
// flushed, so the pipeline replays its update.
class FileSink final : public Sink {
 public:
  // The Env's error if the file cannot be opened (kNotFound for a missing
  // folder, kPermissionDenied), kInvalidArgument on bad options.
  static absl::StatusOr<std::unique_ptr<FileSink>> Create(
      FileSinkOptions options);

  // Writes pending lines (without fsync) and closes the file; errors are
  // dropped, as those updates were never flushed.
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  // kUnavailable (or kResourceExhausted when the disk is full) when earlier
  // lines still cannot be written; the caller retries.
  absl::Status Write(absl::Span<const FeatureUpdate> updates) override;
  // Writes every pending line, then fsyncs (if enabled). A failed fsync is
  // kAborted: the kernel may have dropped the unsynced pages, so only a
  // replay from the last checkpoint rewrites them for sure.
  absl::Status Flush() override;

  const std::string& path() const { return options_.path; }

 private:
  FileSink(FileSinkOptions options,
           std::unique_ptr<internal::JsonlAppendFile> file);

  const FileSinkOptions options_;
  absl::Mutex mu_;
  std::unique_ptr<internal::JsonlAppendFile> file_ ABSL_GUARDED_BY(mu_);
};

// One update as a FileSink line, without the newline.
std::string FeatureUpdateToJson(const FeatureUpdate& update);
// The same, appended to `out`.
void AppendFeatureUpdateJson(const FeatureUpdate& update, std::string* out);

// Parses one FileSink line (kInvalidArgument if it is not one).
absl::StatusOr<FeatureUpdate> ParseFeatureUpdateJson(std::string_view line);

// Every update in a file FileSink wrote, in file order, duplicates
// included. A torn last line is skipped; any other bad line is kDataLoss
// naming its line number. kNotFound if the file does not exist.
absl::StatusOr<std::vector<FeatureUpdate>> ReadFeatureFile(
    const std::string& path);

// The newest update per (key, feature) of `updates` (the state one in-order
// application leaves), sorted by (key, feature).
std::vector<FeatureUpdate> LatestFeatureUpdates(
    absl::Span<const FeatureUpdate> updates);

}  // namespace weir

#endif  // WEIR_SINKS_H_
