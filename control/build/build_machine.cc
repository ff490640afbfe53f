#include "control/build/build_machine.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace eofaas::control {
namespace {

using eofaas::v1::BuildPhase_Name;

bool Allowed(BuildPhase from, BuildPhase to) {
  using enum eofaas::v1::BuildPhase;
  if (IsTerminal(from)) return false;
  if (to == BUILD_PHASE_CANCELLED || to == BUILD_PHASE_FAILED) return true;
  switch (from) {
    case BUILD_PHASE_PENDING:
      return to == BUILD_PHASE_RENDERING;
    case BUILD_PHASE_RENDERING:
      return to == BUILD_PHASE_BUILDING;
    case BUILD_PHASE_BUILDING:
      return to == BUILD_PHASE_SUCCEEDED;
    default:
      return false;
  }
}

}  // namespace

bool IsTerminal(BuildPhase phase) {
  using enum eofaas::v1::BuildPhase;
  return phase == BUILD_PHASE_SUCCEEDED || phase == BUILD_PHASE_FAILED ||
         phase == BUILD_PHASE_CANCELLED;
}

absl::Status BuildMachine::Transition(BuildPhase next, common::Clock::TimePoint now) {
  if (!Allowed(phase_, next)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "build cannot go from ", BuildPhase_Name(phase_), " to ", BuildPhase_Name(next)));
  }
  if (next == BuildPhase::BUILD_PHASE_RENDERING) started_ = now;
  if (IsTerminal(next) && started_ != common::Clock::TimePoint{}) {
    duration_seconds_ = std::chrono::duration<double>(now - started_).count();
  }
  phase_ = next;
  return absl::OkStatus();
}

}  // namespace eofaas::control
