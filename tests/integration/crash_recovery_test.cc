// kill -9 of eofaas-control at awkward moments, then a restart on the same data dir: every
// function converges again with nothing lost or duplicated.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/subprocess.h"
#include "tests/support/control_plane.h"
#include "tests/support/temp_dir.h"

namespace eofaas::tests {
namespace {

namespace fs = std::filesystem;
using namespace eofaas::v1;

// The pid written to `path`; 0 until it is there.
pid_t PidIn(const std::string& path) {
  pid_t pid = 0;
  std::ifstream(path) >> pid;
  return pid;
}

// A zombie has ended: only the reaping is missing, which is its parent's business (init's here).
bool Running(pid_t pid) {
  auto stat = common::ReadProcStat(pid);
  return stat && !stat->zombie();
}

class CrashRecoveryTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && plane_) std::cerr << "control plane log:\n" << plane_->Log();
    // A test that failed after a kill may leave replicas no control plane will drain.
    std::string instance = plane_ ? plane_->instance() : "";
    plane_.reset();
    if (!instance.empty()) KillReplicaGroups(instance);
  }

  void Start(bool slow_builds) {
    StartWith(slow_builds ? SlowBuildTemplates(dir_ / "templates")
                          : EOFAAS_SOURCE_DIR "/templates");
  }

  void StartWith(const std::string& templates_dir) {
    plane_.reset();
    ControlPlaneOptions options{
        .data_dir = dir_ / "data", .templates_dir = templates_dir, .flags = {"--drain_timeout=3s"}};
    auto plane = ControlPlane::Start(options);
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = std::move(*plane);
  }

  void Create(const Function& function) {
    CreateFunctionRequest request;
    *request.mutable_function() = function;
    CreateFunctionResponse response;
    grpc::Status status = plane_->provision().CreateFunction(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  std::vector<std::string> Names() {
    ListFunctionsResponse response;
    EXPECT_TRUE(plane_->provision().ListFunctions(Context().get(), {}, &response).ok());
    std::vector<std::string> names;
    for (const auto& f : response.functions()) names.push_back(f.name());
    return names;
  }

  std::vector<std::string> Addresses(const std::string& name) {
    auto context = Context();
    auto reader = plane_->endpoints().WatchEndpoints(context.get(), {});
    WatchEndpointsResponse response;
    std::vector<std::string> addresses;
    if (reader->Read(&response)) {
      for (const auto& f : response.functions()) {
        if (f.function() != name) continue;
        for (const auto& r : f.replicas()) addresses.push_back(r.address());
      }
    }
    context->TryCancel();
    std::sort(addresses.begin(), addresses.end());
    return addresses;
  }

  // Waits until the replica groups of this control plane are exactly `expected`.
  void ExpectGroupsSettleTo(const std::vector<std::string>& expected) {
    for (int i = 0; i < 500 && ReplicaGroups(plane_->instance()) != expected; ++i) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_EQ(ReplicaGroups(plane_->instance()), expected);
  }

  TempDir dir_;
  std::unique_ptr<ControlPlane> plane_;
};

TEST_F(CrashRecoveryTest, KillDuringBuildsThenRestartRunsThemAgain) {
  Start(/*slow_builds=*/true);
  for (const char* name : {"alpha", "beta", "gamma"}) Create(ExampleFunction(name));
  auto building = plane_->WaitFor(
      "alpha", [](const Function& f) { return f.status().build_phase() == BUILD_PHASE_BUILDING; });
  ASSERT_TRUE(building.ok()) << building.status();
  plane_->Kill();

  Start(/*slow_builds=*/true);
  for (const char* name : {"alpha", "beta", "gamma"}) {
    auto ready = plane_->WaitReady(name);
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_EQ(ready->status().generation(), 1);
    EXPECT_EQ(ready->status().build_phase(), BUILD_PHASE_SUCCEEDED);
  }
  EXPECT_EQ(Names(), (std::vector<std::string>{"alpha", "beta", "gamma"}));
  ExpectGroupsSettleTo({"alpha/1", "beta/1", "gamma/1"});

  std::string log = absl::StrJoin(plane_->BuildLog("alpha"), "\n");
  EXPECT_TRUE(absl::StrContains(log, "running it again")) << log;
  EXPECT_TRUE(absl::StrContains(log, "build succeeded")) << log;
}

TEST_F(CrashRecoveryTest, KillDuringBuildThenRestartKillsItsCommandsBeforeRunningItAgain) {
  // The first check writes its pid, starts a child that would run for five minutes, writes the
  // child's pid and waits for it; the check run again after the restart passes at once.
  const std::string first = dir_ / "first-check";
  const std::string templates = SlowBuildTemplates(
      dir_ / "templates", absl::StrCat("if mkdir ", first, " 2>/dev/null; then echo $$ > ", first,
                                       "/step; sleep 300 & echo $! > ", first, "/child; wait; fi"));
  StartWith(templates);
  Create(ExampleFunction("orphaned"));
  pid_t step = 0;
  pid_t child = 0;
  // However the test ends, the first check does not outlive it.
  absl::Cleanup kill_check = [&step, &child] {
    for (pid_t pid : {step, child}) {
      if (pid > 0 && Running(pid)) kill(pid, SIGKILL);
    }
  };
  for (int i = 0; i < 1500 && (step == 0 || child == 0); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    step = PidIn(first + "/step");
    child = PidIn(first + "/child");
  }
  ASSERT_GT(step, 0);
  ASSERT_GT(child, 0);
  plane_->Kill();
  ASSERT_TRUE(Running(child)) << "the check's child ended with the control plane";

  StartWith(templates);
  // Gone once the restarted control plane serves, so before the build runs again.
  EXPECT_FALSE(Running(step)) << "the check left by the crash still runs, pid " << step;
  EXPECT_FALSE(Running(child)) << "the child of that check still runs, pid " << child;
  auto ready = plane_->WaitReady("orphaned");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status().build_phase(), BUILD_PHASE_SUCCEEDED);
  std::string log = absl::StrJoin(plane_->BuildLog("orphaned"), "\n");
  EXPECT_TRUE(absl::StrContains(log, "running it again")) << log;
}

TEST_F(CrashRecoveryTest, KillDuringRolloutThenRestartFinishesIt) {
  Start(/*slow_builds=*/false);
  Create(ExampleFunction("rollout"));
  ASSERT_TRUE(plane_->WaitReady("rollout").ok());

  // Generation 2 takes 1.5 s to import: the crash lands while it is starting.
  Function next = ExampleFunction("rollout");
  (*next.mutable_files())["handler.py"] =
      "import time\ntime.sleep(1.5)\n\ndef handle(data, ctx):\n    return 'two'\n";
  UpdateFunctionRequest request;
  *request.mutable_function() = next;
  UpdateFunctionResponse response;
  ASSERT_TRUE(plane_->provision().UpdateFunction(Context().get(), request, &response).ok());
  auto progressing = plane_->WaitFor("rollout", [](const Function& f) {
    return f.status().generation() == 2 && f.status().build_phase() == BUILD_PHASE_SUCCEEDED &&
           f.status().deploy_phase() == DEPLOY_PHASE_PROGRESSING;
  });
  ASSERT_TRUE(progressing.ok()) << progressing.status();
  EXPECT_EQ(progressing->status().observed_generation(), 1);
  plane_->Kill();

  Start(/*slow_builds=*/false);
  auto ready = plane_->WaitReady("rollout", 1, 2);
  ASSERT_TRUE(ready.ok()) << ready.status();
  ExpectGroupsSettleTo({"rollout/2"});
  EXPECT_EQ(Addresses("rollout").size(), 1u);
}

TEST_F(CrashRecoveryTest, ReplicasSurviveACrashAndAreAdopted) {
  Start(/*slow_builds=*/false);
  Function function = ExampleFunction("adopted");
  function.mutable_scaling()->set_min_replicas(2);
  Create(function);
  ASSERT_TRUE(plane_->WaitReady("adopted", 2).ok());
  std::vector<std::string> before = Addresses("adopted");
  ASSERT_EQ(before.size(), 2u);
  plane_->Kill();

  Start(/*slow_builds=*/false);
  auto ready = plane_->WaitReady("adopted", 2);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status().restarts(), 0);
  EXPECT_EQ(Addresses("adopted"), before);
  ExpectGroupsSettleTo({"adopted/1", "adopted/1"});
}

TEST_F(CrashRecoveryTest, ReplicaOutputThatIsNotUtf8SurvivesARestart) {
  Start(/*slow_builds=*/false);
  Function raw = ExampleFunction("raw");
  (*raw.mutable_files())["handler.py"] = "import os\nos.write(2, b'caf\\xe9\\n')\nos._exit(3)\n";
  Create(raw);
  auto degraded = plane_->WaitFor(
      "raw", [](const Function& f) { return f.status().deploy_phase() == DEPLOY_PHASE_DEGRADED; });
  ASSERT_TRUE(degraded.ok()) << degraded.status();
  EXPECT_TRUE(absl::StrContains(degraded->status().message(), "caf\xEF\xBF\xBD"));
  plane_->Kill();
  Start(/*slow_builds=*/false);
  EXPECT_EQ(Names(), std::vector<std::string>{"raw"});
}

TEST_F(CrashRecoveryTest, KillWhileDeletingThenRestartFinishesTheDeletion) {
  Start(/*slow_builds=*/false);
  Function slow = ExampleFunction("doomed");
  (*slow.mutable_files())["handler.py"] =
      "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\n"
      "def handle(data, ctx):\n    return 1\n";
  Create(slow);
  ASSERT_TRUE(plane_->WaitReady("doomed").ok());
  DeleteFunctionRequest request;
  request.set_name("doomed");
  DeleteFunctionResponse response;
  ASSERT_TRUE(plane_->provision().DeleteFunction(Context().get(), request, &response).ok());
  EXPECT_EQ(response.function().status().deploy_phase(), DEPLOY_PHASE_DELETING);
  plane_->Kill();

  Start(/*slow_builds=*/false);
  ASSERT_TRUE(plane_->WaitGone("doomed").ok());  // the deletion finishes after the restart
  EXPECT_TRUE(Names().empty());
  ExpectGroupsSettleTo({});
}

}  // namespace
}  // namespace eofaas::tests
