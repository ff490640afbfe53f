// One Invoke, whichever front it came through: validation, the cursor check, one dispatch, and
// its outcome, which each front translates (gRPC with FillInvokeResponse, HTTP with
// http_translation.h).
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "eofaas/v1/invoker.pb.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/dispatch/dispatcher.h"
#include "proxy/ingress/ingress.h"
#include "proxy/ingress/invocation_setup.h"

namespace eofaas::proxy {

/// Called once with the call's outcome: its status OK with a result or a function error, or why
/// there is no answer.
using InvokeDone = absl::AnyInvocable<void(InvokeOutcome) &&>;

/// Runs `request`. `args_json` is its args as a JSON object, as an HTTP body held them
/// (http_translation.h); nullopt prints `request.args()` instead (gRPC). Statuses:
/// INVALID_ARGUMENT naming the field (function, timeout, cursor.*, args), NOT_FOUND for an
/// unknown function, PERMISSION_DENIED for a file outside the data roots, RESOURCE_EXHAUSTED when
/// too many cursor checks wait, then the dispatcher's (dispatcher.h). The budget counts from now:
/// `timeout`, bounded by `caller_deadline`.
///
/// Never blocks: a file:// cursor is checked on the calling thread when its path stays on local
/// file systems (a few lstat calls), on a cursor-check worker otherwise
/// (DataRoots::MayBlock). `request` and `args_json` must stay valid until `done` is called,
/// which happens exactly once: before StartInvoke returns for a request error (a cursor refused
/// on the calling thread included), otherwise on a cursor-check worker or a dispatcher thread.
/// Cancelling `group` cancels the invocation.
void StartInvoke(const IngressServices& services, const eofaas::v1::InvokeRequest& request,
                 std::optional<std::string_view> args_json,
                 std::optional<SteadyTime> caller_deadline, std::shared_ptr<CallGroup> group,
                 InvokeDone done);

/// The InvokeResponse of an outcome whose status is OK.
void FillInvokeResponse(InvokeOutcome outcome, eofaas::v1::InvokeResponse& response);

}  // namespace eofaas::proxy
