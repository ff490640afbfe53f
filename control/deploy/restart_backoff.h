// Restart policy of one replica slot: exponential delay between restarts, reset after a stable
// run, and the crash-loop verdict the deployer reports.
#pragma once

#include <chrono>
#include <deque>

#include "common/clock.h"

namespace eofaas::control {

struct RestartBackoffOptions {
  /// Delay before the first restart; each further crash multiplies it, up to `max_delay`.
  std::chrono::milliseconds initial_delay{100};
  double multiplier = 2.0;
  std::chrono::milliseconds max_delay{10'000};
  /// A replica that ran this long before crashing starts over at `initial_delay`, and one that has
  /// been running this long is no longer crash-looping.
  std::chrono::milliseconds reset_after{30'000};
  /// Crash-looping: at least `crash_loop_crashes` crashes within `crash_loop_window`.
  int crash_loop_crashes = 3;
  std::chrono::milliseconds crash_loop_window{60'000};
};

/// Crash history of one replica slot. Not thread-safe; `clock` must outlive it.
class RestartBackoff {
 public:
  RestartBackoff(const RestartBackoffOptions& options, const common::Clock& clock);

  /// The replica started now.
  void RecordStart();

  /// The replica ended (or failed to start) now, without being asked to. Returns the delay before
  /// the next start.
  std::chrono::milliseconds RecordCrash();

  /// True once the delay of the last crash has passed (always true before any crash).
  bool MayStart() const;

  /// When the next start is allowed.
  common::Clock::TimePoint next_start() const { return next_start_; }

  /// True when the slot crashed often enough within the window and is not now in a stable run.
  bool CrashLooping() const;

 private:
  const RestartBackoffOptions options_;
  const common::Clock& clock_;
  /// Consecutive crashes since the last reset: the exponent of the delay.
  int failures_ = 0;
  bool running_ = false;
  common::Clock::TimePoint started_at_{};
  common::Clock::TimePoint next_start_{};
  /// Crash times within the crash-loop window, oldest first.
  std::deque<common::Clock::TimePoint> crashes_;
};

}  // namespace eofaas::control
