#include "weir/internal/jsonl_file.h"

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
#include "weir/testing/fault_env.h"
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

absl::StatusOr<std::unique_ptr<JsonlAppendFile>> OpenAt(
    const std::string& path, Env* env = Env::Default()) {
  return JsonlAppendFile::Open(env, path);
}

TEST_F(JsonlFileTest, OpenCutsATornTail) {
  WriteRaw(path_, "one\ntwo\nthr");
  ASSERT_TRUE(OpenAt(path_).ok());
  EXPECT_EQ(Slurp(path_), "one\ntwo\n");
}

TEST_F(JsonlFileTest, OpenKeepsCompleteFilesAndEmptiesNoNewline) {
  WriteRaw(path_, "one\n");
  ASSERT_TRUE(OpenAt(path_).ok());
  EXPECT_EQ(Slurp(path_), "one\n");

  // A torn tail longer than the read block, with no newline at all.
  WriteRaw(path_, std::string(10000, 'x'));
  ASSERT_TRUE(OpenAt(path_).ok());
  EXPECT_EQ(Slurp(path_), "");

  // A newline in an earlier block than the last byte.
  WriteRaw(path_, "a\n" + std::string(10000, 'x'));
  ASSERT_TRUE(OpenAt(path_).ok());
  EXPECT_EQ(Slurp(path_), "a\n");
}

TEST_F(JsonlFileTest, OpenInAMissingDirectoryFailsNamingThePath) {
  const std::string path = dir_->path() + "/no/such/dir/f.jsonl";
  const auto file = OpenAt(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(path));
}

TEST_F(JsonlFileTest, AppendBuffersUntilFullAndFlushWritesTheRest) {
  auto file = OpenAt(path_);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("ab\n", 8).ok());
  EXPECT_EQ((*file)->pending(), "ab\n");
  EXPECT_EQ(Slurp(path_), "");
  ASSERT_TRUE((*file)->Append("cdefg\n", 8).ok());
  EXPECT_EQ((*file)->pending(), "");
  EXPECT_EQ(Slurp(path_), "ab\ncdefg\n");
  ASSERT_TRUE((*file)->Append("h\n", 8).ok());
  ASSERT_TRUE((*file)->Flush(/*fsync=*/true).ok());
  EXPECT_EQ((*file)->pending(), "");
  EXPECT_EQ(Slurp(path_), "ab\ncdefg\nh\n");
  ASSERT_TRUE((*file)->Append("i\n", 8).ok());
  file->reset();  // closes, writing what is pending
  EXPECT_EQ(Slurp(path_), "ab\ncdefg\nh\ni\n");
}

// A disk that fills up in the middle of a line: the line is refused, the
// part of it that reached the disk is cut again, and once space returns the
// file holds every line exactly once.
TEST_F(JsonlFileTest, AFullDiskRefusesLinesAndLeavesNoTornLine) {
  weir::testing::FaultInjectionEnv env;
  auto file = OpenAt(path_, &env);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("first\n", 4).ok());
  EXPECT_EQ(Slurp(path_), "first\n");
  env.Fail(
      {.ops = weir::testing::kWriteOps, .error = ENOSPC, .after_bytes = 3});
  // Taken, although the write that follows fails part-way.
  ASSERT_TRUE((*file)->Append("abcd\n", 4).ok());
  EXPECT_EQ((*file)->pending(), "abcd\n");
  EXPECT_EQ(Slurp(path_), "first\n") << "the torn write was not cut";
  // The full buffer still cannot be written: these lines are refused.
  const absl::Status refused = (*file)->Append("e\n", 4);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), HasSubstr(path_));
  EXPECT_EQ((*file)->pending(), "abcd\n");
  EXPECT_EQ((*file)->Flush(/*fsync=*/false).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Slurp(path_), "first\n");

  env.Clear();
  ASSERT_TRUE((*file)->Append("e\n", 4).ok());
  ASSERT_TRUE((*file)->Flush(/*fsync=*/true).ok());
  EXPECT_EQ(Slurp(path_), "first\nabcd\ne\n");
}

// When even the cut fails, the next write cuts first.
TEST_F(JsonlFileTest, ATornWriteThatCannotBeCutIsCutBeforeTheNextWrite) {
  weir::testing::FaultInjectionEnv env;
  auto file = OpenAt(path_, &env);
  ASSERT_TRUE(file.ok()) << file.status();
  env.Fail({.ops = weir::testing::kWrite | weir::testing::kTruncate,
            .error = EIO,
            .after_bytes = 2});
  EXPECT_EQ((*file)->Append("abcd\n", 0).code(), absl::StatusCode::kOk);
  EXPECT_EQ(Slurp(path_), "ab");
  env.Clear();
  ASSERT_TRUE((*file)->Flush(/*fsync=*/false).ok());
  EXPECT_EQ(Slurp(path_), "abcd\n");
}

}  // namespace
}  // namespace weir::internal
