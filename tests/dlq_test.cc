#include "weir/dlq.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/decode.h"
#include "weir/json/json_decoder.h"
#include "weir/testing/subprocess.h"
#include "weir/time.h"

namespace weir {
namespace {

using ::testing::HasSubstr;

// Every byte value, in a scrambled order, plus bytes that are not UTF-8.
std::string AllBytes() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  std::mt19937 rng(42);
  std::shuffle(bytes.begin(), bytes.end(), rng);
  bytes.append("\xff\xfe\x00\xc3(\x80\"\\\n", 9);
  return bytes;
}

DeadLetterRecord SampleRecord() {
  DeadLetterRecord r;
  r.key = std::string("k\0\xff", 3);
  r.value = AllBytes();
  r.category = DecodeErrorCategory::kSchemaMismatch;
  r.error_type = "wrong_type";
  r.error_field = "amount";
  r.error_message =
      "schema payments v3: field \"amount\": expected decimal(2), got string "
      "\"abc\"\n\ttab \\ slash \x01 control, caf\xc3\xa9, \xf0\x9f\x92\xb8";
  r.topic = "payments";
  r.partition = 11;
  r.offset = 9007199254740993;  // not representable as a double
  r.timestamp = 1767225600123;
  r.pipeline_name = "fraud_features";
  r.pipeline_version = "3.1.2+build.7";
  r.failed_at = absl::FromUnixNanos(1767225600123456789);
  return r;
}

TEST(DeadLetterJsonTest, RoundTripsExactly) {
  const DeadLetterRecord r = SampleRecord();
  const std::string json = r.ToJson();
  EXPECT_EQ(json.find('\n'), std::string::npos) << "one line";
  absl::StatusOr<DeadLetterRecord> back = ParseDeadLetterJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(back->value, AllBytes());
  EXPECT_EQ(back->failed_at, r.failed_at);

  // With the newline a JSON-lines file has.
  back = ParseDeadLetterJson(json + "\n");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
}

TEST(DeadLetterJsonTest, RoundTripsEdgeValues) {
  DeadLetterRecord r;
  r.timestamp.reset();
  r.partition = -1;
  r.offset = INT64_MIN;
  r.category = DecodeErrorCategory::kDeserialization;
  absl::StatusOr<DeadLetterRecord> back = ParseDeadLetterJson(r.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(back->timestamp.has_value());
}

TEST(DeadLetterJsonTest, RandomRecordsRoundTrip) {
  std::mt19937_64 rng(7);
  auto bytes = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(rng()));
    return s;
  };
  for (int i = 0; i < 500; ++i) {
    DeadLetterRecord r;
    r.key = bytes(rng() % 20);
    r.value = bytes(rng() % 300);
    r.category = static_cast<DecodeErrorCategory>(rng() % 3);
    r.error_message = "message " + std::to_string(rng());
    r.partition = static_cast<int32_t>(rng());
    r.offset = static_cast<int64_t>(rng());
    if (rng() % 2) r.timestamp = static_cast<int64_t>(rng());
    r.failed_at = absl::FromUnixNanos(static_cast<int64_t>(rng() >> 2));
    absl::StatusOr<DeadLetterRecord> back = ParseDeadLetterJson(r.ToJson());
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, r) << r.ToJson();
  }
}

TEST(DeadLetterJsonTest, FieldsAreNamedAsDocumented) {
  const std::string json = SampleRecord().ToJson();
  for (const char* member :
       {"\"dlq_format\":1", "\"error_category\":\"schema_mismatch\"",
        "\"error_type\":\"wrong_type\"", "\"error_field\":\"amount\"",
        "\"topic\":\"payments\"", "\"partition\":11",
        "\"offset\":9007199254740993", "\"timestamp_ms\":1767225600123",
        "\"pipeline\":\"fraud_features\"",
        "\"pipeline_version\":\"3.1.2+build.7\"",
        "\"failed_at\":\"2026-01-01T00:00:00.123456789+00:00\"",
        "\"key_base64\":\"awD/\""}) {
    EXPECT_THAT(json, HasSubstr(member));
  }
}

TEST(DeadLetterJsonTest, InvalidUtf8InTextBecomesReplacementCharacter) {
  DeadLetterRecord r;
  r.error_message = "bad \xff byte";
  absl::StatusOr<DeadLetterRecord> back = ParseDeadLetterJson(r.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->error_message, "bad \xef\xbf\xbd byte");
}

TEST(DeadLetterJsonTest, IgnoresUnknownMembersAndAcceptsEscapes) {
  std::string json = SampleRecord().ToJson();
  json.insert(1,
              R"("future":{"a":[1,2.5e-3,true,null,"\u00e9\ud83d\udcb8"]},)");
  absl::StatusOr<DeadLetterRecord> back = ParseDeadLetterJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, SampleRecord());
}

TEST(DeadLetterJsonTest, RejectsMalformedInput) {
  const std::string good = SampleRecord().ToJson();
  for (const std::string& bad : std::vector<std::string>{
           "", "{", "[]", "nope", good.substr(0, good.size() - 1), good + "x",
           good + good,
           // A required member missing.
           R"({"dlq_format":1,"error_category":"schema_mismatch"})",
           // An unknown category.
           [&] {
             std::string s = good;
             s.replace(s.find("schema_mismatch"), 15, "other_category!");
             return s;
           }(),
           // Bad base64.
           [&] {
             std::string s = good;
             s.replace(s.find("awD/"), 4, "a*D/");
             return s;
           }(),
           // A lone surrogate.
           [&] {
             std::string s = good;
             s.replace(s.find("amount"), 6, "\\ud800");
             return s;
           }()}) {
    absl::StatusOr<DeadLetterRecord> r = ParseDeadLetterJson(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  std::string newer = good;
  newer.replace(newer.find("\"dlq_format\":1"), 14, "\"dlq_format\":2");
  EXPECT_EQ(ParseDeadLetterJson(newer).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Base64Test, RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(Base64Encode("u123"), "dTEyMw==");
  EXPECT_EQ(*Base64Decode("dTEyMw=="), "u123");
  EXPECT_EQ(*Base64Decode(Base64Encode(AllBytes())), AllBytes());
  EXPECT_EQ(*Base64Decode(""), "");
  EXPECT_FALSE(Base64Decode("***").ok());
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FileDeadLetterQueueTest, BytesRoundTripExactlyThroughTheFile) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("weir_dlq");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/dlq.jsonl";
  std::vector<DeadLetterRecord> written;
  {
    auto queue = FileDeadLetterQueue::Create({.path = path});
    ASSERT_TRUE(queue.ok()) << queue.status();
    for (int i = 0; i < 50; ++i) {
      DeadLetterRecord r = SampleRecord();
      r.offset = i;
      r.value = AllBytes().substr(static_cast<size_t>(i));
      ASSERT_TRUE((*queue)->Write(r).ok());
      written.push_back(r);
    }
    ASSERT_TRUE((*queue)->Flush().ok());
  }
  absl::StatusOr<std::vector<DeadLetterRecord>> read = ReadDeadLetterFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, written);
}

TEST(FileDeadLetterQueueTest, AppendsAcrossReopens) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("weir_dlq");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/dlq.jsonl";
  for (int round = 0; round < 3; ++round) {
    auto queue = FileDeadLetterQueue::Create({.path = path, .buffer_bytes = 0});
    ASSERT_TRUE(queue.ok());
    DeadLetterRecord r = SampleRecord();
    r.offset = round;
    ASSERT_TRUE((*queue)->Write(r).ok());
    ASSERT_TRUE((*queue)->Flush().ok());
  }
  absl::StatusOr<std::vector<DeadLetterRecord>> read = ReadDeadLetterFile(path);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[2].offset, 2);
}

TEST(FileDeadLetterQueueTest, BuffersUntilFlush) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("weir_dlq");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/dlq.jsonl";
  auto queue = FileDeadLetterQueue::Create({.path = path});  // 64 KiB buffer
  ASSERT_TRUE(queue.ok());
  ASSERT_TRUE((*queue)->Write(SampleRecord()).ok());
  EXPECT_EQ(ReadAll(path), "");
  ASSERT_TRUE((*queue)->Flush().ok());
  EXPECT_EQ(ReadAll(path), SampleRecord().ToJson() + "\n");
}

TEST(FileDeadLetterQueueTest, CutsATornLastLineOnOpen) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("weir_dlq");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/dlq.jsonl";
  const std::string line = SampleRecord().ToJson() + "\n";
  {
    std::ofstream out(path, std::ios::binary);
    out << line << line.substr(0, 40);  // a crash cut the second line short
  }
  // The reader skips the torn tail.
  absl::StatusOr<std::vector<DeadLetterRecord>> read = ReadDeadLetterFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->size(), 1u);
  // Reopening cuts it, so the next record starts on its own line.
  auto queue = FileDeadLetterQueue::Create({.path = path});
  ASSERT_TRUE(queue.ok());
  ASSERT_TRUE((*queue)->Write(SampleRecord()).ok());
  ASSERT_TRUE((*queue)->Flush().ok());
  EXPECT_EQ(ReadAll(path), line + line);

  // A file holding only a torn line is emptied.
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string(10000, 'x');
  }
  queue = FileDeadLetterQueue::Create({.path = path});
  ASSERT_TRUE(queue.ok());
  EXPECT_EQ(ReadAll(path), "");
}

TEST(FileDeadLetterQueueTest, CorruptLineIsDataLossWithItsLineNumber) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("weir_dlq");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/dlq.jsonl";
  {
    std::ofstream out(path, std::ios::binary);
    out << SampleRecord().ToJson() << "\n{garbage}\n";
  }
  absl::StatusOr<std::vector<DeadLetterRecord>> read = ReadDeadLetterFile(path);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr(":2:"));
  EXPECT_EQ(ReadDeadLetterFile(dir->path() + "/missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FileDeadLetterQueueTest, CreateFailsCleanly) {
  EXPECT_EQ(FileDeadLetterQueue::Create({}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      FileDeadLetterQueue::Create({.path = "/nonexistent-dir/x/dlq.jsonl"})
          .status()
          .code(),
      absl::StatusCode::kNotFound);
}

TEST(FileDeadLetterQueueTest, WriteFailureIsReportedAndNotSilent) {
  // /dev/full fails every write with ENOSPC.
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  auto queue =
      FileDeadLetterQueue::Create({.path = "/dev/full", .buffer_bytes = 0});
  ASSERT_TRUE(queue.ok()) << queue.status();
  // The first record is taken (buffered); the failure surfaces on Flush and
  // on the next Write, which does not take its record.
  EXPECT_TRUE((*queue)->Write(SampleRecord()).ok());
  EXPECT_EQ((*queue)->Write(SampleRecord()).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*queue)->Flush().code(), absl::StatusCode::kResourceExhausted);
}

class DeadLetterRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DeadLetterRouterOptions options;
    options.pipeline_name = "fraud_features";
    options.pipeline_version = "3.1.2";
    options.clock = &clock_;
    options.max_message_bytes = 64;
    auto router = DeadLetterRouter::Create(options, &queue_);
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = *std::move(router);
  }

  RawRecord Raw(std::string_view value, int64_t offset) {
    RawRecord r;
    r.topic = "payments";
    r.partition = 4;
    r.offset = offset;
    r.timestamp = 1767225600999;
    r.key = "u123";
    r.value = value;
    return r;
  }

  ManualClock clock_{absl::FromUnixMillis(1767225600000)};
  MemoryDeadLetterQueue queue_;
  std::unique_ptr<DeadLetterRouter> router_;
};

TEST_F(DeadLetterRouterTest, BuildsTheRecordFromTheFailure) {
  clock_.Advance(absl::Milliseconds(1500));
  const std::string value = AllBytes();
  ASSERT_TRUE(
      router_
          ->Route(Raw(value, 42),
                  MakeDecodeError(DecodeErrorCategory::kSchemaMismatch,
                                  "missing_field", "no user_id", "user_id"))
          .ok());
  std::vector<DeadLetterRecord> records = queue_.records();
  ASSERT_EQ(records.size(), 1u);
  const DeadLetterRecord& r = records[0];
  EXPECT_EQ(r.key, "u123");
  EXPECT_EQ(r.value, value);
  EXPECT_EQ(r.category, DecodeErrorCategory::kSchemaMismatch);
  EXPECT_EQ(r.error_type, "missing_field");
  EXPECT_EQ(r.error_field, "user_id");
  EXPECT_EQ(r.error_message, "no user_id");
  EXPECT_EQ(r.topic, "payments");
  EXPECT_EQ(r.partition, 4);
  EXPECT_EQ(r.offset, 42);
  EXPECT_EQ(r.timestamp, 1767225600999);
  EXPECT_EQ(r.pipeline_name, "fraud_features");
  EXPECT_EQ(r.pipeline_version, "3.1.2");
  EXPECT_EQ(r.failed_at, absl::FromUnixMillis(1767225601500));
}

TEST_F(DeadLetterRouterTest, CountsPerCategory) {
  ASSERT_TRUE(router_
                  ->Route(Raw("a", 1),
                          MakeDecodeError(DecodeErrorCategory::kDeserialization,
                                          "invalid_json", "x"))
                  .ok());
  ASSERT_TRUE(router_
                  ->Route(Raw("b", 2),
                          MakeDecodeError(DecodeErrorCategory::kDeserialization,
                                          "invalid_json", "x"))
                  .ok());
  ASSERT_TRUE(router_->Route(Raw("c", 3), absl::InternalError("plain")).ok());
  DeadLetterCounts counts = router_->counts();
  EXPECT_EQ(counts.deserialization, 2);
  EXPECT_EQ(counts.schema_mismatch, 0);
  EXPECT_EQ(counts.processing_error, 1);
  EXPECT_EQ(counts.total(), 3);
  EXPECT_EQ(router_->count(DecodeErrorCategory::kDeserialization), 2);
  EXPECT_EQ(queue_.records()[2].error_type, "internal");
}

TEST_F(DeadLetterRouterTest, CutsLongMessages) {
  ASSERT_TRUE(
      router_->Route(Raw("a", 1), absl::InternalError(std::string(500, 'm')))
          .ok());
  const std::string message = queue_.records()[0].error_message;
  EXPECT_EQ(message.size(), 64u);
  EXPECT_EQ(message.substr(61), "...");
}

TEST_F(DeadLetterRouterTest, WriteFailureIsReturnedAndCounted) {
  queue_.FailWrites(absl::UnavailableError("broker down"));
  absl::Status s = router_->Route(Raw("a", 1), absl::InternalError("x"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(router_->counts().write_failures, 1);
  EXPECT_EQ(router_->counts().total(), 0);
  // An OK status is not a failure to route.
  EXPECT_EQ(router_->Route(Raw("a", 1), absl::OkStatus()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DeadLetterRouterOptionsTest, ValidateNamesTheBadField) {
  MemoryDeadLetterQueue queue;
  DeadLetterRouterOptions options;
  EXPECT_THAT(options.Validate().message(), HasSubstr("pipeline_name"));
  options.pipeline_name = "p";
  options.clock = nullptr;
  EXPECT_THAT(options.Validate().message(), HasSubstr("clock"));
  options.clock = Clock::Real();
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_FALSE(DeadLetterRouter::Create(options, nullptr).ok());
}

// End to end: a W-PAY decoder, the router and the file queue.
TEST(DeadLetterEndToEndTest, DecodeFailuresLandInTheFileWithTheirBytes) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("weir_dlq");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/payments.dlq.jsonl";
  JsonSchema schema;
  schema.name = "payments";
  schema.key_field = "user_id";
  schema.event_time_field = "event_timestamp";
  schema.fields = {JsonField::Required("merchant_id", JsonType::kString),
                   JsonField::OptionalDecimal("amount", 2)};
  auto decoder = JsonDecoder::Create(schema);
  ASSERT_TRUE(decoder.ok());
  auto queue = FileDeadLetterQueue::Create({.path = path});
  ASSERT_TRUE(queue.ok());
  ManualClock clock(absl::FromUnixMillis(1767225600000));
  DeadLetterRouterOptions options;
  options.pipeline_name = "fraud_features";
  options.clock = &clock;
  auto router = DeadLetterRouter::Create(options, queue->get());
  ASSERT_TRUE(router.ok());

  const std::string poison =
      std::string("{\"user_id\":\"u1\",\"amount\":\0\xff", 25);
  const std::vector<std::string> values = {
      R"({"user_id":"u1","merchant_id":"m","amount":1.5,"event_timestamp":1})",
      poison,
      R"({"user_id":"u1","merchant_id":"m","amount":1.555,"event_timestamp":1})"};
  int decoded = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    RawRecord raw;
    raw.topic = "payments";
    raw.offset = static_cast<int64_t>(i);
    raw.value = values[i];
    absl::StatusOr<std::optional<Event>> e =
        DecodeOrRoute(**decoder, raw, **router);
    ASSERT_TRUE(e.ok()) << e.status();
    decoded += e->has_value() ? 1 : 0;
  }
  ASSERT_TRUE((*router)->Flush().ok());
  EXPECT_EQ(decoded, 1);

  absl::StatusOr<std::vector<DeadLetterRecord>> read = ReadDeadLetterFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].value, poison);
  EXPECT_EQ((*read)[0].category, DecodeErrorCategory::kDeserialization);
  EXPECT_EQ((*read)[0].offset, 1);
  EXPECT_EQ((*read)[1].category, DecodeErrorCategory::kSchemaMismatch);
  EXPECT_EQ((*read)[1].error_type, "lossy_number");
  EXPECT_EQ((*read)[1].error_field, "amount");
  EXPECT_EQ((*read)[1].value, values[2]);
}

}  // namespace
}  // namespace weir
