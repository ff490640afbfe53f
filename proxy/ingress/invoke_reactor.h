// One gRPC Invoke call: StartInvoke (invoke_call.h) with the caller's deadline, finished with its
// status.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <memory>

#include "eofaas/v1/invoker.pb.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/ingress/ingress.h"

namespace eofaas::proxy {

/// Owns itself: created by InvokerService::Invoke, freed in OnDone. OnCancel may run at any
/// time; it touches the thread-safe call group alone.
class InvokeReactor final : public grpc::ServerUnaryReactor {
 public:
  InvokeReactor(const IngressServices& services, grpc::CallbackServerContext* context,
                const eofaas::v1::InvokeRequest* request, eofaas::v1::InvokeResponse* response)
      : services_(services), context_(*context), request_(*request), response_(*response) {}

  /// Validates and dispatches, or finishes at once with the request's error. Never blocks.
  void Start();

 private:
  void OnCancel() override { group_->Cancel(); }
  void OnDone() override { delete this; }

  const IngressServices& services_;
  grpc::CallbackServerContext& context_;
  const eofaas::v1::InvokeRequest& request_;
  eofaas::v1::InvokeResponse& response_;
  const std::shared_ptr<CallGroup> group_ = std::make_shared<CallGroup>();
};

}  // namespace eofaas::proxy
