// FileLister on real trees: files, recursive directories, globs, ordering, and symlinks that try
// to leave the data roots.
#include "proxy/plan/file_lister.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proxy/plan/data_uri.h"
#include "tests/support/temp_dir.h"

namespace eofaas::proxy {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class FileListerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(temp_.path()).string();
    root_ = base_ + "/root";
    fs::create_directories(root_);
    temp_.Write("outside/secret.txt", "secret");
    Reset();
  }

  // Builds the lister once the tree is ready (roots are canonicalised at creation).
  void Reset() {
    absl::StatusOr<DataRoots> roots = DataRoots::Create({root_});
    ASSERT_TRUE(roots.ok()) << roots.status();
    lister_.emplace(*std::move(roots));
  }

  absl::Status List(const std::string& uri_text, ObjectList& out,
                    const std::stop_token& stop = {}) {
    absl::StatusOr<DataUri> uri = ParseDataUri(uri_text, "inputs[1]");
    if (!uri.ok()) return uri.status();
    return lister_->List(*uri, "inputs[1]", stop, out);
  }

  // The URIs an input lists, relative to the root's URI.
  std::vector<std::string> Names(const std::string& uri_text) {
    ObjectList out;
    absl::Status status = List(uri_text, out);
    EXPECT_TRUE(status.ok()) << status;
    std::vector<std::string> names;
    const std::string prefix = FileUri(root_) + "/";
    for (size_t i = 0; i < out.size(); ++i) {
      std::string uri = out[i].uri();
      EXPECT_EQ(uri.rfind(prefix, 0), 0u) << uri;
      names.push_back(uri.substr(prefix.size()));
    }
    return names;
  }

  void ExpectError(const std::string& uri_text, absl::StatusCode code, const std::string& message) {
    ObjectList out;
    absl::Status status = List(uri_text, out);
    EXPECT_EQ(status.code(), code) << uri_text << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("inputs[1]: ")) << uri_text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message)) << uri_text;
  }

  std::string Uri(const std::string& relative) { return FileUri(root_ + "/" + relative); }

  tests::TempDir temp_;
  std::string base_;
  std::string root_;
  std::optional<FileLister> lister_;
};

TEST_F(FileListerTest, OneFile) {
  temp_.Write("root/a.txt", "12345");
  ObjectList out;
  ASSERT_TRUE(List(Uri("a.txt"), out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].uri(), Uri("a.txt"));
  EXPECT_EQ(out[0].size, 5);
  EXPECT_TRUE(out[0].ranges_supported);
  EXPECT_THAT(std::string(out[0].etag), MatchesRegex("[0-9a-f]+-5"));
}

TEST_F(FileListerTest, EtagChangesWithTheFile) {
  temp_.Write("root/a.txt", "12345");
  ObjectList before;
  ASSERT_TRUE(List(Uri("a.txt"), before).ok());
  temp_.Write("root/a.txt", "123456");
  ObjectList after;
  ASSERT_TRUE(List(Uri("a.txt"), after).ok());
  EXPECT_NE(before[0].etag, after[0].etag);
}

// The planner's etag must be what the templates compute from the file (Python's `x` format of
// st_mtime_ns, a BigInt's toString(16)): signed before 1970.
TEST_F(FileListerTest, EtagOfAFileOlderThan1970IsSigned) {
  temp_.Write("root/old.txt", "12345");
  const struct timespec times[2] = {{-315619200, 250}, {-315619200, 250}};  // 1960-01-01
  ASSERT_EQ(utimensat(AT_FDCWD, (root_ + "/old.txt").c_str(), times, 0), 0);
  ObjectList out;
  ASSERT_TRUE(List(Uri("old.txt"), out).ok());
  // -315619200 s + 250 ns = -315619199999999750 ns
  EXPECT_EQ(out[0].etag, absl::StrCat("-", absl::Hex(int64_t{315619199999999750}), "-5"));
}

TEST_F(FileListerTest, DirectoryIsWalkedRecursivelyAndSortedByUri) {
  temp_.Write("root/d/b.txt", "bb");
  temp_.Write("root/d/a.txt", "a");
  temp_.Write("root/d/a/z.txt", "z");
  temp_.Write("root/d/a/y/x.txt", "x");
  temp_.Write("root/d/.hidden", "h");
  temp_.Write("root/d/A.txt", "A");
  fs::create_directories(root_ + "/d/empty/deeper");
  EXPECT_THAT(Names(Uri("d")), ElementsAre("d/.hidden", "d/A.txt", "d/a.txt", "d/a/y/x.txt",
                                           "d/a/z.txt", "d/b.txt"));
  // A trailing slash names the same directory.
  EXPECT_EQ(Names(Uri("d") + "/"), Names(Uri("d")));
}

TEST_F(FileListerTest, DirectoryNamesAreEncodedInUris) {
  temp_.Write("root/d/a b#1?.txt", "x");
  temp_.Write("root/d/sp ace/é.txt", "y");
  EXPECT_THAT(Names(Uri("d")), ElementsAre("d/a%20b%231%3F.txt", "d/sp%20ace/%C3%A9.txt"));
  // The encoded URIs name the files again.
  ObjectList out;
  ASSERT_TRUE(List(Uri("d/a b#1?.txt"), out).ok());
  EXPECT_EQ(out[0].uri(), Uri("d/a b#1?.txt"));
}

TEST_F(FileListerTest, DirectorySkipsSpecialFilesDanglingLinksAndDirectoryLinks) {
  temp_.Write("root/d/real.txt", "r");
  temp_.Write("root/other/o.txt", "o");
  ASSERT_EQ(mkfifo((root_ + "/d/fifo").c_str(), 0600), 0);
  fs::create_symlink(root_ + "/missing", root_ + "/d/dangling");
  fs::create_symlink(root_ + "/other", root_ + "/d/dir-link");
  fs::create_symlink(root_ + "/d", root_ + "/d/cycle");
  fs::create_symlink("../other/o.txt", root_ + "/d/file-link.txt");
  EXPECT_THAT(Names(Uri("d")), ElementsAre("d/file-link.txt", "d/real.txt"));
}

TEST_F(FileListerTest, DirectoryNamedThroughASymlinkIsWalked) {
  temp_.Write("root/real/x.txt", "x");
  fs::create_symlink("real", root_ + "/latest");
  EXPECT_THAT(Names(Uri("latest")), ElementsAre("real/x.txt"));
}

TEST_F(FileListerTest, SymlinkOutOfTheRootInADirectoryIsDenied) {
  temp_.Write("root/d/ok.txt", "ok");
  fs::create_directories(root_ + "/d/sub");
  fs::create_symlink(base_ + "/outside/secret.txt", root_ + "/d/sub/escape.txt");
  ExpectError(Uri("d"), absl::StatusCode::kPermissionDenied, "outside every data root");
}

TEST_F(FileListerTest, SymlinkedDirectoryOutOfTheRootInADirectoryIsDenied) {
  temp_.Write("root/d/ok.txt", "ok");
  fs::create_symlink(base_ + "/outside", root_ + "/d/escape");
  ExpectError(Uri("d"), absl::StatusCode::kPermissionDenied, "outside every data root");
}

TEST_F(FileListerTest, PathsOutsideAreDenied) {
  ExpectError(FileUri(base_ + "/outside"), absl::StatusCode::kPermissionDenied, "outside");
  ExpectError(Uri("../outside/secret.txt"), absl::StatusCode::kPermissionDenied, "outside");
  fs::create_symlink(base_ + "/outside", root_ + "/escape");
  ExpectError(Uri("escape"), absl::StatusCode::kPermissionDenied, "outside");
}

TEST_F(FileListerTest, MissingAndEmptyAreNotFound) {
  ExpectError(Uri("missing"), absl::StatusCode::kNotFound, "missing");
  fs::create_directories(root_ + "/empty/sub");
  ExpectError(Uri("empty"), absl::StatusCode::kNotFound, "has no files");
  ExpectError(FileUri(root_) + "/*.nothing", absl::StatusCode::kNotFound, "matches no files");
}

TEST_F(FileListerTest, SpecialFileIsInvalid) {
  ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  ExpectError(Uri("fifo"), absl::StatusCode::kInvalidArgument, "neither a regular file");
}

TEST_F(FileListerTest, GlobMatchesFilesOnlySorted) {
  for (const char* name : {"c.txt", "a.txt", "b.csv", "b.txt", ".hidden.txt", "dir.txt/x.txt"}) {
    temp_.Write(std::string("root/g/") + name, "1");
  }
  EXPECT_THAT(Names(FileUri(root_ + "/g") + "/*.txt"),
              ElementsAre("g/a.txt", "g/b.txt", "g/c.txt"));
  EXPECT_THAT(Names(FileUri(root_ + "/g") + "/.*"), ElementsAre("g/.hidden.txt"));
  EXPECT_THAT(Names(FileUri(root_ + "/g") + "/[ab].*"),
              ElementsAre("g/a.txt", "g/b.csv", "g/b.txt"));
  EXPECT_THAT(Names(FileUri(root_ + "/g") + "/?.csv"), ElementsAre("g/b.csv"));
}

TEST_F(FileListerTest, GlobAcrossDirectories) {
  temp_.Write("root/2023/01/a.tif", "1");
  temp_.Write("root/2023/02/b.tif", "1");
  temp_.Write("root/2023/02/b.txt", "1");
  temp_.Write("root/2024/01/c.tif", "1");
  temp_.Write("root/2024/notes.tif", "1");
  EXPECT_THAT(Names(FileUri(root_) + "/20*/*/*.tif"),
              ElementsAre("2023/01/a.tif", "2023/02/b.tif", "2024/01/c.tif"));
  EXPECT_THAT(Names(FileUri(root_) + "/2023/*/b.*"), ElementsAre("2023/02/b.tif", "2023/02/b.txt"));
}

TEST_F(FileListerTest, GlobWithEncodedWildcardIsLiteral) {
  temp_.Write("root/lit/a*.txt", "1");
  temp_.Write("root/lit/ab.txt", "1");
  EXPECT_THAT(Names(FileUri(root_) + "/lit/a%2A.*"), ElementsAre("lit/a%2A.txt"));
  EXPECT_THAT(Names(FileUri(root_) + "/lit/a*.txt"), ElementsAre("lit/a%2A.txt", "lit/ab.txt"));
}

TEST_F(FileListerTest, GlobFollowsSymlinksThatStayInside) {
  temp_.Write("root/real/x.tif", "1");
  temp_.Write("root/target.tif", "2");
  fs::create_directories(root_ + "/links");
  fs::create_symlink(root_ + "/real", root_ + "/links/dir");
  fs::create_symlink(root_ + "/target.tif", root_ + "/links/file.tif");
  EXPECT_THAT(Names(FileUri(root_) + "/links/*"), ElementsAre("links/file.tif"));
  EXPECT_THAT(Names(FileUri(root_) + "/links/*/*.tif"), ElementsAre("real/x.tif"));
}

// A directory reached twice at the same depth of a glob (by its name and through a symlink, or
// through a symlink cycle) is listed once: its files once each, and a cycle costs no more than
// the glob is deep.
TEST_F(FileListerTest, GlobListsADirectoryItReachesTwiceOnce) {
  temp_.Write("root/dup/sub/a.txt", "1");
  fs::create_symlink("sub", root_ + "/dup/latest");
  EXPECT_THAT(Names(FileUri(root_) + "/dup/*/a.txt"), ElementsAre("dup/sub/a.txt"));

  temp_.Write("root/cycle/x.txt", "2");
  fs::create_symlink(".", root_ + "/cycle/a");
  fs::create_symlink(".", root_ + "/cycle/b");
  std::string deep = FileUri(root_) + "/cycle";
  for (int i = 0; i < 40; ++i) deep += "/*";  // 2^40 paths, one directory
  EXPECT_THAT(Names(deep + "/x.txt"), ElementsAre("cycle/x.txt"));
}

TEST_F(FileListerTest, GlobMatchingASymlinkOutIsDenied) {
  temp_.Write("root/g/a.txt", "1");
  fs::create_symlink(base_ + "/outside/secret.txt", root_ + "/g/b.txt");
  ExpectError(FileUri(root_) + "/g/*.txt", absl::StatusCode::kPermissionDenied,
              "outside every data root");
  fs::create_symlink(base_ + "/outside", root_ + "/h");
  ExpectError(FileUri(root_) + "/h*/*.txt", absl::StatusCode::kPermissionDenied,
              "outside every data root");
}

TEST_F(FileListerTest, GlobWhoseDirectoryIsOutsideIsDenied) {
  ExpectError(FileUri(base_) + "/outside/*.txt", absl::StatusCode::kPermissionDenied, "outside");
  ExpectError(FileUri(root_) + "/../outside/*.txt", absl::StatusCode::kPermissionDenied, "outside");
  ExpectError(FileUri(base_) + "/*/secret.txt", absl::StatusCode::kPermissionDenied, "outside");
  ExpectError("file:///*", absl::StatusCode::kPermissionDenied, "outside");
}

TEST_F(FileListerTest, GlobWithDotsAfterItsWildcardIsInvalid) {
  temp_.Write("root/d1/f.txt", "f");
  ExpectError(FileUri(root_) + "/d*/../d1/f.txt", absl::StatusCode::kInvalidArgument,
              "\"..\" after");
  ExpectError(FileUri(root_) + "/d*/./f.txt", absl::StatusCode::kInvalidArgument, "\".\" after");
  ExpectError(FileUri(root_) + "/*/../../outside/*", absl::StatusCode::kInvalidArgument,
              "\"..\" after");
  // Before the wildcard they are resolved with the rest of the directory's path.
  EXPECT_THAT(Names(FileUri(root_) + "/d1/../d1/*.txt"), ElementsAre("d1/f.txt"));
}

// A walk descends 64 levels below its input at most: each level holds a descriptor and a frame
// of the walk, so a deeper tree (which would exhaust either) fails the listing instead.
TEST_F(FileListerTest, TreesDeeperThanTheWalkGoesAreRefused) {
  std::string deep = "d";
  for (int level = 1; level <= 64; ++level) deep += "/d";
  temp_.Write("root/" + deep + "/bottom.txt", "x");  // 64 levels below root/d
  EXPECT_THAT(Names(Uri("d")), ElementsAre(deep + "/bottom.txt"));
  temp_.Write("root/" + deep + "/d/deeper.txt", "x");
  ExpectError(Uri("d"), absl::StatusCode::kFailedPrecondition, "more than 64 directories below");
  // A directory nearer to the files lists them.
  EXPECT_EQ(Names(Uri("d/d")).size(), 2u);

  std::string pattern = "*";
  for (int component = 1; component <= 65; ++component) pattern += "/d";
  ExpectError(FileUri(root_) + "/" + pattern, absl::StatusCode::kInvalidArgument,
              "at most 65 components");
}

TEST_F(FileListerTest, ListingAppendsAndSortsOnlyItsOwnObjects) {
  temp_.Write("root/a.txt", "1");
  temp_.Write("root/b.txt", "1");
  ObjectList out;
  ASSERT_TRUE(List(Uri("b.txt"), out).ok());
  ASSERT_TRUE(List(FileUri(root_) + "/*.txt", out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].uri(), Uri("b.txt"));
  EXPECT_EQ(out[1].uri(), Uri("a.txt"));
  EXPECT_EQ(out[2].uri(), Uri("b.txt"));
}

// The walk checks the stop before each entry: once requested, a directory or glob (whose base the
// lister already resolved) ends CANCELLED without listing further files.
TEST_F(FileListerTest, RequestedStopEndsTheWalk) {
  for (int i = 0; i < 100; ++i) temp_.Write("root/d/" + std::to_string(i) + ".txt", "x");
  std::stop_source stop;
  stop.request_stop();
  for (const std::string& input : {Uri("d"), Uri("d") + "/*.txt"}) {
    ObjectList out;
    absl::Status status = List(input, out, stop.get_token());
    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << input << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("inputs[1]: ")) << input;
    EXPECT_EQ(out.size(), 0u) << input;
  }
  // A single file needs no walk; a stop that was never requested changes nothing.
  ObjectList out;
  EXPECT_TRUE(List(Uri("d/1.txt"), out, stop.get_token()).ok());
  EXPECT_EQ(Names(Uri("d")).size(), 100u);
}

TEST_F(FileListerTest, RejectsOtherSchemes) {
  ExpectError("http://127.0.0.1/x", absl::StatusCode::kInvalidArgument, "not a file://");
}

}  // namespace
}  // namespace eofaas::proxy
