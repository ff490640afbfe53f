// The ingress's metrics: every invocation's outcome and duration by function (Invoke calls and
// Map items alike), and Map items by outcome.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "proxy/dispatch/dispatcher.h"

namespace eofaas::proxy {

/// How one invocation ended, as the `outcome` label says it.
enum class InvocationOutcome {
  kSuccess,        ///< "success": the handler returned a result
  kFunctionError,  ///< "function_error": the handler reported an error
  kFailure,        ///< "failure": no replica answered (unavailable, deadline, queue full, ...)
  kCancelled,      ///< "cancelled": the caller went away
};
inline constexpr size_t kInvocationOutcomes = 4;

/// The outcome of `outcome`.
InvocationOutcome OutcomeOf(const InvokeOutcome& outcome);

/// Registers
///   eofaas_proxy_invocations_total{function,outcome}
///   eofaas_proxy_invocation_duration_seconds{function} (histogram)
///   eofaas_proxy_map_items_total{outcome}
/// A function's series are created (every outcome at zero) the first time it is dispatched to,
/// so only functions the dispatcher knew become label values; they are kept afterwards, so
/// counters never restart. Thread-safe.
class IngressMetrics {
 public:
  explicit IngressMetrics(prometheus::Registry& registry);

  /// The series of one function: stable pointers, valid as long as the metrics.
  struct FunctionSeries {
    std::array<prometheus::Counter*, kInvocationOutcomes> invocations{};
    prometheus::Histogram* duration = nullptr;
  };
  FunctionSeries Function(const std::string& function);

  /// Counts one invocation of the function of `series`.
  static void Invocation(const FunctionSeries& series, InvocationOutcome outcome,
                         std::chrono::nanoseconds duration);
  /// Counts one Map item.
  void MapItem(InvocationOutcome outcome) { map_items_[static_cast<size_t>(outcome)]->Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& invocations_;
  prometheus::Family<prometheus::Histogram>& durations_;
  std::array<prometheus::Counter*, kInvocationOutcomes> map_items_{};
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, FunctionSeries> functions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace eofaas::proxy
