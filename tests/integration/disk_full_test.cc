// Disk full, at the level of the fraud-features service (issue 10, item 4):
// the service runs against the local broker with its state directory (the
// live RocksDB state and the checkpoint staging beside it), or its file://
// checkpoint store, on a small tmpfs of its own. Once it has published a
// checkpoint, a ballast file fills that file system, as another process
// would. The test checks that
//   - the service stops with a non-zero exit and an error that says the
//     disk is full and names a path on that file system;
//   - every manifest in the store references files that are there, whole
//     (Verify), so no corrupted checkpoint was published;
//   - once the ballast is removed (the space returns), a restart with the
//     same state directory, store and group runs to the end and its output
//     equals an uninterrupted run's.
// RocksDB writes the state directory through its own Env, so the full disk
// is a real one: mounting a tmpfs needs root. Without root the test is
// skipped with the reason, unless CI is set, where it fails.

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fraud_features_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/checkpoint.h"
#include "weir/object_store.h"
#include "weir/testing/local_broker.h"
#include "weir/testing/subprocess.h"
#include "weir/testing/wpay.h"

namespace weir {
namespace {

namespace fft = fraud_features_testing;

constexpr char kTopic[] = "payments";
constexpr int kPartitions = 8;
constexpr int64_t kEvents = 200'000;

testing::WPayOptions WPay() {
  testing::WPayOptions w;
  w.num_events = kEvents;
  w.num_users = 100'000;
  w.num_partitions = kPartitions;
  w.seed = 11;
  return w;
}

struct RunDirs {
  std::string state;
  std::string store_root;
  std::string sink;
  std::string dlq;
};

// A tmpfs mounted at `dir` for the life of the object.
class Tmpfs {
 public:
  static absl::StatusOr<std::unique_ptr<Tmpfs>> Mount(const std::string& dir,
                                                      const std::string& size) {
    std::filesystem::create_directories(dir);
    const std::string data = absl::StrCat("size=", size);
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, data.c_str()) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("mount tmpfs on ", dir, ": ", std::strerror(errno)));
    }
    return std::unique_ptr<Tmpfs>(new Tmpfs(dir));
  }
  ~Tmpfs() { umount2(dir_.c_str(), MNT_DETACH); }

  // Writes a ballast file until the file system is full. A service running
  // on it may free space meanwhile (the temporary file of a write that
  // failed, a staging folder it removes), so the ballast takes that too,
  // until none is left.
  absl::Status Fill() {
    std::ofstream out(Ballast(), std::ios::binary);
    const std::string chunk(4096, 'b');
    std::error_code ec;
    std::filesystem::space_info space{};
    for (int round = 0; round < 100; ++round) {
      while (out.write(chunk.data(), chunk.size())) out.flush();
      out.clear();  // full: write again if space comes back
      space = std::filesystem::space(dir_, ec);
      if (!ec && space.available <= 4096) return absl::OkStatus();
    }
    return absl::InternalError(absl::StrCat("could not fill ", dir_, ": ",
                                            space.available, " bytes left"));
  }
  // The space returns.
  void Empty() { std::filesystem::remove(Ballast()); }

 private:
  explicit Tmpfs(std::string dir) : dir_(std::move(dir)) {}
  std::string Ballast() const { return dir_ + "/ballast"; }
  const std::string dir_;
};

class DiskFullTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fft::BinariesBuilt() || geteuid() != 0) return;
    auto dir = testing::TempDir::Create("disk-full");
    ASSERT_TRUE(dir.ok()) << dir.status();
    root_ = new testing::TempDir(std::move(*dir));
    auto broker = fft::StartBrokerWithWPay(kTopic, kPartitions, WPay());
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();

    const RunDirs golden = Dirs("golden", "golden/state", "golden/store");
    auto run = fft::RunServiceToEnd(Args(golden, "golden"), absl::Seconds(180));
    ASSERT_TRUE(run.ok()) << run.status();
    auto values = fft::ReadFinalValues(golden.sink);
    ASSERT_TRUE(values.ok()) << values.status();
    golden_ = new fft::FinalValues(std::move(*values));
  }

  static void TearDownTestSuite() {
    delete golden_;
    delete broker_;
    delete root_;
    golden_ = nullptr;
    broker_ = nullptr;
    root_ = nullptr;
  }

  void SetUp() override {
    if (!fft::BinariesBuilt()) {
      GTEST_SKIP() << "build fraud-features and weir-broker first";
    }
    if (geteuid() != 0) {
      if (std::getenv("CI") != nullptr) {
        FAIL() << "CI is set, but mounting a tmpfs needs root";
      }
      GTEST_SKIP() << "mounting a tmpfs (a disk that can fill) needs root";
    }
    ASSERT_NE(golden_, nullptr) << "the golden run failed";
  }

  static std::string Path(const std::string& rel) {
    return absl::StrCat(root_->path(), "/", rel);
  }

  static RunDirs Dirs(const std::string& name, const std::string& state,
                      const std::string& store) {
    RunDirs d;
    d.state = Path(state);
    d.store_root = Path(store);
    d.sink = Path(name + "/features.jsonl");
    d.dlq = Path(name + "/dlq.jsonl");
    std::filesystem::create_directories(Path(name));
    return d;
  }

  static std::vector<std::string> Args(const RunDirs& d,
                                       const std::string& group) {
    return {"--bootstrap=" + broker_->bootstrap(),
            absl::StrCat("--topic=", kTopic),
            "--group=" + group,
            "--state_dir=" + d.state,
            "--checkpoint_uri=file://" + d.store_root,
            "--sink=file:" + d.sink,
            "--dlq=file:" + d.dlq,
            "--checkpoint_interval=200ms",
            absl::StrCat("--max_events=", kEvents),
            "--kafka_property=auto.offset.reset=error",
            "--kafka_property=session.timeout.ms=3000",
            "--kafka_property=heartbeat.interval.ms=300"};
  }

  // Every checkpoint in the store verifies: its manifest parses and every
  // file it names is there with its size and CRC. Returns how many.
  static int VerifyStore(const std::string& store_root) {
    LocalDirectoryStoreOptions local;
    local.create_if_missing = false;
    auto store = LocalDirectoryStore::Create(store_root, local);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return 0;
    int verified = 0;
    for (int p = 0; p < kPartitions; ++p) {
      CheckpointStoreOptions so;
      so.prefix = CheckpointPrefix(absl::StrCat("fraud_features/", kTopic), p);
      auto cs = CheckpointStore::Create(store->get(), so);
      EXPECT_TRUE(cs.ok()) << cs.status();
      if (!cs.ok()) return 0;
      auto ids = (*cs)->ListCheckpoints();
      EXPECT_TRUE(ids.ok()) << ids.status();
      if (!ids.ok()) return 0;
      for (uint64_t id : *ids) {
        auto m = (*cs)->ReadCheckpoint(id);
        EXPECT_TRUE(m.ok()) << "partition " << p << ": " << m.status();
        if (!m.ok()) continue;
        auto report = (*cs)->Verify(*m);
        EXPECT_TRUE(report.ok()) << report.status();
        if (!report.ok()) continue;
        EXPECT_TRUE(report->ok()) << "partition " << p << " checkpoint " << id
                                  << ": " << report->problems[0].error;
        ++verified;
      }
    }
    return verified;
  }

  // Runs until a checkpoint was published, fills `disk`, and expects the
  // service to stop with an error naming a path under `full_dir`; then
  // checks the store, empties the disk, and expects a restart to reach
  // golden.
  static void FillAndRecover(const RunDirs& d, const std::string& group,
                             Tmpfs& disk, const std::string& full_dir) {
    {
      auto service = fft::StartService(Args(d, group));
      ASSERT_TRUE(service.ok()) << service.status();
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      double published = 0;
      while (absl::Now() < deadline && published < 1) {
        ASSERT_FALSE(service->process->Wait(absl::ZeroDuration()).ok())
            << "the run ended before its first checkpoint:\n"
            << service->output;
        auto v = fft::ScrapeMetric(service->metrics_url,
                                   "weir_checkpoints_completed_total");
        if (v.ok()) published = *v;
        absl::SleepFor(absl::Milliseconds(5));  // polling the endpoint
      }
      ASSERT_GE(published, 1) << "no checkpoint was published";
      ASSERT_TRUE(disk.Fill().ok());
      auto status = fft::FinishService(*service, absl::Seconds(120));
      ASSERT_TRUE(status.ok()) << status.status();
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0)
          << "the service did not fail on a full disk:\n"
          << service->output;
      EXPECT_THAT(service->output, ::testing::HasSubstr("No space left"))
          << service->output;
      EXPECT_THAT(service->output, ::testing::HasSubstr(full_dir))
          << "the error does not name the full file system:\n"
          << service->output;
    }
    EXPECT_GE(VerifyStore(d.store_root), 1);

    disk.Empty();
    auto run = fft::RunServiceToEnd(Args(d, group), absl::Seconds(180));
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_GT(fft::SummaryNumber(*run, "checkpoints"), 0);
    EXPECT_GE(VerifyStore(d.store_root), 1);
    auto values = fft::ReadFinalValues(d.sink);
    ASSERT_TRUE(values.ok()) << values.status();
    EXPECT_EQ(values->size(), golden_->size());
    EXPECT_EQ(fft::CompareFinal(*golden_, *values), "");
  }

  static testing::TempDir* root_;
  static LocalBroker* broker_;
  static fft::FinalValues* golden_;
};

testing::TempDir* DiskFullTest::root_ = nullptr;
LocalBroker* DiskFullTest::broker_ = nullptr;
fft::FinalValues* DiskFullTest::golden_ = nullptr;

// The state directory (live RocksDB state and checkpoint staging) fills.
TEST_F(DiskFullTest, FullStateDirectoryStopsClearlyAndLosesNothing) {
  auto disk = Tmpfs::Mount(Path("state-disk"), "64m");
  ASSERT_TRUE(disk.ok()) << disk.status();
  const RunDirs d = Dirs("state-full", "state-disk/state", "state-full/store");
  FillAndRecover(d, "state-full", **disk, Path("state-disk"));
}

// The file:// checkpoint store fills: uploads fail.
TEST_F(DiskFullTest, FullCheckpointStoreStopsClearlyAndLosesNothing) {
  auto disk = Tmpfs::Mount(Path("store-disk"), "64m");
  ASSERT_TRUE(disk.ok()) << disk.status();
  const RunDirs d = Dirs("store-full", "store-full/state", "store-disk/store");
  FillAndRecover(d, "store-full", **disk, Path("store-disk"));
}

}  // namespace
}  // namespace weir
