#include "control/deploy/restart_backoff.h"

#include <algorithm>
#include <cmath>

namespace eofaas::control {

RestartBackoff::RestartBackoff(const RestartBackoffOptions& options, const common::Clock& clock)
    : options_(options), clock_(clock) {}

void RestartBackoff::RecordStart() {
  running_ = true;
  started_at_ = clock_.Now();
}

std::chrono::milliseconds RestartBackoff::RecordCrash() {
  const auto now = clock_.Now();
  if (running_ && now - started_at_ >= options_.reset_after) failures_ = 0;
  running_ = false;
  ++failures_;
  // In floating point first: a long crash history must not overflow the duration.
  const double delay_ms =
      std::min(options_.initial_delay.count() * std::pow(options_.multiplier, failures_ - 1),
               static_cast<double>(options_.max_delay.count()));
  const std::chrono::milliseconds delay(static_cast<int64_t>(delay_ms));
  next_start_ = now + delay;
  crashes_.push_back(now);
  while (now - crashes_.front() > options_.crash_loop_window) crashes_.pop_front();
  return delay;
}

bool RestartBackoff::MayStart() const { return clock_.Now() >= next_start_; }

bool RestartBackoff::CrashLooping() const {
  const auto now = clock_.Now();
  if (running_ && now - started_at_ >= options_.reset_after) return false;
  const auto recent = std::count_if(crashes_.begin(), crashes_.end(), [&](auto crashed_at) {
    return now - crashed_at <= options_.crash_loop_window;
  });
  return recent >= options_.crash_loop_crashes;
}

}  // namespace eofaas::control
