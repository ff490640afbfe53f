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
  /// Whether `function` scales to zero: while it has no replica, its calls wait for one (within
  /// their deadline and the queue bound) instead of failing. Off unless said otherwise.
  virtual void SetScalesToZero(std::string_view function, bool scales_to_zero) = 0;
  /// `function` no longer exists.
  virtual void Remove(std::string_view function) = 0;
};

}  // namespace eofaas::proxy
