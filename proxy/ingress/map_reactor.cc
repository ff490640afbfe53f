#include "proxy/ingress/map_reactor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "proxy/dispatch/envelope.h"
#include "proxy/ingress/request_validation.h"

namespace eofaas::proxy {

using eofaas::v1::DataCursor;
using eofaas::v1::MapResponse;

MapReactor::MapReactor(const IngressServices& services, grpc::CallbackServerContext* context,
                       const eofaas::v1::MapRequest* request)
    : services_(services),
      context_(*context),
      request_(*request),
      started_(std::chrono::steady_clock::now()) {}

void MapReactor::Start() {
  if (auto status = ValidateMapRequest(request_, services_.options.max_in_flight_limit);
      !status.ok()) {
    return Finish(common::ToGrpcStatus(status));
  }
  absl::StatusOr<std::string> args = ArgsJson(request_.args());
  if (!args.ok()) return Finish(common::ToGrpcStatus(args.status()));
  args_json_ = *std::move(args);
  // An unknown function is answered before anything is listed.
  if (auto capacity = services_.dispatcher.Capacity(request_.function()); !capacity.ok()) {
    return Finish(common::ToGrpcStatus(capacity.status()));
  }
  caller_deadline_ = CallerDeadline(context_);
  item_timeout_ = *NonNegativeDuration(request_.item_timeout(), "item_timeout");
  max_attempts_ =
      request_.max_attempts() > 0 ? request_.max_attempts() : services_.options.max_attempts;
  id_ = NewRequestId();
  series_ = services_.metrics.Function(request_.function());
  {
    absl::MutexLock lock(&mu_);
    planning_ = true;
  }
  if (!services_.planners.Submit([this] { Plan(); })) {
    Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many Maps are waiting to be planned; retry later"));
  }
}

void MapReactor::Plan() {
  const std::vector<std::string> inputs(request_.inputs().begin(), request_.inputs().end());
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Planner::Create(inputs, request_.partitioning(), services_.listers);
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    planning_ = false;
    if (!stopped_) {
      if (!planner.ok()) {
        StopLocked(common::ToGrpcStatus(planner.status()), actions);
      } else {
        MapResponse event;
        event.mutable_planned()->set_items((*planner)->items());
        event.mutable_planned()->set_bytes((*planner)->bytes());
        events_.push_back(std::move(event));
        planner_ = *std::move(planner);
      }
    }
    ProgressLocked(actions);
  }
  Perform(actions);
}

int MapReactor::WindowLocked() {
  if (request_.max_in_flight() > 0) return request_.max_in_flight();
  // The function's capacity follows its replicas; when it cannot be read (the function was
  // removed) the last window stays, and the items fail on their own.
  if (absl::StatusOr<int> capacity = services_.dispatcher.Capacity(request_.function());
      capacity.ok()) {
    window_ = std::clamp(*capacity, 1, services_.options.max_in_flight_limit);
  }
  return window_;
}

void MapReactor::DispatchLocked() {
  if (planner_ == nullptr || events_.size() >= services_.options.max_queued_events) return;
  const int window = WindowLocked();
  const bool ordered = request_.ordered();
  while (events_.size() < services_.options.max_queued_events &&
         (ordered ? next_index_ - next_delivery_ : in_flight_) < window) {
    std::optional<DataCursor> cursor = planner_->Next();
    if (!cursor) {
      exhausted_ = true;
      planner_.reset();  // the object list is no longer needed
      return;
    }
    const int64_t index = next_index_++;
    ++in_flight_;
    if (ordered) reorder_.emplace_back();
    Invocation invocation;
    invocation.body_prefix = InvokeBodyPrefix(absl::StrCat(id_, "-", index), *cursor, args_json_);
    invocation.deadline =
        InvocationDeadline(caller_deadline_, item_timeout_, services_.options.default_timeout,
                           std::chrono::steady_clock::now());
    invocation.max_attempts = max_attempts_;
    invocation.group = group_;
    // The dispatcher never calls back inside Invoke, and the callback waits for `mu_`, so the
    // reactor cannot finish while this loop runs.
    services_.dispatcher.Invoke(
        request_.function(), std::move(invocation),
        [this, index, cursor = std::move(*cursor)](InvokeOutcome outcome) mutable {
          OnItemDone(index, std::move(cursor), std::move(outcome));
        });
  }
}

void MapReactor::OnItemDone(int64_t index, DataCursor cursor, InvokeOutcome outcome) {
  const InvocationOutcome kind = OutcomeOf(outcome);
  IngressMetrics::Invocation(series_, kind, outcome.duration);
  services_.metrics.MapItem(kind);
  MapResponse event;
  eofaas::v1::MapItem& item = *event.mutable_item();
  item.set_index(index);
  *item.mutable_cursor() = std::move(cursor);
  if (!outcome.status.ok()) {
    eofaas::v1::ItemFailure& failure = *item.mutable_failure();
    failure.set_code(absl::StatusCodeToString(outcome.status.code()));
    failure.set_message(std::string(outcome.status.message()));
  } else if (outcome.error) {
    eofaas::v1::FunctionError& error = *item.mutable_error();
    error.set_type(std::move(outcome.error->type));
    error.set_message(std::move(outcome.error->message));
    error.set_handled(outcome.error->handled);
  } else {
    item.set_result(std::move(outcome.result));
  }
  item.set_attempts(outcome.attempts);
  item.set_replica(std::move(outcome.replica));

  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    if (kind == InvocationOutcome::kSuccess) {
      ++succeeded_;
    } else {
      ++failed_;
    }
    if (outcome.attempts > 1) ++retried_;
    if (!stopped_) {
      if (request_.ordered()) {
        reorder_[index - next_delivery_] = std::move(event);
        while (!reorder_.empty() && reorder_.front().has_value()) {
          events_.push_back(*std::move(reorder_.front()));
          reorder_.pop_front();
          ++next_delivery_;
        }
      } else {
        events_.push_back(std::move(event));
      }
    }
    ProgressLocked(actions);
  }
  Perform(actions);
}

void MapReactor::OnWriteDone(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    events_.pop_front();
    if (!ok) {
      StopLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading"), actions);
    }
    ProgressLocked(actions);
  }
  Perform(actions);
}

void MapReactor::OnCancel() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    StopLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"), actions);
    ProgressLocked(actions);
  }
  Perform(actions);
}

void MapReactor::StopLocked(grpc::Status status, Actions& actions) {
  if (stopped_) return;
  stopped_ = std::move(status);
  actions.cancel = group_;
  planner_.reset();
  reorder_.clear();
  // Drop every event but the one being written.
  events_.erase(writing_ ? events_.begin() + 1 : events_.begin(), events_.end());
}

void MapReactor::ProgressLocked(Actions& actions) {
  if (finished_) return;
  if (!stopped_) {
    DispatchLocked();
    if (exhausted_ && in_flight_ == 0 && !done_queued_) {
      MapResponse event;
      eofaas::v1::MapDone& done = *event.mutable_done();
      done.set_succeeded(succeeded_);
      done.set_failed(failed_);
      done.set_retried(retried_);
      SetDuration(std::chrono::steady_clock::now() - started_, done.mutable_duration());
      events_.push_back(std::move(event));
      done_queued_ = true;
    }
  }
  if (writing_) return;
  if (!events_.empty()) {
    writing_ = true;
    actions.write = &events_.front();
    actions.more_writes = events_.size() > 1;
    return;
  }
  // Quiet: nothing to write, and either `done` went out or the Map stopped and every callback
  // (planning, invocations) came back.
  if (stopped_ ? (in_flight_ == 0 && !planning_) : done_queued_) {
    finished_ = true;
    actions.finish = stopped_.value_or(grpc::Status::OK);
  }
}

void MapReactor::Perform(Actions& actions) {
  // `actions.cancel` holds the group: the reactor may be gone once another thread finishes it.
  if (actions.cancel) actions.cancel->Cancel();
  if (actions.write != nullptr) {
    // More events queued behind this one: gRPC may coalesce them into fewer frames.
    grpc::WriteOptions options;
    if (actions.more_writes) options.set_buffer_hint();
    StartWrite(actions.write, options);
  }
  if (actions.finish) Finish(*actions.finish);
}

}  // namespace eofaas::proxy
