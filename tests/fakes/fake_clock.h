// A Clock that only moves when a test says so.
#pragma once

#include <atomic>
#include <chrono>

#include "common/clock.h"

namespace eofaas::fakes {

/// Starts at an arbitrary fixed point. Thread-safe.
class FakeClock final : public common::Clock {
 public:
  TimePoint Now() const override { return TimePoint(Duration(now_.load())); }

  /// Moves time forward by `d`.
  void Advance(std::chrono::nanoseconds d) {
    now_.fetch_add(std::chrono::duration_cast<Duration>(d).count());
  }

 private:
  using Duration = TimePoint::duration;
  std::atomic<Duration::rep> now_{
      std::chrono::duration_cast<Duration>(std::chrono::hours(1000)).count()};
};

}  // namespace eofaas::fakes
