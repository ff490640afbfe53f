// What the rendered objects of a function generation share: metadata (the recommended
// app.kubernetes.io labels, the eofaas.io labels and annotations, the selector of its pods),
// container parts (environment, resources, the restricted security context) and the errors of an
// inconsistent spec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "control/k8s/render.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::control::k8s {

inline constexpr absl::string_view kFunctionLabel = "eofaas.io/function";
inline constexpr absl::string_view kTemplateLabel = "eofaas.io/template";
inline constexpr absl::string_view kGenerationAnnotation = "eofaas.io/generation";
inline constexpr absl::string_view kUidAnnotation = "eofaas.io/uid";
/// app.kubernetes.io/component of a generation's replicas and of its build.
inline constexpr absl::string_view kFunctionComponent = "function";
inline constexpr absl::string_view kBuildComponent = "build";

/// The labels of an object of `generation` that plays `component`: app.kubernetes.io/name (the
/// function), instance (the deployment name), component, managed-by "eofaas", and
/// eofaas.io/function and eofaas.io/template; every value sanitised.
YAML::Node Labels(const FunctionGeneration& generation, absl::string_view component);

/// The labels that select the pods of one generation: eofaas.io/function and
/// app.kubernetes.io/instance.
YAML::Node SelectorLabels(const FunctionGeneration& generation);

/// eofaas.io/generation and eofaas.io/uid.
YAML::Node Annotations(const FunctionGeneration& generation);

/// {apiVersion, kind, metadata: {name, namespace, labels, annotations}}; annotations are left out
/// when `annotations` is not a map.
YAML::Node NewObject(absl::string_view api_version, absl::string_view kind, absl::string_view name,
                     absl::string_view namespace_name, YAML::Node labels,
                     YAML::Node annotations = YAML::Node());

/// {name, value} of a container's environment, `value` escaped from $(VAR) expansion.
YAML::Node EnvVar(absl::string_view name, absl::string_view value);

/// A container's command or args: Strings() escaped from $(VAR) expansion, so the process gets
/// `args` exactly.
YAML::Node Arguments(const std::vector<std::string>& args);

/// {requests, limits} of `resources`, each left out when empty.
YAML::Node ResourceRequirements(const Resources& resources);

/// A container's securityContext under the "restricted" Pod Security Standard, with a read-only
/// root filesystem: no privilege escalation, every capability dropped, non-root, seccomp
/// RuntimeDefault.
YAML::Node RestrictedSecurityContext();

/// `duration` in whole seconds, rounded up.
int64_t CeilSeconds(absl::Duration duration);

/// INVALID_ARGUMENT "<field>: <problem>".
absl::Status InvalidField(absl::string_view field, absl::string_view problem);

}  // namespace eofaas::control::k8s
