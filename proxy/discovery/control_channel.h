// The proxy's channel to the control plane (endpoint watch, load reports).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace eofaas::proxy {

/// A new channel to `address`, for one attempt to stream: its own connection, none shared with
/// other channels. gRPC's reconnection backoff (growing to 2 min) lives in a channel and in the
/// connections channels share, so a stream opened on an old channel during a long outage fails
/// at once until that backoff ends, long after the control plane is back; a fresh channel
/// connects at once, and the caller's own backoff paces the attempts. Keepalive pings (as often
/// as the control plane's server allows) find a control plane that hangs without closing.
std::shared_ptr<grpc::Channel> ControlPlaneChannel(const std::string& address);

}  // namespace eofaas::proxy
