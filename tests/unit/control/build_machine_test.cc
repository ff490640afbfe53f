#include "control/build/build_machine.h"

#include <gtest/gtest.h>

#include "tests/fakes/fake_clock.h"

namespace eofaas::control {
namespace {

using enum eofaas::v1::BuildPhase;

TEST(BuildMachineTest, HappyPathRecordsDurationFromRendering) {
  fakes::FakeClock clock;
  BuildMachine build;
  EXPECT_EQ(build.phase(), BUILD_PHASE_PENDING);
  clock.Advance(std::chrono::seconds(5));  // queued time does not count
  ASSERT_TRUE(build.Transition(BUILD_PHASE_RENDERING, clock.Now()).ok());
  clock.Advance(std::chrono::milliseconds(250));
  ASSERT_TRUE(build.Transition(BUILD_PHASE_BUILDING, clock.Now()).ok());
  EXPECT_FALSE(build.DurationSeconds().has_value());
  clock.Advance(std::chrono::milliseconds(750));
  ASSERT_TRUE(build.Transition(BUILD_PHASE_SUCCEEDED, clock.Now()).ok());
  ASSERT_TRUE(build.DurationSeconds().has_value());
  EXPECT_DOUBLE_EQ(*build.DurationSeconds(), 1.0);
}

TEST(BuildMachineTest, RejectsSkippedAndBackwardSteps) {
  fakes::FakeClock clock;
  BuildMachine build;
  EXPECT_EQ(build.Transition(BUILD_PHASE_BUILDING, clock.Now()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(build.Transition(BUILD_PHASE_SUCCEEDED, clock.Now()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(build.phase(), BUILD_PHASE_PENDING);
  ASSERT_TRUE(build.Transition(BUILD_PHASE_RENDERING, clock.Now()).ok());
  EXPECT_FALSE(build.Transition(BUILD_PHASE_PENDING, clock.Now()).ok());
  EXPECT_EQ(build.phase(), BUILD_PHASE_RENDERING);
}

TEST(BuildMachineTest, FailureAndCancellationFromAnyUnfinishedPhase) {
  fakes::FakeClock clock;
  for (auto phase : {BUILD_PHASE_PENDING, BUILD_PHASE_RENDERING, BUILD_PHASE_BUILDING}) {
    EXPECT_TRUE(BuildMachine(phase).Transition(BUILD_PHASE_FAILED, clock.Now()).ok());
    EXPECT_TRUE(BuildMachine(phase).Transition(BUILD_PHASE_CANCELLED, clock.Now()).ok());
  }
}

TEST(BuildMachineTest, TerminalPhasesAreFinal) {
  fakes::FakeClock clock;
  for (auto phase : {BUILD_PHASE_SUCCEEDED, BUILD_PHASE_FAILED, BUILD_PHASE_CANCELLED}) {
    EXPECT_TRUE(IsTerminal(phase));
    BuildMachine build(phase);
    EXPECT_FALSE(build.Transition(BUILD_PHASE_CANCELLED, clock.Now()).ok());
    EXPECT_FALSE(build.Transition(BUILD_PHASE_RENDERING, clock.Now()).ok());
    EXPECT_EQ(build.phase(), phase);
  }
  EXPECT_FALSE(IsTerminal(BUILD_PHASE_BUILDING));
}

}  // namespace
}  // namespace eofaas::control
