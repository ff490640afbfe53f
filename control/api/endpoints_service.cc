#include "control/api/endpoints_service.h"

#include "control/api/stream_writer.h"

namespace eofaas::control {

grpc::ServerWriteReactor<eofaas::v1::WatchEndpointsResponse>* EndpointsService::WatchEndpoints(
    grpc::CallbackServerContext* context, const eofaas::v1::WatchEndpointsRequest* request) {
  auto* writer = new QueuedWriter<eofaas::v1::WatchEndpointsResponse>();
  uint64_t id = controller_.WatchEndpoints(
      [writer](const eofaas::v1::WatchEndpointsResponse& change) { writer->Push(change); });
  writer->Start([this, id] { controller_.UnwatchEndpoints(id); });
  return writer;
}

}  // namespace eofaas::control
