// SandboxedCommand: the bubblewrap command line and the unsandboxed fallback.
#include "control/deploy/sandbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>

#include "tests/support/temp_dir.h"

namespace eofaas::control {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

// True when `argv` holds the words of `option` in a row.
bool HasOption(const std::vector<std::string>& argv, const std::vector<std::string>& option) {
  return std::search(argv.begin(), argv.end(), option.begin(), option.end()) != argv.end();
}

class SandboxTest : public ::testing::Test {
 protected:
  SandboxRequest Request() const {
    return {{"/usr/bin/python3", "-B", "runtime/server.py"}, temp_.path().string(), {"/srv/data"}};
  }
  tests::TempDir temp_;
};

TEST_F(SandboxTest, WithoutSandboxRunsInTheBundleWithLimits) {
  auto spawn = SandboxedCommand(SandboxMode::kNone, Request());
  ASSERT_TRUE(spawn.ok()) << spawn.status();
  EXPECT_THAT(spawn->argv, ElementsAre("/usr/bin/python3", "-B", "runtime/server.py"));
  EXPECT_EQ(spawn->cwd, temp_.path().string());
  EXPECT_THAT(spawn->rlimits, Contains(std::pair<int, unsigned long>(RLIMIT_NOFILE, 4096)));
  EXPECT_THAT(spawn->rlimits, Contains(std::pair<int, unsigned long>(RLIMIT_CORE, 0)));
}

TEST_F(SandboxTest, BubblewrapConfinesTheCommand) {
  auto spawn = SandboxedCommand(SandboxMode::kBwrap, Request());
  ASSERT_TRUE(spawn.ok()) << spawn.status();
  const auto& argv = spawn->argv;
  EXPECT_EQ(argv.front(), "/usr/bin/bwrap");
  for (const char* flag :
       {"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"}) {
    EXPECT_THAT(argv, Contains(flag));
  }
  EXPECT_TRUE(HasOption(argv, {"--cap-drop", "ALL"}));
  EXPECT_TRUE(HasOption(argv, {"--ro-bind", "/usr", "/usr"}));
  EXPECT_TRUE(HasOption(argv, {"--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"}));
  EXPECT_TRUE(HasOption(argv, {"--ro-bind", temp_.path().string(), "/app"}));
  EXPECT_TRUE(HasOption(argv, {"--ro-bind-try", "/srv/data", "/srv/data"}));
  EXPECT_TRUE(HasOption(argv, {"--chdir", "/app"}));
  EXPECT_TRUE(HasOption(argv, {"--", "/usr/bin/python3", "-B", "runtime/server.py"}));
  // Replicas must outlive a control-plane crash and receive signals sent to their group.
  EXPECT_THAT(argv, Not(Contains("--die-with-parent")));
  EXPECT_THAT(argv, Not(Contains("--new-session")));
  EXPECT_THAT(argv, Not(Contains("/etc/shadow")));
  // Data roots are mounted after the /tmp tmpfs, so roots under /tmp stay visible.
  auto tmpfs = std::find(argv.begin(), argv.end(), "--tmpfs");
  auto data = std::find(argv.begin(), argv.end(), "/srv/data");
  EXPECT_LT(tmpfs, data);
}

// The proxy names files in cursors by their real paths: a root reached through a symlink is
// mounted at both.
TEST_F(SandboxTest, ADataRootThroughASymlinkIsAlsoMountedAtItsRealPath) {
  const std::string real = std::filesystem::canonical(temp_.path()).string() + "/data";
  std::filesystem::create_directories(real);
  std::filesystem::create_symlink(real, temp_.path() / "latest");
  const std::string link = (temp_.path() / "latest").string();
  SandboxRequest request = Request();
  request.data_roots = {link};
  auto spawn = SandboxedCommand(SandboxMode::kBwrap, request);
  ASSERT_TRUE(spawn.ok()) << spawn.status();
  EXPECT_TRUE(HasOption(spawn->argv, {"--ro-bind-try", link, link}));
  EXPECT_TRUE(HasOption(spawn->argv, {"--ro-bind-try", real, real}));
}

TEST_F(SandboxTest, MergedUsrDirectoriesBecomeSymlinks) {
  auto spawn = SandboxedCommand(SandboxMode::kBwrap, Request());
  ASSERT_TRUE(spawn.ok());
  for (const std::string dir : {"/bin", "/sbin", "/lib", "/lib64"}) {
    std::error_code error;
    if (std::filesystem::is_symlink(dir, error)) {
      EXPECT_TRUE(
          HasOption(spawn->argv, {"--symlink", std::filesystem::read_symlink(dir).string(), dir}))
          << dir;
    } else {
      EXPECT_TRUE(HasOption(spawn->argv, {"--ro-bind-try", dir, dir})) << dir;
    }
  }
}

TEST_F(SandboxTest, ProgramsResolveInTheBundleThenOnThePath) {
  temp_.Write("run.sh", "#!/bin/sh\n");
  std::filesystem::permissions(temp_ / "run.sh", std::filesystem::perms::owner_all);
  SandboxRequest request = Request();
  request.command = {"run.sh", "x"};
  auto bare = SandboxedCommand(SandboxMode::kNone, request);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_THAT(bare->argv, ElementsAre(temp_ / "run.sh", "x"));
  auto boxed = SandboxedCommand(SandboxMode::kBwrap, request);
  ASSERT_TRUE(boxed.ok()) << boxed.status();
  EXPECT_TRUE(HasOption(boxed->argv, {"--", "/app/run.sh", "x"}));

  request.command = {"sh", "-c", "true"};
  auto on_path = SandboxedCommand(SandboxMode::kNone, request);
  ASSERT_TRUE(on_path.ok()) << on_path.status();
  EXPECT_THAT(on_path->argv.front(), ::testing::EndsWith("/sh"));
}

TEST_F(SandboxTest, RejectsWhatCannotRun) {
  SandboxRequest request = Request();
  request.command.clear();
  EXPECT_EQ(SandboxedCommand(SandboxMode::kNone, request).status().code(),
            absl::StatusCode::kInvalidArgument);
  request = Request();
  request.command = {"no-such-program"};
  EXPECT_EQ(SandboxedCommand(SandboxMode::kBwrap, request).status().code(),
            absl::StatusCode::kFailedPrecondition);
  request = Request();
  request.bundle_dir = temp_ / "missing";
  EXPECT_EQ(SandboxedCommand(SandboxMode::kNone, request).status().code(),
            absl::StatusCode::kFailedPrecondition);
  request = Request();
  request.data_roots = {"relative/data"};
  EXPECT_EQ(SandboxedCommand(SandboxMode::kBwrap, request).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eofaas::control
