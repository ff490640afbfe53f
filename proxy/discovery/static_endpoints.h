// Endpoints from a YAML file (--endpoints): functions that run elsewhere, and benchmarks.
//
//   functions:
//     echo:
//       - address: 127.0.0.1:9001
//         concurrency: 64
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/dispatch/balancer.h"

namespace eofaas::proxy {

/// Reads the file; INVALID_ARGUMENT naming the file, line and key for anything else than the
/// shape above (unknown keys included), NOT_FOUND when it cannot be read.
absl::StatusOr<std::map<std::string, std::vector<ReplicaInfo>>> LoadStaticEndpoints(
    const std::string& path);

}  // namespace eofaas::proxy
