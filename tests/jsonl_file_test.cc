#include "weir/internal/jsonl_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/subprocess.h"

namespace weir::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteRaw(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class JsonlFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = weir::testing::TempDir::Create("jsonl_file_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    path_ = dir_->path() + "/f.jsonl";
  }

  std::optional<weir::testing::TempDir> dir_;
  std::string path_;
};

TEST(ErrnoStatusTest, MapsErrnoToRetryMeaning) {
  EXPECT_EQ(ErrnoStatus(ENOSPC, "write", "/x").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus(EDQUOT, "write", "/x").code(),
            absl::StatusCode::kResourceExhausted);
  for (int e : {ENOENT, ENOTDIR, EACCES, EPERM, EISDIR, EROFS}) {
    EXPECT_EQ(ErrnoStatus(e, "open", "/x").code(),
              absl::StatusCode::kFailedPrecondition)
        << e;
  }
  const absl::Status eio = ErrnoStatus(EIO, "read", "/some/file");
  EXPECT_EQ(eio.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(eio.message()), HasSubstr("read /some/file: "));
}

TEST(ForEachCompleteLineTest, NumbersLinesAndSkipsTornLast) {
  std::vector<std::pair<int64_t, std::string>> seen;
  ASSERT_TRUE(ForEachCompleteLine("a\n\nb\ntorn", [&](int64_t n,
                                                      std::string_view line) {
                seen.emplace_back(n, std::string(line));
                return absl::OkStatus();
              }).ok());
  EXPECT_THAT(seen, ElementsAre(Pair(1, "a"), Pair(2, ""), Pair(3, "b")));
}

TEST(ForEachCompleteLineTest, StopsAtTheFirstError) {
  int calls = 0;
  const absl::Status status =
      ForEachCompleteLine("a\nb\nc\n", [&](int64_t n, std::string_view) {
        ++calls;
        return n == 2 ? absl::DataLossError("line 2") : absl::OkStatus();
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(calls, 2);
}

TEST_F(JsonlFileTest, ReadWholeFileOfAMissingFileIsNotFound) {
  const auto data = ReadWholeFile(path_, "feature");
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr("no feature file " + path_));
}

TEST_F(JsonlFileTest, ReadWholeFileReadsLargeFiles) {
  const std::string big(300000, 'x');
  WriteRaw(path_, big);
  const auto data = ReadWholeFile(path_, "feature");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, big);
}

TEST_F(JsonlFileTest, OpenAppendFileCutsATornTail) {
  WriteRaw(path_, "one\ntwo\nthr");
  auto fd = OpenAppendFile(path_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  close(*fd);
  EXPECT_EQ(Slurp(path_), "one\ntwo\n");
}

TEST_F(JsonlFileTest, OpenAppendFileKeepsCompleteFilesAndEmptiesNoNewline) {
  WriteRaw(path_, "one\n");
  auto fd = OpenAppendFile(path_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  close(*fd);
  EXPECT_EQ(Slurp(path_), "one\n");

  // A torn tail longer than the read block, with no newline at all.
  WriteRaw(path_, std::string(10000, 'x'));
  fd = OpenAppendFile(path_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  close(*fd);
  EXPECT_EQ(Slurp(path_), "");

  // A newline in an earlier block than the last byte.
  WriteRaw(path_, "a\n" + std::string(10000, 'x'));
  fd = OpenAppendFile(path_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  close(*fd);
  EXPECT_EQ(Slurp(path_), "a\n");
}

TEST_F(JsonlFileTest, OpenAppendFileInAMissingDirectoryFails) {
  const auto fd = OpenAppendFile(dir_->path() + "/no/such/dir/f.jsonl");
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JsonlFileTest, AppendLinesBuffersUntilFullAndFlushWritesTheRest) {
  auto fd = OpenAppendFile(path_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  std::string pending;
  ASSERT_TRUE(AppendLines(*fd, path_, 8, "ab\n", &pending).ok());
  EXPECT_EQ(pending, "ab\n");
  EXPECT_EQ(Slurp(path_), "");
  ASSERT_TRUE(AppendLines(*fd, path_, 8, "cdefg\n", &pending).ok());
  EXPECT_EQ(pending, "");
  EXPECT_EQ(Slurp(path_), "ab\ncdefg\n");
  ASSERT_TRUE(AppendLines(*fd, path_, 8, "h\n", &pending).ok());
  ASSERT_TRUE(FlushLines(*fd, path_, /*fsync=*/true, &pending).ok());
  EXPECT_EQ(pending, "");
  EXPECT_EQ(Slurp(path_), "ab\ncdefg\nh\n");
  ASSERT_TRUE(AppendLines(*fd, path_, 8, "i\n", &pending).ok());
  CloseAppendFile(*fd, path_, &pending);
  EXPECT_EQ(Slurp(path_), "ab\ncdefg\nh\ni\n");
}

TEST_F(JsonlFileTest, AFullBufferThatCannotBeWrittenRefusesNewLines) {
  // A read-only descriptor: every write fails with EBADF.
  WriteRaw(path_, "");
  const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string pending;
  // Taken, although the write that follows fails.
  ASSERT_TRUE(AppendLines(fd, path_, 4, "abcd\n", &pending).ok());
  EXPECT_EQ(pending, "abcd\n");
  // The full buffer still cannot be written: these lines are refused.
  const absl::Status refused = AppendLines(fd, path_, 4, "e\n", &pending);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pending, "abcd\n");
  EXPECT_EQ(FlushLines(fd, path_, /*fsync=*/false, &pending).code(),
            absl::StatusCode::kUnavailable);
  close(fd);
}

}  // namespace
}  // namespace weir::internal
