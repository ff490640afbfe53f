// Waiting in a test for what another thread or process brings about.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace eofaas::tests {

/// Polls `done` every 10 ms until it holds (true) or `timeout` has passed (false).
inline bool Eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace eofaas::tests
