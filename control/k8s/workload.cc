// The workload of a function generation: Deployment, ClusterIP Service, and an autoscaling/v2
// HorizontalPodAutoscaler when the replica count may vary.
#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "control/k8s/parts.h"
#include "control/k8s/render.h"
#include "control/k8s/yaml.h"

namespace eofaas::control::k8s {
namespace {

// Every template's image listens here (DESIGN.md: 0.0.0.0:8080 in a pod).
constexpr int kReplicaPort = 8080;
constexpr absl::string_view kPortName = "http";
constexpr absl::string_view kBundleDir = "/app";
constexpr int kLivenessPeriodSeconds = 10;

int Seconds(absl::Duration duration) { return static_cast<int>(CeilSeconds(duration)); }

int Replicas(const WorkloadSpec& spec) { return std::max(spec.min_replicas, 1); }

bool Autoscales(const WorkloadSpec& spec) { return spec.max_replicas > Replicas(spec); }

absl::Status Validate(const FunctionGeneration& generation, const WorkloadSpec& spec) {
  if (generation.deployment_name.empty()) return InvalidField("deployment_name", "required");
  if (spec.image.empty()) return InvalidField("image", "required");
  if (spec.concurrency < 1) return InvalidField("concurrency", "must be at least 1");
  if (spec.min_replicas < 0) return InvalidField("min_replicas", "must not be negative");
  if (spec.max_replicas < spec.min_replicas) {
    return InvalidField("max_replicas", "must not be less than min_replicas");
  }
  if (Autoscales(spec) && spec.resources.cpu_request.empty()) {
    return InvalidField("resources.cpu_request", "required to autoscale on CPU");
  }
  if (spec.target_cpu_utilization < 1) {
    return InvalidField("target_cpu_utilization", "must be at least 1");
  }
  for (const auto& [name, value] : spec.env) {
    if (absl::StartsWith(name, "EOFAAS_")) {
      return InvalidField(absl::StrCat("env[", name, "]"), "the EOFAAS_ prefix is reserved");
    }
  }
  return absl::OkStatus();
}

YAML::Node Env(const FunctionGeneration& generation, const WorkloadSpec& spec) {
  YAML::Node env(YAML::NodeType::Sequence);
  env.push_back(EnvVar("EOFAAS_HOST", "0.0.0.0"));
  env.push_back(EnvVar("EOFAAS_PORT", absl::StrCat(kReplicaPort)));
  env.push_back(EnvVar("EOFAAS_CONCURRENCY", absl::StrCat(spec.concurrency)));
  env.push_back(EnvVar("EOFAAS_DRAIN_TIMEOUT_MS",
                       absl::StrCat(absl::ToInt64Milliseconds(spec.drain_timeout))));
  env.push_back(EnvVar("EOFAAS_FUNCTION", generation.function));
  env.push_back(EnvVar("EOFAAS_GENERATION", absl::StrCat(generation.generation)));
  env.push_back(EnvVar("EOFAAS_DEPLOYMENT", generation.deployment_name));
  for (const auto& [name, value] : spec.env) env.push_back(EnvVar(name, value));
  return env;
}

YAML::Node HealthProbe(int period_seconds, int failure_threshold) {
  YAML::Node probe;
  probe["httpGet"]["path"] = String("/healthz");
  probe["httpGet"]["port"] = String(kPortName);
  probe["periodSeconds"] = period_seconds;
  probe["timeoutSeconds"] = 1;
  probe["failureThreshold"] = failure_threshold;
  return probe;
}

YAML::Node Container(const FunctionGeneration& generation, const WorkloadSpec& spec) {
  YAML::Node container;
  container["name"] = String("function");
  container["image"] = String(spec.image);
  container["imagePullPolicy"] = String("IfNotPresent");
  if (!spec.run.empty()) container["args"] = Arguments(spec.run);
  container["workingDir"] = String(kBundleDir);
  container["env"] = Env(generation, spec);
  YAML::Node port;
  port["name"] = String(kPortName);
  port["containerPort"] = kReplicaPort;
  port["protocol"] = String("TCP");
  container["ports"].push_back(port);
  // Until the handler is loaded /healthz answers 503: the startup probe allows the progress
  // deadline for that. While draining it answers 503 too, so liveness gives up only after
  // longer than the drain takes.
  container["startupProbe"] = HealthProbe(1, std::max(Seconds(spec.progress_deadline), 1));
  container["readinessProbe"] = HealthProbe(2, 1);
  container["livenessProbe"] =
      HealthProbe(kLivenessPeriodSeconds,
                  std::max(3, Seconds(spec.drain_timeout) / kLivenessPeriodSeconds + 2));
  container["resources"] = ResourceRequirements(spec.resources);
  container["securityContext"] = RestrictedSecurityContext();
  YAML::Node tmp;
  tmp["name"] = String("tmp");
  tmp["mountPath"] = String("/tmp");
  container["volumeMounts"].push_back(tmp);
  return container;
}

YAML::Node PodSpec(const FunctionGeneration& generation, const WorkloadSpec& spec,
                   const RegistryConfig& registry) {
  YAML::Node pod;
  pod["automountServiceAccountToken"] = false;
  pod["enableServiceLinks"] = false;
  pod["terminationGracePeriodSeconds"] = Seconds(spec.drain_timeout) + 5;
  YAML::Node pull_secret;
  pull_secret["name"] = String(registry.secret_name);
  pod["imagePullSecrets"].push_back(pull_secret);
  pod["securityContext"]["runAsNonRoot"] = true;
  pod["securityContext"]["seccompProfile"]["type"] = String("RuntimeDefault");
  pod["containers"].push_back(Container(generation, spec));
  YAML::Node tmp;
  tmp["name"] = String("tmp");
  tmp["emptyDir"]["sizeLimit"] = String(spec.tmp_size_limit);
  pod["volumes"].push_back(tmp);
  return pod;
}

YAML::Node Deployment(const FunctionGeneration& generation, const WorkloadSpec& spec,
                      const RegistryConfig& registry) {
  YAML::Node deployment =
      NewObject("apps/v1", "Deployment", generation.deployment_name, generation.namespace_name,
                Labels(generation, kFunctionComponent), Annotations(generation));
  YAML::Node body;
  // With an HPA the replica count is its to set: an applied spec.replicas would fight it.
  if (!Autoscales(spec)) body["replicas"] = Replicas(spec);
  body["progressDeadlineSeconds"] = std::max(Seconds(spec.progress_deadline), 1);
  body["selector"]["matchLabels"] = SelectorLabels(generation);
  body["strategy"]["type"] = String("RollingUpdate");
  body["strategy"]["rollingUpdate"]["maxUnavailable"] = 0;
  body["strategy"]["rollingUpdate"]["maxSurge"] = 1;
  YAML::Node template_metadata;
  template_metadata["labels"] = Labels(generation, kFunctionComponent);
  template_metadata["annotations"] = Annotations(generation);
  body["template"]["metadata"] = template_metadata;
  body["template"]["spec"] = PodSpec(generation, spec, registry);
  deployment["spec"] = body;
  return deployment;
}

YAML::Node Service(const FunctionGeneration& generation) {
  YAML::Node service =
      NewObject("v1", "Service", generation.deployment_name, generation.namespace_name,
                Labels(generation, kFunctionComponent), Annotations(generation));
  YAML::Node body;
  body["type"] = String("ClusterIP");
  body["selector"] = SelectorLabels(generation);
  YAML::Node port;
  port["name"] = String(kPortName);
  port["port"] = kReplicaPort;
  port["targetPort"] = String(kPortName);
  port["protocol"] = String("TCP");
  body["ports"].push_back(port);
  service["spec"] = body;
  return service;
}

YAML::Node HorizontalPodAutoscaler(const FunctionGeneration& generation, const WorkloadSpec& spec) {
  YAML::Node hpa = NewObject("autoscaling/v2", "HorizontalPodAutoscaler",
                             generation.deployment_name, generation.namespace_name,
                             Labels(generation, kFunctionComponent), Annotations(generation));
  YAML::Node body;
  body["scaleTargetRef"]["apiVersion"] = String("apps/v1");
  body["scaleTargetRef"]["kind"] = String("Deployment");
  body["scaleTargetRef"]["name"] = String(generation.deployment_name);
  body["minReplicas"] = Replicas(spec);
  body["maxReplicas"] = spec.max_replicas;
  YAML::Node metric;
  metric["type"] = String("Resource");
  metric["resource"]["name"] = String("cpu");
  metric["resource"]["target"]["type"] = String("Utilization");
  metric["resource"]["target"]["averageUtilization"] = spec.target_cpu_utilization;
  body["metrics"].push_back(metric);
  hpa["spec"] = body;
  return hpa;
}

}  // namespace

absl::StatusOr<std::vector<YAML::Node>> RenderWorkload(const FunctionGeneration& generation,
                                                       const WorkloadSpec& spec,
                                                       const RegistryConfig& registry) {
  if (auto status = Validate(generation, spec); !status.ok()) return status;
  std::vector<YAML::Node> objects = {Deployment(generation, spec, registry), Service(generation)};
  if (Autoscales(spec)) objects.push_back(HorizontalPodAutoscaler(generation, spec));
  return objects;
}

}  // namespace eofaas::control::k8s
