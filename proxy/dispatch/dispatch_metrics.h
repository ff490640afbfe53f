// The dispatcher's metrics, registered in the binary's Prometheus registry: retries by reason,
// ejections, and per function the invocations in flight and queued.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "proxy/dispatch/retry_policy.h"

namespace eofaas::proxy {

/// Thread-safe (prometheus-cpp metrics are). Every retry reason is pre-initialised to zero.
class DispatchMetrics {
 public:
  /// Keeps `registry` alive as long as the metrics.
  explicit DispatchMetrics(std::shared_ptr<prometheus::Registry> registry);

  /// The series of one function.
  struct FunctionGauges {
    prometheus::Gauge* in_flight = nullptr;
    prometheus::Gauge* queue_depth = nullptr;
  };
  /// The series of `function`, created at zero by the first holder. Every call must be matched
  /// by one ReleaseFunction; the series go away with the last holder.
  FunctionGauges AcquireFunction(const std::string& function);
  void ReleaseFunction(const std::string& function);

  void Retry(RetryReason reason) { retries_[static_cast<size_t>(reason)]->Increment(); }
  void Ejection() { ejections_.Increment(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::array<prometheus::Counter*, kRetryReasons.size()> retries_{};
  prometheus::Counter& ejections_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  struct Held {
    FunctionGauges gauges;
    int holders = 0;
  };
  std::mutex mu_;  // guards functions_
  absl::flat_hash_map<std::string, Held> functions_;
};

}  // namespace eofaas::proxy
