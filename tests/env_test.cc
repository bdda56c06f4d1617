#include "weir/env.h"

#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/fault_env.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

TEST(ErrnoToStatusTest, OneMappingWithRetryMeaningNamingThePath) {
  const std::pair<int, absl::StatusCode> table[] = {
      {ENOENT, absl::StatusCode::kNotFound},
      {ENOTDIR, absl::StatusCode::kNotFound},
      {EEXIST, absl::StatusCode::kAlreadyExists},
      {ENOTEMPTY, absl::StatusCode::kAlreadyExists},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {EROFS, absl::StatusCode::kPermissionDenied},
      {ENOSPC, absl::StatusCode::kResourceExhausted},
      {EDQUOT, absl::StatusCode::kResourceExhausted},
      {EFBIG, absl::StatusCode::kResourceExhausted},
      {EMFILE, absl::StatusCode::kResourceExhausted},
      {ENAMETOOLONG, absl::StatusCode::kInvalidArgument},
      {EISDIR, absl::StatusCode::kInvalidArgument},
      {EBADF, absl::StatusCode::kInternal},
      {EIO, absl::StatusCode::kUnavailable},
      {EAGAIN, absl::StatusCode::kUnavailable},
  };
  for (const auto& [error, code] : table) {
    EXPECT_EQ(ErrnoToStatus(error, "write", "/x").code(), code) << error;
  }
  const absl::Status full = ErrnoToStatus(ENOSPC, "write", "/var/lib/a.sst");
  EXPECT_EQ(full.message(), "write /var/lib/a.sst: No space left on device");
}

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::Create("env_test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
  }
  std::string Path(const std::string& name) const {
    return dir_->path() + "/" + name;
  }

  Env* env_ = Env::Default();
  std::optional<testing::TempDir> dir_;
};

TEST_F(EnvTest, WritesReadsAndListsFiles) {
  const std::string a = Path("a");
  ASSERT_TRUE(
      WriteStringToFile(env_, a, "hello", WriteMode::kCreateNew, true).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(
      WriteStringToFile(env_, a, "x", WriteMode::kCreateNew, false)));
  ASSERT_TRUE(
      WriteStringToFile(env_, a, " world", WriteMode::kAppend, false).ok());
  EXPECT_EQ(*ReadFileToString(env_, a), "hello world");

  auto in = env_->NewReadableFile(a);
  ASSERT_TRUE(in.ok()) << in.status();
  char buf[5];
  ASSERT_EQ(*(*in)->ReadAt(6, buf, 5), 5u);
  EXPECT_EQ(std::string(buf, 5), "world");

  auto st = env_->Stat(a);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->type, FileType::kRegular);
  EXPECT_EQ(st->size, 11u);

  ASSERT_TRUE(env_->Truncate(a, 5).ok());
  ASSERT_TRUE(env_->LinkFile(a, Path("b")).ok());
  EXPECT_EQ(env_->Stat(Path("b"))->inode, env_->Stat(a)->inode);
  ASSERT_TRUE(env_->Rename(Path("b"), Path("c")).ok());
  EXPECT_EQ(*ReadFileToString(env_, Path("c")), "hello");
  EXPECT_THAT(*env_->ListDirectory(dir_->path()),
              UnorderedElementsAre("a", "c"));

  const absl::Status missing = env_->NewReadableFile(Path("nope")).status();
  EXPECT_TRUE(absl::IsNotFound(missing));
  EXPECT_THAT(std::string(missing.message()), HasSubstr(Path("nope")));
}

TEST_F(EnvTest, CreatesAndRemovesTrees) {
  ASSERT_TRUE(CreateDirectories(env_, Path("x/y/z")).ok());
  ASSERT_TRUE(CreateDirectories(env_, Path("x/y/z")).ok());  // exists: OK
  ASSERT_TRUE(
      WriteStringToFile(env_, Path("x/y/f"), "1", WriteMode::kTruncate, false)
          .ok());
  EXPECT_EQ(env_->Stat(Path("x/y/z"))->type, FileType::kDirectory);
  EXPECT_TRUE(
      absl::IsNotFound(CreateDirectories(env_, Path("x/y/f/under-a-file"))));
  ASSERT_TRUE(RemoveTree(env_, Path("x")).ok());
  EXPECT_FALSE(*PathExists(env_, Path("x")));
  EXPECT_TRUE(RemoveTree(env_, Path("x")).ok());  // missing: OK
}

// A state directory is often a symlink to another volume, or under one.
TEST_F(EnvTest, CreateDirectoriesFollowsSymlinks) {
  ASSERT_TRUE(CreateDirectories(env_, Path("volume/state")).ok());
  ASSERT_EQ(::symlink(Path("volume").c_str(), Path("via").c_str()), 0);
  ASSERT_EQ(::symlink(Path("volume/state").c_str(), Path("state").c_str()), 0);

  EXPECT_TRUE(CreateDirectories(env_, Path("state")).ok());  // the link
  ASSERT_TRUE(CreateDirectories(env_, Path("via/new/deeper")).ok());
  EXPECT_EQ(env_->Stat(Path("volume/new/deeper"))->type, FileType::kDirectory);

  // A symlink to a file, or one that leads nowhere, is not a directory.
  ASSERT_TRUE(WriteStringToFile(env_, Path("volume/f"), "1",
                                WriteMode::kTruncate, false)
                  .ok());
  ASSERT_EQ(::symlink(Path("volume/f").c_str(), Path("to-file").c_str()), 0);
  ASSERT_EQ(::symlink(Path("missing").c_str(), Path("dangling").c_str()), 0);
  EXPECT_FALSE(CreateDirectories(env_, Path("to-file")).ok());
  EXPECT_FALSE(CreateDirectories(env_, Path("dangling")).ok());
  EXPECT_FALSE(CreateDirectories(env_, Path("to-file/under")).ok());
}

// A wrapper overrides one call and inherits the rest.
class CountingEnv : public EnvWrapper {
 public:
  CountingEnv() : EnvWrapper(Env::Default()) {}
  absl::Status Rename(const std::string& from, const std::string& to) override {
    ++renames;
    return EnvWrapper::Rename(from, to);
  }
  int renames = 0;
};

TEST_F(EnvTest, AWrapperForwardsEveryCallItDoesNotOverride) {
  CountingEnv env;
  ASSERT_TRUE(
      WriteStringToFile(&env, Path("a"), "x", WriteMode::kCreateNew, true)
          .ok());
  ASSERT_TRUE(env.Rename(Path("a"), Path("b")).ok());
  EXPECT_EQ(env.renames, 1);
  EXPECT_EQ(*ReadFileToString(&env, Path("b")), "x");
}

TEST_F(EnvTest, FaultEnvFailsMatchingPathsWithTheGivenErrno) {
  testing::FaultInjectionEnv env;
  env.Fail(
      {.ops = testing::kWriteOps, .path_contains = "/full/", .error = ENOSPC});
  env.Fail({.ops = testing::kRead, .path_contains = "broken", .error = EIO});
  ASSERT_TRUE(CreateDirectories(Env::Default(), Path("full")).ok());

  const absl::Status full = WriteStringToFile(&env, Path("full/a"), "x",
                                              WriteMode::kCreateNew, false);
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_THAT(std::string(full.message()), HasSubstr(Path("full/a")));
  EXPECT_TRUE(
      WriteStringToFile(&env, Path("ok"), "x", WriteMode::kCreateNew, false)
          .ok());
  EXPECT_TRUE(
      absl::IsResourceExhausted(env.Rename(Path("ok"), Path("full/b"))));
  EXPECT_TRUE(
      WriteStringToFile(&env, Path("broken"), "x", WriteMode::kCreateNew, false)
          .ok());
  EXPECT_TRUE(
      absl::IsUnavailable(ReadFileToString(&env, Path("broken")).status()));
  EXPECT_EQ(env.injected(), 3);

  env.Clear();  // the space returns
  EXPECT_TRUE(
      WriteStringToFile(&env, Path("full/a"), "x", WriteMode::kCreateNew, false)
          .ok());
}

TEST_F(EnvTest, FaultEnvFailsAfterNBytesWithAShortWrite) {
  testing::FaultInjectionEnv env;
  env.Fail({.ops = testing::kWriteOps, .error = ENOSPC, .after_bytes = 10});
  auto file = env.NewWritableFile(Path("a"), WriteMode::kCreateNew);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("123456").ok());
  EXPECT_TRUE(absl::IsResourceExhausted((*file)->Append("789012")));
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(*ReadFileToString(Env::Default(), Path("a")), "1234567890");
  // The budget is used up: the next file cannot even be created.
  EXPECT_TRUE(absl::IsResourceExhausted(
      env.NewWritableFile(Path("b"), WriteMode::kCreateNew).status()));
}

}  // namespace
}  // namespace weir
