#include "proxy/discovery/static_endpoints.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/options.h"

namespace eofaas::proxy {
namespace {

// Beyond what any replica serves at once; the control plane allows 1000.
constexpr int kMaxConcurrency = 10000;

[[noreturn]] void Reject(const YAML::Node& node, const std::string& message) {
  throw YAML::Exception(node.Mark(), message);
}

// "host:port" or "[ipv6]:port", the port 1-65535.
bool IsHostPort(const std::string& address) {
  const std::optional<int> port = common::PortOf(address);
  return port && *port >= 1;
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
  if (!IsHostPort(replica.address)) {
    Reject(node, absl::StrCat("address: \"", replica.address,
                              "\" is not host:port (a port from 1 to 65535)"));
  }
  if (replica.concurrency < 1 || replica.concurrency > kMaxConcurrency) {
    Reject(node, absl::StrCat("concurrency: must be between 1 and ", kMaxConcurrency));
  }
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
    if (root.IsNull()) return functions;  // an empty file
    if (!root.IsMap()) Reject(root, "the file is a map with one key, functions");
    for (const auto& entry : root) {
      if (entry.first.as<std::string>() != "functions") {
        Reject(entry.first, absl::StrCat("unknown key \"", entry.first.as<std::string>(),
                                         "\" (known: functions)"));
      }
    }
    const YAML::Node listed = root["functions"];
    if (!listed.IsMap() && !listed.IsNull()) {
      Reject(listed, "functions: a map of function names to replica lists");
    }
    for (const auto& function : listed) {
      const auto name = function.first.as<std::string>();
      if (auto valid = common::ValidateFunctionName(name, "function name"); !valid.ok()) {
        Reject(function.first, std::string(valid.message()));
      }
      if (functions.contains(name)) Reject(function.first, "function " + name + " listed twice");
      if (!function.second.IsSequence() && !function.second.IsNull()) {
        Reject(function.second, name + ": a list of replicas ([] for none)");
      }
      auto& replicas = functions[name];
      for (const auto& node : function.second) {
        ReplicaInfo replica = ParseReplica(node);
        for (const ReplicaInfo& other : replicas) {
          if (other.address == replica.address) {
            Reject(node, absl::StrCat(name, ": replica ", replica.address, " listed twice"));
          }
        }
        replicas.push_back(std::move(replica));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("endpoints: ", path, ": ", e.what()));
  }
  return functions;
}

}  // namespace eofaas::proxy
