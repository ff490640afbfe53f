#include "control/build/template_catalog.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace eofaas::control {
namespace {

namespace fs = std::filesystem;

// Every key template.yaml may hold; anything else is a typo the author should hear about.
const std::set<std::string> kTopKeys = {"name",  "language",     "description", "handler", "run",
                                        "check", "dependencies", "concurrency", "image"};
const std::set<std::string> kHandlerKeys = {"file", "signature"};
const std::set<std::string> kCheckKeys = {"command", "extensions"};
const std::set<std::string> kDependenciesKeys = {"manifest", "directory", "command"};

void RejectUnknownKeys(const YAML::Node& node, const std::set<std::string>& known,
                       const std::string& where) {
  for (const auto& entry : node) {
    auto key = entry.first.as<std::string>();
    if (!known.count(key)) {
      throw YAML::Exception(entry.first.Mark(),
                            absl::StrCat("unknown key \"", where, key,
                                         "\" (known: ", absl::StrJoin(known, ", "), ")"));
    }
  }
}

YAML::Node Required(const YAML::Node& node, const std::string& key) {
  YAML::Node value = node[key];
  if (!value) throw YAML::Exception(node.Mark(), absl::StrCat("missing key \"", key, "\""));
  return value;
}

bool IsFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && !absl::StrContains(name, '/');
}

// The normal form ("a/b") of a path inside function/; empty for function/ itself or a path that
// leaves it. The builder compares it with the paths it walks.
std::string InsideFunctionDir(const std::string& path) {
  std::string normal(absl::StripSuffix(fs::path(path).lexically_normal().string(), "/"));
  if (normal == "." || normal == ".." || absl::StartsWith(normal, "../") ||
      absl::StartsWith(normal, "/")) {
    return "";
  }
  return normal;
}

Template::Dependencies ParseDependencies(const YAML::Node& node) {
  RejectUnknownKeys(node, kDependenciesKeys, "dependencies.");
  Template::Dependencies dependencies;
  dependencies.manifest = Required(node, "manifest").as<std::string>();
  if (!IsFileName(dependencies.manifest)) {
    throw YAML::Exception(node["manifest"].Mark(), "dependencies.manifest: must be a file name");
  }
  dependencies.directory = InsideFunctionDir(Required(node, "directory").as<std::string>());
  if (dependencies.directory.empty() || dependencies.directory == dependencies.manifest) {
    throw YAML::Exception(node["directory"].Mark(),
                          "dependencies.directory: must be a directory inside function/");
  }
  dependencies.command = Required(node, "command").as<std::vector<std::string>>();
  if (dependencies.command.empty()) {
    throw YAML::Exception(node["command"].Mark(), "dependencies.command: empty command");
  }
  return dependencies;
}

Template Parse(const YAML::Node& root, const fs::path& dir) {
  RejectUnknownKeys(root, kTopKeys, "");
  Template t;
  t.name = Required(root, "name").as<std::string>();
  t.language = Required(root, "language").as<std::string>();
  t.description = Required(root, "description").as<std::string>();
  YAML::Node handler = Required(root, "handler");
  RejectUnknownKeys(handler, kHandlerKeys, "handler.");
  t.handler_file = Required(handler, "file").as<std::string>();
  t.handler_signature = Required(handler, "signature").as<std::string>();
  t.run = Required(root, "run").as<std::vector<std::string>>();
  if (YAML::Node check = root["check"]) {
    RejectUnknownKeys(check, kCheckKeys, "check.");
    t.check_command = Required(check, "command").as<std::vector<std::string>>();
    t.check_extensions = Required(check, "extensions").as<std::vector<std::string>>();
  }
  if (YAML::Node dependencies = root["dependencies"]) {
    t.dependencies = ParseDependencies(dependencies);
  }
  t.concurrency = Required(root, "concurrency").as<int>();
  if (YAML::Node image = root["image"]) t.image = image.as<std::string>();
  t.dir = dir.string();
  if (t.name != dir.filename().string()) {
    throw YAML::Exception(root["name"].Mark(),
                          absl::StrCat("name \"", t.name, "\" differs from its directory"));
  }
  if (t.run.empty()) throw YAML::Exception(root["run"].Mark(), "run: empty command");
  if (t.concurrency < 1) {
    throw YAML::Exception(root["concurrency"].Mark(), "concurrency: must be at least 1");
  }
  return t;
}

}  // namespace

eofaas::v1::Template Template::ToProto() const {
  eofaas::v1::Template proto;
  proto.set_name(name);
  proto.set_language(language);
  proto.set_description(description);
  proto.set_handler_file(handler_file);
  proto.set_handler_signature(handler_signature);
  proto.set_default_concurrency(concurrency);
  return proto;
}

absl::StatusOr<std::unique_ptr<TemplateCatalog>> TemplateCatalog::Load(const std::string& dir) {
  auto catalog = std::make_unique<TemplateCatalog>();
  std::error_code error;
  fs::directory_iterator entries(dir, error);
  if (error) {
    return absl::NotFoundError(absl::StrCat("templates dir ", dir, ": ", error.message()));
  }
  for (const auto& entry : entries) {
    fs::path file = entry.path() / "template.yaml";
    if (!entry.is_directory() || !fs::exists(file)) continue;
    try {
      Template t = Parse(YAML::LoadFile(file.string()), entry.path());
      catalog->templates_.emplace(t.name, std::move(t));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", e.what()));
    }
  }
  if (catalog->templates_.empty()) {
    return absl::NotFoundError(absl::StrCat("no template.yaml under ", dir));
  }
  return catalog;
}

const Template* TemplateCatalog::Find(absl::string_view name) const {
  auto it = templates_.find(name);
  return it == templates_.end() ? nullptr : &it->second;
}

std::vector<const Template*> TemplateCatalog::All() const {
  std::vector<const Template*> all;
  for (const auto& [name, t] : templates_) all.push_back(&t);
  return all;
}

}  // namespace eofaas::control
