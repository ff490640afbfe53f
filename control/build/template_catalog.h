// The templates eofaas can wrap user code in, read from <templates_dir>/<name>/template.yaml.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "eofaas/v1/provision.pb.h"

namespace eofaas::control {

/// One template: how to check a function's sources, install their dependencies and run a replica.
struct Template {
  /// A dependency manifest the template recognises among a function's files, and the command
  /// that installs what it lists into the bundle. All empty when the template has none.
  struct Dependencies {
    /// A file name in function/, e.g. "requirements.txt".
    std::string manifest;
    /// Where the command installs, relative to function/ (e.g. ".deps"); never checked.
    std::string directory;
    /// Run from the bundle root with three more arguments: function/<manifest>,
    /// function/<directory> and an empty scratch directory on the same file system.
    std::vector<std::string> command;
  };

  std::string name;
  std::string language;
  std::string description;
  std::string handler_file;
  std::string handler_signature;
  /// Replica command, relative paths resolved against the bundle root.
  std::vector<std::string> run;
  /// The language's own check, run on every user file with one of `check_extensions`.
  std::vector<std::string> check_command;
  std::vector<std::string> check_extensions;
  Dependencies dependencies;
  int concurrency = 1;
  std::string image;
  /// Directory holding template.yaml and the runtime files copied into every bundle.
  std::string dir;

  eofaas::v1::Template ToProto() const;
};

/// Immutable after Load; safe to share between threads.
class TemplateCatalog {
 public:
  /// Reads every <dir>/*/template.yaml. INVALID_ARGUMENT naming the file and key for unknown or
  /// missing keys; NOT_FOUND when `dir` holds no template.
  static absl::StatusOr<std::unique_ptr<TemplateCatalog>> Load(const std::string& dir);

  /// nullptr when there is no template of that name.
  const Template* Find(absl::string_view name) const;
  /// Sorted by name.
  std::vector<const Template*> All() const;

 private:
  std::map<std::string, Template, std::less<>> templates_;
};

}  // namespace eofaas::control
