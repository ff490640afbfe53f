// eofaas.v1.Endpoints over gRPC: streams every function's ready replicas to proxies.
#pragma once

#include "control/controller.h"
#include "eofaas/v1/endpoints.grpc.pb.h"

namespace eofaas::control {

class EndpointsService final : public eofaas::v1::Endpoints::CallbackService {
 public:
  explicit EndpointsService(Controller& controller) : controller_(controller) {}

  grpc::ServerWriteReactor<eofaas::v1::WatchEndpointsResponse>* WatchEndpoints(
      grpc::CallbackServerContext* context,
      const eofaas::v1::WatchEndpointsRequest* request) override;

 private:
  Controller& controller_;
};

}  // namespace eofaas::control
