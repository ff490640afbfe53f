// ValidateCursor: the cursor an Invoke names, every rule with its field named.
#include "proxy/plan/cursor_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <string>

#include "proxy/plan/data_uri.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/temp_dir.h"

namespace eofaas::proxy {
namespace {

namespace fs = std::filesystem;
using eofaas::v1::DataCursor;
using std::chrono_literals::operator""s;
using ::testing::HasSubstr;

class CursorValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::canonical(temp_.path()).string() + "/root";
    temp_.Write("root/data.txt", "line 1\nline 2\n");
    temp_.Write("root/sub/x.txt", "x");
    temp_.Write("outside.txt", "secret");
    absl::StatusOr<DataRoots> roots = DataRoots::Create({root_});
    ASSERT_TRUE(roots.ok()) << roots.status();
    roots_.emplace(*std::move(roots));
  }

  DataCursor Cursor(const std::string& uri) {
    DataCursor cursor;
    cursor.set_uri(uri);
    return cursor;
  }

  void Expect(const DataCursor& cursor, absl::StatusCode code, const std::string& message) {
    absl::Status status = ValidateCursor(cursor, *roots_);
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message));
  }

  tests::TempDir temp_;
  std::string root_;
  std::optional<DataRoots> roots_;
};

TEST_F(CursorValidationTest, ValidCursorsPass) {
  DataCursor file = Cursor(FileUri(root_ + "/data.txt"));
  file.set_offset(3);
  file.set_length(4);
  file.set_framing(eofaas::v1::FRAMING_LINES);
  EXPECT_TRUE(ValidateCursor(file, *roots_).ok());
  EXPECT_TRUE(ValidateCursor(Cursor("file://localhost" + root_ + "/sub/x.txt"), *roots_).ok());
  EXPECT_TRUE(ValidateCursor(Cursor("http://127.0.0.1:9/x.csv"), *roots_).ok());
  EXPECT_TRUE(ValidateCursor(Cursor("https://example.org/x.csv?sig=1"), *roots_).ok());
  EXPECT_TRUE(ValidateCursor(Cursor("s3://eo-bucket/a/b.tif"), *roots_).ok());
  DataCursor to_the_end = Cursor(FileUri(root_ + "/data.txt"));
  to_the_end.set_offset(std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(ValidateCursor(to_the_end, *roots_).ok());
  DataCursor edge = Cursor(FileUri(root_ + "/data.txt"));
  edge.set_offset(1);
  edge.set_length(std::numeric_limits<int64_t>::max() - 1);
  EXPECT_TRUE(ValidateCursor(edge, *roots_).ok());
}

TEST_F(CursorValidationTest, UriRules) {
  Expect(Cursor(""), absl::StatusCode::kInvalidArgument, "cursor.uri: required");
  Expect(Cursor("ftp://host/x"), absl::StatusCode::kInvalidArgument,
         "cursor.uri: unsupported scheme \"ftp\"");
  Expect(Cursor("file://data/x"), absl::StatusCode::kInvalidArgument, "cursor.uri: ");
  Expect(Cursor("s3://eo-bucket"), absl::StatusCode::kInvalidArgument,
         "cursor.uri: an s3 cursor needs s3://bucket/key");
  Expect(Cursor("file://" + root_ + "/data.txt?x"), absl::StatusCode::kInvalidArgument,
         "cursor.uri: a file URI has no query");
  Expect(Cursor(FileUri(root_ + "/sub")), absl::StatusCode::kInvalidArgument,
         "is not a regular file");
}

TEST_F(CursorValidationTest, FilePathsStayInsideTheRoots) {
  Expect(Cursor(FileUri(root_ + "/../outside.txt")), absl::StatusCode::kPermissionDenied,
         "cursor.uri: ");
  fs::create_symlink(root_ + "/../outside.txt", root_ + "/link.txt");
  Expect(Cursor(FileUri(root_ + "/link.txt")), absl::StatusCode::kPermissionDenied,
         "outside every data root");
  Expect(Cursor("file:///etc/passwd"), absl::StatusCode::kPermissionDenied, "cursor.uri: ");
  Expect(Cursor(FileUri(root_ + "/missing.txt")), absl::StatusCode::kNotFound, "cursor.uri: ");
}

TEST_F(CursorValidationTest, RangeRules) {
  DataCursor cursor = Cursor(FileUri(root_ + "/data.txt"));
  cursor.set_offset(-1);
  Expect(cursor, absl::StatusCode::kInvalidArgument, "cursor.offset: must not be negative");

  cursor = Cursor(FileUri(root_ + "/data.txt"));
  cursor.set_length(-5);
  Expect(cursor, absl::StatusCode::kInvalidArgument, "cursor.length: must not be negative");

  cursor = Cursor(FileUri(root_ + "/data.txt"));
  cursor.set_offset(2);
  cursor.set_length(std::numeric_limits<int64_t>::max() - 1);
  Expect(cursor, absl::StatusCode::kInvalidArgument, "cursor.length: offset 2 + length");

  for (const char* field : {"part", "parts", "size"}) {
    cursor = Cursor(FileUri(root_ + "/data.txt"));
    const auto* descriptor = cursor.GetDescriptor()->FindFieldByName(field);
    cursor.GetReflection()->SetInt64(&cursor, descriptor, -2);
    Expect(cursor, absl::StatusCode::kInvalidArgument,
           std::string("cursor.") + field + ": must not be negative");
  }

  cursor = Cursor(FileUri(root_ + "/data.txt"));
  cursor.set_framing(static_cast<eofaas::v1::Framing>(7));
  Expect(cursor, absl::StatusCode::kInvalidArgument, "cursor.framing: unknown value 7");
}

TEST_F(CursorValidationTest, FieldPrefixIsTheCallers) {
  DataCursor cursor = Cursor("gopher://x");
  absl::Status status = ValidateCursor(cursor, *roots_, nullptr, "items[3].cursor");
  EXPECT_THAT(std::string(status.message()), HasSubstr("items[3].cursor.uri: "));
}

TEST_F(CursorValidationTest, WithoutBlockingAgreesOnLocalFileSystems) {
  fs::create_symlink(fs::path(root_).parent_path() / "outside.txt", root_ + "/escape.txt");
  for (const std::string& uri :
       {FileUri(root_ + "/data.txt"), FileUri(root_ + "/escape.txt"), FileUri(root_ + "/sub"),
        FileUri(root_ + "/missing.txt"), std::string("file:///etc/hostname"),
        std::string("s3://eo-bucket/a"), std::string("http://127.0.0.1:9/x"), std::string("")}) {
    std::optional<absl::Status> status = ValidateCursorWithoutBlocking(Cursor(uri), *roots_);
    ASSERT_TRUE(status.has_value()) << uri;
    EXPECT_EQ(*status, ValidateCursor(Cursor(uri), *roots_)) << uri;
  }
  EXPECT_EQ(ValidateCursorWithoutBlocking(Cursor(FileUri(root_ + "/escape.txt")), *roots_)->code(),
            absl::StatusCode::kPermissionDenied);

  // A root on NFS: file cursors wait for a worker; others, and invalid ones, do not.
  absl::StatusOr<DataRoots> remote =
      DataRoots::Create({root_}, "41 22 0:51 / " + root_ + " rw - nfs4 server:/export rw\n");
  ASSERT_TRUE(remote.ok()) << remote.status();
  EXPECT_FALSE(ValidateCursorWithoutBlocking(Cursor(FileUri(root_ + "/data.txt")), *remote));
  EXPECT_TRUE(ValidateCursor(Cursor(FileUri(root_ + "/data.txt")), *remote).ok());
  EXPECT_TRUE(ValidateCursorWithoutBlocking(Cursor("s3://eo-bucket/a"), *remote)->ok());
  EXPECT_EQ(ValidateCursorWithoutBlocking(Cursor(""), *remote)->code(),
            absl::StatusCode::kInvalidArgument);
}

// With CheckedFiles a passed file is not resolved again for the time to live, so a change on
// disk shows only after it; failures are resolved again every time, and the rules that do not
// touch the disk always hold.
TEST_F(CursorValidationTest, CheckedFilesKeepPassedVerdictsForTheirTimeToLive) {
  fakes::FakeClock clock;
  CheckedFiles checked(clock, absl::Seconds(1));
  const std::string data = root_ + "/data.txt";
  ASSERT_TRUE(ValidateCursor(Cursor(FileUri(data)), *roots_, &checked).ok());

  // Swapped for a symlink that leads outside: still taken until the verdict expires.
  fs::remove(data);
  fs::create_symlink(fs::path(root_).parent_path() / "outside.txt", data);
  EXPECT_TRUE(ValidateCursor(Cursor(FileUri(data)), *roots_, &checked).ok());
  EXPECT_EQ(ValidateCursor(Cursor(FileUri(data)), *roots_).code(),
            absl::StatusCode::kPermissionDenied);
  // The verdict is the URI's: another spelling of the path (`d` escaped) is resolved.
  std::string escaped = FileUri(data);
  escaped.replace(escaped.rfind("data.txt"), 1, "%64");
  EXPECT_EQ(ValidateCursor(Cursor(escaped), *roots_, &checked).code(),
            absl::StatusCode::kPermissionDenied);
  DataCursor negative = Cursor(FileUri(data));
  negative.set_offset(-1);
  EXPECT_EQ(ValidateCursor(negative, *roots_, &checked).code(), absl::StatusCode::kInvalidArgument);
  clock.Advance(1s);
  EXPECT_EQ(ValidateCursor(Cursor(FileUri(data)), *roots_, &checked).code(),
            absl::StatusCode::kPermissionDenied);

  // A failure is not kept: the file is taken as soon as it exists.
  const std::string later = root_ + "/later.txt";
  EXPECT_EQ(ValidateCursor(Cursor(FileUri(later)), *roots_, &checked).code(),
            absl::StatusCode::kNotFound);
  temp_.Write("root/later.txt", "now");
  EXPECT_TRUE(ValidateCursorWithoutBlocking(Cursor(FileUri(later)), *roots_, &checked)->ok());
  fs::remove(later);
  EXPECT_TRUE(ValidateCursor(Cursor(FileUri(later)), *roots_, &checked).ok());
  EXPECT_FALSE(ValidateCursor(Cursor(FileUri(later)), *roots_).ok());
}

}  // namespace
}  // namespace eofaas::proxy
