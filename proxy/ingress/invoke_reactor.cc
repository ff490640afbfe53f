#include "proxy/ingress/invoke_reactor.h"

#include "absl/strings/match.h"
#include "common/status.h"
#include "proxy/dispatch/envelope.h"
#include "proxy/ingress/request_validation.h"
#include "proxy/plan/cursor_validation.h"

namespace eofaas::proxy {

InvokeReactor::InvokeReactor(const IngressServices& services, grpc::CallbackServerContext* context,
                             const eofaas::v1::InvokeRequest* request,
                             eofaas::v1::InvokeResponse* response)
    : services_(services), context_(*context), request_(*request), response_(*response) {}

void InvokeReactor::Start() {
  // The budget counts from the request's arrival, cursor check included.
  const SteadyTime arrival = std::chrono::steady_clock::now();
  if (auto status = ValidateInvokeRequest(request_); !status.ok()) {
    return Finish(common::ToGrpcStatus(status));
  }
  absl::StatusOr<std::string> args = ArgsJson(request_.args());
  if (!args.ok()) return Finish(common::ToGrpcStatus(args.status()));
  args_json_ = *std::move(args);
  // An unknown function is answered before the data roots are consulted.
  if (auto capacity = services_.dispatcher.Capacity(request_.function()); !capacity.ok()) {
    return Finish(common::ToGrpcStatus(capacity.status()));
  }
  deadline_ = InvocationDeadline(CallerDeadline(context_),
                                 *NonNegativeDuration(request_.timeout(), "timeout"),
                                 services_.options.default_timeout, arrival);
  // Only file:// cursors touch the file system (http and s3 objects are not contacted).
  if (!absl::StartsWithIgnoreCase(request_.cursor().uri(), "file:")) {
    return CheckCursorAndDispatch();
  }
  if (!services_.cursor_checks.Submit([this] { CheckCursorAndDispatch(); })) {
    Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many cursor checks are waiting; retry later"));
  }
}

void InvokeReactor::CheckCursorAndDispatch() {
  if (auto status = ValidateCursor(request_.cursor(), services_.roots); !status.ok()) {
    return Finish(common::ToGrpcStatus(status));
  }
  Invocation invocation;
  invocation.body_prefix = InvokeBodyPrefix(NewRequestId(), request_.cursor(), args_json_);
  invocation.deadline = deadline_;
  invocation.max_attempts = services_.options.max_attempts;
  invocation.group = group_;
  services_.dispatcher.Invoke(request_.function(), std::move(invocation),
                              [this](InvokeOutcome outcome) { Complete(std::move(outcome)); });
}

void InvokeReactor::Complete(InvokeOutcome outcome) {
  IngressMetrics::Invocation(services_.metrics.Function(request_.function()), OutcomeOf(outcome),
                             outcome.duration);
  if (!outcome.status.ok()) return Finish(common::ToGrpcStatus(outcome.status));
  if (outcome.error) {
    eofaas::v1::FunctionError* error = response_.mutable_error();
    error->set_type(std::move(outcome.error->type));
    error->set_message(std::move(outcome.error->message));
    error->set_handled(outcome.error->handled);
  } else {
    response_.set_result(std::move(outcome.result));
  }
  response_.set_replica(std::move(outcome.replica));
  response_.set_attempts(outcome.attempts);
  SetDuration(outcome.duration, response_.mutable_duration());
  Finish(grpc::Status::OK);
}

}  // namespace eofaas::proxy
