// One Invoke call: validation, one dispatch, and the translation of its outcome.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <memory>
#include <optional>
#include <string>

#include "eofaas/v1/invoker.pb.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/ingress/invocation_setup.h"
#include "proxy/ingress/invoker_service.h"

namespace eofaas::proxy {

/// Owns itself: created by InvokerService::Invoke, freed in OnDone. Its steps run one after the
/// other (gRPC thread, then maybe a cursor-check worker, then a dispatcher thread); only
/// OnCancel runs concurrently, and it touches the thread-safe call group alone.
class InvokeReactor final : public grpc::ServerUnaryReactor {
 public:
  InvokeReactor(const IngressServices& services, grpc::CallbackServerContext* context,
                const eofaas::v1::InvokeRequest* request, eofaas::v1::InvokeResponse* response);

  /// Validates and dispatches, or finishes at once with the request's error. Never blocks.
  void Start();

 private:
  void OnCancel() override { group_->Cancel(); }
  void OnDone() override { delete this; }

  /// Checks the cursor against the data roots (this may touch the file system), then dispatches.
  void CheckCursorAndDispatch();
  void Complete(InvokeOutcome outcome);

  const IngressServices& services_;
  grpc::CallbackServerContext& context_;
  const eofaas::v1::InvokeRequest& request_;
  eofaas::v1::InvokeResponse& response_;
  const std::shared_ptr<CallGroup> group_ = std::make_shared<CallGroup>();
  std::string args_json_;
  SteadyTime deadline_;
};

}  // namespace eofaas::proxy
