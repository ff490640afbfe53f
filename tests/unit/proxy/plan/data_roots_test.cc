// DataRoots: canonical roots, and resolution that never leaves them through "..", symlinks or
// look-alike prefixes.
#include "proxy/plan/data_roots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/support/temp_dir.h"

namespace eofaas::proxy {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class DataRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(temp_.path()).string();
    root_ = base_ + "/root";
    temp_.Write("root/a/file.txt", "inside");
    temp_.Write("root/top.txt", "top");
    temp_.Write("outside/secret.txt", "secret");
    temp_.Write("root2/b.txt", "b");
    temp_.Write("rootish/c.txt", "look-alike prefix");
    absl::StatusOr<DataRoots> roots = DataRoots::Create({root_, base_ + "/root2"});
    ASSERT_TRUE(roots.ok()) << roots.status();
    roots_.emplace(*std::move(roots));
  }

  absl::StatusOr<ResolvedPath> Resolve(const std::string& path) {
    return roots_->Resolve(path, "cursor.uri");
  }

  void ExpectDenied(const std::string& path) {
    absl::StatusOr<ResolvedPath> resolved = Resolve(path);
    ASSERT_FALSE(resolved.ok()) << path << " resolved to " << resolved->path;
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kPermissionDenied) << path;
    EXPECT_THAT(std::string(resolved.status().message()), HasSubstr("cursor.uri: "));
    EXPECT_THAT(std::string(resolved.status().message()), HasSubstr("outside every data root"));
  }

  tests::TempDir temp_;
  std::string base_;
  std::string root_;
  std::optional<DataRoots> roots_;
};

TEST_F(DataRootsTest, CreateCanonicalisesSortsAndDeduplicates) {
  fs::create_symlink(root_, base_ + "/alias");
  absl::StatusOr<DataRoots> roots =
      DataRoots::Create({base_ + "/root2/", base_ + "/alias", root_ + "/./a/.."});
  ASSERT_TRUE(roots.ok()) << roots.status();
  EXPECT_THAT(roots->roots(), ElementsAre(root_, base_ + "/root2"));
}

TEST_F(DataRootsTest, CreateRejectsBadRoots) {
  EXPECT_EQ(DataRoots::Create({"relative/dir"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DataRoots::Create({base_ + "/missing"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DataRoots::Create({root_ + "/top.txt"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DataRootsTest, ResolvesPathsInsideToCanonicalForm) {
  absl::StatusOr<ResolvedPath> file = Resolve(root_ + "//a/./file.txt");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path, root_ + "/a/file.txt");
  EXPECT_TRUE(S_ISREG(file->stat.st_mode));
  EXPECT_EQ(file->stat.st_size, 6);

  absl::StatusOr<ResolvedPath> dir = Resolve(root_);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(dir->path, root_);
  EXPECT_TRUE(S_ISDIR(dir->stat.st_mode));

  absl::StatusOr<ResolvedPath> back = Resolve(root_ + "/a/../top.txt");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->path, root_ + "/top.txt");
}

TEST_F(DataRootsTest, DotDotOutOfTheRootIsDenied) {
  ExpectDenied(root_ + "/../outside/secret.txt");
  ExpectDenied(root_ + "/a/../../outside/secret.txt");
  ExpectDenied(root_ + "/..");
  ExpectDenied(root_ + "/../../../../../../etc/passwd");
}

TEST_F(DataRootsTest, DotDotFromOneRootIntoAnotherIsAllowed) {
  absl::StatusOr<ResolvedPath> other = Resolve(root_ + "/../root2/b.txt");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->path, base_ + "/root2/b.txt");
}

TEST_F(DataRootsTest, PathsOutsideAreDenied) {
  ExpectDenied(base_ + "/outside/secret.txt");
  ExpectDenied("/etc/passwd");
  ExpectDenied("/");
  ExpectDenied(base_);
  // A sibling whose name merely starts with the root's name.
  ExpectDenied(base_ + "/rootish/c.txt");
  // Missing paths outside are denied, not reported missing: nothing outside is looked at.
  ExpectDenied(base_ + "/outside/missing.txt");
}

TEST_F(DataRootsTest, SymlinkInsidePointingOutsideIsDenied) {
  fs::create_symlink(base_ + "/outside", root_ + "/escape");
  fs::create_symlink(base_ + "/outside/secret.txt", root_ + "/secret-link.txt");
  fs::create_symlink("../../outside/secret.txt", root_ + "/a/relative-escape.txt");
  ExpectDenied(root_ + "/escape/secret.txt");
  ExpectDenied(root_ + "/escape");
  ExpectDenied(root_ + "/secret-link.txt");
  ExpectDenied(root_ + "/a/relative-escape.txt");
  absl::StatusOr<ResolvedPath> denied = Resolve(root_ + "/escape/secret.txt");
  EXPECT_THAT(std::string(denied.status().message()), HasSubstr("through the symlink"));
}

TEST_F(DataRootsTest, SymlinksThatStayInsideAreFollowed) {
  fs::create_symlink(root_ + "/a", root_ + "/abs-link");
  fs::create_symlink("a/file.txt", root_ + "/rel-link.txt");
  fs::create_symlink("../root2/b.txt", root_ + "/other-root.txt");
  absl::StatusOr<ResolvedPath> abs = Resolve(root_ + "/abs-link/file.txt");
  ASSERT_TRUE(abs.ok()) << abs.status();
  EXPECT_EQ(abs->path, root_ + "/a/file.txt");
  absl::StatusOr<ResolvedPath> rel = Resolve(root_ + "/rel-link.txt");
  ASSERT_TRUE(rel.ok()) << rel.status();
  EXPECT_EQ(rel->path, root_ + "/a/file.txt");
  absl::StatusOr<ResolvedPath> other = Resolve(root_ + "/other-root.txt");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->path, base_ + "/root2/b.txt");
}

TEST_F(DataRootsTest, RootNamedThroughASymlinkIsResolved) {
  fs::create_symlink(root_, base_ + "/alias");
  absl::StatusOr<DataRoots> roots = DataRoots::Create({base_ + "/alias"});
  ASSERT_TRUE(roots.ok()) << roots.status();
  absl::StatusOr<ResolvedPath> file = roots->Resolve(base_ + "/alias/a/file.txt", "f");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path, root_ + "/a/file.txt");
  EXPECT_EQ(roots->Resolve(base_ + "/alias/../outside/secret.txt", "f").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(DataRootsTest, MissingAndNotADirectoryAreNotFound) {
  absl::StatusOr<ResolvedPath> missing = Resolve(root_ + "/a/missing.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("cursor.uri: "));
  EXPECT_EQ(Resolve(root_ + "/top.txt/x").status().code(), absl::StatusCode::kNotFound);
  // A trailing slash, like "/.", names a directory: a replica could not open the file so named.
  for (const std::string suffix : {"/", "/."}) {
    absl::StatusOr<ResolvedPath> file = Resolve(root_ + "/top.txt" + suffix);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound) << suffix;
    EXPECT_THAT(std::string(file.status().message()), HasSubstr("is not a directory")) << suffix;
  }
  EXPECT_TRUE(Resolve(root_ + "/a/").ok());
  fs::create_symlink(root_ + "/nowhere", root_ + "/dangling");
  EXPECT_EQ(Resolve(root_ + "/dangling").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DataRootsTest, SymlinkLoopIsInvalid) {
  fs::create_symlink("loop2", root_ + "/loop1");
  fs::create_symlink("loop1", root_ + "/loop2");
  absl::StatusOr<ResolvedPath> loop = Resolve(root_ + "/loop1");
  EXPECT_EQ(loop.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(loop.status().message()), HasSubstr("symbolic links"));
}

TEST_F(DataRootsTest, RelativePathIsInvalid) {
  EXPECT_EQ(Resolve("root/a/file.txt").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DataRootsTest, NoRootsDenyEverything) {
  absl::StatusOr<DataRoots> none = DataRoots::Create({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->Resolve(root_ + "/top.txt", "f").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(DataRootsTest, ResolvesWithoutBlockingOnLocalFileSystems) {
  // The test's temporary directory is on a local file system.
  EXPECT_FALSE(roots_->MayBlock(root_ + "/a/file.txt"));
  fs::create_symlink(base_ + "/outside", root_ + "/escape");
  for (const std::string& path :
       {root_ + "/a/file.txt", root_ + "/a/../top.txt", root_ + "/escape/secret.txt",
        root_ + "/a/missing.txt", base_ + "/outside/secret.txt"}) {
    std::optional<absl::StatusOr<ResolvedPath>> resolved =
        roots_->ResolveWithoutBlocking(path, "cursor.uri");
    ASSERT_TRUE(resolved.has_value()) << path;
    absl::StatusOr<ResolvedPath> expected = Resolve(path);
    EXPECT_EQ(resolved->status(), expected.status()) << path;
    if (expected.ok()) EXPECT_EQ((*resolved)->path, expected->path) << path;
  }
}

TEST_F(DataRootsTest, NothingThatMayBlockIsTouchedWithoutBlocking) {
  fs::create_symlink(root_ + "/a/file.txt", root_ + "/link.txt");
  // The root's "a" is a FUSE mount.
  absl::StatusOr<DataRoots> below = DataRoots::Create(
      {root_}, absl::StrCat("40 22 0:50 / ", root_, "/a rw - fuse.sshfs host:/ rw\n"));
  ASSERT_TRUE(below.ok()) << below.status();
  EXPECT_TRUE(below->MayBlock(root_ + "/a"));
  EXPECT_FALSE(below->MayBlock(root_ + "/top.txt"));
  EXPECT_TRUE(below->ResolveWithoutBlocking(root_ + "/top.txt", "f").has_value());
  EXPECT_FALSE(below->ResolveWithoutBlocking(root_ + "/a/file.txt", "f").has_value());
  EXPECT_FALSE(below->ResolveWithoutBlocking(root_ + "/link.txt", "f").has_value());
  EXPECT_TRUE(below->Resolve(root_ + "/link.txt", "f").ok());  // where blocking is allowed

  // The whole root is on NFS.
  absl::StatusOr<DataRoots> on = DataRoots::Create(
      {root_}, absl::StrCat("41 22 0:51 / ", base_, " rw - nfs4 server:/export rw\n"));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_FALSE(on->ResolveWithoutBlocking(root_ + "/top.txt", "f").has_value());
  EXPECT_FALSE(on->ResolveWithoutBlocking(root_, "f").has_value());
  // Paths outside are refused all the same, touching nothing.
  std::optional<absl::StatusOr<ResolvedPath>> outside =
      on->ResolveWithoutBlocking(base_ + "/outside/secret.txt", "f");
  ASSERT_TRUE(outside.has_value());
  EXPECT_EQ(outside->status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(PathsThatMayBlockTest, RootsOnOrBelowRemoteMountsAndRemoteMountsBelowRoots) {
  const std::string mountinfo =
      "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
      "30 22 0:40 / /tmp rw shared:2 - tmpfs tmpfs rw\n"
      "31 22 0:41 / /mnt/nfs rw shared:3 - nfs4 server:/export rw,vers=4.2\n"
      "32 22 0:42 / /data/local/remote rw shared:4 - fuse.sshfs host:/ rw\n"
      "33 22 0:43 / /data/local/disk rw shared:5 - xfs /dev/vdb rw\n"
      "34 22 0:44 / /srv/with\\040space rw shared:6 - cifs //h/s rw\n"
      "35 22 0:45 / /data/other rw shared:7 - 9p trans rw\n";
  EXPECT_THAT(
      PathsThatMayBlock({"/data/local", "/mnt/nfs/eo", "/tmp/x", "/srv/with space"}, mountinfo),
      ElementsAre("/data/local/remote", "/mnt/nfs/eo", "/srv/with space"));
  EXPECT_THAT(PathsThatMayBlock({"/"}, mountinfo),
              ElementsAre("/data/local/remote", "/data/other", "/mnt/nfs", "/srv/with space"));
  EXPECT_THAT(PathsThatMayBlock({"/tmp/x"}, ""), ::testing::IsEmpty());
}

}  // namespace
}  // namespace eofaas::proxy
