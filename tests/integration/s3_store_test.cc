// S3Store against s3rver (with SigV4 checking), and through a fault-injecting
// proxy for 5xx and time-outs.

#include "weir/s3/s3_store.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/testing/fault_env.h"
#include "weir/testing/http_fault_proxy.h"
#include "weir/testing/missing_part.h"
#include "weir/testing/s3rver.h"
#include "weir/testing/subprocess.h"

namespace weir {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBucket[] = "weir-test";

class S3StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::S3rverOptions options;
    options.node_modules_dir = WEIR_SOURCE_DIR "/node_modules";
    auto server = testing::S3rver::Start(options);
    if (!server.ok()) {
      status_ = new absl::Status(server.status());
      return;
    }
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete status_;
    server_ = nullptr;
    status_ = nullptr;
  }

  void SetUp() override {
    if (status_ != nullptr) WEIR_REQUIRE_PART(*status_);
    ASSERT_NE(server_, nullptr);
    auto dir = testing::TempDir::Create("weir-s3test");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    prefix_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // Options for the test server, recording backoff sleeps instead of
  // sleeping.
  S3StoreOptions Options(const std::string& endpoint = "") {
    S3StoreOptions options;
    options.endpoint = endpoint.empty() ? server_->endpoint() : endpoint;
    options.access_key_id = server_->access_key_id();
    options.secret_access_key = server_->secret_access_key();
    options.sleep = [this](absl::Duration d) { sleeps_.push_back(d); };
    return options;
  }

  std::unique_ptr<S3Store> Open(const S3StoreOptions& options) {
    auto store = S3Store::Create(kBucket, prefix_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::unique_ptr<testing::HttpFaultProxy> StartProxy() {
    auto proxy = testing::HttpFaultProxy::Start(server_->port());
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    return proxy.ok() ? std::move(*proxy) : nullptr;
  }

  std::string WriteLocal(const std::string& name, const std::string& bytes) {
    std::string path = dir_->path() + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    return path;
  }
  std::string ReadLocal(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  static int Count(const std::vector<std::string>& log,
                   const std::string& needle) {
    return static_cast<int>(std::count_if(
        log.begin(), log.end(),
        [&](const std::string& l) { return absl::StrContains(l, needle); }));
  }

  static testing::S3rver* server_;
  static absl::Status* status_;  // why the server did not start
  std::optional<testing::TempDir> dir_;
  std::string prefix_;
  std::vector<absl::Duration> sleeps_;
};

testing::S3rver* S3StoreTest::server_ = nullptr;
absl::Status* S3StoreTest::status_ = nullptr;

TEST_F(S3StoreTest, PutGetHeadDelete) {
  auto store = Open(Options());
  ASSERT_NE(store, nullptr);
  const std::string bytes("binary\0data\xff", 12);
  ASSERT_TRUE(store->Put("chk/1/MANIFEST", bytes).ok());
  auto got = store->Get("chk/1/MANIFEST");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
  EXPECT_EQ(store->Head("chk/1/MANIFEST").value(), bytes.size());
  EXPECT_TRUE(store->Exists("chk/1/MANIFEST").value());

  ASSERT_TRUE(store->Put("chk/1/MANIFEST", "v2").ok());
  EXPECT_EQ(store->Get("chk/1/MANIFEST").value(), "v2");

  ASSERT_TRUE(store->Delete("chk/1/MANIFEST").ok());
  EXPECT_TRUE(absl::IsNotFound(store->Get("chk/1/MANIFEST").status()));
  EXPECT_TRUE(absl::IsNotFound(store->Head("chk/1/MANIFEST").status()));
  EXPECT_FALSE(store->Exists("chk/1/MANIFEST").value());
  EXPECT_TRUE(store->Delete("chk/1/MANIFEST").ok());  // already gone: OK
  EXPECT_TRUE(store->Put("empty", "").ok());
  EXPECT_EQ(store->Get("empty").value(), "");
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(S3StoreTest, KeysWithCharactersThatNeedEncoding) {
  auto store = Open(Options());
  ASSERT_NE(store, nullptr);
  const std::vector<std::string> keys = {
      "dir/a b+c=d&e", "dir/~x_y-z.1", "dir/%25 50%", "dir/\xc3\xa9t\xc3\xa9"};
  for (const std::string& key : keys) {
    ASSERT_TRUE(store->Put(key, key).ok()) << key;
    EXPECT_EQ(store->Get(key).value(), key);
  }
  auto listed = store->List("dir/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::vector<std::string> got;
  for (const ObjectInfo& o : *listed) got.push_back(o.key);
  std::vector<std::string> want = keys;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST_F(S3StoreTest, ListPagesThroughContinuationTokens) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  S3StoreOptions options = Options(proxy->endpoint());
  options.list_page_size = 7;
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  std::vector<ObjectInfo> want;
  for (int i = 0; i < 25; ++i) {
    std::string key = absl::StrCat("p/", 1000 + i * 37 % 101);
    std::string value(i, 'v');
    ASSERT_TRUE(store->Put(key, value).ok());
    want.push_back({key, value.size()});
  }
  ASSERT_TRUE(store->Put("other/x", "x").ok());
  std::sort(
      want.begin(), want.end(),
      [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });

  auto listed = store->List("p/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, want);
  EXPECT_EQ(Count(proxy->RequestLog(), "list-type=2"), 4);  // ceil(25 / 7)

  auto all = store->List("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 26u);
  EXPECT_THAT(store->List("p/1000").value(),
              ElementsAre(ObjectInfo{"p/1000", 0}));
  EXPECT_TRUE(store->List("nothing/").value().empty());
}

TEST_F(S3StoreTest, ListMoreThanOneThousandKeys) {
  auto store = Open(Options());
  ASSERT_NE(store, nullptr);
  constexpr int kKeys = 1010;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = t; i < kKeys; i += 4) {
        EXPECT_TRUE(store->Put(absl::StrCat("many/", 10000 + i), "x").ok());
      }
    });
  }
  for (std::thread& w : writers) w.join();
  auto listed = store->List("many/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(listed->front().key, "many/10000");
  EXPECT_EQ(listed->back().key, absl::StrCat("many/", 10000 + kKeys - 1));
}

TEST_F(S3StoreTest, PutFileUsesMultipartAboveTheThreshold) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  S3StoreOptions options = Options(proxy->endpoint());
  options.multipart_threshold = 5 << 20;
  options.part_size = 5 << 20;
  auto store = Open(options);
  ASSERT_NE(store, nullptr);

  std::mt19937_64 rng(42);
  std::string bytes((12 << 20) + 123, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  const std::string src = WriteLocal("big.sst", bytes);
  ASSERT_TRUE(store->PutFile("sst/000042.sst", src).ok());

  std::vector<std::string> log = proxy->RequestLog();
  EXPECT_EQ(Count(log, "?uploads"), 1);
  EXPECT_EQ(Count(log, "partNumber="), 3);  // 5 MiB + 5 MiB + 2 MiB
  EXPECT_EQ(
      Count(log, "POST /weir-test/" + prefix_ + "/sst/000042.sst?uploadId="),
      1);

  EXPECT_EQ(store->Head("sst/000042.sst").value(), bytes.size());
  const std::string dst = dir_->path() + "/restored.sst";
  ASSERT_TRUE(store->GetFile("sst/000042.sst", dst).ok());
  EXPECT_TRUE(ReadLocal(dst) == bytes);
  auto got = store->Get("sst/000042.sst");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == bytes);
}

TEST_F(S3StoreTest, PutFileBelowTheThresholdIsOnePut) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  auto store = Open(Options(proxy->endpoint()));
  ASSERT_NE(store, nullptr);
  const std::string bytes(100000, 'q');
  ASSERT_TRUE(store->PutFile("small", WriteLocal("small", bytes)).ok());
  EXPECT_THAT(proxy->RequestLog(),
              ElementsAre("PUT /weir-test/" + prefix_ + "/small"));
  EXPECT_EQ(store->Get("small").value(), bytes);
  EXPECT_TRUE(
      absl::IsNotFound(store->PutFile("nope", dir_->path() + "/missing")));
  EXPECT_TRUE(
      absl::IsNotFound(store->GetFile("missing", dir_->path() + "/out")));
}

// GetFile's download goes through the store's Env: a full local disk is
// kResourceExhausted naming the file, leaves nothing behind, and the same
// call succeeds once space returns.
TEST_F(S3StoreTest, GetFileOnAFullDiskFailsClearlyAndLeavesNothing) {
  testing::FaultInjectionEnv env;
  S3StoreOptions options = Options();
  options.env = &env;
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  const std::string bytes(300000, 'z');
  ASSERT_TRUE(store->Put("big", bytes).ok());
  env.Fail({.ops = testing::kWriteOps,
            .path_contains = dir_->path(),
            .error = ENOSPC,
            .after_bytes = 1000});
  const std::string out = dir_->path() + "/out";
  const absl::Status full = store->GetFile("big", out);
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_THAT(std::string(full.message()), HasSubstr(out));
  EXPECT_THAT(std::string(full.message()), HasSubstr("No space left"));
  EXPECT_THAT(*Env::Default()->ListDirectory(dir_->path()),
              Not(Contains(HasSubstr("out"))));
  env.Clear();
  ASSERT_TRUE(store->GetFile("big", out).ok());
  EXPECT_EQ(*ReadFileToString(Env::Default(), out), bytes);
}

TEST_F(S3StoreTest, WrongSecretIsPermissionDeniedWithoutTheSecret) {
  S3StoreOptions options = Options();
  const std::string secret = "definitely-wrong-secret-1234";
  options.secret_access_key = secret;
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  for (absl::Status st : {store->Put("k", "v"), store->Get("k").status(),
                          store->List("").status()}) {
    EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
    EXPECT_THAT(st.message(), HasSubstr("bucket 'weir-test'"));
    EXPECT_THAT(st.message(), HasSubstr("credentials were refused"));
    EXPECT_THAT(st.message(), HasSubstr("SignatureDoesNotMatch"));
    EXPECT_THAT(std::string(st.message()), Not(HasSubstr(secret)));
  }
  EXPECT_TRUE(sleeps_.empty());  // refused credentials are not retried
}

TEST_F(S3StoreTest, UnknownAccessKeyIsPermissionDenied) {
  S3StoreOptions options = Options();
  options.access_key_id = "NOSUCHKEY";
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  absl::Status st = store->Put("k", "v");
  EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("InvalidAccessKeyId"));
  EXPECT_THAT(std::string(st.message()),
              Not(HasSubstr(server_->secret_access_key())));
}

TEST_F(S3StoreTest, SessionTokenIsSigned) {
  S3StoreOptions options = Options();
  options.session_token = "a-session-token";
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Put("k", "v").ok());
  EXPECT_EQ(store->Get("k").value(), "v");
}

TEST_F(S3StoreTest, MissingBucketIsAFailedPrecondition) {
  auto store = S3Store::Create("no-such-bucket", "", Options());
  ASSERT_TRUE(store.ok());
  absl::Status st = (*store)->Put("k", "v");
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("no-such-bucket"));
}

TEST_F(S3StoreTest, ServiceUnavailableIsRetriedThenSucceeds) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  auto store = Open(Options(proxy->endpoint()));
  ASSERT_NE(store, nullptr);
  proxy->FailNext(2);
  ASSERT_TRUE(store->Put("k", "value").ok());
  EXPECT_EQ(proxy->injected_failures(), 2);
  EXPECT_EQ(sleeps_.size(), 2u);
  proxy->FailNext(3, 500);
  auto got = store->Get("k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "value");
  proxy->FailNext(1);
  EXPECT_THAT(store->List("").value(), ElementsAre(ObjectInfo{"k", 5}));
  EXPECT_EQ(proxy->injected_failures(), 6);
  EXPECT_EQ(sleeps_.size(), 6u);
}

TEST_F(S3StoreTest, MultipartPartFailuresAreRetried) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  S3StoreOptions options = Options(proxy->endpoint());
  options.multipart_threshold = 5 << 20;
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  std::string bytes((6 << 20) + 1, 'm');
  bytes[12345] = 'x';
  const std::string src = WriteLocal("six.bin", bytes);
  proxy->FailNext(1);  // the initiation
  ASSERT_TRUE(store->PutFile("six.bin", src).ok());
  EXPECT_EQ(store->Get("six.bin").value(), bytes);
  EXPECT_EQ(sleeps_.size(), 1u);
}

TEST_F(S3StoreTest, TimeoutIsRetried) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  // Long enough for the retried request to get through the proxy and
  // s3rver on a loaded, sanitized machine; far below the held response.
  S3StoreOptions options = Options(proxy->endpoint());
  options.request_timeout = absl::Seconds(5);
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  proxy->DelayNext(1, absl::Seconds(20));
  ASSERT_TRUE(store->Put("slow", "bytes").ok());
  EXPECT_EQ(proxy->injected_delays(), 1);
  EXPECT_EQ(sleeps_.size(), 1u);
  proxy->DelayNext(1, absl::Seconds(20));
  auto got = store->Get("slow");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "bytes");
  EXPECT_EQ(sleeps_.size(), 2u);
}

// The proxy forwards the request and cuts the connection after the
// response's headers: the write took effect, the client saw a broken
// connection and retries it (S3 puts are idempotent).
TEST_F(S3StoreTest, CutConnectionIsRetried) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  auto store = Open(Options(proxy->endpoint()));
  ASSERT_NE(store, nullptr);
  proxy->DropNext(2);
  ASSERT_TRUE(store->Put("cut", "bytes").ok());
  EXPECT_EQ(proxy->injected_drops(), 2);
  EXPECT_EQ(sleeps_.size(), 2u);
  proxy->DropNext(1);
  auto got = store->Get("cut");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "bytes");
  EXPECT_EQ(sleeps_.size(), 3u);
}

// ClearFaults drops pending faults and sends held responses at once.
TEST_F(S3StoreTest, ClearedFaultsLetRequestsThrough) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  S3StoreOptions options = Options(proxy->endpoint());
  options.max_attempts = 1;
  options.request_timeout = absl::Seconds(30);
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  proxy->FailNext(100);
  proxy->DropNext(100);
  proxy->ClearFaults();
  ASSERT_TRUE(store->Put("k", "v").ok());
  proxy->DelayNext(1, absl::Minutes(10));
  std::thread put([&] { EXPECT_TRUE(store->Put("held", "v").ok()); });
  while (proxy->injected_delays() == 0) {
    absl::SleepFor(absl::Milliseconds(5));  // polling the proxy
  }
  proxy->ClearFaults();
  put.join();  // would take the request time-out (and fail) if still held
  EXPECT_EQ(proxy->injected_failures(), 0);
  EXPECT_EQ(proxy->injected_drops(), 0);
}

TEST_F(S3StoreTest, TooManyFailuresGiveUnavailable) {
  auto proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  S3StoreOptions options = Options(proxy->endpoint());
  options.max_attempts = 3;
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  proxy->FailNext(3);
  absl::Status st = store->Put("k", "v");
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("503"));
  EXPECT_THAT(st.message(), HasSubstr("3 attempts"));
  EXPECT_EQ(proxy->RequestLog().size(), 3u);
  EXPECT_EQ(sleeps_.size(), 2u);
  // The store works again once the server recovers.
  EXPECT_TRUE(store->Put("k", "v").ok());

  proxy->DelayNext(3, absl::Seconds(20));
  S3StoreOptions fast = options;
  fast.request_timeout = absl::Milliseconds(300);
  auto impatient = Open(fast);
  ASSERT_NE(impatient, nullptr);
  st = impatient->Get("k").status();
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
}

TEST_F(S3StoreTest, OpenObjectStoreWithAnS3Uri) {
  ObjectStoreOptions options;
  options.s3 = Options();
  auto store = OpenObjectStore(
      absl::StrCat("s3://", kBucket, "/", prefix_, "/"), options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->uri(), absl::StrCat("s3://", kBucket, "/", prefix_));
  ASSERT_TRUE((*store)->Put("a/b", "via uri").ok());
  // The same object, seen through a store on the whole bucket.
  auto whole = S3Store::Create(kBucket, "", Options());
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ((*whole)->Get(prefix_ + "/a/b").value(), "via uri");
}

}  // namespace
}  // namespace weir
