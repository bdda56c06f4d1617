#include "weir/object_store.h"

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class LocalDirectoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::Create("weir-objstore");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    root_ = dir_->path() + "/root";
    auto store = LocalDirectoryStore::Create(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::string ReadLocal(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteLocal(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }

  std::vector<std::string> Keys(std::string_view prefix) {
    std::vector<std::string> keys;
    auto listed = store_->List(prefix);
    EXPECT_TRUE(listed.ok()) << listed.status();
    if (listed.ok()) {
      for (const ObjectInfo& o : *listed) keys.push_back(o.key);
    }
    return keys;
  }

  std::optional<testing::TempDir> dir_;
  std::string root_;
  std::unique_ptr<LocalDirectoryStore> store_;
};

TEST_F(LocalDirectoryStoreTest, PutThenGetReturnsTheSameBytes) {
  const std::string bytes("a\0b\xff\n", 5);
  ASSERT_TRUE(store_->Put("manifest", bytes).ok());
  auto got = store_->Get("manifest");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
  auto size = store_->Head("manifest");
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 5u);
  EXPECT_EQ(ReadLocal(root_ + "/manifest"), bytes);
}

TEST_F(LocalDirectoryStoreTest, EmptyObjectIsAnObject) {
  ASSERT_TRUE(store_->Put("empty", "").ok());
  EXPECT_EQ(store_->Get("empty").value(), "");
  EXPECT_TRUE(store_->Exists("empty").value());
  EXPECT_THAT(store_->List("").value(), ElementsAre(ObjectInfo{"empty", 0}));
}

TEST_F(LocalDirectoryStoreTest, PutOverwrites) {
  ASSERT_TRUE(store_->Put("k", "first version").ok());
  ASSERT_TRUE(store_->Put("k", "v2").ok());
  EXPECT_EQ(store_->Get("k").value(), "v2");
  EXPECT_THAT(store_->List("").value(), ElementsAre(ObjectInfo{"k", 2}));
}

TEST_F(LocalDirectoryStoreTest, MissingKeyIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(store_->Get("nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Head("a/b/nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetFile("nope", dir_->path() + "/x")));
  EXPECT_FALSE(std::filesystem::exists(dir_->path() + "/x"));
  EXPECT_FALSE(store_->Exists("nope").value());
  EXPECT_TRUE(store_->Delete("nope").ok());
  EXPECT_TRUE(store_->Delete("a/b/nope").ok());
}

TEST_F(LocalDirectoryStoreTest, PrefixOfAKeyIsNotAnObject) {
  ASSERT_TRUE(store_->Put("a/b/c", "x").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get("a/b").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Head("a").status()));
  EXPECT_TRUE(store_->Delete("a/b").ok());
  EXPECT_EQ(store_->Get("a/b/c").value(), "x");
}

TEST_F(LocalDirectoryStoreTest, NestedKeysListSortedByPrefix) {
  for (const char* key : {"p1/000002/MANIFEST", "p1/000001/MANIFEST",
                          "p1/000001/sst/12.sst", "p10/x", "p2/y", "top"}) {
    ASSERT_TRUE(store_->Put(key, key).ok()) << key;
  }
  auto size = [](const char* k) { return std::string(k).size(); };
  EXPECT_THAT(
      store_->List("").value(),
      ElementsAre(
          ObjectInfo{"p1/000001/MANIFEST", size("p1/000001/MANIFEST")},
          ObjectInfo{"p1/000001/sst/12.sst", size("p1/000001/sst/12.sst")},
          ObjectInfo{"p1/000002/MANIFEST", size("p1/000002/MANIFEST")},
          ObjectInfo{"p10/x", 5}, ObjectInfo{"p2/y", 4}, ObjectInfo{"top", 3}));
  EXPECT_THAT(Keys("p1/"),
              ElementsAre("p1/000001/MANIFEST", "p1/000001/sst/12.sst",
                          "p1/000002/MANIFEST"));
  // A prefix that ends inside a segment matches like S3's.
  EXPECT_THAT(Keys("p1"),
              ElementsAre("p1/000001/MANIFEST", "p1/000001/sst/12.sst",
                          "p1/000002/MANIFEST", "p10/x"));
  EXPECT_THAT(Keys("p1/000001/M"), ElementsAre("p1/000001/MANIFEST"));
  EXPECT_THAT(store_->List("nothing/here/").value(), IsEmpty());
  EXPECT_THAT(store_->List("../").value(), IsEmpty());
}

TEST_F(LocalDirectoryStoreTest, DeleteRemovesTheObjectAndEmptyDirectories) {
  ASSERT_TRUE(store_->Put("a/b/c", "1").ok());
  ASSERT_TRUE(store_->Put("a/d", "2").ok());
  ASSERT_TRUE(store_->Delete("a/b/c").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get("a/b/c").status()));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/a/b"));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/a/d"));
  EXPECT_THAT(store_->List("").value(), ElementsAre(ObjectInfo{"a/d", 1}));
  // The directory of a deleted key can be written again.
  ASSERT_TRUE(store_->Put("a/b/c", "3").ok());
  EXPECT_EQ(store_->Get("a/b/c").value(), "3");
}

TEST_F(LocalDirectoryStoreTest, TemporaryFilesAreNeverListed) {
  ASSERT_TRUE(store_->Put("x", "1").ok());
  // What a writer that crashed before its rename leaves behind.
  std::filesystem::create_directories(root_ + "/.weir-tmp");
  WriteLocal(root_ + "/.weir-tmp/123-abc", "half of an obj");
  EXPECT_THAT(store_->List("").value(), ElementsAre(ObjectInfo{"x", 1}));
  EXPECT_THAT(store_->List(".weir").value(), IsEmpty());
  EXPECT_TRUE(
      absl::IsInvalidArgument(store_->Get(".weir-tmp/123-abc").status()));
}

TEST_F(LocalDirectoryStoreTest, StaleTemporaryFilesAreRemovedOnOpen) {
  std::filesystem::create_directories(root_ + "/.weir-tmp");
  const std::string stale = root_ + "/.weir-tmp/stale";
  const std::string fresh = root_ + "/.weir-tmp/fresh";
  WriteLocal(stale, "old");
  WriteLocal(fresh, "new");
  std::filesystem::last_write_time(
      stale,
      std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
  ASSERT_TRUE(LocalDirectoryStore::Create(root_).ok());
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(fresh));
}

TEST_F(LocalDirectoryStoreTest, ReadersNeverSeeAHalfWrittenObject) {
  // Two versions of 2 MiB each; a reader racing with the overwrites must
  // only ever see one of them whole.
  const std::string a(2 << 20, 'a');
  const std::string b(2 << 20, 'b');
  ASSERT_TRUE(store_->Put("obj", a).ok());
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto got = store_->Get("obj");
      if (!got.ok() || (*got != a && *got != b)) bad.fetch_add(1);
      reads.fetch_add(1);
      auto listed = store_->List("");
      if (!listed.ok() || listed->size() != 1 || (*listed)[0].key != "obj" ||
          (*listed)[0].size != a.size()) {
        bad.fetch_add(1);
      }
    }
  });
  // At least 40 overwrites, and on until the reader has raced with them
  // for a while: on a loaded machine it may be scheduled late.
  constexpr int kMinReads = 20;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  bool put_ok = true;
  for (int i = 0; put_ok && (i < 40 || (reads.load() < kMinReads &&
                                        absl::Now() < deadline));
       ++i) {
    put_ok = store_->Put("obj", i % 2 == 0 ? b : a).ok();
  }
  done.store(true);
  reader.join();
  EXPECT_TRUE(put_ok);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(reads.load(), kMinReads);
}

TEST_F(LocalDirectoryStoreTest, ConcurrentWritersOfDifferentKeys) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string key = "t" + std::to_string(t) + "/k" + std::to_string(i);
        EXPECT_TRUE(store_->Put(key, key).ok());
        if (i % 2 == 1) EXPECT_TRUE(store_->Delete(key).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  auto listed = store_->List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 4u * 13u);
}

TEST_F(LocalDirectoryStoreTest, PutFileAndGetFileRoundTrip) {
  std::string bytes;
  for (int i = 0; i < 300000; ++i) bytes.push_back(static_cast<char>(i * 7));
  const std::string src = dir_->path() + "/src.bin";
  const std::string dst = dir_->path() + "/dst.bin";
  WriteLocal(src, bytes);
  ASSERT_TRUE(store_->PutFile("files/src.bin", src).ok());
  EXPECT_EQ(store_->Head("files/src.bin").value(), bytes.size());
  WriteLocal(dst, "old contents");
  ASSERT_TRUE(store_->GetFile("files/src.bin", dst).ok());
  EXPECT_EQ(ReadLocal(dst), bytes);
  // No temporary file is left next to the destination.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_->path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 3);  // root/, src.bin, dst.bin
  EXPECT_TRUE(
      absl::IsNotFound(store_->PutFile("k", dir_->path() + "/missing.bin")));
}

TEST_F(LocalDirectoryStoreTest, InvalidKeysAreRejected) {
  for (const char* key : {"", "/abs", "trailing/", "a//b", "../escape", "a/./b",
                          "a/../b", ".weir-tmp/x", "back\\slash"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Put(key, "x"))) << key;
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Get(key).status())) << key;
    EXPECT_TRUE(absl::IsInvalidArgument(store_->Delete(key))) << key;
  }
  EXPECT_TRUE(
      absl::IsInvalidArgument(store_->Put(std::string("nul\0byte", 8), "x")));
  EXPECT_TRUE(
      absl::IsInvalidArgument(store_->Put(std::string(1025, 'k'), "x")));
  std::string longest;  // 1024 bytes in segments a file system accepts
  while (longest.size() < 1024) longest += std::string(100, 'k') + "/";
  longest.resize(1024);
  EXPECT_TRUE(store_->Put(longest, "x").ok());
  EXPECT_TRUE(store_->Put("dots.are/fine..too/.hidden", "x").ok());
}

TEST_F(LocalDirectoryStoreTest, CreateChecksTheRoot) {
  LocalDirectoryStoreOptions no_create;
  no_create.create_if_missing = false;
  EXPECT_TRUE(absl::IsNotFound(
      LocalDirectoryStore::Create(dir_->path() + "/absent", no_create)
          .status()));
  WriteLocal(dir_->path() + "/file", "x");
  EXPECT_TRUE(absl::IsFailedPrecondition(
      LocalDirectoryStore::Create(dir_->path() + "/file").status()));
  LocalDirectoryStoreOptions bad;
  bad.stale_temp_age = absl::ZeroDuration();
  absl::Status st = LocalDirectoryStore::Create(root_, bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("stale_temp_age"));
}

TEST_F(LocalDirectoryStoreTest, OpenObjectStoreFileUri) {
  auto store = OpenObjectStore("file://" + root_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->uri(), "file://" + root_);
  ASSERT_TRUE(store_->Put("shared", "seen by both").ok());
  EXPECT_EQ((*store)->Get("shared").value(), "seen by both");

  EXPECT_TRUE(absl::IsInvalidArgument(
      OpenObjectStore("file://relative/path").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(OpenObjectStore("ftp://x/y").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(OpenObjectStore("s3://").status()));
}

TEST(S3StoreOptionsTest, ValidateNamesTheFirstBadField) {
  S3StoreOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.part_size = 1 << 20;
  EXPECT_THAT(options.Validate().message(), HasSubstr("part_size"));
  options = S3StoreOptions();
  options.endpoint = "127.0.0.1:9000";
  EXPECT_THAT(options.Validate().message(), HasSubstr("endpoint"));
  options = S3StoreOptions();
  options.max_attempts = 0;
  EXPECT_THAT(options.Validate().message(), HasSubstr("max_attempts"));
  options = S3StoreOptions();
  options.list_page_size = 1001;
  EXPECT_THAT(options.Validate().message(), HasSubstr("list_page_size"));
  options = S3StoreOptions();
  options.max_backoff = absl::Milliseconds(1);
  EXPECT_THAT(options.Validate().message(), HasSubstr("max_backoff"));
  options = S3StoreOptions();
  options.region = "US East";
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate()));
}

}  // namespace
}  // namespace weir
