// Kubernetes naming rules for generated objects: names derived from a deployment name, and label
// values made valid.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace eofaas::control::k8s {

/// The longest name, and label value, Kubernetes accepts for the objects eofaas creates.
inline constexpr size_t kMaxNameLength = 63;

/// The name of an object playing `role` (e.g. "build") for a generation whose Deployment is
/// `deployment_name` (common::DeploymentName: "<base>-<5-char suffix>"): "<base>-<suffix>-<role>".
/// When that is longer than 63 characters, the base (the function's part) is cut, along with
/// any '-' it then ends with; the suffix, a hash of (uid, generation), is kept whole, so the
/// name stays unique per generation. A role holding a vowel never collides with a deployment
/// name, whose last five characters have none. `role` is a short RFC 1123 label.
std::string RoleName(absl::string_view deployment_name, absl::string_view role);

/// True for a valid label value: empty, or at most 63 of [A-Za-z0-9-_.] starting and ending
/// with a letter or digit.
bool IsLabelValue(absl::string_view value);

/// `value` made a valid label value: each character outside [A-Za-z0-9-_.] becomes '-', the
/// result is cut to 63 characters, then stripped of non-alphanumeric characters at both ends
/// (so a value of symbols only becomes empty). A valid value is returned unchanged.
std::string SanitizeLabelValue(absl::string_view value);

/// `value` with every '$' doubled, so that Kubernetes' $(VAR) expansion in env values, command
/// and args gives back `value` exactly.
std::string EscapeExpansion(absl::string_view value);

}  // namespace eofaas::control::k8s
