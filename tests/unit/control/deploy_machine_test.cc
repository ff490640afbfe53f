#include "control/deploy/deploy_machine.h"

#include <gtest/gtest.h>

#include "tests/fakes/fake_clock.h"

namespace eofaas::control {
namespace {

using enum eofaas::v1::DeployPhase;
using std::chrono::milliseconds;
using std::chrono::seconds;

DeploymentObservation Observed(int64_t target, int64_t serving, int desired, int ready) {
  DeploymentObservation o;
  o.function = "f";
  o.target_generation = target;
  o.serving_generation = serving;
  o.desired = desired;
  o.running = desired;
  o.ready = ready;
  return o;
}

class DeployMachineTest : public ::testing::Test {
 protected:
  DeployPhase Judge(const DeployInputs& inputs) {
    machine_.Observe(inputs, clock_.Now());
    return machine_.phase();
  }
  // Judges an observation of exactly what was last applied.
  DeployPhase Judge(const DeploymentObservation& observation) {
    return Judge(Applied(observation));
  }
  static DeployInputs Applied(const DeploymentObservation& observation) {
    return DeployInputs{.deployed = true,
                        .generation = observation.target_generation,
                        .desired = observation.desired,
                        .observation = &observation};
  }

  fakes::FakeClock clock_;
  DeployMachine machine_{DEPLOY_PHASE_PENDING, seconds(60)};
};

TEST_F(DeployMachineTest, PendingUntilBuiltThenProgressingThenReady) {
  EXPECT_EQ(Judge(DeployInputs{}), DEPLOY_PHASE_PENDING);
  EXPECT_EQ(Judge(DeployInputs{.deployed = true, .generation = 1, .desired = 2}),
            DEPLOY_PHASE_PROGRESSING);
  EXPECT_EQ(machine_.message(), "applying generation 1 with 2 replicas");
  EXPECT_EQ(Judge(Observed(1, 1, 2, 1)), DEPLOY_PHASE_PROGRESSING);
  EXPECT_EQ(machine_.message(), "1/2 replicas of generation 1 ready");
  EXPECT_EQ(Judge(Observed(1, 1, 2, 2)), DEPLOY_PHASE_READY);
  EXPECT_EQ(machine_.message(), "");
}

TEST_F(DeployMachineTest, FirstBuildFailureIsFailedWithTheReason) {
  EXPECT_EQ(Judge(DeployInputs{.build_failure = "generation 1: SyntaxError"}), DEPLOY_PHASE_FAILED);
  EXPECT_EQ(machine_.message(), "generation 1: SyntaxError");
}

TEST_F(DeployMachineTest, ANewerFailedBuildKeepsTheServingGenerationReady) {
  auto ready = Observed(1, 1, 1, 1);
  EXPECT_EQ(Judge(ready), DEPLOY_PHASE_READY);
  DeployInputs failed = Applied(ready);
  failed.build_failure = "generation 2: x";
  EXPECT_EQ(Judge(failed), DEPLOY_PHASE_READY);
}

TEST_F(DeployMachineTest, CrashLoopIsDegradedWithTheReason) {
  auto observation = Observed(1, 1, 1, 0);
  observation.crash_looping = true;
  observation.reason = "CrashLoopBackOff: replica 0 exited with code 1: ImportError";
  EXPECT_EQ(Judge(observation), DEPLOY_PHASE_DEGRADED);
  EXPECT_EQ(machine_.message(), observation.reason);
}

TEST_F(DeployMachineTest, AFailedTargetIsFailedWithTheReasonAndRecovers) {
  auto observation = Observed(1, 1, 1, 0);
  observation.failed = true;
  observation.crash_looping = true;
  observation.reason = "pod fn-5jxks-7d9f-abcde: ImagePullBackOff: Back-off pulling image";
  EXPECT_EQ(Judge(observation), DEPLOY_PHASE_FAILED);
  EXPECT_EQ(machine_.message(), observation.reason);
  // A newer generation that the deployer has not reported on yet is progressing again.
  DeployInputs update = Applied(observation);
  update.generation = 2;
  EXPECT_EQ(Judge(update), DEPLOY_PHASE_PROGRESSING);
  EXPECT_EQ(Judge(Observed(2, 2, 1, 1)), DEPLOY_PHASE_READY);
}

TEST_F(DeployMachineTest, LosingAReplicaAfterReadyIsDegradedUntilBack) {
  EXPECT_EQ(Judge(Observed(1, 1, 2, 2)), DEPLOY_PHASE_READY);
  EXPECT_EQ(Judge(Observed(1, 1, 2, 1)), DEPLOY_PHASE_DEGRADED);
  EXPECT_EQ(Judge(Observed(1, 1, 2, 2)), DEPLOY_PHASE_READY);
}

TEST_F(DeployMachineTest, RolloutAndScaleUpAreProgressing) {
  EXPECT_EQ(Judge(Observed(1, 1, 1, 1)), DEPLOY_PHASE_READY);
  // Generation 2 is starting while generation 1 still serves.
  EXPECT_EQ(Judge(Observed(2, 1, 1, 0)), DEPLOY_PHASE_PROGRESSING);
  EXPECT_EQ(Judge(Observed(2, 2, 1, 1)), DEPLOY_PHASE_READY);
  EXPECT_EQ(Judge(Observed(2, 2, 3, 1)), DEPLOY_PHASE_PROGRESSING);
  EXPECT_EQ(Judge(Observed(2, 2, 3, 3)), DEPLOY_PHASE_READY);
}

TEST_F(DeployMachineTest, ProgressDeadlineTurnsProgressingIntoDegraded) {
  EXPECT_EQ(Judge(Observed(1, 1, 1, 0)), DEPLOY_PHASE_PROGRESSING);
  clock_.Advance(seconds(59));
  EXPECT_EQ(Judge(Observed(1, 1, 1, 0)), DEPLOY_PHASE_PROGRESSING);
  clock_.Advance(seconds(2));
  EXPECT_EQ(Judge(Observed(1, 1, 1, 0)), DEPLOY_PHASE_DEGRADED);
  EXPECT_EQ(machine_.message(), "0/1 replicas of generation 1 ready after 60s");
  // Stays degraded (no flapping back to PROGRESSING) until the replica is ready.
  clock_.Advance(milliseconds(500));
  EXPECT_EQ(Judge(Observed(1, 1, 1, 0)), DEPLOY_PHASE_DEGRADED);
  EXPECT_EQ(Judge(Observed(1, 1, 1, 1)), DEPLOY_PHASE_READY);
}

TEST_F(DeployMachineTest, AnObservationOfAnOlderApplyIsNotReady) {
  auto ready = Observed(1, 1, 1, 1);
  EXPECT_EQ(Judge(ready), DEPLOY_PHASE_READY);
  // Generation 2 applied, the deployer has not reported on it yet.
  DeployInputs update = Applied(ready);
  update.generation = 2;
  EXPECT_EQ(Judge(update), DEPLOY_PHASE_PROGRESSING);
  // Scaled to 3 replicas, the last report still says 1.
  DeployInputs scale = Applied(ready);
  scale.desired = 3;
  EXPECT_EQ(Judge(scale), DEPLOY_PHASE_PROGRESSING);
}

TEST_F(DeployMachineTest, DeletingWinsAndStays) {
  EXPECT_EQ(Judge(Observed(1, 1, 1, 1)), DEPLOY_PHASE_READY);
  EXPECT_EQ(Judge(DeployInputs{.deleting = true}), DEPLOY_PHASE_DELETING);
  auto ready = Observed(1, 1, 1, 1);
  EXPECT_EQ(Judge(ready), DEPLOY_PHASE_DELETING);
}

TEST_F(DeployMachineTest, ReportsWhetherAnythingChanged) {
  auto observation = Observed(1, 1, 1, 1);
  EXPECT_TRUE(
      machine_.Observe(DeployInputs{.deployed = true, .observation = &observation}, clock_.Now()));
  EXPECT_FALSE(
      machine_.Observe(DeployInputs{.deployed = true, .observation = &observation}, clock_.Now()));
}

}  // namespace
}  // namespace eofaas::control
