#include "tests/support/grpc_health.h"

#include <chrono>

#include "grpc/health/v1/health.grpc.pb.h"

namespace eofaas::tests {

int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) return -1;
  return response.status();
}

}  // namespace eofaas::tests
