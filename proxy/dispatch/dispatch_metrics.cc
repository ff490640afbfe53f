#include "proxy/dispatch/dispatch_metrics.h"

namespace eofaas::proxy {

DispatchMetrics::DispatchMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      ejections_(prometheus::BuildCounter()
                     .Name("eofaas_proxy_ejections_total")
                     .Help("Replicas ejected from load balancing after consecutive failures.")
                     .Register(*registry_)
                     .Add({})),
      in_flight_(prometheus::BuildGauge()
                     .Name("eofaas_proxy_inflight")
                     .Help("Invocations running on a replica, by function.")
                     .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("eofaas_proxy_queue_depth")
                       .Help("Invocations waiting for a free replica, by function.")
                       .Register(*registry_)) {
  auto& retries = prometheus::BuildCounter()
                      .Name("eofaas_proxy_retries_total")
                      .Help("Invocation attempts retried on another replica, by reason.")
                      .Register(*registry_);
  for (RetryReason reason : kRetryReasons) {
    retries_[static_cast<size_t>(reason)] = &retries.Add({{"reason", RetryReasonLabel(reason)}});
  }
}

DispatchMetrics::FunctionGauges DispatchMetrics::AcquireFunction(const std::string& function) {
  std::lock_guard lock(mu_);
  Held& held = functions_[function];
  if (held.holders++ == 0) {
    held.gauges = {&in_flight_.Add({{"function", function}}),
                   &queue_depth_.Add({{"function", function}})};
  }
  return held.gauges;
}

void DispatchMetrics::ReleaseFunction(const std::string& function) {
  std::lock_guard lock(mu_);
  auto it = functions_.find(function);
  if (it == functions_.end() || --it->second.holders > 0) return;
  in_flight_.Remove(it->second.gauges.in_flight);
  queue_depth_.Remove(it->second.gauges.queue_depth);
  functions_.erase(it);
}

}  // namespace eofaas::proxy
