#include "control/validation.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/names.h"

namespace eofaas::control {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

bool IsEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name.front())) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateFilePath(absl::string_view path, absl::string_view field) {
  if (path.empty()) return Invalid(field, "empty file path");
  if (path.front() == '/') return Invalid(field, absl::StrCat("\"", path, "\" is absolute"));
  if (path.size() > 255) return Invalid(field, "path longer than 255 characters");
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment == "..") return Invalid(field, absl::StrCat("\"", path, "\" contains \"..\""));
    if (segment.empty() || segment == ".") {
      return Invalid(field, absl::StrCat("\"", path, "\" has an empty or \".\" segment"));
    }
  }
  for (char c : path) {
    if (c == '\0' || c == '\\') {
      return Invalid(field, absl::StrCat("\"", path, "\" contains a NUL byte or backslash"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateReplicas(int32_t min_replicas, int32_t max_replicas, const Limits& limits,
                              absl::string_view prefix) {
  if (min_replicas < 0)
    return Invalid(absl::StrCat(prefix, "min_replicas"), "must not be negative");
  if (max_replicas < 0)
    return Invalid(absl::StrCat(prefix, "max_replicas"), "must not be negative");
  if (max_replicas != 0 && min_replicas > max_replicas) {
    return Invalid(absl::StrCat(prefix, "min_replicas"),
                   absl::StrCat(min_replicas, " is greater than max_replicas ", max_replicas));
  }
  int32_t effective_max = max_replicas != 0 ? max_replicas : min_replicas;
  if (effective_max > limits.max_replicas) {
    return Invalid(absl::StrCat(prefix, max_replicas != 0 ? "max_replicas" : "min_replicas"),
                   absl::StrCat(effective_max, " exceeds the limit of ", limits.max_replicas));
  }
  return absl::OkStatus();
}

absl::Status ValidateFunction(const eofaas::v1::Function& function,
                              const TemplateCatalog& templates, const Limits& limits) {
  if (auto status = common::ValidateFunctionName(function.name(), "function.name"); !status.ok()) {
    return status;
  }
  if (function.template_().empty()) return Invalid("function.template", "required");
  const Template* tmpl = templates.Find(function.template_());
  if (tmpl == nullptr) {
    std::vector<std::string> names;
    for (const Template* t : templates.All()) names.push_back(t->name);
    return Invalid("function.template",
                   absl::StrCat("unknown template \"", function.template_(),
                                "\" (known: ", absl::StrJoin(names, ", "), ")"));
  }
  if (function.files().empty()) return Invalid("function.files", "at least one file is required");
  int64_t total = 0;
  for (const auto& [path, content] : function.files()) {
    if (auto status = ValidateFilePath(path, absl::StrCat("function.files[", path, "]"));
        !status.ok()) {
      return status;
    }
    total += static_cast<int64_t>(path.size() + content.size());
  }
  // A file may not also be a directory of another ("lib" and "lib/util.py"): in the sorted
  // paths, such a pair stands next to each other's prefix.
  std::vector<std::string> paths;
  for (const auto& [path, content] : function.files()) paths.push_back(path);
  std::sort(paths.begin(), paths.end());
  for (size_t i = 0; i + 1 < paths.size(); ++i) {
    for (size_t j = i + 1; j < paths.size() && absl::StartsWith(paths[j], paths[i]); ++j) {
      if (paths[j][paths[i].size()] == '/') {
        return Invalid(absl::StrCat("function.files[", paths[i], "]"),
                       absl::StrCat("is a file and also the directory of ", paths[j]));
      }
    }
  }
  for (const auto& [name, value] : function.env()) total += name.size() + value.size();
  if (total > limits.max_source_bytes) {
    return Invalid("function.files",
                   absl::StrCat("files and env take ", total, " bytes, over the limit of ",
                                limits.max_source_bytes, " bytes"));
  }
  if (!function.files().contains(tmpl->handler_file)) {
    return Invalid("function.files",
                   absl::StrCat("template ", tmpl->name, " needs ", tmpl->handler_file, " (",
                                tmpl->handler_signature, ")"));
  }
  for (const auto& [name, value] : function.env()) {
    std::string field = absl::StrCat("function.env[", name, "]");
    if (!IsEnvName(name))
      return Invalid(field, "not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)");
    if (absl::StartsWith(name, "EOFAAS_")) return Invalid(field, "the EOFAAS_ prefix is reserved");
    if (absl::StrContains(value, '\0')) return Invalid(field, "value contains a NUL byte");
  }
  const auto& scaling = function.scaling();
  if (auto status = ValidateReplicas(scaling.min_replicas(), scaling.max_replicas(), limits,
                                     "function.scaling.");
      !status.ok()) {
    return status;
  }
  if (scaling.target_concurrency() < 0 || scaling.target_concurrency() > limits.max_concurrency) {
    return Invalid("function.scaling.target_concurrency",
                   absl::StrCat("must be between 0 and ", limits.max_concurrency));
  }
  return absl::OkStatus();
}

}  // namespace eofaas::control
