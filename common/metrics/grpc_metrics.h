// gRPC server metrics with the names and labels of go-grpc-prometheus, so that its dashboards and
// alerts work unchanged: a server interceptor counts every RPC of the known methods.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "prometheus/registry.h"

namespace eofaas::common {

/// The grpc_type label.
enum class GrpcType { kUnary, kClientStream, kServerStream, kBidiStream };

/// One RPC method as the metrics label it.
struct GrpcMethod {
  std::string service;  // full proto name, "eofaas.v1.Provision"
  std::string method;   // "GetFunction"
  GrpcType type;
};

/// Every method of `service`, typed from its streaming flags.
std::vector<GrpcMethod> MethodsOf(const google::protobuf::ServiceDescriptor& service);

/// Registers in `registry` the families
///   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
///   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
///   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method} (histogram)
///   grpc_server_msg_received_total, grpc_server_msg_sent_total{grpc_type,grpc_service,grpc_method}
/// with a zero series for each of `methods` (and for handled, each of them × every code), and
/// returns the interceptor factory to give to grpc::ServerBuilder. RPCs to methods not in
/// `methods` are not counted, which bounds the label values. The factory keeps `registry` alive
/// and is thread-safe; several factories may share one registry.
/// Errors: INVALID_ARGUMENT when a family of the same name but another type is already
/// registered.
absl::StatusOr<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
NewGrpcServerMetrics(std::shared_ptr<prometheus::Registry> registry,
                     const std::vector<GrpcMethod>& methods);

}  // namespace eofaas::common
