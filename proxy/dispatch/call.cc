#include "proxy/dispatch/call.h"

#include <boost/asio/post.hpp>
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
      loop_index_(dispatcher_->loops_.Current()) {
  invocation_.max_attempts = std::max(invocation_.max_attempts, 1);
}

void HttpDispatcher::Call::Start(std::shared_ptr<Call> call) {
  const LoopExecutor loop = call->loop();
  // Posted: `done` never runs inside Invoke.
  asio::post(loop, [call = std::move(call)] { call->Begin(); });
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

void HttpDispatcher::Call::Begin() {
  if (invocation_.group) {
    if (!invocation_.group->Add(this)) return Finish(Failure(absl::CancelledError("cancelled")));
    registered_ = true;
  }
  Acquire();
}

void HttpDispatcher::Call::Acquire() {
  ReplicaPtr replica;
  absl::Status refusal;
  switch (Admit(replica, refusal)) {
    case Admission::kPicked:
      return Send(std::move(replica));
    case Admission::kRefused:
      return GiveUp(refusal);
    case Admission::kQueued:
      if (cold_ && dispatcher_->on_cold_call_) dispatcher_->on_cold_call_(function_->name);
      return WaitInQueue();
  }
}

// Waits for a grant, a drop, a cancellation or the deadline. Wake-ups can be spurious (a grant's
// wake may land after the call moved on), so the state decides, not the timer.
void HttpDispatcher::Call::WaitInQueue() {
  timer().expires_at(invocation_.deadline);
  timer_->async_wait(
      [self = shared_from_this()](boost::system::error_code) { self->OnQueueWake(); });
}

void HttpDispatcher::Call::OnQueueWake() {
  bool leave = cancelled_.has_value() || SteadyClock::now() >= invocation_.deadline;
  if (!leave) {
    std::lock_guard lock(function_->mu);
    leave = granted_ != nullptr || !dropped_.ok();
  }
  if (!leave) return WaitInQueue();
  absl::Status dropped;
  ReplicaPtr replica = LeaveQueue(dropped);
  if (cancelled_) {
    if (replica) ReleaseReplica(*replica, Balancer::Result::kNeutral);
    return GiveUp(*cancelled_);
  }
  if (replica) return Send(std::move(replica));  // the round trip reports a passed deadline
  if (!dropped.ok()) return GiveUp(dropped);
  GiveUp(absl::DeadlineExceededError(
      absl::StrCat("deadline exceeded waiting for a free replica of function ", function_->name)));
}

void HttpDispatcher::Call::GiveUp(const absl::Status& status) {
  if (last_failure_.ok()) return Finish(Failure(status));
  Finish(Failure(Annotate(status, absl::StrCat("last failure: ", last_failure_.message()))));
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
  if (!invocation_.bounded_by_caller &&
      function.queue.size() >= dispatcher_->options_.queue_limit) {
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

void HttpDispatcher::Call::Send(ReplicaPtr replica) {
  ++attempts_;
  pool_ = dispatcher_->Pool(replica->info.address, replica_concurrency_);
  tried_.push_back(std::move(replica));
  Try();
}

void HttpDispatcher::Call::Try(bool reuse) {
  if (cancelled_) {
    return Attempted({Kind::kFail, RetryReason::kConnect, *cancelled_, Balancer::Result::kNeutral});
  }
  const TimePoint now = SteadyClock::now();
  if (now >= invocation_.deadline) {
    return Attempted({Kind::kFail, RetryReason::kConnect,
                      absl::DeadlineExceededError(
                          absl::StrCat("deadline exceeded on the way to replica ", address())),
                      Balancer::Result::kNeutral});
  }
  if (reuse) {
    // A large body is written from the invocation's memory, on a connection of its own.
    const bool join = invocation_.body_prefix.size() <= TcpConnection::kMaxCopiedBody;
    connection_ = pool_->Take(loop_index_, join);
  }
  if (connection_) return RoundTrip(/*reused=*/true, now);
  Connect();
}

void HttpDispatcher::Call::Connect() {
  pool_->Endpoint(loop(), [self = shared_from_this()](boost::system::error_code error,
                                                      asio::ip::tcp::endpoint endpoint) {
    self->OnEndpoint(error, endpoint);
  });
}

void HttpDispatcher::Call::OnEndpoint(const boost::system::error_code& error,
                                      const asio::ip::tcp::endpoint& endpoint) {
  if (cancelled_) return Try();  // reported there
  if (error) return Attempted(ConnectFailure(error, address()));
  connection_ = std::make_shared<TcpConnection>(
      TcpSocket(loop()), address(), dispatcher_->options_.http, dispatcher_->deadlines_);
  const auto deadline =
      std::min(invocation_.deadline, SteadyClock::now() + dispatcher_->options_.connect_timeout);
  connection_->Connect(
      endpoint, deadline,
      [self = shared_from_this()](boost::system::error_code error) { self->OnConnected(error); });
}

void HttpDispatcher::Call::OnConnected(const boost::system::error_code& error) {
  if (!error) return RoundTrip(/*reused=*/false, SteadyClock::now());
  connection_.reset();
  // A cancellation or a passed deadline is reported by Try.
  if (cancelled_ || SteadyClock::now() >= invocation_.deadline) return Try();
  Attempted(ConnectFailure(error, address()));
}

void HttpDispatcher::Call::RoundTrip(bool reused, TimePoint now) {
  reused_connection_ = reused;
  // The replica counts its budget from arrival; a request that just made it gets 1 ms.
  const auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(invocation_.deadline - now);
  // RoundTrip copies the tail before it returns, so one buffer per loop serves every call.
  thread_local std::string body_suffix;
  WriteInvokeBodySuffix(std::max<int64_t>(remaining.count(), 1), attempts_, body_suffix);
  connection_->RoundTrip(
      "/invoke", invocation_.body_prefix, body_suffix, invocation_.deadline,
      [self = shared_from_this()](HttpResult response) { self->OnResponse(std::move(response)); });
  if (connection_->joinable()) pool_->Gather(loop_index_, connection_);
}

void HttpDispatcher::Call::OnResponse(HttpResult response) {
  std::shared_ptr<TcpConnection> connection = std::move(connection_);
  if (reused_connection_ && !response.response_started && response.error == HttpError::kClosed) {
    // Most likely a keep-alive connection the replica closed as the request went out: sent again
    // on a new connection, without counting an attempt. Only once: a replica that takes requests
    // and closes without an answer must not get this one again on each of its idle connections.
    return Try(/*reuse=*/false);
  }
  if (response.error == HttpError::kDisplaced ||
      (response.error == HttpError::kAborted && !cancelled_)) {
    // The connection closed for another request pipelined on it (its deadline passed, its answer
    // was invalid, its caller cancelled it): this one is sent again on a connection of its own.
    // The replica may have run it already.
    dispatcher_->metrics_->Retry(RetryReason::kDisplaced);
    return Try(/*reuse=*/false);
  }
  pool_->Return(loop_index_, std::move(connection));
  AttemptOutcome outcome = ClassifyAttempt(response, address());
  if (response.error == HttpError::kAborted && cancelled_) outcome.status = *cancelled_;
  Attempted(std::move(outcome), std::move(response));
}

void HttpDispatcher::Call::Attempted(AttemptOutcome attempt, HttpResult response) {
  ReleaseReplica(*tried_.back(), attempt.replica_result);
  pool_ = nullptr;
  InvokeOutcome outcome;
  switch (attempt.kind) {
    case Kind::kResult:
      outcome.result = std::move(response.body);
      return Finish(std::move(outcome));
    case Kind::kFunctionError:
      outcome.error = ParseFunctionError(response.body, response.function_error);
      return Finish(std::move(outcome));
    case Kind::kFail:
      return Finish(Failure(cancelled_.value_or(attempt.status)));
    case Kind::kRetry:
      break;
  }
  if (cancelled_) return Finish(Failure(*cancelled_));
  const absl::Status& status = attempt.status;
  if (attempts_ >= invocation_.max_attempts) {
    return Finish(Failure(Annotate(status, absl::StrCat("after ", attempts_, " attempts"))));
  }
  if (!TakeRetryBudget()) return Finish(Failure(Annotate(status, "retry budget exhausted")));
  dispatcher_->metrics_->Retry(attempt.reason);
  last_failure_ = status;
  const auto delay = RetryBackoff(dispatcher_->options_.backoff, attempts_, ThreadRandom());
  backoff_until_ = std::min(SteadyClock::now() + delay, invocation_.deadline);
  Backoff();
}

void HttpDispatcher::Call::Backoff() {
  if (cancelled_ || SteadyClock::now() >= backoff_until_) return AfterBackoff();
  timer().expires_at(backoff_until_);
  timer_->async_wait([self = shared_from_this()](boost::system::error_code) { self->Backoff(); });
}

void HttpDispatcher::Call::AfterBackoff() {
  if (cancelled_) return Finish(Failure(*cancelled_));
  if (SteadyClock::now() >= invocation_.deadline) {
    return Finish(Failure(absl::DeadlineExceededError(absl::StrCat(
        "deadline exceeded before retrying; last failure: ", last_failure_.message()))));
  }
  Acquire();
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
  outcome.duration = SteadyClock::now() - invocation_.start;
  std::move(done_)(std::move(outcome));
  done_ = nullptr;
}

}  // namespace eofaas::proxy
