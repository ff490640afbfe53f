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
    return Refuse(common::ToGrpcStatus(status));
  }
  absl::StatusOr<std::string> args = ArgsJson(request_.args());
  if (!args.ok()) return Refuse(common::ToGrpcStatus(args.status()));
  args_json_ = *std::move(args);
  // An unknown function is answered before anything is listed.
  if (auto capacity = services_.dispatcher.Capacity(request_.function()); !capacity.ok()) {
    return Refuse(common::ToGrpcStatus(capacity.status()));
  }
  caller_deadline_ = CallerDeadline(context_);
  item_timeout_ = *NonNegativeDuration(request_.item_timeout(), "item_timeout");
  max_attempts_ =
      request_.max_attempts() > 0 ? request_.max_attempts() : services_.options.max_attempts;
  id_ = RequestId::New().view();
  series_ = services_.metrics.Function(request_.function());
  {
    absl::MutexLock lock(&mu_);
    planning_ = true;
  }
  if (!services_.planners.Submit([this] { Plan(); })) {
    Refuse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many Maps are waiting to be planned; retry later"));
  }
}

void MapReactor::Refuse(grpc::Status status) {
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;  // OnCancel, should it come, finds the Map ended
  }
  Finish(std::move(status));
}

void MapReactor::Plan() {
  const std::vector<std::string> inputs(request_.inputs().begin(), request_.inputs().end());
  absl::StatusOr<std::unique_ptr<Planner>> planner = Planner::Create(
      inputs, request_.partitioning(), services_.listers, stop_planning_.get_token());
  if (planner.ok()) {
    planned_.set_items((*planner)->items());
    planned_.set_bytes((*planner)->bytes());
  }
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    planning_ = false;
    if (!stopped_) {
      if (!planner.ok()) {
        StopLocked(common::ToGrpcStatus(planner.status()), actions);
      } else {
        planned_queued_ = true;
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

void MapReactor::TakeCursorsLocked(Actions& actions) {
  const size_t max_queued = services_.options.max_queued_items;
  if (planner_ == nullptr || pending_.size() + writing_items_ >= max_queued) return;
  const int window = WindowLocked();
  const bool ordered = request_.ordered();
  auto outstanding = [&] { return ordered ? next_index_ - next_delivery_ : in_flight_; };
  if (outstanding() >= window) return;
  actions.dispatch.reserve(window - outstanding());  // what the loop takes, unless exhausted
  while (pending_.size() + writing_items_ < max_queued && outstanding() < window) {
    std::optional<DataCursor> cursor = planner_->Next();
    if (!cursor) {
      exhausted_ = true;
      planner_.reset();  // the object list is no longer needed
      return;
    }
    // Counted in flight from here: the call cannot finish before its completion comes back.
    ++in_flight_;
    if (ordered) reorder_.emplace_back();
    actions.dispatch.push_back({next_index_++, *std::move(cursor)});
  }
}

void MapReactor::Invoke(Dispatch dispatch) {
  // The item its completion fills in: the callback holds only it and `this`, which fit in the
  // callback without an allocation of their own.
  auto item = std::make_unique<eofaas::v1::MapItem>();
  item->set_index(dispatch.index);
  *item->mutable_cursor() = std::move(dispatch.cursor);
  // The id of the item, "<map id>-<index>", built in a buffer kept by the thread.
  thread_local std::string item_id;
  item_id.assign(id_).push_back('-');
  absl::StrAppend(&item_id, dispatch.index);
  Invocation invocation;
  invocation.body_prefix = InvokeBodyPrefix(item_id, item->cursor(), args_json_);
  invocation.start = std::chrono::steady_clock::now();
  invocation.deadline = InvocationDeadline(caller_deadline_, item_timeout_,
                                           services_.options.default_timeout, invocation.start);
  invocation.max_attempts = max_attempts_;
  invocation.group = group_;
  invocation.bounded_by_caller = true;  // by the window
  // The dispatcher never calls back inside Invoke.
  services_.dispatcher.Invoke(request_.function(), std::move(invocation),
                              [this, item = std::move(item)](InvokeOutcome outcome) mutable {
                                OnItemDone(std::move(item), std::move(outcome));
                              });
}

void MapReactor::OnItemDone(std::unique_ptr<eofaas::v1::MapItem> pending, InvokeOutcome outcome) {
  const InvocationOutcome kind = OutcomeOf(outcome);
  IngressMetrics::Invocation(series_, kind, outcome.duration);
  services_.metrics.MapItem(kind);
  const int64_t index = pending->index();
  Item completed{std::move(pending)};
  eofaas::v1::MapItem& item = *completed.item;
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
  completed.bytes = item.ByteSizeLong();

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
        reorder_[index - next_delivery_] = std::move(completed);
        while (!reorder_.empty() && reorder_.front().item != nullptr) {
          pending_bytes_ += reorder_.front().bytes;
          pending_.push_back(std::move(reorder_.front()));
          reorder_.pop_front();
          ++next_delivery_;
        }
      } else {
        pending_bytes_ += completed.bytes;
        pending_.push_back(std::move(completed));
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
    writing_items_ = 0;
    if (!ok) {
      StopLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading"), actions);
    }
    ProgressLocked(actions);
  }
  Perform(actions);
}

void MapReactor::Flush() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    flush_queued_ = false;
    if (!writing_) {
      if (pending_.size() > flush_seen_ && pending_.size() < kMaxMessageItems &&
          pending_bytes_ < kMaxMessageBytes && flush_turns_ < kMaxFlushTurns) {
        // Completions are still coming in: one more turn of the dispatcher's loop lets them
        // join this message.
        ++flush_turns_;
        flush_seen_ = pending_.size();
        flush_queued_ = true;
        actions.flush = true;
      } else {
        flush_seen_ = 0;
        flush_turns_ = 0;
        TakeWriteLocked(actions);
      }
    }
    ProgressLocked(actions);
  }
  Perform(actions);
}

void MapReactor::OnCancel() {
  // gRPC cancels the call when the client cancels it, and when its deadline passes.
  const std::optional<SteadyTime> deadline = CallerDeadline(context_);
  grpc::Status status = deadline && std::chrono::steady_clock::now() >= *deadline
                            ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded")
                            : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    StopLocked(std::move(status), actions);
    ProgressLocked(actions);
  }
  Perform(actions);
}

void MapReactor::StopLocked(grpc::Status status, Actions& actions) {
  if (stopped_) return;
  stopped_ = std::move(status);
  stop_planning_.request_stop();  // a listing in progress lists no further input
  actions.cancel = group_;
  planner_.reset();
  reorder_.clear();
  // Nothing more is written but the message being written.
  planned_queued_ = false;
  pending_.clear();
  pending_bytes_ = 0;
  done_queued_ = false;
}

bool MapReactor::WriteWaitingLocked() const {
  return planned_queued_ || !pending_.empty() || (done_queued_ && !done_written_);
}

void MapReactor::TakeWriteLocked(Actions& actions) {
  if (planned_queued_) {
    planned_queued_ = false;
    actions.write = Write::kPlanned;
  } else if (!pending_.empty()) {
    actions.write = Write::kItems;
    size_t bytes = 0;
    while (!pending_.empty() && actions.items.size() < kMaxMessageItems &&
           (actions.items.empty() || bytes + pending_.front().bytes <= kMaxMessageBytes)) {
      bytes += pending_.front().bytes;
      actions.items.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    pending_bytes_ -= bytes;
    writing_items_ = actions.items.size();
  } else if (done_queued_ && !done_written_) {
    done_written_ = true;
    actions.write = Write::kDone;
    actions.done.set_succeeded(succeeded_);
    actions.done.set_failed(failed_);
    actions.done.set_retried(retried_);
    SetDuration(std::chrono::steady_clock::now() - started_, actions.done.mutable_duration());
  } else {
    return;
  }
  writing_ = true;
  actions.more_writes = WriteWaitingLocked();
}

void MapReactor::ProgressLocked(Actions& actions) {
  if (finished_) return;
  if (!stopped_) {
    TakeCursorsLocked(actions);
    if (exhausted_ && in_flight_ == 0) done_queued_ = true;
  }
  if (writing_ || flush_queued_) return;
  if (WriteWaitingLocked()) {
    // Written from a dispatcher thread once the completions due with this one have run, so that
    // they share the message.
    flush_queued_ = true;
    actions.flush = true;
    return;
  }
  // Quiet: nothing to write, and either `done` went out or the Map stopped and every callback
  // (planning, invocations) came back.
  if (stopped_ ? (in_flight_ == 0 && !planning_) : done_written_) {
    finished_ = true;
    actions.finish = stopped_.value_or(grpc::Status::OK);
  }
}

void MapReactor::Perform(Actions& actions) {
  // `actions.cancel` holds the group: the reactor may be gone once another thread finishes it.
  if (actions.cancel) actions.cancel->Cancel();
  if (actions.write != Write::kNone) {
    message_ = MapResponse();  // frees the previous message's items
    switch (actions.write) {
      case Write::kPlanned:
        *message_.mutable_planned() = planned_;
        break;
      case Write::kItems: {
        auto& items = *message_.mutable_items()->mutable_items();
        items.Reserve(static_cast<int>(actions.items.size()));
        for (Item& item : actions.items) items.AddAllocated(item.item.release());
        break;
      }
      case Write::kDone:
        *message_.mutable_done() = std::move(actions.done);
        break;
      case Write::kNone:
        break;
    }
    // More queued behind this message: gRPC may coalesce them into fewer frames.
    grpc::WriteOptions options;
    if (actions.more_writes) options.set_buffer_hint();
    StartWrite(&message_, options);
  }
  if (actions.finish) return Finish(*actions.finish);
  if (actions.flush) services_.dispatcher.Defer([this] { Flush(); });
  // Last: once the last cursor is dispatched, its completion may end the call on another thread.
  for (Dispatch& dispatch : actions.dispatch) Invoke(std::move(dispatch));
}

}  // namespace eofaas::proxy
