#include "control/k8s/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace eofaas::control::k8s {
namespace {

// common::DeploymentName's "-<5 chars>".
constexpr size_t kSuffixLength = 6;

bool IsLabelChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.'; }

}  // namespace

std::string RoleName(absl::string_view deployment_name, absl::string_view role) {
  absl::string_view base = deployment_name;
  absl::string_view suffix;
  if (deployment_name.size() > kSuffixLength) {
    base = deployment_name.substr(0, deployment_name.size() - kSuffixLength);
    suffix = deployment_name.substr(deployment_name.size() - kSuffixLength);
  }
  const size_t room = kMaxNameLength - suffix.size() - 1 - role.size();
  if (base.size() > room) base = base.substr(0, room);
  while (!base.empty() && base.back() == '-') base.remove_suffix(1);
  return absl::StrCat(base, suffix, "-", role);
}

bool IsLabelValue(absl::string_view value) {
  if (value.empty()) return true;
  if (value.size() > kMaxNameLength) return false;
  if (!absl::ascii_isalnum(value.front()) || !absl::ascii_isalnum(value.back())) return false;
  for (char c : value) {
    if (!IsLabelChar(c)) return false;
  }
  return true;
}

std::string SanitizeLabelValue(absl::string_view value) {
  std::string result(value.substr(0, kMaxNameLength));
  for (char& c : result) {
    if (!IsLabelChar(c)) c = '-';
  }
  size_t begin = 0;
  while (begin < result.size() && !absl::ascii_isalnum(result[begin])) ++begin;
  size_t end = result.size();
  while (end > begin && !absl::ascii_isalnum(result[end - 1])) --end;
  return result.substr(begin, end - begin);
}

std::string EscapeExpansion(absl::string_view value) {
  return absl::StrReplaceAll(value, {{"$", "$$"}});
}

}  // namespace eofaas::control::k8s
