// ParseDataUri and FileUri: every scheme, every rejection with its field named.
#include "proxy/plan/data_uri.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace eofaas::proxy {
namespace {

using ::testing::HasSubstr;

void ExpectInvalid(const std::string& uri, const std::string& message) {
  absl::StatusOr<DataUri> parsed = ParseDataUri(uri, "inputs[2]");
  ASSERT_FALSE(parsed.ok()) << uri;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << uri;
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("inputs[2]: ")) << uri;
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(message)) << uri;
}

TEST(DataUriTest, FileUriIsDecoded) {
  absl::StatusOr<DataUri> uri = ParseDataUri("file:///data/my%20file%2Ev1.txt", "cursor.uri");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, UriScheme::kFile);
  EXPECT_EQ(uri->path, "/data/my file.v1.txt");
  EXPECT_EQ(uri->text, "file:///data/my%20file%2Ev1.txt");
  EXPECT_FALSE(uri->glob);
}

TEST(DataUriTest, FileUriAcceptsLocalhostAndUppercaseScheme) {
  absl::StatusOr<DataUri> uri = ParseDataUri("FILE://localhost/data/x", "f");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, UriScheme::kFile);
  EXPECT_EQ(uri->path, "/data/x");
  EXPECT_FALSE(uri->glob);
  EXPECT_EQ(uri->pattern, "");
}

TEST(DataUriTest, RawWildcardsMakeAGlobEncodedOnesAreLiteral) {
  absl::StatusOr<DataUri> uri = ParseDataUri("file:///data/*/x%2A?[ab]%3F.tif", "f");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_TRUE(uri->glob);
  EXPECT_EQ(uri->path, "/data/*/x*?[ab]?.tif");
  EXPECT_EQ(uri->pattern, "/data/*/x\\*?[ab]\\?.tif");

  absl::StatusOr<DataUri> literal = ParseDataUri("file:///data/x%2A%5B1%5D", "f");
  ASSERT_TRUE(literal.ok());
  EXPECT_FALSE(literal->glob);
  EXPECT_EQ(literal->path, "/data/x*[1]");
}

TEST(DataUriTest, HttpAndS3) {
  absl::StatusOr<DataUri> http = ParseDataUri("https://example.org:8443/a/b.tif?x=1", "f");
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_EQ(http->scheme, UriScheme::kHttps);
  for (auto [text, scheme] : {std::pair{"HTTP://example.org/x", UriScheme::kHttp},
                              std::pair{"Https://example.org/x", UriScheme::kHttps}}) {
    absl::StatusOr<DataUri> mixed_case = ParseDataUri(text, "f");
    ASSERT_TRUE(mixed_case.ok()) << text << ": " << mixed_case.status();
    EXPECT_EQ(mixed_case->scheme, scheme) << text;
  }
  EXPECT_TRUE(ParseDataUri("http://[::1]:8080/x", "f").ok());
  EXPECT_TRUE(ParseDataUri("http://127.0.0.1/", "f").ok());

  absl::StatusOr<DataUri> s3 = ParseDataUri("s3://eo-data.eu/tiles/T32/x.tif", "f");
  ASSERT_TRUE(s3.ok()) << s3.status();
  EXPECT_EQ(s3->scheme, UriScheme::kS3);
  EXPECT_EQ(s3->bucket, "eo-data.eu");
  EXPECT_EQ(s3->key, "tiles/T32/x.tif");
  absl::StatusOr<DataUri> bucket = ParseDataUri("s3://eo-data", "f");
  ASSERT_TRUE(bucket.ok());
  EXPECT_EQ(bucket->key, "");
}

TEST(DataUriTest, RejectionsNameTheField) {
  ExpectInvalid("ftp://host/x", "unsupported scheme \"ftp\"");
  ExpectInvalid("", "required");
  ExpectInvalid("/data/x", "is not a URI");
  ExpectInvalid("data/x", "is not a URI");
  ExpectInvalid("1abc://x", "is not a URI");
  ExpectInvalid("file://data/x", "neither empty nor localhost");
  ExpectInvalid("file:/data/x", "file:///absolute/path");
  ExpectInvalid("file://", "file:///absolute/path");
  ExpectInvalid("file:///data/x#frag", "fragment");
  ExpectInvalid("file:///data/%zz", "bad percent escape");
  ExpectInvalid("file:///data/x%2", "bad percent escape");
  ExpectInvalid("file:///data/x%00y", "NUL");
  ExpectInvalid("file:///data/x\ny", "control characters");
  ExpectInvalid("file:///" + std::string(kMaxUriBytes, 'a'), "longer than");
  ExpectInvalid("http:///x", "missing host");
  ExpectInvalid("http:host/x", "http://host");
  ExpectInvalid("http://user:secret@host/x", "credentials");
  ExpectInvalid("http://host:0/x", "bad port");
  ExpectInvalid("http://host:65536/x", "bad port");
  ExpectInvalid("http://host:80a/x", "bad port");
  ExpectInvalid("http://host:/x", "empty port");
  ExpectInvalid("http://[::1/x", "IPv6");
  ExpectInvalid("http://host/a b", "spaces");
  ExpectInvalid("s3://Bad_Bucket/x", "invalid bucket name");
  ExpectInvalid("s3://ab/x", "invalid bucket name");
  ExpectInvalid("s3://-abc/x", "invalid bucket name");
}

TEST(DataUriTest, FileUriEncodesWhatWouldBreakAUri) {
  EXPECT_EQ(FileUri("/data/a b/c%d#e?f*g[h].tif"),
            "file:///data/a%20b/c%25d%23e%3Ff%2Ag%5Bh%5D.tif");
  EXPECT_EQ(FileUri("/data/x=1,y+2@z~_-.txt"), "file:///data/x=1,y+2@z~_-.txt");
  EXPECT_EQ(FileUri("/données"), "file:///donn%C3%A9es");
}

TEST(DataUriTest, FileUriRoundTrips) {
  const std::string path = "/data/odd name/%41*?[]#\\\x01\xff.bin";
  absl::StatusOr<DataUri> uri = ParseDataUri(FileUri(path), "f");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->path, path);
  EXPECT_FALSE(uri->glob);
}

}  // namespace
}  // namespace eofaas::proxy
