// The eofaas_* metrics of the control plane, created once at start-up with every label value
// pre-initialised.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eofaas/v1/function.pb.h"

namespace eofaas::control {

/// Thread-safe (prometheus-cpp metrics are).
class ControlMetrics {
 public:
  ControlMetrics(prometheus::Registry& registry, const std::vector<std::string>& templates);

  /// `result`: "succeeded", "failed" or "cancelled".
  void BuildFinished(const std::string& template_name, const std::string& result,
                     std::optional<double> seconds);
  /// Moves one function between deploy-phase gauges (UNSPECIFIED means "none").
  void FunctionPhaseChanged(eofaas::v1::DeployPhase from, eofaas::v1::DeployPhase to);
  /// The autoscaler's latest decision for `function` and the concurrency it was made from.
  void Autoscaled(const std::string& function, int desired_replicas, double concurrency);
  /// Drops the series of a function the autoscaler no longer decides for (deleted, or scaled
  /// by hand).
  void AutoscalerForgot(const std::string& function);

 private:
  prometheus::Family<prometheus::Counter>& builds_;
  prometheus::Histogram& build_duration_;
  std::map<eofaas::v1::DeployPhase, prometheus::Gauge*> functions_;
  prometheus::Family<prometheus::Gauge>& desired_replicas_;
  prometheus::Family<prometheus::Gauge>& observed_concurrency_;
};

}  // namespace eofaas::control
