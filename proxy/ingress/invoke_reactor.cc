#include "proxy/ingress/invoke_reactor.h"

#include "common/status.h"
#include "proxy/ingress/invoke_call.h"

namespace eofaas::proxy {

void InvokeReactor::Start() {
  StartInvoke(services_, request_, std::nullopt, CallerDeadline(context_), group_,
              [this](InvokeOutcome outcome) {
                if (!outcome.status.ok()) return Finish(common::ToGrpcStatus(outcome.status));
                FillInvokeResponse(std::move(outcome), response_);
                Finish(grpc::Status::OK);
              });
}

}  // namespace eofaas::proxy
