// The build context archive, unpacked by tar as the build Job's init container unpacks it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "common/subprocess.h"
#include "control/k8s/render.h"
#include "tests/support/temp_dir.h"

namespace eofaas::control::k8s {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// A bundle as LocalBuilder renders it: the template's files, the user's under function/.
void WriteBundle(const tests::TempDir& dir) {
  dir.Write("Dockerfile", "FROM python:3.11-slim\nCOPY . /app\n");
  dir.Write("template.yaml", "name: python3\n");
  dir.Write("runtime/server.py", "print('serve')\n");
  dir.Write("function/handler.py", "def handle(data, ctx):\n    return b''\n");
  dir.Write("function/__pycache__/handler.cpython-311.pyc", "stale byte code");
  dir.Write("build/install.sh", "#!/bin/sh\n");
  fs::permissions(dir / "build/install.sh", fs::perms::owner_exec, fs::perm_options::add);
}

// Unpacks `archive` with tar into `into`; returns tar's output when it fails.
std::string Untar(const std::string& archive, const tests::TempDir& scratch, const fs::path& into) {
  const std::string file = scratch.Write("context.tar.gz", archive);
  fs::create_directories(into);
  auto result = common::Run(
      {.argv = {"/bin/tar", "-xzf", file, "-C", into.string()}, .env = {"PATH=/usr/bin:/bin"}},
      absl::Seconds(30));
  if (!result.ok()) return result.status().ToString();
  return result->ok() ? "" : result->output;
}

TEST(BuildContextArchiveTest, TarUnpacksTheBundleWithoutByteCode) {
  tests::TempDir bundle, scratch;
  WriteBundle(bundle);
  auto archive = ArchiveBuildContext(bundle.path().string());
  ASSERT_TRUE(archive.ok()) << archive.status();
  const fs::path out = scratch.path() / "out";
  ASSERT_EQ(Untar(*archive, scratch, out), "");
  for (const char* file :
       {"Dockerfile", "template.yaml", "runtime/server.py", "function/handler.py"}) {
    EXPECT_EQ(Read(out / file), Read(bundle / file)) << file;
  }
  EXPECT_FALSE(fs::exists(out / "function/__pycache__"));
  EXPECT_NE(fs::status(out / "build/install.sh").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  EXPECT_EQ(fs::status(out / "runtime/server.py").permissions() & fs::perms::owner_exec,
            fs::perms::none);
}

TEST(BuildContextArchiveTest, SameBundleSameBytesWhateverTheFileTimes) {
  tests::TempDir bundle;
  WriteBundle(bundle);
  auto first = ArchiveBuildContext(bundle.path().string());
  ASSERT_TRUE(first.ok()) << first.status();
  fs::last_write_time(bundle / "runtime/server.py",
                      fs::file_time_type::clock::now() - std::chrono::hours(24 * 365));
  auto second = ArchiveBuildContext(bundle.path().string());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, *second);
}

TEST(BuildContextArchiveTest, LongPathsUseTheUstarPrefix) {
  tests::TempDir bundle, scratch;
  WriteBundle(bundle);
  const std::string deep = "function/" + std::string(90, 'd') + "/" + std::string(90, 'f') + ".py";
  bundle.Write(deep, "x = 1\n");
  auto archive = ArchiveBuildContext(bundle.path().string());
  ASSERT_TRUE(archive.ok()) << archive.status();
  const fs::path out = scratch.path() / "out";
  ASSERT_EQ(Untar(*archive, scratch, out), "");
  EXPECT_EQ(Read(out / deep), "x = 1\n");
}

TEST(BuildContextArchiveTest, APathNoUstarHeaderHoldsIsRejected) {
  tests::TempDir bundle;
  WriteBundle(bundle);
  bundle.Write("function/" + std::string(200, 'n') + ".py", "x = 1\n");
  auto archive = ArchiveBuildContext(bundle.path().string());
  ASSERT_FALSE(archive.ok());
  EXPECT_EQ(archive.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BuildContextArchiveTest, ABundleWithoutDockerfileIsRejected) {
  tests::TempDir bundle;
  bundle.Write("function/handler.py", "");
  auto archive = ArchiveBuildContext(bundle.path().string());
  ASSERT_FALSE(archive.ok());
  EXPECT_EQ(archive.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(archive.status().message(), "Dockerfile")) << archive.status();
}

// The templates' own bundles fit a ConfigMap many times over, so the ConfigMap is the default.
TEST(BuildContextArchiveTest, ATemplateBundleFitsAConfigMap) {
  tests::TempDir bundle;
  for (const auto& entry :
       fs::recursive_directory_iterator(std::string(EOFAAS_SOURCE_DIR) + "/templates/python3")) {
    if (!entry.is_regular_file()) continue;
    bundle.Write(entry.path()
                     .lexically_relative(std::string(EOFAAS_SOURCE_DIR) + "/templates/python3")
                     .string(),
                 Read(entry.path()));
  }
  bundle.Write("function/handler.py", "def handle(data, ctx):\n    return b''\n");
  auto archive = ArchiveBuildContext(bundle.path().string());
  ASSERT_TRUE(archive.ok()) << archive.status();
  EXPECT_LT(archive->size(), kMaxConfigMapBytes / 4);
}

}  // namespace
}  // namespace eofaas::control::k8s
