// B4 of BENCHMARKS.md: checkpoint cost. A RocksDB state of --state_mb
// (default 100; --state_mb=1000 for the 1 GB run) is checkpointed and
// published to a LocalDirectoryStore; then 1% of the keys change and it is
// checkpointed and published again. Reports the second upload against the
// state size, the pause of the processing thread (Flush + CreateCheckpoint)
// and the restore time, against a full copy of the state directory made in
// the same run.
//
//   b4_checkpoint [--state_mb=100] [--value_bytes=1000] [--sync=0]
//
// --sync=1 makes the store fsync every object (what a production local
// store does); the reference copy never syncs, so the default leaves it off.
//
// Prints:
//   B4 incremental uploaded_bytes=... state_bytes=... ratio=...
//   B4 pause_ms=... first_pause_ms=...
//   B4 full_publish_s=... ref_copy_s=... ratio=...
//   B4 restore_s=... ref_copy_s=... ratio=...

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tools/common/command_line.h"
#include "weir/checkpoint.h"
#include "weir/object_store.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/state.h"
#include "weir/testing/subprocess.h"

ABSL_FLAG(int64_t, state_mb, 100, "State size in MB.");
ABSL_FLAG(int64_t, value_bytes, 1000, "Bytes per state value.");
ABSL_FLAG(bool, sync, false, "Checkpoint synchronously.");

namespace {

namespace fs = std::filesystem;

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "b4_checkpoint: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::string KeyOf(int64_t i) { return absl::StrFormat("user-%010d", i); }

void RandomValue(std::mt19937_64& rng, std::string* v) {
  for (size_t i = 0; i + 8 <= v->size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(v->data() + i, &r, 8);
  }
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir)) total += e.file_size();
  return total;
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

}  // namespace

int main(int argc, char** argv) {
  weir::tools::ParseCommandLine(
      argc, argv, {.usage = "b4_checkpoint: see docs/benchmarks.md"});
  const int64_t state_mb = absl::GetFlag(FLAGS_state_mb);
  const int64_t value_bytes = absl::GetFlag(FLAGS_value_bytes);
  const bool sync = absl::GetFlag(FLAGS_sync);
  const int64_t keys = state_mb * (int64_t{1} << 20) / (value_bytes + 16);

  auto tmp = weir::testing::TempDir::Create("weir-b4");
  Check(tmp.status(), "temp dir");
  const std::string root = tmp->path();

  auto resources = weir::RocksDbResources::Create({});
  Check(resources.status(), "resources");
  weir::RocksDbStateBackendOptions backend_options;
  backend_options.path = root + "/db";
  backend_options.resources = *resources;
  auto backend = weir::RocksDbStateBackend::Create(backend_options);
  Check(backend.status(), "backend");
  weir::StateBackend& db = **backend;

  weir::LocalDirectoryStoreOptions local;
  local.sync = sync;
  auto object_store = weir::LocalDirectoryStore::Create(root + "/store", local);
  Check(object_store.status(), "store");
  weir::CheckpointStoreOptions store_options;
  store_options.prefix = weir::CheckpointPrefix("b4", 0);
  auto store =
      weir::CheckpointStore::Create(object_store->get(), store_options);
  Check(store.status(), "checkpoint store");

  // Load, then compact: the settled state of a long-running job.
  std::mt19937_64 rng(42);
  std::string value(static_cast<size_t>(value_bytes), '\0');
  weir::StateWriteBatch batch;
  for (int64_t i = 0; i < keys; ++i) {
    RandomValue(rng, &value);
    batch.Put(weir::Column::kWindows, KeyOf(i), value);
    if (batch.size() == 1000) {
      Check(db.Write(batch), "write");
      batch.Clear();
    }
  }
  Check(db.Write(batch), "write");
  batch.Clear();
  Check(db.Compact(), "compact");

  auto checkpoint = [&](uint64_t id, absl::Duration* pause) {
    const std::string dir = absl::StrCat(root, "/ckpt-", id);
    const absl::Time start = absl::Now();
    Check(db.Flush(), "flush");
    Check(db.CreateCheckpoint(dir), "checkpoint");
    *pause = absl::Now() - start;
    weir::CheckpointMetadata md;
    md.checkpoint_id = id;
    md.pipeline = "b4";
    const absl::Time publish_start = absl::Now();
    auto r = (*store)->Publish(dir, md);
    Check(r.status(), "publish");
    return std::make_pair(*r, absl::Now() - publish_start);
  };

  absl::Duration first_pause, pause;
  auto [first, full_publish] = checkpoint(1, &first_pause);

  // 1% of the keys change.
  std::uniform_int_distribution<int64_t> pick(0, keys - 1);
  for (int64_t n = 0; n < keys / 100; ++n) {
    RandomValue(rng, &value);
    batch.Put(weir::Column::kWindows, KeyOf(pick(rng)), value);
    if (batch.size() == 1000) {
      Check(db.Write(batch), "write");
      batch.Clear();
    }
  }
  Check(db.Write(batch), "write");
  auto [second, incremental_publish] = checkpoint(2, &pause);
  const uint64_t state_bytes = second.manifest.total_bytes();

  // Reference: a full copy of the state directory.
  const absl::Time copy_start = absl::Now();
  fs::copy(absl::StrCat(root, "/ckpt-2"), root + "/ref-copy",
           fs::copy_options::recursive);
  const absl::Duration ref_copy = absl::Now() - copy_start;
  const uint64_t copy_bytes = DirBytes(root + "/ref-copy");

  // Restore: download and verify every file, then open the database.
  const absl::Time restore_start = absl::Now();
  auto restored = (*store)->RestoreLatest(root + "/restored");
  Check(restored.status(), "restore");
  weir::RocksDbStateBackendOptions restored_options = backend_options;
  restored_options.path = root + "/restored";
  auto reopened = weir::RocksDbStateBackend::Create(restored_options);
  Check(reopened.status(), "open restored");
  const absl::Duration restore = absl::Now() - restore_start;

  std::printf(
      "B4 setup state_mb=%ld keys=%ld value_bytes=%ld sync=%d "
      "files=%zu first_upload_bytes=%lu copy_bytes=%lu\n",
      static_cast<long>(state_mb), static_cast<long>(keys),
      static_cast<long>(value_bytes), sync ? 1 : 0,
      second.manifest.files.size(),
      static_cast<unsigned long>(first.bytes_uploaded),
      static_cast<unsigned long>(copy_bytes));
  std::printf(
      "B4 incremental uploaded_bytes=%lu state_bytes=%lu ratio=%.4f "
      "publish_s=%.3f\n",
      static_cast<unsigned long>(second.bytes_uploaded),
      static_cast<unsigned long>(state_bytes),
      static_cast<double>(second.bytes_uploaded) /
          static_cast<double>(state_bytes),
      Seconds(incremental_publish));
  std::printf("B4 pause_ms=%.2f first_pause_ms=%.2f\n",
              absl::ToDoubleMilliseconds(pause),
              absl::ToDoubleMilliseconds(first_pause));
  std::printf("B4 full_publish_s=%.3f ref_copy_s=%.3f ratio=%.2f\n",
              Seconds(full_publish), Seconds(ref_copy),
              Seconds(full_publish) / Seconds(ref_copy));
  std::printf("B4 restore_s=%.3f ref_copy_s=%.3f ratio=%.2f\n",
              Seconds(restore), Seconds(ref_copy),
              Seconds(restore) / Seconds(ref_copy));
  return 0;
}
