// Child processes: what a child inherits, how Run ends when descendants outlive the command, and
// how a process group is watched.
#include "common/subprocess.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

namespace eofaas::common {
namespace {

using ::testing::HasSubstr;
using tests::Eventually;

SpawnOptions Shell(const std::string& script) {
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.env = {"PATH=/usr/bin:/bin"};
  return options;
}

// The pid a script printed on its last output line.
pid_t LastLinePid(const std::string& output) {
  std::vector<std::string> lines = absl::StrSplit(output, '\n', absl::SkipWhitespace());
  pid_t pid = 0;
  if (lines.empty() || !absl::SimpleAtoi(lines.back(), &pid)) return 0;
  return pid;
}

bool Running(pid_t pid) {
  auto stat = ReadProcStat(pid);
  return stat && !stat->zombie();
}

// Kills a process the test started but cannot reap (its parent has gone).
class KillOnExit {
 public:
  explicit KillOnExit(pid_t pid) : pid_(pid) {}
  ~KillOnExit() {
    if (pid_ > 0) kill(pid_, SIGKILL);
  }

 private:
  pid_t pid_;
};

TEST(SpawnTest, ChildInheritsNoDescriptorIgnoredSignalOrSignalMask) {
  const int leaked = open("/dev/null", O_RDONLY);  // no O_CLOEXEC
  ASSERT_GE(leaked, 3);
  struct sigaction ignore = {};
  struct sigaction previous = {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &previous);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);

  SpawnOptions list_fds;
  list_fds.argv = {"/bin/ls", "/proc/self/fd"};
  auto fds = common::Run(list_fds, absl::Seconds(10));
  SpawnOptions show_signals;
  show_signals.argv = {"/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"};
  auto signals = common::Run(show_signals, absl::Seconds(10));

  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPIPE, &previous, nullptr);
  close(leaked);
  ASSERT_TRUE(fds.ok()) << fds.status();
  EXPECT_EQ(fds->output, "0\n1\n2\n3\n") << "3 is the directory ls reads";
  ASSERT_TRUE(signals.ok()) << signals.status();
  EXPECT_EQ(signals->output, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST(SpawnTest, MissingProgramIsReported) {
  SpawnOptions options;
  options.argv = {"/no/such/program"};
  auto pid = Spawn(options);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(pid.status().message(), HasSubstr("No such file or directory"));
}

TEST(RunTest, CollectsOutputAndExitCode) {
  auto result = common::Run(Shell("echo out; echo err >&2; exit 3"), absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->signal, 0);
  EXPECT_EQ(result->output, "out\nerr\n");
  EXPECT_FALSE(result->timed_out);
}

TEST(RunTest, ReturnsSoonAfterTheCommandEvenWhenADetachedDescendantHoldsItsOutput) {
  const auto start = std::chrono::steady_clock::now();
  auto result = common::Run(Shell("setsid sleep 30 & echo $!"), absl::Seconds(20));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(result.ok()) << result.status();
  KillOnExit detached(LastLinePid(result->output));
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_FALSE(result->timed_out);
  EXPECT_GT(LastLinePid(result->output), 0) << result->output;
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(RunTest, TimeoutEndsTheRunEvenWhenADetachedDescendantHoldsItsOutput) {
  const auto start = std::chrono::steady_clock::now();
  auto result = common::Run(Shell("setsid sleep 30 & echo $!; sleep 30"), absl::Milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(result.ok()) << result.status();
  KillOnExit detached(LastLinePid(result->output));
  EXPECT_TRUE(result->timed_out);
  EXPECT_EQ(result->signal, SIGKILL);
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(RunTest, TimeoutHoldsForACommandThatClosedItsOutput) {
  const auto start = std::chrono::steady_clock::now();
  auto result = common::Run(Shell("exec >/dev/null 2>&1; sleep 30"), absl::Milliseconds(300));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(RunTest, CancelKillsTheCommand) {
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  auto result = common::Run(Shell("sleep 30"), absl::Seconds(20), &cancel);
  canceller.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->cancelled);
  EXPECT_EQ(result->signal, SIGKILL);
}

TEST(RunTest, WhatTheCommandLeftInItsGroupIsKilled) {
  auto result = common::Run(Shell("sleep 30 & echo $!"), absl::Seconds(20));
  ASSERT_TRUE(result.ok()) << result.status();
  const pid_t straggler = LastLinePid(result->output);
  ASSERT_GT(straggler, 0) << result->output;
  KillOnExit cleanup(straggler);
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_TRUE(Eventually([&] { return !Running(straggler); }));
}

TEST(ProcessGroupAliveTest, FollowsAGroupThatOutlivesItsLeader) {
  tests::TempDir temp;
  SpawnOptions options = Shell("sleep 30 & echo $!");
  options.output_path = temp / "out";
  auto leader = Spawn(options);
  ASSERT_TRUE(leader.ok()) << leader.status();
  ASSERT_EQ(waitpid(*leader, nullptr, 0), *leader);
  std::string output;
  ASSERT_TRUE(Eventually([&] {
    std::ifstream(temp / "out") >> output;
    return !output.empty();
  }));
  pid_t member = 0;
  ASSERT_TRUE(absl::SimpleAtoi(output, &member)) << output;
  KillOnExit cleanup(member);

  pid_t live_member = 0;
  EXPECT_TRUE(ProcessGroupAlive(*leader, &live_member));
  EXPECT_EQ(live_member, member) << "found by a scan, remembered for the next call";
  EXPECT_TRUE(ProcessGroupAlive(*leader, &live_member));
  EXPECT_TRUE(ProcessGroupAlive(*leader)) << "the same answer without the hint";

  kill(member, SIGKILL);
  EXPECT_TRUE(Eventually([&] { return !ProcessGroupAlive(*leader, &live_member); }));
  EXPECT_FALSE(ProcessGroupAlive(*leader));
}

}  // namespace
}  // namespace eofaas::common
