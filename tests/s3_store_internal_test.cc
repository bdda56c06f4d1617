// Unit tests of the S3 store's request-building and response-parsing pieces
// (no server). The store against a server is tested in
// tests/integration/s3_store_test.cc.

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weir/s3/s3_store.h"

namespace weir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Sha256HexTest, KnownVectors) {
  EXPECT_EQ(internal::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(internal::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(internal::Sha256Hex(
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(UriEncodeTest, EncodesAllButUnreserved) {
  EXPECT_EQ(internal::UriEncode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(internal::UriEncode("a b+c=d&e/f%", false),
            "a%20b%2Bc%3Dd%26e%2Ff%25");
  EXPECT_EQ(internal::UriEncode("dir/a b", true), "dir/a%20b");
  EXPECT_EQ(internal::UriEncode("\xc3\xa9", true), "%C3%A9");
}

TEST(ParseListObjectsV2Test, ParsesKeysSizesAndToken) {
  const char* xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>p/a&amp;b &lt;c&gt; &#x27;q&#x27; &#233;</Key>
    <LastModified>2026-01-01T00:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>12</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>p/z</Key><Size>0</Size></Contents>
  <NextContinuationToken>dG9r+/=</NextContinuationToken>
</ListBucketResult>)";
  auto page = internal::ParseListObjectsV2(xml);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->objects,
              ElementsAre(ObjectInfo{"p/a&b <c> 'q' \xc3\xa9", 12},
                          ObjectInfo{"p/z", 0}));
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "dG9r+/=");
}

TEST(ParseListObjectsV2Test, LastPageAndEmptyListing) {
  auto page = internal::ParseListObjectsV2(
      "<ListBucketResult><KeyCount>0</KeyCount>"
      "<IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->truncated);
}

TEST(ParseListObjectsV2Test, RejectsMalformedResponses) {
  EXPECT_FALSE(internal::ParseListObjectsV2("<Error/>").ok());
  EXPECT_FALSE(internal::ParseListObjectsV2(
                   "<ListBucketResult><Contents><Key>k</Key></Contents>"
                   "</ListBucketResult>")
                   .ok());
  EXPECT_FALSE(internal::ParseListObjectsV2(
                   "<ListBucketResult><IsTruncated>true</IsTruncated>"
                   "</ListBucketResult>")
                   .ok());
}

TEST(S3StoreCreateTest, RequiresCredentialsAndAValidBucket) {
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  S3StoreOptions options;
  options.endpoint = "http://127.0.0.1:1";
  absl::Status st = S3Store::Create("bucket", "", options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("AWS_ACCESS_KEY_ID"));

  setenv("AWS_ACCESS_KEY_ID", "from-env", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
  auto store = S3Store::Create("bucket", "/a/b/", options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->uri(), "s3://bucket/a/b");
  EXPECT_TRUE(absl::IsInvalidArgument(
      S3Store::Create("Bad_Bucket", "", options).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      S3Store::Create("bucket", "a//b", options).status()));
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
}

TEST(S3StoreCreateTest, UnreachableEndpointIsUnavailableAfterRetries) {
  S3StoreOptions options;
  options.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  options.access_key_id = "k";
  options.secret_access_key = "never-printed-secret";
  options.max_attempts = 3;
  std::vector<absl::Duration> sleeps;
  options.sleep = [&](absl::Duration d) { sleeps.push_back(d); };
  auto store = S3Store::Create("bucket", "p", options);
  ASSERT_TRUE(store.ok());
  absl::Status st = (*store)->Put("k", "v");
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("s3://bucket/p"));
  EXPECT_THAT(st.message(), HasSubstr("3 attempts"));
  EXPECT_THAT(std::string(st.message()),
              ::testing::Not(HasSubstr("never-printed-secret")));
  ASSERT_EQ(sleeps.size(), 2u);
  // Exponential backoff with jitter in [b/2, b].
  EXPECT_GE(sleeps[0], absl::Milliseconds(50));
  EXPECT_LE(sleeps[0], absl::Milliseconds(100));
  EXPECT_GE(sleeps[1], absl::Milliseconds(100));
  EXPECT_LE(sleeps[1], absl::Milliseconds(200));
}

}  // namespace
}  // namespace weir
