// The build state machine: PENDING → RENDERING → BUILDING → SUCCEEDED | FAILED, and CANCELLED
// from any unfinished phase when a newer generation supersedes the build.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "common/clock.h"
#include "eofaas/v1/function.pb.h"

namespace eofaas::control {

using eofaas::v1::BuildPhase;

bool IsTerminal(BuildPhase phase);

/// The phase of one generation's build and when it started. Not thread-safe: owned by the
/// controller under its lock.
class BuildMachine {
 public:
  /// Starts in `phase` (PENDING for a new build, or the phase read back from the store).
  explicit BuildMachine(BuildPhase phase = BuildPhase::BUILD_PHASE_PENDING) : phase_(phase) {}

  BuildPhase phase() const { return phase_; }

  /// Moves to `next`. FAILED_PRECONDITION (and no change) when the transition is not allowed.
  /// Entering RENDERING starts the build's clock.
  absl::Status Transition(BuildPhase next, common::Clock::TimePoint now);

  /// Seconds from RENDERING to the terminal phase, once the build has ended after rendering.
  std::optional<double> DurationSeconds() const { return duration_seconds_; }

 private:
  BuildPhase phase_;
  common::Clock::TimePoint started_{};
  std::optional<double> duration_seconds_;
};

}  // namespace eofaas::control
