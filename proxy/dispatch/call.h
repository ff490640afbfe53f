// Internal to HttpDispatcher: the state of one function, and one invocation in progress (a chain
// of handlers on an event loop that picks replicas, queues, sends attempts and retries).
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "proxy/dispatch/http_dispatcher.h"

namespace eofaas::proxy {

/// One function's replicas, queue and retry budget, under `mu`. Invocations hold it shared, so
/// it outlives Remove until they finish.
struct HttpDispatcher::FunctionState {
  FunctionState(std::string name, const common::Clock& clock, const HttpDispatcherOptions& options,
                uint64_t seed, std::shared_ptr<DispatchMetrics> metrics);
  ~FunctionState();

  /// With `mu` held: hands free slots to queued calls, front first, and collects the calls to
  /// wake (after the lock is released). A call waiting to be retried on another replica than
  /// those that failed it lets later calls take those. When no replica is left up, the queued
  /// calls fail, unless the function scales to zero (then they wait for its first replica).
  void GrantQueued(std::vector<std::shared_ptr<Call>>& woken);
  /// With `mu` held: fails every queued call with `status`.
  void DropQueued(const absl::Status& status, std::vector<std::shared_ptr<Call>>& woken);

  const std::string name;
  const std::shared_ptr<DispatchMetrics> metrics;
  const DispatchMetrics::FunctionGauges gauges;
  std::mutex mu;  // guards the members below, and the queue hand-off fields of its calls
  Balancer balancer;
  RetryBudget retry_budget;
  std::list<std::shared_ptr<Call>> queue;
  bool scales_to_zero = false;
  bool removed = false;
};

/// One invocation. Everything but the queue hand-off runs on loop(); the hand-off fields are
/// guarded by the function's mutex.
class HttpDispatcher::Call final : public Cancellable, public std::enable_shared_from_this<Call> {
 public:
  Call(std::shared_ptr<HttpDispatcher> dispatcher, std::shared_ptr<FunctionState> function,
       Invocation invocation, InvokeCallback done);
  ~Call() override;

  /// Runs the invocation to completion, starting on its loop (never inline).
  static void Start(std::shared_ptr<Call> call);

  /// From the CallGroup: completes the call with CANCELLED as soon as its loop runs it.
  void Cancel() override;

  /// Wakes the call from a queue wait (any thread; after the function's lock is released).
  void Wake();

 private:
  friend struct FunctionState;
  using ReplicaPtr = Balancer::ReplicaPtr;
  using TimePoint = std::chrono::steady_clock::time_point;
  using Timer = boost::asio::basic_waitable_timer<
      std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, LoopExecutor>;
  enum class Admission { kPicked, kQueued, kRefused };

  // The steps, in the order they run; each ends by starting an asynchronous operation whose
  // handler runs the next, or by calling the next itself.
  void Begin();
  // Takes a replica slot, or joins the queue when every replica is busy.
  void Acquire();
  void WaitInQueue();
  void OnQueueWake();
  // One attempt on `replica`, which joins tried_ (its last entry is the attempt's replica).
  void Send(ReplicaPtr replica);
  // Takes a connection to the attempt's replica, idle (unless `reuse` is false) or new, and sends
  // the request on it.
  void Try(bool reuse = true);
  void Connect();
  void OnEndpoint(const boost::system::error_code& error,
                  const boost::asio::ip::tcp::endpoint& endpoint);
  void OnConnected(const boost::system::error_code& error);
  // Sends the request on connection_; `now` is the time of the last deadline check.
  void RoundTrip(bool reused, TimePoint now);
  void OnResponse(HttpResult response);
  // The attempt is over: finishes the call, or retries after a backoff.
  void Attempted(AttemptOutcome outcome, HttpResult response = {});
  void Backoff();
  void AfterBackoff();
  // No replica for the next attempt: fails the call with `status` and the last failure, if any.
  void GiveUp(const absl::Status& status);

  Admission Admit(ReplicaPtr& replica, absl::Status& refusal);
  ReplicaPtr LeaveQueue(absl::Status& dropped);
  void ReleaseReplica(Balancer::Replica& replica, Balancer::Result result);
  bool TakeRetryBudget();
  void Finish(InvokeOutcome outcome);
  /// The timer of queue waits and backoff, made on first use: most calls never wait.
  Timer& timer();
  LoopExecutor loop() const { return dispatcher_->loops_.at(loop_index_); }
  // The address of the attempt's replica.
  const std::string& address() const { return tried_.back()->info.address; }
  void CancelTimer() {
    if (timer_) timer_->cancel();
  }

  const std::shared_ptr<HttpDispatcher> dispatcher_;
  const std::shared_ptr<FunctionState> function_;
  Invocation invocation_;
  InvokeCallback done_;
  const size_t loop_index_;     // in the dispatcher's loops
  std::optional<Timer> timer_;  // see timer()
  // Queued for a function scaled to zero that had no replica.
  bool cold_ = false;

  // Loop state.
  int attempts_ = 0;
  bool registered_ = false;                    // in invocation_.group
  std::optional<absl::Status> cancelled_;      // why the call was cancelled
  absl::Status last_failure_;                  // of the last attempt retried
  std::shared_ptr<ConnectionPool> pool_;       // of the attempt's replica
  std::shared_ptr<TcpConnection> connection_;  // during a connect or round trip
  bool reused_connection_ = false;             // connection_ was idle in the pool
  TimePoint backoff_until_;
  // Replicas tried, in order; read under the function's mutex while queued.
  absl::InlinedVector<ReplicaPtr, 2> tried_;
  // The concurrency of the replica acquired last, read under the function's mutex: it bounds the
  // idle connections kept for the replica.
  int replica_concurrency_ = 1;

  // The queue hand-off, guarded by the function's mutex.
  std::optional<std::list<std::shared_ptr<Call>>::iterator> queue_position_;
  ReplicaPtr granted_;
  absl::Status dropped_;
};

}  // namespace eofaas::proxy
