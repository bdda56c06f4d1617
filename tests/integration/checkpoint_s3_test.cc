// Checkpoints against s3rver (an S3-compatible server started by the test):
// publish, incremental reuse, restore, fallback past a corrupt file,
// retention and savepoints, the same protocol as checkpoint_test.cc.

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "weir/checkpoint.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/s3/s3_store.h"
#include "weir/state.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/s3rver.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

constexpr char kBucket[] = "weir-test";
constexpr char kPrefix[] = "payments/p0";

using Contents = std::map<std::string, std::string>;

std::string KeyOf(int i) { return absl::StrFormat("user-%06d", i); }

std::string ValueOf(int i, int version) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 1000003u + version);
  std::string v(200, '\0');
  for (char& c : v) c = static_cast<char>(rng());
  return v;
}

CheckpointMetadata Metadata(uint64_t id) {
  CheckpointMetadata md;
  md.checkpoint_id = id;
  md.pipeline = "payments";
  md.partition = 0;
  md.source_offsets = {{"payments", 0, static_cast<int64_t>(100 * id)}};
  return md;
}

class CheckpointS3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::S3rverOptions server_options;
    server_options.node_modules_dir = WEIR_SOURCE_DIR "/node_modules";
    auto server = testing::S3rver::Start(server_options);
    WEIR_REQUIRE_PART(server.status());
    server_ = std::move(*server);
    S3StoreOptions s3;
    s3.endpoint = server_->endpoint();
    s3.access_key_id = server_->access_key_id();
    s3.secret_access_key = server_->secret_access_key();
    s3.list_page_size = 7;  // exercise list continuation
    auto store = S3Store::Create(kBucket, "chk", s3);
    ASSERT_TRUE(store.ok()) << store.status();
    object_store_ = std::move(*store);
    CheckpointStoreOptions options;
    options.prefix = kPrefix;
    options.logger = [this](std::string_view line) { log_.emplace_back(line); };
    auto checkpoints = CheckpointStore::Create(object_store_.get(), options);
    ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
    checkpoints_ = std::move(*checkpoints);

    auto dir = testing::TempDir::Create("weir-ckpt-s3");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    auto resources =
        RocksDbResources::Create({.memory_budget_bytes = size_t{64} << 20});
    ASSERT_TRUE(resources.ok());
    resources_ = *resources;
    backend_ = Open(Path("db"));
    ASSERT_NE(backend_, nullptr);
  }

  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_->path(), "/", name);
  }

  std::unique_ptr<RocksDbStateBackend> Open(const std::string& path) {
    RocksDbStateBackendOptions options;
    options.path = path;
    options.resources = resources_;
    auto backend = RocksDbStateBackend::Create(options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? std::move(*backend) : nullptr;
  }

  // Writes keys [0, n) at `version`, checkpoints, publishes as `id`.
  PublishResult Publish(uint64_t id, int n, int version) {
    StateWriteBatch batch;
    for (int i = 0; i < n; ++i) {
      batch.Put(Column::kWindows, KeyOf(i), ValueOf(i, version));
      live_[KeyOf(i)] = ValueOf(i, version);
    }
    EXPECT_TRUE(backend_->Write(batch).ok());
    const std::string dir = Path(absl::StrCat("ckpt-", id));
    EXPECT_TRUE(backend_->CreateCheckpoint(dir).ok());
    expected_[id] = live_;
    auto r = checkpoints_->Publish(dir, Metadata(id));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : PublishResult{};
  }

  Contents ReadAll(StateBackend& backend) {
    Contents out;
    for (auto it = backend.Scan(Column::kWindows, "", ""); it->Valid();
         it->Next()) {
      out[std::string(it->key())] = std::string(it->value());
    }
    return out;
  }

  // Checks a restored directory against checkpoint `id`'s contents.
  void ExpectState(const std::string& dir, uint64_t id) {
    auto restored = Open(dir);
    ASSERT_NE(restored, nullptr);
    EXPECT_TRUE(ReadAll(*restored) == expected_[id]) << "checkpoint " << id;
  }

  std::unique_ptr<testing::S3rver> server_;
  std::unique_ptr<S3Store> object_store_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  std::optional<testing::TempDir> dir_;
  std::shared_ptr<RocksDbResources> resources_;
  std::unique_ptr<RocksDbStateBackend> backend_;
  Contents live_;
  std::map<uint64_t, Contents> expected_;
  std::vector<std::string> log_;
};

TEST_F(CheckpointS3Test, PublishRestoreRetainAndSavepoints) {
  PublishResult first = Publish(1, 5000, 1);
  ASSERT_TRUE(backend_->Compact().ok());
  PublishResult second = Publish(2, 50, 2);
  EXPECT_GT(first.bytes_uploaded, 0u);
  EXPECT_GT(second.files_reused, 0u);
  Publish(3, 50, 3);
  ASSERT_TRUE(checkpoints_->Savepoint("v1", 1).ok());

  auto latest = checkpoints_->RestoreLatest(Path("restore-3"));
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->metadata, Metadata(3));
  ExpectState(Path("restore-3"), 3);

  // Checkpoint 3's own SST replaced by other bytes: restore falls back.
  auto m3 = checkpoints_->ReadCheckpoint(3);
  auto m2 = checkpoints_->ReadCheckpoint(2);
  ASSERT_TRUE(m3.ok() && m2.ok());
  const ManifestFile* unique = nullptr;
  for (const ManifestFile& f : m3->files) {
    bool shared = false;
    for (const ManifestFile& g : m2->files) shared |= f == g;
    if (!shared && absl::EndsWith(f.name, ".sst")) unique = &f;
  }
  ASSERT_NE(unique, nullptr);
  auto bytes = object_store_->Get(checkpoints_->FileKey(*unique));
  ASSERT_TRUE(bytes.ok());
  (*bytes)[bytes->size() / 2] ^= 0x01;
  ASSERT_TRUE(object_store_->Put(checkpoints_->FileKey(*unique), *bytes).ok());
  auto fallback = checkpoints_->RestoreLatest(Path("restore-2"));
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ(fallback->metadata.checkpoint_id, 2u);
  ExpectState(Path("restore-2"), 2);
  EXPECT_EQ(checkpoints_->stats().restore_fallbacks, 1u);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_TRUE(absl::StrContains(log_[0], "skipping checkpoint 3")) << log_[0];

  // Retention keeps checkpoints 2 and 3 and the savepoint's files.
  auto retained = checkpoints_->Retain(2);
  ASSERT_TRUE(retained.ok()) << retained.status();
  EXPECT_EQ(retained->manifests_deleted, 1u);
  EXPECT_EQ(*checkpoints_->ListCheckpoints(), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(*checkpoints_->ListSavepoints(), std::vector<std::string>{"v1"});
  auto sp = checkpoints_->RestoreSavepoint("v1", Path("restore-v1"));
  ASSERT_TRUE(sp.ok()) << sp.status();
  EXPECT_EQ(sp->metadata, Metadata(1));
  ExpectState(Path("restore-v1"), 1);
  auto report = checkpoints_->Verify(*checkpoints_->ReadCheckpoint(2));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok());

  // Every stored file is referenced by checkpoint 2, 3 or the savepoint.
  std::set<std::string> referenced;
  for (const auto& m : {*m2, *m3, *sp}) {
    for (const ManifestFile& f : m.files) {
      referenced.insert(checkpoints_->FileKey(f));
    }
  }
  auto files = object_store_->List(absl::StrCat(kPrefix, "/files/"));
  ASSERT_TRUE(files.ok());
  for (const ObjectInfo& o : *files) {
    EXPECT_TRUE(referenced.contains(o.key)) << o.key;
  }
}

}  // namespace
}  // namespace weir
