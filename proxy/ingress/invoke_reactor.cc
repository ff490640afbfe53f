#include "proxy/ingress/invoke_reactor.h"

#include "common/status.h"
#include "proxy/ingress/invoke_call.h"

namespace eofaas::proxy {

void InvokeReactor::Start() {
  StartInvoke(services_, request_, std::nullopt, CallerDeadline(context_), group_, response_,
              [this](absl::Status status) { Finish(common::ToGrpcStatus(status)); });
}

}  // namespace eofaas::proxy
