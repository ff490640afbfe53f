#include "proxy/ingress/invoker_service.h"

#include "proxy/ingress/invoke_reactor.h"
#include "proxy/ingress/map_reactor.h"

namespace eofaas::proxy {

grpc::ServerUnaryReactor* InvokerService::Invoke(grpc::CallbackServerContext* context,
                                                 const eofaas::v1::InvokeRequest* request,
                                                 eofaas::v1::InvokeResponse* response) {
  auto* reactor = new InvokeReactor(services_, context, request, response);
  reactor->Start();
  return reactor;
}

grpc::ServerWriteReactor<eofaas::v1::MapResponse>* InvokerService::Map(
    grpc::CallbackServerContext* context, const eofaas::v1::MapRequest* request) {
  auto* reactor = new MapReactor(services_, context, request);
  reactor->Start();
  return reactor;
}

}  // namespace eofaas::proxy
