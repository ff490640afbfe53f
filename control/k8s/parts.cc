#include "control/k8s/parts.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "control/k8s/names.h"
#include "control/k8s/yaml.h"

namespace eofaas::control::k8s {
namespace {

YAML::Node Quantities(absl::string_view cpu, absl::string_view memory) {
  YAML::Node quantities(YAML::NodeType::Map);
  if (!cpu.empty()) quantities["cpu"] = String(cpu);
  if (!memory.empty()) quantities["memory"] = String(memory);
  return quantities;
}

}  // namespace

YAML::Node Labels(const FunctionGeneration& generation, absl::string_view component) {
  YAML::Node labels;
  labels["app.kubernetes.io/name"] = String(SanitizeLabelValue(generation.function));
  labels["app.kubernetes.io/instance"] = String(SanitizeLabelValue(generation.deployment_name));
  labels["app.kubernetes.io/component"] = String(component);
  labels["app.kubernetes.io/managed-by"] = String("eofaas");
  labels[std::string(kFunctionLabel)] = String(SanitizeLabelValue(generation.function));
  labels[std::string(kTemplateLabel)] = String(SanitizeLabelValue(generation.template_name));
  return labels;
}

YAML::Node SelectorLabels(const FunctionGeneration& generation) {
  YAML::Node labels;
  labels[std::string(kFunctionLabel)] = String(SanitizeLabelValue(generation.function));
  labels["app.kubernetes.io/instance"] = String(SanitizeLabelValue(generation.deployment_name));
  return labels;
}

YAML::Node Annotations(const FunctionGeneration& generation) {
  YAML::Node annotations;
  annotations[std::string(kGenerationAnnotation)] = String(absl::StrCat(generation.generation));
  annotations[std::string(kUidAnnotation)] = String(generation.uid);
  return annotations;
}

YAML::Node NewObject(absl::string_view api_version, absl::string_view kind, absl::string_view name,
                     absl::string_view namespace_name, YAML::Node labels, YAML::Node annotations) {
  YAML::Node object;
  object["apiVersion"] = String(api_version);
  object["kind"] = String(kind);
  YAML::Node metadata;
  metadata["name"] = String(name);
  metadata["namespace"] = String(namespace_name);
  metadata["labels"] = labels;
  if (annotations.IsMap()) metadata["annotations"] = annotations;
  object["metadata"] = metadata;
  return object;
}

YAML::Node EnvVar(absl::string_view name, absl::string_view value) {
  YAML::Node var;
  var["name"] = String(name);
  var["value"] = String(EscapeExpansion(value));
  return var;
}

YAML::Node Arguments(const std::vector<std::string>& args) {
  YAML::Node node(YAML::NodeType::Sequence);
  for (const auto& arg : args) node.push_back(String(EscapeExpansion(arg)));
  return node;
}

YAML::Node ResourceRequirements(const Resources& resources) {
  YAML::Node requirements(YAML::NodeType::Map);
  YAML::Node requests = Quantities(resources.cpu_request, resources.memory_request);
  if (requests.size() > 0) requirements["requests"] = requests;
  YAML::Node limits = Quantities(resources.cpu_limit, resources.memory_limit);
  if (limits.size() > 0) requirements["limits"] = limits;
  return requirements;
}

YAML::Node RestrictedSecurityContext() {
  YAML::Node context;
  context["allowPrivilegeEscalation"] = false;
  context["readOnlyRootFilesystem"] = true;
  context["runAsNonRoot"] = true;
  context["capabilities"]["drop"] = Strings({"ALL"});
  context["seccompProfile"]["type"] = String("RuntimeDefault");
  return context;
}

int64_t CeilSeconds(absl::Duration duration) {
  return absl::ToInt64Seconds(absl::Ceil(duration, absl::Seconds(1)));
}

absl::Status InvalidField(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

}  // namespace eofaas::control::k8s
