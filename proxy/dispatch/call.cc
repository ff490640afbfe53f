#include "proxy/dispatch/call.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/dispatch/envelope.h"

namespace eofaas::proxy {
namespace {

namespace asio = boost::asio;
using Kind = AttemptOutcome::Kind;
using SteadyClock = std::chrono::steady_clock;

uint64_t ThreadRandom() {
  thread_local std::mt19937_64 random(std::random_device{}());
  return random();
}

absl::Status Annotate(const absl::Status& status, absl::string_view note) {
  return absl::Status(status.code(), absl::StrCat(status.message(), " (", note, ")"));
}

InvokeOutcome Failure(absl::Status status) {
  InvokeOutcome outcome;
  outcome.status = std::move(status);
  return outcome;
}

}  // namespace

HttpDispatcher::Call::Call(std::shared_ptr<HttpDispatcher> dispatcher,
                           std::shared_ptr<FunctionState> function, Invocation invocation,
                           InvokeCallback done)
    : dispatcher_(std::move(dispatcher)),
      function_(std::move(function)),
      invocation_(std::move(invocation)),
      done_(std::move(done)),
      loop_index_(dispatcher_->loops_.Current()),
      started_(SteadyClock::now()) {
  invocation_.max_attempts = std::max(invocation_.max_attempts, 1);
}

void HttpDispatcher::Call::Start(std::shared_ptr<Call> call) {
  const LoopExecutor loop = call->loop();
  // Posted: co_spawn alone may run the coroutine inline, and `done` never runs inside Invoke.
  asio::post(loop, [call = std::move(call)]() mutable {
    Call* raw = call.get();
    asio::co_spawn(raw->loop(), raw->Run(), [call = std::move(call)](std::exception_ptr error) {
      // Nothing on this path throws by design; should something (bad_alloc) escape anyway,
      // the caller still hears back.
      if (error && call->done_) {
        common::LogError("invocation of ", call->function_->name, " failed unexpectedly");
        call->Finish(Failure(absl::InternalError("unexpected failure in the dispatcher")));
      }
    });
  });
}

HttpDispatcher::Call::~Call() {
  // Only when the io_context went away with the call unfinished.
  if (registered_) invocation_.group->Remove(this);
}

void HttpDispatcher::Call::Cancel() {
  auto self = weak_from_this().lock();
  if (self == nullptr) return;  // being destroyed: nothing left to cancel
  asio::post(loop(), [self = std::move(self)] {
    if (self->cancelled_) return;
    self->cancelled_ = absl::CancelledError("cancelled by the caller");
    self->CancelTimer();
    if (self->connection_) self->connection_->Abort();
  });
}

void HttpDispatcher::Call::Wake() {
  asio::post(loop(), [self = shared_from_this()] { self->CancelTimer(); });
}

HttpDispatcher::Call::Task<void> HttpDispatcher::Call::Run() {
  // The coroutine keeps its call alive: co_spawn's handler holds it until the end.
  Finish(co_await Execute());
}

HttpDispatcher::Call::Task<InvokeOutcome> HttpDispatcher::Call::Execute() {
  if (invocation_.group) {
    if (!invocation_.group->Add(this)) co_return Failure(absl::CancelledError("cancelled"));
    registered_ = true;
  }
  absl::Status last_failure;
  for (;;) {
    absl::StatusOr<ReplicaPtr> replica = co_await AcquireReplica();
    if (!replica.ok()) {
      if (last_failure.ok()) co_return Failure(replica.status());
      co_return Failure(
          Annotate(replica.status(), absl::StrCat("last failure: ", last_failure.message())));
    }
    ++attempts_;
    tried_.push_back(*replica);
    AttemptResult attempt = co_await Attempt(**replica);
    ReleaseReplica(**replica, attempt.outcome.replica_result);
    InvokeOutcome outcome;
    switch (attempt.outcome.kind) {
      case Kind::kResult:
        outcome.result = std::move(attempt.response.body);
        co_return outcome;
      case Kind::kFunctionError:
        outcome.error = ParseFunctionError(attempt.response.body, attempt.response.function_error);
        co_return outcome;
      case Kind::kFail:
        co_return Failure(cancelled_.value_or(attempt.outcome.status));
      case Kind::kRetry:
        break;
    }
    if (cancelled_) co_return Failure(*cancelled_);
    const absl::Status& status = attempt.outcome.status;
    if (attempts_ >= invocation_.max_attempts) {
      co_return Failure(Annotate(status, absl::StrCat("after ", attempts_, " attempts")));
    }
    if (!TakeRetryBudget()) co_return Failure(Annotate(status, "retry budget exhausted"));
    dispatcher_->metrics_->Retry(attempt.outcome.reason);
    last_failure = status;
    if (!co_await Backoff()) {
      if (cancelled_) co_return Failure(*cancelled_);
      co_return Failure(absl::DeadlineExceededError(
          absl::StrCat("deadline exceeded before retrying; last failure: ", status.message())));
    }
  }
}

HttpDispatcher::Call::Admission HttpDispatcher::Call::Admit(ReplicaPtr& replica,
                                                            absl::Status& refusal) {
  FunctionState& function = *function_;
  std::lock_guard lock(function.mu);
  if (function.removed) {
    refusal = absl::NotFoundError(absl::StrCat("function ", function.name, " not found"));
    return Admission::kRefused;
  }
  if (attempts_ == 0) function.retry_budget.OnRequest();
  Balancer::PickResult pick = function.balancer.Pick(tried_);
  switch (pick.error) {
    case Balancer::PickError::kNone:
      function.gauges.in_flight->Increment();
      replica = std::move(pick.replica);
      replica_concurrency_ = replica->info.concurrency;
      return Admission::kPicked;
    case Balancer::PickError::kNoReplicas:
      if (function.scales_to_zero) {  // wait in the queue for the first replica
        cold_ = true;
        break;
      }
      refusal =
          absl::UnavailableError(absl::StrCat("function ", function.name, " has no replicas"));
      return Admission::kRefused;
    case Balancer::PickError::kAllEjected:
      refusal = absl::UnavailableError(absl::StrCat("every replica of function ", function.name,
                                                    " is ejected after transport failures"));
      return Admission::kRefused;
    case Balancer::PickError::kAtCapacity:
      break;
  }
  if (function.queue.size() >= dispatcher_->options_.queue_limit) {
    refusal = absl::ResourceExhaustedError(absl::StrCat(
        "every replica of function ", function.name, " is busy and its queue is full (",
        dispatcher_->options_.queue_limit, " invocations)"));
    return Admission::kRefused;
  }
  queue_position_ = function.queue.insert(function.queue.end(), shared_from_this());
  function.gauges.queue_depth->Increment();
  return Admission::kQueued;
}

HttpDispatcher::Call::ReplicaPtr HttpDispatcher::Call::LeaveQueue(absl::Status& dropped) {
  FunctionState& function = *function_;
  std::lock_guard lock(function.mu);
  if (queue_position_) {
    function.queue.erase(*queue_position_);
    queue_position_.reset();
    function.gauges.queue_depth->Decrement();
  }
  dropped = dropped_;
  if (granted_) replica_concurrency_ = granted_->info.concurrency;
  return std::move(granted_);
}

HttpDispatcher::Call::Task<absl::StatusOr<HttpDispatcher::Call::ReplicaPtr>>
HttpDispatcher::Call::AcquireReplica() {
  ReplicaPtr replica;
  absl::Status refusal;
  switch (Admit(replica, refusal)) {
    case Admission::kPicked:
      co_return replica;
    case Admission::kRefused:
      co_return refusal;
    case Admission::kQueued:
      if (cold_ && dispatcher_->on_cold_call_) dispatcher_->on_cold_call_(function_->name);
      break;
  }
  // Wait for a grant, a drop, a cancellation or the deadline. Wake-ups can be spurious (a grant's
  // wake may land after the call moved on), so the state decides, not the timer.
  for (;;) {
    timer().expires_at(invocation_.deadline);
    co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable_t<LoopExecutor>()));
    bool leave = cancelled_.has_value() || SteadyClock::now() >= invocation_.deadline;
    if (!leave) {
      std::lock_guard lock(function_->mu);
      leave = granted_ != nullptr || !dropped_.ok();
    }
    if (leave) break;
  }
  absl::Status dropped;
  replica = LeaveQueue(dropped);
  if (cancelled_) {
    if (replica) ReleaseReplica(*replica, Balancer::Result::kNeutral);
    co_return *cancelled_;
  }
  if (replica) co_return replica;  // the round trip reports a deadline that passed meanwhile
  if (!dropped.ok()) co_return dropped;
  co_return absl::DeadlineExceededError(
      absl::StrCat("deadline exceeded waiting for a free replica of function ", function_->name));
}

HttpDispatcher::Call::Task<HttpDispatcher::Call::AttemptResult> HttpDispatcher::Call::Attempt(
    const Balancer::Replica& replica) {
  const std::string& address = replica.info.address;
  std::shared_ptr<ConnectionPool> pool = dispatcher_->Pool(address, replica_concurrency_);
  auto deadline_exceeded = [&] {
    return AttemptResult{{Kind::kFail, RetryReason::kConnect,
                          absl::DeadlineExceededError(
                              absl::StrCat("deadline exceeded on the way to replica ", address)),
                          Balancer::Result::kNeutral}};
  };
  for (;;) {
    if (cancelled_) {
      co_return AttemptResult{
          {Kind::kFail, RetryReason::kConnect, *cancelled_, Balancer::Result::kNeutral}};
    }
    const auto now = SteadyClock::now();
    if (now >= invocation_.deadline) co_return deadline_exceeded();
    connection_ = pool->TakeIdle(loop_index_);
    const bool reused = connection_ != nullptr;
    if (!reused) {
      auto [resolve_error, endpoint] = co_await pool->Endpoint();
      if (cancelled_) continue;  // reported at the top of the loop
      if (resolve_error) co_return AttemptResult{ConnectFailure(resolve_error, address)};
      connection_ = std::make_shared<TcpConnection>(
          TcpSocket(loop()), address, dispatcher_->options_.http, dispatcher_->deadlines_);
      const auto connect_deadline =
          std::min(invocation_.deadline, now + dispatcher_->options_.connect_timeout);
      const auto error = co_await connection_->Connect(endpoint, connect_deadline);
      if (error) {
        connection_.reset();
        if (cancelled_) continue;  // reported at the top of the loop
        if (SteadyClock::now() >= invocation_.deadline) co_return deadline_exceeded();
        co_return AttemptResult{ConnectFailure(error, address)};
      }
    }
    // The replica counts its budget from arrival; a request that just made it gets 1 ms.
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        invocation_.deadline - SteadyClock::now());
    WriteInvokeBodySuffix(std::max<int64_t>(remaining.count(), 1), attempts_, body_suffix_);
    std::shared_ptr<TcpConnection> connection = connection_;
    HttpResult response = co_await connection->RoundTrip("/invoke", invocation_.body_prefix,
                                                         body_suffix_, invocation_.deadline);
    connection_.reset();
    if (reused && !response.response_started && response.error == HttpError::kClosed) {
      continue;  // a keep-alive connection the replica had closed: not an attempt
    }
    pool->Return(loop_index_, std::move(connection));
    AttemptOutcome outcome = ClassifyAttempt(response, address);
    if (response.error == HttpError::kAborted && cancelled_) outcome.status = *cancelled_;
    co_return AttemptResult{std::move(outcome), std::move(response)};
  }
}

HttpDispatcher::Call::Task<bool> HttpDispatcher::Call::Backoff() {
  const auto delay = RetryBackoff(dispatcher_->options_.backoff, attempts_, ThreadRandom());
  const auto until = std::min(SteadyClock::now() + delay, invocation_.deadline);
  while (!cancelled_ && SteadyClock::now() < until) {
    timer().expires_at(until);
    co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable_t<LoopExecutor>()));
  }
  co_return !cancelled_ && SteadyClock::now() < invocation_.deadline;
}

HttpDispatcher::Call::Timer& HttpDispatcher::Call::timer() {
  if (!timer_) timer_.emplace(loop());
  return *timer_;
}

void HttpDispatcher::Call::ReleaseReplica(Balancer::Replica& replica, Balancer::Result result) {
  FunctionState& function = *function_;
  std::vector<std::shared_ptr<Call>> woken;
  bool ejected;
  {
    std::lock_guard lock(function.mu);
    ejected = function.balancer.Release(replica, result);
    function.gauges.in_flight->Decrement();
    function.GrantQueued(woken);
  }
  for (auto& call : woken) call->Wake();
  if (ejected) {
    dispatcher_->metrics_->Ejection();
    common::LogWarning("ejected replica ", replica.info.address, " of function ", function.name,
                       " after consecutive transport failures");
  }
}

bool HttpDispatcher::Call::TakeRetryBudget() {
  std::lock_guard lock(function_->mu);
  return function_->retry_budget.TryRetry();
}

void HttpDispatcher::Call::Finish(InvokeOutcome outcome) {
  if (registered_) invocation_.group->Remove(this);
  registered_ = false;
  outcome.attempts = attempts_;
  if (!tried_.empty()) outcome.replica = tried_.back()->info.address;
  outcome.duration = SteadyClock::now() - started_;
  std::move(done_)(std::move(outcome));
  done_ = nullptr;
}

}  // namespace eofaas::proxy
