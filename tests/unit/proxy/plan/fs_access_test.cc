// The planner never stats, reads as a link, opens or lists anything outside the data roots, even
// while it refuses paths that try to leave them. This binary interposes the file-system calls
// eofaas::proxy_plan makes (lstat, stat, readlink, open, openat, fstatat), records every path
// they are given while a test watches, and checks each one lies inside the root.
#include <dlfcn.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "proxy/plan/cursor_validation.h"
#include "proxy/plan/data_uri.h"
#include "proxy/plan/file_lister.h"
#include "tests/support/temp_dir.h"

namespace {

bool recording = false;
std::vector<std::string>* touched = nullptr;

template <typename F>
F Real(const char* name) {
  static_assert(std::is_pointer_v<F>);
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// The absolute path a call names: `path` itself, or joined to its directory descriptor.
void Record(int dirfd, const char* path) {
  if (!recording) return;
  std::string full = path;
  if (full.empty() || full.front() != '/') {
    char dir[PATH_MAX];
    std::string link =
        dirfd == AT_FDCWD ? "/proc/self/cwd" : "/proc/self/fd/" + std::to_string(dirfd);
    static auto real_readlink = Real<ssize_t (*)(const char*, char*, size_t)>("readlink");
    ssize_t size = real_readlink(link.c_str(), dir, sizeof(dir));
    full = std::string(dir, size > 0 ? size : 0) + "/" + full;
  }
  touched->push_back(full);
}

}  // namespace

extern "C" {

int lstat(const char* path, struct stat* buf) noexcept {
  Record(AT_FDCWD, path);
  static auto real = Real<int (*)(const char*, struct stat*)>("lstat");
  return real(path, buf);
}

int stat(const char* path, struct stat* buf) noexcept {
  Record(AT_FDCWD, path);
  static auto real = Real<int (*)(const char*, struct stat*)>("stat");
  return real(path, buf);
}

int fstatat(int dirfd, const char* path, struct stat* buf, int flags) noexcept {
  Record(dirfd, path);
  static auto real = Real<int (*)(int, const char*, struct stat*, int)>("fstatat");
  return real(dirfd, path, buf, flags);
}

ssize_t readlink(const char* path, char* buf, size_t size) noexcept {
  Record(AT_FDCWD, path);
  static auto real = Real<ssize_t (*)(const char*, char*, size_t)>("readlink");
  return real(path, buf, size);
}

int open(const char* path, int flags, ...) {
  Record(AT_FDCWD, path);
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list args;
    va_start(args, flags);
    mode = va_arg(args, mode_t);
    va_end(args);
  }
  static auto real = Real<int (*)(const char*, int, ...)>("open");
  return real(path, flags, mode);
}

int openat(int dirfd, const char* path, int flags, ...) {
  Record(dirfd, path);
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list args;
    va_start(args, flags);
    mode = va_arg(args, mode_t);
    va_end(args);
  }
  static auto real = Real<int (*)(int, const char*, int, ...)>("openat");
  return real(dirfd, path, flags, mode);
}

}  // extern "C"

namespace eofaas::proxy {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;
using ::testing::Not;

class FsAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(temp_.path()).string();
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    temp_.Write("outside/secret.txt", "secret");
    temp_.Write("outside/deeper/more.txt", "more");
    temp_.Write("root/d/ok.txt", "ok");
    temp_.Write("root/g/a.txt", "a");
    fs::create_symlink(outside_, root_ + "/escape-dir");
    fs::create_symlink(outside_ + "/secret.txt", root_ + "/g/escape.txt");
    fs::create_symlink("../../outside/deeper", root_ + "/d/relative-escape");
    fs::create_symlink("../outside/secret.txt", root_ + "/rel.txt");
    absl::StatusOr<DataRoots> roots = DataRoots::Create({root_});
    ASSERT_TRUE(roots.ok()) << roots.status();
    roots_.emplace(*roots);
    lister_.emplace(*std::move(roots));
    touched = &touched_;
    recording = true;
  }
  void TearDown() override {
    recording = false;
    touched = nullptr;
  }

  absl::Status List(const std::string& uri_text) {
    absl::StatusOr<DataUri> uri = ParseDataUri(uri_text, "inputs[0]");
    if (!uri.ok()) return uri.status();
    ObjectList out;
    return lister_->List(*uri, "inputs[0]", {}, out);
  }

  void ExpectAllInsideTheRoot() {
    recording = false;
    EXPECT_THAT(touched_, Not(IsEmpty()));
    for (const std::string& path : touched_) {
      EXPECT_TRUE(roots_->Contains(fs::path(path).lexically_normal().string()))
          << "touched " << path << " outside " << root_;
    }
  }

  tests::TempDir temp_;
  std::string base_, root_, outside_;
  std::optional<DataRoots> roots_;
  std::optional<FileLister> lister_;
  std::vector<std::string> touched_;
};

TEST_F(FsAccessTest, ResolvingEscapesTouchesOnlyTheRoot) {
  for (const std::string& path :
       {root_ + "/escape-dir/secret.txt", root_ + "/../outside/secret.txt",
        root_ + "/d/../../outside/deeper/more.txt", root_ + "/rel.txt",
        root_ + "/d/relative-escape/more.txt", outside_ + "/secret.txt", std::string("/etc/passwd"),
        root_ + "/escape-dir/missing/x"}) {
    EXPECT_EQ(roots_->Resolve(path, "f").status().code(), absl::StatusCode::kPermissionDenied)
        << path;
  }
  EXPECT_TRUE(roots_->Resolve(root_ + "/d/ok.txt", "f").ok());
  ExpectAllInsideTheRoot();
}

TEST_F(FsAccessTest, ListingEscapesTouchesOnlyTheRoot) {
  EXPECT_EQ(List(FileUri(root_ + "/d")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(List(FileUri(root_ + "/g") + "/*.txt").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(List(FileUri(root_) + "/escape-*/*.txt").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(List(FileUri(root_) + "/../outside/*").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(List(FileUri(base_) + "/*/secret.txt").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(List(FileUri(root_ + "/escape-dir")).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(List(FileUri(root_ + "/d/ok.txt")).ok());
  ExpectAllInsideTheRoot();
}

TEST_F(FsAccessTest, InvokeCursorsTouchOnlyTheRoot) {
  for (const std::string& uri :
       {FileUri(root_ + "/escape-dir/secret.txt"), FileUri(root_ + "/rel.txt"),
        FileUri(root_ + "/../outside/secret.txt"), std::string("file:///etc/shadow")}) {
    eofaas::v1::DataCursor cursor;
    cursor.set_uri(uri);
    EXPECT_EQ(ValidateCursor(cursor, *roots_).code(), absl::StatusCode::kPermissionDenied) << uri;
  }
  eofaas::v1::DataCursor ok;
  ok.set_uri(FileUri(root_ + "/d/ok.txt"));
  EXPECT_TRUE(ValidateCursor(ok, *roots_).ok());
  ExpectAllInsideTheRoot();
}

// The recorder itself works: a plain stat outside is seen.
TEST_F(FsAccessTest, RecorderSeesCalls) {
  struct stat st;
  ASSERT_EQ(::lstat((outside_ + "/secret.txt").c_str(), &st), 0);
  recording = false;
  EXPECT_THAT(touched_, ::testing::Contains(outside_ + "/secret.txt"));
}

}  // namespace
}  // namespace eofaas::proxy
