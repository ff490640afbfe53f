// Time as a dependency: production code asks a Clock, tests inject a fake one and move it.
#pragma once

#include <chrono>

namespace eofaas::common {

/// Monotonic time source. Implementations are thread-safe.
class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

/// The real steady clock.
class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  /// A process-wide instance for wiring code.
  static const Clock& Get() {
    static const SteadyClock clock;
    return clock;
  }
};

}  // namespace eofaas::common
