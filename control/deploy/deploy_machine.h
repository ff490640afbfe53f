// The deploy state machine: PENDING → PROGRESSING → READY | DEGRADED | FAILED, and DELETING.
// It judges a function from what the deployer observes, the build outcome and the time spent
// progressing.
#pragma once

#include <chrono>
#include <string>

#include "common/clock.h"
#include "control/deploy/deployer.h"
#include "eofaas/v1/function.pb.h"

namespace eofaas::control {

using eofaas::v1::DeployPhase;

/// What the deploy phase is judged from.
struct DeployInputs {
  bool deleting = false;
  /// A built generation has been handed to the deployer: which one, with how many replicas.
  bool deployed = false;
  int64_t generation = 0;
  int desired = 0;
  /// Set when the newest generation's build failed; says why.
  std::string build_failure;
  /// Set when the deployer refused the deployment; says why.
  std::string deploy_failure;
  /// The deployer's latest observation; nullptr before the first one.
  const DeploymentObservation* observation = nullptr;
};

/// Not thread-safe: owned by the controller under its lock.
class DeployMachine {
 public:
  /// `progress_deadline`: how long replicas may take to become ready before DEGRADED.
  DeployMachine(DeployPhase phase, std::chrono::milliseconds progress_deadline)
      : phase_(phase), progress_deadline_(progress_deadline) {}

  /// Re-judges the phase; true when phase or message changed.
  bool Observe(const DeployInputs& inputs, common::Clock::TimePoint now);

  DeployPhase phase() const { return phase_; }
  /// Why the function is not READY; empty when it is.
  const std::string& message() const { return message_; }

 private:
  DeployPhase phase_;
  std::string message_;
  std::chrono::milliseconds progress_deadline_;
  // The rollout being waited for (target generation and replica count) and since when.
  int64_t rollout_generation_ = 0;
  int rollout_desired_ = 0;
  common::Clock::TimePoint rollout_since_{};
  // The rollout that last reached READY: losing replicas afterwards is DEGRADED, not PROGRESSING.
  int64_t ready_generation_ = 0;
  int ready_desired_ = 0;
};

}  // namespace eofaas::control
