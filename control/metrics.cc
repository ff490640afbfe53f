#include "control/metrics.h"

#include "absl/strings/ascii.h"

namespace eofaas::control {
namespace {

using eofaas::v1::DeployPhase;

std::string PhaseLabel(DeployPhase phase) {
  // DEPLOY_PHASE_READY → "ready"
  return absl::AsciiStrToLower(eofaas::v1::DeployPhase_Name(phase).substr(13));
}

}  // namespace

ControlMetrics::ControlMetrics(prometheus::Registry& registry,
                               const std::vector<std::string>& templates)
    : builds_(prometheus::BuildCounter()
                  .Name("eofaas_builds_total")
                  .Help("Builds that ended, by template and result.")
                  .Register(registry)),
      build_duration_(
          prometheus::BuildHistogram()
              .Name("eofaas_build_duration_seconds")
              .Help("Time from rendering to the end of a build.")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                               2.5, 5, 10, 30, 60, 120, 300})),
      desired_replicas_(prometheus::BuildGauge()
                            .Name("eofaas_autoscaler_desired_replicas")
                            .Help("Replicas the autoscaler wants for a function.")
                            .Register(registry)),
      observed_concurrency_(prometheus::BuildGauge()
                                .Name("eofaas_autoscaler_observed_concurrency")
                                .Help("In-flight and queued invocations the proxies observe for a "
                                      "function, averaged over the autoscaler's stable window.")
                                .Register(registry)) {
  for (const auto& name : templates) {
    for (const char* result : {"succeeded", "failed", "cancelled"}) {
      builds_.Add({{"template", name}, {"result", result}});
    }
  }
  auto& functions = prometheus::BuildGauge()
                        .Name("eofaas_functions")
                        .Help("Functions by deploy phase.")
                        .Register(registry);
  for (int i = eofaas::v1::DeployPhase_MIN + 1; i <= eofaas::v1::DeployPhase_MAX; ++i) {
    auto phase = static_cast<DeployPhase>(i);
    functions_[phase] = &functions.Add({{"deploy_phase", PhaseLabel(phase)}});
  }
}

void ControlMetrics::BuildFinished(const std::string& template_name, const std::string& result,
                                   std::optional<double> seconds) {
  builds_.Add({{"template", template_name}, {"result", result}}).Increment();
  if (seconds) build_duration_.Observe(*seconds);
}

void ControlMetrics::FunctionPhaseChanged(DeployPhase from, DeployPhase to) {
  if (from == to) return;
  if (auto it = functions_.find(from); it != functions_.end()) it->second->Decrement();
  if (auto it = functions_.find(to); it != functions_.end()) it->second->Increment();
}

void ControlMetrics::Autoscaled(const std::string& function, int desired_replicas,
                                double concurrency) {
  desired_replicas_.Add({{"function", function}}).Set(desired_replicas);
  observed_concurrency_.Add({{"function", function}}).Set(concurrency);
}

void ControlMetrics::AutoscalerForgot(const std::string& function) {
  // Add returns the existing series, which Remove then drops.
  desired_replicas_.Remove(&desired_replicas_.Add({{"function", function}}));
  observed_concurrency_.Remove(&observed_concurrency_.Add({{"function", function}}));
}

}  // namespace eofaas::control
