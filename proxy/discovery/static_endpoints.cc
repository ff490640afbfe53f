#include "proxy/discovery/static_endpoints.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/names.h"

namespace eofaas::proxy {
namespace {

[[noreturn]] void Reject(const YAML::Node& node, const std::string& message) {
  throw YAML::Exception(node.Mark(), message);
}

ReplicaInfo ParseReplica(const YAML::Node& node) {
  if (!node.IsMap()) Reject(node, "a replica is a map with address and concurrency");
  ReplicaInfo replica;
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (key == "address") {
      replica.address = entry.second.as<std::string>();
    } else if (key == "concurrency") {
      replica.concurrency = entry.second.as<int>();
    } else {
      Reject(entry.first, absl::StrCat("unknown key \"", key, "\" (known: address, concurrency)"));
    }
  }
  if (replica.address.find(':') == std::string::npos) {
    Reject(node, "address: host:port required");
  }
  if (replica.concurrency < 1) Reject(node, "concurrency: must be at least 1");
  return replica;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::vector<ReplicaInfo>>> LoadStaticEndpoints(
    const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("endpoints: cannot read ", path));
  }
  std::map<std::string, std::vector<ReplicaInfo>> functions;
  try {
    YAML::Node root = YAML::LoadFile(path);
    for (const auto& entry : root) {
      if (entry.first.as<std::string>() != "functions") {
        Reject(entry.first, absl::StrCat("unknown key \"", entry.first.as<std::string>(),
                                         "\" (known: functions)"));
      }
    }
    for (const auto& function : root["functions"]) {
      const auto name = function.first.as<std::string>();
      if (auto valid = common::ValidateFunctionName(name, "function name"); !valid.ok()) {
        Reject(function.first, std::string(valid.message()));
      }
      auto& replicas = functions[name];
      for (const auto& replica : function.second) replicas.push_back(ParseReplica(replica));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("endpoints: ", path, ": ", e.what()));
  }
  return functions;
}

}  // namespace eofaas::proxy
