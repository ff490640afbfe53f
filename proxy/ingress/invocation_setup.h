// How the ingress sets up one invocation: a fresh id, and a deadline that honours the caller's.
#pragma once

#include <grpcpp/server_context.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace eofaas::proxy {

using SteadyTime = std::chrono::steady_clock::time_point;

/// A random id of 32 hex digits, held without an allocation of its own.
class RequestId {
 public:
  /// A fresh one. Thread-safe.
  static RequestId New();
  std::string_view view() const { return {digits_, sizeof(digits_)}; }

 private:
  RequestId() = default;
  char digits_[32];
};

/// The caller's deadline on the steady clock; nullopt when the caller set none.
std::optional<SteadyTime> CallerDeadline(const grpc::CallbackServerContext& context);

/// The deadline of an invocation starting at `now`: `now + timeout` bounded by the caller's
/// deadline; without a timeout (zero) the caller's deadline, and without either
/// `now + default_timeout`.
SteadyTime InvocationDeadline(std::optional<SteadyTime> caller, absl::Duration timeout,
                              absl::Duration default_timeout, SteadyTime now);

/// `duration` as a google.protobuf.Duration.
template <typename Duration>
void SetDuration(std::chrono::nanoseconds duration, Duration* out) {
  out->set_seconds(duration.count() / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(duration.count() % 1'000'000'000));
}

}  // namespace eofaas::proxy
