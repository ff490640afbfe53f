// The Dispatcher over HTTP/1.1 keep-alive connections to replicas, on Boost.Asio: a chain of
// handlers per invocation, on the event loop that started it; per function a balancer, a bounded
// queue and a retry budget; per replica a connection pool.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "proxy/dispatch/connection_pool.h"
#include "proxy/dispatch/deadline_sweep.h"
#include "proxy/dispatch/dispatch_metrics.h"
#include "proxy/dispatch/dispatcher.h"
#include "proxy/dispatch/event_loops.h"
#include "proxy/dispatch/retry_policy.h"

namespace eofaas::proxy {

struct HttpDispatcherOptions {
  /// Invocations of one function waiting for a free replica; beyond it Invoke fails with
  /// RESOURCE_EXHAUSTED, unless the invocation is bounded by its caller.
  size_t queue_limit = 1024;
  /// Bound of one TCP connect (within the invocation's deadline).
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(2);
  HttpClientOptions http;
  BalancerOptions balancer;
  RetryBudgetOptions retry_budget;
  BackoffOptions backoff;
};

/// Thread-safe; runs on the event loops it is given: an invocation on the loop of the thread that
/// starts it, or on the next loop when started elsewhere (a gRPC thread). Owned by
/// std::shared_ptr: invocations in progress keep it alive.
class HttpDispatcher final : public Dispatcher,
                             public std::enable_shared_from_this<HttpDispatcher> {
 public:
  /// `loops` and `clock` must outlive the dispatcher; `clock` drives ejections and the retry
  /// budget, deadlines are on std::chrono::steady_clock, like Asio's timers.
  static std::shared_ptr<HttpDispatcher> Create(EventLoops& loops, const common::Clock& clock,
                                                HttpDispatcherOptions options,
                                                std::shared_ptr<DispatchMetrics> metrics);
  ~HttpDispatcher() override;

  void Update(std::string_view function, std::vector<ReplicaInfo> replicas) override;
  void SetScalesToZero(std::string_view function, bool scales_to_zero) override;
  void Remove(std::string_view function) override;
  std::vector<FunctionLoad> Load() const override;

  /// `observer` hears of every call that starts waiting for a function scaled to zero with no
  /// replica (on the call's thread, outside locks). Set before the first Invoke.
  void OnColdCall(std::function<void(const std::string& function)> observer) {
    on_cold_call_ = std::move(observer);
  }
  void Invoke(std::string_view function, Invocation invocation, InvokeCallback done) override;
  void Defer(absl::AnyInvocable<void() &&> task) override;
  absl::StatusOr<int> Capacity(std::string_view function) const override;

  /// Refuses new invocations (UNAVAILABLE), fails the queued ones and closes idle connections.
  /// Invocations on a replica finish (or meet their deadline). Call it before dropping the last
  /// reference: queued invocations refer back to the dispatcher.
  void Shutdown();

 private:
  struct FunctionState;
  class Call;

  HttpDispatcher(EventLoops& loops, const common::Clock& clock, HttpDispatcherOptions options,
                 std::shared_ptr<DispatchMetrics> metrics);

  std::shared_ptr<FunctionState> Find(std::string_view function) const;
  /// The pool of `address`, created on first use, keeping up to `concurrency` idle connections
  /// (the replica's concurrency, as the call that asks last saw it).
  std::shared_ptr<ConnectionPool> Pool(const std::string& address, int concurrency);
  void ClosePools(const std::vector<std::string>& addresses);
  /// Completes `done` with `status` on the current loop (never inline).
  void Reject(InvokeCallback done, absl::Status status);

  EventLoops& loops_;
  // The deadlines of connects and round trips to replicas.
  const std::shared_ptr<DeadlineSweep> deadlines_;
  const common::Clock& clock_;
  const HttpDispatcherOptions options_;
  const std::shared_ptr<DispatchMetrics> metrics_;
  mutable std::mutex mu_;  // guards the members below
  absl::flat_hash_map<std::string, std::shared_ptr<FunctionState>> functions_;
  absl::flat_hash_map<std::string, std::shared_ptr<ConnectionPool>> pools_;
  uint64_t seed_;
  bool shut_down_ = false;
  std::function<void(const std::string& function)> on_cold_call_;
};

}  // namespace eofaas::proxy
