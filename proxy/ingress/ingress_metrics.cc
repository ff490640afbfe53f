#include "proxy/ingress/ingress_metrics.h"

namespace eofaas::proxy {
namespace {

constexpr std::array<const char*, kInvocationOutcomes> kOutcomeLabels = {
    "success", "function_error", "failure", "cancelled"};

}  // namespace

InvocationOutcome OutcomeOf(const InvokeOutcome& outcome) {
  if (outcome.status.ok()) {
    return outcome.error ? InvocationOutcome::kFunctionError : InvocationOutcome::kSuccess;
  }
  return absl::IsCancelled(outcome.status) ? InvocationOutcome::kCancelled
                                           : InvocationOutcome::kFailure;
}

IngressMetrics::IngressMetrics(prometheus::Registry& registry)
    : invocations_(prometheus::BuildCounter()
                       .Name("eofaas_proxy_invocations_total")
                       .Help("Invocations that ended (Invoke calls and Map items), by function "
                             "and outcome.")
                       .Register(registry)),
      durations_(prometheus::BuildHistogram()
                     .Name("eofaas_proxy_invocation_duration_seconds")
                     .Help("Time from dispatch to the end of an invocation, retries included.")
                     .Register(registry)) {
  auto& map_items = prometheus::BuildCounter()
                        .Name("eofaas_proxy_map_items_total")
                        .Help("Map items that ended, by outcome.")
                        .Register(registry);
  for (size_t i = 0; i < kInvocationOutcomes; ++i) {
    map_items_[i] = &map_items.Add({{"outcome", kOutcomeLabels[i]}});
  }
}

IngressMetrics::FunctionSeries IngressMetrics::Function(const std::string& function) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = functions_.try_emplace(function);
  if (inserted) {
    for (size_t i = 0; i < kInvocationOutcomes; ++i) {
      it->second.invocations[i] =
          &invocations_.Add({{"function", function}, {"outcome", kOutcomeLabels[i]}});
    }
    it->second.duration = &durations_.Add(
        {{"function", function}},
        prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                0.5, 1, 2.5, 5, 10, 30, 60, 300});
  }
  return it->second;
}

void IngressMetrics::Invocation(const FunctionSeries& series, InvocationOutcome outcome,
                                std::chrono::nanoseconds duration) {
  series.invocations[static_cast<size_t>(outcome)]->Increment();
  series.duration->Observe(std::chrono::duration<double>(duration).count());
}

}  // namespace eofaas::proxy
