// Building blocks of the rendered objects: string scalars that stay strings, and the
// deterministic emitter behind ToYaml (render.h).
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::control::k8s {

/// A scalar that reads back as a string whatever it holds: ToYaml quotes it when its plain form
/// would be read as a number, a boolean or null ("8080", "yes", ""). Numbers and booleans are
/// made with YAML::Node(int) and YAML::Node(bool) and stay plain. Such a node carries the tag
/// "!", as yaml-cpp gives quoted scalars it loads.
YAML::Node String(absl::string_view value);

/// A sequence of String()s.
YAML::Node Strings(const std::vector<std::string>& values);

/// True when the plain scalar `value` would not be read back as a string by a YAML 1.1 or 1.2
/// reader (Kubernetes reads YAML 1.1): empty, null, a boolean word or anything number-like.
bool NeedsQuotes(absl::string_view value);

}  // namespace eofaas::control::k8s
