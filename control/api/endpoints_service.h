// eofaas.v1.Endpoints over gRPC: streams every function's ready replicas to proxies, and takes
// their load reports for the autoscaler.
#pragma once

#include "control/api/stream_writer.h"
#include "control/controller.h"
#include "eofaas/v1/endpoints.grpc.pb.h"

namespace eofaas::control {

class EndpointsService final : public eofaas::v1::Endpoints::CallbackService {
 public:
  explicit EndpointsService(Controller& controller) : controller_(controller) {}

  grpc::ServerWriteReactor<eofaas::v1::WatchEndpointsResponse>* WatchEndpoints(
      grpc::CallbackServerContext* context,
      const eofaas::v1::WatchEndpointsRequest* request) override;

  /// Every report goes to Controller::ReportLoad. INVALID_ARGUMENT naming the field for a report
  /// without `proxy`, or with a negative count (the stream ends; earlier reports stand).
  grpc::ServerReadReactor<eofaas::v1::ReportLoadRequest>* ReportLoad(
      grpc::CallbackServerContext* context, eofaas::v1::ReportLoadResponse* response) override;

  /// Ends every WatchEndpoints stream, and each one opened later, with `status`: for a shutdown.
  void EndStreams(const grpc::Status& status) { open_.CloseAll(status); }

 private:
  Controller& controller_;
  OpenStreams open_;
};

}  // namespace eofaas::control
