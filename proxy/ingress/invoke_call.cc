#include "proxy/ingress/invoke_call.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "proxy/dispatch/envelope.h"
#include "proxy/ingress/request_validation.h"
#include "proxy/plan/cursor_validation.h"

namespace eofaas::proxy {
namespace {

// The state of one call between its steps; freed when `done` has been called.
struct InvokeCall {
  const IngressServices& services;
  const eofaas::v1::InvokeRequest& request;
  std::shared_ptr<CallGroup> group;
  InvokeDone done;
  SteadyTime arrival;
  SteadyTime deadline;
  // The args, kept only while the cursor check waits for a worker.
  std::string args_json;
};

// A request that is not dispatched.
void Refuse(InvokeDone done, absl::Status status) {
  InvokeOutcome outcome;
  outcome.status = std::move(status);
  std::move(done)(std::move(outcome));
}

void Complete(std::unique_ptr<InvokeCall> call, InvokeOutcome outcome) {
  IngressMetrics::Invocation(call->services.metrics.Function(call->request.function()),
                             OutcomeOf(outcome), outcome.duration);
  std::move(call->done)(std::move(outcome));
}

// Hands a call whose cursor passed its check to the dispatcher.
void Dispatch(std::unique_ptr<InvokeCall> call, std::string_view args_json) {
  Invocation invocation;
  invocation.body_prefix =
      InvokeBodyPrefix(RequestId::New().view(), call->request.cursor(), args_json);
  invocation.start = call->arrival;
  invocation.deadline = call->deadline;
  invocation.max_attempts = call->services.options.max_attempts;
  invocation.group = call->group;
  Dispatcher& dispatcher = call->services.dispatcher;
  const std::string& function = call->request.function();
  dispatcher.Invoke(function, std::move(invocation),
                    [call = std::move(call)](InvokeOutcome outcome) mutable {
                      Complete(std::move(call), std::move(outcome));
                    });
}

// On a cursor-check worker: the check that may block, then the dispatch.
void CheckCursorAndDispatch(std::unique_ptr<InvokeCall> call) {
  if (auto status = ValidateCursor(call->request.cursor(), call->services.roots,
                                   &call->services.checked_files);
      !status.ok()) {
    return Refuse(std::move(call->done), std::move(status));
  }
  const std::string args_json = std::move(call->args_json);
  Dispatch(std::move(call), args_json);
}

}  // namespace

void StartInvoke(const IngressServices& services, const eofaas::v1::InvokeRequest& request,
                 std::optional<std::string_view> args_json,
                 std::optional<SteadyTime> caller_deadline, std::shared_ptr<CallGroup> group,
                 InvokeDone done) {
  // The budget counts from the request's arrival, cursor check included.
  const SteadyTime arrival = std::chrono::steady_clock::now();
  if (auto status = ValidateInvokeRequest(request); !status.ok()) {
    return Refuse(std::move(done), std::move(status));
  }
  std::string printed_args;
  if (!args_json) {
    absl::StatusOr<std::string> args = ArgsJson(request.args());
    if (!args.ok()) return Refuse(std::move(done), args.status());
    printed_args = *std::move(args);
    args_json = printed_args;
  }
  // An unknown function is answered before the data roots are consulted.
  if (auto capacity = services.dispatcher.Capacity(request.function()); !capacity.ok()) {
    return Refuse(std::move(done), capacity.status());
  }
  auto call = std::make_unique<InvokeCall>(InvokeCall{
      .services = services,
      .request = request,
      .group = std::move(group),
      .done = std::move(done),
      .arrival = arrival,
      .deadline =
          InvocationDeadline(caller_deadline, *NonNegativeDuration(request.timeout(), "timeout"),
                             services.options.default_timeout, arrival)});
  // The check runs here, on the caller's thread, unless it may block. A file that passed lately
  // is not resolved again (CheckedFiles says why that is safe); http and s3 objects are not
  // contacted at all.
  if (std::optional<absl::Status> checked = ValidateCursorWithoutBlocking(
          request.cursor(), services.roots, &services.checked_files)) {
    if (!checked->ok()) return Refuse(std::move(call->done), *std::move(checked));
    return Dispatch(std::move(call), *args_json);
  }
  // The pool's tasks are copyable functions: the call travels as a raw pointer, owned again by
  // the task or, when the pool refuses it, here.
  call->args_json = std::string(*args_json);
  InvokeCall* pending = call.release();
  if (!services.cursor_checks.Submit(
          [pending] { CheckCursorAndDispatch(std::unique_ptr<InvokeCall>(pending)); })) {
    std::unique_ptr<InvokeCall> refused(pending);
    Refuse(std::move(refused->done),
           absl::ResourceExhaustedError("too many cursor checks are waiting; retry later"));
  }
}

void FillInvokeResponse(InvokeOutcome outcome, eofaas::v1::InvokeResponse& response) {
  if (outcome.error) {
    eofaas::v1::FunctionError* error = response.mutable_error();
    error->set_type(std::move(outcome.error->type));
    error->set_message(std::move(outcome.error->message));
    error->set_handled(outcome.error->handled);
  } else {
    response.set_result(std::move(outcome.result));
  }
  response.set_replica(std::move(outcome.replica));
  response.set_attempts(outcome.attempts);
  SetDuration(outcome.duration, response.mutable_duration());
}

}  // namespace eofaas::proxy
