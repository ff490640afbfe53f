// Subscribers: the fan-out behind every watch stream (functions, build logs, endpoints).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace eofaas::control {

/// Thread-safe. Once Remove(id) returns, that sink is never called again, so a stream may free
/// itself right after removing its sink.
template <typename Event>
class Subscribers {
 public:
  using Sink = std::function<void(const Event&)>;

  uint64_t Add(Sink sink) {
    std::lock_guard lock(mu_);
    sinks_.emplace(next_id_, std::move(sink));
    return next_id_++;
  }

  void Remove(uint64_t id) {
    std::lock_guard lock(mu_);
    sinks_.erase(id);
  }

  /// Calls every sink in subscription order. Sinks must not block nor call Add/Remove.
  void Publish(const Event& event) {
    std::lock_guard lock(mu_);
    for (auto& [id, sink] : sinks_) sink(event);
  }

 private:
  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Sink> sinks_;
};

}  // namespace eofaas::control
