// Loopback helpers for local replicas: the /healthz probe of the replica protocol and the choice
// of a free port.
#pragma once

#include <chrono>

#include "absl/status/statusor.h"

namespace eofaas::control {

/// Sends `GET /healthz` to 127.0.0.1:`port` and returns the HTTP status code of the answer.
/// Blocks for at most `timeout` in total (connecting takes at most half of it). Errors:
/// UNAVAILABLE when nothing accepts on the port or the connection breaks, DEADLINE_EXCEEDED when
/// the replica does not answer in time, INTERNAL for a malformed answer. Thread-safe.
absl::StatusOr<int> ProbeHealth(int port,
                                std::chrono::milliseconds timeout = std::chrono::milliseconds(200));

/// A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close). Another
/// process may take it before the replica binds: the replica then fails and is restarted on
/// another port. Thread-safe.
absl::StatusOr<int> ReserveLoopbackPort();

}  // namespace eofaas::control
