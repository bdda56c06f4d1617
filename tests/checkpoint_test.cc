// Checkpoints of a real RocksDB state into a LocalDirectoryStore: manifests,
// incremental publish, restore with fallback, retention, savepoints, the
// asynchronous checkpointer, the scheduler, kill points and the inspector.

#include "weir/checkpoint.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/internal/crc32c.h"
#include "weir/object_store.h"
#include "weir/rocksdb/rocksdb_state_backend.h"
#include "weir/state.h"
#include "weir/testing/fault_env.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kPrefix[] = "payments/p3";
constexpr int kKeys = 20000;
constexpr int kValueBytes = 200;

// ---- RocksDB state helpers
// ----------------------------------------------------

using Contents = std::map<std::pair<int, std::string>, std::string>;

std::string KeyOf(int i) { return absl::StrFormat("user-%06d", i); }

// Incompressible bytes, a function of (key, version).
std::string ValueOf(int i, int version) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 1000003u + version);
  std::string v(kValueBytes, '\0');
  for (char& c : v) c = static_cast<char>(rng());
  return v;
}

// Writes keys [begin, end) at `version`, recording them in `expected`.
void WriteKeys(StateBackend& backend, int begin, int end, int version,
               Contents* expected) {
  StateWriteBatch batch;
  for (int i = begin; i < end; ++i) {
    batch.Put(Column::kWindows, KeyOf(i), ValueOf(i, version));
    (*expected)[{static_cast<int>(Column::kWindows), KeyOf(i)}] =
        ValueOf(i, version);
    if (batch.size() == 1000) {
      ASSERT_TRUE(backend.Write(batch).ok());
      batch.Clear();
    }
  }
  const std::string offset = absl::StrCat("offset-", version);
  batch.Put(Column::kMeta, "offset", offset);
  (*expected)[{static_cast<int>(Column::kMeta), "offset"}] = offset;
  ASSERT_TRUE(backend.Write(batch).ok());
}

Contents ReadAll(StateBackend& backend) {
  Contents out;
  for (Column c : {Column::kWindows, Column::kTimers, Column::kMeta}) {
    auto it = backend.Scan(c, "", "");
    for (; it->Valid(); it->Next()) {
      out[{static_cast<int>(c), std::string(it->key())}] =
          std::string(it->value());
    }
    EXPECT_TRUE(it->status().ok()) << it->status();
  }
  return out;
}

void FlipByte(const std::string& path, size_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.read(&c, 1);
  c ^= 0x20;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir)) total += e.file_size();
  return total;
}

CheckpointMetadata Metadata(uint64_t id) {
  CheckpointMetadata md;
  md.checkpoint_id = id;
  md.pipeline = "payments";
  md.pipeline_version = "1.2.3";
  md.operator_name = "fraud_features";
  md.partition = 3;
  md.source_offsets = {{"payments", 3, static_cast<int64_t>(1000 * id)}};
  md.watermark = 1767225600000 + static_cast<int64_t>(id);
  md.user_metadata = {{"schema", "v7"}};
  return md;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::Create("weir-ckpt");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    LocalDirectoryStoreOptions local;
    local.sync = false;
    auto store = LocalDirectoryStore::Create(StoreRoot(), local);
    ASSERT_TRUE(store.ok()) << store.status();
    object_store_ = std::move(*store);
    auto resources =
        RocksDbResources::Create({.memory_budget_bytes = size_t{64} << 20});
    ASSERT_TRUE(resources.ok()) << resources.status();
    resources_ = *resources;
    backend_ = OpenBackend(Path("db"));
    ASSERT_NE(backend_, nullptr);
    checkpoints_ = OpenStore();
    ASSERT_NE(checkpoints_, nullptr);
  }

  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_->path(), "/", name);
  }
  std::string StoreRoot() const { return Path("store"); }
  std::string StorePath(const std::string& key) const {
    return absl::StrCat(StoreRoot(), "/", key);
  }

  std::unique_ptr<RocksDbStateBackend> OpenBackend(const std::string& path) {
    RocksDbStateBackendOptions options;
    options.path = path;
    options.resources = resources_;
    auto backend = RocksDbStateBackend::Create(options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? std::move(*backend) : nullptr;
  }

  std::unique_ptr<CheckpointStore> OpenStore() {
    CheckpointStoreOptions options;
    options.prefix = kPrefix;
    options.logger = [this](std::string_view line) {
      absl::MutexLock lock(&log_mu_);
      log_.emplace_back(line);
    };
    auto store = CheckpointStore::Create(object_store_.get(), options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::vector<std::string> Log() {
    absl::MutexLock lock(&log_mu_);
    return log_;
  }

  // Writes version `version` of keys [begin, end), checkpoints the backend
  // and remembers the expected contents of that checkpoint.
  std::string TakeCheckpoint(uint64_t id, int begin, int end, int version) {
    WriteKeys(*backend_, begin, end, version, &live_);
    EXPECT_TRUE(backend_->Flush().ok());
    const std::string dir = Path(absl::StrCat("ckpt-", id));
    absl::Status s = backend_->CreateCheckpoint(dir);
    EXPECT_TRUE(s.ok()) << s;
    expected_[id] = live_;
    return dir;
  }

  PublishResult Publish(uint64_t id, int begin, int end, int version) {
    const std::string dir = TakeCheckpoint(id, begin, end, version);
    auto r = checkpoints_->Publish(dir, Metadata(id));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : PublishResult{};
  }

  // Restores the newest valid checkpoint into a fresh directory and checks
  // its contents; returns its id (0 on failure).
  uint64_t RestoreAndCheck(CheckpointStore& store) {
    const std::string dir = Path(absl::StrCat("restore-", ++restores_));
    auto m = store.RestoreLatest(dir);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return 0;
    const uint64_t id = m->metadata.checkpoint_id;
    EXPECT_EQ(m->metadata, Metadata(id));
    auto restored = OpenBackend(dir);
    EXPECT_NE(restored, nullptr);
    if (restored == nullptr) return 0;
    EXPECT_TRUE(ReadAll(*restored) == expected_[id])
        << "restored state differs from checkpoint " << id;
    return id;
  }

  // The uploaded SST files of checkpoint `id` that checkpoint `other` lacks.
  std::vector<ManifestFile> UniqueSsts(uint64_t id, uint64_t other) {
    auto a = checkpoints_->ReadCheckpoint(id);
    auto b = checkpoints_->ReadCheckpoint(other);
    EXPECT_TRUE(a.ok() && b.ok());
    std::vector<ManifestFile> out;
    for (const ManifestFile& f : a->files) {
      if (!absl::EndsWith(f.name, ".sst")) continue;
      bool shared = false;
      for (const ManifestFile& g : b->files) shared |= g == f;
      if (!shared) out.push_back(f);
    }
    return out;
  }

  // Data files in the store that no manifest references.
  std::vector<std::string> Unreferenced() {
    std::set<std::string> referenced;
    auto ids = checkpoints_->ListCheckpoints();
    auto names = checkpoints_->ListSavepoints();
    EXPECT_TRUE(ids.ok() && names.ok());
    for (uint64_t id : *ids) {
      auto m = checkpoints_->ReadCheckpoint(id);
      if (!m.ok()) continue;
      for (const ManifestFile& f : m->files) {
        referenced.insert(checkpoints_->FileKey(f));
      }
    }
    for (const std::string& n : *names) {
      auto m = checkpoints_->ReadSavepoint(n);
      if (!m.ok()) continue;
      for (const ManifestFile& f : m->files) {
        referenced.insert(checkpoints_->FileKey(f));
      }
    }
    std::vector<std::string> out;
    auto files = object_store_->List(absl::StrCat(kPrefix, "/files/"));
    EXPECT_TRUE(files.ok());
    for (const ObjectInfo& o : *files) {
      if (!referenced.contains(o.key)) out.push_back(o.key);
    }
    return out;
  }

  std::optional<testing::TempDir> dir_;
  std::unique_ptr<LocalDirectoryStore> object_store_;
  std::shared_ptr<RocksDbResources> resources_;
  std::unique_ptr<RocksDbStateBackend> backend_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  Contents live_;
  std::map<uint64_t, Contents> expected_;
  int restores_ = 0;
  absl::Mutex log_mu_;
  std::vector<std::string> log_;
};

// ---- Manifests --------------------------------------------------------------

CheckpointManifest SampleManifest() {
  CheckpointManifest m;
  m.metadata = Metadata(42);
  m.metadata.source_offsets.push_back({"refunds \"eu\"", -1, 0});
  m.metadata.watermark = -5;
  m.metadata.user_metadata["note"] = "tab\there, newline\n, \x01, caf\xc3\xa9";
  m.created = absl::FromUnixMillis(1767225600123);
  m.savepoint_name = "before-upgrade";
  for (int i = 0; i < 3; ++i) {
    ManifestFile f;
    f.name = absl::StrCat("00001", i, ".sst");
    f.size = 1000u + i;
    f.crc32c = 0xdeadbe00u + i;
    f.object_key = FileObjectKey(f.crc32c, f.size, f.name);
    m.files.push_back(f);
  }
  return m;
}

TEST(ManifestTest, RoundTrips) {
  const CheckpointManifest m = SampleManifest();
  const std::string bytes = SerializeManifest(m);
  EXPECT_TRUE(absl::StartsWith(bytes, "weir-checkpoint-manifest 1 size="));
  EXPECT_THAT(bytes, HasSubstr("\"created\": \"2026-01-01T00:00:00.123Z\""));
  auto parsed = ParseManifest(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, m);

  CheckpointManifest empty;  // no files, offsets, watermark or metadata
  auto parsed_empty = ParseManifest(SerializeManifest(empty));
  ASSERT_TRUE(parsed_empty.ok()) << parsed_empty.status();
  EXPECT_EQ(*parsed_empty, empty);
}

TEST(ManifestTest, EveryFlippedBitIsCaught) {
  const std::string bytes = SerializeManifest(SampleManifest());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      auto parsed = ParseManifest(bad);
      ASSERT_FALSE(parsed.ok()) << "byte " << i << " bit " << bit;
      EXPECT_TRUE(absl::IsDataLoss(parsed.status()) ||
                  absl::IsFailedPrecondition(parsed.status()))
          << parsed.status();
    }
  }
}

TEST(ManifestTest, RejectsTruncationAndTrailingBytes) {
  const std::string bytes = SerializeManifest(SampleManifest());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto parsed = ParseManifest(bytes.substr(0, n));
    ASSERT_TRUE(absl::IsDataLoss(parsed.status())) << n << parsed.status();
  }
  auto trailing = ParseManifest(bytes + "x");
  EXPECT_TRUE(absl::IsDataLoss(trailing.status())) << trailing.status();
  EXPECT_THAT(trailing.status().message(), HasSubstr("after its body"));
}

TEST(ManifestTest, RejectsBadChecksumAndOtherVersions) {
  std::string bytes = SerializeManifest(SampleManifest());
  const size_t crc_at = bytes.find("crc32c=") + 7;
  bytes[crc_at] = bytes[crc_at] == '0' ? '1' : '0';
  auto parsed = ParseManifest(bytes);
  EXPECT_TRUE(absl::IsDataLoss(parsed.status()));
  EXPECT_THAT(parsed.status().message(), HasSubstr("checksum mismatch"));

  std::string v2 = SerializeManifest(SampleManifest());
  v2.replace(0, std::strlen("weir-checkpoint-manifest 1"),
             "weir-checkpoint-manifest 2");
  EXPECT_TRUE(absl::IsFailedPrecondition(ParseManifest(v2).status()));
}

// A header with the right size and CRC around a body that is not a valid
// manifest: the parser must say so, never crash or accept.
std::string Wrap(const std::string& body) {
  return absl::StrFormat("weir-checkpoint-manifest 1 size=%d crc32c=%08x\n%s",
                         body.size(), internal::Crc32c(body), body);
}

TEST(ManifestTest, RejectsGarbageBodies) {
  const std::vector<std::string> bodies = {
      "",
      "[]",
      "{}",
      "nul",
      "{\"pipeline\": 1}",
      std::string(10000, '[') + std::string(10000, ']'),
      "{\"a\": \"\\ud800\"}",
      "{\"a\": 1, \"a\": 2}",
      "{\"a\": 1.5}",
      "{\"a\": 01}",
      "\"unterminated",
  };
  for (const std::string& body : bodies) {
    auto parsed = ParseManifest(Wrap(body));
    EXPECT_TRUE(absl::IsDataLoss(parsed.status()))
        << body.substr(0, 40) << ": " << parsed.status();
  }
  // A file entry pointing outside its content address.
  std::string evil = SerializeManifest(SampleManifest());
  std::string body = evil.substr(evil.find('\n') + 1);
  const std::string good_key = SampleManifest().files[0].object_key;
  body.replace(body.find(good_key), good_key.size(), "files/../../etc");
  auto parsed = ParseManifest(Wrap(body));
  EXPECT_TRUE(absl::IsDataLoss(parsed.status()));
  EXPECT_THAT(parsed.status().message(), HasSubstr("content address"));
  // A file name with a path in it.
  body = evil.substr(evil.find('\n') + 1);
  body.replace(body.find("\"000010.sst\""), 12, "\"../x.sst\"");
  EXPECT_TRUE(absl::IsDataLoss(ParseManifest(Wrap(body)).status()));

  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string random(rng() % 300, '\0');
    for (char& c : random) c = static_cast<char>(rng());
    EXPECT_FALSE(ParseManifest(random).ok());
    EXPECT_FALSE(ParseManifest(Wrap(random)).ok());
  }
}

TEST(ManifestTest, BodyErrorsSayWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"a\": 1, \"a\": 2}", "manifest body: duplicate member \"a\""},
      {"{\"a\": 1.5}", "manifest body: only integers are allowed"},
      {std::string(20, '[') + std::string(20, ']'),
       "manifest body: nesting deeper than"},
      {"{} x", "manifest body: "},
      {"{\"pipeline\": 1}", "manifest field \"pipeline\": not a string"},
  };
  for (const auto& [body, message] : cases) {
    auto parsed = ParseManifest(Wrap(body));
    EXPECT_TRUE(absl::IsDataLoss(parsed.status())) << body;
    EXPECT_THAT(parsed.status().message(), HasSubstr(message)) << body;
  }
}

TEST(ManifestTest, SavepointNames) {
  EXPECT_TRUE(ValidateSavepointName("before-upgrade_2.0").ok());
  EXPECT_FALSE(ValidateSavepointName("").ok());
  EXPECT_FALSE(ValidateSavepointName(".hidden").ok());
  EXPECT_FALSE(ValidateSavepointName("a/b").ok());
  EXPECT_FALSE(ValidateSavepointName(std::string(129, 'a')).ok());
}

TEST(OptionsTest, ValidateNamesTheField) {
  CheckpointerOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.interval = absl::ZeroDuration();
  EXPECT_THAT(o.Validate().message(), HasSubstr("interval"));
  o = CheckpointerOptions();
  o.min_pause = -absl::Seconds(1);
  EXPECT_THAT(o.Validate().message(), HasSubstr("min_pause"));
  o = CheckpointerOptions();
  o.timeout = absl::ZeroDuration();
  EXPECT_THAT(o.Validate().message(), HasSubstr("timeout"));
  o = CheckpointerOptions();
  o.tolerated_failures = -1;
  EXPECT_THAT(o.Validate().message(), HasSubstr("tolerated_failures"));
  o = CheckpointerOptions();
  o.retained = 0;
  EXPECT_THAT(o.Validate().message(), HasSubstr("retained"));

  CheckpointStoreOptions s;
  EXPECT_THAT(s.Validate().message(), HasSubstr("prefix"));
  s.prefix = "a//b";
  EXPECT_TRUE(absl::IsInvalidArgument(s.Validate()));
  s.prefix = "a/b";
  EXPECT_TRUE(s.Validate().ok());
}

// ---- Publish and restore
// ------------------------------------------------------

TEST_F(CheckpointTest, SecondPublishUploadsOnlyTheChange) {
  // A settled state: loaded, then compacted (as a long-running job's is).
  WriteKeys(*backend_, 0, kKeys, 1, &live_);
  ASSERT_TRUE(backend_->Compact().ok());
  PublishResult first = Publish(1, 0, 0, 1);
  // 1% of the keys change.
  PublishResult second = Publish(2, 0, kKeys / 100, 2);
  const uint64_t state_bytes = second.manifest.total_bytes();
  std::printf(
      "state_bytes=%lu first_upload=%lu second_upload=%lu "
      "(files uploaded %lu, reused %lu)\n",
      static_cast<unsigned long>(state_bytes),
      static_cast<unsigned long>(first.bytes_uploaded),
      static_cast<unsigned long>(second.bytes_uploaded),
      static_cast<unsigned long>(second.files_uploaded),
      static_cast<unsigned long>(second.files_reused));
  EXPECT_GT(state_bytes, uint64_t{kKeys} * kValueBytes / 2);
  EXPECT_EQ(first.bytes_uploaded, first.manifest.total_bytes());
  EXPECT_EQ(first.files_reused, 0u);
  EXPECT_GT(second.files_reused, 0u);
  EXPECT_LT(second.bytes_uploaded, state_bytes / 10);
  EXPECT_EQ(second.bytes_uploaded + second.bytes_reused, state_bytes);
  EXPECT_EQ(checkpoints_->stats().checkpoints_published, 2u);

  // The live database moves on; the restore is checkpoint 2, not later.
  WriteKeys(*backend_, 0, 100, 3, &live_);
  ASSERT_TRUE(backend_->Flush().ok());
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 2u);
  // A second CheckpointStore (another process) sees the same.
  EXPECT_EQ(RestoreAndCheck(*OpenStore()), 2u);
  auto next = checkpoints_->NextCheckpointId();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 3u);
}

TEST_F(CheckpointTest, PublishRefusesAnExistingIdAndOddDirectories) {
  Publish(1, 0, 1000, 1);
  const std::string dir = TakeCheckpoint(2, 0, 10, 2);
  auto again = checkpoints_->Publish(dir, Metadata(1));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  fs::create_directory(dir + "/sub");
  auto sub = checkpoints_->Publish(dir, Metadata(2));
  EXPECT_TRUE(absl::IsInvalidArgument(sub.status())) << sub.status();
  auto missing = checkpoints_->Publish(Path("nope"), Metadata(2));
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  auto ids = checkpoints_->ListCheckpoints();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, std::vector<uint64_t>{1});
}

TEST_F(CheckpointTest, FlippedByteInAnSstFallsBackToThePreviousCheckpoint) {
  Publish(1, 0, 5000, 1);
  Publish(2, 0, 500, 2);
  std::vector<ManifestFile> unique = UniqueSsts(2, 1);
  ASSERT_FALSE(unique.empty());
  FlipByte(StorePath(checkpoints_->FileKey(unique[0])), unique[0].size / 2);

  auto report = checkpoints_->Verify(*checkpoints_->ReadCheckpoint(2));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->problems.size(), 1u);
  EXPECT_TRUE(absl::IsDataLoss(report->problems[0].error));

  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 1u);
  EXPECT_EQ(checkpoints_->stats().restore_fallbacks, 1u);
  ASSERT_EQ(Log().size(), 1u);
  EXPECT_THAT(Log()[0], HasSubstr("skipping checkpoint 2"));
  EXPECT_THAT(Log()[0], HasSubstr("crc32c"));
  EXPECT_FALSE(fs::exists(Path("restore-1.restoring")));
}

TEST_F(CheckpointTest, FlippedByteInAManifestFallsBack) {
  Publish(1, 0, 5000, 1);
  Publish(2, 0, 500, 2);
  FlipByte(StorePath(checkpoints_->CheckpointKey(2)), 200);
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 1u);
  EXPECT_EQ(checkpoints_->stats().restore_fallbacks, 1u);
  ASSERT_FALSE(Log().empty());
  EXPECT_THAT(Log()[0], HasSubstr("checksum mismatch"));
}

TEST_F(CheckpointTest, MissingFileFallsBack) {
  Publish(1, 0, 5000, 1);
  Publish(2, 0, 500, 2);
  std::vector<ManifestFile> unique = UniqueSsts(2, 1);
  ASSERT_FALSE(unique.empty());
  ASSERT_TRUE(object_store_->Delete(checkpoints_->FileKey(unique[0])).ok());
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 1u);
  EXPECT_EQ(checkpoints_->stats().restore_fallbacks, 1u);
  EXPECT_THAT(Log()[0], HasSubstr("missing"));
}

TEST_F(CheckpointTest, NoValidCheckpointIsNotFound) {
  auto none = checkpoints_->RestoreLatest(Path("restore-empty"));
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();

  Publish(1, 0, 1000, 1);
  FlipByte(StorePath(checkpoints_->CheckpointKey(1)), 100);
  auto corrupt = checkpoints_->RestoreLatest(Path("restore-corrupt"));
  EXPECT_TRUE(absl::IsNotFound(corrupt.status())) << corrupt.status();
  EXPECT_EQ(checkpoints_->stats().restore_fallbacks, 1u);
  EXPECT_FALSE(fs::exists(Path("restore-corrupt")));

  // The target must not exist: restoring never mixes with old files.
  fs::create_directory(Path("occupied"));
  EXPECT_TRUE(absl::IsAlreadyExists(
      checkpoints_->RestoreLatest(Path("occupied")).status()));
}

TEST_F(CheckpointTest, RetentionKeepsTheNewestAndSavepoints) {
  Publish(1, 0, 5000, 1);
  ASSERT_TRUE(checkpoints_->Savepoint("before-upgrade", 1).ok());
  EXPECT_TRUE(
      absl::IsAlreadyExists(checkpoints_->Savepoint("before-upgrade", 1)));
  for (uint64_t id = 2; id <= 5; ++id) {
    Publish(id, 0, 5000, static_cast<int>(id));  // rewrites every key
    if (id == 3) ASSERT_TRUE(backend_->Compact().ok());
  }
  auto result = checkpoints_->Retain(2);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->manifests_deleted, 3u);
  EXPECT_GT(result->files_deleted, 0u);
  auto ids = checkpoints_->ListCheckpoints();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<uint64_t>{4, 5}));
  EXPECT_TRUE(Unreferenced().empty());

  // Every remaining manifest verifies: nothing it needs was collected.
  for (uint64_t id : *ids) {
    auto report = checkpoints_->Verify(*checkpoints_->ReadCheckpoint(id));
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok()) << id;
  }
  auto names = checkpoints_->ListSavepoints();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"before-upgrade"});
  auto sp = checkpoints_->RestoreSavepoint("before-upgrade", Path("sp"));
  ASSERT_TRUE(sp.ok()) << sp.status();
  EXPECT_EQ(sp->metadata, Metadata(1));
  EXPECT_EQ(sp->savepoint_name, "before-upgrade");
  auto restored = OpenBackend(Path("sp"));
  ASSERT_NE(restored, nullptr);
  EXPECT_TRUE(ReadAll(*restored) == expected_[1]);
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 5u);

  // Deleting the savepoint lets the next Retain collect its files.
  ASSERT_TRUE(checkpoints_->DeleteSavepoint("before-upgrade").ok());
  auto after = checkpoints_->Retain(2);
  ASSERT_TRUE(after.ok());
  EXPECT_GT(after->files_deleted, 0u);
  EXPECT_TRUE(Unreferenced().empty());
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 5u);

  // Publishing after collection uploads again what was deleted.
  Publish(6, 0, 10, 6);
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 6u);
}

TEST_F(CheckpointTest, RetainKeepsNValidManifestsAndRefusesACorruptSavepoint) {
  for (uint64_t id = 1; id <= 3; ++id) Publish(id, 0, 2000, id);
  FlipByte(StorePath(checkpoints_->CheckpointKey(3)), 150);
  auto result = checkpoints_->Retain(1);
  ASSERT_TRUE(result.ok()) << result.status();
  auto ids = checkpoints_->ListCheckpoints();
  // 3 is corrupt, so 2 is the newest valid one and is kept.
  EXPECT_EQ(*ids, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 2u);

  ASSERT_TRUE(checkpoints_->Savepoint("sp", 2).ok());
  FlipByte(StorePath(checkpoints_->SavepointKey("sp")), 150);
  auto refused = checkpoints_->Retain(1);
  EXPECT_TRUE(absl::IsDataLoss(refused.status())) << refused.status();
}

// ---- AsyncCheckpointer
// --------------------------------------------------------

// Passes everything to a LocalDirectoryStore; PutFile can be made to block
// until released.
class GatedStore final : public ObjectStore {
 public:
  explicit GatedStore(ObjectStore* base) : base_(base) {}
  void Arm() { armed_ = true; }
  void Release() { release_.Notify(); }
  bool WaitEntered(absl::Duration d) {
    return entered_.WaitForNotificationWithTimeout(d);
  }

  absl::Status Put(std::string_view key, std::string_view bytes) override {
    return base_->Put(key, bytes);
  }
  absl::Status PutFile(std::string_view key, const std::string& path) override {
    if (armed_) {
      if (!entered_.HasBeenNotified()) entered_.Notify();
      release_.WaitForNotification();
    }
    return base_->PutFile(key, path);
  }
  absl::StatusOr<std::string> Get(std::string_view key) override {
    return base_->Get(key);
  }
  absl::Status GetFile(std::string_view key, const std::string& path) override {
    return base_->GetFile(key, path);
  }
  absl::StatusOr<uint64_t> Head(std::string_view key) override {
    return base_->Head(key);
  }
  absl::StatusOr<std::vector<ObjectInfo>> List(
      std::string_view prefix) override {
    return base_->List(prefix);
  }
  absl::Status Delete(std::string_view key) override {
    return base_->Delete(key);
  }
  std::string uri() const override { return base_->uri(); }

 private:
  ObjectStore* base_;
  std::atomic<bool> armed_{false};
  absl::Notification entered_;
  absl::Notification release_;
};

TEST_F(CheckpointTest, AsyncCheckpointerCompletesAndReports) {
  ManualClock clock(absl::FromUnixMillis(1767225600000));
  CheckpointerOptions options;
  options.clock = &clock;
  options.retained = 2;
  auto checkpointer = AsyncCheckpointer::Create(checkpoints_.get(), options);
  ASSERT_TRUE(checkpointer.ok()) << checkpointer.status();
  AsyncCheckpointer& c = **checkpointer;

  for (uint64_t id = 1; id <= 3; ++id) {
    CheckpointRequest request;
    request.metadata = Metadata(id);
    request.local_dir = TakeCheckpoint(id, 0, id == 1 ? 5000 : 50, id);
    if (id == 2) request.savepoint_name = "two";
    ASSERT_TRUE(c.Submit(request).ok());
    EXPECT_TRUE(c.in_flight());
    CheckpointRequest another;
    another.metadata = Metadata(id + 100);
    another.local_dir = Path("unused");
    EXPECT_TRUE(absl::IsFailedPrecondition(c.Submit(another)));
    ASSERT_TRUE(c.WaitForIdle(absl::Seconds(30)));
    std::optional<CheckpointCompletion> done = c.Poll();
    ASSERT_TRUE(done.has_value());
    EXPECT_FALSE(c.in_flight());
    EXPECT_FALSE(c.Poll().has_value());
    ASSERT_TRUE(done->status.ok()) << done->status;
    EXPECT_EQ(done->checkpoint_id, id);
    ASSERT_TRUE(done->manifest.has_value());
    EXPECT_EQ(done->manifest->metadata, Metadata(id));
    EXPECT_GT(done->bytes_uploaded, 0u);
    EXPECT_EQ(done->bytes_uploaded + done->bytes_reused,
              done->manifest->total_bytes());
    if (id > 1) EXPECT_GT(done->files_reused, 0u);
    EXPECT_FALSE(fs::exists(request.local_dir));  // removed after upload
    EXPECT_TRUE(c.last_retain_status().ok()) << c.last_retain_status();
  }
  auto ids = checkpoints_->ListCheckpoints();
  EXPECT_EQ(*ids, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(*checkpoints_->ListSavepoints(), std::vector<std::string>{"two"});
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 3u);
}

TEST_F(CheckpointTest, TimedOutUploadNeverWritesItsManifest) {
  GatedStore gated(object_store_.get());
  CheckpointStoreOptions store_options;
  store_options.prefix = kPrefix;
  auto store = CheckpointStore::Create(&gated, store_options);
  ASSERT_TRUE(store.ok());
  ManualClock clock(absl::FromUnixMillis(1767225600000));
  CheckpointerOptions options;
  options.clock = &clock;
  options.timeout = absl::Seconds(30);
  auto checkpointer = AsyncCheckpointer::Create(store->get(), options);
  ASSERT_TRUE(checkpointer.ok());
  AsyncCheckpointer& c = **checkpointer;

  gated.Arm();
  CheckpointRequest request;
  request.metadata = Metadata(1);
  request.local_dir = TakeCheckpoint(1, 0, 2000, 1);
  ASSERT_TRUE(c.Submit(request).ok());
  ASSERT_TRUE(gated.WaitEntered(absl::Seconds(30)));  // stuck in an upload
  EXPECT_FALSE(c.Poll().has_value());
  clock.Advance(absl::Seconds(31));
  std::optional<CheckpointCompletion> done = c.Poll();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(absl::IsDeadlineExceeded(done->status)) << done->status;
  EXPECT_FALSE(done->manifest.has_value());
  EXPECT_FALSE(c.in_flight());

  // The store comes back; the abandoned upload must stop short of its
  // manifest.
  gated.Release();
  ASSERT_TRUE(c.WaitForIdle(absl::Seconds(30)));
  auto exists = object_store_->Exists((*store)->CheckpointKey(1));
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
  EXPECT_TRUE((*store)->ListCheckpoints()->empty());
  EXPECT_FALSE(fs::exists(request.local_dir));

  // The next checkpoint goes through, and its retention collects the
  // abandoned upload's files.
  CheckpointRequest next;
  next.metadata = Metadata(2);
  next.local_dir = TakeCheckpoint(2, 0, 10, 2);
  ASSERT_TRUE(c.Submit(next).ok());
  ASSERT_TRUE(c.WaitForIdle(absl::Seconds(30)));
  done = c.Poll();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->status.ok()) << done->status;
  EXPECT_TRUE(Unreferenced().empty());
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 2u);
}

// Checkpointers of two partitions sharing an UploadPool; the first
// partition's uploads can be held.
class UploadPoolTest : public CheckpointTest {
 protected:
  void SetUp() override {
    CheckpointTest::SetUp();
    gated_ = std::make_unique<GatedStore>(object_store_.get());
    CheckpointStoreOptions held;
    held.prefix = "payments/p0";
    auto store = CheckpointStore::Create(gated_.get(), held);
    ASSERT_TRUE(store.ok()) << store.status();
    held_store_ = std::move(*store);
    options_.clock = &clock_;
  }

  std::unique_ptr<AsyncCheckpointer> Checkpointer(CheckpointStore* store,
                                                  UploadPool* pool) {
    auto c = AsyncCheckpointer::Create(store, options_, pool);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  CheckpointRequest Request(uint64_t id) {
    CheckpointRequest r;
    r.metadata = Metadata(id);
    const int n = static_cast<int>(id);
    r.local_dir = TakeCheckpoint(id, 0, 100 * n, n);
    return r;
  }

  // Submits checkpoint 1 to `held` and waits until its upload is held.
  void SubmitHeld(AsyncCheckpointer& held) {
    gated_->Arm();
    ASSERT_TRUE(held.Submit(Request(1)).ok());
    ASSERT_TRUE(gated_->WaitEntered(absl::Seconds(30)));
  }

  static void ExpectPublished(AsyncCheckpointer& c) {
    ASSERT_TRUE(c.WaitForIdle(absl::Seconds(30)));
    std::optional<CheckpointCompletion> done = c.Poll();
    ASSERT_TRUE(done.has_value());
    EXPECT_TRUE(done->status.ok()) << done->status;
  }

  std::unique_ptr<GatedStore> gated_;
  std::unique_ptr<CheckpointStore> held_store_;
  ManualClock clock_{absl::FromUnixMillis(1767225600000)};
  CheckpointerOptions options_;
};

TEST_F(UploadPoolTest, CheckpointersSharingAThreadTakeTurns) {
  UploadPool pool(1);
  auto first = Checkpointer(held_store_.get(), &pool);
  auto second = Checkpointer(checkpoints_.get(), &pool);
  auto third = Checkpointer(checkpoints_.get(), &pool);
  ASSERT_TRUE(first && second && third);

  SubmitHeld(*first);
  ASSERT_TRUE(second->Submit(Request(2)).ok());
  const CheckpointRequest dropped = Request(3);
  ASSERT_TRUE(third->Submit(dropped).ok());

  // The pool's one thread is held by the first upload: the others wait
  // their turn.
  EXPECT_FALSE(second->WaitForIdle(absl::Milliseconds(50)));
  EXPECT_FALSE(second->Poll().has_value());
  // A checkpointer destroyed while its job waits drops the job and its
  // local copy, and the thread never runs it.
  third.reset();
  EXPECT_FALSE(fs::exists(dropped.local_dir));

  gated_->Release();
  ExpectPublished(*first);
  ExpectPublished(*second);
  EXPECT_EQ(*held_store_->ListCheckpoints(), std::vector<uint64_t>{1});
  EXPECT_EQ(*checkpoints_->ListCheckpoints(), std::vector<uint64_t>{2});
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 2u);
}

TEST_F(UploadPoolTest, AStuckUploadDoesNotHoldTheOtherThreads) {
  UploadPool pool(2);
  auto first = Checkpointer(held_store_.get(), &pool);
  auto second = Checkpointer(checkpoints_.get(), &pool);
  ASSERT_TRUE(first && second);

  SubmitHeld(*first);
  ASSERT_TRUE(second->Submit(Request(2)).ok());
  ExpectPublished(*second);
  EXPECT_FALSE(first->Poll().has_value());  // still held
  gated_->Release();
  ExpectPublished(*first);
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 2u);
}

// ---- CheckpointScheduler
// ------------------------------------------------------

TEST(CheckpointSchedulerTest, IntervalPauseAndToleratedFailures) {
  ManualClock clock(absl::FromUnixMillis(0));
  CheckpointerOptions options;
  options.clock = &clock;
  options.interval = absl::Seconds(60);
  options.min_pause = absl::Seconds(10);
  options.tolerated_failures = 2;
  auto scheduler = CheckpointScheduler::Create(options);
  ASSERT_TRUE(scheduler.ok());
  CheckpointScheduler& s = *scheduler;

  EXPECT_FALSE(s.Due());
  clock.Advance(absl::Seconds(60));
  ASSERT_TRUE(s.Due());
  s.Started();
  EXPECT_FALSE(s.Due());
  // A slow checkpoint: 65 s. The next waits for the minimum pause.
  clock.Advance(absl::Seconds(65));
  EXPECT_FALSE(s.Due());
  EXPECT_TRUE(s.Completed(absl::OkStatus()).ok());
  EXPECT_FALSE(s.Due());
  clock.Advance(absl::Seconds(10));
  ASSERT_TRUE(s.Due());
  // A fast one: due again one interval after its start.
  s.Started();
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(s.Completed(absl::OkStatus()).ok());
  clock.Advance(absl::Seconds(58));
  EXPECT_FALSE(s.Due());
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(s.Due());

  const absl::Status failure = absl::UnavailableError("store down");
  for (int i = 1; i <= 2; ++i) {
    s.Started();
    EXPECT_TRUE(s.Completed(failure).ok());
    EXPECT_EQ(s.consecutive_failures(), i);
  }
  s.Started();
  absl::Status escalated = s.Completed(failure);
  EXPECT_TRUE(absl::IsUnavailable(escalated));
  EXPECT_THAT(escalated.message(), HasSubstr("3 times in a row"));
  EXPECT_THAT(escalated.message(), HasSubstr("store down"));
  s.Started();
  EXPECT_TRUE(s.Completed(absl::OkStatus()).ok());
  EXPECT_EQ(s.consecutive_failures(), 0);
}

// ---- A full disk
// ----------------------------------------------------------------

// The store's disk fills up in the middle of uploading checkpoint 2: Publish
// fails with kResourceExhausted naming the file, publishes no manifest (so
// restore still sees checkpoint 1), leaves no partial object under a
// file's key; once space returns the same directory publishes and restores.
TEST_F(CheckpointTest, AFullStoreDiskFailsClearlyAndPublishesNothing) {
  Publish(1, 0, 5000, 1);
  const std::string dir = TakeCheckpoint(2, 0, 10000, 2);
  const uint64_t size = DirBytes(dir);

  testing::FaultInjectionEnv env;
  LocalDirectoryStoreOptions local;
  local.sync = false;
  local.env = &env;
  auto full_store = LocalDirectoryStore::Create(StoreRoot(), local);
  ASSERT_TRUE(full_store.ok()) << full_store.status();
  CheckpointStoreOptions options;
  options.prefix = kPrefix;
  auto store = CheckpointStore::Create(full_store->get(), options);
  ASSERT_TRUE(store.ok()) << store.status();
  // Room for about half of the new checkpoint's bytes.
  env.Fail({.ops = testing::kWriteOps,
            .path_contains = StoreRoot(),
            .error = ENOSPC,
            .after_bytes = size / 2});

  auto r = (*store)->Publish(dir, Metadata(2));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
      << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(StoreRoot()));
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("No space left on device"));
  EXPECT_GT(env.injected(), 0);
  EXPECT_EQ(*checkpoints_->ListCheckpoints(), std::vector<uint64_t>{1});
  // Every object under a file key is whole: its size is the one its name
  // says, and checkpoint 1 still verifies.
  auto files = object_store_->List(absl::StrCat(kPrefix, "/files/"));
  ASSERT_TRUE(files.ok()) << files.status();
  for (const ObjectInfo& o : *files) {
    EXPECT_THAT(o.key, HasSubstr(absl::StrCat("-", o.size, "-"))) << o.key;
  }
  auto one = checkpoints_->ReadCheckpoint(1);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_TRUE(checkpoints_->Verify(*one)->ok());
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 1u);

  env.Clear();  // the space returns
  auto again = (*store)->Publish(dir, Metadata(2));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(checkpoints_->Verify(again->manifest)->ok());
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), 2u);
  EXPECT_EQ(checkpoints_->stats().restore_fallbacks, 0u);
}

// The local disk fills up while a checkpoint is downloaded for restore: the
// error names the file, nothing is left in the target or its staging
// directory, a full disk is not taken for a bad checkpoint (no fallback to
// an older one), and once space returns the restore succeeds.
TEST_F(CheckpointTest, AFullLocalDiskFailsRestoreWithoutFallingBack) {
  Publish(1, 0, 5000, 1);
  Publish(2, 0, 10000, 2);
  // Downloads are written by the object store, the rest by the checkpoint
  // store: both go through the same Env.
  testing::FaultInjectionEnv env;
  LocalDirectoryStoreOptions local;
  local.sync = false;
  local.env = &env;
  auto object_store = LocalDirectoryStore::Create(StoreRoot(), local);
  ASSERT_TRUE(object_store.ok()) << object_store.status();
  CheckpointStoreOptions options;
  options.prefix = kPrefix;
  options.env = &env;
  auto store = CheckpointStore::Create(object_store->get(), options);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string target = Path("restore-full");
  env.Fail({.ops = testing::kWriteOps,
            .path_contains = target,
            .error = ENOSPC,
            .after_bytes = 100000});

  auto m = (*store)->RestoreLatest(target);
  ASSERT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted)
      << m.status();
  EXPECT_THAT(std::string(m.status().message()), HasSubstr(target));
  EXPECT_EQ((*store)->stats().restore_fallbacks, 0u);
  EXPECT_FALSE(fs::exists(target));
  EXPECT_FALSE(fs::exists(target + ".restoring"));

  env.Clear();
  auto restored = (*store)->RestoreLatest(target);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->metadata.checkpoint_id, 2u);
  auto backend = OpenBackend(target);
  ASSERT_NE(backend, nullptr);
  EXPECT_TRUE(ReadAll(*backend) == expected_[2]);
}

// ---- Kill points
// ----------------------------------------------------------------

// Run only as a child of KillPointTest: publishes the checkpoint the
// environment names through a FaultInjectionEnv that kills the process at
// the step WEIR_CKPT_HELPER_KILL_AT names.
TEST(CheckpointKillHelper, PublishFromEnv) {
  const char* root = std::getenv("WEIR_CKPT_HELPER_STORE");
  if (root == nullptr) GTEST_SKIP() << "helper for KillPointTest";
  LocalDirectoryStoreOptions local;
  local.sync = false;
  auto object_store = LocalDirectoryStore::Create(root, local);
  ASSERT_TRUE(object_store.ok());
  testing::FaultInjectionEnv env;
  env.KillAtStep(std::getenv("WEIR_CKPT_HELPER_KILL_AT"));
  CheckpointStoreOptions options;
  options.prefix = kPrefix;
  options.env = &env;
  auto store = CheckpointStore::Create(object_store->get(), options);
  ASSERT_TRUE(store.ok());
  auto r = (*store)->Publish(std::getenv("WEIR_CKPT_HELPER_DIR"), Metadata(2));
  ASSERT_TRUE(r.ok()) << r.status();
}

class KillPointTest : public CheckpointTest,
                      public ::testing::WithParamInterface<const char*> {};

TEST_P(KillPointTest, RestoreSeesAPublishedCheckpointAndRetainCollects) {
  const std::string step = GetParam();
  Publish(1, 0, 5000, 1);
  const std::string dir = TakeCheckpoint(2, 0, 500, 2);

  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  testing::SubprocessOptions options;
  options.env = {absl::StrCat("WEIR_CKPT_HELPER_STORE=", StoreRoot()),
                 absl::StrCat("WEIR_CKPT_HELPER_DIR=", dir),
                 absl::StrCat("WEIR_CKPT_HELPER_KILL_AT=", step)};
  auto child = testing::Subprocess::Start(
      {exe, "--gtest_filter=CheckpointKillHelper.PublishFromEnv"}, options);
  ASSERT_TRUE(child.ok()) << child.status();
  auto status = (*child)->Wait(absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFSIGNALED(*status)) << "the child was not killed at " << step;
  EXPECT_EQ(WTERMSIG(*status), SIGKILL);

  const bool published = step == "after_manifest";
  if (step == "mid_upload" || step == "after_upload") {
    EXPECT_FALSE(Unreferenced().empty()) << "expected orphaned files";
  }
  EXPECT_EQ(RestoreAndCheck(*checkpoints_), published ? 2u : 1u);
  EXPECT_EQ(checkpoints_->stats().restore_fallbacks, 0u);

  auto retained = checkpoints_->Retain(5);
  ASSERT_TRUE(retained.ok()) << retained.status();
  EXPECT_TRUE(Unreferenced().empty());

  // The same directory can be published again afterwards (as checkpoint 3),
  // and every file it needs is there.
  auto again = checkpoints_->Publish(dir, Metadata(3));
  ASSERT_TRUE(again.ok()) << again.status();
  expected_[3] = expected_[2];
  auto report = checkpoints_->Verify(again->manifest);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
}

INSTANTIATE_TEST_SUITE_P(Steps, KillPointTest,
                         ::testing::Values("before_upload", "mid_upload",
                                           "after_upload", "after_manifest"));

// ---- The inspector
// --------------------------------------------------------------

TEST_F(CheckpointTest, InspectorListsShowsAndVerifies) {
  const std::string tool = WEIR_BINARY_DIR "/weir-checkpoint";
  WEIR_REQUIRE_PART(
      testing::NeedExecutable(tool, "build the weir-checkpoint target"));
  Publish(1, 0, 2000, 1);
  Publish(2, 0, 20, 2);
  ASSERT_TRUE(checkpoints_->Savepoint("keep", 1).ok());
  const std::string uri = absl::StrCat("file://", StoreRoot());

  auto run = [&](std::vector<std::string> args) -> std::pair<int, std::string> {
    args.insert(args.begin(), tool);
    testing::SubprocessOptions options;
    options.merge_stderr = true;
    auto p = testing::Subprocess::Start(args, options);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return {-1, ""};
    auto out = (*p)->ReadAll(absl::Seconds(60));
    auto st = (*p)->Wait(absl::Seconds(60));
    EXPECT_TRUE(out.ok() && st.ok());
    return {WIFEXITED(*st) ? WEXITSTATUS(*st) : -1, out.ok() ? *out : ""};
  };

  auto [list_rc, list] = run({"list", uri, kPrefix});
  EXPECT_EQ(list_rc, 0) << list;
  EXPECT_THAT(list, HasSubstr("00000000000000000001"));
  EXPECT_THAT(list, HasSubstr("00000000000000000002"));
  EXPECT_THAT(list, HasSubstr("keep  checkpoint=1"));
  EXPECT_THAT(list, HasSubstr("payments/3@2000"));

  auto [show_rc, show] = run({"show", uri, kPrefix, "2"});
  EXPECT_EQ(show_rc, 0) << show;
  EXPECT_THAT(show, HasSubstr("\"checkpoint_id\": 2"));
  auto [show_sp_rc, show_sp] = run({"show", uri, kPrefix, "keep"});
  EXPECT_EQ(show_sp_rc, 0);
  EXPECT_THAT(show_sp, HasSubstr("\"savepoint\": \"keep\""));

  auto [verify_rc, verify] = run({"verify", uri, kPrefix});
  EXPECT_EQ(verify_rc, 0) << verify;
  EXPECT_THAT(verify, HasSubstr("OK checkpoint 2"));
  EXPECT_THAT(verify, HasSubstr("OK savepoint keep"));

  std::vector<ManifestFile> unique = UniqueSsts(2, 1);
  ASSERT_FALSE(unique.empty());
  FlipByte(StorePath(checkpoints_->FileKey(unique[0])), 10);
  auto [bad_rc, bad] = run({"verify", uri, kPrefix, "2"});
  EXPECT_EQ(bad_rc, 1) << bad;
  EXPECT_THAT(bad, HasSubstr("FAIL checkpoint 2: file " + unique[0].name));
  auto [ok_rc, ok] = run({"verify", uri, kPrefix, "1"});
  EXPECT_EQ(ok_rc, 0) << ok;

  EXPECT_EQ(run({"list", uri}).first, 2);
  EXPECT_EQ(run({"frobnicate", uri, kPrefix}).first, 2);
  EXPECT_EQ(run({"list", "file:///no/such/weir/store", kPrefix}).first, 1);
}

}  // namespace
}  // namespace weir
