#include "proxy/ingress/invoker_service.h"

#include "proxy/ingress/invoke_reactor.h"
#include "proxy/ingress/map_reactor.h"

namespace eofaas::proxy {

InvokerService::InvokerService(Dispatcher& dispatcher, DataRoots roots, Listers listers,
                               IngressMetrics& metrics, InvokerOptions options)
    : roots_(std::move(roots)),
      listers_(listers),
      options_(options),
      services_{dispatcher, roots_, listers_, planners_, cursor_checks_, metrics, options_},
      planners_("plan", options_.planner_threads, options_.max_queued_plans),
      cursor_checks_("cursor", options_.cursor_check_threads, options_.max_queued_cursor_checks) {}

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
