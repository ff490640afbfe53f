// Names: validation of user-chosen function names and the generated resource names of DESIGN.md.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace eofaas::common {

/// Longest function name a user may choose: leaves room for "-<5 chars>" and prefixes.
inline constexpr size_t kMaxFunctionNameLength = 40;

/// True for an RFC 1123 label: 1-63 of [a-z0-9-], starting and ending alphanumeric.
bool IsRfc1123Label(absl::string_view name);

/// OK, or INVALID_ARGUMENT naming `field` when `name` is not an RFC 1123 label of at most
/// kMaxFunctionNameLength characters.
absl::Status ValidateFunctionName(absl::string_view name, absl::string_view field);

/// Five characters over the alphabet Kubernetes uses for generateName, derived from a stable
/// 64-bit hash of (uid, generation).
std::string NameSuffix(absl::string_view uid, int64_t generation);

/// The RFC 1035 name of a function generation's deployment: "<name>-<suffix>". A name that starts
/// with a digit gets the prefix "fn-" so the result starts with a letter; the result is cut to 63
/// characters keeping the suffix, so it stays unique per (uid, generation).
std::string DeploymentName(absl::string_view function_name, absl::string_view uid,
                           int64_t generation);

}  // namespace eofaas::common
