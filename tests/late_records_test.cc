// Tests of weir/late_records.h: a late record becomes a dead letter that
// keeps its bytes, position, watermark and missed features, reads back, and
// survives the JSON-lines form the file and Kafka outputs use.

#include "weir/late_records.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/dlq.h"
#include "weir/time.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(LateRecordsTest, WrittenAsADeadLetterThatReadsBack) {
  auto queue = std::make_unique<MemoryDeadLetterQueue>();
  MemoryDeadLetterQueue* records = queue.get();
  ManualClock clock(absl::FromUnixSeconds(1767225600));
  auto output =
      DeadLetterLateRecordOutput::Create({.pipeline_name = "fraud_features",
                                          .pipeline_version = "3",
                                          .clock = &clock},
                                         std::move(queue));
  ASSERT_TRUE(output.ok()) << output.status();

  LateRecord late;
  late.key = "u1";
  late.event_time = 1767225000000;
  late.partition = 2;
  late.offset = 41;
  late.watermark = 1767225595000;
  late.features = {"txn_count_1m", "txn_count_5m_sliding"};
  // Bytes that are not text (0xff, then the literal's NUL) survive.
  const std::string value("{\"user_id\":\"u1\",\"x\":\"\\u0000\"}\xff", 31);
  RawRecord raw;
  raw.topic = "payments";
  raw.partition = 2;
  raw.offset = 41;
  raw.timestamp = 1767225599000;
  raw.key = "u1";
  raw.value = value;
  ASSERT_TRUE((*output)->Write(late, raw).ok());
  ASSERT_TRUE((*output)->Flush().ok());

  ASSERT_EQ(records->records().size(), 1u);
  const DeadLetterRecord r = records->records()[0];
  EXPECT_EQ(r.error_type, kLateRecordErrorType);
  EXPECT_EQ(r.category, DecodeErrorCategory::kProcessingError);
  EXPECT_EQ(r.key, "u1");
  EXPECT_EQ(r.value, value);
  EXPECT_EQ(r.topic, "payments");
  EXPECT_EQ(r.partition, 2);
  EXPECT_EQ(r.offset, 41);
  EXPECT_EQ(r.timestamp, 1767225599000);
  EXPECT_EQ(r.pipeline_name, "fraud_features");
  EXPECT_EQ(r.pipeline_version, "3");
  EXPECT_EQ(r.failed_at, clock.Now());
  EXPECT_EQ(r.error_field, "txn_count_1m,txn_count_5m_sliding");

  // Through the JSON line the file and Kafka outputs store.
  absl::StatusOr<DeadLetterRecord> line = ParseDeadLetterJson(r.ToJson());
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, r);
  absl::StatusOr<LateRecordInfo> info = ParseLateRecord(*line);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->event_time, late.event_time);
  EXPECT_EQ(info->watermark, late.watermark);
  EXPECT_THAT(info->features,
              ElementsAre("txn_count_1m", "txn_count_5m_sliding"));
}

TEST(LateRecordsTest, ParseRefusesOtherDeadLetters) {
  DeadLetterRecord r;
  r.error_type = "wrong_type";
  EXPECT_THAT(ParseLateRecord(r).status().message(), HasSubstr("wrong_type"));
  r.error_type = kLateRecordErrorType;
  r.error_message = "late: watermark_ms=5";
  EXPECT_EQ(ParseLateRecord(r).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LateRecordsTest, CreateNamesTheBadField) {
  EXPECT_THAT(DeadLetterLateRecordOutput::Create(
                  {}, std::make_unique<MemoryDeadLetterQueue>())
                  .status()
                  .message(),
              HasSubstr("pipeline_name"));
  EXPECT_THAT(
      DeadLetterLateRecordOutput::Create({.pipeline_name = "p"}, nullptr)
          .status()
          .message(),
      HasSubstr("queue"));
}

}  // namespace
}  // namespace weir
