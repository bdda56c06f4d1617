// Tests of weir/source.h: VectorSource and FileSource, and the listener
// contract they share with KafkaSource.

#include "weir/source.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

#define WEIR_ASSERT_OK(expr)               \
  do {                                     \
    const ::absl::Status weir_s_ = (expr); \
    ASSERT_TRUE(weir_s_.ok()) << weir_s_;  \
  } while (false)

// An owning copy of a RawRecord, kept past the next Poll.
struct Got {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<EventTime> timestamp;
  std::string key;
  std::string value;

  friend bool operator==(const Got&, const Got&) = default;
};

std::vector<Got> Copy(absl::Span<const RawRecord> batch) {
  std::vector<Got> out;
  for (const RawRecord& r : batch) {
    out.push_back({std::string(r.topic), r.partition, r.offset, r.timestamp,
                   std::string(r.key), std::string(r.value)});
  }
  return out;
}

// Records every call; answers OnAssigned with `start` (or `fail`).
class RecordingListener : public PartitionListener {
 public:
  absl::StatusOr<StartOffsets> OnAssigned(
      absl::Span<const TopicPartition> partitions) override {
    assigned.emplace_back(partitions.begin(), partitions.end());
    if (!fail.ok()) return fail;
    StartOffsets answer;
    for (const TopicPartition& tp : partitions) {
      if (auto it = start.find(tp); it != start.end()) answer[tp] = it->second;
    }
    return answer;
  }
  void OnRevoked(absl::Span<const TopicPartition> partitions) override {
    revoked.emplace_back(partitions.begin(), partitions.end());
  }

  StartOffsets start;
  absl::Status fail;
  std::vector<std::vector<TopicPartition>> assigned;
  std::vector<std::vector<TopicPartition>> revoked;
};

// Polls until AtEnd (or `max_polls`), returning everything.
std::vector<Got> Drain(Source& source, size_t batch = 1000,
                       int max_polls = 1000) {
  std::vector<Got> all;
  for (int i = 0; i < max_polls; ++i) {
    absl::StatusOr<absl::Span<const RawRecord>> got =
        source.Poll(batch, absl::ZeroDuration());
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) break;
    std::vector<Got> copy = Copy(*got);
    all.insert(all.end(), copy.begin(), copy.end());
    if (source.AtEnd()) break;
  }
  return all;
}

std::vector<VectorSourceRecord> ThreePartitions() {
  std::vector<VectorSourceRecord> records;
  for (int32_t p = 0; p < 3; ++p) {
    for (int i = 0; i < 4; ++i) {
      records.push_back({p, absl::StrCat("k", p), absl::StrCat("v", p, "-", i),
                         1000 * p + i});
    }
  }
  return records;
}

TopicPartition Tp(int32_t p) { return {"vector", p}; }

// ---- VectorSource -----------------------------------------------------------

TEST(VectorSourceTest, ReturnsEveryRecordOnceInOffsetOrderThenEnds) {
  // One partition by default: partitions 1 and 2 do not exist.
  auto source = VectorSource::Create({}, ThreePartitions());
  EXPECT_TRUE(absl::IsInvalidArgument(source.status())) << source.status();
  VectorSourceOptions options;
  options.partitions = 3;
  source = VectorSource::Create(options, ThreePartitions());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_FALSE((*source)->AtEnd());

  absl::StatusOr<absl::Span<const RawRecord>> first =
      (*source)->Poll(3, absl::ZeroDuration());
  ASSERT_TRUE(first.ok()) << first.status();
  // One record of each partition in turn: a deterministic interleaving.
  EXPECT_THAT(Copy(*first),
              ElementsAre(Got{"vector", 0, 0, 0, "k0", "v0-0"},
                          Got{"vector", 1, 0, 1000, "k1", "v1-0"},
                          Got{"vector", 2, 0, 2000, "k2", "v2-0"}));
  std::vector<Got> rest = Drain(**source, 2);
  EXPECT_EQ(rest.size(), 9u);
  EXPECT_TRUE((*source)->AtEnd());
  std::map<int32_t, int64_t> next = {{0, 1}, {1, 1}, {2, 1}};
  for (const Got& g : rest) {
    EXPECT_EQ(g.offset, next[g.partition]++) << g.value;
    EXPECT_EQ(g.value, absl::StrCat("v", g.partition, "-", g.offset));
  }
  absl::StatusOr<absl::Span<const RawRecord>> empty =
      (*source)->Poll(10, absl::ZeroDuration());
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, IsEmpty());

  // Appending reopens the source.
  WEIR_ASSERT_OK((*source)->Append({1, "k", "late", std::nullopt}));
  EXPECT_FALSE((*source)->AtEnd());
  EXPECT_THAT(Drain(**source),
              ElementsAre(Got{"vector", 1, 4, std::nullopt, "k", "late"}));
  EXPECT_EQ((*source)->stats().records, 13);
}

TEST(VectorSourceTest, ListenerStartOffsetsAndCommittedOffsetsAreHonoured) {
  VectorSourceOptions options;
  options.partitions = 3;
  RecordingListener listener;  // outlives the source, which calls it closing
  listener.start = {{Tp(1), 3}};
  auto source = VectorSource::Create(options, ThreePartitions());
  ASSERT_TRUE(source.ok());
  (*source)->SetPartitionListener(&listener);
  WEIR_ASSERT_OK((*source)->CommitOffsets({{Tp(2), 2}}));

  std::vector<Got> got = Drain(**source);
  ASSERT_EQ(listener.assigned.size(), 1u);
  EXPECT_THAT(listener.assigned[0], ElementsAre(Tp(0), Tp(1), Tp(2)));
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const Got& g : got) offsets[g.partition].push_back(g.offset);
  EXPECT_THAT(offsets[0], ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(offsets[1], ElementsAre(3));     // the listener's offset
  EXPECT_THAT(offsets[2], ElementsAre(2, 3));  // the committed offset

  absl::StatusOr<std::vector<PartitionPosition>> positions =
      (*source)->Positions();
  ASSERT_TRUE(positions.ok());
  ASSERT_EQ(positions->size(), 3u);
  for (const PartitionPosition& pos : *positions) {
    EXPECT_EQ(pos.position, 4);
    EXPECT_EQ(pos.log_end_offset, 4);
    EXPECT_EQ(pos.lag(), 0);
  }
}

TEST(VectorSourceTest, SimulatedRebalanceRevokesThenAssignsAtCommitted) {
  VectorSourceOptions options;
  options.partitions = 3;
  auto source = VectorSource::Create(options, ThreePartitions());
  ASSERT_TRUE(source.ok());
  RecordingListener listener;
  (*source)->SetPartitionListener(&listener);
  ASSERT_EQ(Drain(**source, 3, 1).size(), 3u);  // offset 0 of each
  WEIR_ASSERT_OK((*source)->CommitOffsets({{Tp(1), 1}, {Tp(2), 1}}));

  WEIR_ASSERT_OK((*source)->SetAssignment({0}));
  std::vector<Got> only0 = Drain(**source);
  ASSERT_EQ(listener.revoked.size(), 1u);
  EXPECT_THAT(listener.revoked[0], ElementsAre(Tp(1), Tp(2)));
  EXPECT_THAT((*source)->Assignment(), ElementsAre(Tp(0)));
  for (const Got& g : only0) EXPECT_EQ(g.partition, 0);
  EXPECT_EQ(only0.size(), 3u);

  WEIR_ASSERT_OK((*source)->SetAssignment({0, 1, 2}));
  std::vector<Got> back = Drain(**source);
  ASSERT_EQ(listener.assigned.size(), 2u);
  EXPECT_THAT(listener.assigned[1], ElementsAre(Tp(1), Tp(2)));
  EXPECT_EQ(back.size(), 6u);  // offsets 1..3 of partitions 1 and 2
  for (const Got& g : back) EXPECT_GE(g.offset, 1);

  WEIR_ASSERT_OK((*source)->Close());
  ASSERT_EQ(listener.revoked.size(), 2u);
  EXPECT_THAT(listener.revoked[1], ElementsAre(Tp(0), Tp(1), Tp(2)));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*source)->Poll(1, absl::ZeroDuration()).status()));
  EXPECT_THAT((*source)->Assignment(), IsEmpty());
  const SourceStats stats = (*source)->stats();
  EXPECT_EQ(stats.partitions_assigned, 5);
  EXPECT_EQ(stats.partitions_revoked, 5);
}

TEST(VectorSourceTest, PauseHoldsAPartitionAndResumeContinuesWhereItStopped) {
  VectorSourceOptions options;
  options.partitions = 2;
  auto records = ThreePartitions();
  records.resize(8);  // partitions 0 and 1
  auto source = VectorSource::Create(options, records);
  ASSERT_TRUE(source.ok());
  ASSERT_EQ(Drain(**source, 2, 1).size(), 2u);  // offset 0 of each
  WEIR_ASSERT_OK((*source)->Pause({{Tp(0)}}));
  std::vector<Got> got = Drain(**source, 100, 5);
  EXPECT_EQ(got.size(), 3u);
  for (const Got& g : got) EXPECT_EQ(g.partition, 1);
  EXPECT_FALSE((*source)->AtEnd());
  absl::StatusOr<std::vector<PartitionPosition>> positions =
      (*source)->Positions();
  ASSERT_TRUE(positions.ok());
  EXPECT_TRUE((*positions)[0].paused);
  EXPECT_EQ((*positions)[0].lag(), 3);

  WEIR_ASSERT_OK((*source)->Resume({{Tp(0)}}));
  got = Drain(**source);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].partition, 0);
  EXPECT_EQ(got[0].offset, 1);
  EXPECT_TRUE((*source)->AtEnd());

  EXPECT_TRUE(absl::IsInvalidArgument((*source)->Pause({{Tp(5)}})));
  EXPECT_TRUE(absl::IsInvalidArgument((*source)->Pause({{"other", 0}})));
}

TEST(VectorSourceTest, SeekMovesTheNextOffset) {
  auto source = VectorSource::Create({}, {{0, "", "a"}, {0, "", "b"}});
  ASSERT_TRUE(source.ok());
  ASSERT_EQ(Drain(**source).size(), 2u);
  WEIR_ASSERT_OK((*source)->Seek(Tp(0), 1));
  EXPECT_THAT(Drain(**source),
              ElementsAre(Got{"vector", 0, 1, std::nullopt, "", "b"}));
  EXPECT_TRUE(absl::IsInvalidArgument((*source)->Seek(Tp(0), -1)));
  EXPECT_TRUE(absl::IsInvalidArgument((*source)->Seek(Tp(1), 0)));
}

TEST(VectorSourceTest, FailingListenerFailsEveryPoll) {
  auto source = VectorSource::Create({}, {{0, "", "a"}});
  ASSERT_TRUE(source.ok());
  RecordingListener listener;
  listener.fail = absl::FailedPreconditionError("checkpoint is incompatible");
  (*source)->SetPartitionListener(&listener);
  for (int i = 0; i < 2; ++i) {
    absl::Status s = (*source)->Poll(1, absl::ZeroDuration()).status();
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("incompatible"));
  }
  EXPECT_THAT((*source)->Assignment(), IsEmpty());
  // Nothing was accepted, so nothing is revoked.
  WEIR_ASSERT_OK((*source)->Close());
  EXPECT_THAT(listener.revoked, IsEmpty());
}

TEST(VectorSourceTest, ListenerNamingAnotherPartitionIsAnError) {
  auto source = VectorSource::Create({}, {{0, "", "a"}});
  ASSERT_TRUE(source.ok());
  class Bad : public PartitionListener {
   public:
    absl::StatusOr<StartOffsets> OnAssigned(
        absl::Span<const TopicPartition>) override {
      return StartOffsets{{{"vector", 7}, 0}};
    }
    void OnRevoked(absl::Span<const TopicPartition>) override {}
  } bad;
  (*source)->SetPartitionListener(&bad);
  absl::Status s = (*source)->Poll(1, absl::ZeroDuration()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("vector/7"));
}

TEST(VectorSourceTest, RejectsBadOptionsAndRecords) {
  VectorSourceOptions options;
  options.topic = "";
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("topic"));
  options.topic = "t";
  options.partitions = 0;
  EXPECT_THAT(std::string(options.Validate().message()),
              HasSubstr("partitions"));
  EXPECT_TRUE(absl::IsInvalidArgument(VectorSource::Create(options).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      VectorSource::Create({}, {{1, "", "x"}}).status()));
}

// ---- FileSource -------------------------------------------------------------

class FileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("source");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = absl::StrCat(dir_->path(), "/", name);
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::optional<testing::TempDir> dir_;
};

TEST_F(FileSourceTest, LineNumbersAreOffsetsAndTheEndIsReported) {
  // Line 2 is blank, line 3 ends in CRLF, line 5 has no line break.
  const std::string path = Write(
      "in.jsonl", "{\"a\":0}\n{\"a\":1}\n\n{\"a\":3}\r\n{\"a\":4}\n{\"a\":5}");
  auto source = FileSource::Create({.path = path});
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->partition().topic, path);
  RecordingListener listener;
  (*source)->SetPartitionListener(&listener);

  std::vector<Got> got = Drain(**source, 2);
  EXPECT_THAT(got, ElementsAre(Got{path, 0, 0, std::nullopt, "", "{\"a\":0}"},
                               Got{path, 0, 1, std::nullopt, "", "{\"a\":1}"},
                               Got{path, 0, 3, std::nullopt, "", "{\"a\":3}"},
                               Got{path, 0, 4, std::nullopt, "", "{\"a\":4}"},
                               Got{path, 0, 5, std::nullopt, "", "{\"a\":5}"}));
  EXPECT_TRUE((*source)->AtEnd());
  ASSERT_EQ(listener.assigned.size(), 1u);
  EXPECT_THAT(listener.assigned[0], ElementsAre((*source)->partition()));
  absl::StatusOr<std::vector<PartitionPosition>> positions =
      (*source)->Positions();
  ASSERT_TRUE(positions.ok());
  ASSERT_EQ(positions->size(), 1u);
  EXPECT_EQ((*positions)[0].position, 6);
  EXPECT_EQ((*positions)[0].log_end_offset, 6);
  EXPECT_EQ((*positions)[0].lag(), 0);

  // Seeking back re-reads from that line.
  WEIR_ASSERT_OK((*source)->Seek((*source)->partition(), 4));
  EXPECT_FALSE((*source)->AtEnd());
  got = Drain(**source);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].offset, 4);
  EXPECT_EQ(got[1].value, "{\"a\":5}");

  WEIR_ASSERT_OK((*source)->Close());
  ASSERT_EQ(listener.revoked.size(), 1u);
}

TEST_F(FileSourceTest, StartsWhereTheListenerSaysAndPauses) {
  std::string contents;
  for (int i = 0; i < 10; ++i) absl::StrAppend(&contents, "line", i, "\n");
  const std::string path = Write("ten.jsonl", contents);
  RecordingListener listener;  // outlives the source, which calls it closing
  auto source = FileSource::Create({.path = path, .topic = "backfill"});
  ASSERT_TRUE(source.ok()) << source.status();
  const TopicPartition tp{"backfill", 0};
  listener.start = {{tp, 7}};
  (*source)->SetPartitionListener(&listener);

  absl::StatusOr<absl::Span<const RawRecord>> first =
      (*source)->Poll(1, absl::ZeroDuration());
  ASSERT_TRUE(first.ok());
  EXPECT_THAT(Copy(*first),
              ElementsAre(Got{"backfill", 0, 7, std::nullopt, "", "line7"}));
  WEIR_ASSERT_OK((*source)->Pause({{tp}}));
  absl::StatusOr<absl::Span<const RawRecord>> paused =
      (*source)->Poll(10, absl::ZeroDuration());
  ASSERT_TRUE(paused.ok());
  EXPECT_THAT(*paused, IsEmpty());
  EXPECT_FALSE((*source)->AtEnd());
  WEIR_ASSERT_OK((*source)->Resume({{tp}}));
  std::vector<Got> rest = Drain(**source);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].offset, 8);
  EXPECT_EQ(rest[1].value, "line9");
  EXPECT_TRUE((*source)->AtEnd());

  WEIR_ASSERT_OK((*source)->CommitOffsets({{tp, 10}}));
  EXPECT_EQ((*source)->committed().at(tp), 10);
  EXPECT_TRUE(
      absl::IsInvalidArgument((*source)->CommitOffsets({{{"x", 0}, 1}})));
  EXPECT_TRUE(absl::IsInvalidArgument((*source)->Seek({"x", 0}, 1)));
}

TEST_F(FileSourceTest, EmptyFileEndsAtOnce) {
  auto source = FileSource::Create({.path = Write("empty.jsonl", "")});
  ASSERT_TRUE(source.ok());
  EXPECT_THAT(Drain(**source), IsEmpty());
  EXPECT_TRUE((*source)->AtEnd());
}

TEST_F(FileSourceTest, ErrorsAreClear) {
  EXPECT_TRUE(absl::IsNotFound(
      FileSource::Create({.path = dir_->path() + "/missing"}).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      FileSource::Create({.path = dir_->path()}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(FileSource::Create({}).status()));

  auto source =
      FileSource::Create({.path = Write("long.jsonl", "short\n0123456789\n"),
                          .max_line_bytes = 5});
  ASSERT_TRUE(source.ok());
  absl::Status s = (*source)->Poll(10, absl::ZeroDuration()).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("line 1"));
}

}  // namespace
}  // namespace weir
