// Where discovered endpoints go: the dispatcher implements it; tests record what arrives.
#pragma once

#include <string_view>
#include <vector>

#include "proxy/dispatch/balancer.h"

namespace eofaas::proxy {

/// Receives the complete replica set of a function whenever it changes. Thread-safe.
class EndpointSink {
 public:
  virtual ~EndpointSink() = default;
  /// `function` exists with exactly `replicas` (possibly none).
  virtual void Update(std::string_view function, std::vector<ReplicaInfo> replicas) = 0;
  /// `function` no longer exists.
  virtual void Remove(std::string_view function) = 0;
};

}  // namespace eofaas::proxy
