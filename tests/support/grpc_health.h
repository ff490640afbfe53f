// grpc.health.v1.Health/Check from tests.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace eofaas::tests {

/// The serving status of `service` ("" for the whole server): 1 SERVING, 2 NOT_SERVING,
/// 0 UNKNOWN, or -1 when the call failed.
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "");

}  // namespace eofaas::tests
