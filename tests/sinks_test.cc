// MemorySink and FileSink: the idempotence contract, the JSON-lines format
// and reading it back.

#include "weir/sinks.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

FeatureUpdate Update(std::string key, std::string feature, Value value,
                     EventTime version_time, int64_t version_offset) {
  FeatureUpdate u;
  u.key = std::move(key);
  u.feature = std::move(feature);
  u.window = Window{version_time - 60000, version_time};
  u.value = std::move(value);
  u.version_time = version_time;
  u.version_offset = version_offset;
  return u;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(MemorySinkTest, KeepsTheNewestVersionPerKeyAndFeature) {
  MemorySink sink;
  const FeatureUpdate v1 = Update("u1", "count", Value::Int64(1), 1000, 5);
  const FeatureUpdate v2 = Update("u1", "count", Value::Int64(2), 2000, 3);
  const FeatureUpdate other = Update("u1", "sum", Value::Dec(1234, 2), 1000, 5);
  ASSERT_TRUE(sink.Write({v2, v1, other}).ok());
  EXPECT_EQ(sink.Get("u1", "count"), v2);
  EXPECT_EQ(sink.Get("u1", "sum"), other);
  EXPECT_EQ(sink.Get("u2", "count"), std::nullopt);
  EXPECT_EQ(sink.size(), 2u);
  EXPECT_EQ(sink.applied(), 2);
  EXPECT_EQ(sink.skipped(), 1);
}

TEST(MemorySinkTest, EqualVersionIsSkippedAndOffsetBreaksTies) {
  MemorySink sink;
  const FeatureUpdate first = Update("k", "f", Value::Int64(1), 1000, 7);
  FeatureUpdate same_version = first;
  same_version.value = Value::Int64(99);  // a different value, same version
  const FeatureUpdate lower_offset = Update("k", "f", Value::Int64(2), 1000, 6);
  const FeatureUpdate higher_offset =
      Update("k", "f", Value::Int64(3), 1000, 8);
  ASSERT_TRUE(sink.Write({first, same_version, lower_offset}).ok());
  EXPECT_EQ(sink.Get("k", "f"), first);
  EXPECT_EQ(sink.skipped(), 2);
  ASSERT_TRUE(sink.Write({higher_offset}).ok());
  EXPECT_EQ(sink.Get("k", "f"), higher_offset);
}

TEST(MemorySinkTest, SnapshotIsSortedByKeyThenFeature) {
  MemorySink sink;
  ASSERT_TRUE(sink.Write({Update("b", "x", Value::Int64(1), 1, 0),
                          Update("a", "y", Value::Int64(2), 1, 0),
                          Update("a", "x", Value::Int64(3), 1, 0)})
                  .ok());
  std::vector<std::string> order;
  for (const FeatureUpdate& u : sink.Snapshot()) {
    order.push_back(u.key + "/" + u.feature);
  }
  EXPECT_THAT(order, ElementsAre("a/x", "a/y", "b/x"));
}

TEST(MemorySinkTest, InjectedErrorTakesNothingUntilCleared) {
  MemorySink sink;
  sink.InjectError(absl::UnavailableError("store down"));
  const FeatureUpdate u = Update("k", "f", Value::Int64(1), 1, 0);
  EXPECT_TRUE(absl::IsUnavailable(sink.Write({u})));
  EXPECT_TRUE(absl::IsUnavailable(sink.Flush()));
  EXPECT_EQ(sink.size(), 0u);
  sink.InjectError(absl::OkStatus());
  ASSERT_TRUE(sink.Write({u}).ok());
  EXPECT_TRUE(sink.Flush().ok());
  EXPECT_EQ(sink.Get("k", "f"), u);
  sink.Clear();
  EXPECT_EQ(sink.size(), 0u);
  EXPECT_EQ(sink.applied(), 0);
}

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::Create("weir-filesink");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() + "/features.jsonl";
  }

  std::unique_ptr<FileSink> Open(size_t buffer_bytes = size_t{1} << 20) {
    FileSinkOptions options;
    options.path = path_;
    options.buffer_bytes = buffer_bytes;
    auto sink = FileSink::Create(options);
    EXPECT_TRUE(sink.ok()) << sink.status();
    return sink.ok() ? std::move(*sink) : nullptr;
  }

  std::optional<testing::TempDir> dir_;
  std::string path_;
};

TEST_F(FileSinkTest, WritesTheDocumentedLineFormat) {
  FeatureUpdate u =
      Update("u1", "amount_sum_1h", Value::Dec(1250, 2), 1767229200000, 42);
  u.window = Window{1767225600000, 1767229200000};
  EXPECT_EQ(FeatureUpdateToJson(u),
            "{\"key\":\"u1\",\"feature\":\"amount_sum_1h\","
            "\"window_start\":1767225600000,\"window_end\":1767229200000,"
            "\"type\":\"decimal\",\"value\":12.50,"
            "\"version_time\":1767229200000,\"version_offset\":42}");
}

TEST_F(FileSinkTest, EveryValueTypeReadsBackEqual) {
  const std::vector<FeatureUpdate> updates = {
      Update("u1", "null", Value::Null(), 1, 0),
      Update("u1", "bool", Value::Bool(true), 2, 1),
      Update("u1", "int", Value::Int64(std::numeric_limits<int64_t>::min()), 3,
             std::numeric_limits<int64_t>::max()),
      Update("u1", "double", Value::Double(0.1 + 0.2), -4, -1),
      Update("u1", "tiny", Value::Double(5e-324), 5, 0),
      Update("u1", "inf", Value::Double(-HUGE_VAL), 5, 0),
      Update("u1", "decimal", Value::Dec(-5, 3), 6, 0),
      Update("q\"uo\\te\n\x01", "string",
             Value::String("caf\xC3\xA9 \"x\"\t\x1F"), 7, 0),
  };
  auto sink = Open();
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Write(updates).ok());
  ASSERT_TRUE(sink->Flush().ok());
  auto read = ReadFeatureFile(path_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, updates);

  // NaN is not equal to itself, so it is checked on its own.
  ASSERT_TRUE(
      sink->Write({Update("u1", "nan", Value::Double(std::nan("")), 8, 0)})
          .ok());
  ASSERT_TRUE(sink->Flush().ok());
  read = ReadFeatureFile(path_);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), updates.size() + 1);
  EXPECT_EQ(read->back().value.type(), Value::Type::kDouble);
  EXPECT_TRUE(std::isnan(read->back().value.double_value()));
}

TEST_F(FileSinkTest, BuffersUntilFlush) {
  auto sink = Open();
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Write({Update("k", "f", Value::Int64(1), 1, 0)}).ok());
  EXPECT_EQ(ReadAll(path_), "");
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_THAT(ReadAll(path_), HasSubstr("\"key\":\"k\""));
}

TEST_F(FileSinkTest, ZeroBufferWritesAtOnce) {
  auto sink = Open(/*buffer_bytes=*/0);
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Write({Update("k", "f", Value::Int64(1), 1, 0)}).ok());
  EXPECT_THAT(ReadAll(path_), HasSubstr("\"key\":\"k\""));
}

TEST_F(FileSinkTest, AppendsAcrossReopenAndReadersKeepTheNewest) {
  const FeatureUpdate old_version = Update("k", "f", Value::Int64(1), 1000, 1);
  const FeatureUpdate new_version = Update("k", "f", Value::Int64(2), 2000, 1);
  const FeatureUpdate other = Update("j", "f", Value::Int64(3), 1000, 1);
  {
    auto sink = Open();
    ASSERT_NE(sink, nullptr);
    ASSERT_TRUE(sink->Write({new_version, other}).ok());
    ASSERT_TRUE(sink->Flush().ok());
  }
  {
    // A replay: the same updates again, and an older one after the newer.
    auto sink = Open();
    ASSERT_NE(sink, nullptr);
    ASSERT_TRUE(sink->Write({old_version, new_version, other}).ok());
  }  // the destructor writes what is pending
  auto read = ReadFeatureFile(path_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->size(), 5u);
  EXPECT_THAT(LatestFeatureUpdates(*read), ElementsAre(other, new_version));
}

TEST_F(FileSinkTest, CreateCutsATornLastLine) {
  const FeatureUpdate u = Update("k", "f", Value::Int64(1), 1, 0);
  {
    std::ofstream out(path_, std::ios::binary);
    out << FeatureUpdateToJson(u) << "\n"
        << "{\"key\":\"torn";
  }
  // A reader skips the torn line.
  auto before = ReadFeatureFile(path_);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(*before, ElementsAre(u));
  // The sink cuts it off, so the next line starts clean.
  auto sink = Open();
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Write({u}).ok());
  ASSERT_TRUE(sink->Flush().ok());
  auto after = ReadFeatureFile(path_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(*after, ElementsAre(u, u));
}

TEST_F(FileSinkTest, BadLineIsDataLossWithItsLineNumber) {
  {
    std::ofstream out(path_, std::ios::binary);
    out << FeatureUpdateToJson(Update("k", "f", Value::Int64(1), 1, 0))
        << "\n{\"key\":\"k\"}\n";
  }
  auto read = ReadFeatureFile(path_);
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("line 2"));
}

TEST_F(FileSinkTest, ParseRejectsWrongTypes) {
  EXPECT_FALSE(ParseFeatureUpdateJson(
                   "{\"key\":\"k\",\"feature\":\"f\",\"window_start\":0,"
                   "\"window_end\":1,\"type\":\"int64\",\"value\":\"x\","
                   "\"version_time\":1,\"version_offset\":0}")
                   .ok());
  EXPECT_FALSE(ParseFeatureUpdateJson(
                   "{\"key\":\"k\",\"feature\":\"f\",\"window_start\":0,"
                   "\"window_end\":1,\"type\":\"int64\",\"value\":1,"
                   "\"version_time\":1,\"version_offset\":0} trailing")
                   .ok());
  EXPECT_FALSE(ParseFeatureUpdateJson("not json").ok());
}

TEST_F(FileSinkTest, FullDiskRefusesNewUpdatesAndKeepsTheTakenOnes) {
  FileSinkOptions options;
  options.path = "/dev/full";  // every write fails with ENOSPC
  options.buffer_bytes = 0;
  options.fsync = false;
  auto sink = FileSink::Create(options);
  if (!sink.ok()) GTEST_SKIP() << "no /dev/full: " << sink.status();
  const FeatureUpdate u = Update("k", "f", Value::Int64(1), 1, 0);
  // Taken into the buffer; the failed write is reported later.
  EXPECT_TRUE((*sink)->Write({u}).ok());
  // The buffer still holds it, so nothing more is taken.
  EXPECT_TRUE(absl::IsResourceExhausted((*sink)->Write({u})));
  EXPECT_TRUE(absl::IsResourceExhausted((*sink)->Flush()));
}

TEST_F(FileSinkTest, MissingFileAndBadOptions) {
  EXPECT_TRUE(absl::IsNotFound(ReadFeatureFile(path_).status()));
  FileSinkOptions options;
  EXPECT_TRUE(absl::IsInvalidArgument(FileSink::Create(options).status()));
  options.path = dir_->path() + "/no/such/dir/out.jsonl";
  EXPECT_TRUE(absl::IsNotFound(FileSink::Create(options).status()));
}

}  // namespace
}  // namespace weir
