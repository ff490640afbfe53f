#include "control/deploy/deploy_machine.h"

#include "absl/strings/str_cat.h"

namespace eofaas::control {

bool DeployMachine::Observe(const DeployInputs& in, common::Clock::TimePoint now) {
  using enum eofaas::v1::DeployPhase;
  const DeployPhase old_phase = phase_;
  const std::string old_message = message_;
  message_.clear();
  const DeploymentObservation* obs = in.observation;
  if (in.deleting || phase_ == DEPLOY_PHASE_DELETING) {
    phase_ = DEPLOY_PHASE_DELETING;
  } else if (!in.deployed) {
    phase_ = in.build_failure.empty() ? DEPLOY_PHASE_PENDING : DEPLOY_PHASE_FAILED;
    message_ = in.build_failure.empty() ? "waiting for a successful build" : in.build_failure;
  } else if (!in.deploy_failure.empty()) {
    phase_ = DEPLOY_PHASE_FAILED;
    message_ = in.deploy_failure;
  } else if (obs == nullptr || obs->target_generation != in.generation ||
             obs->desired != in.desired) {
    // The deployer has not yet reported on what was last applied.
    phase_ = DEPLOY_PHASE_PROGRESSING;
    message_ = absl::StrCat("applying generation ", in.generation, " with ", in.desired,
                            in.desired == 1 ? " replica" : " replicas");
  } else if (obs->failed) {
    phase_ = DEPLOY_PHASE_FAILED;
    message_ = obs->reason;
  } else if (obs->crash_looping) {
    phase_ = DEPLOY_PHASE_DEGRADED;
    message_ = obs->reason;
  } else if (obs->ready >= obs->desired && obs->serving_generation == obs->target_generation) {
    phase_ = DEPLOY_PHASE_READY;
    ready_generation_ = obs->target_generation;
    ready_desired_ = obs->desired;
  } else {
    if (obs->target_generation != rollout_generation_ || obs->desired != rollout_desired_) {
      rollout_generation_ = obs->target_generation;
      rollout_desired_ = obs->desired;
      rollout_since_ = now;
    }
    std::string progress = absl::StrCat(obs->ready, "/", obs->desired, " replicas of generation ",
                                        obs->target_generation, " ready");
    const bool same_rollout =
        obs->target_generation == ready_generation_ && obs->desired <= ready_desired_;
    if (same_rollout && (phase_ == DEPLOY_PHASE_READY || phase_ == DEPLOY_PHASE_DEGRADED)) {
      phase_ = DEPLOY_PHASE_DEGRADED;
      message_ = progress;
    } else {
      phase_ = DEPLOY_PHASE_PROGRESSING;
      message_ = progress;
      if (now - rollout_since_ > progress_deadline_) {
        phase_ = DEPLOY_PHASE_DEGRADED;
        message_ = absl::StrCat(progress, " after ", progress_deadline_.count() / 1000, "s");
      }
    }
  }
  return phase_ != old_phase || message_ != old_message;
}

}  // namespace eofaas::control
