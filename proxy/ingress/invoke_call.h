// One Invoke, whichever front it came through: validation, the cursor check, one dispatch, and
// the translation of its outcome into an InvokeResponse.
#pragma once

#include <memory>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "eofaas/v1/invoker.pb.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/ingress/ingress.h"
#include "proxy/ingress/invocation_setup.h"

namespace eofaas::proxy {

/// Called once with the call's status: OK with the response filled (a result or a function
/// error), or why there is no answer.
using InvokeDone = absl::AnyInvocable<void(absl::Status) &&>;

/// Runs `request`. Statuses: INVALID_ARGUMENT naming the field (function, timeout, cursor.*,
/// args), NOT_FOUND for an unknown function, PERMISSION_DENIED for a file outside the data roots,
/// RESOURCE_EXHAUSTED when too many cursor checks wait, then the dispatcher's. The budget counts
/// from now: `timeout`, bounded by `caller_deadline`.
///
/// Never blocks. `request` and `response` must stay valid until `done` is called, which happens
/// exactly once: before StartInvoke returns for a request error, otherwise on a cursor-check
/// worker or a dispatcher thread. Cancelling `group` cancels the invocation.
void StartInvoke(const IngressServices& services, const eofaas::v1::InvokeRequest& request,
                 std::optional<SteadyTime> caller_deadline, std::shared_ptr<CallGroup> group,
                 eofaas::v1::InvokeResponse& response, InvokeDone done);

}  // namespace eofaas::proxy
